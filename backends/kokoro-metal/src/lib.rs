//! `libkokoro_metal.dylib`: the Kokoro-82M plugin for tts-host built with ggml's Metal backend
//! (macOS only).
//!
//! The engine is `tts_backend_kokoro::KokoroBackend` with its `metal` feature (which turns on
//! `tts-ggml/metal`); this crate only gives it the file name the host looks for on macOS and
//! exports it. Cargo cannot rename a library per feature, so the CPU build
//! (`backends/kokoro-cpu`, `libkokoro_cpu.so`) and this one are two thin crates over one engine.
//!
//! ```sh
//! cargo build --release -p tts-host -p tts-backend-kokoro-metal     # on macOS
//! target/release/tts-host --model-path models/kokoro-82m-f32.gguf --use-metal
//! ```
//!
//! Build it on its own (`-p`): in a `cargo build --workspace` on macOS, feature unification gives
//! the CPU plugin Metal as well.
//!
//! On other systems the engine and Metal are not linked at all (the dependency is declared for
//! macOS only), so `cargo build --workspace` still works there; the library it produces exports a
//! backend whose constructor always fails with a message pointing to `libkokoro_cpu.so`, rather
//! than a file that looks like a plugin and is not one.
//!
//! Licence: GPL-3.0-or-later, because the engine links espeak-ng.
#![deny(unsafe_code)]

#[cfg(target_os = "macos")]
tts_backend_api::export_backend!(tts_backend_kokoro::KokoroBackend::new);

#[cfg(not(target_os = "macos"))]
mod elsewhere {
    use tts_backend_api::{
        AudioSink, Backend, BackendConfig, BackendError, BackendInfo, SynthesisRequest, VoiceInfo,
    };

    /// The Metal plugin outside macOS: a backend that cannot be constructed (the type has no
    /// values), so the host reports the constructor's message and exits.
    #[derive(Debug)]
    pub enum MetalUnavailable {}

    impl MetalUnavailable {
        /// Always refuses, naming the plugin to use instead.
        pub fn new(_config: BackendConfig) -> Result<Self, BackendError> {
            Err(BackendError::invalid_config(format!(
                "libkokoro_metal is the macOS Metal build of the Kokoro plugin and has no engine on {}; \
                 load libkokoro_cpu.so (cargo build --release -p tts-backend-kokoro-cpu) instead",
                std::env::consts::OS
            )))
        }
    }

    impl Backend for MetalUnavailable {
        fn info(&self) -> BackendInfo {
            match *self {}
        }

        fn voices(&self) -> Vec<VoiceInfo> {
            match *self {}
        }

        fn synthesize(
            &self,
            _request: &SynthesisRequest,
            _sink: &mut dyn AudioSink,
        ) -> Result<(), BackendError> {
            match *self {}
        }
    }
}

#[cfg(not(target_os = "macos"))]
tts_backend_api::export_backend!(elsewhere::MetalUnavailable::new);
