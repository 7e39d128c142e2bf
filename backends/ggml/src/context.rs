//! `Context` (a `ggml_context` in `no_alloc` mode) and the `Tensor` handles it hands out.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::CStr;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{GgmlError, Result};
use crate::sys;
use crate::types::{raw_type_name, GgmlType};

/// The longest tensor name ggml stores (`GGML_MAX_NAME` minus the NUL).
pub const MAX_NAME_LEN: usize = 63;

/// How big a [`Context`] is: how many tensor headers and graphs it must hold.
///
/// Contexts are always `no_alloc`: they hold tensor *headers* and graphs; tensor data lives in
/// device buffers ([`crate::Weights`], [`crate::GraphAllocator`]). The memory pool is sized as
/// `n_tensors · ggml_tensor_overhead() + n_graphs · ggml_graph_overhead_custom(graph_size)`.
///
/// ```
/// use tts_ggml::ContextParams;
/// let p = ContextParams::default().with_n_tensors(256).with_graphs(1, 512);
/// assert!(p.mem_size() > 256 * 300);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextParams {
    n_tensors: usize,
    n_graphs: usize,
    graph_size: usize,
}

impl Default for ContextParams {
    /// Room for ggml's default graph (`GGML_DEFAULT_GRAPH_SIZE` = 2048 nodes), one graph, and as
    /// many tensors.
    fn default() -> Self {
        Self {
            n_tensors: crate::consts::DEFAULT_GRAPH_SIZE,
            n_graphs: 1,
            graph_size: crate::consts::DEFAULT_GRAPH_SIZE,
        }
    }
}

impl ContextParams {
    /// Room for `n` tensor headers (every op result, view and input counts as one).
    #[must_use]
    pub fn with_n_tensors(mut self, n: usize) -> Self {
        self.n_tensors = n;
        self
    }

    /// Room for `n_graphs` graphs of `graph_size` nodes each.
    #[must_use]
    pub fn with_graphs(mut self, n_graphs: usize, graph_size: usize) -> Self {
        self.n_graphs = n_graphs;
        self.graph_size = graph_size;
        self
    }

    /// The memory pool size these parameters give.
    ///
    /// # C equivalent
    /// `n_tensors * ggml_tensor_overhead() + n_graphs * ggml_graph_overhead_custom(size, false)`
    pub fn mem_size(&self) -> usize {
        // SAFETY: both functions are pure size computations.
        let (t, g) = unsafe {
            (
                sys::ggml_tensor_overhead(),
                sys::ggml_graph_overhead_custom(self.graph_size, false),
            )
        };
        self.n_tensors
            .saturating_mul(t)
            .saturating_add(self.n_graphs.saturating_mul(g))
    }
}

/// Side tables the wrapper keeps per context so that data-dependent ggml assertions
/// (`get_rows` index bounds) and use-before-set mistakes are caught in Rust.
#[derive(Default)]
pub(crate) struct State {
    /// Index tensors of `get_rows` → the number of rows of the source they index.
    pub(crate) index_bounds: HashMap<usize, i64>,
    /// Leaf tensors of this context whose data was set since the last allocation.
    pub(crate) inputs_set: HashSet<usize>,
    /// Result tensors of custom ops created in this context.
    pub(crate) custom_ops: HashSet<usize>,
    /// Closures of custom ops, kept alive as long as the context (graphs cannot outlive it).
    pub(crate) keepalive: Vec<Arc<dyn Any + Send + Sync>>,
}

/// Panics caught inside custom-op trampolines, reported after the compute.
#[derive(Default, Debug)]
pub(crate) struct PanicSlot {
    pub(crate) caught: Mutex<Vec<(String, String)>>,
}

/// A ggml context: an arena of tensor headers and graphs (`struct ggml_context`, `no_alloc`).
///
/// Building is single-threaded: `Context` is `Send` but not `Sync`, and every op takes `&self`.
/// Tensors borrow the context ([`Tensor<'ctx>`]) so they cannot outlive it.
pub struct Context {
    raw: NonNull<sys::ggml_context>,
    pub(crate) state: RefCell<State>,
    pub(crate) panics: Arc<PanicSlot>,
    /// Set once a context holds shared weights: no more ops, names or flags.
    frozen: AtomicBool,
}

// SAFETY: a `ggml_context` is a plain memory arena with no thread affinity (ggml.c keeps no
// thread-local state for it); ggml only requires that one thread at a time uses a context, which
// `!Sync` (the `RefCell`) guarantees. Moving it, with its side tables, to another thread is fine.
// The closures in `keepalive` are `Send + Sync`.
unsafe impl Send for Context {}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("mem_size", &self.mem_size())
            .field("used_mem", &self.used_mem())
            .finish()
    }
}

impl Context {
    /// A new `no_alloc` context sized by `params`.
    ///
    /// # C equivalent
    /// `ggml_init` with `{ mem_size, mem_buffer = NULL, no_alloc = true }`
    pub fn new(params: ContextParams) -> Result<Self> {
        crate::log::install();
        let init = sys::ggml_init_params {
            mem_size: params.mem_size(),
            mem_buffer: std::ptr::null_mut(),
            no_alloc: true,
        };
        // SAFETY: `init` is a valid parameter struct; ggml_init allocates its own pool
        // (mem_buffer NULL) and returns NULL on allocation failure.
        let raw = unsafe { sys::ggml_init(init) };
        let raw = NonNull::new(raw)
            .ok_or_else(|| GgmlError::Alloc(format!("ggml_init of {} bytes", params.mem_size())))?;
        Ok(Self {
            raw,
            state: RefCell::new(State::default()),
            panics: Arc::default(),
            frozen: AtomicBool::new(false),
        })
    }

    pub(crate) fn raw(&self) -> *mut sys::ggml_context {
        self.raw.as_ptr()
    }

    /// Makes the context read-only (weights shared between threads).
    pub(crate) fn freeze(&self) {
        self.frozen.store(true, Ordering::Release);
    }

    pub(crate) fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    /// Size of the memory pool in bytes.
    ///
    /// # C equivalent
    /// `ggml_get_mem_size`
    pub fn mem_size(&self) -> usize {
        // SAFETY: `raw` is a live context.
        unsafe { sys::ggml_get_mem_size(self.raw()) }
    }

    /// Bytes of the pool in use.
    ///
    /// # C equivalent
    /// `ggml_used_mem`
    pub fn used_mem(&self) -> usize {
        // SAFETY: `raw` is a live context.
        unsafe { sys::ggml_used_mem(self.raw()) }
    }

    /// Checks that `n_objects` more objects of `object_bytes` each fit in the pool, the check that
    /// `ggml_new_object` does by returning NULL (after which ggml crashes).
    pub(crate) fn ensure_room(&self, n_objects: usize, object_bytes: usize) -> Result<()> {
        if self.is_frozen() {
            return Err(GgmlError::Argument {
                op: "context",
                detail: "weights contexts are read-only; build graphs in a new context".into(),
            });
        }
        // SAFETY: a pure size computation.
        let header = unsafe { sys::ggml_tensor_overhead() } - std::mem::size_of::<sys::ggml_tensor>();
        let align = crate::consts::MEM_ALIGN;
        let one = object_bytes.div_ceil(align) * align + header;
        let needed = one.saturating_mul(n_objects);
        let available = self.mem_size().saturating_sub(self.used_mem());
        if needed > available {
            return Err(GgmlError::ContextFull { needed, available });
        }
        Ok(())
    }

    /// Checks room for `n` tensor headers.
    pub(crate) fn ensure_tensors(&self, n: usize) -> Result<()> {
        self.ensure_room(n, std::mem::size_of::<sys::ggml_tensor>())
    }

    /// Wraps a tensor pointer just returned by ggml for this context.
    pub(crate) fn wrap(&self, op: &'static str, p: *mut sys::ggml_tensor) -> Result<Tensor<'_>> {
        let raw = NonNull::new(p).ok_or_else(|| GgmlError::Alloc(format!("{op} returned NULL")))?;
        Ok(Tensor {
            raw,
            ctx: NonNull::from(self),
            _ctx: PhantomData,
        })
    }

    /// A new tensor of the given type and shape (`ne.len()` = 1..=4 dimensions, ggml order:
    /// `ne[0]` is the fastest-varying). Its data is allocated later by a buffer or allocator.
    ///
    /// # C equivalent
    /// `ggml_new_tensor`
    pub fn new_tensor(&self, ty: GgmlType, ne: &[i64]) -> Result<Tensor<'_>> {
        const OP: &str = "new_tensor";
        if ne.is_empty() || ne.len() > 4 {
            return Err(GgmlError::Argument {
                op: OP,
                detail: format!("{} dimensions, expected 1..=4", ne.len()),
            });
        }
        if let Some(d) = ne.iter().position(|&n| n < 1) {
            return Err(GgmlError::Shape {
                op: OP,
                detail: format!("ne[{d}] = {} in {ne:?} must be >= 1", ne[d]),
            });
        }
        if ne[0] % ty.block_size() as i64 != 0 {
            return Err(GgmlError::Shape {
                op: OP,
                detail: format!(
                    "ne[0] = {} is not a multiple of the {} block size {}",
                    ne[0],
                    ty,
                    ty.block_size()
                ),
            });
        }
        checked_elements(OP, ne)?;
        self.ensure_tensors(1)?;
        let n_dims = ne.len() as i32;
        // SAFETY: live context with room for one tensor header (checked); valid type; `ne` has
        // `n_dims` entries, all >= 1, with a product that fits in i64 (checked).
        let p = unsafe { sys::ggml_new_tensor(self.raw(), ty.to_raw(), n_dims, ne.as_ptr()) };
        self.wrap(OP, p)
    }

    /// A new 1-D tensor.
    pub fn new_tensor_1d(&self, ty: GgmlType, ne0: i64) -> Result<Tensor<'_>> {
        self.new_tensor(ty, &[ne0])
    }

    /// A new 2-D tensor.
    pub fn new_tensor_2d(&self, ty: GgmlType, ne0: i64, ne1: i64) -> Result<Tensor<'_>> {
        self.new_tensor(ty, &[ne0, ne1])
    }

    /// A new 3-D tensor.
    pub fn new_tensor_3d(&self, ty: GgmlType, ne0: i64, ne1: i64, ne2: i64) -> Result<Tensor<'_>> {
        self.new_tensor(ty, &[ne0, ne1, ne2])
    }

    /// A new 4-D tensor.
    pub fn new_tensor_4d(&self, ty: GgmlType, ne0: i64, ne1: i64, ne2: i64, ne3: i64) -> Result<Tensor<'_>> {
        self.new_tensor(ty, &[ne0, ne1, ne2, ne3])
    }

    /// Tensors of this context in creation order.
    ///
    /// # C equivalent
    /// `ggml_get_first_tensor` / `ggml_get_next_tensor`
    pub fn tensors(&self) -> Vec<Tensor<'_>> {
        let mut out = Vec::new();
        // SAFETY: live context; the iteration only reads the object list.
        let mut p = unsafe { sys::ggml_get_first_tensor(self.raw()) };
        while let Some(t) = NonNull::new(p) {
            out.push(Tensor {
                raw: t,
                ctx: NonNull::from(self),
                _ctx: PhantomData,
            });
            // SAFETY: `t` is a tensor of this live context.
            p = unsafe { sys::ggml_get_next_tensor(self.raw(), t.as_ptr()) };
        }
        out
    }

    /// Errors caught in custom-op callbacks since the last call, as `(op, message)`.
    pub(crate) fn take_panics(&self) -> Vec<(String, String)> {
        match self.panics.caught.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl Drop for Context {
    /// # C equivalent
    /// `ggml_free`
    fn drop(&mut self) {
        // SAFETY: `raw` came from ggml_init and is freed exactly once; no tensor or graph handle
        // can outlive `self` (they borrow it).
        unsafe { sys::ggml_free(self.raw()) }
    }
}

/// Element count of a shape, or an error if it overflows i64 (ggml asserts on that).
pub(crate) fn checked_elements(op: &'static str, ne: &[i64]) -> Result<i64> {
    ne.iter()
        .try_fold(1i64, |acc, &n| acc.checked_mul(n))
        .ok_or_else(|| GgmlError::Shape {
            op,
            detail: format!("{ne:?} has more elements than fit in i64"),
        })
}

/// A tensor header in a [`Context`]: a `Copy` handle (`struct ggml_tensor *`) that cannot
/// outlive the context it was created in.
///
/// Shapes are in ggml order: `ne[0]` is the innermost (contiguous) dimension, so a PyTorch
/// `[C, T]` activation is `ne = [T, C, 1, 1]`.
#[derive(Clone, Copy)]
pub struct Tensor<'ctx> {
    raw: NonNull<sys::ggml_tensor>,
    ctx: NonNull<Context>,
    _ctx: PhantomData<&'ctx Context>,
}

impl std::fmt::Debug for Tensor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor")
            .field("name", &self.name())
            .field("type", &self.type_name())
            .field("ne", &self.ne())
            .finish()
    }
}

impl PartialEq for Tensor<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl Eq for Tensor<'_> {}

impl<'ctx> Tensor<'ctx> {
    pub(crate) fn raw(&self) -> *mut sys::ggml_tensor {
        self.raw.as_ptr()
    }

    pub(crate) fn key(&self) -> usize {
        self.raw.as_ptr() as usize
    }

    /// The context this tensor was created in.
    pub(crate) fn context(&self) -> &'ctx Context {
        // SAFETY: `ctx` points to the context this handle borrows for `'ctx` (PhantomData), so it
        // is alive and not mutably borrowed (Context has no `&mut self` methods besides Drop).
        unsafe { self.ctx.as_ref() }
    }

    /// Reads the header. The header lives in the context's arena, alive for `'ctx`; ggml
    /// mutates headers only from calls this crate makes on the same thread, so no write races
    /// with this copy.
    fn header(&self) -> &sys::ggml_tensor {
        // SAFETY: see above; the returned reference is short-lived (used within one method) and
        // never held across a call into ggml.
        unsafe { self.raw.as_ref() }
    }

    /// Number of elements per dimension, ggml order.
    pub fn ne(&self) -> [i64; 4] {
        self.header().ne
    }

    /// Strides in bytes per dimension.
    pub fn nb(&self) -> [usize; 4] {
        self.header().nb
    }

    pub(crate) fn raw_type(&self) -> sys::ggml_type {
        self.header().type_
    }

    /// The element type.
    pub fn ty(&self) -> GgmlType {
        GgmlType::from_raw(self.raw_type()).expect("every tensor type is created through GgmlType")
    }

    pub(crate) fn type_name(&self) -> &'static str {
        raw_type_name(self.raw_type())
    }

    pub(crate) fn op(&self) -> sys::ggml_op {
        self.header().op
    }

    pub(crate) fn flags(&self) -> i32 {
        self.header().flags
    }

    /// Whether this tensor is a leaf (no op: an input or a weight).
    pub fn is_leaf(&self) -> bool {
        self.op() == sys::GGML_OP_NONE
    }

    /// Total element count.
    ///
    /// # C equivalent
    /// `ggml_nelements`
    pub fn n_elements(&self) -> i64 {
        // SAFETY: a live tensor header; ggml_nelements only reads `ne`.
        unsafe { sys::ggml_nelements(self.raw()) }
    }

    /// Size of the data in bytes (the extent covered by the strides).
    ///
    /// # C equivalent
    /// `ggml_nbytes`
    pub fn n_bytes(&self) -> usize {
        // SAFETY: a live tensor header; ggml_nbytes only reads `ne`, `nb` and `type`.
        unsafe { sys::ggml_nbytes(self.raw()) }
    }

    /// Whether the data is laid out densely in ggml order.
    ///
    /// # C equivalent
    /// `ggml_is_contiguous`
    pub fn is_contiguous(&self) -> bool {
        // SAFETY: a live tensor header; only reads fields.
        unsafe { sys::ggml_is_contiguous(self.raw()) }
    }

    /// Whether dims 0 and 1 are swapped (`nb[0] > nb[1]`).
    ///
    /// # C equivalent
    /// `ggml_is_transposed`
    pub fn is_transposed(&self) -> bool {
        // SAFETY: a live tensor header; only reads fields.
        unsafe { sys::ggml_is_transposed(self.raw()) }
    }

    /// Whether rows (dim 0) are dense.
    ///
    /// # C equivalent
    /// `ggml_is_contiguous_rows`
    pub fn is_contiguous_rows(&self) -> bool {
        // SAFETY: a live tensor header; only reads fields.
        unsafe { sys::ggml_is_contiguous_rows(self.raw()) }
    }

    /// The tensor's name ("" if none was set; ggml names views `"<src> (view)"` and unnamed
    /// graph nodes `node_<i>`).
    ///
    /// # C equivalent
    /// `ggml_get_name`
    pub fn name(&self) -> String {
        // SAFETY: `name` is a NUL-terminated array inside the live header (ggml always writes the
        // terminator: ggml_set_name and ggml_format_name truncate to GGML_MAX_NAME - 1).
        let c = unsafe { CStr::from_ptr(sys::ggml_get_name(self.raw())) };
        c.to_string_lossy().into_owned()
    }

    /// Sets the name. Names longer than 63 bytes (`GGML_MAX_NAME` − 1) or containing a NUL are
    /// rejected rather than silently truncated by ggml.
    ///
    /// # C equivalent
    /// `ggml_set_name`
    pub fn set_name(self, name: &str) -> Result<Self> {
        self.check_mutable()?;
        if name.len() > MAX_NAME_LEN {
            return Err(GgmlError::Name {
                name: name.to_owned(),
                reason: "longer than 63 bytes",
            });
        }
        let c = std::ffi::CString::new(name).map_err(|_| GgmlError::Name {
            name: name.to_owned(),
            reason: "contains a NUL byte",
        })?;
        // SAFETY: `c` is NUL-terminated and at most 63 bytes plus NUL, so ggml copies it whole
        // into the 64-byte `name` array of a live header.
        unsafe { sys::ggml_set_name(self.raw(), c.as_ptr()) };
        Ok(self)
    }

    /// Marks the tensor as a graph input (allocated first, never overwritten by the allocator).
    ///
    /// # C equivalent
    /// `ggml_set_input`
    pub fn set_input(self) -> Result<Self> {
        self.check_mutable()?;
        // SAFETY: sets a flag bit in a live header of a context that is not shared.
        unsafe { sys::ggml_set_input(self.raw()) };
        Ok(self)
    }

    /// Marks the tensor as a graph output: its memory is not reused by later nodes, so it can
    /// be read after compute. Only outputs can be read back.
    ///
    /// # C equivalent
    /// `ggml_set_output`
    pub fn set_output(self) -> Result<Self> {
        self.check_mutable()?;
        // SAFETY: sets a flag bit in a live header of a context that is not shared.
        unsafe { sys::ggml_set_output(self.raw()) };
        Ok(self)
    }

    fn check_mutable(&self) -> Result<()> {
        if self.context().is_frozen() {
            return Err(GgmlError::TensorUse {
                tensor: self.name(),
                reason: "is a shared weight and cannot be renamed or flagged",
            });
        }
        Ok(())
    }

    /// Whether [`Tensor::set_output`] was called.
    pub fn is_output(&self) -> bool {
        self.flags() & sys::GGML_TENSOR_FLAG_OUTPUT as i32 != 0
    }

    /// Whether the tensor has backing memory (a buffer assigned by an allocator or weights).
    pub fn is_allocated(&self) -> bool {
        let h = self.header();
        !h.data.is_null() && (!h.buffer.is_null() || !h.view_src.is_null())
    }
}
