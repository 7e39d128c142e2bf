//! `libkokoro_cpu.so`: the Kokoro-82M plugin for tts-host, computing on the CPU.
//!
//! The engine is [`tts_backend_kokoro::KokoroBackend`]; this crate only gives it the file name
//! the host loads by default (`libkokoro_cpu.so` beside the `tts-host` binary) and exports it.
//! Cargo names a library after its crate and cannot rename it per feature, so the CPU and Metal
//! builds are two thin crates over one engine crate: this one, and `backends/kokoro-metal`
//! (`libkokoro_metal.dylib`, macOS).
//!
//! ```sh
//! cargo build --release -p tts-host -p tts-backend-kokoro-cpu
//! target/release/tts-host --model-path models/kokoro-82m-f32.gguf   # finds libkokoro_cpu.so
//! ```
//!
//! The library exports exactly one dynamic symbol, abi_stable's root-module header; ggml and the
//! Rust code linked into it stay private (checked by `tests/tests/plugin_symbols.rs`).
//!
//! Licence: GPL-3.0-or-later, because the engine links espeak-ng.
#![deny(unsafe_code)]

tts_backend_api::export_backend!(tts_backend_kokoro::KokoroBackend::new);
