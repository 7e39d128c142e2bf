//! The generator's inverse STFT, on the host: *conv_post_out* `[22, N]` → *audio* `[5(N − 1)]`,
//! with the ONNX export's window-sum quirk.
//!
//! Reference: `Generator.forward` (`spec = exp(x[:, :11])`, `phase = sin(x[:, 11:])`) and
//! `TorchSTFT.inverse` in <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/istftnet.py>,
//! in the ONNX-export semantics of `shared/docs/kokoro-model.md` §3 step 12.5–12.6 and §4.5.
//!
//! The quirk, copied on purpose because the goldens (and the model as shipped) have it: the
//! export divides only the first 20 overlap-added samples by the *single-frame* window sum
//! `w[m]²`, and nothing else, so the interior is exactly 1.5× louder than `torch.istft`'s.

use super::harmonic::{dft_tables, HOP, N_BINS, N_FFT, N_SPEC_ROWS};
use crate::graph::{GraphError, Result};

/// Samples cropped from the start of the overlap-add (`center=True` padding of the STFT).
const CROP: usize = N_FFT / 2;

/// Output samples of the iSTFT of `n_frames` frames: `5(N − 1)`.
pub fn istft_len(n_frames: usize) -> usize {
    HOP * n_frames.saturating_sub(1)
}

/// The generator's output transform: `conv_post_out` `[22, N]` row-major (numpy `[22, N]`,
/// ggml `ne = [N, 22]`) → *audio* `[5(N − 1)]` (24 kHz), kokoro-model.md §4.5.
///
/// Rows 0..10 are log-magnitudes (`spec = exp(row)`), rows 11..21 go through `sin` and the
/// result is used as the phase angle, exactly as `Generator.forward` does; the polar pair then
/// goes through [`istft_polar`]. Computed in f64, returned as f32. Audio can exceed ±1.
///
/// Errors ([`GraphError::Input`]) when `n_frames == 0` or `conv_post_out.len() != 22·n_frames`.
/// Non-finite values are not checked (an overflowing `exp` gives inf/NaN samples, no panic).
pub fn istft(conv_post_out: &[f32], n_frames: usize) -> Result<Vec<f32>> {
    check_len("conv_post_out", conv_post_out.len(), N_SPEC_ROWS, n_frames)?;
    let (log_mag, angle_in) = conv_post_out.split_at(N_BINS * n_frames);
    Ok(overlap_add(n_frames, |k, t| {
        let i = k * n_frames + t;
        (f64::from(log_mag[i]).exp(), f64::from(angle_in[i]).sin())
    }))
}

/// The inverse STFT from polar form: magnitudes `spec` `[11, N]` and phase angles `phase`
/// `[11, N]` (both row-major) → `[5(N − 1)]` samples, with the export's quirk (kokoro-model.md
/// §4.5): per frame `irfft(spec·e^{j·phase}, 20)·w`, overlap-add at hop 5, the first 20 samples
/// divided by `w[m]²` where `w[m]² > f32::MIN_POSITIVE` (sample 0, where the window is 0, is
/// left alone), no other normalisation, then the crop `[10, 10 + 5(N − 1))`. As in `irfft`, the
/// imaginary parts of the DC and Nyquist bins are ignored.
///
/// Errors ([`GraphError::Input`]) when `n_frames == 0` or a slice is not `11·n_frames` long.
pub fn istft_polar(spec: &[f32], phase: &[f32], n_frames: usize) -> Result<Vec<f32>> {
    check_len("spec", spec.len(), N_BINS, n_frames)?;
    check_len("phase", phase.len(), N_BINS, n_frames)?;
    Ok(overlap_add(n_frames, |k, t| {
        let i = k * n_frames + t;
        (f64::from(spec[i]), f64::from(phase[i]))
    }))
}

fn check_len(what: &str, len: usize, rows: usize, n_frames: usize) -> Result<()> {
    if n_frames == 0 || n_frames.checked_mul(rows) != Some(len) {
        return Err(GraphError::Input(format!(
            "{what} has {len} values, expected {rows} × {n_frames} frames (at least one frame)"
        )));
    }
    Ok(())
}

/// Overlap-add of the windowed inverse DFTs of `n_frames` frames whose bin `k` of frame `t` is
/// `bin(k, t) = (magnitude, angle)`; applies the quirk and the crop. `n_frames ≥ 1`.
fn overlap_add(n_frames: usize, bin: impl Fn(usize, usize) -> (f64, f64)) -> Vec<f32> {
    let tables = dft_tables();
    let mut y = vec![0f64; HOP * (n_frames - 1) + N_FFT];
    let mut frame = [0f64; N_FFT];
    for t in 0..n_frames {
        frame.fill(0.0);
        for k in 0..N_BINS {
            let (mag, angle) = bin(k, t);
            let (s, c) = angle.sin_cos();
            let (re, im) = (mag * c, mag * s);
            let (kr, ki) = (&tables.synthesis_re[k], &tables.synthesis_im[k]);
            for ((f, &a), &b) in frame.iter_mut().zip(kr).zip(ki) {
                *f += re * a + im * b;
            }
        }
        for (o, &f) in y[t * HOP..t * HOP + N_FFT].iter_mut().zip(&frame) {
            *o += f;
        }
    }
    // The quirk: the export traced the window envelope of a single frame, so only these samples
    // are normalised (and sample 0, where w = 0, is not).
    for (o, &w) in y.iter_mut().zip(&tables.window) {
        let w2 = w * w;
        if w2 > f64::from(f32::MIN_POSITIVE) {
            *o /= w2;
        }
    }
    y[CROP..CROP + istft_len(n_frames)]
        .iter()
        .map(|&v| v as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::harmonic::stft;
    use super::*;

    #[test]
    fn rejects_bad_lengths() {
        assert!(istft(&[], 0).is_err());
        assert!(istft(&[0.0; 21], 1).is_err());
        assert!(istft(&[0.0; 44], 3).is_err());
        assert!(istft_polar(&[0.0; 11], &[0.0; 10], 1).is_err());
        assert!(istft(&[0.0; 22], usize::MAX).is_err());
        assert_eq!(istft(&[0.0; 22], 1).expect("one frame"), Vec::<f32>::new());
        assert_eq!(istft(&[0.0; 44], 2).expect("two frames").len(), 5);
    }

    #[test]
    fn first_frame_shows_the_quirk() {
        // One frame with only DC = 20: irfft gives 1 everywhere, windowed y[n] = w[n]; the quirk
        // divides by w[n]², so output sample i < 10 is 1/w[10 + i]. Later samples get nothing.
        let n = 5;
        let mut spec = vec![0f32; 11 * n];
        spec[0] = 20.0;
        let out = istft_polar(&spec, &[0.0; 55], n).expect("valid");
        assert_eq!(out.len(), 20);
        let w = &dft_tables().window;
        for (i, &o) in out.iter().enumerate() {
            let want = if i < 10 { 1.0 / w[10 + i] } else { 0.0 };
            assert!(
                (f64::from(o) - want).abs() < 1e-5 * want.max(1.0),
                "{i}: {o} vs {want}"
            );
        }
    }

    #[test]
    fn log_magnitude_and_sine_phase_rows() {
        let n = 4;
        let rows: Vec<f32> = (0..22 * n).map(|i| ((i * 37 % 23) as f32 - 11.0) / 9.0).collect();
        let spec: Vec<f32> = rows[..11 * n].iter().map(|x| x.exp()).collect();
        let phase: Vec<f32> = rows[11 * n..].iter().map(|x| x.sin()).collect();
        let a = istft(&rows, n).expect("valid");
        let b = istft_polar(&spec, &phase, n).expect("valid");
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} vs {y}");
        }
    }

    #[test]
    fn inverts_the_stft_up_to_the_interior_gain() {
        // Σ_t w² over the 4 frames covering an interior sample is 1.5, which the export never
        // divides out; output samples 10 ≤ i < L − 5 are fully covered and past the quirk.
        let len = 300;
        let x: Vec<f32> = (0..len)
            .map(|i| {
                let t = i as f64;
                (0.3 * (0.21 * t).sin() + 0.2 * (1.7 * t + 0.4).cos() - 0.05) as f32
            })
            .collect();
        let s = stft(&x).expect("300 samples");
        let n = len / 5 + 1;
        let y = istft_polar(&s[..11 * n], &s[11 * n..], n).expect("valid");
        assert_eq!(y.len(), len);
        for i in 10..len - 5 {
            let d = f64::from(y[i]) - 1.5 * f64::from(x[i]);
            assert!(d.abs() < 1e-5, "sample {i}: {} vs 1.5·{}", y[i], x[i]);
        }
    }
}
