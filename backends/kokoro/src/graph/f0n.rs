//! `ProsodyPredictor.F0Ntrain`: the shared BiLSTM over the frame-rate features, then the F0 and N
//! branches (three `AdainResBlk1d` each, the second one upsampling ×2) and their 1×1 projections.
//!
//! Reference: `ProsodyPredictor.F0Ntrain` in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/modules.py>; kokoro-model.md §3 steps 8–9.

use tts_ggml::{Context, Tensor};

use super::decoder::AdainResBlk1d;
use super::lstm::bilstm;
use super::{conv1d_named, KokoroWeights, Result};

/// Outputs of [`F0Ntrain::forward`].
#[derive(Debug, Clone, Copy)]
pub struct F0nTensors<'a> {
    /// `F0_pred` `[2F, 1]`.
    pub f0: Tensor<'a>,
    /// `N_pred` `[2F, 1]`.
    pub n: Tensor<'a>,
}

/// `ProsodyPredictor.F0Ntrain(x, s)`.
#[derive(Debug, Clone, Copy)]
pub struct F0Ntrain;

impl F0Ntrain {
    /// `en` `[640, F]` (channel-major, `d·A`), `s` = `style_predictor_s` `[128]`.
    pub fn forward<'a>(
        ctx: &'a Context,
        w: &'a KokoroWeights,
        en: Tensor<'a>,
        s: Tensor<'a>,
    ) -> Result<F0nTensors<'a>> {
        let p = "kokoro.duration_predictor";
        let x = bilstm(ctx, w, &format!("{p}.shared_lstm.0"), en, "shared_lstm")?; // [512, F]
        let x = ctx.cont(ctx.transpose(x)?)?; // [F, 512]
        let mut outs = Vec::with_capacity(2);
        for (branch, proj, name) in [
            ("f0_blocks", "f0_proj", "F0_pred"),
            ("n_blocks", "n_proj", "N_pred"),
        ] {
            let mut cur = x;
            for i in 0..3 {
                cur = AdainResBlk1d::forward(ctx, w, &format!("{p}.{branch}.{i}"), cur, s, i == 1)?;
            } // [2F, 256]
            let kernel = format!("{p}.{proj}_kernel");
            let bias = format!("{p}.{proj}_bias");
            let out = conv1d_named(ctx, w, &kernel, &bias, cur, 1, 0, 1)?; // [2F, 1]
            outs.push(out.set_name(name)?);
        }
        Ok(F0nTensors {
            f0: outs[0],
            n: outs[1],
        })
    }
}
