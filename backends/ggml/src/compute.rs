//! Allocating and running graphs: the graph allocator (`ggml_gallocr`), the multi-device
//! scheduler (`ggml_backend_sched`), and [`ComputeRun`] (set inputs, compute, read outputs).

use std::collections::HashSet;
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::context::Tensor;
use crate::device::{ComputeDevice, DeviceKind};
use crate::error::{GgmlError, Result};
use crate::graph::Graph;
use crate::sys;
use crate::types::GgmlType;

/// Allocates the intermediate tensors of per-request graphs in one device buffer, reusing memory
/// between nodes (`ggml_gallocr_t`). The buffer grows to the largest graph seen and is kept.
pub struct GraphAllocator<'d> {
    raw: NonNull<sys::ggml_gallocr>,
    device: &'d ComputeDevice,
}

impl std::fmt::Debug for GraphAllocator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphAllocator")
            .field("device", &self.device.name())
            .field("buffer_size", &self.buffer_size())
            .finish()
    }
}

// SAFETY: a gallocr is plain bookkeeping plus a device buffer with no thread affinity; it is used
// through `&mut self` only, so never concurrently. The borrowed device is `Send`, and `&'d
// ComputeDevice` is only used from the thread that owns the allocator.
unsafe impl Send for GraphAllocator<'_> {}

impl<'d> GraphAllocator<'d> {
    /// An allocator for `device`'s default buffer type.
    ///
    /// # C equivalent
    /// `ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend))`
    pub fn new(device: &'d ComputeDevice) -> Result<Self> {
        // SAFETY: live backend; the buffer type is static for the backend's lifetime.
        let raw = unsafe { sys::ggml_gallocr_new(sys::ggml_backend_get_default_buffer_type(device.raw())) };
        let raw =
            NonNull::new(raw).ok_or_else(|| GgmlError::Alloc("ggml_gallocr_new returned NULL".into()))?;
        Ok(Self { raw, device })
    }

    /// Size of the compute buffer in bytes.
    ///
    /// # C equivalent
    /// `ggml_gallocr_get_buffer_size(galloc, 0)`
    pub fn buffer_size(&self) -> usize {
        // SAFETY: live allocator with one buffer (id 0).
        unsafe { sys::ggml_gallocr_get_buffer_size(self.raw.as_ptr(), 0) }
    }

    /// Allocates every tensor of `graph` that has no data yet and returns a [`ComputeRun`] to
    /// set inputs, compute and read outputs. Memory from an earlier allocation is reused, so the
    /// run borrows the allocator mutably.
    ///
    /// Errors if a leaf from another context has no data (weights must be allocated first), if
    /// weights live in a buffer this device cannot use, or if the device cannot run some node
    /// (use a [`Scheduler`] with a CPU fallback then).
    ///
    /// # C equivalent
    /// `ggml_gallocr_alloc_graph`
    pub fn alloc<'g, 'ctx>(&'g mut self, graph: &'g Graph<'ctx>) -> Result<ComputeRun<'g, 'ctx>> {
        check_leafs(graph, Some(self.device))?;
        if !self.device.is_cpu() {
            for t in graph_nodes(graph) {
                // SAFETY: live backend and node header.
                if !unsafe { sys::ggml_backend_supports_op(self.device.raw(), t) } {
                    // SAFETY: a live header with a NUL-terminated name.
                    let name = unsafe { std::ffi::CStr::from_ptr((*t).name.as_ptr()) }
                        .to_string_lossy()
                        .into_owned();
                    return Err(GgmlError::TensorUse {
                        tensor: name,
                        reason: "the device does not support this op; use a Scheduler with a CPU fallback",
                    });
                }
            }
        }
        // SAFETY: live allocator and graph; every leaf either has data or belongs to the graph's
        // context (checked), so ggml-alloc only places tensors of this graph in its buffer.
        let ok = unsafe { sys::ggml_gallocr_alloc_graph(self.raw.as_ptr(), graph.raw()) };
        if !ok {
            return Err(GgmlError::Alloc(
                "ggml_gallocr_alloc_graph failed (out of device memory?)".into(),
            ));
        }
        Ok(ComputeRun::new(graph, Engine::Device(self.device)))
    }
}

impl Drop for GraphAllocator<'_> {
    /// # C equivalent
    /// `ggml_gallocr_free`
    fn drop(&mut self) {
        // SAFETY: freed once; runs that use its buffer borrow `self` mutably, so none is alive.
        unsafe { sys::ggml_gallocr_free(self.raw.as_ptr()) }
    }
}

/// Runs graphs across several devices, sending each node to the first device that supports it
/// (`ggml_backend_sched_t`): e.g. `[metal, cpu]` puts custom ops on the CPU. The last device
/// must be the CPU.
pub struct Scheduler<'d> {
    raw: NonNull<sys::ggml_backend_sched>,
    graph_size: usize,
    _devices: PhantomData<&'d ComputeDevice>,
}

impl std::fmt::Debug for Scheduler<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("graph_size", &self.graph_size)
            .finish()
    }
}

// SAFETY: as for `GraphAllocator`: no thread affinity, used through `&mut self` only.
unsafe impl Send for Scheduler<'_> {}

impl<'d> Scheduler<'d> {
    /// A scheduler over `devices` (1..=16, highest priority first, the last one the CPU) for
    /// graphs of up to `graph_size` nodes plus leafs.
    ///
    /// # C equivalent
    /// `ggml_backend_sched_new(backends, NULL, n, graph_size, false, true)`
    pub fn new(devices: &[&'d ComputeDevice], graph_size: usize) -> Result<Self> {
        if devices.is_empty() || devices.len() > crate::consts::SCHED_MAX_BACKENDS {
            return Err(GgmlError::Device(format!(
                "{} devices, expected 1..={}",
                devices.len(),
                crate::consts::SCHED_MAX_BACKENDS
            )));
        }
        if devices.last().map(|d| d.kind()) != Some(DeviceKind::Cpu) {
            return Err(GgmlError::Device(
                "the last device of a scheduler must be the CPU".into(),
            ));
        }
        if graph_size == 0 || graph_size > i32::MAX as usize / 4 {
            return Err(GgmlError::Device(format!("graph size {graph_size} out of range")));
        }
        let mut raws: Vec<sys::ggml_backend_t> = devices.iter().map(|d| d.raw()).collect();
        // SAFETY: `raws` holds 1..=GGML_SCHED_MAX_BACKENDS live backends, the last a CPU (both
        // asserted by ggml, checked above); NULL bufts selects each default buffer type.
        let raw = unsafe {
            sys::ggml_backend_sched_new(
                raws.as_mut_ptr(),
                std::ptr::null_mut(),
                raws.len() as i32,
                graph_size,
                false,
                true,
            )
        };
        let raw = NonNull::new(raw)
            .ok_or_else(|| GgmlError::Alloc("ggml_backend_sched_new returned NULL".into()))?;
        Ok(Self {
            raw,
            graph_size,
            _devices: PhantomData,
        })
    }

    /// Allocates `graph` across the devices and returns a [`ComputeRun`].
    ///
    /// # C equivalent
    /// `ggml_backend_sched_reset` + `ggml_backend_sched_alloc_graph`
    pub fn alloc<'g, 'ctx>(&'g mut self, graph: &'g Graph<'ctx>) -> Result<ComputeRun<'g, 'ctx>> {
        if graph.n_nodes() + graph.n_leafs() > self.graph_size {
            return Err(GgmlError::GraphFull {
                kind: "nodes and leafs (scheduler)",
                needed: graph.n_nodes() + graph.n_leafs(),
                capacity: self.graph_size,
            });
        }
        check_leafs(graph, None)?;
        // SAFETY: live scheduler and graph; the graph fits the scheduler's hash set (checked)
        // and every leaf has data or belongs to the graph's context.
        let ok = unsafe {
            sys::ggml_backend_sched_reset(self.raw.as_ptr());
            sys::ggml_backend_sched_alloc_graph(self.raw.as_ptr(), graph.raw())
        };
        if !ok {
            return Err(GgmlError::Alloc("ggml_backend_sched_alloc_graph failed".into()));
        }
        Ok(ComputeRun::new(graph, Engine::Sched(self.raw)))
    }
}

impl Drop for Scheduler<'_> {
    /// # C equivalent
    /// `ggml_backend_sched_free`
    fn drop(&mut self) {
        // SAFETY: freed once; runs borrow `self` mutably, so none is alive.
        unsafe { sys::ggml_backend_sched_free(self.raw.as_ptr()) }
    }
}

fn graph_nodes(graph: &Graph<'_>) -> Vec<*mut sys::ggml_tensor> {
    (0..graph.n_nodes())
        .map(|i| {
            // SAFETY: live graph; `i < n_nodes`.
            unsafe { sys::ggml_graph_node(graph.raw(), i as i32) }
        })
        .collect()
}

/// Every leaf must have data already (weights) or belong to the graph's context (inputs the
/// caller sets after allocation); already-allocated leafs must be in a buffer `device` can use.
fn check_leafs(graph: &Graph<'_>, device: Option<&ComputeDevice>) -> Result<()> {
    let own_tensors = graph.context().tensors();
    // A context's tensors get their data from the first allocator that places them; a second
    // allocation of the same context would keep pointers into the first (maybe freed) buffer.
    let stale = own_tensors.iter().find(|t| {
        // SAFETY: a live header of the graph's live context.
        let h = unsafe { &*t.raw() };
        h.view_src.is_null() && !h.data.is_null() && graph.contains(**t)
    });
    if let Some(t) = stale {
        return Err(GgmlError::TensorUse {
            tensor: t.name(),
            reason: "was allocated by an earlier graph allocation; build a new context for each run",
        });
    }
    let own: HashSet<usize> = own_tensors.iter().map(|t| t.key()).collect();
    for &p in &graph.leafs {
        // SAFETY: leafs of a live graph are live headers (their contexts outlive the graph).
        let h = unsafe { &*p };
        let name = || {
            // SAFETY: a live header with a NUL-terminated name.
            unsafe { std::ffi::CStr::from_ptr(h.name.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        };
        let buf = if h.view_src.is_null() {
            h.buffer
        } else {
            // SAFETY: a view's source is a live header.
            unsafe { (*h.view_src).buffer }
        };
        if own.contains(&(p as usize)) {
            continue;
        }
        if h.data.is_null() || buf.is_null() {
            return Err(GgmlError::TensorUse {
                tensor: name(),
                reason: "is a leaf from another context without data (allocate weights before the graph)",
            });
        }
        if let Some(d) = device {
            // SAFETY: live backend and buffer.
            let ok =
                unsafe { sys::ggml_backend_supports_buft(d.raw(), sys::ggml_backend_buffer_get_type(buf)) };
            if !ok {
                return Err(GgmlError::TensorUse {
                    tensor: name(),
                    reason: "lives in a buffer the compute device cannot use",
                });
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
/// What the abort trampoline gets: the check and the only thread allowed to run it.
struct AbortCheck<'a> {
    thread: std::thread::ThreadId,
    check: &'a dyn Fn() -> bool,
}

/// ggml's abort callback: runs the check on its own thread, "abort" if it panics.
unsafe extern "C" fn abort_trampoline(data: *mut std::ffi::c_void) -> bool {
    if data.is_null() {
        return false;
    }
    // SAFETY: `data` is the `AbortCheck` that `compute_checked` installed and keeps alive until
    // it removes the callback after the computation.
    let check = unsafe { &*data.cast::<AbortCheck<'_>>() };
    if std::thread::current().id() != check.thread {
        return false;
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (check.check)())).unwrap_or(true)
}

enum Engine<'g> {
    Device(&'g ComputeDevice),
    Sched(NonNull<sys::ggml_backend_sched>),
}

/// An allocated graph: set its inputs, compute it, read its outputs.
///
/// Borrows the allocator (or scheduler) mutably, so the memory its tensors point to cannot be
/// reused or freed while it exists. Outputs are the tensors marked with
/// [`Tensor::set_output`] when the graph was allocated.
pub struct ComputeRun<'g, 'ctx> {
    graph: &'g Graph<'ctx>,
    engine: Engine<'g>,
    outputs: HashSet<usize>,
    computed: bool,
}

impl std::fmt::Debug for ComputeRun<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeRun")
            .field("graph", self.graph)
            .field("computed", &self.computed)
            .finish()
    }
}

impl<'g, 'ctx> ComputeRun<'g, 'ctx> {
    fn new(graph: &'g Graph<'ctx>, engine: Engine<'g>) -> Self {
        let ctx = graph.context();
        ctx.state.borrow_mut().inputs_set.clear();
        let outputs = graph
            .members
            .iter()
            .copied()
            .filter(|&k| {
                // SAFETY: members are live headers of the graph.
                let flags = unsafe { (*(k as *const sys::ggml_tensor)).flags };
                flags & sys::GGML_TENSOR_FLAG_OUTPUT as i32 != 0
            })
            .collect();
        Self {
            graph,
            engine,
            outputs,
            computed: false,
        }
    }

    fn check_input(&self, t: &Tensor<'_>, ty: GgmlType, len: usize) -> Result<()> {
        if !self.graph.contains(*t) || !t.is_leaf() || !std::ptr::eq(t.context(), self.graph.context()) {
            return Err(GgmlError::TensorUse {
                tensor: t.name(),
                reason: "is not a leaf of this graph's context",
            });
        }
        if t.ty() != ty {
            return Err(GgmlError::Type {
                op: "set_input",
                operand: "tensor",
                ty: t.type_name(),
            });
        }
        if !t.is_contiguous() || !t.is_allocated() {
            return Err(GgmlError::TensorUse {
                tensor: t.name(),
                reason: "is not a contiguous allocated tensor",
            });
        }
        let n = t.n_elements() as usize;
        if len != n {
            return Err(GgmlError::Size {
                what: "elements",
                tensor: t.name(),
                expected: n,
                actual: len,
            });
        }
        Ok(())
    }

    fn write(&self, t: &Tensor<'_>, bytes: *const u8, n: usize) {
        // SAFETY: `t` is an allocated contiguous leaf of this graph (checked by the caller) whose
        // byte size is `n`; `bytes` points to `n` readable bytes.
        unsafe { sys::ggml_backend_tensor_set(t.raw(), bytes.cast(), 0, n) };
        self.graph.context().state.borrow_mut().inputs_set.insert(t.key());
    }

    /// Uploads F32 data into an input (a leaf of the graph's context).
    ///
    /// # C equivalent
    /// `ggml_backend_tensor_set`
    pub fn set_f32(&mut self, t: Tensor<'_>, data: &[f32]) -> Result<()> {
        self.check_input(&t, GgmlType::F32, data.len())?;
        self.write(&t, data.as_ptr().cast(), std::mem::size_of_val(data));
        Ok(())
    }

    /// Uploads I32 data into an input. If the tensor indexes a `get_rows`, every value is
    /// checked against the rows of its source first.
    ///
    /// # C equivalent
    /// `ggml_backend_tensor_set`
    pub fn set_i32(&mut self, t: Tensor<'_>, data: &[i32]) -> Result<()> {
        self.check_input(&t, GgmlType::I32, data.len())?;
        let bound = self
            .graph
            .context()
            .state
            .borrow()
            .index_bounds
            .get(&t.key())
            .copied();
        if let Some(rows) = bound {
            if let Some((position, &value)) = data
                .iter()
                .enumerate()
                .find(|(_, &v)| v < 0 || i64::from(v) >= rows)
            {
                return Err(GgmlError::IndexOutOfRange {
                    tensor: t.name(),
                    value,
                    position,
                    rows,
                });
            }
        }
        self.write(&t, data.as_ptr().cast(), std::mem::size_of_val(data));
        Ok(())
    }

    /// Computes the graph. Every input leaf of the graph's context must have been set since the
    /// allocation; a panic in a custom op is returned as [`GgmlError::CustomOpPanic`].
    ///
    /// # C equivalent
    /// `ggml_backend_graph_compute` (or `ggml_backend_sched_graph_compute`)
    pub fn compute(&mut self) -> Result<()> {
        self.compute_checked(None)
    }

    /// [`ComputeRun::compute`] that stops early when `abort` returns true: ggml's CPU backend asks
    /// it between graph nodes (`ggml_backend_cpu_set_abort_callback`), so a computation ends
    /// within one node's time of the check turning true. Returns [`GgmlError::Aborted`] then.
    ///
    /// `abort` is only called on the calling thread (ggml asks from its thread 0, which is the
    /// caller); a call from any other thread is answered "go on" without running it. A panic in
    /// `abort` counts as "abort".
    ///
    /// # C equivalent
    /// `ggml_backend_cpu_set_abort_callback` around `ggml_backend_graph_compute`
    pub fn compute_until(&mut self, abort: &dyn Fn() -> bool) -> Result<()> {
        self.compute_checked(Some(abort))
    }

    fn compute_checked(&mut self, abort: Option<&dyn Fn() -> bool>) -> Result<()> {
        let ctx = self.graph.context();
        {
            let st = ctx.state.borrow();
            let own: HashSet<usize> = ctx.tensors().iter().map(|t| t.key()).collect();
            for &p in &self.graph.leafs {
                if own.contains(&(p as usize)) && !st.inputs_set.contains(&(p as usize)) {
                    // SAFETY: a live header with a NUL-terminated name.
                    let name = unsafe { std::ffi::CStr::from_ptr((*p).name.as_ptr()) }
                        .to_string_lossy()
                        .into_owned();
                    return Err(GgmlError::TensorUse {
                        tensor: name,
                        reason: "is an input that was not set since the graph was allocated",
                    });
                }
            }
        }
        ctx.take_panics();
        let check = abort.map(|check| AbortCheck {
            thread: std::thread::current().id(),
            check,
        });
        let cpus = if check.is_some() {
            self.cpu_backends()
        } else {
            Vec::new()
        };
        if let Some(check) = &check {
            for &cpu in &cpus {
                // SAFETY: `cpu` is a live CPU backend of this run's engine. The data pointer is
                // `check`, which outlives the computation below; the callback is removed again
                // before this function returns, so ggml never sees a dangling pointer.
                unsafe {
                    sys::ggml_backend_cpu_set_abort_callback(
                        cpu,
                        Some(abort_trampoline),
                        std::ptr::from_ref(check).cast_mut().cast(),
                    );
                }
            }
        }
        // SAFETY: the graph is allocated by the engine this run borrows (so its memory is
        // intact), every input was set, and every op was validated when it was built.
        let status = unsafe {
            match self.engine {
                Engine::Device(d) => sys::ggml_backend_graph_compute(d.raw(), self.graph.raw()),
                Engine::Sched(s) => sys::ggml_backend_sched_graph_compute(s.as_ptr(), self.graph.raw()),
            }
        };
        if check.is_some() {
            for &cpu in &cpus {
                // SAFETY: `cpu` is a live CPU backend; NULL callback and data remove the check.
                unsafe { sys::ggml_backend_cpu_set_abort_callback(cpu, None, std::ptr::null_mut()) };
            }
        }
        if status == sys::GGML_STATUS_ABORTED {
            return Err(GgmlError::Aborted);
        }
        if let Some((op, message)) = ctx.take_panics().into_iter().next() {
            return Err(GgmlError::CustomOpPanic { op, message });
        }
        if status != sys::GGML_STATUS_SUCCESS {
            // SAFETY: returns a static string for any status value.
            let s = unsafe { std::ffi::CStr::from_ptr(sys::ggml_status_to_string(status)) };
            return Err(GgmlError::Compute(s.to_string_lossy().into_owned()));
        }
        self.computed = true;
        Ok(())
    }

    /// The CPU backends this run computes on (the device, or the scheduler's CPU backends).
    fn cpu_backends(&self) -> Vec<sys::ggml_backend_t> {
        match self.engine {
            Engine::Device(d) => {
                if d.is_cpu() {
                    vec![d.raw()]
                } else {
                    Vec::new()
                }
            }
            Engine::Sched(s) => {
                // SAFETY: a live scheduler; indices below its backend count are valid, and
                // ggml_backend_is_cpu only reads the backend's GUID.
                unsafe {
                    let n = sys::ggml_backend_sched_get_n_backends(s.as_ptr());
                    (0..n)
                        .map(|i| sys::ggml_backend_sched_get_backend(s.as_ptr(), i))
                        .filter(|&b| !b.is_null() && sys::ggml_backend_is_cpu(b))
                        .collect()
                }
            }
        }
    }

    /// Reads an F32 output (marked with [`Tensor::set_output`] before allocation, contiguous)
    /// after [`ComputeRun::compute`].
    ///
    /// # C equivalent
    /// `ggml_backend_tensor_get`
    pub fn get_f32(&self, t: Tensor<'_>) -> Result<Vec<f32>> {
        if !self.computed {
            return Err(GgmlError::TensorUse {
                tensor: t.name(),
                reason: "read before compute",
            });
        }
        if !self.outputs.contains(&t.key()) {
            return Err(GgmlError::TensorUse {
                tensor: t.name(),
                reason: "is not an output of this graph (call set_output before allocating)",
            });
        }
        if t.ty() != GgmlType::F32 {
            return Err(GgmlError::Type {
                op: "get_f32",
                operand: "tensor",
                ty: t.type_name(),
            });
        }
        if !t.is_contiguous() || !t.is_allocated() {
            return Err(GgmlError::TensorUse {
                tensor: t.name(),
                reason: "is not a contiguous allocated tensor (use cont)",
            });
        }
        let n = t.n_elements() as usize;
        let mut out = vec![0f32; n];
        // SAFETY: `t` is an allocated contiguous F32 output of this computed graph; `out` has
        // room for exactly its `n · 4` bytes.
        unsafe { sys::ggml_backend_tensor_get(t.raw(), out.as_mut_ptr().cast(), 0, n * 4) };
        Ok(out)
    }
}
