//! Compute devices: ggml's `ggml_backend_t` (called `ComputeDevice` here because "backend"
//! means a tts-host plugin).

use std::ffi::{CStr, CString};
use std::ptr::NonNull;

use crate::context::Tensor;
use crate::error::{GgmlError, Result};
use crate::sys;

/// The kind of a [`ComputeDevice`] (`enum ggml_backend_dev_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// The CPU backend.
    Cpu,
    /// A discrete GPU (Metal, CUDA, Vulkan...).
    Gpu,
    /// An integrated GPU.
    IntegratedGpu,
    /// An accelerator (e.g. BLAS) used next to the CPU.
    Accelerator,
    /// Anything else ggml reports.
    Other,
}

/// An initialised ggml compute device (`ggml_backend_t`), freed on drop.
///
/// Graph code goes through the backend API only (`ggml_backend_graph_compute`,
/// `ggml_backend_tensor_set/get`, buffers of the device's buffer type), so the same graph runs on
/// any device; [`ComputeDevice::cpu`] and [`ComputeDevice::by_kind`] only change which device is
/// initialised.
pub struct ComputeDevice {
    raw: NonNull<sys::ggml_backend>,
    n_threads: Option<usize>,
}

// SAFETY: a ggml backend object has no thread affinity: ggml-backend.h lets any thread call it as
// long as calls on one backend are not concurrent (its compute/threadpool state is per backend,
// not thread-local). `ComputeDevice` is not `Sync` (NonNull), and every call takes `&self` from
// one thread at a time, or `&mut self` for configuration.
unsafe impl Send for ComputeDevice {}

impl std::fmt::Debug for ComputeDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeDevice")
            .field("name", &self.name())
            .field("n_threads", &self.n_threads)
            .finish()
    }
}

impl ComputeDevice {
    /// The CPU backend with `n_threads` worker threads (ggml's own thread pool; OpenMP is off).
    ///
    /// # C equivalent
    /// `ggml_backend_cpu_init` + `ggml_backend_cpu_set_n_threads`
    pub fn cpu(n_threads: usize) -> Result<Self> {
        crate::log::install();
        if n_threads == 0 || n_threads > crate::consts::MAX_N_THREADS {
            return Err(GgmlError::Device(format!(
                "thread count {n_threads} must be in 1..={}",
                crate::consts::MAX_N_THREADS
            )));
        }
        // SAFETY: no preconditions; returns NULL on failure.
        let raw = unsafe { sys::ggml_backend_cpu_init() };
        let raw =
            NonNull::new(raw).ok_or_else(|| GgmlError::Device("ggml_backend_cpu_init failed".into()))?;
        let mut dev = Self { raw, n_threads: None };
        dev.set_n_threads(n_threads)?;
        Ok(dev)
    }

    /// The first device of `kind` registered in this build (for example `DeviceKind::Gpu` is
    /// Metal when built with the `metal` feature), initialised through the registry.
    ///
    /// # C equivalent
    /// `ggml_backend_init_by_type(type, NULL)`
    pub fn by_kind(kind: DeviceKind) -> Result<Self> {
        crate::log::install();
        let ty = match kind {
            DeviceKind::Cpu => sys::GGML_BACKEND_DEVICE_TYPE_CPU,
            DeviceKind::Gpu => sys::GGML_BACKEND_DEVICE_TYPE_GPU,
            DeviceKind::IntegratedGpu => sys::GGML_BACKEND_DEVICE_TYPE_IGPU,
            DeviceKind::Accelerator => sys::GGML_BACKEND_DEVICE_TYPE_ACCEL,
            DeviceKind::Other => return Err(GgmlError::Device("cannot initialise DeviceKind::Other".into())),
        };
        // SAFETY: valid enum value and NULL params; returns NULL when no such device exists.
        let raw = unsafe { sys::ggml_backend_init_by_type(ty, std::ptr::null()) };
        let raw = NonNull::new(raw)
            .ok_or_else(|| GgmlError::Device(format!("no {kind:?} device in this build")))?;
        Ok(Self { raw, n_threads: None })
    }

    /// A device by its registry name (`"CPU"`, `"Metal"`, ...).
    ///
    /// # C equivalent
    /// `ggml_backend_init_by_name(name, NULL)`
    pub fn by_name(name: &str) -> Result<Self> {
        crate::log::install();
        let c = CString::new(name)
            .map_err(|_| GgmlError::Device(format!("device name {name:?} contains NUL")))?;
        // SAFETY: NUL-terminated name and NULL params; returns NULL when not found.
        let raw = unsafe { sys::ggml_backend_init_by_name(c.as_ptr(), std::ptr::null()) };
        let raw = NonNull::new(raw).ok_or_else(|| GgmlError::Device(format!("no device named {name:?}")))?;
        Ok(Self { raw, n_threads: None })
    }

    /// The Metal GPU (only with the `metal` feature).
    #[cfg(feature = "metal")]
    pub fn metal() -> Result<Self> {
        Self::by_kind(DeviceKind::Gpu)
    }

    /// Names of all devices compiled into this build.
    ///
    /// # C equivalent
    /// `ggml_backend_dev_count` / `ggml_backend_dev_get` / `ggml_backend_dev_name`
    pub fn available() -> Vec<String> {
        // SAFETY: registry enumeration has no preconditions; names are static C strings.
        let n = unsafe { sys::ggml_backend_dev_count() };
        (0..n)
            .filter_map(|i| {
                // SAFETY: `i < count`.
                let d = unsafe { sys::ggml_backend_dev_get(i) };
                if d.is_null() {
                    return None;
                }
                // SAFETY: a registered device; its name is a static NUL-terminated string.
                let p = unsafe { sys::ggml_backend_dev_name(d) };
                (!p.is_null()).then(|| {
                    // SAFETY: non-NULL and NUL-terminated (checked / documented above).
                    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
                })
            })
            .collect()
    }

    pub(crate) fn raw(&self) -> *mut sys::ggml_backend {
        self.raw.as_ptr()
    }

    /// The device's name.
    ///
    /// # C equivalent
    /// `ggml_backend_name`
    pub fn name(&self) -> String {
        // SAFETY: live backend; the name is a NUL-terminated string owned by the backend.
        let p = unsafe { sys::ggml_backend_name(self.raw()) };
        if p.is_null() {
            return String::new();
        }
        // SAFETY: non-NULL, NUL-terminated, alive while the backend is.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// The device kind.
    ///
    /// # C equivalent
    /// `ggml_backend_dev_type(ggml_backend_get_device(backend))`
    pub fn kind(&self) -> DeviceKind {
        // SAFETY: live backend; every backend has a device.
        let dev = unsafe { sys::ggml_backend_get_device(self.raw()) };
        if dev.is_null() {
            return DeviceKind::Other;
        }
        // SAFETY: a live device handle.
        match unsafe { sys::ggml_backend_dev_type(dev) } {
            sys::GGML_BACKEND_DEVICE_TYPE_CPU => DeviceKind::Cpu,
            sys::GGML_BACKEND_DEVICE_TYPE_GPU => DeviceKind::Gpu,
            sys::GGML_BACKEND_DEVICE_TYPE_IGPU => DeviceKind::IntegratedGpu,
            sys::GGML_BACKEND_DEVICE_TYPE_ACCEL => DeviceKind::Accelerator,
            _ => DeviceKind::Other,
        }
    }

    /// Whether this is ggml's CPU backend.
    ///
    /// # C equivalent
    /// `ggml_backend_is_cpu`
    pub fn is_cpu(&self) -> bool {
        // SAFETY: live backend; compares its GUID.
        unsafe { sys::ggml_backend_is_cpu(self.raw()) }
    }

    /// Sets the CPU thread count (CPU devices only).
    ///
    /// # C equivalent
    /// `ggml_backend_cpu_set_n_threads`
    pub fn set_n_threads(&mut self, n_threads: usize) -> Result<()> {
        if !self.is_cpu() {
            return Err(GgmlError::Device(format!(
                "{} is not the CPU device; thread count applies to the CPU only",
                self.name()
            )));
        }
        if n_threads == 0 || n_threads > crate::consts::MAX_N_THREADS {
            return Err(GgmlError::Device(format!(
                "thread count {n_threads} must be in 1..={}",
                crate::consts::MAX_N_THREADS
            )));
        }
        // SAFETY: a live CPU backend (checked) and a thread count in 1..=GGML_MAX_N_THREADS.
        unsafe { sys::ggml_backend_cpu_set_n_threads(self.raw(), n_threads as i32) };
        self.n_threads = Some(n_threads);
        Ok(())
    }

    /// The CPU thread count, if this is the CPU device.
    pub fn n_threads(&self) -> Option<usize> {
        self.n_threads
    }

    /// Whether the device can run the op that produces `t` (the scheduler sends unsupported
    /// ops, such as custom ops on a GPU, to the CPU).
    ///
    /// # C equivalent
    /// `ggml_backend_supports_op`
    pub fn supports_op(&self, t: Tensor<'_>) -> bool {
        // SAFETY: live backend and tensor header; the query only reads the header.
        unsafe { sys::ggml_backend_supports_op(self.raw(), t.raw()) }
    }

    /// Whether the device's buffers are host memory (and host pointers can be wrapped).
    ///
    /// # C equivalent
    /// `ggml_backend_buft_is_host(ggml_backend_get_default_buffer_type(backend))`
    pub fn is_host(&self) -> bool {
        // SAFETY: live backend; its default buffer type is static.
        unsafe { sys::ggml_backend_buft_is_host(sys::ggml_backend_get_default_buffer_type(self.raw())) }
    }
}

impl Drop for ComputeDevice {
    /// # C equivalent
    /// `ggml_backend_free`
    fn drop(&mut self) {
        // SAFETY: freed exactly once; buffers and allocators that use the device borrow it, so
        // none outlives it.
        unsafe { sys::ggml_backend_free(self.raw()) }
    }
}
