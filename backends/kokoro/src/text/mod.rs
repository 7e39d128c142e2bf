//! From text to token ids: normalisation, chunking, phonemization, vocabulary.
//!
//! Each step is a pure function (except the phonemizer, which wraps espeak-ng) and is tested on
//! its own.

pub mod chunk;
pub mod languages;
pub mod normalize;
pub mod phonemize;
pub mod sanitize;
pub mod vocab;
