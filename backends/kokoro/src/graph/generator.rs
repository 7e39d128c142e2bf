//! The iSTFTNet generator body: two upsampling stages (LeakyReLU, padded transposed conv, the
//! harmonic source through `noise_convs` + an `AdaINResBlock1`, the mean of three Snake
//! resblocks), then LeakyReLU and `conv_post`. The harmonic source and its STFT come in from
//! the host ([`crate::dsp::harmonic`]); the iSTFT of the result runs on the host too
//! ([`crate::dsp::istft`]).
//!
//! Reference: `AdaINResBlock1` and `Generator` in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/istftnet.py>; kokoro-model.md §3 step 12
//! and "Block internals", §6.2 for the transposed-conv crop.
//!
//! Layout: time-major `ne = [T, C]` as in [`super::decoder`].

use tts_ggml::{Context, Tensor};

use super::fused::{adain_act, Activation};
use super::{conv1d, GraphError, KokoroWeights, Result};

/// `upsample_rates`: stride of `ups.0`, `ups.1` (kernels are twice the stride).
pub const UPSAMPLE_RATES: [usize; 2] = [10, 6];
/// Resblocks per stage (`resblock_kernel_sizes` 3, 7, 11).
pub const N_KERNELS: usize = 3;
/// Dilations of `convs1` in every `AdaINResBlock1`.
const DILATIONS: [usize; 3] = [1, 3, 5];
/// LeakyReLU slope before each upsampling (`LRELU_SLOPE`).
const UPS_SLOPE: f32 = 0.1;
/// `F.leaky_relu` default slope before `conv_post`.
const POST_SLOPE: f32 = 0.01;

/// `AdaINResBlock1(channels, kernel_size, dilation=(1, 3, 5), style_dim=128)`: three
/// `x += conv2(snake2(AdaIN2(conv1(snake1(AdaIN1(x))))))` steps, weights under `{prefix}.{j}`.
#[derive(Debug, Clone, Copy)]
pub struct AdaInResBlock1;

impl AdaInResBlock1 {
    /// `x` `[T, C]` → `[T, C]`.
    pub fn forward<'a>(
        ctx: &'a Context,
        w: &'a KokoroWeights,
        prefix: &str,
        mut x: Tensor<'a>,
        s: Tensor<'a>,
    ) -> Result<Tensor<'a>> {
        for (j, &dil) in DILATIONS.iter().enumerate() {
            let p = format!("{prefix}.{j}");
            let k = w.tensor(&format!("{p}.convs1_weight"))?.ne()[0] as usize;
            let snake1 = Activation::Snake(w.tensor(&format!("{p}.alpha1"))?);
            let mut t = adain_act(
                ctx,
                w,
                &format!("{p}.gamma1"),
                &format!("{p}.beta1"),
                x,
                s,
                snake1,
            )?;
            t = conv1d(ctx, w, &format!("{p}.convs1"), t, 1, dil * (k - 1) / 2, dil)?;
            let snake2 = Activation::Snake(w.tensor(&format!("{p}.alpha2"))?);
            t = adain_act(
                ctx,
                w,
                &format!("{p}.gamma2"),
                &format!("{p}.beta2"),
                t,
                s,
                snake2,
            )?;
            t = conv1d(ctx, w, &format!("{p}.convs2"), t, 1, (k - 1) / 2, 1)?;
            x = ctx.add(t, x)?;
        }
        Ok(x)
    }
}

/// `ConvTranspose1d(C_in, C_out, 2r, stride r, padding r/2)` on `x` `[L, C_in]` → `[L·r, C_out]`:
/// ggml's unpadded transposed conv, cropped by the padding on both sides, plus the bias.
fn upsample<'a>(
    ctx: &'a Context,
    w: &'a KokoroWeights,
    prefix: &str,
    x: Tensor<'a>,
    rate: usize,
) -> Result<Tensor<'a>> {
    let kernel = w.tensor(&format!("{prefix}.weight"))?; // [K, C_out, C_in]
    let k = kernel.ne()[0] as usize;
    if k != 2 * rate {
        return Err(GraphError::Input(format!(
            "{prefix}.weight has kernel {k}, expected {} for stride {rate}",
            2 * rate
        )));
    }
    let pad = (k - rate) / 2;
    let full = if matches!(kernel.ty(), tts_ggml::GgmlType::F32 | tts_ggml::GgmlType::F16) {
        ctx.conv_transpose_1d_direct(kernel, x, rate)? // one GEMM per tap, no col2im
    } else {
        ctx.conv_transpose_1d(kernel, x, rate)?
    }; // [(L−1)·r + K, C_out]
    let [n_full, c_out, ..] = full.ne();
    let n = n_full - 2 * pad as i64;
    let es = std::mem::size_of::<f32>();
    let cur = ctx.view(full, &[n, c_out], &[full.nb()[1]], pad * es)?;
    let cur = ctx.cont(cur)?; // [L·r, C_out]
    let bias = ctx.reshape(w.tensor(&format!("{prefix}.bias"))?, &[1, c_out])?;
    Ok(ctx.add(cur, bias)?)
}

/// `Generator.forward` after the source module and STFT.
#[derive(Debug, Clone, Copy)]
pub struct Generator;

impl Generator {
    /// `x` = `generator_in` `[2F, 512]`, `har` = `har_spec_phase` `[120F+1, 22]`, `s` =
    /// `style_decoder_s` `[128]` → `conv_post_out` `[120F+1, 22]`.
    pub fn forward<'a>(
        ctx: &'a Context,
        w: &'a KokoroWeights,
        mut x: Tensor<'a>,
        har: Tensor<'a>,
        s: Tensor<'a>,
    ) -> Result<Tensor<'a>> {
        let p = "kokoro.decoder.generator";
        let n_frames = x.ne()[0];
        if har.ne()[0] != 60 * n_frames + 1 {
            return Err(GraphError::Input(format!(
                "har_spec_phase has {} frames, expected {} for generator_in of length {n_frames}",
                har.ne()[0],
                60 * n_frames + 1
            )));
        }
        for (i, &rate) in UPSAMPLE_RATES.iter().enumerate() {
            x = ctx.leaky_relu(x, UPS_SLOPE)?;
            let nb = format!("{p}.noise_blocks.{i}");
            let nk = w.tensor(&format!("{nb}.conv_weight"))?.ne()[0] as usize;
            // noise_convs: kernel 2·stride, stride = the remaining upsampling, or 1×1 at the end.
            let (stride, padding) = if i + 1 < UPSAMPLE_RATES.len() {
                let st: usize = UPSAMPLE_RATES[i + 1..].iter().product();
                (st, st.div_ceil(2))
            } else {
                (1, 0)
            };
            if nk != if stride == 1 { 1 } else { 2 * stride } {
                return Err(GraphError::Input(format!(
                    "{nb}.conv_weight: unexpected kernel {nk}"
                )));
            }
            let src = conv1d(ctx, w, &format!("{nb}.conv"), har, stride, padding, 1)?;
            let src = AdaInResBlock1::forward(ctx, w, &format!("{nb}.resblock"), src, s)?;
            x = upsample(ctx, w, &format!("{p}.ups.{i}"), x, rate)?;
            if i + 1 == UPSAMPLE_RATES.len() {
                x = ctx.pad_reflect_1d(x, 1, 0)?; // prepends x[1]
            }
            x = ctx.add(x, src)?;
            let mut xs: Option<Tensor<'a>> = None;
            for j in 0..N_KERNELS {
                let r =
                    AdaInResBlock1::forward(ctx, w, &format!("{p}.resblocks.{}", i * N_KERNELS + j), x, s)?;
                xs = Some(match xs {
                    None => r,
                    Some(acc) => ctx.add(acc, r)?,
                });
            }
            let xs = xs.ok_or_else(|| GraphError::Input("no resblocks".into()))?;
            x = ctx.scale(xs, 1.0 / N_KERNELS as f32, 0.0)?;
        }
        x = ctx.leaky_relu(x, POST_SLOPE)?;
        let out = conv1d(ctx, w, &format!("{p}.conv_post"), x, 1, 3, 1)?; // [N, 22]
        Ok(out.set_name("conv_post_out")?)
    }
}
