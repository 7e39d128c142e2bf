//! PL-BERT: `CustomAlbert` (transformers `AlbertModel`, one shared layer applied 12 times) and
//! the `bert_encoder` projection (`nn.Linear(768, 512)`).
//!
//! Reference: `KModel.bert` / `KModel.bert_encoder` in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/model.py> and `CustomAlbert` in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/modules.py>; kokoro-model.md §3 steps
//! 1–3. Numerics: LayerNorm eps 1e-12, `gelu_new`, attention scale 1/8, no mask (batch 1).

use tts_ggml::{Context, Tensor};

use super::{gelu_new, KokoroWeights, LayerNorm, Linear, Loader, Result, Weight};
use crate::weights::{AlbertLayerNames, AlbertNames, PredictorNames};

/// ALBERT LayerNorm eps.
const EPS: f32 = 1e-12;

/// One `AlbertLayer` (attention + FFN), shared by every application.
#[derive(Debug, Clone)]
pub struct AlbertLayer {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ffn_norm: LayerNorm,
    ffn: Linear,
    ffn_out: Linear,
    attn_norm: LayerNorm,
}

impl AlbertLayer {
    fn load(ld: &Loader<'_>, n: &AlbertLayerNames) -> Result<Self> {
        let norm = |wb: &crate::weights::WeightBias| -> Result<LayerNorm> {
            Ok(LayerNorm {
                gamma: ld.weight(&wb.weight)?,
                beta: ld.weight(&wb.bias)?,
                eps: EPS,
            })
        };
        Ok(Self {
            q: Linear::load(ld, &n.q)?,
            k: Linear::load(ld, &n.k)?,
            v: Linear::load(ld, &n.v)?,
            o: Linear::load(ld, &n.o)?,
            ffn_norm: norm(&n.ffn_norm)?,
            ffn: Linear::load(ld, &n.ffn)?,
            ffn_out: Linear::load(ld, &n.ffn_out)?,
            attn_norm: norm(&n.attn_norm)?,
        })
    }
}

/// `CustomAlbert` (`AlbertModel.forward(...).last_hidden_state`).
#[derive(Debug, Clone)]
pub struct CustomAlbert {
    token_embd: Weight,
    position_embd: Weight,
    token_type_embd: Weight,
    norm: LayerNorm,
    embd: Linear,
    /// `num_hidden_groups` distinct layers (Kokoro-82M: 1).
    layers: Vec<AlbertLayer>,
    /// `hidden_size` (768).
    n_hidden: i64,
    /// `num_attention_heads` (12).
    n_head: i64,
    /// `num_hidden_layers`: applications of the layers (12).
    n_recurrence: usize,
}

impl CustomAlbert {
    /// Resolves the ALBERT tensors; sizes from [`crate::HParams`].
    pub fn load(ld: &Loader<'_>, n: &AlbertNames) -> Result<Self> {
        let hp = ld.hparams();
        Ok(Self {
            token_embd: ld.weight(&n.token_embd)?,
            position_embd: ld.weight(&n.position_embd)?,
            token_type_embd: ld.weight(&n.token_type_embd)?,
            norm: LayerNorm {
                gamma: ld.weight(&n.norm.weight)?,
                beta: ld.weight(&n.norm.bias)?,
                eps: EPS,
            },
            embd: Linear::load(ld, &n.embd)?,
            layers: n
                .layers
                .iter()
                .map(|l| AlbertLayer::load(ld, l))
                .collect::<Result<_>>()?,
            n_hidden: hp.albert_hidden_size as i64,
            n_head: hp.albert_attn_heads as i64,
            n_recurrence: hp.albert_recurrence as usize,
        })
    }

    /// `ids` and `pos` are I32 inputs `[T]` (token ids; positions `0..T`). Returns
    /// `bert_last_hidden_state` `[768, T]`.
    pub fn forward<'a>(
        &self,
        ctx: &'a Context,
        w: &'a KokoroWeights,
        ids: Tensor<'a>,
        pos: Tensor<'a>,
    ) -> Result<Tensor<'a>> {
        let n_t = ids.ne()[0];
        let (n_hidden, n_head) = (self.n_hidden, self.n_head);
        let head_dim = n_hidden / n_head;
        // AlbertEmbeddings: word + position + token_type(0), LayerNorm.
        let mut cur = ctx.get_rows(w.get(&self.token_embd)?, ids)?; // [128, T]
        cur = ctx.add(cur, ctx.get_rows(w.get(&self.position_embd)?, pos)?)?; // [128, T]
        cur = ctx.add(cur, w.get(&self.token_type_embd)?)?; // [128, T]
        cur = self.norm.forward(ctx, w, cur)?; // [128, T]
        cur = self.embd.forward(ctx, w, cur)?.set_name("albert.embd")?; // [768, T]

        for il in 0..self.n_recurrence {
            // AlbertTransformer: layer group `il / (n_recurrence / n_groups)`.
            let l = &self.layers[il * self.layers.len() / self.n_recurrence.max(1)];
            // AlbertAttention
            let q = l.q.forward(ctx, w, cur)?; // [768, T]
            let k = l.k.forward(ctx, w, cur)?; // [768, T]
            let v = l.v.forward(ctx, w, cur)?; // [768, T]
            let q = ctx.reshape(q, &[head_dim, n_head, n_t])?; // [64, 12, T]
            let q = ctx.cont(ctx.permute(q, [0, 2, 1, 3])?)?; // [64, T, 12]
            let k = ctx.reshape(k, &[head_dim, n_head, n_t])?; // [64, 12, T]
            let k = ctx.cont(ctx.permute(k, [0, 2, 1, 3])?)?; // [64, T, 12]
            let v = ctx.reshape(v, &[head_dim, n_head, n_t])?; // [64, 12, T]
            let v_t = ctx.cont(ctx.permute(v, [1, 2, 0, 3])?)?; // [T, 64, 12]
            let kq = ctx.mul_mat(k, q)?; // [T_k, T_q, 12]
            let kq = ctx.soft_max_ext(kq, None, 1.0 / (head_dim as f32).sqrt())?; // [T_k, T_q, 12]
            let kqv = ctx.mul_mat(v_t, kq)?; // [64, T_q, 12]
            let kqv = ctx.cont(ctx.permute(kqv, [0, 2, 1, 3])?)?; // [64, 12, T]
            let kqv = ctx.reshape(kqv, &[n_hidden, n_t])?; // [768, T]
            let attn = l.o.forward(ctx, w, kqv)?; // [768, T]
            let a = l.ffn_norm.forward(ctx, w, ctx.add(cur, attn)?)?; // [768, T]
                                                                      // AlbertLayer FFN
            let f = l.ffn.forward(ctx, w, a)?; // [2048, T]
            let f = gelu_new(ctx, f)?; // [2048, T]
            let f = l.ffn_out.forward(ctx, w, f)?; // [768, T]
            cur = l
                .attn_norm
                .forward(ctx, w, ctx.add(f, a)?)?
                .set_name(&format!("albert.layer.{il}"))?; // [768, T]
        }
        Ok(cur.set_name("bert_last_hidden_state")?)
    }
}

/// `KModel.bert_encoder`: `nn.Linear(768, 512)`; `[768, T]` → `bert_encoder_out` `[512, T]`.
#[derive(Debug, Clone)]
pub struct BertEncoder {
    proj: Linear,
}

impl BertEncoder {
    /// Resolves `encode` (stored under the predictor's prefix).
    pub fn load(ld: &Loader<'_>, n: &PredictorNames) -> Result<Self> {
        Ok(Self {
            proj: Linear::load(ld, &n.bert_encoder)?,
        })
    }

    /// `[768, T]` → `bert_encoder_out` `[512, T]`.
    pub fn forward<'a>(&self, ctx: &'a Context, w: &'a KokoroWeights, x: Tensor<'a>) -> Result<Tensor<'a>> {
        Ok(self.proj.forward(ctx, w, x)?.set_name("bert_encoder_out")?)
    }
}
