//! Per-request execution of the Kokoro graphs over shared weights.
//!
//! A [`KokoroRunner`] holds an `Arc` of the shared [`KokoroWeights`] and its own compute device
//! (thread count); every call builds a fresh context, graph and compute buffer (the per-request
//! state) and returns owned outputs. One runner per worker thread; weights shared by all.
//!
//! Besides the whole duration graph ([`KokoroRunner::durations`]: token ids, voice row, speed →
//! `pred_dur`), each stage can run alone on given inputs ([`KokoroRunner::albert`],
//! [`KokoroRunner::bert_encoder`], [`KokoroRunner::duration_head`],
//! [`KokoroRunner::text_encoder`]), which is how the golden tests feed each stage the golden
//! inputs (teacher forcing).

use std::sync::Arc;

use tts_ggml::{ComputeDevice, Context, ContextParams, GgmlType, GraphAllocator, Tensor};

use crate::graph::albert::{bert_encoder, CustomAlbert, HIDDEN};
use crate::graph::prosody::{round_durations, DurationEncoder, ProsodyPredictor, STYLE_DIM};
use crate::graph::text_encoder::TextEncoder;
use crate::graph::{GraphError, KokoroWeights, Result};

/// Maximum tokens per chunk including BOS/EOS (ALBERT positions).
pub const MAX_TOKENS: usize = 512;
/// Length of a voice row (`ref_s`): decoder style 0..128, predictor style 128..256.
pub const REF_S_LEN: usize = 256;
/// Graph capacity (ALBERT ≈ 12 × 40 nodes, each BiLSTM ≈ 20).
const GRAPH_SIZE: usize = 8192;
/// `bert_encoder` output channels.
const D_MODEL: usize = 512;
/// DurationEncoder output channels (512 + style).
const D_CHANNELS: usize = 640;

/// The duration graph's outputs, all `ne0`-fastest (`[C, T]` stored as `T` rows of `C`).
#[derive(Debug, Clone, PartialEq)]
pub struct Durations {
    /// DurationEncoder output `d` `[640, T]` (input of the alignment / F0-N graph).
    pub d: Vec<f32>,
    /// `duration_sigmoid` `[50, T]`.
    pub sigmoid: Vec<f32>,
    /// `duration_float` `[T]`.
    pub duration_float: Vec<f32>,
    /// `pred_dur` `[T]`: frames per token.
    pub pred_dur: Vec<i64>,
}

/// The style row of a voice pack for `n_phonemes` (tokens without the two pads):
/// `row = n_phonemes − 1`, clamped to the pack (kokoro-model.md §4.2).
pub fn style_row(n_phonemes: usize, n_rows: usize) -> usize {
    n_phonemes.saturating_sub(1).min(n_rows.saturating_sub(1))
}

/// Runs Kokoro graphs for one worker; see the module docs.
#[derive(Debug)]
pub struct KokoroRunner {
    weights: Arc<KokoroWeights>,
    device: ComputeDevice,
}

fn new_context() -> Result<Context> {
    Ok(Context::new(
        ContextParams::default()
            .with_n_tensors(GRAPH_SIZE)
            .with_graphs(1, GRAPH_SIZE),
    )?)
}

fn check_ids(ids: &[i32]) -> Result<()> {
    if ids.is_empty() || ids.len() > MAX_TOKENS {
        return Err(GraphError::Input(format!(
            "{} tokens, expected 1..={MAX_TOKENS} (BOS/EOS included)",
            ids.len()
        )));
    }
    Ok(())
}

fn check_len(what: &str, data: &[f32], n: usize) -> Result<()> {
    if data.len() != n {
        return Err(GraphError::Input(format!(
            "{what}: {} values, expected {n}",
            data.len()
        )));
    }
    Ok(())
}

fn check_speed(speed: f32) -> Result<()> {
    if !(speed.is_finite() && speed > 0.0) {
        return Err(GraphError::Input(format!("speed {speed} must be finite and > 0")));
    }
    Ok(())
}

/// Inputs of a graph with the values to upload.
enum Input<'a, 'v> {
    F32(Tensor<'a>, &'v [f32]),
    I32(Tensor<'a>, Vec<i32>),
}

impl KokoroRunner {
    /// A runner on a CPU device with `n_threads` threads over shared `weights`.
    pub fn new(weights: Arc<KokoroWeights>, n_threads: usize) -> Result<Self> {
        Ok(Self {
            weights,
            device: ComputeDevice::cpu(n_threads)?,
        })
    }

    /// The shared weights.
    pub fn weights(&self) -> &Arc<KokoroWeights> {
        &self.weights
    }

    /// Allocates, uploads, computes and reads back `outputs` (already marked as outputs).
    fn compute<'a>(
        &self,
        ctx: &'a Context,
        inputs: Vec<Input<'a, '_>>,
        outputs: &[Tensor<'a>],
    ) -> Result<Vec<Vec<f32>>> {
        let mut graph = ctx.new_graph(GRAPH_SIZE)?;
        for &o in outputs {
            graph.build_forward_expand(o)?;
        }
        let mut alloc = GraphAllocator::new(&self.device)?;
        let mut run = alloc.alloc(&graph)?;
        for input in inputs {
            match input {
                Input::F32(t, v) => run.set_f32(t, v)?,
                Input::I32(t, v) => run.set_i32(t, &v)?,
            }
        }
        run.compute()?;
        outputs.iter().map(|&o| Ok(run.get_f32(o)?)).collect()
    }

    fn ids_inputs<'a, 'v>(
        ctx: &'a Context,
        ids: &[i32],
        with_pos: bool,
    ) -> Result<(Tensor<'a>, Option<Tensor<'a>>, Vec<Input<'a, 'v>>)> {
        let n_t = ids.len() as i64;
        let ids_t = ctx
            .new_tensor_1d(GgmlType::I32, n_t)?
            .set_name("input_ids")?
            .set_input()?;
        let mut inputs = vec![Input::I32(ids_t, ids.to_vec())];
        let pos = if with_pos {
            let pos = ctx
                .new_tensor_1d(GgmlType::I32, n_t)?
                .set_name("positions")?
                .set_input()?;
            inputs.push(Input::I32(pos, (0..ids.len() as i32).collect()));
            Some(pos)
        } else {
            None
        };
        Ok((ids_t, pos, inputs))
    }

    /// ALBERT alone: token ids (BOS/EOS included) → `bert_last_hidden_state` `[768, T]`.
    pub fn albert(&self, ids: &[i32]) -> Result<Vec<f32>> {
        check_ids(ids)?;
        let ctx = new_context()?;
        let w = &*self.weights;
        let (ids_t, pos, inputs) = Self::ids_inputs(&ctx, ids, true)?;
        let pos = pos.ok_or_else(|| GraphError::Input("positions".into()))?;
        let out = CustomAlbert::forward(&ctx, w, ids_t, pos)?.set_output()?; // [768, T]
        let mut res = self.compute(&ctx, inputs, &[out])?;
        res.pop().ok_or_else(|| GraphError::Input("no output".into()))
    }

    /// `bert_encoder` alone: `[768, T]` → `bert_encoder_out` `[512, T]`.
    pub fn bert_encoder(&self, bert: &[f32]) -> Result<Vec<f32>> {
        let n_t = bert.len() / HIDDEN as usize;
        check_len("bert_last_hidden_state", bert, n_t * HIDDEN as usize)?;
        let ctx = new_context()?;
        let x = ctx
            .new_tensor_2d(GgmlType::F32, HIDDEN, n_t as i64)?
            .set_name("bert_last_hidden_state")?
            .set_input()?;
        let out = bert_encoder(&ctx, &self.weights, x)?.set_output()?; // [512, T]
        let mut res = self.compute(&ctx, vec![Input::F32(x, bert)], &[out])?;
        res.pop().ok_or_else(|| GraphError::Input("no output".into()))
    }

    /// The predictor's duration path alone: `bert_encoder_out` `[512, T]`, `style_predictor_s`
    /// `[128]`, speed → [`Durations`].
    pub fn duration_head(&self, d_en: &[f32], s_pred: &[f32], speed: f32) -> Result<Durations> {
        let n_t = d_en.len() / D_MODEL;
        check_len("bert_encoder_out", d_en, n_t * D_MODEL)?;
        check_len("style_predictor_s", s_pred, STYLE_DIM as usize)?;
        check_speed(speed)?;
        let ctx = new_context()?;
        let x = ctx
            .new_tensor_2d(GgmlType::F32, D_MODEL as i64, n_t as i64)?
            .set_name("bert_encoder_out")?
            .set_input()?;
        let (s, sp, mut inputs) = Self::style_speed_inputs(&ctx, s_pred)?;
        inputs.push(Input::F32(x, d_en));
        let speed_v = [speed];
        inputs.push(Input::F32(sp, &speed_v));
        self.run_duration_graph(&ctx, x, s, sp, inputs)
    }

    fn style_speed_inputs<'a, 'v>(
        ctx: &'a Context,
        s_pred: &'v [f32],
    ) -> Result<(Tensor<'a>, Tensor<'a>, Vec<Input<'a, 'v>>)> {
        let s = ctx
            .new_tensor_1d(GgmlType::F32, STYLE_DIM)?
            .set_name("style_predictor_s")?
            .set_input()?;
        let sp = ctx
            .new_tensor_1d(GgmlType::F32, 1)?
            .set_name("speed")?
            .set_input()?;
        Ok((s, sp, vec![Input::F32(s, s_pred)]))
    }

    fn run_duration_graph<'a>(
        &self,
        ctx: &'a Context,
        d_en: Tensor<'a>,
        s: Tensor<'a>,
        speed: Tensor<'a>,
        inputs: Vec<Input<'a, '_>>,
    ) -> Result<Durations> {
        let w = &*self.weights;
        let d = DurationEncoder::forward(ctx, w, d_en, s)?.set_output()?; // [640, T]
        let dur = ProsodyPredictor::durations(ctx, w, d, speed)?;
        let sig = dur.sigmoid.set_output()?; // [50, T]
        let df = dur.duration.set_output()?; // [1, T]
        let mut res = self.compute(ctx, inputs, &[d, sig, df])?.into_iter();
        let (Some(d), Some(sigmoid), Some(duration_float)) = (res.next(), res.next(), res.next()) else {
            return Err(GraphError::Input("missing outputs".into()));
        };
        debug_assert_eq!(d.len(), D_CHANNELS * duration_float.len());
        let pred_dur = round_durations(&duration_float);
        Ok(Durations {
            d,
            sigmoid,
            duration_float,
            pred_dur,
        })
    }

    /// The whole duration graph (kokoro-model.md §3 graph 1): token ids (BOS/EOS included), the
    /// voice row `ref_s` `[256]`, speed → [`Durations`].
    pub fn durations(&self, ids: &[i32], ref_s: &[f32], speed: f32) -> Result<Durations> {
        check_ids(ids)?;
        check_len("ref_s", ref_s, REF_S_LEN)?;
        check_speed(speed)?;
        let ctx = new_context()?;
        let w = &*self.weights;
        let (ids_t, pos, mut inputs) = Self::ids_inputs(&ctx, ids, true)?;
        let pos = pos.ok_or_else(|| GraphError::Input("positions".into()))?;
        let s_pred = &ref_s[STYLE_DIM as usize..];
        let (s, sp, more) = Self::style_speed_inputs(&ctx, s_pred)?;
        inputs.extend(more);
        let speed_v = [speed];
        inputs.push(Input::F32(sp, &speed_v));
        let bert = CustomAlbert::forward(&ctx, w, ids_t, pos)?; // [768, T]
        let d_en = bert_encoder(&ctx, w, bert)?; // [512, T]
        self.run_duration_graph(&ctx, d_en, s, sp, inputs)
    }

    /// The text encoder alone: token ids → `t_en` `[512, T]`.
    pub fn text_encoder(&self, ids: &[i32]) -> Result<Vec<f32>> {
        check_ids(ids)?;
        let ctx = new_context()?;
        let (ids_t, _, inputs) = Self::ids_inputs(&ctx, ids, false)?;
        let out = TextEncoder::forward(&ctx, &self.weights, ids_t)?.set_output()?; // [512, T]
        let mut res = self.compute(&ctx, inputs, &[out])?;
        res.pop().ok_or_else(|| GraphError::Input("no output".into()))
    }
}
