//! The one error type of the wrapper: every check that stands between a caller and a
//! `GGML_ASSERT` (which aborts the process) reports through it.

/// Everything that can go wrong while building or running a ggml graph.
///
/// Messages are lowercase and name the op, the shapes (in ggml order, `[ne0, ne1, ne2, ne3]`)
/// and the dimension that failed, so that a log line is enough to find the graph step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgmlError {
    /// Operand shapes that ggml would reject with an assertion.
    #[error("{op}: shape mismatch: {detail}")]
    Shape {
        /// The ggml operation (`"mul_mat"`, `"concat"`, ...).
        op: &'static str,
        /// Which shapes and which dimension.
        detail: String,
    },
    /// An operand type the op (or its CPU kernel) does not support.
    #[error("{op}: unsupported type {ty} for {operand}")]
    Type {
        /// The ggml operation.
        op: &'static str,
        /// Which operand (`"a"`, `"b"`, `"kernel"`, ...).
        operand: &'static str,
        /// ggml's name of the offending type.
        ty: &'static str,
    },
    /// An operand layout (strides) the op does not accept, e.g. a non-contiguous tensor.
    #[error("{op}: {operand} must be {requirement}")]
    Layout {
        /// The ggml operation.
        op: &'static str,
        /// Which operand.
        operand: &'static str,
        /// What the operand must be (`"contiguous"`, ...).
        requirement: &'static str,
    },
    /// A scalar argument out of range (stride, padding, dim index, ...).
    #[error("{op}: invalid argument: {detail}")]
    Argument {
        /// The ggml operation.
        op: &'static str,
        /// Which argument and why.
        detail: String,
    },
    /// The context's memory pool cannot hold another object (ggml would return NULL and crash).
    #[error(
        "context full: {needed} bytes needed, {available} available (size the context for more tensors)"
    )]
    ContextFull {
        /// Bytes the next object needs, including ggml's object header.
        needed: usize,
        /// Bytes left in the pool.
        available: usize,
    },
    /// A graph would exceed its node or leaf capacity.
    #[error("graph full: {needed} {kind} needed, capacity {capacity}")]
    GraphFull {
        /// `"nodes"` or `"leafs"`.
        kind: &'static str,
        /// How many would be needed.
        needed: usize,
        /// The graph's size.
        capacity: usize,
    },
    /// A tensor name longer than ggml's 63 bytes, or containing a NUL byte.
    #[error("invalid tensor name {name:?}: {reason}")]
    Name {
        /// The name as given.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A weight or tensor name that does not exist.
    #[error("no tensor named {0:?}")]
    UnknownTensor(String),
    /// A byte or element count that does not match the tensor.
    #[error("{what} of tensor {tensor:?}: expected {expected}, got {actual}")]
    Size {
        /// `"bytes"` or `"elements"`.
        what: &'static str,
        /// The tensor's name.
        tensor: String,
        /// What the tensor needs.
        expected: usize,
        /// What was given.
        actual: usize,
    },
    /// A tensor that cannot be used the way it was asked for (not part of the graph, not marked
    /// output, not an input of this context, not allocated, ...).
    #[error("tensor {tensor:?}: {reason}")]
    TensorUse {
        /// The tensor's name.
        tensor: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An index for `get_rows` outside the rows of its source.
    #[error("index tensor {tensor:?}: value {value} at position {position} is outside 0..{rows}")]
    IndexOutOfRange {
        /// The index tensor's name.
        tensor: String,
        /// The offending value.
        value: i32,
        /// Where it is in the uploaded data.
        position: usize,
        /// The number of rows of the source.
        rows: i64,
    },
    /// A compute device could not be initialised or does not support a request.
    #[error("compute device: {0}")]
    Device(String),
    /// A ggml allocation (context, buffer, graph allocator) failed.
    #[error("allocation failed: {0}")]
    Alloc(String),
    /// `ggml_backend_graph_compute` returned a non-success status.
    #[error("graph compute failed: {0}")]
    Compute(String),
    /// The computation was stopped by its abort check ([`crate::ComputeRun::compute_until`]).
    #[error("graph compute was aborted")]
    Aborted,
    /// A custom-op callback panicked; the panic was caught on ggml's thread.
    #[error("custom op {op:?} panicked: {message}")]
    CustomOpPanic {
        /// The name of the custom op's output tensor.
        op: String,
        /// The panic payload, if it was a string.
        message: String,
    },
}

/// Result alias used throughout the crate.
pub type Result<T, E = GgmlError> = std::result::Result<T, E>;
