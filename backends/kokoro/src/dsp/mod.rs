//! The host-side signal processing between the ggml graphs: plain loops that gain nothing from
//! a graph (sequential or float64 steps, or a one-hot matmul that is a gather).
//!
//! * [`alignment`]: `pred_aln_trg` and the frame expansion `x·A`.
//! * [`harmonic`]: `SineGen` + `SourceModuleHnNSF` (the harmonic source) and its STFT.
//! * [`istft`]: the generator's inverse STFT with the export's window-sum quirk.
//!
//! Reference: hexgrad/kokoro at commit `4b647d3`
//! (<https://github.com/hexgrad/kokoro/tree/4b647d3/kokoro>), in the ONNX-export semantics of
//! `shared/docs/kokoro-model.md` §3–§4.

pub mod alignment;
pub mod harmonic;
pub mod istft;
