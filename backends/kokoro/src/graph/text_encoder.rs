//! `TextEncoder`: embedding, 3 × (Conv1d k5 p2 → channel `LayerNorm` → LeakyReLU 0.2), BiLSTM.
//!
//! Reference: `TextEncoder` and `LayerNorm` in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/modules.py>; kokoro-model.md §3 step
//! 10. The padding mask of the reference is a no-op for batch 1 without padding.

use tts_ggml::{Context, Tensor};

use super::lstm::bilstm;
use super::{conv1d_tiled, layer_norm, KokoroWeights, Result};

/// CNN layers.
pub const N_LAYERS: usize = 3;
/// Conv padding (kernel 5).
const PADDING: usize = 2;
/// Channel LayerNorm eps.
const EPS: f32 = 1e-5;
/// LeakyReLU slope.
const SLOPE: f32 = 0.2;

/// `TextEncoder(channels=512, kernel_size=5, depth=3, n_symbols=178)`.
#[derive(Debug, Clone, Copy)]
pub struct TextEncoder;

impl TextEncoder {
    /// `ids` an I32 input `[T]` → `t_en` `[512, T]`.
    pub fn forward<'a>(ctx: &'a Context, w: &'a KokoroWeights, ids: Tensor<'a>) -> Result<Tensor<'a>> {
        let p = "kokoro.text_encoder";
        let mut cur = ctx.get_rows(w.tensor(&format!("{p}.embedding_weight"))?, ids)?; // [512, T]
        for il in 0..N_LAYERS {
            let x = ctx.cont(ctx.transpose(cur)?)?; // [T, 512]
            let x = conv1d_tiled(
                ctx,
                w.tensor(&format!("{p}.layers.{il}.weight"))?,
                x,
                1,
                PADDING,
                1,
            )?; // [T, 512, 1]
            let x = ctx.cont(ctx.transpose(x)?)?; // [512, T]
            let x = ctx.add(x, w.tensor(&format!("{p}.layers.{il}.bias"))?)?; // [512, T]
            let x = layer_norm(
                ctx,
                x,
                Some(w.tensor(&format!("{p}.layers.{il}.gamma"))?),
                Some(w.tensor(&format!("{p}.layers.{il}.beta"))?),
                EPS,
            )?; // [512, T]
            cur = ctx
                .leaky_relu(x, SLOPE)?
                .set_name(&format!("text_encoder.cnn.{il}"))?; // [512, T]
        }
        bilstm(ctx, w, "kokoro.text_encoder.lstm.0", cur, "t_en") // [512, T]
    }
}
