//! The Kokoro-82M forward pass on ggml, one file per reference module.
//!
//! * [`KokoroWeights`]: every model tensor of a checked [`KokoroModelFile`] placed into a
//!   [`tts_ggml::Weights`] **without copying** (the GGUF mapping is wrapped as a CPU buffer and
//!   kept alive through the `Arc`), plus the fused recurrent LSTM matrices the custom LSTM op
//!   reads on the host. Shared read-only by every request (`Send + Sync`, put it in an `Arc`).
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

use crate::model_file::KokoroModelFile;
use crate::weights::VOICE_PREFIX;

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

/// The shared, read-only model: the checked file, its tensors as ggml weights (zero-copy), and
/// the fused recurrent matrices of every LSTM.
pub struct KokoroWeights {
    file: Arc<KokoroModelFile>,
    weights: Weights<'static>,
    recurrent: HashMap<String, Arc<lstm::Recurrent>>,
}

impl std::fmt::Debug for KokoroWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KokoroWeights")
            .field("weights", &self.weights)
            .field("lstms", &self.recurrent.len())
            .finish()
    }
}

impl KokoroWeights {
    /// Wraps every model tensor (voices excluded) of `file` in place. `device` must be a CPU
    /// device (the mapping is host memory); the weights do not borrow it.
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
        let mut recurrent = HashMap::new();
        for prefix in lstm::LSTM_PREFIXES {
            recurrent.insert(
                (*prefix).to_owned(),
                Arc::new(lstm::Recurrent::load(&file, prefix)?),
            );
        }
        Ok(Self {
            file,
            weights,
            recurrent,
        })
    }

    /// The model file.
    pub fn file(&self) -> &Arc<KokoroModelFile> {
        &self.file
    }

    /// The weight with GGUF name `name`.
    pub fn tensor(&self, name: &str) -> Result<Tensor<'_>> {
        Ok(self.weights.tensor(ggml_name(name))?)
    }

    /// Whether the model has a weight with GGUF name `name`.
    pub fn has(&self, name: &str) -> bool {
        self.weights.tensor(ggml_name(name)).is_ok()
    }

    /// The values of the model tensor `name` as F32 on the host (converted from F16 or a
    /// quantized type when the file stores it so).
    pub fn host_f32(&self, name: &str) -> Result<Vec<f32>> {
        let t = self
            .file
            .tensor(name)
            .ok_or_else(|| GraphError::MissingTensor(name.to_owned()))?;
        let ty = ggml_type(t.info.ggml_type).ok_or_else(|| GraphError::UnsupportedType {
            name: name.to_owned(),
            ty: t.info.ggml_type.name(),
            reason: "not a Kokoro storage type",
        })?;
        let n = t.info.ne.iter().product::<u64>() as usize;
        Ok(ty.to_f32(t.data, n)?)
    }

    /// The fused recurrent matrices of the LSTM under `prefix` (one of [`lstm::LSTM_PREFIXES`]).
    pub fn recurrent(&self, prefix: &str) -> Result<Arc<lstm::Recurrent>> {
        self.recurrent
            .get(prefix)
            .cloned()
            .ok_or_else(|| GraphError::MissingTensor(format!("{prefix}.weights.*")))
    }
}

/// The tensor-data section of the mapped GGUF file (every tensor offset is relative to it).
fn data_section(f: &KokoroModelFile) -> &[u8] {
    f.gguf().data_section()
}

/// `nn.Linear`: `W·x + b` for `W` `ne=[in, out]`, `x` `[in, T]` → `[out, T]`.
pub(crate) fn linear<'a>(
    ctx: &'a Context,
    w: &'a KokoroWeights,
    name: &str,
    x: Tensor<'a>,
) -> Result<Tensor<'a>> {
    let cur = ctx.mul_mat(w.tensor(name)?, x)?; // [out, T]
    Ok(ctx.add(cur, w.tensor(&format!("{name}_bias"))?)?)
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

/// `nn.Conv1d` on a time-major `x` `[T, C_in]` with kernel `{prefix}_weight` `[K, C_in, C_out]`
/// and bias `{prefix}_bias` `[C_out]` → `[T_out, C_out]`.
pub(crate) fn conv1d<'a>(
    ctx: &'a Context,
    w: &'a KokoroWeights,
    prefix: &str,
    x: Tensor<'a>,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Result<Tensor<'a>> {
    let kernel = format!("{prefix}_weight");
    let bias = format!("{prefix}_bias");
    conv1d_named(ctx, w, &kernel, &bias, x, stride, padding, dilation)
}

/// [`conv1d`] with explicit kernel and bias names.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv1d_named<'a>(
    ctx: &'a Context,
    w: &'a KokoroWeights,
    kernel: &str,
    bias: &str,
    x: Tensor<'a>,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Result<Tensor<'a>> {
    let k = w.tensor(kernel)?;
    let cur = conv1d_tiled(ctx, k, x, stride, padding, dilation)?; // [T_out, C_out]
    let c_out = k.ne()[2];
    let b = ctx.reshape(w.tensor(bias)?, &[1, c_out])?;
    Ok(ctx.add(cur, b)?)
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
