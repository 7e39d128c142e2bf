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
use super::{Conv1d, GraphError, KokoroWeights, Loader, Result, StyleFc, Weight};
use crate::weights::{GeneratorNames, ResBlock1MemberNames, WeightBias};

/// LeakyReLU slope before each upsampling (`LRELU_SLOPE`).
const UPS_SLOPE: f32 = 0.1;
/// `F.leaky_relu` default slope before `conv_post`.
const POST_SLOPE: f32 = 0.01;

/// One `x += conv2(snake2(AdaIN2(conv1(snake1(AdaIN1(x))))))` step of an `AdaINResBlock1`.
#[derive(Debug, Clone)]
struct ResBlock1Member {
    norm1: StyleFc,
    alpha1: Weight,
    convs1: Conv1d,
    norm2: StyleFc,
    alpha2: Weight,
    convs2: Conv1d,
}

/// `AdaINResBlock1(channels, kernel_size, dilation=(1, 3, 5), style_dim=128)`: three
/// `x += conv2(snake2(AdaIN2(conv1(snake1(AdaIN1(x))))))` steps.
#[derive(Debug, Clone)]
pub struct AdaInResBlock1 {
    members: Vec<ResBlock1Member>,
}

impl AdaInResBlock1 {
    /// Resolves the members `names` with kernel size `k` and one dilation per member (from
    /// [`crate::HParams`]).
    pub fn load(ld: &Loader<'_>, names: &[ResBlock1MemberNames], k: u64, dilations: &[u64]) -> Result<Self> {
        if names.len() != dilations.len() {
            return Err(GraphError::Input(format!(
                "{} resblock members but {} dilations",
                names.len(),
                dilations.len()
            )));
        }
        let k = k as usize;
        let members = names
            .iter()
            .zip(dilations)
            .map(|(m, &dil)| {
                let dil = dil as usize;
                Ok(ResBlock1Member {
                    norm1: StyleFc::load(ld, &m.norm1)?,
                    alpha1: ld.weight(&m.alpha1)?,
                    convs1: Conv1d::load(ld, &m.convs1, 1, dil * (k - 1) / 2, dil)?,
                    norm2: StyleFc::load(ld, &m.norm2)?,
                    alpha2: ld.weight(&m.alpha2)?,
                    convs2: Conv1d::load(ld, &m.convs2, 1, (k - 1) / 2, 1)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { members })
    }

    /// `x` `[T, C]` → `[T, C]`.
    pub fn forward<'a>(
        &self,
        ctx: &'a Context,
        w: &'a KokoroWeights,
        mut x: Tensor<'a>,
        s: Tensor<'a>,
    ) -> Result<Tensor<'a>> {
        for m in &self.members {
            let snake1 = Activation::Snake(w.get(&m.alpha1)?);
            let mut t = adain_act(ctx, w, &m.norm1, x, s, snake1)?;
            t = m.convs1.forward(ctx, w, t)?;
            let snake2 = Activation::Snake(w.get(&m.alpha2)?);
            t = adain_act(ctx, w, &m.norm2, t, s, snake2)?;
            t = m.convs2.forward(ctx, w, t)?;
            x = ctx.add(t, x)?;
        }
        Ok(x)
    }
}

/// `ConvTranspose1d(C_in, C_out, 2r, stride r, padding r/2)` on `x` `[L, C_in]` → `[L·r, C_out]`:
/// ggml's unpadded transposed conv, cropped by the padding on both sides, plus the bias.
#[derive(Debug, Clone)]
struct Upsample {
    /// `[K, C_out, C_in]`.
    kernel: Weight,
    bias: Weight,
    rate: usize,
    pad: usize,
}

impl Upsample {
    fn load(ld: &Loader<'_>, n: &WeightBias, rate: u64) -> Result<Self> {
        let kernel = ld.weight(&n.weight)?;
        let (k, rate) = (kernel.ne()[0] as usize, rate as usize);
        if k != 2 * rate {
            return Err(GraphError::Input(format!(
                "{} has kernel {k}, expected {} for stride {rate}",
                n.weight,
                2 * rate
            )));
        }
        Ok(Self {
            kernel,
            bias: ld.weight(&n.bias)?,
            rate,
            pad: (k - rate) / 2,
        })
    }

    fn forward<'a>(&self, ctx: &'a Context, w: &'a KokoroWeights, x: Tensor<'a>) -> Result<Tensor<'a>> {
        let kernel = w.get(&self.kernel)?; // [K, C_out, C_in]
        let full = if matches!(kernel.ty(), tts_ggml::GgmlType::F32 | tts_ggml::GgmlType::F16) {
            ctx.conv_transpose_1d_direct(kernel, x, self.rate)? // one GEMM per tap, no col2im
        } else {
            ctx.conv_transpose_1d(kernel, x, self.rate)?
        }; // [(L−1)·r + K, C_out]
        let [n_full, c_out, ..] = full.ne();
        let n = n_full - 2 * self.pad as i64;
        let es = std::mem::size_of::<f32>();
        let cur = ctx.view(full, &[n, c_out], &[full.nb()[1]], self.pad * es)?;
        let cur = ctx.cont(cur)?; // [L·r, C_out]
        let bias = ctx.reshape(w.get(&self.bias)?, &[1, c_out])?;
        Ok(ctx.add(cur, bias)?)
    }
}

/// One upsampling stage: `ups[i]`, the noise branch (`noise_convs[i]` + `noise_res[i]`) and the
/// `n_kernels` resblocks whose mean follows.
#[derive(Debug, Clone)]
struct Stage {
    ups: Upsample,
    noise_conv: Conv1d,
    noise_res: AdaInResBlock1,
    resblocks: Vec<AdaInResBlock1>,
    /// The last stage prepends `x[1]` (reflection pad) before adding the noise branch.
    reflect_pad: bool,
}

/// `SourceModuleHnNSF.l_linear` (harmonics → 1) on the host, for [`crate::dsp::harmonic`].
#[derive(Debug, Clone)]
pub struct SourceLinear {
    /// `[N_HARMONICS]`.
    pub weight: Vec<f32>,
    pub bias: f32,
}

/// `Generator.forward` after the source module and STFT.
#[derive(Debug, Clone)]
pub struct Generator {
    /// The harmonic source's `l_linear`, read once on the host.
    pub source: SourceLinear,
    stages: Vec<Stage>,
    conv_post: Conv1d,
    /// STFT frames of `har` per `generator_in` frame: `prod(upsample_rates)` (60).
    stft_per_frame: i64,
}

impl Generator {
    /// Resolves the generator's tensors; strides, kernels and dilations from [`crate::HParams`].
    pub fn load(ld: &Loader<'_>, n: &GeneratorNames) -> Result<Self> {
        let hp = ld.hparams();
        let n_kernels = hp.n_kernels as usize;
        let bias = ld.host_f32(&n.m_source.bias)?;
        let source = SourceLinear {
            weight: ld.host_f32(&n.m_source.weight)?,
            bias: *bias
                .first()
                .ok_or_else(|| GraphError::MissingTensor(n.m_source.bias.clone()))?,
        };
        let stages = (0..hp.n_upsamples as usize)
            .map(|i| {
                let iu = i as u64;
                let at = |v: &[u64], what: &str| {
                    v.get(i)
                        .copied()
                        .ok_or_else(|| GraphError::Input(format!("no {what} for upsample stage {i}")))
                };
                let (stride, padding) = (
                    at(&hp.noise_strides, "noise stride")?,
                    at(&hp.noise_paddings, "noise padding")?,
                );
                let noise_conv = Conv1d::load(ld, &n.noise_convs[i], stride as usize, padding as usize, 1)?;
                let noise_res = AdaInResBlock1::load(
                    ld,
                    &n.noise_res[i],
                    hp.noise_res_kernel(iu),
                    &hp.noise_res_dilations[i],
                )?;
                let resblocks = (0..n_kernels)
                    .map(|j| {
                        let k = i * n_kernels + j;
                        AdaInResBlock1::load(
                            ld,
                            &n.resblocks[k],
                            hp.resblock_kernel(k as u64),
                            &hp.resblock_dilations[k],
                        )
                    })
                    .collect::<Result<_>>()?;
                Ok(Stage {
                    ups: Upsample::load(ld, &n.ups[i], at(&hp.upsample_strides, "upsample stride")?)?,
                    noise_conv,
                    noise_res,
                    resblocks,
                    reflect_pad: i + 1 == hp.n_upsamples as usize,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            source,
            stages,
            conv_post: Conv1d::load(ld, &n.conv_post, 1, hp.conv_post_padding as usize, 1)?,
            stft_per_frame: hp.stft_frames_per_frame() as i64,
        })
    }

    /// `x` = `generator_in` `[2F, 512]`, `har` = `har_spec_phase` `[120F+1, 22]`, `s` =
    /// `style_decoder_s` `[128]` → `conv_post_out` `[120F+1, 22]`.
    pub fn forward<'a>(
        &self,
        ctx: &'a Context,
        w: &'a KokoroWeights,
        mut x: Tensor<'a>,
        har: Tensor<'a>,
        s: Tensor<'a>,
    ) -> Result<Tensor<'a>> {
        let n_frames = x.ne()[0];
        if har.ne()[0] != self.stft_per_frame * n_frames + 1 {
            return Err(GraphError::Input(format!(
                "har_spec_phase has {} frames, expected {} for generator_in of length {n_frames}",
                har.ne()[0],
                self.stft_per_frame * n_frames + 1
            )));
        }
        for st in &self.stages {
            x = ctx.leaky_relu(x, UPS_SLOPE)?;
            let src = st.noise_conv.forward(ctx, w, har)?;
            let src = st.noise_res.forward(ctx, w, src, s)?;
            x = st.ups.forward(ctx, w, x)?;
            if st.reflect_pad {
                x = ctx.pad_reflect_1d(x, 1, 0)?; // prepends x[1]
            }
            x = ctx.add(x, src)?;
            let mut xs: Option<Tensor<'a>> = None;
            for rb in &st.resblocks {
                let r = rb.forward(ctx, w, x, s)?;
                xs = Some(match xs {
                    None => r,
                    Some(acc) => ctx.add(acc, r)?,
                });
            }
            let xs = xs.ok_or_else(|| GraphError::Input("no resblocks".into()))?;
            x = ctx.scale(xs, 1.0 / st.resblocks.len() as f32, 0.0)?;
        }
        x = ctx.leaky_relu(x, POST_SLOPE)?;
        let out = self.conv_post.forward(ctx, w, x)?; // [N, 22]
        Ok(out.set_name("conv_post_out")?)
    }
}
