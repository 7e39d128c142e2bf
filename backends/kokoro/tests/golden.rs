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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use support::{model_path, npz};
use tts_backend_kokoro::graph::alignment::{alignment_matrix, expand};
use tts_backend_kokoro::graph::KokoroWeights;
use tts_backend_kokoro::runner::KokoroRunner;
use tts_backend_kokoro::KokoroModelFile;
use tts_ggml::ComputeDevice;

/// Relative tolerance of every float stage implemented here (golden-reference.md §4).
const REL_TOL: f64 = 1e-4;

fn fixtures() -> Vec<PathBuf> {
    let dir = std::env::var_os("TTS_KOKORO_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures/kokoro"
            ))
        });
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("golden fixtures folder {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "npz"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .npz goldens in {}", dir.display());
    files
}

/// One line of the error table.
struct Row {
    golden: String,
    stage: &'static str,
    array: &'static str,
    max_abs: f64,
    max_rel: f64,
    tol: String,
    pass: bool,
    secs: f64,
}

fn float_row(
    golden: &str,
    stage: &'static str,
    array: &'static str,
    mine: &[f32],
    gold: &[f32],
    secs: f64,
) -> Row {
    let (max_abs, max_rel) = compare_f32(mine, gold);
    Row {
        golden: golden.to_owned(),
        stage,
        array,
        max_abs,
        max_rel,
        tol: format!("rel {REL_TOL:.0e}"),
        pass: max_rel <= REL_TOL,
        secs,
    }
}

fn compare_f32(mine: &[f32], gold: &[f32]) -> (f64, f64) {
    assert_eq!(mine.len(), gold.len(), "length");
    let scale = gold.iter().fold(0f64, |m, &g| m.max(f64::from(g).abs()));
    let max_abs = mine
        .iter()
        .zip(gold)
        .map(|(&a, &b)| {
            let d = (f64::from(a) - f64::from(b)).abs();
            if d.is_nan() {
                f64::INFINITY
            } else {
                d
            }
        })
        .fold(0f64, f64::max);
    (max_abs, max_abs / scale.max(f64::MIN_POSITIVE))
}

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
        let golden = fx
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .trim_end_matches(".canon")
            .trim_start_matches("golden_")
            .to_owned();
        let g = npz::read(&fx);
        let arr = |k: &str| g.get(k).unwrap_or_else(|| panic!("{golden}: no array {k}"));
        let ids: Vec<i32> = arr("input_ids").i64().iter().map(|&x| x as i32).collect();
        let n_t = ids.len();
        let speed = arr("speed").f32()[0];
        let s_pred = arr("style_predictor_s").f32();

        // ALBERT: input_ids -> bert_last_hidden_state ([1, T, 768] = ne [768, T]).
        let t0 = Instant::now();
        let bert = runner.albert(&ids).expect("albert");
        rows.push(float_row(
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
        rows.push(float_row(
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
        rows.push(float_row(
            &golden,
            "durations",
            "duration_sigmoid",
            &dur.sigmoid,
            arr("duration_sigmoid").f32(),
            secs,
        ));
        rows.push(float_row(
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
            max_rel: n_diff as f64,
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
        rows.push(float_row(
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
        rows.push(float_row(
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
            max_rel: compare_f32(&a, a_gold).1,
            tol: "exact".into(),
            pass: a.as_slice() == a_gold,
            secs: 0.0,
        });
        let en_mine = expand(&dur.d, 640, gold_dur).expect("d is [640, T]");
        let en_gold = channels_first_to_ne(en.f32(), 640, n_f);
        rows.push(float_row(&golden, "alignment", "en", &en_mine, &en_gold, 0.0));
        let asr_mine = expand(&t_en, 512, gold_dur).expect("t_en is [512, T]");
        let asr_gold = channels_first_to_ne(arr("asr").f32(), 512, n_f);
        rows.push(float_row(&golden, "alignment", "asr", &asr_mine, &asr_gold, 0.0));

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
            max_rel: fr,
            tol: format!("rel {REL_TOL:.0e}"),
            pass: fr <= REL_TOL,
            secs,
        });
        rows.push(Row {
            golden: golden.clone(),
            stage: "graph 1 from ids",
            array: "pred_dur",
            max_abs: n_diff as f64,
            max_rel: n_diff as f64,
            tol: "exact".into(),
            pass: full.pred_dur.as_slice() == gold_dur,
            secs: 0.0,
        });
    }

    println!();
    println!(
        "{:<26} {:<18} {:<26} {:>11} {:>11} {:>9} {:>5} {:>7}",
        "golden", "stage", "array", "max abs", "max rel", "tol", "pass", "secs"
    );
    for r in &rows {
        println!(
            "{:<26} {:<18} {:<26} {:>11.3e} {:>11.3e} {:>9} {:>5} {:>7.2}",
            r.golden,
            r.stage,
            r.array,
            r.max_abs,
            r.max_rel,
            r.tol,
            if r.pass { "ok" } else { "FAIL" },
            r.secs
        );
    }
    println!("(pred_dur rows: max abs = largest frame difference, max rel = number of differing tokens)");
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| !r.pass)
        .map(|r| format!("{} {} {}", r.golden, r.stage, r.array))
        .collect();
    assert!(failed.is_empty(), "stages outside tolerance: {failed:?}");
}
