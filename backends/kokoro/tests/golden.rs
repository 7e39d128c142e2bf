//! Golden tests of the Kokoro graph, stage by stage with teacher forcing
//! (`shared/docs/golden-reference.md` §4), against every `.npz` in `../shared/fixtures/kokoro`.
//!
//! Reference call per stage (`shared/tools/kokoro-reference/numpy_ref.py --golden X.npz`):
//! `albert(ids)`, `linear(bert_last_hidden_state, "bert_encoder")`,
//! `duration_encoder(bert_encoder_out, s_pred)` → `bilstm` → `duration_proj` → sigmoid → Σ/speed,
//! `text_encoder(ids)`. Metric: rel = max|Δ| / max|ref| in f64; integers exactly.
//!
//! Model: `$TTS_KOKORO_MODEL`, else `models/kokoro-82m-f32.gguf` (written by
//! `scripts/fetch-model`); skipped with a message when absent, failing in CI (`CI` set).
//! Fixtures: `$TTS_KOKORO_FIXTURES`, else `../shared/fixtures/kokoro` next to the checkout; a
//! missing folder is an error.

mod support;

use std::sync::Arc;
use std::time::Instant;

use support::golden::{compare_f32, fixtures, golden_name, report, Row, REL_TOL};
use support::{model_path, npz};
use tts_backend_kokoro::dsp::alignment::{alignment_matrix, expand};
use tts_backend_kokoro::graph::KokoroWeights;
use tts_backend_kokoro::runner::KokoroRunner;
use tts_backend_kokoro::trace::{Trace, TraceData};
use tts_backend_kokoro::KokoroModelFile;
use tts_ggml::ComputeDevice;

/// Relative tolerance of the generator (golden-reference.md §4: conv_post_out and audio).
const GEN_TOL: f64 = 1e-3;

/// `[C, T]` (ne order, T rows of C) from a numpy `[1, C, T]` array.
fn channels_first_to_ne(gold: &[f32], c: usize, t: usize) -> Vec<f32> {
    let mut out = vec![0f32; c * t];
    for ci in 0..c {
        for ti in 0..t {
            out[ti * c + ci] = gold[ci * t + ti];
        }
    }
    out
}

#[test]
fn golden_duration_path_and_text_encoder() {
    let Some(path) = model_path() else { return };
    let t_load = Instant::now();
    let file = KokoroModelFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let device = ComputeDevice::cpu(2).expect("cpu device");
    let weights = Arc::new(KokoroWeights::load(file, &device).expect("weights"));
    let runner = KokoroRunner::new(Arc::clone(&weights), 2).expect("runner");
    eprintln!("model loaded in {:.2} s", t_load.elapsed().as_secs_f64());

    let mut rows: Vec<Row> = Vec::new();
    for fx in fixtures() {
        let golden = golden_name(&fx);
        let g = npz::read(&fx);
        let arr = |k: &str| g.get(k).unwrap_or_else(|| panic!("{golden}: no array {k}"));
        let ids: Vec<i32> = arr("input_ids").i64().iter().map(|&x| x as i32).collect();
        let n_t = ids.len();
        let speed = arr("speed").f32()[0];
        let s_pred = arr("style_predictor_s").f32();

        // ALBERT: input_ids -> bert_last_hidden_state ([1, T, 768] = ne [768, T]).
        let t0 = Instant::now();
        let bert = runner.albert(&ids).expect("albert");
        rows.push(Row::rel(
            &golden,
            "ALBERT",
            "bert_last_hidden_state",
            &bert,
            arr("bert_last_hidden_state").f32(),
            t0.elapsed().as_secs_f64(),
        ));

        // bert_encoder: golden bert_last_hidden_state -> bert_encoder_out.
        let t0 = Instant::now();
        let d_en = runner
            .bert_encoder(arr("bert_last_hidden_state").f32())
            .expect("bert_encoder");
        rows.push(Row::rel(
            &golden,
            "bert_encoder",
            "bert_encoder_out",
            &d_en,
            arr("bert_encoder_out").f32(),
            t0.elapsed().as_secs_f64(),
        ));

        // Durations: golden bert_encoder_out, style_predictor_s, speed.
        let t0 = Instant::now();
        let dur = runner
            .duration_head(arr("bert_encoder_out").f32(), s_pred, speed)
            .expect("durations");
        let secs = t0.elapsed().as_secs_f64();
        rows.push(Row::rel(
            &golden,
            "durations",
            "duration_sigmoid",
            &dur.sigmoid,
            arr("duration_sigmoid").f32(),
            secs,
        ));
        rows.push(Row::rel(
            &golden,
            "durations",
            "duration_float",
            &dur.duration_float,
            arr("duration_float").f32(),
            0.0,
        ));
        let gold_dur = arr("pred_dur").i64();
        let n_diff = dur.pred_dur.iter().zip(gold_dur).filter(|(a, b)| a != b).count();
        rows.push(Row {
            golden: golden.clone(),
            stage: "durations",
            array: "pred_dur",
            max_abs: dur
                .pred_dur
                .iter()
                .zip(gold_dur)
                .map(|(a, b)| (a - b).abs() as f64)
                .fold(0.0, f64::max),
            metric: n_diff as f64,
            tol: "exact".into(),
            pass: dur.pred_dur.as_slice() == gold_dur,
            secs: 0.0,
        });

        // d vs en: d[:, i] = en[0, :, first_frame(i)] (golden-reference.md §3 notes).
        let en = arr("en");
        let n_f = en.shape[2];
        let mut d_gold = vec![0f32; 640 * n_t];
        let mut frame = 0usize;
        for (i, &n) in gold_dur.iter().enumerate() {
            for c in 0..640 {
                d_gold[i * 640 + c] = en.f32()[c * n_f + frame];
            }
            frame += n as usize;
        }
        rows.push(Row::rel(
            &golden,
            "DurationEncoder",
            "d (= en at first frames)",
            &dur.d,
            &d_gold,
            0.0,
        ));

        // Text encoder: input_ids -> t_en ([1, 512, T]).
        let t0 = Instant::now();
        let t_en = runner.text_encoder(&ids).expect("text encoder");
        let t_en_gold = channels_first_to_ne(arr("t_en").f32(), 512, n_t);
        rows.push(Row::rel(
            &golden,
            "text encoder",
            "t_en",
            &t_en,
            &t_en_gold,
            t0.elapsed().as_secs_f64(),
        ));

        // Alignment from the golden pred_dur: A exact; en = d·A (d teacher-forced above),
        // asr = t_en·A (t_en from ids above).
        let a = alignment_matrix(gold_dur);
        let a_gold = arr("pred_aln_trg").f32();
        rows.push(Row {
            golden: golden.clone(),
            stage: "alignment",
            array: "pred_aln_trg",
            max_abs: compare_f32(&a, a_gold).0,
            metric: compare_f32(&a, a_gold).1,
            tol: "exact".into(),
            pass: a.as_slice() == a_gold,
            secs: 0.0,
        });
        let en_mine = expand(&dur.d, 640, gold_dur).expect("d is [640, T]");
        let en_gold = channels_first_to_ne(en.f32(), 640, n_f);
        rows.push(Row::rel(&golden, "alignment", "en", &en_mine, &en_gold, 0.0));
        let asr_mine = expand(&t_en, 512, gold_dur).expect("t_en is [512, T]");
        let asr_gold = channels_first_to_ne(arr("asr").f32(), 512, n_f);
        rows.push(Row::rel(&golden, "alignment", "asr", &asr_mine, &asr_gold, 0.0));

        // F0/N predictor: golden en, style_predictor_s.
        let t0 = Instant::now();
        let (f0, n) = runner.f0n(&en_gold, s_pred).expect("F0/N");
        let secs = t0.elapsed().as_secs_f64();
        rows.push(Row::rel(
            &golden,
            "F0/N predictor",
            "F0_pred",
            &f0,
            arr("F0_pred").f32(),
            secs,
        ));
        rows.push(Row::rel(
            &golden,
            "F0/N predictor",
            "N_pred",
            &n,
            arr("N_pred").f32(),
            0.0,
        ));

        // Decoder body: golden asr, F0_pred, N_pred, style_decoder_s.
        let s_dec = arr("style_decoder_s").f32();
        let t0 = Instant::now();
        let (enc_in, gen_in) = runner
            .decoder(&asr_gold, arr("F0_pred").f32(), arr("N_pred").f32(), s_dec)
            .expect("decoder");
        let secs = t0.elapsed().as_secs_f64();
        rows.push(Row::rel(
            &golden,
            "decoder body",
            "decoder_encode_in",
            &enc_in,
            arr("decoder_encode_in").f32(),
            secs,
        ));
        rows.push(Row::rel(
            &golden,
            "decoder body",
            "generator_in",
            &gen_in,
            arr("generator_in").f32(),
            0.0,
        ));

        // Generator body: golden generator_in, har_spec_phase, style_decoder_s (rel 1e-3).
        let t0 = Instant::now();
        let post = runner
            .generator(arr("generator_in").f32(), arr("har_spec_phase").f32(), s_dec)
            .expect("generator");
        let secs = t0.elapsed().as_secs_f64();
        let row = Row::rel(
            &golden,
            "generator",
            "conv_post_out",
            &post,
            arr("conv_post_out").f32(),
            secs,
        );
        rows.push(row.with_rel_tol(GEN_TOL));

        // Whole duration graph from ids, ref_s, speed (no teacher forcing): pred_dur exact.
        let t0 = Instant::now();
        let full = runner
            .durations(&ids, arr("ref_s").f32(), speed)
            .expect("duration graph");
        let secs = t0.elapsed().as_secs_f64();
        let n_diff = full.pred_dur.iter().zip(gold_dur).filter(|(a, b)| a != b).count();
        let (fa, fr) = compare_f32(&full.duration_float, arr("duration_float").f32());
        rows.push(Row {
            golden: golden.clone(),
            stage: "graph 1 from ids",
            array: "duration_float",
            max_abs: fa,
            metric: fr,
            tol: format!("rel {REL_TOL:.0e}"),
            pass: fr <= REL_TOL,
            secs,
        });
        rows.push(Row {
            golden: golden.clone(),
            stage: "graph 1 from ids",
            array: "pred_dur",
            max_abs: n_diff as f64,
            metric: n_diff as f64,
            tol: "exact".into(),
            pass: full.pred_dur.as_slice() == gold_dur,
            secs: 0.0,
        });
    }

    report(
        &rows,
        "(metric: rel = max|Δ| / max|ref|; pred_dur rows: max abs = largest frame difference, metric = number of differing tokens)",
    );
}

/// `20·log10(|rfft(frame·hann)| + 1e-7)` over frames of 1024 at hop 256 (numpy's symmetric
/// `np.hanning`), as `tools/kokoro-reference/spec_compare.py` computes it.
fn log_spec(a: &[f32]) -> Vec<Vec<f64>> {
    const N: usize = 1024;
    const HOP: usize = 256;
    if a.len() < N {
        return Vec::new();
    }
    let n_frames = 1 + (a.len() - N) / HOP;
    let win: Vec<f64> = (0..N)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (N - 1) as f64).cos())
        .collect();
    let mut planner = realfft::RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(N);
    let mut input = fft.make_input_vec();
    let mut output = fft.make_output_vec();
    (0..n_frames)
        .map(|f| {
            for (i, x) in input.iter_mut().enumerate() {
                *x = f64::from(a[f * HOP + i]) * win[i];
            }
            fft.process(&mut input, &mut output).expect("fft sizes");
            output.iter().map(|c| 20.0 * (c.norm() + 1e-7).log10()).collect()
        })
        .collect()
}

/// End-to-end measures of golden-reference.md §4: (RMS ratio, log-spectrogram mean |Δ| dB,
/// waveform SNR dB) of `mine` against `gold` (same length).
fn end_to_end_measures(mine: &[f32], gold: &[f32]) -> (f64, f64, f64) {
    let energy = |x: &[f32]| x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
    let rms_ratio = (energy(mine) / energy(gold)).sqrt();
    let err: f64 = mine
        .iter()
        .zip(gold)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum();
    let snr = 10.0 * (energy(gold) / err).log10();
    let (a, b) = (log_spec(mine), log_spec(gold));
    let global_max = a.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
    let active: Vec<usize> = (0..a.len())
        .filter(|&f| a[f].iter().copied().fold(f64::NEG_INFINITY, f64::max) > global_max - 40.0)
        .collect();
    let active_max = active
        .iter()
        .flat_map(|&f| a[f].iter().copied())
        .fold(f64::NEG_INFINITY, f64::max);
    let (mut sum, mut count) = (0f64, 0usize);
    for &f in &active {
        for (x, y) in a[f].iter().zip(&b[f]) {
            if *x > active_max - 60.0 {
                sum += (x - y).abs();
                count += 1;
            }
        }
    }
    (rms_ratio, sum / count.max(1) as f64, snr)
}

/// Token ids, `ref_s` and speed only → audio: same length, RMS within 2 %, log-spectrogram
/// mean |Δ| ≤ 1.5 dB (golden-reference.md §4); SNR printed as a soft signal.
#[test]
fn golden_end_to_end() {
    let Some(path) = model_path() else { return };
    let file = KokoroModelFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let device = ComputeDevice::cpu(2).expect("cpu device");
    let weights = Arc::new(KokoroWeights::load(file, &device).expect("weights"));
    let runner = KokoroRunner::new(weights, 2).expect("runner");
    println!();
    println!(
        "{:<26} {:>9} {:>9} {:>10} {:>12} {:>8} {:>7} {:>5}",
        "golden", "samples", "golden", "rms ratio", "logspec dB", "SNR dB", "secs", "pass"
    );
    let mut failed = Vec::new();
    for fx in fixtures() {
        let golden = golden_name(&fx);
        let g = npz::read(&fx);
        let arr = |k: &str| g.get(k).unwrap_or_else(|| panic!("{golden}: no array {k}"));
        let ids: Vec<i32> = arr("input_ids").i64().iter().map(|&x| x as i32).collect();
        let t0 = Instant::now();
        // Through the same traced path as `tts-kokoro synthesize --dump`.
        let mut trace = Trace::new(&["pred_dur", "F0_pred"]).expect("trace names");
        let out = runner
            .synthesize_traced(&ids, arr("ref_s").f32(), arr("speed").f32()[0], &mut trace)
            .expect("synthesize");
        let traced_dur = match trace.arrays().get("pred_dur").map(|a| &a.data) {
            Some(TraceData::I64(v)) => v.clone(),
            other => panic!("{golden}: traced pred_dur {other:?}"),
        };
        assert_eq!(traced_dur, arr("pred_dur").i64(), "{golden}: traced pred_dur");
        assert_eq!(
            trace.arrays()["F0_pred"].shape,
            arr("F0_pred").shape,
            "{golden}: F0_pred shape"
        );
        let secs = t0.elapsed().as_secs_f64();
        let gold = arr("audio").f32();
        let same_len = out.audio.len() == gold.len();
        let (rms, lsd, snr) = if same_len {
            end_to_end_measures(&out.audio, gold)
        } else {
            (f64::NAN, f64::NAN, f64::NAN)
        };
        let pass =
            same_len && (rms - 1.0).abs() <= 0.02 && lsd <= 1.5 && out.pred_dur == arr("pred_dur").i64();
        println!(
            "{:<26} {:>9} {:>9} {:>10.4} {:>12.3} {:>8.1} {:>7.2} {:>5}",
            golden,
            out.audio.len(),
            gold.len(),
            rms,
            lsd,
            snr,
            secs,
            if pass { "ok" } else { "FAIL" }
        );
        if !pass {
            failed.push(golden);
        }
    }
    println!("(criteria: same length, |rms ratio − 1| ≤ 0.02, logspec ≤ 1.5 dB; SNR is informational)");
    assert!(failed.is_empty(), "end-to-end outside the criteria: {failed:?}");
}

/// The scheduler path (what a Metal build uses, here over the CPU alone) computes what the
/// graph-allocator path computes: same frames, same audio.
#[test]
fn scheduler_path_matches_the_allocator_path() {
    let Some(path) = model_path() else { return };
    let file = KokoroModelFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let device = ComputeDevice::cpu(2).expect("cpu device");
    let weights = Arc::new(KokoroWeights::load(file, &device).expect("weights"));
    let plain = KokoroRunner::new(Arc::clone(&weights), 2).expect("runner");
    let sched = KokoroRunner::with_devices(weights, 2, None).expect("scheduled runner");
    assert_eq!(sched.device_name(), plain.device_name());
    let fx = fixtures()
        .into_iter()
        .find(|p| golden_name(p) == "short_jf_alpha")
        .expect("the short golden");
    let g = npz::read(&fx);
    let ids: Vec<i32> = g["input_ids"].i64().iter().map(|&x| x as i32).collect();
    let (ref_s, speed) = (g["ref_s"].f32(), g["speed"].f32()[0]);
    let a = plain.synthesize(&ids, ref_s, speed).expect("allocator path");
    let b = sched.synthesize(&ids, ref_s, speed).expect("scheduler path");
    assert_eq!(a.pred_dur, b.pred_dur);
    let (max_abs, rel) = compare_f32(&b.audio, &a.audio);
    println!("scheduler vs allocator: max abs {max_abs:.3e}, rel {rel:.3e}");
    assert!(rel <= 1e-5, "scheduler path differs: rel {rel:.3e}");
}
