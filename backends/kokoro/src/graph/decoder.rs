//! The decoder body: `AdaIN1d`, `AdainResBlk1d` (with the depthwise transposed-conv upsample) and
//! `Decoder` up to the generator's input.
//!
//! Reference: `AdaIN1d`, `UpSample1d`, `AdainResBlk1d` and `Decoder` in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/istftnet.py>; kokoro-model.md §3 step 11
//! and "Block internals", §6.3 for the polyphase form of the depthwise transposed convolution.
//!
//! Layout: time-major, `ne = [T, C]` (the memory order of the goldens' `[1, C, T]` arrays), which
//! is what the im2col convolutions take and what makes `ggml_norm` over `ne0` an InstanceNorm.

use tts_ggml::{Context, GgmlType, Tensor};

use super::fused::{adain_act, Activation};
use super::{conv1d_tiled, Conv1d, KokoroWeights, Loader, Result, StyleFc, Weight};
use crate::weights::{AdainResBlk1dNames, DecoderNames};

/// LeakyReLU slope inside `AdainResBlk1d`.
const SLOPE: f32 = 0.2;

/// Interleaves `a`, `b` `[T, C]` along time: `[a0, b0, a1, b1, …]` → `[2T, C]`.
fn interleave<'a>(ctx: &'a Context, a: Tensor<'a>, b: Tensor<'a>) -> Result<Tensor<'a>> {
    let [t, c, ..] = a.ne();
    let a3 = ctx.reshape(ctx.cont(a)?, &[1, t, c])?;
    let b3 = ctx.reshape(ctx.cont(b)?, &[1, t, c])?;
    let ab = ctx.concat(a3, b3, 0)?; // [2, T, C]
    Ok(ctx.reshape(ab, &[2 * t, c])?)
}

/// Nearest ×2 upsampling along time (`UpSample1d` with `F.interpolate(scale_factor=2)`).
pub fn upsample_nearest2<'a>(ctx: &'a Context, x: Tensor<'a>) -> Result<Tensor<'a>> {
    interleave(ctx, x, x)
}

/// Tap `k` of a depthwise kernel `[3, 1, C]` as a broadcastable F32 `[1, C]` tensor (F16
/// kernels, as in TTS.cpp's F16 files, are converted).
fn dw_tap<'a>(ctx: &'a Context, kernel: Tensor<'a>, k: usize) -> Result<Tensor<'a>> {
    let c = kernel.ne()[2];
    let es = kernel.ty().type_size();
    let v = ctx.view(kernel, &[1, c], &[3 * es], k * es)?;
    Ok(ctx.cast(v, GgmlType::F32)?)
}

/// The learned upsample `pool`: depthwise `ConvTranspose1d(C, C, 3, stride 2, padding 1,
/// output_padding 1, groups C)`, in polyphase form (exact): `y[2t] = w1·x[t]`,
/// `y[2t+1] = w2·x[t] + w0·x[t+1]` with `x[T] = 0`; plus the bias. Kernel `[3, 1, C]` (checked
/// at load), bias `[C]`.
#[derive(Debug, Clone)]
pub struct DepthwiseUpsample {
    kernel: Weight,
    bias: Weight,
}

impl DepthwiseUpsample {
    /// `x` `[T, C]` → `[2T, C]`.
    pub fn forward<'a>(&self, ctx: &'a Context, w: &'a KokoroWeights, x: Tensor<'a>) -> Result<Tensor<'a>> {
        let kernel = w.get(&self.kernel)?; // [3, 1, C]
        let [t, c, ..] = x.ne();
        let (w0, w1, w2) = (
            dw_tap(ctx, kernel, 0)?,
            dw_tap(ctx, kernel, 1)?,
            dw_tap(ctx, kernel, 2)?,
        );
        let even = ctx.mul(x, w1)?; // [T, C]
        let mut odd = ctx.mul(x, w2)?;
        if t > 1 {
            let es = std::mem::size_of::<f32>();
            let next = ctx.view(x, &[t - 1, c], &[x.nb()[1]], es)?; // x[t+1]
            let next = ctx.pad_ext(ctx.cont(next)?, [0; 4], [1, 0, 0, 0])?; // x[T] = 0
            odd = ctx.add(odd, ctx.mul(next, w0)?)?;
        }
        let y = interleave(ctx, even, odd)?; // [2T, C]
        let bias = ctx.reshape(w.get(&self.bias)?, &[1, c])?;
        Ok(ctx.add(y, bias)?)
    }
}

/// `AdainResBlk1d(dim_in, dim_out, style_dim=128, upsample)`; see the module docs.
#[derive(Debug, Clone)]
pub struct AdainResBlk1d {
    norm1: StyleFc,
    /// The learned upsample of the residual path, when the block upsamples.
    pool: Option<DepthwiseUpsample>,
    conv1: Conv1d,
    norm2: StyleFc,
    conv2: Conv1d,
    /// The 1×1 shortcut conv (no bias), when the block changes the channel count.
    conv1x1: Option<Weight>,
}

impl AdainResBlk1d {
    /// Resolves the block under `n` with `(c_in, c_out, upsample)` from [`crate::HParams`]
    /// (`f0n_block`, `decoder_block`, …).
    pub fn load(
        ld: &Loader<'_>,
        n: &AdainResBlk1dNames,
        (c_in, c_out, upsample): (u64, u64, bool),
    ) -> Result<Self> {
        let pool = if upsample {
            Some(DepthwiseUpsample {
                kernel: ld.weight(&n.pool.weight)?,
                bias: ld.weight(&n.pool.bias)?,
            })
        } else {
            None
        };
        let conv1x1 = if c_in != c_out {
            Some(ld.weight(&n.conv1x1)?)
        } else {
            None
        };
        Ok(Self {
            norm1: StyleFc::load(ld, &n.norm1)?,
            pool,
            conv1: Conv1d::load(ld, &n.conv1, 1, 1, 1)?,
            norm2: StyleFc::load(ld, &n.norm2)?,
            conv2: Conv1d::load(ld, &n.conv2, 1, 1, 1)?,
            conv1x1,
        })
    }

    /// `x` `[T, C_in]` → `[T', C_out]` (`T' = 2T` when the block upsamples).
    pub fn forward<'a>(
        &self,
        ctx: &'a Context,
        w: &'a KokoroWeights,
        x: Tensor<'a>,
        s: Tensor<'a>,
    ) -> Result<Tensor<'a>> {
        // Residual path.
        let mut r = adain_act(ctx, w, &self.norm1, x, s, Activation::LeakyRelu(SLOPE))?;
        if let Some(pool) = &self.pool {
            r = pool.forward(ctx, w, r)?;
        }
        r = self.conv1.forward(ctx, w, r)?;
        r = adain_act(ctx, w, &self.norm2, r, s, Activation::LeakyRelu(SLOPE))?;
        r = self.conv2.forward(ctx, w, r)?;
        // Shortcut.
        let mut sc = x;
        if self.pool.is_some() {
            sc = upsample_nearest2(ctx, sc)?;
        }
        if let Some(k) = &self.conv1x1 {
            sc = conv1d_tiled(ctx, w.get(k)?, sc, 1, 0, 1)?;
        }
        let sum = ctx.add(r, sc)?;
        Ok(ctx.scale(sum, std::f32::consts::FRAC_1_SQRT_2, 0.0)?)
    }
}

/// The decoder body of `Decoder.forward` (everything before the generator).
#[derive(Debug, Clone)]
pub struct Decoder {
    f0_conv: Conv1d,
    n_conv: Conv1d,
    asr_conv: Conv1d,
    encoder_block: AdainResBlk1d,
    decoder_blocks: Vec<AdainResBlk1d>,
}

/// Outputs of [`Decoder::forward`].
#[derive(Debug, Clone, Copy)]
pub struct DecoderTensors<'a> {
    /// `decoder_encode_in` `[F, 514]`: `cat[asr, F0_conv(F0), N_conv(N)]`.
    pub encode_in: Tensor<'a>,
    /// `generator_in` `[2F, 512]`.
    pub generator_in: Tensor<'a>,
}

impl Decoder {
    /// Resolves the decoder's tensors; block sizes from [`crate::HParams`].
    pub fn load(ld: &Loader<'_>, n: &DecoderNames) -> Result<Self> {
        let hp = ld.hparams();
        Ok(Self {
            // F0_conv, N_conv: Conv1d(1, 1, 3, stride 2, padding 1) (frame rate 2F → F).
            f0_conv: Conv1d::load(ld, &n.f0_conv, 2, 1, 1)?,
            n_conv: Conv1d::load(ld, &n.n_conv, 2, 1, 1)?,
            asr_conv: Conv1d::load(ld, &n.asr_conv, 1, 0, 1)?,
            encoder_block: AdainResBlk1d::load(ld, &n.encoder_block, hp.decoder_encode_block())?,
            decoder_blocks: n
                .decoder_blocks
                .iter()
                .enumerate()
                .map(|(i, b)| AdainResBlk1d::load(ld, b, hp.decoder_block(i as u64)))
                .collect::<Result<_>>()?,
        })
    }

    /// `asr` `[F, 512]`, `f0` and `n` `[2F, 1]`, `s` = `style_decoder_s` `[128]`.
    pub fn forward<'a>(
        &self,
        ctx: &'a Context,
        w: &'a KokoroWeights,
        asr: Tensor<'a>,
        f0: Tensor<'a>,
        n: Tensor<'a>,
        s: Tensor<'a>,
    ) -> Result<DecoderTensors<'a>> {
        let f0c = self.f0_conv.forward(ctx, w, f0)?; // [F, 1]
        let nc = self.n_conv.forward(ctx, w, n)?; // [F, 1]
        if f0c.ne()[0] != asr.ne()[0] || nc.ne()[0] != asr.ne()[0] {
            return Err(super::GraphError::Input(format!(
                "F0/N curves of length {} do not give the {} frames of asr",
                f0.ne()[0],
                asr.ne()[0]
            )));
        }
        let encode_in = ctx
            .concat(ctx.concat(asr, f0c, 1)?, nc, 1)?
            .set_name("decoder_encode_in")?; // [F, 514]
        let mut x = self.encoder_block.forward(ctx, w, encode_in, s)?; // [F, 1024]
        let asr_res = self.asr_conv.forward(ctx, w, asr)?; // [F, 64]
        for block in &self.decoder_blocks {
            let cat = ctx.concat(ctx.concat(ctx.concat(x, asr_res, 1)?, f0c, 1)?, nc, 1)?; // [F, 1090]
            x = block.forward(ctx, w, cat, s)?;
        }
        Ok(DecoderTensors {
            encode_in,
            generator_in: x.set_name("generator_in")?,
        })
    }
}
