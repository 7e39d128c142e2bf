//! The generator's harmonic source and its STFT, on the host: `F0_pred` `[2F]` → `har_source`
//! `[600F]` → `har_spec_phase` `[22, 120F + 1]`.
//!
//! Reference: `SineGen`, `SourceModuleHnNSF` and `TorchSTFT.transform` in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/istftnet.py>, in the canonical ONNX-export
//! semantics of `shared/docs/kokoro-model.md` §3 step 12.1–12.2, §4.3 (SineGen op by op) and §4.4
//! (STFT, DC/Nyquist phase rule). The export drops the noise term and the random initial phase
//! (§4.3: the latter only touches samples the frame-rate resampling discards), so the source is
//! deterministic.
//!
//! Both functions are plain host loops: the source is a cumulative sum over time (sequential)
//! followed by cheap per-sample arithmetic, and the STFT is 11 bins of a 20-point frame; neither
//! gains anything from a ggml graph, and both need float64 or exact-branch steps that ggml lacks.

use std::f32::consts::PI as PI_F32;
use std::f64::consts::PI;
use std::sync::OnceLock;

use crate::graph::{GraphError, Result};
use crate::hparams::{N_HARMONICS, SAMPLE_RATE};

/// Output samples per `F0_pred` value: `prod(upsample_rates) · gen_istft_hop_size` = 10·6·5.
pub const SAMPLES_PER_F0: usize = 300;
/// `SineGen.sine_amp`.
const SINE_AMP: f32 = 0.1;
/// `SineGen.voiced_threshold`: samples with `f0 > 10` Hz are voiced.
const VOICED_THRESHOLD: f32 = 10.0;
/// Harmonics of the source (fundamental + 8 overtones), as an index bound.
const N_HARM: usize = N_HARMONICS as usize;

/// `gen_istft_n_fft`: STFT frame length.
pub const N_FFT: usize = 20;
/// `gen_istft_hop_size`: STFT hop.
pub const HOP: usize = 5;
/// One-sided DFT bins, `N_FFT / 2 + 1`.
pub const N_BINS: usize = N_FFT / 2 + 1;
/// Rows of `har_spec_phase` / `conv_post_out`: 11 magnitudes then 11 phases.
pub const N_SPEC_ROWS: usize = 2 * N_BINS;
/// `torch.stft(center=True)` reflect padding on each side.
const PAD: usize = N_FFT / 2;

/// The periodic Hann window and the windowed 20-point DFT kernels of [`stft`] and
/// [`super::istft`], built once ([`dft_tables`]), so the per-frame work is plain dot products.
#[derive(Debug)]
pub(crate) struct DftTables {
    /// `w[n] = 0.5 − 0.5·cos(2πn/20)` (`torch.hann_window(20, periodic=True)`).
    pub window: [f64; N_FFT],
    /// Analysis, `[k][n]`: `w[n]·cos(2πkn/20)`, giving Re of bin k.
    pub analysis_re: [[f64; N_FFT]; N_BINS],
    /// Analysis, `[k][n]`: `−w[n]·sin(2πkn/20)`, giving Im of bin k (`e^{−jωn}` convention).
    pub analysis_im: [[f64; N_FFT]; N_BINS],
    /// Synthesis, `[k][n]`: `c_k·w[n]·cos(2πkn/20)/20`, with `c_k` = 1 at DC/Nyquist and 2
    /// elsewhere (the mirrored half of the one-sided spectrum). With [`Self::synthesis_im`],
    /// applied to `|X|·cos φ` and `|X|·sin φ`, this is `irfft(X, 20)·w` (kokoro-model.md §4.5).
    pub synthesis_re: [[f64; N_FFT]; N_BINS],
    /// Synthesis, `[k][n]`: `−c_k·w[n]·sin(2πkn/20)/20`.
    pub synthesis_im: [[f64; N_FFT]; N_BINS],
}

impl DftTables {
    fn new() -> Self {
        // cos/sin of 2πm/20 with exact quarter-period values: then the DC and Nyquist kernels'
        // sine rows are exactly 0, so those bins' imaginary parts vanish as in `irfft`.
        let trig = |m: usize| match m % N_FFT {
            0 => (1.0, 0.0),
            5 => (0.0, 1.0),
            10 => (-1.0, 0.0),
            15 => (0.0, -1.0),
            m => {
                let a = 2.0 * PI * m as f64 / N_FFT as f64;
                (a.cos(), a.sin())
            }
        };
        let window: [f64; N_FFT] = std::array::from_fn(|n| 0.5 - 0.5 * trig(n).0);
        let kernel = |f: &dyn Fn(usize, usize) -> f64| -> [[f64; N_FFT]; N_BINS] {
            std::array::from_fn(|k| std::array::from_fn(|n| f(k, n)))
        };
        let c = |k: usize| if k == 0 || k == N_BINS - 1 { 1.0 } else { 2.0 } / N_FFT as f64;
        Self {
            window,
            analysis_re: kernel(&|k, n| window[n] * trig(k * n).0),
            analysis_im: kernel(&|k, n| -window[n] * trig(k * n).1),
            synthesis_re: kernel(&|k, n| c(k) * window[n] * trig(k * n).0),
            synthesis_im: kernel(&|k, n| -c(k) * window[n] * trig(k * n).1),
        }
    }
}

/// The process-wide tables, built on first use.
pub(crate) fn dft_tables() -> &'static DftTables {
    static TABLES: OnceLock<DftTables> = OnceLock::new();
    TABLES.get_or_init(DftTables::new)
}

/// `SourceModuleHnNSF` without noise: the harmonic source *har_source* `[300·n]` of an F0 curve
/// `f0` `[n]` (*F0_pred*, Hz, 300 output samples per value), kokoro-model.md §4.3.
///
/// `weight` (9 values) and `bias` are `l_linear` = GGUF `kokoro.decoder.generator.m_source_weight`
/// and `m_source_bias`. Per harmonic h = 1..9 the per-frame phase increment
/// `rad = (f0·h)/24000 − floor(…)` (f32; negative F0 wraps into [0, 1) like Python `%`) is
/// summed in f64 and reduced mod 2, turned into `((cyc·2)·π)·300` in f32, resampled ×300 with
/// ONNX `half_pixel` linear interpolation (f32 source coordinate, as onnxruntime computes it);
/// then `har = tanh(Σ_h weight[h]·sin(phase_h)·0.1·uv + bias)` with `uv = f0 > 10` per sample.
/// Matches the golden *har_source* to ~6e-5 absolute.
///
/// Errors ([`GraphError::Input`]): `weight` not of length 9, or a non-finite F0 value, weight or
/// bias (including an F0 so large that `f0·9` overflows). A NaN in the curve would otherwise
/// poison the running phase sum and thus every later sample, so it is refused rather than
/// clamped: it can only come from a broken model or caller, and silence-by-guess would hide that.
/// An empty `f0` gives an empty source.
pub fn harmonic_source(f0: &[f32], weight: &[f32], bias: f32) -> Result<Vec<f32>> {
    if weight.len() != N_HARM {
        return Err(GraphError::Input(format!(
            "m_source weight has {} values, expected {N_HARM}",
            weight.len()
        )));
    }
    if !bias.is_finite() || weight.iter().any(|w| !w.is_finite()) {
        return Err(GraphError::Input("m_source weight or bias is not finite".into()));
    }
    let n = f0.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let phases = frame_phases(f0)?; // [n][9], frame-major
    let unvoiced = bias.tanh();

    let mut har = Vec::with_capacity(n * SAMPLES_PER_F0);
    let last = (n - 1) as f32;
    for i in 0..n * SAMPLES_PER_F0 {
        // Unvoiced samples: every sine is multiplied by uv = 0, leaving tanh(bias).
        if f0[i / SAMPLES_PER_F0] <= VOICED_THRESHOLD {
            har.push(unvoiced);
            continue;
        }
        // ONNX Resize linear, half_pixel: the source coordinate in f32 (a float64 coordinate
        // moves the high harmonics by ~1e-2 rad, §4.3 step 6). `i as f32` is exact below 2^24
        // samples (~11 minutes of audio); past that onnxruntime rounds the same way.
        let src = ((i as f32 + 0.5) / SAMPLES_PER_F0 as f32 - 0.5).clamp(0.0, last);
        let i0 = src.floor() as usize; // src ∈ [0, n − 1]
        let i1 = (i0 + 1).min(n - 1);
        let w = src - i0 as f32;
        let p0 = &phases[i0 * N_HARM..(i0 + 1) * N_HARM];
        let p1 = &phases[i1 * N_HARM..(i1 + 1) * N_HARM];
        let mut acc = 0f32;
        for h in 0..N_HARM {
            let phase = p0[h] * (1.0 - w) + p1[h] * w;
            acc += weight[h] * (phase.sin() * SINE_AMP);
        }
        har.push((acc + bias).tanh());
    }
    Ok(har)
}

/// The frame-rate phases `((cyc·2)·π)·300` `[n][9]` (frame-major) of §4.3 steps 2–5.
///
/// Step 3's `half_pixel` resize by 1/300 samples each 300-sample block at its centre, where the
/// nearest-upsampled `rad` is constant, so `rad` is computed once per F0 value.
fn frame_phases(f0: &[f32]) -> Result<Vec<f32>> {
    let n = f0.len();
    let mut phases = vec![0f32; n * N_HARM];
    for h in 0..N_HARM {
        let mult = (h + 1) as f32;
        let mut cyc = 0f64;
        for (j, &f) in f0.iter().enumerate() {
            let rad = (f * mult) / SAMPLE_RATE as f32;
            if !rad.is_finite() {
                return Err(GraphError::Input(format!(
                    "F0 value {f} at index {j} is not usable (non-finite or overflowing)"
                )));
            }
            let rad = rad - rad.floor();
            cyc += f64::from(rad);
            // Mod 2, not 1: taking 2 cycles off one frame moves its phase by 1200π, and the ×300
            // interpolation passes on w·1200π with w an odd multiple of 1/600, a whole number of
            // turns (a shift by 1 would leave half turns). float64 avoids the ~1e-2 rad drift of
            // an f32 cumsum (§4.3 step 4).
            let c = (cyc % 2.0) as f32;
            phases[j * N_HARM + h] = ((c * 2.0) * PI_F32) * SAMPLES_PER_F0 as f32;
        }
    }
    Ok(phases)
}

/// Number of STFT frames of a signal of `len` samples: `len / 5 + 1` (`torch.stft`, center).
pub fn stft_frames(len: usize) -> usize {
    len / HOP + 1
}

/// `TorchSTFT.transform` of the harmonic source: `har` `[L]` → *har_spec_phase* `[22, N]`,
/// `N = L/5 + 1`, row-major (numpy `[22, N]`, i.e. ggml `ne = [N, 22]`), kokoro-model.md §4.4.
///
/// Reflect padding of 10 on each side (edge sample excluded, as torch/ONNX do), frames of 20 at
/// hop 5, periodic Hann window, one-sided DFT (accumulated in f64). Rows 0..10 are the
/// magnitudes `sqrt(re² + im²)` of bins 0..10, rows 11..21 the phases `atan2(im, re)`, except
/// that the DC and Nyquist bins (real in exact arithmetic) get the canonical phase: π when
/// `re < 0`, else 0. The generator is sensitive to that rule; this is what the canonical
/// goldens use.
///
/// Errors ([`GraphError::Input`]) when `L < 11`: reflect padding by 10 needs 11 samples.
/// Non-finite samples are not checked; they propagate into the frames that contain them.
pub fn stft(har: &[f32]) -> Result<Vec<f32>> {
    let len = har.len();
    if len <= PAD {
        return Err(GraphError::Input(format!(
            "STFT input has {len} samples; reflect padding by {PAD} needs at least {}",
            PAD + 1
        )));
    }
    let n_frames = stft_frames(len);
    let tables = dft_tables();

    // torch reflect: x[10], …, x[1] | x | x[L−2], …, x[L−11].
    let mut padded = Vec::with_capacity(len + 2 * PAD);
    padded.extend(har[1..=PAD].iter().rev());
    padded.extend_from_slice(har);
    padded.extend(har[len - 1 - PAD..len - 1].iter().rev());

    let mut out = vec![0f32; N_SPEC_ROWS * n_frames];
    let mut x = [0f64; N_FFT];
    for t in 0..n_frames {
        for (d, &s) in x.iter_mut().zip(&padded[t * HOP..t * HOP + N_FFT]) {
            *d = f64::from(s);
        }
        for k in 0..N_BINS {
            let re = dot(&x, &tables.analysis_re[k]);
            let im = dot(&x, &tables.analysis_im[k]);
            let phase = if k == 0 || k == N_BINS - 1 {
                if re < 0.0 {
                    PI
                } else {
                    0.0
                }
            } else {
                im.atan2(re)
            };
            out[k * n_frames + t] = (re * re + im * im).sqrt() as f32;
            out[(N_BINS + k) * n_frames + t] = phase as f32;
        }
    }
    Ok(out)
}

/// `Σ a[n]·b[n]` over one frame.
fn dot(a: &[f64; N_FFT], b: &[f64; N_FFT]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const W1: [f32; 9] = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];

    #[test]
    fn source_rejects_bad_input_and_accepts_empty() {
        assert!(harmonic_source(&[100.0], &[1.0; 8], 0.0).is_err());
        assert!(harmonic_source(&[100.0, f32::NAN], &W1, 0.0).is_err());
        assert!(harmonic_source(&[f32::INFINITY], &W1, 0.0).is_err());
        assert!(harmonic_source(&[f32::MAX], &W1, 0.0).is_err()); // f0·9 overflows
        assert!(harmonic_source(&[100.0], &W1, f32::NAN).is_err());
        assert_eq!(
            harmonic_source(&[], &W1, 0.3).expect("empty is fine"),
            Vec::<f32>::new()
        );
    }

    #[test]
    fn unvoiced_frames_are_tanh_bias() {
        let bias = 0.25f32;
        let f0 = [1000.0, 5.0, 1000.0, 10.0, -300.0, 10.5];
        let har = harmonic_source(&f0, &[0.3; 9], bias).expect("valid input");
        assert_eq!(har.len(), 6 * 300);
        for (j, block) in har.chunks(300).enumerate() {
            let voiced = f0[j] > 10.0;
            let n_bias = block.iter().filter(|&&x| x == bias.tanh()).count();
            if voiced {
                assert!(n_bias < 10, "frame {j}: voiced but flat");
            } else {
                assert_eq!(n_bias, 300, "frame {j}: unvoiced must be exactly tanh(bias)");
            }
        }
    }

    #[test]
    fn negative_f0_wraps_like_python_mod() {
        // rad_h(−6000) = −h/4 and rad_h(18000) = 3h/4 agree mod 1 for every h.
        let a = frame_phases(&[-6000.0, -6000.0, -6000.0]).expect("finite");
        let b = frame_phases(&[18000.0, 18000.0, 18000.0]).expect("finite");
        assert_eq!(a, b);
        // And a small negative value wraps to just below 1, not to a negative increment.
        let c = frame_phases(&[-24.0]).expect("finite"); // rad_1 = −0.001 → 0.999
        let want = ((0.999f32 * 2.0) * PI_F32) * 300.0;
        assert!((c[0] - want).abs() < 2e-3 * want, "{} vs {want}", c[0]);
    }

    #[test]
    fn constant_voiced_f0_is_a_sampled_sine() {
        // For constant f0 the interpolated phase at sample i is 2π·f0·(i + 150.5)/24000 (the
        // cumulative sum counts frame j's own increment; half-pixel centres sit at 300j + 149.5),
        // away from the 150 clamped samples at each end.
        let f = 1000.0f64;
        let har = harmonic_source(&[f as f32; 8], &W1, 0.0).expect("valid input");
        for (i, &y) in har.iter().enumerate().take(2400 - 150).skip(150) {
            let want = (0.1 * (2.0 * PI * f * (i as f64 + 150.5) / 24000.0).sin()).tanh();
            assert!((f64::from(y) - want).abs() < 1e-4, "sample {i}: {y} vs {want}");
        }
    }

    #[test]
    fn stft_shape_and_short_input() {
        assert!(stft(&[0.0; 10]).is_err());
        assert!(stft(&[]).is_err());
        assert_eq!(stft(&[0.0; 11]).expect("11 samples").len(), 22 * 3);
        assert_eq!(stft(&[0.0; 2400]).expect("8 frames of F0").len(), 22 * 481);
    }

    #[test]
    fn stft_of_a_constant() {
        // A constant c survives reflect padding, so every frame is c·w: DC = c·Σw = 10c,
        // bin 1 = −5c (Hann's only other nonzero coefficient), bins 2..10 = 0.
        for c in [0.5f32, -0.5] {
            let n = stft_frames(40);
            let s = stft(&[c; 40]).expect("40 samples");
            for t in 0..n {
                let mag = |k: usize| s[k * n + t];
                let ph = |k: usize| s[(11 + k) * n + t];
                assert!((mag(0) - 10.0 * c.abs()).abs() < 1e-6);
                assert!((mag(1) - 5.0 * c.abs()).abs() < 1e-6);
                for k in 2..11 {
                    assert!(mag(k) < 1e-6, "bin {k}: {}", mag(k));
                }
                // Canonical DC rule: exactly π for a negative real part, exactly 0 otherwise.
                assert_eq!(ph(0), if c < 0.0 { PI_F32 } else { 0.0 });
                // Nyquist is round-off here; the rule still yields exactly 0 or π.
                assert!(ph(10) == 0.0 || ph(10) == PI_F32, "Nyquist phase {}", ph(10));
                // Bin 1 is −5c: phase ±π for c > 0, 0 for c < 0.
                let want1 = if c > 0.0 { PI_F32 } else { 0.0 };
                assert!((ph(1).abs() - want1).abs() < 1e-6, "bin 1 phase {}", ph(1));
            }
        }
    }

    #[test]
    fn stft_nyquist_and_a_bin_centred_cosine() {
        // (−1)^i keeps its parity through the reflect pad; frame t starts at sample 5t − 10, so
        // its Nyquist bin is (−1)^t·Σw = ±10 (phase 0 / π by the canonical rule).
        let alt: Vec<f32> = (0..60).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let n = stft_frames(alt.len());
        let s = stft(&alt).expect("60 samples");
        for t in 0..n {
            assert!((s[10 * n + t] - 10.0).abs() < 1e-6);
            assert_eq!(s[21 * n + t], if t % 2 == 0 { 0.0 } else { PI_F32 });
        }
        // cos(2π·3i/20): bin 3 has magnitude Σw/2 = 5 and phase 2π·3(5t − 10)/20 in frames away
        // from the padded edges; this fixes the sign convention (e^{−jωn}, atan2(im, re)).
        let len = 100;
        let x: Vec<f32> = (0..len)
            .map(|i| (2.0 * PI * 3.0 * i as f64 / 20.0).cos() as f32)
            .collect();
        let n = stft_frames(len);
        let s = stft(&x).expect("100 samples");
        for t in 2..n - 2 {
            assert!((s[3 * n + t] - 5.0).abs() < 1e-5);
            let want = 2.0 * PI * 3.0 * (5.0 * t as f64 - 10.0) / 20.0;
            let d = f64::from(s[14 * n + t]) - want;
            let wrapped = d - (2.0 * PI) * (d / (2.0 * PI)).round();
            assert!(wrapped.abs() < 1e-5, "frame {t}: phase off by {wrapped}");
        }
    }
}
