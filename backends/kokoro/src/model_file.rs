//! Opening and checking a Kokoro GGUF (TTS.cpp layout).
//!
//! [`KokoroModelFile::open`] memory-maps the file through `tts-gguf`, then checks everything the
//! graph will need before any of it is used: architecture, hyper-parameters, vocabulary,
//! phonemizer variant, every tensor of [`tensor_specs`] (present, right `ne`, allowed type) and
//! every voice. Failures name the key or tensor at fault.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tts_gguf::{GgmlType, GgufError, GgufFile, TensorRef};

use crate::hparams::HParams;
use crate::weights::{tensor_specs, TensorSpec, VOICE_PREFIX};

/// Errors opening or checking a Kokoro model file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("not a Kokoro model: general.architecture is {0:?}, expected \"kokoro\"")]
    NotKokoro(String),
    #[error("metadata key {key:?}: {reason}")]
    BadMetadata { key: String, reason: String },
    #[error("tensor {0:?} is missing from the model file")]
    MissingTensor(String),
    #[error("tensor {name:?} has shape {found:?}, expected {expected:?}")]
    WrongShape {
        name: String,
        expected: Vec<u64>,
        found: Vec<u64>,
    },
    #[error("tensor {name:?} has type {found}, expected {allowed}")]
    WrongType {
        name: String,
        found: GgmlType,
        allowed: &'static str,
    },
    #[error("the model file contains no voices (no {VOICE_PREFIX}* tensors)")]
    NoVoices,
}

/// The phonemizer a file was converted for (`phonemizer.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhonemizerVariant {
    /// TTS.cpp's rule phonemizer with embedded rules (`Kokoro_no_espeak.gguf`, type 0).
    TtsCpp,
    /// espeak-ng (`Kokoro_espeak.gguf`, type 1).
    Espeak,
}

impl std::fmt::Display for PhonemizerVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TtsCpp => "tts.cpp rule phonemizer (phonemizer.type = 0)",
            Self::Espeak => "espeak-ng (phonemizer.type = 1)",
        })
    }
}

/// A voice pack: 510 style rows of 256 floats (`[0..128]` decoder style, `[128..256]` predictor
/// style), borrowed from the mapping. Row `n − 1` is the style for `n` phonemes.
#[derive(Debug, Clone, Copy)]
pub struct VoiceView<'a> {
    tensor: TensorRef<'a>,
    rows: usize,
    row_len: usize,
}

impl<'a> VoiceView<'a> {
    /// Number of rows (510).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Floats per row (256).
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    /// The raw little-endian F32 bytes, `(510, 1, 256)` in numpy order.
    pub fn bytes(&self) -> &'a [u8] {
        self.tensor.data
    }

    /// The data as `&[f32]` without copying (always available on little-endian hosts for a
    /// memory-mapped file; `None` if the bytes are not 4-byte aligned).
    pub fn as_f32(&self) -> Option<&'a [f32]> {
        self.tensor.as_f32()
    }

    /// Row `r` decoded into floats, or `None` past the last row.
    pub fn row(&self, r: usize) -> Option<Vec<f32>> {
        let n = self.row_len() * 4;
        let bytes = self.tensor.data.get(r * n..(r + 1) * n)?;
        Some(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }
}

/// A checked Kokoro model file. Cheap to share: clone the `Arc` returned by [`open`](Self::open).
#[derive(Debug)]
pub struct KokoroModelFile {
    gguf: Arc<GgufFile>,
    hparams: HParams,
    vocab: Vec<String>,
    phonemizer: PhonemizerVariant,
    specs: Vec<TensorSpec>,
    voices: BTreeMap<String, usize>,
}

impl KokoroModelFile {
    /// Opens, maps and checks `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Arc<Self>, ModelError> {
        Self::from_gguf(Arc::new(GgufFile::open(path)?)).map(Arc::new)
    }

    /// Checks an already parsed file.
    pub fn from_gguf(gguf: Arc<GgufFile>) -> Result<Self, ModelError> {
        let arch = gguf.get_str("general.architecture")?;
        if arch != "kokoro" {
            return Err(ModelError::NotKokoro(arch.to_owned()));
        }
        let hparams = HParams::from_gguf(&gguf)?;
        Self::check(gguf, hparams)
    }

    /// The checks of [`from_gguf`](Self::from_gguf) with given hyper-parameters (tests use small
    /// [`ArchDims`](crate::hparams::ArchDims) to keep synthetic files tiny).
    pub fn check(gguf: Arc<GgufFile>, hparams: HParams) -> Result<Self, ModelError> {
        let vocab = gguf.get_str_array("tokenizer.ggml.tokens")?.to_vec();
        let phonemizer = match gguf.get_u32("phonemizer.type")? {
            0 => PhonemizerVariant::TtsCpp,
            1 => PhonemizerVariant::Espeak,
            other => {
                return Err(ModelError::BadMetadata {
                    key: "phonemizer.type".to_owned(),
                    reason: format!("{other} is neither 0 (tts.cpp) nor 1 (espeak-ng)"),
                })
            }
        };
        let specs = tensor_specs(&hparams);
        for spec in &specs {
            check_tensor(
                &gguf,
                &spec.name,
                &spec.ne,
                |t| spec.class.allows(t),
                spec.class.describe(),
            )?;
        }
        let mut voices = BTreeMap::new();
        for (i, t) in gguf.tensors().iter().enumerate() {
            if let Some(name) = t.name.strip_prefix(VOICE_PREFIX) {
                check_tensor(&gguf, &t.name, &hparams.voice_ne(), |t| t == GgmlType::F32, "f32")?;
                voices.insert(name.to_owned(), i);
            }
        }
        if voices.is_empty() {
            return Err(ModelError::NoVoices);
        }
        Ok(Self {
            gguf,
            hparams,
            vocab,
            phonemizer,
            specs,
            voices,
        })
    }

    /// The underlying GGUF file (metadata, raw tensors).
    pub fn gguf(&self) -> &Arc<GgufFile> {
        &self.gguf
    }

    pub fn hparams(&self) -> &HParams {
        &self.hparams
    }

    /// Token list: index = token id, `""` for unused ids (including 0, the pad/BOS/EOS id).
    pub fn vocab(&self) -> &[String] {
        &self.vocab
    }

    pub fn phonemizer(&self) -> PhonemizerVariant {
        self.phonemizer
    }

    /// The expected model tensors (all present and checked).
    pub fn tensor_specs(&self) -> &[TensorSpec] {
        &self.specs
    }

    /// A model tensor by GGUF name (checked at open when it is in [`tensor_specs`]).
    pub fn tensor(&self, name: &str) -> Option<TensorRef<'_>> {
        self.gguf.tensor(name)
    }

    /// Voice names, sorted.
    pub fn voice_names(&self) -> impl Iterator<Item = &str> {
        self.voices.keys().map(String::as_str)
    }

    /// A voice pack by name.
    pub fn voice(&self, name: &str) -> Option<VoiceView<'_>> {
        let info = &self.gguf.tensors()[*self.voices.get(name)?];
        // ne = [row_len, rows] was checked at open.
        Some(VoiceView {
            tensor: TensorRef {
                info,
                data: self.gguf.tensor_data(info),
            },
            rows: info.ne[1] as usize,
            row_len: info.ne[0] as usize,
        })
    }
}

fn check_tensor(
    gguf: &GgufFile,
    name: &str,
    ne: &[u64],
    allowed: impl Fn(GgmlType) -> bool,
    describe: &'static str,
) -> Result<(), ModelError> {
    let t = gguf
        .tensor(name)
        .ok_or_else(|| ModelError::MissingTensor(name.to_owned()))?;
    if t.info.ne != ne {
        return Err(ModelError::WrongShape {
            name: name.to_owned(),
            expected: ne.to_vec(),
            found: t.info.ne.clone(),
        });
    }
    if !allowed(t.info.ggml_type) {
        return Err(ModelError::WrongType {
            name: name.to_owned(),
            found: t.info.ggml_type,
            allowed: describe,
        });
    }
    Ok(())
}
