//! Golden tests of the generator's host-side DSP, each stage teacher-forced
//! (`shared/docs/golden-reference.md` §4), against every `.npz` in `../shared/fixtures/kokoro`:
//!
//! * harmonic source: golden `F0_pred` → `har_source`, max abs ≤ 1e-3;
//! * STFT: golden `har_source` → `har_spec_phase`, magnitudes rel ≤ 1e-4; phases where the
//!   magnitude exceeds 1e-3·max, wrapped abs ≤ 1e-3 rad;
//! * iSTFT: golden `conv_post_out` → `audio`, rel ≤ 1e-4.
//!
//! Reference calls (`shared/tools/kokoro-reference/numpy_ref.py --golden X.npz --canonical`):
//! `source_module(np.repeat(F0, 300))`, `stft_mag_phase(har_source)`,
//! `istft(np.exp(x[:11]), np.sin(x[11:]))`. Metric: rel = max|Δ| / max|ref| in f64.
//!
//! The `m_source` weights come from the model (`$TTS_KOKORO_MODEL`, else
//! `models/kokoro-82m-f32.gguf`): the source check is skipped with a message when it is absent
//! (failing in CI), the STFT and iSTFT checks need no weights and always run.
//! Fixtures: `$TTS_KOKORO_FIXTURES`, else `../shared/fixtures/kokoro` next to the checkout; a
//! missing folder is an error.

mod support;

use std::f64::consts::PI;
use std::time::Instant;

use support::golden::{compare_f32, fixtures, golden_name, report, Row, REL_TOL};
use support::{model_path, npz};
use tts_backend_kokoro::dsp::harmonic::{harmonic_source, stft, N_BINS};
use tts_backend_kokoro::dsp::istft::istft;
use tts_backend_kokoro::KokoroModelFile;

/// `har_source`: max abs (golden-reference.md §4).
const SOURCE_ABS_TOL: f64 = 1e-3;
/// STFT phase: wrapped abs in rad, over bins with magnitude > `PHASE_MAG_FLOOR`·max.
const PHASE_TOL: f64 = 1e-3;
const PHASE_MAG_FLOOR: f64 = 1e-3;

/// Largest wrapped phase difference over the bins whose golden magnitude exceeds
/// `PHASE_MAG_FLOOR`·max, and how many bins were compared.
fn compare_phase(mine: &[f32], gold: &[f32], gold_mag: &[f32]) -> (f64, usize) {
    let max_mag = gold_mag.iter().fold(0f64, |m, &g| m.max(f64::from(g)));
    let floor = PHASE_MAG_FLOOR * max_mag;
    let mut worst = 0f64;
    let mut n = 0;
    for ((&a, &b), &m) in mine.iter().zip(gold).zip(gold_mag) {
        if f64::from(m) <= floor {
            continue;
        }
        n += 1;
        let d = f64::from(a) - f64::from(b);
        let wrapped = (d - 2.0 * PI * (d / (2.0 * PI)).round()).abs();
        worst = worst.max(if wrapped.is_nan() { f64::INFINITY } else { wrapped });
    }
    (worst, n)
}

/// `(weight, bias)` of `l_linear` from the model, or `None` (skip message printed) without it.
fn m_source() -> Option<(Vec<f32>, f32)> {
    let path = model_path()?;
    let file = KokoroModelFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let get = |name: &str| -> Vec<f32> {
        file.tensor(name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .as_f32()
            .unwrap_or_else(|| panic!("{name} is not F32"))
            .to_vec()
    };
    let weight = get("kokoro.decoder.generator.m_source_weight");
    let bias = get("kokoro.decoder.generator.m_source_bias");
    Some((weight, bias[0]))
}

#[test]
fn golden_generator_dsp() {
    let source_weights = m_source();
    let mut rows: Vec<Row> = Vec::new();
    for fx in fixtures() {
        let golden = golden_name(&fx);
        let g = npz::read(&fx);
        let arr = |k: &str| g.get(k).unwrap_or_else(|| panic!("{golden}: no array {k}"));
        let f0 = arr("F0_pred").f32();
        let har_gold = arr("har_source").f32();
        let spec_gold = arr("har_spec_phase");
        let n_frames = spec_gold.shape[2];
        assert_eq!(spec_gold.shape[1], 2 * N_BINS, "{golden}: har_spec_phase rows");
        assert_eq!(har_gold.len(), 300 * f0.len(), "{golden}: har_source length");

        // (a) F0_pred -> har_source.
        if let Some((weight, bias)) = &source_weights {
            let t0 = Instant::now();
            let har = harmonic_source(f0, weight, *bias).expect("harmonic source");
            let secs = t0.elapsed().as_secs_f64();
            let (max_abs, rel) = compare_f32(&har, har_gold);
            rows.push(Row {
                golden: golden.clone(),
                stage: "harmonic source",
                array: "har_source",
                max_abs,
                metric: rel,
                tol: format!("abs {SOURCE_ABS_TOL:.0e}"),
                pass: max_abs <= SOURCE_ABS_TOL,
                secs,
            });
        }

        // (b) golden har_source -> har_spec_phase (magnitudes; phases where well defined).
        let t0 = Instant::now();
        let spec = stft(har_gold).expect("stft");
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(spec.len(), spec_gold.f32().len(), "{golden}: STFT frames");
        let (mag, phase) = spec.split_at(N_BINS * n_frames);
        let (mag_gold, phase_gold) = spec_gold.f32().split_at(N_BINS * n_frames);
        let (max_abs, rel) = compare_f32(mag, mag_gold);
        rows.push(Row {
            golden: golden.clone(),
            stage: "STFT",
            array: "har_spec_phase[0..11]",
            max_abs,
            metric: rel,
            tol: format!("rel {REL_TOL:.0e}"),
            pass: rel <= REL_TOL,
            secs,
        });
        let (worst, n_cmp) = compare_phase(phase, phase_gold, mag_gold);
        eprintln!("{golden}: STFT phase compared on {n_cmp} of {} bins", phase.len());
        rows.push(Row {
            golden: golden.clone(),
            stage: "STFT phase (rad)",
            array: "har_spec_phase[11..22]",
            max_abs: worst,
            metric: worst,
            tol: format!("rad {PHASE_TOL:.0e}"),
            pass: worst <= PHASE_TOL,
            secs: 0.0,
        });

        // (c) golden conv_post_out -> audio.
        let conv = arr("conv_post_out");
        assert_eq!(conv.shape[2], n_frames, "{golden}: conv_post_out frames");
        let t0 = Instant::now();
        let audio = istft(conv.f32(), n_frames).expect("istft");
        let secs = t0.elapsed().as_secs_f64();
        let (max_abs, rel) = compare_f32(&audio, arr("audio").f32());
        rows.push(Row {
            golden: golden.clone(),
            stage: "iSTFT",
            array: "audio",
            max_abs,
            metric: rel,
            tol: format!("rel {REL_TOL:.0e}"),
            pass: rel <= REL_TOL,
            secs,
        });
    }

    report(
        &rows,
        "(metric: rel = max|Δ| / max|ref|; har_source: max abs; phase rows: wrapped max |Δ| in rad)",
    );
}
