//! PL-BERT: `CustomAlbert` (transformers `AlbertModel`, one shared layer applied 12 times) and
//! the `bert_encoder` projection (`nn.Linear(768, 512)`).
//!
//! Reference: `KModel.bert` / `KModel.bert_encoder` in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/model.py> and `CustomAlbert` in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/modules.py>; kokoro-model.md §3 steps
//! 1–3. Numerics: LayerNorm eps 1e-12, `gelu_new`, attention scale 1/8, no mask (batch 1).

use tts_ggml::{Context, Tensor};

use super::{gelu_new, layer_norm, linear, KokoroWeights, Result};

/// ALBERT hidden size.
pub const HIDDEN: i64 = 768;
/// Attention heads.
pub const N_HEAD: i64 = 12;
/// Head size (768 / 12).
pub const HEAD_DIM: i64 = 64;
/// Applications of the shared layer (`num_hidden_layers`).
pub const N_RECURRENCE: usize = 12;
/// ALBERT LayerNorm eps.
const EPS: f32 = 1e-12;

/// `CustomAlbert` (`AlbertModel.forward(...).last_hidden_state`).
#[derive(Debug, Clone, Copy)]
pub struct CustomAlbert;

impl CustomAlbert {
    /// `ids` and `pos` are I32 inputs `[T]` (token ids; positions `0..T`). Returns
    /// `bert_last_hidden_state` `[768, T]`.
    pub fn forward<'a>(
        ctx: &'a Context,
        w: &'a KokoroWeights,
        ids: Tensor<'a>,
        pos: Tensor<'a>,
    ) -> Result<Tensor<'a>> {
        let n_t = ids.ne()[0];
        // AlbertEmbeddings: word + position + token_type(0), LayerNorm.
        let mut cur = ctx.get_rows(w.tensor("kokoro.albert.token_embd")?, ids)?; // [128, T]
        cur = ctx.add(cur, ctx.get_rows(w.tensor("kokoro.albert.position_embd")?, pos)?)?; // [128, T]
        cur = ctx.add(cur, w.tensor("kokoro.albert.token_type_embd")?)?; // [128, T]
        cur = layer_norm(
            ctx,
            cur,
            Some(w.tensor("kokoro.albert.norm")?),
            Some(w.tensor("kokoro.albert.norm_bias")?),
            EPS,
        )?; // [128, T]
        cur = linear(ctx, w, "kokoro.albert.embd", cur)?.set_name("albert.embd")?; // [768, T]

        let l = "kokoro.albert.layer.0";
        for il in 0..N_RECURRENCE {
            // AlbertAttention
            let q = linear(ctx, w, &format!("{l}.q"), cur)?; // [768, T]
            let k = linear(ctx, w, &format!("{l}.k"), cur)?; // [768, T]
            let v = linear(ctx, w, &format!("{l}.v"), cur)?; // [768, T]
            let q = ctx.reshape(q, &[HEAD_DIM, N_HEAD, n_t])?; // [64, 12, T]
            let q = ctx.cont(ctx.permute(q, [0, 2, 1, 3])?)?; // [64, T, 12]
            let k = ctx.reshape(k, &[HEAD_DIM, N_HEAD, n_t])?; // [64, 12, T]
            let k = ctx.cont(ctx.permute(k, [0, 2, 1, 3])?)?; // [64, T, 12]
            let v = ctx.reshape(v, &[HEAD_DIM, N_HEAD, n_t])?; // [64, 12, T]
            let v_t = ctx.cont(ctx.permute(v, [1, 2, 0, 3])?)?; // [T, 64, 12]
            let kq = ctx.mul_mat(k, q)?; // [T_k, T_q, 12]
            let kq = ctx.soft_max_ext(kq, None, 1.0 / (HEAD_DIM as f32).sqrt())?; // [T_k, T_q, 12]
            let kqv = ctx.mul_mat(v_t, kq)?; // [64, T_q, 12]
            let kqv = ctx.cont(ctx.permute(kqv, [0, 2, 1, 3])?)?; // [64, 12, T]
            let kqv = ctx.reshape(kqv, &[HIDDEN, n_t])?; // [768, T]
            let attn = linear(ctx, w, &format!("{l}.o"), kqv)?; // [768, T]
            let a = layer_norm(
                ctx,
                ctx.add(cur, attn)?,
                Some(w.tensor(&format!("{l}.ffn_norm"))?),
                Some(w.tensor(&format!("{l}.ffn_norm_bias"))?),
                EPS,
            )?; // [768, T]
                // AlbertLayer FFN
            let f = linear(ctx, w, &format!("{l}.ffn"), a)?; // [2048, T]
            let f = gelu_new(ctx, f)?; // [2048, T]
            let f = linear(ctx, w, &format!("{l}.ffn_out"), f)?; // [768, T]
            cur = layer_norm(
                ctx,
                ctx.add(f, a)?,
                Some(w.tensor(&format!("{l}.attn_norm"))?),
                Some(w.tensor(&format!("{l}.attn_norm_bias"))?),
                EPS,
            )?
            .set_name(&format!("albert.layer.{il}"))?; // [768, T]
        }
        Ok(cur.set_name("bert_last_hidden_state")?)
    }
}

/// `KModel.bert_encoder`: `nn.Linear(768, 512)`; `[768, T]` → `bert_encoder_out` `[512, T]`.
pub fn bert_encoder<'a>(ctx: &'a Context, w: &'a KokoroWeights, x: Tensor<'a>) -> Result<Tensor<'a>> {
    Ok(linear(ctx, w, "kokoro.duration_predictor.encode", x)?.set_name("bert_encoder_out")?)
}
