//! The Kokoro-82M forward pass on ggml, one file per reference module.
//!
//! * [`KokoroWeights`]: every model tensor of a checked [`KokoroModelFile`] placed into a
//!   [`tts_ggml::Weights`] **without copying** (the GGUF mapping is wrapped as a CPU buffer and
//!   kept alive through the `Arc`), and the [`KokoroModel`]: one struct per module, built once
//!   at load by its `load` from the name table ([`crate::weights::TensorNames`]) and the
//!   [`HParams`], holding every tensor it uses as a resolved [`Weight`] (plus the fused recurrent
//!   LSTM matrices the custom LSTM op reads on the host). A missing or mis-shaped weight fails
//!   there, naming the tensor. Shared read-only by every request (`Send + Sync`, put it in an
//!   `Arc`); building a graph formats no tensor name.
//! * [`albert`]: `CustomAlbert` (PL-BERT) and the `bert_encoder` projection.
//! * [`decoder`]: `AdaIN1d`, `AdainResBlk1d` (with the depthwise transposed-conv upsample) and the
//!   `Decoder` body up to `generator_in`.
//! * [`f0n`]: `ProsodyPredictor.F0Ntrain` (shared BiLSTM, F0 and N branches).
//! * [`fused`]: `AdaIN1d` + its activation (LeakyReLU or Snake) as one custom op.
//! * [`generator`]: the iSTFTNet `Generator` between the source STFT and the iSTFT.
//! * [`lstm`]: the bidirectional `nn.LSTM` as one input projection + a custom recurrence op.
//! * [`prosody`]: `DurationEncoder` and the duration head of `ProsodyPredictor`.
//! * [`text_encoder`]: `TextEncoder` (CNN + BiLSTM).
//!
//! The host-side steps between the graphs (alignment, harmonic source, STFT, iSTFT) are in
//! [`crate::dsp`].
//!
//! The text side works channel-major: activations are `ne = [C, T]` (ggml order, `ne0` fastest),
//! which is the memory order of the goldens' `[1, T, C]` arrays. The convolutional side (F0/N
//! blocks, decoder, generator) works time-major, `ne = [T, C]`, the memory order of the goldens'
//! `[1, C, T]` arrays and what im2col and InstanceNorm-by-`ggml_norm` need. Every intermediate that has a
//! golden counterpart carries the golden array's name (`bert_last_hidden_state`, ...).
//!
//! Reference: hexgrad/kokoro at commit `4b647d3`
//! (<https://github.com/hexgrad/kokoro/tree/4b647d3/kokoro>), in the ONNX-export semantics of
//! `shared/docs/kokoro-model.md` §4.

pub mod albert;
pub mod decoder;
pub mod f0n;
pub mod fused;
pub mod generator;
pub mod lstm;
pub mod prosody;
pub mod text_encoder;

use std::collections::HashMap;
use std::sync::Arc;

use tts_ggml::{ComputeDevice, Context, GgmlError, GgmlType, Tensor, Weights, WeightsBuilder, MAX_NAME_LEN};

use crate::hparams::HParams;
use crate::model_file::KokoroModelFile;
use crate::weights::{StyleFcNames, TensorNames, WeightBias, VOICE_PREFIX};

/// Errors of graph building, weight loading and running.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// An error reported by the ggml wrapper (shape, allocation, compute).
    #[error("ggml: {0}")]
    Ggml(#[from] GgmlError),
    /// A tensor's storage type this code cannot use yet.
    #[error("tensor {name}: type {ty} is not supported here ({reason})")]
    UnsupportedType {
        name: String,
        ty: &'static str,
        reason: &'static str,
    },
    /// A missing model tensor (the model file checks make this a bug).
    #[error("tensor {0} is missing from the model file")]
    MissingTensor(String),
    /// A model tensor whose shape is not the table's (the model file checks make this a bug).
    #[error("tensor {name}: shape {found:?}, expected {expected:?}")]
    WrongShape {
        name: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
    /// A name a module asked for that the tensor table does not list (a bug in this crate).
    #[error("tensor {0} is not in the tensor table (weights.rs)")]
    NotInTable(String),
    /// Bad caller input (empty or over-long token sequence, wrong style length, bad speed).
    #[error("invalid input: {0}")]
    Input(String),
    /// The input would make more audio frames than one graph may hold (memory bound).
    #[error("too long: {0}")]
    TooLong(String),
    /// The synthesis was stopped by its abort check (the request was cancelled or timed out).
    #[error("aborted")]
    Aborted,
}

/// Result alias for graph code.
pub type Result<T, E = GraphError> = std::result::Result<T, E>;

/// The ggml type of a GGUF tensor type (only the types Kokoro files may contain).
pub(crate) fn ggml_type(t: tts_gguf::GgmlType) -> Option<GgmlType> {
    use tts_gguf::GgmlType as G;
    Some(match t {
        G::F32 => GgmlType::F32,
        G::F16 => GgmlType::F16,
        G::Q4_0 => GgmlType::Q4_0,
        G::Q4_1 => GgmlType::Q4_1,
        G::Q5_0 => GgmlType::Q5_0,
        G::Q5_1 => GgmlType::Q5_1,
        G::Q8_0 => GgmlType::Q8_0,
        _ => return None,
    })
}

/// The name a GGUF tensor gets inside ggml: the GGUF name, or without the `kokoro.` prefix when
/// the GGUF name is longer than ggml's 63 bytes (a few 64-byte generator names).
pub fn ggml_name(gguf_name: &str) -> &str {
    if gguf_name.len() > MAX_NAME_LEN {
        gguf_name.strip_prefix("kokoro.").unwrap_or(gguf_name)
    } else {
        gguf_name
    }
}

/// A model weight resolved at load: present in the weights with the table's shape. Building a
/// graph fetches it with [`KokoroWeights::get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weight {
    /// The ggml name ([`ggml_name`] of the GGUF name).
    name: Box<str>,
    ne: [i64; 4],
}

impl Weight {
    /// The weight's ggml name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its dimensions, ggml order.
    pub fn ne(&self) -> [i64; 4] {
        self.ne
    }
}

/// What a module's `load` reads: the wrapped weights, the checked file (for host copies) and
/// the expected shape of every table name.
#[derive(Debug)]
pub struct Loader<'a> {
    weights: &'a Weights<'static>,
    file: &'a KokoroModelFile,
    specs: HashMap<&'a str, &'a [u64]>,
}

impl Loader<'_> {
    /// The hyper-parameters of the file.
    pub fn hparams(&self) -> &HParams {
        self.file.hparams()
    }

    /// Resolves the weight `name` (a table name): an error names a tensor that is missing, not
    /// in the table, or not of the table's shape.
    pub fn weight(&self, name: &str) -> Result<Weight> {
        let spec = self
            .specs
            .get(name)
            .ok_or_else(|| GraphError::NotInTable(name.to_owned()))?;
        let t = self
            .weights
            .tensor(ggml_name(name))
            .map_err(|_| GraphError::MissingTensor(name.to_owned()))?;
        let mut expected = [1i64; 4];
        for (e, &n) in expected.iter_mut().zip(spec.iter()) {
            *e = n as i64;
        }
        if t.ne() != expected || spec.len() > 4 {
            return Err(GraphError::WrongShape {
                name: name.to_owned(),
                expected: spec.iter().map(|&n| n as i64).collect(),
                found: t.ne().to_vec(),
            });
        }
        Ok(Weight {
            name: ggml_name(name).into(),
            ne: expected,
        })
    }

    /// The values of the weight `name` (resolved as [`Loader::weight`]) as F32 on the host,
    /// converted from F16 or a quantized type when the file stores it so.
    pub fn host_f32(&self, name: &str) -> Result<Vec<f32>> {
        let w = self.weight(name)?;
        let t = self
            .file
            .tensor(name)
            .ok_or_else(|| GraphError::MissingTensor(name.to_owned()))?;
        let ty = ggml_type(t.info.ggml_type).ok_or_else(|| GraphError::UnsupportedType {
            name: name.to_owned(),
            ty: t.info.ggml_type.name(),
            reason: "not a Kokoro storage type",
        })?;
        let n = w.ne.iter().product::<i64>() as usize;
        Ok(ty.to_f32(t.data, n)?)
    }
}

/// `nn.Linear`: `W·x + b` for `W` `ne=[in, out]`, `x` `[in, T]` → `[out, T]`.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Weight,
    pub bias: Weight,
}

impl Linear {
    /// Resolves `names`.
    pub fn load(ld: &Loader<'_>, names: &WeightBias) -> Result<Self> {
        Ok(Self {
            weight: ld.weight(&names.weight)?,
            bias: ld.weight(&names.bias)?,
        })
    }

    /// `[in, T]` → `[out, T]`.
    pub fn forward<'a>(&self, ctx: &'a Context, w: &'a KokoroWeights, x: Tensor<'a>) -> Result<Tensor<'a>> {
        let cur = ctx.mul_mat(w.get(&self.weight)?, x)?; // [out, T]
        Ok(ctx.add(cur, w.get(&self.bias)?)?)
    }
}

/// The affine `γ`, `β` `[C]` of a LayerNorm over channels.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub gamma: Weight,
    pub beta: Weight,
    pub eps: f32,
}

impl LayerNorm {
    /// `x` `[C, T]` → `[C, T]`.
    pub fn forward<'a>(&self, ctx: &'a Context, w: &'a KokoroWeights, x: Tensor<'a>) -> Result<Tensor<'a>> {
        layer_norm(
            ctx,
            x,
            Some(w.get(&self.gamma)?),
            Some(w.get(&self.beta)?),
            self.eps,
        )
    }
}

/// The `fc(s)` of `AdaIN1d` / `AdaLayerNorm` as its two halves: `γ(s)`, `β(s)` `[C]`.
#[derive(Debug, Clone)]
pub struct StyleFc {
    pub gamma: Linear,
    pub beta: Linear,
}

impl StyleFc {
    /// Resolves `names`.
    pub fn load(ld: &Loader<'_>, names: &StyleFcNames) -> Result<Self> {
        Ok(Self {
            gamma: Linear::load(ld, &names.gamma)?,
            beta: Linear::load(ld, &names.beta)?,
        })
    }

    /// `s` `[128]` → (`γ` `[C, 1]`, `β` `[C, 1]`).
    pub fn forward<'a>(
        &self,
        ctx: &'a Context,
        w: &'a KokoroWeights,
        s: Tensor<'a>,
    ) -> Result<(Tensor<'a>, Tensor<'a>)> {
        let gamma = self.gamma.forward(ctx, w, s)?; // [C, 1]
        let beta = self.beta.forward(ctx, w, s)?; // [C, 1]
        Ok((gamma, beta))
    }
}

/// `nn.Conv1d` on a time-major `x` `[T, C_in]`, kernel `[K, C_in, C_out]` and bias `[C_out]`,
/// with its stride, padding and dilation.
#[derive(Debug, Clone)]
pub struct Conv1d {
    pub kernel: Weight,
    pub bias: Weight,
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
}

impl Conv1d {
    /// Resolves `names`.
    pub fn load(
        ld: &Loader<'_>,
        names: &WeightBias,
        stride: usize,
        padding: usize,
        dilation: usize,
    ) -> Result<Self> {
        Ok(Self {
            kernel: ld.weight(&names.weight)?,
            bias: ld.weight(&names.bias)?,
            stride,
            padding,
            dilation,
        })
    }

    /// Kernel size.
    pub fn kernel_size(&self) -> usize {
        self.kernel.ne()[0] as usize
    }

    /// `[T, C_in]` → `[T_out, C_out]`.
    pub fn forward<'a>(&self, ctx: &'a Context, w: &'a KokoroWeights, x: Tensor<'a>) -> Result<Tensor<'a>> {
        let k = w.get(&self.kernel)?;
        let cur = conv1d_tiled(ctx, k, x, self.stride, self.padding, self.dilation)?; // [T_out, C_out]
        let c_out = k.ne()[2];
        let b = ctx.reshape(w.get(&self.bias)?, &[1, c_out])?;
        Ok(ctx.add(cur, b)?)
    }
}

/// Every module of the forward pass, loaded once per model.
#[derive(Debug)]
pub struct KokoroModel {
    pub albert: albert::CustomAlbert,
    pub bert_encoder: albert::BertEncoder,
    pub duration_encoder: prosody::DurationEncoder,
    pub predictor: prosody::ProsodyPredictor,
    pub f0n: f0n::F0Ntrain,
    pub text_encoder: text_encoder::TextEncoder,
    pub decoder: decoder::Decoder,
    pub generator: generator::Generator,
}

impl KokoroModel {
    /// Resolves every module's tensors.
    pub fn load(ld: &Loader<'_>) -> Result<Self> {
        let names = TensorNames::new(ld.hparams());
        Ok(Self {
            albert: albert::CustomAlbert::load(ld, &names.albert)?,
            bert_encoder: albert::BertEncoder::load(ld, &names.predictor)?,
            duration_encoder: prosody::DurationEncoder::load(ld, &names.predictor)?,
            predictor: prosody::ProsodyPredictor::load(ld, &names.predictor)?,
            f0n: f0n::F0Ntrain::load(ld, &names.predictor)?,
            text_encoder: text_encoder::TextEncoder::load(ld, &names.text_encoder)?,
            decoder: decoder::Decoder::load(ld, &names.decoder)?,
            generator: generator::Generator::load(ld, &names.generator)?,
        })
    }
}

/// The shared, read-only model: the checked file, its tensors as ggml weights (zero-copy), and
/// the loaded modules.
pub struct KokoroWeights {
    file: Arc<KokoroModelFile>,
    weights: Weights<'static>,
    model: KokoroModel,
}

impl std::fmt::Debug for KokoroWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KokoroWeights")
            .field("weights", &self.weights)
            .finish_non_exhaustive()
    }
}

impl KokoroWeights {
    /// Wraps every model tensor (voices excluded) of `file` in place and loads every module.
    /// `device` must be a CPU device (the mapping is host memory); the weights do not borrow it.
    pub fn load(file: Arc<KokoroModelFile>, device: &ComputeDevice) -> Result<Self> {
        let mut builder = WeightsBuilder::new();
        for info in file.gguf().tensors() {
            if info.name.starts_with(VOICE_PREFIX) {
                continue;
            }
            let ty = ggml_type(info.ggml_type).ok_or_else(|| GraphError::UnsupportedType {
                name: info.name.clone(),
                ty: info.ggml_type.name(),
                reason: "not a Kokoro storage type",
            })?;
            let ne: Vec<i64> = info.ne.iter().map(|&n| n as i64).collect();
            builder.add_at(ggml_name(&info.name), ty, &ne, info.offset as usize)?;
        }
        let weights = builder.wrap_host_owned(device, Arc::clone(&file), data_section)?;
        let model = {
            let ld = Loader {
                weights: &weights,
                file: &file,
                specs: file
                    .tensor_specs()
                    .iter()
                    .map(|s| (s.name.as_str(), s.ne.as_slice()))
                    .collect(),
            };
            KokoroModel::load(&ld)?
        };
        Ok(Self { file, weights, model })
    }

    /// The model file.
    pub fn file(&self) -> &Arc<KokoroModelFile> {
        &self.file
    }

    /// The hyper-parameters of the model file.
    pub fn hparams(&self) -> &HParams {
        self.file.hparams()
    }

    /// The loaded modules.
    pub fn model(&self) -> &KokoroModel {
        &self.model
    }

    /// The tensor of a weight resolved at load.
    pub fn get(&self, w: &Weight) -> Result<Tensor<'_>> {
        Ok(self.weights.tensor(&w.name)?)
    }

    /// The weight with GGUF name `name` (for inspection; graph code uses [`KokoroWeights::get`]).
    pub fn tensor(&self, name: &str) -> Result<Tensor<'_>> {
        Ok(self.weights.tensor(ggml_name(name))?)
    }
}

/// The tensor-data section of the mapped GGUF file (every tensor offset is relative to it).
fn data_section(f: &KokoroModelFile) -> &[u8] {
    f.gguf().data_section()
}

/// LayerNorm over `ne0` (channels) with eps, then optional affine `γ`, `β` `[C]`.
pub(crate) fn layer_norm<'a>(
    ctx: &'a Context,
    x: Tensor<'a>,
    gamma: Option<Tensor<'a>>,
    beta: Option<Tensor<'a>>,
    eps: f32,
) -> Result<Tensor<'a>> {
    let mut cur = ctx.norm(x, eps)?; // [C, T]
    if let Some(g) = gamma {
        cur = ctx.mul(cur, g)?;
    }
    if let Some(b) = beta {
        cur = ctx.add(cur, b)?;
    }
    Ok(cur)
}

/// `gelu_new` (tanh approximation) from exact f32 ops: `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
/// ggml's own `gelu` goes through an F16 lookup table (~1e-3 error), too coarse for the goldens.
pub(crate) fn gelu_new<'a>(ctx: &'a Context, x: Tensor<'a>) -> Result<Tensor<'a>> {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let x3 = ctx.mul(ctx.sqr(x)?, x)?; // x³
    let inner = ctx.add(x, ctx.scale(x3, 0.044_715, 0.0)?)?;
    let t = ctx.tanh(ctx.scale(inner, SQRT_2_OVER_PI, 0.0)?)?;
    let half = ctx.scale(ctx.mul(x, t)?, 0.5, 0.0)?; // 0.5·x·tanh(..)
    Ok(ctx.add(half, ctx.scale(x, 0.5, 0.0)?)?)
}

/// Output samples per im2col tile: the im2col matrix of a kernel-11, 128-channel conv over a
/// whole generator chunk is ~0.7 MB per frame (0.6 GB for 20 s of audio); cut in tiles it is
/// at most `CONV_TILE · K · C_in` floats (92 MB for that conv) whatever the length.
pub const CONV_TILE: i64 = 16_384;

/// The convolution of `x` `[T, C_in]`: [`Context::conv_1d_direct`] for F32 and F16 kernels (no im2col
/// buffer), else [`Context::conv_1d`] cut along time into tiles of at most [`CONV_TILE`]
/// outputs so that the im2col buffer stays bounded; exact (each output is the same dot
/// product), the tiles are concatenated pairwise.
pub(crate) fn conv1d_tiled<'a>(
    ctx: &'a Context,
    kernel: Tensor<'a>,
    x: Tensor<'a>,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Result<Tensor<'a>> {
    let [l, c_in, n3, n4] = x.ne();
    if matches!(kernel.ty(), GgmlType::F32 | GgmlType::F16) && n3 == 1 && n4 == 1 {
        // K shifted GEMMs over the input in place: no im2col buffer to bound.
        return Ok(ctx.conv_1d_direct(kernel, x, stride, padding, dilation)?);
    }
    let span = dilation as i64 * (kernel.ne()[0] - 1) + 1;
    let l_out = (l + 2 * padding as i64 - span).div_euclid(stride as i64) + 1;
    if l_out <= CONV_TILE || n3 != 1 || n4 != 1 || l + 2 * (padding as i64) < span {
        return Ok(ctx.conv_1d(kernel, x, stride, padding, dilation)?);
    }
    let xp = if padding > 0 {
        ctx.pad_ext(x, [padding, 0, 0, 0], [padding, 0, 0, 0])? // [T + 2p, C_in]
    } else {
        x
    };
    let es = std::mem::size_of::<f32>();
    let mut tiles = Vec::new();
    let mut o0 = 0i64;
    while o0 < l_out {
        let n = CONV_TILE.min(l_out - o0);
        let in_len = (n - 1) * stride as i64 + span;
        let offset = (o0 * stride as i64) as usize * es;
        let xs = ctx.cont(ctx.view(xp, &[in_len, c_in], &[xp.nb()[1]], offset)?)?;
        tiles.push(ctx.conv_1d(kernel, xs, stride, 0, dilation)?); // [n, C_out]
        o0 += n;
    }
    while tiles.len() > 1 {
        let mut next = Vec::with_capacity(tiles.len().div_ceil(2));
        let mut it = tiles.into_iter();
        while let Some(a) = it.next() {
            next.push(match it.next() {
                Some(b) => ctx.concat(a, b, 0)?,
                None => a,
            });
        }
        tiles = next;
    }
    tiles
        .pop()
        .ok_or_else(|| GraphError::Input("conv over an empty input".into()))
}
