//! Streaming sample-rate conversion for codecs that only take certain rates (Opus).
//!
//! A thin streaming wrapper around `rubato`'s asynchronous sinc resampler, used with a fixed
//! ratio. The sinc resampler was picked over `rubato`'s FFT resampler because it handles any
//! pair of rates with the same small chunk (the FFT resampler's block is `rate / gcd(in, out)`
//! samples, a whole second for rates like 22001 Hz) and it does not need `rustfft`, which keeps
//! the build smaller.
//!
//! The wrapper takes input of any length, feeds `rubato` fixed chunks of [`CHUNK`] frames,
//! drops the filter's start-up delay from the output so that output sample 0 lines up with
//! input sample 0, and at the end pushes zeros through until the output covers the whole
//! input, then cuts it to exactly `round(input_len * out_rate / in_rate)` samples. The output
//! does not depend on how the input was split.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Indexing, Resampler, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

use super::EncodeError;

/// Input frames per `rubato` call.
const CHUNK: usize = 480;

/// Length of the windowed sinc filter in input samples: stop-band attenuation well above what
/// a lossy codec preserves, at a modest cost.
const SINC_LEN: usize = 128;

/// Turns a `rubato` error into [`EncodeError::Codec`].
fn codec_error(context: &str, err: impl std::fmt::Display) -> EncodeError {
    EncodeError::Codec(format!("resampler: {context}: {err}"))
}

/// A fixed-ratio streaming resampler for one mono stream.
pub(super) struct StreamResampler {
    inner: Async<f32>,
    in_rate: u32,
    out_rate: u32,
    /// Input not yet handed to `rubato` (less than one chunk between calls).
    pending: Vec<f32>,
    /// `rubato`'s output for one call.
    scratch: Vec<f32>,
    /// Output frames still to drop for the filter's start-up delay.
    to_trim: usize,
    /// Input frames received so far.
    input_total: u64,
    /// Output frames emitted so far (after the trim).
    output_total: u64,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("in_rate", &self.in_rate)
            .field("out_rate", &self.out_rate)
            .field("input_total", &self.input_total)
            .field("output_total", &self.output_total)
            .finish_non_exhaustive()
    }
}

impl StreamResampler {
    /// A resampler from `in_rate` to `out_rate` Hz (both non-zero).
    pub(super) fn new(in_rate: u32, out_rate: u32) -> Result<Self, EncodeError> {
        let params = SincInterpolationParameters::new(SINC_LEN, WindowFunction::BlackmanHarris2)
            .interpolation(SincInterpolationType::Cubic);
        let ratio = f64::from(out_rate) / f64::from(in_rate);
        let inner = Async::<f32>::new_sinc(ratio, 1.0, &params, CHUNK, 1, FixedAsync::Input)
            .map_err(|e| codec_error("setup", e))?;
        let scratch = vec![0.0; inner.output_frames_max()];
        // The filter delays the signal by `SINC_LEN / 2 * ratio - 1` output samples (measured
        // with an impulse for up- and downsampling ratios from 1/4 to 6). `rubato`'s
        // `output_delay()` is `floor(SINC_LEN / 2 * ratio)`, one sample too long, which would
        // leave the output early; `length_alignment_and_accuracy` pins the real value.
        let to_trim = (SINC_LEN as f64 / 2.0 * ratio - 1.0).round().max(0.0) as usize;
        Ok(Self {
            inner,
            in_rate,
            out_rate,
            pending: Vec::with_capacity(CHUNK),
            scratch,
            to_trim,
            input_total: 0,
            output_total: 0,
        })
    }

    /// Resamples `input` and appends whatever output is ready to `out`.
    pub(super) fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), EncodeError> {
        self.input_total += input.len() as u64;
        let mut rest = input;
        while !rest.is_empty() {
            let take = rest.len().min(CHUNK - self.pending.len());
            let (now, later) = rest.split_at(take);
            self.pending.extend_from_slice(now);
            rest = later;
            if self.pending.len() == CHUNK {
                self.run_chunk(None, out)?;
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// Flushes the filter and appends the rest of the output, so that the total output is
    /// `round(input_len * out_rate / in_rate)` samples.
    pub(super) fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), EncodeError> {
        let expected = (u128::from(self.input_total) * u128::from(self.out_rate)
            + u128::from(self.in_rate) / 2)
            / u128::from(self.in_rate);
        let expected = u64::try_from(expected).map_err(|e| codec_error("length", e))?;
        let start = out.len();
        // The last partial chunk, padded with silence; then silence until the tail is out.
        let mut valid = self.pending.len();
        self.pending.resize(CHUNK, 0.0);
        while valid > 0 || self.output_total < expected {
            self.run_chunk(Some(valid), out)?;
            valid = 0;
        }
        self.pending.clear();
        let excess = usize::try_from(self.output_total - expected).unwrap_or(usize::MAX);
        out.truncate(out.len() - excess.min(out.len() - start));
        self.output_total = expected;
        Ok(())
    }

    /// Runs one chunk of `pending` through `rubato` (`partial` valid frames if given, the rest
    /// read as silence) and appends the output, minus any start-up delay still to drop.
    fn run_chunk(&mut self, partial: Option<usize>, out: &mut Vec<f32>) -> Result<(), EncodeError> {
        let input =
            InterleavedSlice::new(&self.pending, 1, CHUNK).map_err(|e| codec_error("input buffer", e))?;
        let frames = self.scratch.len();
        let mut output = InterleavedSlice::new_mut(&mut self.scratch, 1, frames)
            .map_err(|e| codec_error("output buffer", e))?;
        let indexing = Indexing {
            partial_len: partial,
            ..Indexing::default()
        };
        let (_, produced) = self
            .inner
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(|e| codec_error("processing", e))?;
        let skip = self.to_trim.min(produced);
        self.to_trim -= skip;
        out.extend_from_slice(&self.scratch[skip..produced]);
        self.output_total += (produced - skip) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f64, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (0.5 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()) as f32)
            .collect()
    }

    fn resample(input: &[f32], from: u32, to: u32, chunk: usize) -> Vec<f32> {
        let mut r = StreamResampler::new(from, to).unwrap();
        let mut out = Vec::new();
        for part in input.chunks(chunk) {
            r.process(part, &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn length_alignment_and_accuracy() {
        for (from, to) in [
            (22_050, 24_000),
            (44_100, 48_000),
            (32_000, 48_000),
            (96_000, 48_000),
            (192_000, 48_000),
            (11_025, 12_000),
            (22_001, 24_000),
            (8_000, 48_000),
        ] {
            let len = from as usize + 123;
            let input = sine(from, 440.0, len);
            let out = resample(&input, from, to, 1000);
            let expected_len = (len as f64 * f64::from(to) / f64::from(from)).round() as usize;
            assert_eq!(out.len(), expected_len, "{from} -> {to}");
            // Against the ideal output: the same sine sampled at the new rate, ignoring the
            // filter's edges (the signal starts and stops abruptly). `rubato` reports its delay
            // in whole output samples, so a constant delay of under one sample remains
            // (inaudible); fit it, then require both the alignment and the accuracy.
            let edge = to as usize / 100;
            let snr_at = |shift: f64| {
                let (mut signal, mut noise) = (0.0f64, 0.0f64);
                for (i, &y) in out.iter().enumerate().take(expected_len - edge).skip(edge) {
                    let t = (i as f64 - shift) / f64::from(to);
                    let ideal = 0.5 * (2.0 * std::f64::consts::PI * 440.0 * t).sin();
                    signal += ideal * ideal;
                    noise += (ideal - f64::from(y)).powi(2);
                }
                10.0 * (signal / noise).log10()
            };
            let (snr, shift) = (-100..=100)
                .map(|k| f64::from(k) / 100.0)
                .map(|shift| (snr_at(shift), shift))
                .fold((f64::MIN, 0.0), |best, x| if x.0 > best.0 { x } else { best });
            eprintln!("resample {from} -> {to}: SNR {snr:.1} dB at a delay of {shift:.2} samples");
            assert!(snr > 60.0, "{from} -> {to}: SNR {snr:.1} dB");
            assert!(
                shift.abs() <= 0.5,
                "{from} -> {to}: misaligned by {shift} samples"
            );
        }
    }

    #[test]
    fn output_does_not_depend_on_push_size() {
        let input = sine(22_050, 1000.0, 30_000);
        let whole = resample(&input, 22_050, 24_000, usize::MAX);
        for chunk in [1, 7, 479, 480, 481, 4096] {
            assert_eq!(
                resample(&input, 22_050, 24_000, chunk),
                whole,
                "push size {chunk}"
            );
        }
    }

    #[test]
    fn empty_and_tiny_inputs() {
        assert!(resample(&[], 22_050, 24_000, 1).is_empty());
        assert_eq!(resample(&[0.5], 22_050, 24_000, 1).len(), 1);
        assert_eq!(resample(&[0.5; 3], 96_000, 48_000, 1).len(), 2);
    }
}
