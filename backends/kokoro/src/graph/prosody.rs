//! `ProsodyPredictor`, duration path: `DurationEncoder` (3 × BiLSTM + `AdaLayerNorm`), the
//! duration BiLSTM, `duration_proj`, sigmoid, sum over the 50 bins, ÷ speed; host rounding to
//! `pred_dur`.
//!
//! Reference: `DurationEncoder`, `AdaLayerNorm` and `ProsodyPredictor` in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/modules.py>, `KModel.forward_with_tokens`
//! in <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/model.py>; kokoro-model.md §3 steps
//! 4–6 and §4.1.

use tts_ggml::{Context, Tensor};

use super::lstm::bilstm;
use super::{layer_norm, linear, KokoroWeights, Result};

/// Style vector size.
pub const STYLE_DIM: i64 = 128;
/// `max_dur`: bins of the duration projection.
pub const MAX_DUR: i64 = 50;
/// AdaLayerNorm eps.
const EPS: f32 = 1e-5;

/// Concatenates the style `s` `[128]` (broadcast over time) below `x` `[C, T]` → `[C+128, T]`.
fn cat_style<'a>(ctx: &'a Context, x: Tensor<'a>, s: Tensor<'a>) -> Result<Tensor<'a>> {
    let n_t = x.ne()[1];
    let s_t = ctx.repeat_4d(s, [STYLE_DIM, n_t, 1, 1])?; // [128, T]
    Ok(ctx.concat(x, s_t, 0)?) // [C+128, T]
}

/// `AdaLayerNorm(style_dim=128, channels=512)`: `(1 + γ(s))·LN(x) + β(s)`, LN over channels
/// without affine; `γ`, `β` = the two halves of `fc(s)`, stored as `{prefix}.{gamma,beta}_{weight,bias}`.
#[derive(Debug, Clone, Copy)]
pub struct AdaLayerNorm;

impl AdaLayerNorm {
    /// `x` `[C, T]`, `s` `[128]` → `[C, T]`.
    pub fn forward<'a>(
        ctx: &'a Context,
        w: &'a KokoroWeights,
        prefix: &str,
        x: Tensor<'a>,
        s: Tensor<'a>,
    ) -> Result<Tensor<'a>> {
        let gamma = ctx.mul_mat(w.tensor(&format!("{prefix}.gamma_weight"))?, s)?; // [C, 1]
        let gamma = ctx.add(gamma, w.tensor(&format!("{prefix}.gamma_bias"))?)?; // [C, 1]
        let beta = ctx.mul_mat(w.tensor(&format!("{prefix}.beta_weight"))?, s)?; // [C, 1]
        let beta = ctx.add(beta, w.tensor(&format!("{prefix}.beta_bias"))?)?; // [C, 1]
        let cur = layer_norm(ctx, x, None, None, EPS)?; // [C, T]
        let cur = ctx.mul(cur, ctx.scale(gamma, 1.0, 1.0)?)?; // (1 + γ)·LN(x) [C, T]
        Ok(ctx.add(cur, beta)?) // [C, T]
    }
}

/// `DurationEncoder(sty_dim=128, d_model=512, nlayers=3)`.
#[derive(Debug, Clone, Copy)]
pub struct DurationEncoder;

impl DurationEncoder {
    /// `d_en` = `bert_encoder_out` `[512, T]`, `s` = `style_predictor_s` `[128]` → `d`
    /// `[640, T]` (the last AdaLayerNorm output with the style appended; graph 2 needs it).
    pub fn forward<'a>(
        ctx: &'a Context,
        w: &'a KokoroWeights,
        d_en: Tensor<'a>,
        s: Tensor<'a>,
    ) -> Result<Tensor<'a>> {
        let mut cur = cat_style(ctx, d_en, s)?; // [640, T]
        for il in 0..3 {
            let p = "kokoro.duration_predictor.layers";
            cur = bilstm(
                ctx,
                w,
                &format!("{p}.{}.lstm.0", 2 * il),
                cur,
                &format!("duration_encoder.lstm.{il}"),
            )?; // [512, T]
            cur = AdaLayerNorm::forward(ctx, w, &format!("{p}.{}", 2 * il + 1), cur, s)?; // [512, T]
            cur = cat_style(ctx, cur, s)?; // [640, T]
        }
        Ok(cur.set_name("d")?)
    }
}

/// The duration head of `ProsodyPredictor`: `lstm` → `duration_proj` → sigmoid → Σ / speed.
#[derive(Debug, Clone, Copy)]
pub struct ProsodyPredictor;

/// Outputs of the duration head.
#[derive(Debug, Clone, Copy)]
pub struct DurationTensors<'a> {
    /// `duration_sigmoid` `[50, T]`.
    pub sigmoid: Tensor<'a>,
    /// `duration_float` `[1, T]`.
    pub duration: Tensor<'a>,
}

impl ProsodyPredictor {
    /// `d` `[640, T]`, `speed` a `[1]` input → the duration tensors.
    pub fn durations<'a>(
        ctx: &'a Context,
        w: &'a KokoroWeights,
        d: Tensor<'a>,
        speed: Tensor<'a>,
    ) -> Result<DurationTensors<'a>> {
        let cur = bilstm(
            ctx,
            w,
            "kokoro.duration_predictor.duration_lstm.0",
            d,
            "duration_lstm",
        )?; // [512, T]
        let cur = linear(ctx, w, "kokoro.duration_predictor.duration_proj", cur)?; // [50, T]
        let sigmoid = ctx.sigmoid(cur)?.set_name("duration_sigmoid")?; // [50, T]
        let sum = ctx.sum_rows(sigmoid)?; // [1, T]
        let duration = ctx.div(sum, speed)?.set_name("duration_float")?; // [1, T]
        Ok(DurationTensors { sigmoid, duration })
    }
}

/// `pred_dur = max(round_half_even(duration_float), 1)` (ONNX `Round` + `Clip(min=1)`, no upper
/// clamp), on the host in f32 (kokoro-model.md §4.1).
pub fn round_durations(duration_float: &[f32]) -> Vec<i64> {
    duration_float
        .iter()
        .map(|&x| (x.round_ties_even() as i64).max(1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::round_durations;

    #[test]
    fn rounding_is_half_even_and_clamped_at_one() {
        assert_eq!(
            round_durations(&[0.2, 0.5, 1.5, 2.5, 2.51, 3.49, 60.5, -3.0]),
            vec![1, 1, 2, 2, 3, 3, 60, 1]
        );
    }
}
