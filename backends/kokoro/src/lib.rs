//! Kokoro-82M backend for tts-host.
//!
//! So far: the model file ([`model_file`]: open a TTS.cpp-layout GGUF through `tts-gguf`, check
//! every tensor and voice), the tensor-name table ([`weights`]) and hyper-parameters
//! ([`hparams`]). The graph, phonemizer and plugin export come later.
#![deny(unsafe_code)]

pub mod hparams;
pub mod inspect;
pub mod model_file;
pub mod text;
pub mod weights;

pub use hparams::HParams;
pub use model_file::{KokoroModelFile, ModelError, PhonemizerVariant, VoiceView};
