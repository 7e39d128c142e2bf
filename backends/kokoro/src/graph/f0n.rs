//! `ProsodyPredictor.F0Ntrain`: the shared BiLSTM over the frame-rate features, then the F0 and N
//! branches (three `AdainResBlk1d` each, the second one upsampling ×2) and their 1×1 projections.
//!
//! Reference: `ProsodyPredictor.F0Ntrain` in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/modules.py>; kokoro-model.md §3 steps 8–9.

use tts_ggml::{Context, Tensor};

use super::decoder::AdainResBlk1d;
use super::lstm::BiLstm;
use super::{Conv1d, KokoroWeights, Loader, Result};
use crate::weights::PredictorNames;

/// Outputs of [`F0Ntrain::forward`].
#[derive(Debug, Clone, Copy)]
pub struct F0nTensors<'a> {
    /// `F0_pred` `[2F, 1]`.
    pub f0: Tensor<'a>,
    /// `N_pred` `[2F, 1]`.
    pub n: Tensor<'a>,
}

/// One branch (F0 or N): its blocks and its 1×1 projection.
#[derive(Debug, Clone)]
struct Branch {
    blocks: Vec<AdainResBlk1d>,
    proj: Conv1d,
    name: &'static str,
}

/// `ProsodyPredictor.F0Ntrain(x, s)`.
#[derive(Debug, Clone)]
pub struct F0Ntrain {
    shared: BiLstm,
    /// `[F0, N]`.
    branches: [Branch; 2],
}

impl F0Ntrain {
    /// Resolves the shared LSTM and both branches; block sizes from [`crate::HParams`].
    pub fn load(ld: &Loader<'_>, n: &PredictorNames) -> Result<Self> {
        let hp = ld.hparams();
        let branch = |blocks: &[crate::weights::AdainResBlk1dNames],
                      proj: &crate::weights::WeightBias,
                      name: &'static str|
         -> Result<Branch> {
            Ok(Branch {
                blocks: blocks
                    .iter()
                    .enumerate()
                    .map(|(i, b)| AdainResBlk1d::load(ld, b, hp.f0n_block(i as u64)))
                    .collect::<Result<_>>()?,
                proj: Conv1d::load(ld, proj, 1, 0, 1)?,
                name,
            })
        };
        Ok(Self {
            shared: BiLstm::load(ld, &n.shared_lstm)?,
            branches: [
                branch(&n.f0_blocks, &n.f0_proj, "F0_pred")?,
                branch(&n.n_blocks, &n.n_proj, "N_pred")?,
            ],
        })
    }

    /// `en` `[640, F]` (channel-major, `d·A`), `s` = `style_predictor_s` `[128]`.
    pub fn forward<'a>(
        &self,
        ctx: &'a Context,
        w: &'a KokoroWeights,
        en: Tensor<'a>,
        s: Tensor<'a>,
    ) -> Result<F0nTensors<'a>> {
        let x = self.shared.forward(ctx, w, en, "shared_lstm")?; // [512, F]
        let x = ctx.cont(ctx.transpose(x)?)?; // [F, 512]
        let mut outs = Vec::with_capacity(2);
        for b in &self.branches {
            let mut cur = x;
            for block in &b.blocks {
                cur = block.forward(ctx, w, cur, s)?;
            } // [2F, 256]
            let out = b.proj.forward(ctx, w, cur)?; // [2F, 1]
            outs.push(out.set_name(b.name)?);
        }
        Ok(F0nTensors {
            f0: outs[0],
            n: outs[1],
        })
    }
}
