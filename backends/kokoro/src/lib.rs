//! Kokoro-82M backend for tts-host.
//!
//! So far: the model file ([`model_file`]: open a TTS.cpp-layout GGUF through `tts-gguf`, check
//! every tensor and voice), the tensor-name table ([`weights`]) and hyper-parameters
//! ([`hparams`]); the forward pass on ggml ([`graph`], run per request by [`runner`]) up to the
//! durations and the text encoder. The rest of the graph and the plugin export come later.
#![deny(unsafe_code)]

pub mod graph;
pub mod hparams;
pub mod inspect;
pub mod model_file;
pub mod runner;
pub mod text;
pub mod voice;
pub mod weights;

pub use hparams::HParams;
pub use model_file::{KokoroModelFile, ModelError, PhonemizerVariant, VoiceView};
