//! Per-request execution of the Kokoro graphs over shared weights.
//!
//! A [`KokoroRunner`] holds an `Arc` of the shared [`KokoroWeights`] and its own compute device
//! (thread count); every call builds a fresh context, graph and compute buffer (the per-request
//! state) and returns owned outputs. One runner per worker thread; weights shared by all.
//!
//! This is the production path: the duration graph ([`KokoroRunner::durations`]: token ids,
//! voice row, speed → `pred_dur`) and the whole synthesis ([`KokoroRunner::synthesize`], with an
//! abort check: [`KokoroRunner::synthesize_until`]). Running one stage alone on given inputs
//! (teacher forcing, for the golden tests) is in [`crate::stages`]; capturing intermediates
//! ([`KokoroRunner::synthesize_traced`]) in [`crate::trace`].

use std::sync::Arc;

use tts_ggml::{ComputeDevice, Context, ContextParams, GgmlType, GraphAllocator, Scheduler, Tensor};

use crate::dsp::alignment::{alignment_matrix, n_frames};
use crate::dsp::harmonic::{harmonic_source, stft, stft_frames};
use crate::dsp::istft::istft;
use crate::graph::prosody::round_durations;
use crate::graph::{GraphError, KokoroWeights, Result};
use crate::hparams::HParams;
use crate::trace::Trace;

/// Maximum tokens per chunk including BOS/EOS (ALBERT positions).
pub const MAX_TOKENS: usize = 512;
/// Length of a voice row (`ref_s`): decoder style 0..128, predictor style 128..256.
pub const REF_S_LEN: usize = 256;
/// Graph capacity (ALBERT ≈ 12 × 40 nodes, each BiLSTM ≈ 20).
const GRAPH_SIZE: usize = 8192;
/// Scheduler capacity: nodes plus leafs (weights) of the largest graph.
const SCHED_SIZE: usize = 2 * GRAPH_SIZE;
/// Most frames one chunk may have (25 ms each: 200 s of audio). The generator's activations take
/// about 0.5 MB per frame (convolutions are tiled, see `graph::CONV_TILE`), so this bounds one
/// chunk's compute memory near 4 GB; a 510-token chunk needs ~1500 frames at speed 1 and ~6000 at
/// the slowest speed, 0.25.
pub const MAX_FRAMES: usize = 8_000;

/// Sizes of the graphs' inputs and outputs, from the hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    /// Style half of a voice row (128).
    pub style: usize,
    /// ALBERT hidden size (768).
    pub bert: usize,
    /// `bert_encoder` / text encoder / `asr` channels (512).
    pub d_model: usize,
    /// DurationEncoder output channels (512 + style).
    pub d_channels: usize,
    /// Decoder output channels (`generator_in`, 512).
    pub gen_channels: usize,
    /// STFT magnitude + phase channels of the harmonic source (22).
    pub har_channels: usize,
    /// STFT frames of the harmonic source per `generator_in` frame (60).
    pub stft_per_frame: usize,
}

impl Sizes {
    fn of(hp: &HParams) -> Self {
        let style = hp.dims.style_dim as usize;
        Self {
            style,
            bert: hp.albert_hidden_size as usize,
            d_model: hp.hidden_dim as usize,
            d_channels: hp.hidden_dim as usize + style,
            gen_channels: hp.dims.upsample_initial_channel as usize,
            har_channels: hp.post_channels() as usize,
            stft_per_frame: hp.stft_frames_per_frame() as usize,
        }
    }
}

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
    /// The CPU device: custom ops (the LSTM recurrence) and the fallback for every op.
    device: ComputeDevice,
    /// How graphs are placed: `None` = everything on `device` through a graph allocator;
    /// `Some(accelerator)` = ggml's scheduler over `[accelerator, device]` (or over `[device]`
    /// alone when the accelerator is `None`), which sends each op to the first device that
    /// supports it.
    scheduled: Option<Option<ComputeDevice>>,
}

pub(crate) fn new_context() -> Result<Context> {
    Ok(Context::new(
        ContextParams::default()
            .with_n_tensors(GRAPH_SIZE)
            .with_graphs(1, GRAPH_SIZE),
    )?)
}

pub(crate) fn check_ids(ids: &[i32]) -> Result<()> {
    if ids.is_empty() || ids.len() > MAX_TOKENS {
        return Err(GraphError::Input(format!(
            "{} tokens, expected 1..={MAX_TOKENS} (BOS/EOS included)",
            ids.len()
        )));
    }
    Ok(())
}

pub(crate) fn check_len(what: &str, data: &[f32], n: usize) -> Result<()> {
    if data.len() != n {
        return Err(GraphError::Input(format!(
            "{what}: {} values, expected {n}",
            data.len()
        )));
    }
    Ok(())
}

pub(crate) fn check_frames(n_f: usize) -> Result<()> {
    if n_f > MAX_FRAMES {
        return Err(GraphError::TooLong(format!(
            "{n_f} audio frames ({:.0} s) in one piece; at most {MAX_FRAMES} ({:.0} s)",
            n_f as f64 / 40.0,
            MAX_FRAMES as f64 / 40.0
        )));
    }
    if n_f == 0 {
        return Err(GraphError::Input(format!(
            "{n_f} frames, expected 1..={MAX_FRAMES}"
        )));
    }
    Ok(())
}

pub(crate) fn check_speed(speed: f32) -> Result<()> {
    if !(speed.is_finite() && speed > 0.0) {
        return Err(GraphError::Input(format!("speed {speed} must be finite and > 0")));
    }
    Ok(())
}

/// Inputs of a graph with the values to upload.
pub(crate) enum Input<'a, 'v> {
    F32(Tensor<'a>, &'v [f32]),
    I32(Tensor<'a>, Vec<i32>),
}

impl KokoroRunner {
    /// A runner on a CPU device with `n_threads` threads over shared `weights`.
    pub fn new(weights: Arc<KokoroWeights>, n_threads: usize) -> Result<Self> {
        Ok(Self {
            weights,
            device: ComputeDevice::cpu(n_threads)?,
            scheduled: None,
        })
    }

    /// A runner whose graphs go through ggml's backend scheduler: over `[accelerator, CPU]`
    /// (e.g. Metal), ops the accelerator lacks (the LSTM custom op) falling back to the CPU;
    /// with `accelerator = None`, over the CPU alone (same results as [`KokoroRunner::new`]).
    /// The weights stay in host memory; the scheduler copies what a device needs.
    pub fn with_devices(
        weights: Arc<KokoroWeights>,
        n_threads: usize,
        accelerator: Option<ComputeDevice>,
    ) -> Result<Self> {
        if accelerator.as_ref().is_some_and(ComputeDevice::is_cpu) {
            return Err(GraphError::Input(
                "the accelerator must not be a CPU device (the CPU is always the fallback)".into(),
            ));
        }
        Ok(Self {
            weights,
            device: ComputeDevice::cpu(n_threads)?,
            scheduled: Some(accelerator),
        })
    }

    /// The name of the device graphs are sent to first (`"CPU"` without an accelerator).
    pub fn device_name(&self) -> String {
        match &self.scheduled {
            Some(Some(acc)) => acc.name(),
            _ => self.device.name(),
        }
    }

    /// The shared weights.
    pub fn weights(&self) -> &Arc<KokoroWeights> {
        &self.weights
    }

    /// Sizes of the graphs' inputs and outputs.
    pub(crate) fn sizes(&self) -> Sizes {
        Sizes::of(self.weights.hparams())
    }

    /// Allocates, uploads, computes and reads back `outputs` (already marked as outputs), and
    /// every tensor of the graph whose name `trace` asks for.
    pub(crate) fn compute<'a>(
        &self,
        ctx: &'a Context,
        inputs: Vec<Input<'a, '_>>,
        outputs: &[Tensor<'a>],
        trace: &mut Trace,
    ) -> Result<Vec<Vec<f32>>> {
        let mut traced = Vec::new();
        if trace.is_active() {
            for t in ctx.tensors() {
                let name = t.name();
                if trace.wants(&name) {
                    traced.retain(|(n, _): &(String, Tensor<'a>)| *n != name);
                    traced.push((name, t.set_output()?));
                }
            }
        }
        let mut graph = ctx.new_graph(GRAPH_SIZE)?;
        for &o in outputs {
            graph.build_forward_expand(o)?;
        }
        let mut alloc;
        let mut sched;
        let mut run = match &self.scheduled {
            None => {
                alloc = GraphAllocator::new(&self.device)?;
                alloc.alloc(&graph)?
            }
            Some(acc) => {
                let devices: Vec<&ComputeDevice> = acc.iter().chain([&self.device]).collect();
                sched = Scheduler::new(&devices, SCHED_SIZE)?;
                sched.alloc(&graph)?
            }
        };
        for input in inputs {
            match input {
                Input::F32(t, v) => run.set_f32(t, v)?,
                Input::I32(t, v) => run.set_i32(t, &v)?,
            }
        }
        if trace.aborted() {
            return Err(GraphError::Aborted);
        }
        match trace.abort() {
            Some(abort) => run.compute_until(abort).map_err(|e| match e {
                tts_ggml::GgmlError::Aborted => GraphError::Aborted,
                other => other.into(),
            })?,
            None => run.compute()?,
        }
        for (name, t) in traced {
            if graph.contains(t) && t.ty() == GgmlType::F32 {
                trace.record_tensor(&name, t.ne(), run.get_f32(t)?);
            }
        }
        outputs.iter().map(|&o| Ok(run.get_f32(o)?)).collect()
    }

    pub(crate) fn ids_inputs<'a, 'v>(
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

    pub(crate) fn style_speed_inputs<'a, 'v>(
        ctx: &'a Context,
        style: usize,
        s_pred: &'v [f32],
    ) -> Result<(Tensor<'a>, Tensor<'a>, Vec<Input<'a, 'v>>)> {
        let s = ctx
            .new_tensor_1d(GgmlType::F32, style as i64)?
            .set_name("style_predictor_s")?
            .set_input()?;
        let sp = ctx
            .new_tensor_1d(GgmlType::F32, 1)?
            .set_name("speed")?
            .set_input()?;
        Ok((s, sp, vec![Input::F32(s, s_pred)]))
    }

    pub(crate) fn run_duration_graph<'a>(
        &self,
        ctx: &'a Context,
        d_en: Tensor<'a>,
        s: Tensor<'a>,
        speed: Tensor<'a>,
        inputs: Vec<Input<'a, '_>>,
        trace: &mut Trace,
    ) -> Result<Durations> {
        let w = &*self.weights;
        let m = w.model();
        let d = m.duration_encoder.forward(ctx, w, d_en, s)?.set_output()?; // [640, T]
        let dur = m.predictor.durations(ctx, w, d, speed)?;
        let sig = dur.sigmoid.set_output()?; // [50, T]
        let df = dur.duration.set_output()?; // [1, T]
        let mut res = self.compute(ctx, inputs, &[d, sig, df], trace)?.into_iter();
        let (Some(d), Some(sigmoid), Some(duration_float)) = (res.next(), res.next(), res.next()) else {
            return Err(GraphError::Input("missing outputs".into()));
        };
        debug_assert_eq!(d.len(), self.sizes().d_channels * duration_float.len());
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
        self.durations_traced(ids, ref_s, speed, &mut Trace::default())
    }

    pub(crate) fn durations_traced(
        &self,
        ids: &[i32],
        ref_s: &[f32],
        speed: f32,
        trace: &mut Trace,
    ) -> Result<Durations> {
        check_ids(ids)?;
        check_len("ref_s", ref_s, REF_S_LEN)?;
        check_speed(speed)?;
        let ctx = new_context()?;
        let w = &*self.weights;
        let (ids_t, pos, mut inputs) = Self::ids_inputs(&ctx, ids, true)?;
        let pos = pos.ok_or_else(|| GraphError::Input("positions".into()))?;
        let style = self.sizes().style;
        let s_pred = &ref_s[style..];
        let (s, sp, more) = Self::style_speed_inputs(&ctx, style, s_pred)?;
        inputs.extend(more);
        let speed_v = [speed];
        inputs.push(Input::F32(sp, &speed_v));
        let bert = w.model().albert.forward(&ctx, w, ids_t, pos)?; // [768, T]
        let d_en = w.model().bert_encoder.forward(&ctx, w, bert)?; // [512, T]
        self.run_duration_graph(&ctx, d_en, s, sp, inputs, trace)
    }

    /// The generator graph: `generator_in` `[512, 2F]` and `har_spec_phase` `[22, 120F+1]`
    /// (numpy `[C, T]` order), `style_decoder_s` `[128]` → `conv_post_out` `[22, 120F+1]`.
    pub(crate) fn generator_graph(
        &self,
        gen_in: &[f32],
        har: &[f32],
        s_dec: &[f32],
        trace: &mut Trace,
    ) -> Result<Vec<f32>> {
        let z = self.sizes();
        let n_2f = gen_in.len() / z.gen_channels;
        check_frames(n_2f / 2)?;
        check_len("generator_in", gen_in, n_2f * z.gen_channels)?;
        let n_stft = z.stft_per_frame * n_2f + 1;
        check_len("har_spec_phase", har, n_stft * z.har_channels)?;
        check_len("style_decoder_s", s_dec, z.style)?;
        let ctx = new_context()?;
        let x = ctx
            .new_tensor_2d(GgmlType::F32, n_2f as i64, z.gen_channels as i64)?
            .set_name("generator_in")?
            .set_input()?;
        let h = ctx
            .new_tensor_2d(GgmlType::F32, n_stft as i64, z.har_channels as i64)?
            .set_name("har_spec_phase")?
            .set_input()?;
        let s = ctx
            .new_tensor_1d(GgmlType::F32, z.style as i64)?
            .set_name("style_decoder_s")?
            .set_input()?;
        let w = &*self.weights;
        let out = w.model().generator.forward(&ctx, w, x, h, s)?.set_output()?;
        let inputs = vec![Input::F32(x, gen_in), Input::F32(h, har), Input::F32(s, s_dec)];
        let mut res = self.compute(&ctx, inputs, &[out], trace)?;
        res.pop().ok_or_else(|| GraphError::Input("no output".into()))
    }

    /// Token ids (BOS/EOS included), the voice row `ref_s` `[256]` and speed → 24 kHz audio
    /// (`600·Σ pred_dur` samples) and the durations.
    pub fn synthesize(&self, ids: &[i32], ref_s: &[f32], speed: f32) -> Result<Synthesis> {
        self.synthesize_with(ids, ref_s, speed, &mut Trace::default())
    }

    /// [`KokoroRunner::synthesize`] that stops within one ggml node of `abort` returning true
    /// (asked between nodes, on the calling thread) and then fails with [`GraphError::Aborted`].
    pub fn synthesize_until(
        &self,
        ids: &[i32],
        ref_s: &[f32],
        speed: f32,
        abort: &dyn Fn() -> bool,
    ) -> Result<Synthesis> {
        self.synthesize_with(ids, ref_s, speed, &mut Trace::default().with_abort(abort))
    }

    /// The synthesis, capturing what `trace` asks for and stopping when its abort check says so
    /// (the default trace does neither).
    pub(crate) fn synthesize_with(
        &self,
        ids: &[i32],
        ref_s: &[f32],
        speed: f32,
        trace: &mut Trace,
    ) -> Result<Synthesis> {
        check_ids(ids)?;
        check_len("ref_s", ref_s, REF_S_LEN)?;
        let z = self.sizes();
        trace.record_i64(
            "input_ids",
            vec![1, ids.len()],
            ids.iter().map(|&i| i64::from(i)).collect(),
        );
        trace.record_f32("ref_s", vec![1, REF_S_LEN], ref_s.to_vec());
        trace.record_f32("speed", vec![1], vec![speed]);
        trace.record_f32("style_decoder_s", vec![1, z.style], ref_s[..z.style].to_vec());
        trace.record_f32("style_predictor_s", vec![1, z.style], ref_s[z.style..].to_vec());
        let dur = self.durations_traced(ids, ref_s, speed, trace)?;
        trace.record_i64("pred_dur", vec![1, dur.pred_dur.len()], dur.pred_dur.clone());
        if trace.wants("pred_aln_trg") {
            let n_f = n_frames(&dur.pred_dur);
            trace.record_f32(
                "pred_aln_trg",
                vec![dur.pred_dur.len(), n_f],
                alignment_matrix(&dur.pred_dur),
            );
        }
        let n_f = n_frames(&dur.pred_dur);
        check_frames(n_f)?;
        let (s_dec, s_pred) = ref_s.split_at(z.style);
        let (f0, gen_in) = self.frames(ids, &dur.d, &dur.pred_dur, s_pred, s_dec, trace)?;
        let source = &self.weights.model().generator.source;
        let har = harmonic_source(&f0, &source.weight, source.bias)?;
        let spec = stft(&har)?; // [22, 120F+1]
        let n_stft = stft_frames(har.len());
        trace.record_f32("har_source", vec![1, har.len(), 1], har);
        if trace.wants("har_spec_phase") {
            trace.record_f32("har_spec_phase", vec![1, z.har_channels, n_stft], spec.clone());
        }
        let post = self.generator_graph(&gen_in, &spec, s_dec, trace)?;
        let audio = istft(&post, n_stft)?;
        if trace.wants("audio") {
            trace.record_f32("audio", vec![audio.len()], audio.clone());
        }
        Ok(Synthesis {
            audio,
            pred_dur: dur.pred_dur,
        })
    }

    /// Graph 2 of kokoro-model.md §3 (steps 7–11) from the duration graph's outputs: the text
    /// encoder, the frame expansion of `d` and `t_en` (a row gather by frame → token index),
    /// the F0/N predictor and the decoder body → (`F0_pred` `[2F]`, `generator_in` `[512, 2F]`).
    fn frames(
        &self,
        ids: &[i32],
        d: &[f32],
        pred_dur: &[i64],
        s_pred: &[f32],
        s_dec: &[f32],
        trace: &mut Trace,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let frame_token: Vec<i32> = pred_dur
            .iter()
            .enumerate()
            .flat_map(|(i, &n)| std::iter::repeat_n(i as i32, n.max(0) as usize))
            .collect();
        let n_f = frame_token.len() as i64;
        let z = self.sizes();
        let ctx = new_context()?;
        let w = &*self.weights;
        let (ids_t, _, mut inputs) = Self::ids_inputs(&ctx, ids, false)?;
        let d_t = ctx
            .new_tensor_2d(GgmlType::F32, z.d_channels as i64, ids.len() as i64)?
            .set_name("d")?
            .set_input()?;
        let idx = ctx
            .new_tensor_1d(GgmlType::I32, n_f)?
            .set_name("frame_token")?
            .set_input()?;
        let sp = ctx
            .new_tensor_1d(GgmlType::F32, z.style as i64)?
            .set_name("style_predictor_s")?
            .set_input()?;
        let sd = ctx
            .new_tensor_1d(GgmlType::F32, z.style as i64)?
            .set_name("style_decoder_s")?
            .set_input()?;
        inputs.push(Input::F32(d_t, d));
        inputs.push(Input::I32(idx, frame_token));
        inputs.push(Input::F32(sp, s_pred));
        inputs.push(Input::F32(sd, s_dec));
        let en = ctx.get_rows(d_t, idx)?.set_name("en")?; // [640, F]
        let m = w.model();
        let t_en = m.text_encoder.forward(&ctx, w, ids_t)?; // [512, T]
        let asr = ctx.get_rows(t_en, idx)?.set_name("asr")?; // [512, F]
        let f0n = m.f0n.forward(&ctx, w, en, sp)?;
        let asr_tm = ctx.cont(ctx.transpose(asr)?)?; // [F, 512]
        let dec = m.decoder.forward(&ctx, w, asr_tm, f0n.f0, f0n.n, sd)?;
        let (f0, gi) = (f0n.f0.set_output()?, dec.generator_in.set_output()?);
        let mut res = self.compute(&ctx, inputs, &[f0, gi], trace)?.into_iter();
        match (res.next(), res.next()) {
            (Some(f0), Some(gi)) => Ok((f0, gi)),
            _ => Err(GraphError::Input("missing outputs".into())),
        }
    }
}

/// Result of [`KokoroRunner::synthesize`].
#[derive(Debug, Clone, PartialEq)]
pub struct Synthesis {
    /// Mono audio at 24 kHz, `600·F` samples (may exceed ±1; clamp when encoding).
    pub audio: Vec<f32>,
    /// Frames per token (`pred_dur`).
    pub pred_dur: Vec<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_counts_are_bounded_before_any_graph_is_built() {
        assert!(check_frames(1).is_ok());
        assert!(check_frames(MAX_FRAMES).is_ok());
        assert!(matches!(check_frames(0), Err(GraphError::Input(_))));
        match check_frames(MAX_FRAMES + 1) {
            Err(GraphError::TooLong(m)) => assert!(m.contains("8001 audio frames"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
