//! Safe wrapper over ggml (as bundled by `llama-cpp-sys-2`) for tts-host backends.
//!
//! All of the workspace's `unsafe` for ggml lives in this crate. The pieces:
//!
//! * [`Context`]: an arena of tensor headers (`ggml_context`, always `no_alloc`), sized by
//!   [`ContextParams`]; [`Tensor<'ctx>`] handles borrow it.
//! * Ops are methods on [`Context`] ([`Context::mul_mat`], [`Context::conv_1d`], ...) returning
//!   `Result<Tensor, GgmlError>`: every shape, type and layout that ggml would `GGML_ASSERT` (which
//!   aborts the process) is checked in Rust first.
//! * [`Graph`]: `ggml_cgraph` with a checked node capacity.
//! * [`ComputeDevice`]: a ggml backend (`ggml_backend_t`): CPU with a thread count, or any
//!   registered device (Metal with the `metal` feature) through the backend API.
//! * [`Weights`] ([`WeightsBuilder`]): named weights in a device buffer, uploaded or wrapping host
//!   memory without a copy on the CPU; `Send + Sync`, shared by per-request graphs.
//! * [`GraphAllocator`] / [`Scheduler`] allocate per-request graphs and give a [`ComputeRun`] to
//!   set inputs, compute and read outputs.
//! * Custom ops with safe closures ([`Context::map_custom1`], [`Context::custom`], [`Split`]).
//! * ggml's log goes to `tracing` with target `ggml` ([`log::install`]).
//!
//! ```
//! use tts_ggml::*;
//! let dev = ComputeDevice::cpu(2)?;
//! let ctx = Context::new(ContextParams::default().with_n_tensors(8).with_graphs(1, 16))?;
//! let a = ctx.new_tensor_2d(GgmlType::F32, 2, 2)?.set_name("a")?.set_input()?;
//! let b = ctx.new_tensor_2d(GgmlType::F32, 2, 1)?.set_name("b")?.set_input()?;
//! let y = ctx.mul_mat(a, b)?.set_output()?; // y[i] = Σ_k a[k, i]·b[k]
//! let mut graph = ctx.new_graph(16)?;
//! graph.build_forward_expand(y)?;
//! let mut alloc = GraphAllocator::new(&dev)?;
//! let mut run = alloc.alloc(&graph)?;
//! run.set_f32(a, &[1.0, 2.0, 3.0, 4.0])?; // rows (ne0 fastest): [1, 2], [3, 4]
//! run.set_f32(b, &[1.0, 1.0])?;
//! run.compute()?;
//! assert_eq!(run.get_f32(y)?, vec![3.0, 7.0]);
//! # Ok::<(), GgmlError>(())
//! ```
#![allow(unsafe_code)] // the FFI crate: every block carries a `// SAFETY:` comment
#![warn(missing_docs)]

mod compute;
mod context;
mod conv;
mod custom;
mod device;
mod error;
mod graph;
pub mod log;
mod ops;
mod types;
mod weights;

#[cfg(test)]
mod tests;

/// The raw bindings, for this crate only.
use llama_cpp_sys_2 as sys;

pub use compute::{ComputeRun, GraphAllocator, Scheduler};
pub use context::{Context, ContextParams, Tensor, MAX_NAME_LEN};
pub use custom::{CustomArgs, Split, SrcView};
pub use device::{ComputeDevice, DeviceKind};
pub use error::{GgmlError, Result};
pub use graph::Graph;
pub use ops::ScaleMode;
pub use types::GgmlType;
pub use weights::{Weights, WeightsBuilder, HOST_ALIGNMENT};

/// Version of the ggml bundled by the pinned `llama-cpp-sys-2` (`ggml/CMakeLists.txt`).
pub const GGML_VERSION: &str = "0.26.0";

/// The pinned `llama-cpp-sys-2` version (the manifest pins it with `=`).
pub const LLAMA_CPP_SYS_VERSION: &str = "0.1.161";

/// The version string compiled into the linked ggml.
///
/// # C equivalent
/// `ggml_version`
pub fn ggml_runtime_version() -> String {
    // SAFETY: returns a static NUL-terminated string.
    let p = unsafe { sys::ggml_version() };
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-NULL static C string.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// C macros that bindgen does not export (it only allowlists lower-case `ggml_*` items).
pub(crate) mod consts {
    /// `GGML_MAX_SRC`.
    pub const MAX_SRC: usize = 10;
    /// `GGML_MEM_ALIGN` on 64-bit targets.
    pub const MEM_ALIGN: usize = if cfg!(target_pointer_width = "32") { 4 } else { 16 };
    /// `GGML_DEFAULT_GRAPH_SIZE`.
    pub const DEFAULT_GRAPH_SIZE: usize = 2048;
    /// `GGML_N_TASKS_MAX`.
    pub const N_TASKS_MAX: i32 = -1;
    /// `GGML_MAX_N_THREADS`.
    pub const MAX_N_THREADS: usize = 512;
    /// `GGML_SCHED_MAX_BACKENDS`.
    pub const SCHED_MAX_BACKENDS: usize = 16;
}
