//! Kokoro-82M backend for tts-host.
//!
//! The pieces: the model file ([`model_file`]: open a TTS.cpp-layout GGUF through `tts-gguf`,
//! check every tensor and voice), the tensor-name table ([`weights`]) and hyper-parameters
//! ([`hparams`]); the forward pass on ggml ([`graph`], run per request by [`runner`]) and the
//! host-side signal processing between its graphs ([`dsp`]); text to token ids ([`text`]);
//! voices and blends ([`voice`]); and [`KokoroBackend`], the `tts_backend_api::Backend` the host
//! calls ([`backend`]).
//!
//! This crate is a plain library. The plugin files the host loads are built by two thin `cdylib`
//! crates that only export [`KokoroBackend::new`]: `backends/kokoro-cpu` (`libkokoro_cpu.so`)
//! and, on macOS, `backends/kokoro-metal` (`libkokoro_metal.dylib`, with this crate's `metal`
//! feature). Cargo cannot name a library differently per feature, hence two crates.
#![deny(unsafe_code)]

pub mod backend;
pub mod dsp;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod hparams;
pub mod inspect;
pub mod model_file;
pub mod runner;
pub mod stages;
pub mod text;
pub mod trace;
pub mod voice;
pub mod weights;

pub use backend::KokoroBackend;
pub use hparams::HParams;
pub use model_file::{KokoroModelFile, ModelError, PhonemizerVariant, VoiceView};
