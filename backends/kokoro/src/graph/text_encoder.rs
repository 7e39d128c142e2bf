//! `TextEncoder`: embedding, 3 × (Conv1d k5 p2 → channel `LayerNorm` → LeakyReLU 0.2), BiLSTM.
//!
//! Reference: `TextEncoder` and `LayerNorm` in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/modules.py>; kokoro-model.md §3 step
//! 10. The padding mask of the reference is a no-op for batch 1 without padding.

use tts_ggml::{Context, Tensor};

use super::lstm::BiLstm;
use super::{conv1d_tiled, KokoroWeights, LayerNorm, Loader, Result, Weight};
use crate::weights::TextEncoderNames;

/// Channel LayerNorm eps.
const EPS: f32 = 1e-5;
/// LeakyReLU slope.
const SLOPE: f32 = 0.2;

/// One CNN layer: `Conv1d(512, 512, k, padding (k−1)/2)` → channel `LayerNorm` → LeakyReLU.
#[derive(Debug, Clone)]
struct CnnLayer {
    kernel: Weight,
    bias: Weight,
    padding: usize,
    norm: LayerNorm,
}

/// `TextEncoder(channels=512, kernel_size=5, depth=3, n_symbols=178)`.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    embedding: Weight,
    cnn: Vec<CnnLayer>,
    lstm: BiLstm,
}

impl TextEncoder {
    /// Resolves the text encoder's tensors; the depth and kernel size from [`crate::HParams`].
    pub fn load(ld: &Loader<'_>, n: &TextEncoderNames) -> Result<Self> {
        let padding = (ld.hparams().dims.text_encoder_kernel as usize - 1) / 2;
        let cnn = n
            .layers
            .iter()
            .map(|l| {
                Ok(CnnLayer {
                    kernel: ld.weight(&l.conv.weight)?,
                    bias: ld.weight(&l.conv.bias)?,
                    padding,
                    norm: LayerNorm {
                        gamma: ld.weight(&l.gamma)?,
                        beta: ld.weight(&l.beta)?,
                        eps: EPS,
                    },
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            embedding: ld.weight(&n.embedding)?,
            cnn,
            lstm: BiLstm::load(ld, &n.lstm)?,
        })
    }

    /// `ids` an I32 input `[T]` → `t_en` `[512, T]`.
    pub fn forward<'a>(&self, ctx: &'a Context, w: &'a KokoroWeights, ids: Tensor<'a>) -> Result<Tensor<'a>> {
        let mut cur = ctx.get_rows(w.get(&self.embedding)?, ids)?; // [512, T]
        for (il, l) in self.cnn.iter().enumerate() {
            let x = ctx.cont(ctx.transpose(cur)?)?; // [T, 512]
            let x = conv1d_tiled(ctx, w.get(&l.kernel)?, x, 1, l.padding, 1)?; // [T, 512, 1]
            let x = ctx.cont(ctx.transpose(x)?)?; // [512, T]
            let x = ctx.add(x, w.get(&l.bias)?)?; // [512, T]
            let x = l.norm.forward(ctx, w, x)?; // [512, T]
            cur = ctx
                .leaky_relu(x, SLOPE)?
                .set_name(&format!("text_encoder.cnn.{il}"))?; // [512, T]
        }
        self.lstm.forward(ctx, w, cur, "t_en") // [512, T]
    }
}
