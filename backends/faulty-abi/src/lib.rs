//! A plugin that claims ABI version 0.999.0 of `tts-backend-api` with a root module of a
//! different shape. A host must refuse it with a short "incompatible version" message before any
//! of this code runs; the constructor below panics to prove it never does.
//!
//! It uses abi_stable directly (rather than `export_backend!`) because the ABI version is stamped
//! at compile time from the interface crate, and this crate must pretend to be built against
//! another one.

#![deny(unsafe_code)]
// `#[derive(StableAbi)]` expands to impls that rustc 1.95 reports as non-local.
#![allow(non_local_definitions, non_camel_case_types)]

use abi_stable::{
    declare_root_module_statics, export_root_module, library::RootModule, prefix_type::PrefixTypeTrait,
    sabi_types::VersionStrings, std_types::RStr, StableAbi,
};

/// Same names as the real root module, another layout and version.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = BackendModule_Ref)))]
#[allow(non_camel_case_types, missing_debug_implementations)]
pub struct BackendModule {
    /// Not the real constructor's signature.
    #[sabi(last_prefix_field)]
    pub new_backend: extern "C" fn(RStr<'_>) -> u64,
}

impl RootModule for BackendModule_Ref {
    declare_root_module_statics! {BackendModule_Ref}
    const BASE_NAME: &'static str = "tts_backend";
    const NAME: &'static str = "tts_backend";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("0.999.0");
}

extern "C" fn never_called(_config: RStr<'_>) -> u64 {
    0
}

/// Would run if a host accepted this plugin; it must not.
#[export_root_module]
pub fn get_library() -> BackendModule_Ref {
    panic!("the faulty-abi plugin was initialised; the host should have refused its ABI")
}

#[doc(hidden)]
pub fn unused() -> BackendModule_Ref {
    BackendModule {
        new_backend: never_called,
    }
    .leak_into_prefix()
}
