//! Each stage of the forward pass alone on given inputs (teacher forcing): how the golden tests
//! (`tests/golden.rs`) feed every stage the golden arrays of the stage before it.
//!
//! Not used by the production path ([`crate::runner`]), which chains the same graph modules in
//! two graphs plus the host-side DSP.

use tts_ggml::GgmlType;

use crate::graph::{GraphError, KokoroWeights, Result};
use crate::runner::{
    check_frames, check_ids, check_len, check_speed, new_context, Durations, Input, KokoroRunner,
};
use crate::trace::Trace;

impl KokoroRunner {
    /// ALBERT alone: token ids (BOS/EOS included) → `bert_last_hidden_state` `[768, T]`.
    pub fn albert(&self, ids: &[i32]) -> Result<Vec<f32>> {
        check_ids(ids)?;
        let ctx = new_context()?;
        let w: &KokoroWeights = self.weights();
        let (ids_t, pos, inputs) = Self::ids_inputs(&ctx, ids, true)?;
        let pos = pos.ok_or_else(|| GraphError::Input("positions".into()))?;
        let out = w.model().albert.forward(&ctx, w, ids_t, pos)?.set_output()?; // [768, T]
        let mut res = self.compute(&ctx, inputs, &[out], &mut Trace::default())?;
        res.pop().ok_or_else(|| GraphError::Input("no output".into()))
    }

    /// `bert_encoder` alone: `[768, T]` → `bert_encoder_out` `[512, T]`.
    pub fn bert_encoder(&self, bert: &[f32]) -> Result<Vec<f32>> {
        let z = self.sizes();
        let n_t = bert.len() / z.bert;
        check_len("bert_last_hidden_state", bert, n_t * z.bert)?;
        let ctx = new_context()?;
        let x = ctx
            .new_tensor_2d(GgmlType::F32, z.bert as i64, n_t as i64)?
            .set_name("bert_last_hidden_state")?
            .set_input()?;
        let w: &KokoroWeights = self.weights();
        let out = w.model().bert_encoder.forward(&ctx, w, x)?.set_output()?; // [512, T]
        let mut res = self.compute(&ctx, vec![Input::F32(x, bert)], &[out], &mut Trace::default())?;
        res.pop().ok_or_else(|| GraphError::Input("no output".into()))
    }

    /// The predictor's duration path alone: `bert_encoder_out` `[512, T]`, `style_predictor_s`
    /// `[128]`, speed → [`Durations`].
    pub fn duration_head(&self, d_en: &[f32], s_pred: &[f32], speed: f32) -> Result<Durations> {
        let z = self.sizes();
        let n_t = d_en.len() / z.d_model;
        check_len("bert_encoder_out", d_en, n_t * z.d_model)?;
        check_len("style_predictor_s", s_pred, z.style)?;
        check_speed(speed)?;
        let ctx = new_context()?;
        let x = ctx
            .new_tensor_2d(GgmlType::F32, z.d_model as i64, n_t as i64)?
            .set_name("bert_encoder_out")?
            .set_input()?;
        let (s, sp, mut inputs) = Self::style_speed_inputs(&ctx, z.style, s_pred)?;
        inputs.push(Input::F32(x, d_en));
        let speed_v = [speed];
        inputs.push(Input::F32(sp, &speed_v));
        self.run_duration_graph(&ctx, x, s, sp, inputs, &mut Trace::default())
    }

    /// The text encoder alone: token ids → `t_en` `[512, T]`.
    pub fn text_encoder(&self, ids: &[i32]) -> Result<Vec<f32>> {
        check_ids(ids)?;
        let ctx = new_context()?;
        let (ids_t, _, inputs) = Self::ids_inputs(&ctx, ids, false)?;
        let w: &KokoroWeights = self.weights();
        let out = w.model().text_encoder.forward(&ctx, w, ids_t)?.set_output()?; // [512, T]
        let mut res = self.compute(&ctx, inputs, &[out], &mut Trace::default())?;
        res.pop().ok_or_else(|| GraphError::Input("no output".into()))
    }

    /// The F0/N predictor alone: `en` `[640, F]` (channel-major, `d·A`) and `style_predictor_s`
    /// `[128]` → (`F0_pred`, `N_pred`), `2F` values each.
    pub fn f0n(&self, en: &[f32], s_pred: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let z = self.sizes();
        let n_f = en.len() / z.d_channels;
        check_frames(n_f)?;
        check_len("en", en, n_f * z.d_channels)?;
        check_len("style_predictor_s", s_pred, z.style)?;
        let ctx = new_context()?;
        let x = ctx
            .new_tensor_2d(GgmlType::F32, z.d_channels as i64, n_f as i64)?
            .set_name("en")?
            .set_input()?;
        let s = ctx
            .new_tensor_1d(GgmlType::F32, z.style as i64)?
            .set_name("style_predictor_s")?
            .set_input()?;
        let w: &KokoroWeights = self.weights();
        let out = w.model().f0n.forward(&ctx, w, x, s)?;
        let (f0, n) = (out.f0.set_output()?, out.n.set_output()?);
        let mut res = self
            .compute(
                &ctx,
                vec![Input::F32(x, en), Input::F32(s, s_pred)],
                &[f0, n],
                &mut Trace::default(),
            )?
            .into_iter();
        match (res.next(), res.next()) {
            (Some(f0), Some(n)) => Ok((f0, n)),
            _ => Err(GraphError::Input("missing outputs".into())),
        }
    }

    /// The decoder body alone: `asr` `[512, F]` (channel-major, `t_en·A`), `F0_pred` and
    /// `N_pred` `[2F]`, `style_decoder_s` `[128]` → (`decoder_encode_in` `[514, F]`,
    /// `generator_in` `[512, 2F]`), both in numpy `[C, T]` order.
    pub fn decoder(&self, asr: &[f32], f0: &[f32], n: &[f32], s_dec: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let z = self.sizes();
        let n_f = asr.len() / z.d_model;
        check_frames(n_f)?;
        check_len("asr", asr, n_f * z.d_model)?;
        check_len("F0_pred", f0, 2 * n_f)?;
        check_len("N_pred", n, 2 * n_f)?;
        check_len("style_decoder_s", s_dec, z.style)?;
        let ctx = new_context()?;
        let asr_t = ctx
            .new_tensor_2d(GgmlType::F32, z.d_model as i64, n_f as i64)?
            .set_name("asr")?
            .set_input()?;
        let f0_t = ctx
            .new_tensor_2d(GgmlType::F32, 2 * n_f as i64, 1)?
            .set_name("F0_pred")?
            .set_input()?;
        let n_t = ctx
            .new_tensor_2d(GgmlType::F32, 2 * n_f as i64, 1)?
            .set_name("N_pred")?
            .set_input()?;
        let s = ctx
            .new_tensor_1d(GgmlType::F32, z.style as i64)?
            .set_name("style_decoder_s")?
            .set_input()?;
        let asr_tm = ctx.cont(ctx.transpose(asr_t)?)?; // [F, 512]
        let w: &KokoroWeights = self.weights();
        let out = w.model().decoder.forward(&ctx, w, asr_tm, f0_t, n_t, s)?;
        let (ei, gi) = (out.encode_in.set_output()?, out.generator_in.set_output()?);
        let inputs = vec![
            Input::F32(asr_t, asr),
            Input::F32(f0_t, f0),
            Input::F32(n_t, n),
            Input::F32(s, s_dec),
        ];
        let mut res = self
            .compute(&ctx, inputs, &[ei, gi], &mut Trace::default())?
            .into_iter();
        match (res.next(), res.next()) {
            (Some(ei), Some(gi)) => Ok((ei, gi)),
            _ => Err(GraphError::Input("missing outputs".into())),
        }
    }

    /// The generator body alone: `generator_in` `[512, 2F]` and `har_spec_phase` `[22, 120F+1]`
    /// (numpy `[C, T]` order), `style_decoder_s` `[128]` → `conv_post_out` `[22, 120F+1]`.
    pub fn generator(&self, gen_in: &[f32], har: &[f32], s_dec: &[f32]) -> Result<Vec<f32>> {
        self.generator_graph(gen_in, har, s_dec, &mut Trace::default())
    }
}
