//! `ProsodyPredictor`, duration path: `DurationEncoder` (3 × BiLSTM + `AdaLayerNorm`), the
//! duration BiLSTM, `duration_proj`, sigmoid, sum over the 50 bins, ÷ speed; host rounding to
//! `pred_dur`.
//!
//! Reference: `DurationEncoder`, `AdaLayerNorm` and `ProsodyPredictor` in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/modules.py>, `KModel.forward_with_tokens`
//! in <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/model.py>; kokoro-model.md §3 steps
//! 4–6 and §4.1.

use tts_ggml::{Context, Tensor};

use super::lstm::BiLstm;
use super::{layer_norm, KokoroWeights, Linear, Loader, Result, StyleFc};
use crate::weights::PredictorNames;

/// AdaLayerNorm eps.
const EPS: f32 = 1e-5;

/// Concatenates the style `s` `[S]` (broadcast over time) below `x` `[C, T]` → `[C+S, T]`.
fn cat_style<'a>(ctx: &'a Context, x: Tensor<'a>, s: Tensor<'a>) -> Result<Tensor<'a>> {
    let n_t = x.ne()[1];
    let s_t = ctx.repeat_4d(s, [s.ne()[0], n_t, 1, 1])?; // [128, T]
    Ok(ctx.concat(x, s_t, 0)?) // [C+128, T]
}

/// `AdaLayerNorm(style_dim=128, channels=512)`: `(1 + γ(s))·LN(x) + β(s)`, LN over channels
/// without affine; `γ`, `β` = the two halves of `fc(s)`.
#[derive(Debug, Clone)]
pub struct AdaLayerNorm {
    fc: StyleFc,
}

impl AdaLayerNorm {
    /// `x` `[C, T]`, `s` `[128]` → `[C, T]`.
    pub fn forward<'a>(
        &self,
        ctx: &'a Context,
        w: &'a KokoroWeights,
        x: Tensor<'a>,
        s: Tensor<'a>,
    ) -> Result<Tensor<'a>> {
        let (gamma, beta) = self.fc.forward(ctx, w, s)?; // [C, 1] each
        let cur = layer_norm(ctx, x, None, None, EPS)?; // [C, T]
        let cur = ctx.mul(cur, ctx.scale(gamma, 1.0, 1.0)?)?; // (1 + γ)·LN(x) [C, T]
        Ok(ctx.add(cur, beta)?) // [C, T]
    }
}

/// `DurationEncoder(sty_dim=128, d_model=512, nlayers=3)`.
#[derive(Debug, Clone)]
pub struct DurationEncoder {
    /// Per layer: its BiLSTM and its AdaLayerNorm.
    layers: Vec<(BiLstm, AdaLayerNorm)>,
}

impl DurationEncoder {
    /// Resolves the `n_layer` BiLSTM + AdaLayerNorm pairs.
    pub fn load(ld: &Loader<'_>, n: &PredictorNames) -> Result<Self> {
        let layers = n
            .encoder
            .iter()
            .map(|(lstm, norm)| {
                Ok((
                    BiLstm::load(ld, lstm)?,
                    AdaLayerNorm {
                        fc: StyleFc::load(ld, norm)?,
                    },
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// `d_en` = `bert_encoder_out` `[512, T]`, `s` = `style_predictor_s` `[128]` → `d`
    /// `[640, T]` (the last AdaLayerNorm output with the style appended; graph 2 needs it).
    pub fn forward<'a>(
        &self,
        ctx: &'a Context,
        w: &'a KokoroWeights,
        d_en: Tensor<'a>,
        s: Tensor<'a>,
    ) -> Result<Tensor<'a>> {
        let mut cur = cat_style(ctx, d_en, s)?; // [640, T]
        for (il, (lstm, norm)) in self.layers.iter().enumerate() {
            cur = lstm.forward(ctx, w, cur, &format!("duration_encoder.lstm.{il}"))?; // [512, T]
            cur = norm.forward(ctx, w, cur, s)?; // [512, T]
            cur = cat_style(ctx, cur, s)?; // [640, T]
        }
        Ok(cur.set_name("d")?)
    }
}

/// The duration head of `ProsodyPredictor`: `lstm` → `duration_proj` → sigmoid → Σ / speed.
#[derive(Debug, Clone)]
pub struct ProsodyPredictor {
    lstm: BiLstm,
    duration_proj: Linear,
}

/// Outputs of the duration head.
#[derive(Debug, Clone, Copy)]
pub struct DurationTensors<'a> {
    /// `duration_sigmoid` `[50, T]`.
    pub sigmoid: Tensor<'a>,
    /// `duration_float` `[1, T]`.
    pub duration: Tensor<'a>,
}

impl ProsodyPredictor {
    /// Resolves the duration LSTM and projection.
    pub fn load(ld: &Loader<'_>, n: &PredictorNames) -> Result<Self> {
        Ok(Self {
            lstm: BiLstm::load(ld, &n.duration_lstm)?,
            duration_proj: Linear::load(ld, &n.duration_proj)?,
        })
    }

    /// `d` `[640, T]`, `speed` a `[1]` input → the duration tensors.
    pub fn durations<'a>(
        &self,
        ctx: &'a Context,
        w: &'a KokoroWeights,
        d: Tensor<'a>,
        speed: Tensor<'a>,
    ) -> Result<DurationTensors<'a>> {
        let cur = self.lstm.forward(ctx, w, d, "duration_lstm")?; // [512, T]
        let cur = self.duration_proj.forward(ctx, w, cur)?; // [50, T]
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
