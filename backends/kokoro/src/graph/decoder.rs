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
use super::{conv1d, GraphError, KokoroWeights, Result};

/// LeakyReLU slope inside `AdainResBlk1d`.
const SLOPE: f32 = 0.2;
/// Decode blocks.
pub const N_DECODE: usize = 4;

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
/// `y[2t+1] = w2·x[t] + w0·x[t+1]` with `x[T] = 0`; plus the bias. `x` `[T, C]` → `[2T, C]`.
pub fn depthwise_upsample<'a>(
    ctx: &'a Context,
    w: &'a KokoroWeights,
    prefix: &str,
    x: Tensor<'a>,
) -> Result<Tensor<'a>> {
    let kernel = w.tensor(&format!("{prefix}.pool_weight"))?; // [3, 1, C]
    let [t, c, ..] = x.ne();
    if kernel.ne() != [3, 1, c, 1] {
        return Err(GraphError::Input(format!(
            "{prefix}.pool_weight {:?} does not match {c} channels",
            kernel.ne()
        )));
    }
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
    let bias = ctx.reshape(w.tensor(&format!("{prefix}.pool_bias"))?, &[1, c])?;
    Ok(ctx.add(y, bias)?)
}

/// `AdainResBlk1d(dim_in, dim_out, style_dim=128, upsample)`; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct AdainResBlk1d;

impl AdainResBlk1d {
    /// `x` `[T, C_in]` → `[T', C_out]` (`T' = 2T` when `upsample`). Channel counts come from
    /// the weights under `prefix` (`norm1_*`, `conv1_*`, `norm2_*`, `conv2_*`, optional
    /// `conv1x1_weight`, `pool_*`).
    pub fn forward<'a>(
        ctx: &'a Context,
        w: &'a KokoroWeights,
        prefix: &str,
        x: Tensor<'a>,
        s: Tensor<'a>,
        upsample: bool,
    ) -> Result<Tensor<'a>> {
        let p = prefix;
        // Residual path.
        let mut r = adain_act(
            ctx,
            w,
            &format!("{p}.norm1_gamma"),
            &format!("{p}.norm1_beta"),
            x,
            s,
            Activation::LeakyRelu(SLOPE),
        )?;
        if upsample {
            r = depthwise_upsample(ctx, w, p, r)?;
        }
        r = conv1d(ctx, w, &format!("{p}.conv1"), r, 1, 1, 1)?;
        r = adain_act(
            ctx,
            w,
            &format!("{p}.norm2_gamma"),
            &format!("{p}.norm2_beta"),
            r,
            s,
            Activation::LeakyRelu(SLOPE),
        )?;
        r = conv1d(ctx, w, &format!("{p}.conv2"), r, 1, 1, 1)?;
        // Shortcut.
        let mut sc = x;
        if upsample {
            sc = upsample_nearest2(ctx, sc)?;
        }
        if w.has(&format!("{p}.conv1x1_weight")) {
            sc = super::conv1d_tiled(ctx, w.tensor(&format!("{p}.conv1x1_weight"))?, sc, 1, 0, 1)?;
        }
        let sum = ctx.add(r, sc)?;
        Ok(ctx.scale(sum, std::f32::consts::FRAC_1_SQRT_2, 0.0)?)
    }
}

/// The decoder body of `Decoder.forward` (everything before the generator).
#[derive(Debug, Clone, Copy)]
pub struct Decoder;

/// Outputs of [`Decoder::forward`].
#[derive(Debug, Clone, Copy)]
pub struct DecoderTensors<'a> {
    /// `decoder_encode_in` `[F, 514]`: `cat[asr, F0_conv(F0), N_conv(N)]`.
    pub encode_in: Tensor<'a>,
    /// `generator_in` `[2F, 512]`.
    pub generator_in: Tensor<'a>,
}

impl Decoder {
    /// `asr` `[F, 512]`, `f0` and `n` `[2F, 1]`, `s` = `style_decoder_s` `[128]`.
    pub fn forward<'a>(
        ctx: &'a Context,
        w: &'a KokoroWeights,
        asr: Tensor<'a>,
        f0: Tensor<'a>,
        n: Tensor<'a>,
        s: Tensor<'a>,
    ) -> Result<DecoderTensors<'a>> {
        let p = "kokoro.decoder";
        let f0c = conv1d(ctx, w, &format!("{p}.f0_conv"), f0, 2, 1, 1)?; // [F, 1]
        let nc = conv1d(ctx, w, &format!("{p}.n_conv"), n, 2, 1, 1)?; // [F, 1]
        if f0c.ne()[0] != asr.ne()[0] || nc.ne()[0] != asr.ne()[0] {
            return Err(GraphError::Input(format!(
                "F0/N curves of length {} do not give the {} frames of asr",
                f0.ne()[0],
                asr.ne()[0]
            )));
        }
        let encode_in = ctx
            .concat(ctx.concat(asr, f0c, 1)?, nc, 1)?
            .set_name("decoder_encode_in")?; // [F, 514]
        let mut x = AdainResBlk1d::forward(ctx, w, &format!("{p}.encoder_block"), encode_in, s, false)?; // [F, 1024]
        let asr_res = conv1d(ctx, w, &format!("{p}.asr_conv"), asr, 1, 0, 1)?; // [F, 64]
        for i in 0..N_DECODE {
            let cat = ctx.concat(ctx.concat(ctx.concat(x, asr_res, 1)?, f0c, 1)?, nc, 1)?; // [F, 1090]
            let up = i == N_DECODE - 1;
            x = AdainResBlk1d::forward(ctx, w, &format!("{p}.decoder_blocks.{i}"), cat, s, up)?;
        }
        Ok(DecoderTensors {
            encode_in,
            generator_in: x.set_name("generator_in")?,
        })
    }
}
