//! The plugin side of the boundary: what [`export_backend!`](crate::export_backend) expands to.
//!
//! Every call from the host into plugin code goes through [`guard`], which turns a panic into
//! [`ErrorKind::Panicked`]: abi_stable's `extern "C"` shims abort the process on unwind, so no
//! panic may ever reach them.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use abi_stable::{
    library::RootModuleResult,
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{RResult, RSlice, RStr, RString},
};

use crate::abi::{
    AbiError, AbiSinkMut, BackendModule, BackendModule_Ref, HostServicesBox, TtsBackend, TtsBackendBox,
    TtsBackend_TO,
};
use crate::{AudioSink, Backend, BackendConfig, BackendError, ErrorKind, Flow, SynthesisRequest};

/// Implemented by the zero-sized type `export_backend!` generates around the author's
/// constructor.
#[doc(hidden)]
pub trait Constructor {
    fn construct(config: BackendConfig) -> Result<Box<dyn Backend>, BackendError>;
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// Runs `f`, turning a panic into an [`ErrorKind::Panicked`] error.
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, BackendError>) -> Result<T, BackendError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(BackendError::new(
            ErrorKind::Panicked,
            format!("the backend panicked in {what}: {}", panic_message(&*payload)),
        )),
    }
}

fn to_abi<T>(r: Result<T, BackendError>) -> RResult<T, AbiError> {
    r.map_err(AbiError::from).into()
}

/// The `new_backend` function of the root module, for constructor `C`.
#[doc(hidden)]
pub extern "C" fn new_backend_shim<C: Constructor>(
    config_json: RStr<'_>,
    host: HostServicesBox,
) -> RResult<TtsBackendBox, AbiError> {
    to_abi(guard("its constructor", || {
        crate::log::install_forwarder(host);
        let config: BackendConfig = serde_json::from_str(config_json.as_str()).map_err(|e| {
            BackendError::invalid_config(format!(
                "the host sent a configuration this backend cannot read: {e}"
            ))
        })?;
        let backend = C::construct(config)?;
        Ok(TtsBackend_TO::from_value(
            Exported {
                inner: backend.into(),
            },
            TD_Opaque,
        ))
    }))
}

/// Builds the root module for constructor `C`.
#[doc(hidden)]
pub fn root_module<C: Constructor>() -> BackendModule_Ref {
    BackendModule {
        new_backend: new_backend_shim::<C>,
    }
    .leak_into_prefix()
}

/// The loader function whose address goes into the library header.
#[doc(hidden)]
pub extern "C" fn erased_root_module<C: Constructor>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(root_module::<C>)
}

/// A backend behind the ABI.
struct Exported {
    inner: Arc<dyn Backend>,
}

impl TtsBackend for Exported {
    fn info_json(&self) -> RResult<RString, AbiError> {
        to_abi(guard("info()", || {
            serde_json::to_string(&self.inner.info())
                .map(RString::from)
                .map_err(|e| BackendError::internal(format!("cannot serialise the backend info: {e}")))
        }))
    }

    fn voices_json(&self) -> RResult<RString, AbiError> {
        to_abi(guard("voices()", || {
            serde_json::to_string(&self.inner.voices())
                .map(RString::from)
                .map_err(|e| BackendError::internal(format!("cannot serialise the voice list: {e}")))
        }))
    }

    fn synthesize(&self, request_json: RStr<'_>, sink: AbiSinkMut<'_>) -> RResult<(), AbiError> {
        to_abi(guard("synthesize()", || {
            let request: SynthesisRequest = serde_json::from_str(request_json.as_str())
                .map_err(|e| BackendError::invalid_input(format!("malformed request from the host: {e}")))?;
            let mut sink = PluginSink { sink, stopped: false };
            self.inner.synthesize(&request, &mut sink)
        }))
    }
}

/// The host's sink wrapped back into the Rust [`AudioSink`] trait.
struct PluginSink<'a> {
    sink: AbiSinkMut<'a>,
    stopped: bool,
}

impl AudioSink for PluginSink<'_> {
    fn push(&mut self, samples: &[f32]) -> Flow {
        // After a stop, further audio is dropped here, so the host never sees it.
        if self.stopped {
            return Flow::Stop;
        }
        if self.sink.push(RSlice::from_slice(samples)) {
            Flow::Continue
        } else {
            self.stopped = true;
            Flow::Stop
        }
    }

    fn is_cancelled(&self) -> bool {
        self.stopped || self.sink.is_cancelled()
    }
}

/// Exports a [`Backend`] from a `cdylib` crate so that `tts-host --backend` can load it.
///
/// Pass a constructor `fn(BackendConfig) -> Result<B, BackendError>` where `B: Backend + 'static`:
///
/// ```ignore
/// tts_backend_api::export_backend!(MyBackend::new);
/// ```
///
/// Use it once per crate, at the top level. It generates the library's one exported symbol
/// (abi_stable's root-module header, stamped with this crate's version as the ABI version), and
/// wraps every call so that a panic becomes an [`ErrorKind::Panicked`] error for that call.
/// The generated items carry `#[allow(unsafe_code)]`, so the plugin crate can keep
/// `#![deny(unsafe_code)]`.
#[macro_export]
macro_rules! export_backend {
    ($constructor:expr) => {
        #[doc(hidden)]
        #[allow(non_camel_case_types, missing_debug_implementations)]
        pub struct __TtsBackendConstructor;

        impl $crate::__private::Constructor for __TtsBackendConstructor {
            fn construct(
                config: $crate::BackendConfig,
            ) -> ::std::result::Result<::std::boxed::Box<dyn $crate::Backend>, $crate::BackendError> {
                let backend = ($constructor)(config)?;
                ::std::result::Result::Ok(::std::boxed::Box::new(backend))
            }
        }

        /// abi_stable's library header: the only symbol this library exports.
        #[doc(hidden)]
        #[allow(unsafe_code, non_upper_case_globals)]
        #[no_mangle]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::__private::LibHeader = {
            // SAFETY: the header is built from the root-module type this crate defines
            // (`BackendModule_Ref`) and a loader that returns exactly that type, which is what
            // `from_constructor` requires; the layout is checked by the loading host.
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::__private::BackendModule_Ref>(
                    $crate::__private::erased_root_module::<__TtsBackendConstructor>,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}
