//! Model weights: a frozen context of named tensors whose data lives in a device buffer, either
//! allocated and uploaded, or (on the CPU) wrapping host memory without a copy.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::context::{Context, ContextParams, Tensor, MAX_NAME_LEN};
use crate::device::{ComputeDevice, DeviceKind};
use crate::error::{GgmlError, Result};
use crate::sys;
use crate::types::GgmlType;

/// ggml's CPU tensor alignment (`TENSOR_ALIGNMENT` in ggml-backend.cpp): host memory wrapped
/// without a copy must start, and every tensor in it must start, on this boundary. GGUF files
/// align tensor data to 32 bytes by default.
pub const HOST_ALIGNMENT: usize = 32;

#[derive(Debug)]
struct Spec {
    name: String,
    ty: GgmlType,
    ne: Vec<i64>,
    offset: Option<usize>,
}

/// Collects weight declarations (name, type, shape, optional offset into host data) and turns
/// them into [`Weights`].
#[derive(Debug, Default)]
pub struct WeightsBuilder {
    specs: Vec<Spec>,
    index: HashMap<String, usize>,
}

impl WeightsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a weight. Names must be unique, non-empty and at most 63 bytes.
    pub fn add(&mut self, name: &str, ty: GgmlType, ne: &[i64]) -> Result<&mut Self> {
        self.push(name, ty, ne, None)
    }

    /// Declares a weight whose data starts `offset` bytes into the host data given to
    /// [`WeightsBuilder::wrap_host`].
    pub fn add_at(&mut self, name: &str, ty: GgmlType, ne: &[i64], offset: usize) -> Result<&mut Self> {
        self.push(name, ty, ne, Some(offset))
    }

    fn push(&mut self, name: &str, ty: GgmlType, ne: &[i64], offset: Option<usize>) -> Result<&mut Self> {
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains('\0') {
            return Err(GgmlError::Name {
                name: name.to_owned(),
                reason: "weight names must be 1..=63 bytes without NUL",
            });
        }
        if self.index.contains_key(name) {
            return Err(GgmlError::Name {
                name: name.to_owned(),
                reason: "declared twice",
            });
        }
        self.index.insert(name.to_owned(), self.specs.len());
        self.specs.push(Spec {
            name: name.to_owned(),
            ty,
            ne: ne.to_vec(),
            offset,
        });
        Ok(self)
    }

    fn build_context(&self) -> Result<(Context, HashMap<String, NonNull<sys::ggml_tensor>>)> {
        if self.specs.is_empty() {
            return Err(GgmlError::Argument {
                op: "weights",
                detail: "no tensors declared".into(),
            });
        }
        let ctx = Context::new(
            ContextParams::default()
                .with_n_tensors(self.specs.len())
                .with_graphs(0, 1),
        )?;
        let mut map = HashMap::new();
        for s in &self.specs {
            let t = ctx.new_tensor(s.ty, &s.ne)?.set_name(&s.name)?;
            map.insert(
                s.name.clone(),
                NonNull::new(t.raw()).ok_or_else(|| GgmlError::Alloc("NULL tensor".into()))?,
            );
        }
        Ok((ctx, map))
    }

    /// Allocates every weight in one buffer on `device`, zero-filled; fill it with
    /// [`Weights::upload`].
    ///
    /// # C equivalent
    /// `ggml_backend_alloc_ctx_tensors` + `ggml_backend_buffer_clear(buf, 0)`
    pub fn allocate(self, device: &ComputeDevice) -> Result<Weights<'static>> {
        let (ctx, by_name) = self.build_context()?;
        // SAFETY: live context whose tensors all lack data; live backend. Returns NULL on
        // failure.
        let buf = unsafe { sys::ggml_backend_alloc_ctx_tensors(ctx.raw(), device.raw()) };
        let buffer = NonNull::new(buf)
            .ok_or_else(|| GgmlError::Alloc("ggml_backend_alloc_ctx_tensors failed".into()))?;
        // SAFETY: a live buffer we own.
        unsafe { sys::ggml_backend_buffer_clear(buffer.as_ptr(), 0) };
        ctx.freeze();
        Ok(Weights {
            ctx,
            buffer,
            by_name,
            writable: true,
            _owner: None,
            _data: PhantomData,
        })
    }

    /// Places every weight directly in `data` (at the offsets given to
    /// [`WeightsBuilder::add_at`]) without copying: the returned weights borrow `data`.
    /// CPU devices only; `data` and every tensor must be [`HOST_ALIGNMENT`]-aligned and in
    /// bounds. The weights are read-only ([`Weights::upload`] fails).
    ///
    /// # C equivalent
    /// `ggml_backend_cpu_buffer_from_ptr` + `ggml_backend_tensor_alloc` per tensor
    pub fn wrap_host<'a>(self, device: &ComputeDevice, data: &'a [u8]) -> Result<Weights<'a>> {
        // SAFETY (of the lifetime): the returned `Weights<'a>` cannot outlive `data`.
        self.wrap_host_inner(device, data, None)
    }

    /// Like [`WeightsBuilder::wrap_host`], but keeps `owner` (e.g. an `Arc` of a memory-mapped
    /// GGUF file) alive inside the weights instead of borrowing, so the weights are `'static`.
    /// `region` picks the bytes from the owner; it is called once.
    pub fn wrap_host_owned<O>(
        self,
        device: &ComputeDevice,
        owner: Arc<O>,
        region: impl FnOnce(&O) -> &[u8],
    ) -> Result<Weights<'static>>
    where
        O: Send + Sync + 'static,
    {
        let bytes = region(&owner);
        let (ptr, len) = (bytes.as_ptr(), bytes.len());
        // SAFETY: the slice came from `&O` behind an `Arc` we keep (as `_owner`) for the whole
        // life of the weights. `O` is only ever reachable through shared references while the
        // `Arc` exists (no `&mut O`: `Arc::get_mut` needs the count to be 1, and we hold one), so
        // a sound `O` cannot free or move the memory it lent out through `&self` (that would
        // invalidate outstanding shared borrows, which a safe API cannot know about), and the
        // `Arc` keeps `O` itself in place. Hence the bytes stay valid and unchanged for as long
        // as `_owner` lives, which is as long as the buffer does.
        let data: &'static [u8] = unsafe { std::slice::from_raw_parts(ptr, len) };
        let keep: Arc<dyn Any + Send + Sync> = owner;
        self.wrap_host_inner(device, data, Some(keep))
    }

    fn wrap_host_inner<'a>(
        self,
        device: &ComputeDevice,
        data: &'a [u8],
        owner: Option<Arc<dyn Any + Send + Sync>>,
    ) -> Result<Weights<'a>> {
        if device.kind() != DeviceKind::Cpu || !device.is_host() {
            return Err(GgmlError::Device(format!(
                "{} cannot wrap host memory; use allocate + upload",
                device.name()
            )));
        }
        if data.is_empty() || !(data.as_ptr() as usize).is_multiple_of(HOST_ALIGNMENT) {
            return Err(GgmlError::Argument {
                op: "wrap_host",
                detail: format!("host data must be non-empty and {HOST_ALIGNMENT}-byte aligned"),
            });
        }
        let (ctx, by_name) = self.build_context()?;
        // SAFETY: `data` is a live, aligned (checked), non-empty region that outlives the buffer
        // (lifetime `'a`, or kept alive by `owner`); the CPU from-ptr buffer never frees it and
        // this crate never writes through it (uploads are refused for wrapped weights and no
        // wrapped op writes to a leaf).
        let buf = unsafe {
            sys::ggml_backend_cpu_buffer_from_ptr(data.as_ptr() as *mut std::ffi::c_void, data.len())
        };
        let buffer = NonNull::new(buf)
            .ok_or_else(|| GgmlError::Alloc("ggml_backend_cpu_buffer_from_ptr failed".into()))?;
        let weights = Weights {
            ctx,
            buffer,
            by_name,
            writable: false,
            _owner: owner,
            _data: PhantomData,
        };
        for s in &self.specs {
            let off = s.offset.ok_or_else(|| GgmlError::Argument {
                op: "wrap_host",
                detail: format!("weight {:?} has no offset (use add_at)", s.name),
            })?;
            let t = weights.tensor(&s.name)?;
            let n = t.n_bytes();
            if off % HOST_ALIGNMENT != 0 || off.checked_add(n).is_none_or(|end| end > data.len()) {
                return Err(GgmlError::Size {
                    what: "bytes (offset + size within the aligned host data)",
                    tensor: s.name.clone(),
                    expected: data.len(),
                    actual: off.saturating_add(n),
                });
            }
            // SAFETY: the tensor has no buffer, data or view source yet (fresh in our context);
            // `base + off .. base + off + nbytes` lies inside the buffer (checked above), which
            // is ggml_backend_tensor_alloc's assertion.
            let status = unsafe {
                sys::ggml_backend_tensor_alloc(
                    buffer.as_ptr(),
                    t.raw(),
                    data.as_ptr().add(off) as *mut std::ffi::c_void,
                )
            };
            if status != sys::GGML_STATUS_SUCCESS {
                return Err(GgmlError::Alloc(format!(
                    "ggml_backend_tensor_alloc failed for {:?}",
                    s.name
                )));
            }
        }
        weights.ctx.freeze();
        Ok(weights)
    }
}

/// Named weight tensors with their data on a device, shared read-only by every graph that uses
/// them (`Weights: Send + Sync`; put them in an `Arc`). Tensors borrowed from it cannot outlive
/// it, and `'data` ties wrapped host memory to its owner.
pub struct Weights<'data> {
    ctx: Context,
    buffer: NonNull<sys::ggml_backend_buffer>,
    by_name: HashMap<String, NonNull<sys::ggml_tensor>>,
    writable: bool,
    _owner: Option<Arc<dyn Any + Send + Sync>>,
    _data: PhantomData<&'data [u8]>,
}

// SAFETY: after construction the weights' context is frozen: no op is ever built in it, tensor
// mutators (`set_name`, `set_input`, `set_output`) refuse frozen tensors, and its side tables are
// never touched (get_rows indices and custom ops must belong to the graph's own context). Graph
// building and compute in other contexts only *read* these headers (every weight is named, so
// ggml's graph walk never writes a `leaf_%d` name into them, and allocated leafs are never
// re-initialised by ggml-alloc or the scheduler). Data is written only by `upload(&mut self)`.
// The device buffer has no thread affinity, and the owner is `Send + Sync`.
unsafe impl Send for Weights<'_> {}
// SAFETY: see `Send`: every `&self` method is read-only with respect to ggml state.
unsafe impl Sync for Weights<'_> {}

impl std::fmt::Debug for Weights<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weights")
            .field("n_tensors", &self.by_name.len())
            .field("buffer_size", &self.buffer_size())
            .field("writable", &self.writable)
            .finish()
    }
}

impl Weights<'_> {
    /// The weight called `name`.
    pub fn tensor(&self, name: &str) -> Result<Tensor<'_>> {
        let p = self
            .by_name
            .get(name)
            .ok_or_else(|| GgmlError::UnknownTensor(name.to_owned()))?;
        self.ctx.wrap("weights", p.as_ptr())
    }

    /// Number of weights.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether there are no weights (never true for constructed weights).
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Size of the device buffer in bytes.
    ///
    /// # C equivalent
    /// `ggml_backend_buffer_get_size`
    pub fn buffer_size(&self) -> usize {
        // SAFETY: live buffer.
        unsafe { sys::ggml_backend_buffer_get_size(self.buffer.as_ptr()) }
    }

    /// Copies `bytes` (exactly the tensor's `n_bytes`, in ggml's layout for its type, as stored
    /// in GGUF) into the weight `name`.
    ///
    /// # C equivalent
    /// `ggml_backend_tensor_set`
    pub fn upload(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(GgmlError::TensorUse {
                tensor: name.to_owned(),
                reason: "belongs to weights wrapping read-only host memory",
            });
        }
        let t = self.tensor(name)?;
        let n = t.n_bytes();
        if bytes.len() != n {
            return Err(GgmlError::Size {
                what: "bytes",
                tensor: name.to_owned(),
                expected: n,
                actual: bytes.len(),
            });
        }
        // SAFETY: `t` is allocated in our buffer (allocate) and contiguous (fresh tensor);
        // exactly `n` bytes are read from `bytes`. `&mut self` excludes concurrent graph reads.
        unsafe { sys::ggml_backend_tensor_set(t.raw(), bytes.as_ptr().cast(), 0, n) };
        Ok(())
    }

    /// Copies F32 values into the F32 weight `name` (a convenience over [`Weights::upload`]).
    pub fn upload_f32(&mut self, name: &str, values: &[f32]) -> Result<()> {
        let t = self.tensor(name)?;
        if t.ty() != GgmlType::F32 {
            return Err(GgmlError::Type {
                op: "upload_f32",
                operand: "weight",
                ty: t.type_name(),
            });
        }
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        self.upload(name, &bytes)
    }

    /// Reads a weight back as bytes (for tests and checks).
    ///
    /// # C equivalent
    /// `ggml_backend_tensor_get`
    pub fn download(&self, name: &str) -> Result<Vec<u8>> {
        let t = self.tensor(name)?;
        let mut out = vec![0u8; t.n_bytes()];
        // SAFETY: `t` is an allocated contiguous weight; `out` has room for all its bytes.
        unsafe { sys::ggml_backend_tensor_get(t.raw(), out.as_mut_ptr().cast(), 0, out.len()) };
        Ok(out)
    }
}

impl Drop for Weights<'_> {
    /// # C equivalent
    /// `ggml_backend_buffer_free` (then `ggml_free` of the context)
    fn drop(&mut self) {
        // SAFETY: freed once; tensors borrowed from `self` (and graphs using them) cannot outlive
        // it. The context is dropped after this, and freeing a from-ptr buffer leaves the host
        // memory alone.
        unsafe { sys::ggml_backend_buffer_free(self.buffer.as_ptr()) }
    }
}
