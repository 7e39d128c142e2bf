//! The types that cross the plugin boundary. Backend authors never touch this module: they
//! implement [`Backend`](crate::Backend) and call [`export_backend!`](crate::export_backend).
//!
//! Everything here is `#[repr(C)]` and checked by abi_stable when a plugin loads. Structured data
//! (info, voices, requests, configuration) crosses as JSON text so that fields can be appended
//! without a layout change; audio crosses as `RSlice<f32>`; errors as a numeric kind plus text.
//!
//! The rules (also in the crate docs): fields and methods are only ever appended, each with
//! `#[sabi(last_prefix_field)]` staying on the first release's last item; `Send + Sync` on
//! [`TtsBackend`] is fixed forever; only `R*` types cross; libraries are never unloaded.

// `#[sabi_trait]` and `#[derive(StableAbi)]` expand to `unsafe` code and impls whose spans land in
// this module, and rustc 1.95 reports the generated impls as `non_local_definitions`.
#![allow(
    unsafe_code,
    non_local_definitions,
    non_camel_case_types,
    missing_docs,
    missing_debug_implementations
)]
#![allow(clippy::undocumented_unsafe_blocks)]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RSlice, RStr, RString},
    StableAbi,
};

use crate::{BackendError, ErrorKind};

/// An error as it crosses the boundary: [`ErrorKind::code`] plus the message.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct AbiError {
    pub kind: u32,
    pub message: RString,
}

impl From<BackendError> for AbiError {
    fn from(e: BackendError) -> Self {
        Self {
            kind: e.kind.code(),
            message: e.message.into(),
        }
    }
}

impl From<AbiError> for BackendError {
    fn from(e: AbiError) -> Self {
        BackendError::new(ErrorKind::from_code(e.kind), e.message.into_string())
    }
}

/// The host side of an [`AudioSink`](crate::AudioSink), as the plugin sees it.
#[sabi_trait]
pub trait AbiSink {
    /// Pushes a chunk; `true` means continue, `false` means stop.
    fn push(&mut self, samples: RSlice<'_, f32>) -> bool;

    /// Whether the request has been cancelled.
    #[sabi(last_prefix_field)]
    fn is_cancelled(&self) -> bool;
}

/// A borrowed sink for the duration of one `synthesize` call.
pub type AbiSinkMut<'a> = AbiSink_TO<'a, abi_stable::sabi_types::RMut<'a, ()>>;

/// Services the host offers every plugin.
#[sabi_trait]
pub trait HostServices: Send + Sync {
    /// Most verbose level the host records (1 error … 5 trace); plugins skip finer events.
    fn max_level(&self) -> u8;

    /// Records one log event from the plugin (`level`: 1 error, 2 warn, 3 info, 4 debug, 5 trace).
    #[sabi(last_prefix_field)]
    fn log(&self, level: u8, target: RStr<'_>, message: RStr<'_>);
}

/// The host services handle owned by a plugin.
pub type HostServicesBox = HostServices_TO<'static, RBox<()>>;

/// One backend instance, as the host sees it.
#[sabi_trait]
pub trait TtsBackend: Send + Sync {
    /// [`BackendInfo`](crate::BackendInfo) as JSON.
    fn info_json(&self) -> RResult<RString, AbiError>;

    /// `Vec<`[`VoiceInfo`](crate::VoiceInfo)`>` as JSON.
    fn voices_json(&self) -> RResult<RString, AbiError>;

    /// Runs a [`SynthesisRequest`](crate::SynthesisRequest) given as JSON.
    #[sabi(last_prefix_field)]
    fn synthesize(&self, request_json: RStr<'_>, sink: AbiSinkMut<'_>) -> RResult<(), AbiError>;
}

/// An owned backend instance.
pub type TtsBackendBox = TtsBackend_TO<'static, RBox<()>>;

/// The root module of a backend plugin.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = BackendModule_Ref)))]
#[sabi(missing_field(panic))]
pub struct BackendModule {
    /// Creates one backend instance from its configuration (JSON) and the host's services.
    #[sabi(last_prefix_field)]
    pub new_backend: extern "C" fn(
        config_json: RStr<'_>,
        host: HostServices_TO<'static, RBox<()>>,
    ) -> RResult<TtsBackend_TO<'static, RBox<()>>, AbiError>,
}

impl RootModule for BackendModule_Ref {
    declare_root_module_statics! {BackendModule_Ref}
    const BASE_NAME: &'static str = "tts_backend";
    const NAME: &'static str = "tts_backend";
    // The ABI version is this crate's version: 0.y must match exactly, x.* for x >= 1.
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The exported symbol's name for abi_stable 0.11; `export_backend!` spells it out because a
/// macro cannot compute an identifier. A test checks it against abi_stable's constant.
#[doc(hidden)]
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

#[cfg(test)]
mod tests {
    #[test]
    fn root_module_symbol_matches_abi_stable() {
        assert_eq!(
            super::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
