//! `AdaIN1d` and the activation after it, fused into one custom op.
//!
//! Every `AdaIN1d` in the decoder and the generator is followed by an activation (LeakyReLU in
//! `AdainResBlk1d`, Snake in `AdaINResBlock1`). As separate ggml ops that is 5 (LeakyReLU) to 9
//! (Snake) passes over a `[T, C]` tensor, each ending in a thread barrier, and ggml's `sin` is
//! a scalar libm call per element: together ~25 % of the CPU time after the convolutions moved
//! to GEMMs (perf). Fused, each channel row is read twice (mean, variance) and written once,
//! with a vectorisable `sin²`.
//!
//! Numerics follow the unfused graph: InstanceNorm as `ggml_norm` (mean, then the biased
//! variance of `x − mean`, both summed in f64, `1/√(var + eps)`), then `(1 + γ)·x̂ + β`, then
//! the activation. `sin²` is a polynomial (below) within 2 ulp of f32 `sin(x)²` for the
//! magnitudes that occur; beyond [`SIN_REDUCTION_LIMIT`] it falls back to libm.

use tts_ggml::{Context, GgmlType, Split, Tensor};

use super::{KokoroWeights, Result, StyleFc};

/// The activation applied after the normalisation.
#[derive(Debug, Clone, Copy)]
pub enum Activation<'a> {
    /// `max(x, 0) + slope·min(x, 0)`.
    LeakyRelu(f32),
    /// Snake: `x + sin²(α·x)/α`, with `α` `[1, C, 1]` (one per channel).
    Snake(Tensor<'a>),
}

/// InstanceNorm eps of `AdaIN1d`.
const EPS: f64 = 1e-5;

/// `AdaIN1d` (`γ`, `β` from `fc(s)`) followed by `act`, on `x` `[T, C]` → `[T, C]`.
pub fn adain_act<'a>(
    ctx: &'a Context,
    w: &'a KokoroWeights,
    fc: &StyleFc,
    x: Tensor<'a>,
    s: Tensor<'a>,
    act: Activation<'a>,
) -> Result<Tensor<'a>> {
    let c = x.ne()[1];
    let (g, b) = fc.forward(ctx, w, s)?; // γ, β [C, 1]
    let x = if x.is_contiguous() { x } else { ctx.cont(x)? };
    let ne = x.ne();
    match act {
        Activation::LeakyRelu(slope) => Ok(ctx.custom(ne, &[x, g, b], Split::Outer(1), move |a| {
            let t = a.dst_ne[0];
            for (j, c) in a.blocks.clone().enumerate() {
                let src = &a.srcs[0].data[c * t..(c + 1) * t];
                let (scale, shift) = affine(src, a.srcs[1].data[c], a.srcs[2].data[c]);
                for (d, &v) in a.dst[j * t..(j + 1) * t].iter_mut().zip(src) {
                    let y = v * scale + shift;
                    *d = if y > 0.0 { y } else { y * slope };
                }
            }
        })?),
        Activation::Snake(alpha) => {
            let alpha = if alpha.ty() == GgmlType::F32 {
                alpha
            } else {
                ctx.cast(alpha, GgmlType::F32)?
            };
            let alpha = ctx.reshape(ctx.cont(alpha)?, &[c])?;
            Ok(ctx.custom(ne, &[x, g, b, alpha], Split::Outer(1), move |a| {
                let t = a.dst_ne[0];
                for (j, c) in a.blocks.clone().enumerate() {
                    let src = &a.srcs[0].data[c * t..(c + 1) * t];
                    let (scale, shift) = affine(src, a.srcs[1].data[c], a.srcs[2].data[c]);
                    let al = a.srcs[3].data[c];
                    snake_row(src, scale, shift, al, &mut a.dst[j * t..(j + 1) * t]);
                }
            })?)
        }
    }
}

/// `(scale, shift)` with `(1 + γ)·(v − mean)·rstd + β = v·scale + shift` for one channel row.
fn affine(row: &[f32], gamma: f32, beta: f32) -> (f32, f32) {
    let n = row.len().max(1) as f64;
    let mean = sum_f64(row, |v| v) / n;
    let mean32 = mean as f32;
    let var = sum_f64(row, |v| {
        let d = v - mean32;
        d * d
    }) / n;
    let rstd = (1.0 / (var + EPS).sqrt()) as f32;
    let scale = rstd * (1.0 + gamma);
    (scale, beta - mean32 * scale)
}

/// `Σ f(v)` over `row`: 8 f32 lanes over blocks of 256 elements (a partial sum of 32 terms
/// each), the block sums added in f64: the accuracy of an f64 sum for these lengths, at the
/// speed of a vectorised f32 loop.
fn sum_f64(row: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut total = 0f64;
    for block in row.chunks(256) {
        let mut lanes = [0f32; 8];
        let mut it = block.chunks_exact(8);
        for c in &mut it {
            for (l, &v) in lanes.iter_mut().zip(c) {
                *l += f(v);
            }
        }
        let mut part: f64 = lanes.iter().map(|&l| f64::from(l)).sum();
        part += it.remainder().iter().map(|&v| f64::from(f(v))).sum::<f64>();
        total += part;
    }
    total
}

/// One row of `y + sin²(α·y)/α` with `y = v·scale + shift`.
fn snake_row(src: &[f32], scale: f32, shift: f32, alpha: f32, dst: &mut [f32]) {
    let inv = 1.0 / alpha;
    for (d, &v) in dst.iter_mut().zip(src) {
        let y = v * scale + shift;
        *d = y + sin_sq(alpha * y) * inv;
    }
}

/// Above this magnitude the three-part π/2 reduction loses bits; libm takes over.
pub const SIN_REDUCTION_LIMIT: f32 = 8192.0;

/// `sin(x)²` in f32: `x = n·π/2 + r` with `|r| ≤ π/4` (Cody–Waite, three parts of π/2), then
/// `sin²(r)` for even `n` and `cos²(r)` for odd `n` (the sign of `sin` does not matter after
/// squaring), with the classic single-precision minimax polynomials for `sin` and `cos` on
/// `[−π/4, π/4]`. Branch-free apart from the range check, so the loop vectorises.
// The coefficients are written as published (rounded to f32 by the compiler).
#[allow(clippy::excessive_precision)]
#[inline]
pub fn sin_sq(x: f32) -> f32 {
    if x.abs() > SIN_REDUCTION_LIMIT || !x.is_finite() {
        let s = x.sin();
        return s * s;
    }
    const TWO_OVER_PI: f32 = std::f32::consts::FRAC_2_PI;
    // π/2 = P1 + P2 + P3 (P1, P2 with few mantissa bits so n·P1 and n·P2 are exact).
    const P1: f32 = 1.570_312_5;
    const P2: f32 = 4.837_512_969_970_703e-4;
    const P3: f32 = 7.549_789_954_891_862e-8;
    // Round to nearest by the 1.5·2²³ trick (|x·2/π| < 2²² here): `f32::round` is a libm
    // call on baseline x86-64 and would stop the loop from vectorising.
    const MAGIC: f32 = 12_582_912.0;
    let n = (x * TWO_OVER_PI + MAGIC) - MAGIC;
    let r = ((x - n * P1) - n * P2) - n * P3;
    let z = r * r;
    let sin_r = r + r * z * (-1.666_665_461_1e-1 + z * (8.332_160_873_6e-3 + z * -1.951_529_589_1e-4));
    let cos_r = 1.0 - 0.5 * z
        + z * z * (4.166_664_568_298_827e-2 + z * (-1.388_731_625_493_765e-3 + z * 2.443_315_711_809_948e-5));
    let odd = (n as i32) & 1 == 1;
    let v = if odd { cos_r } else { sin_r };
    v * v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sin_sq_matches_f64_within_a_few_ulp() {
        let mut worst = 0f64;
        let mut x = -SIN_REDUCTION_LIMIT;
        while x <= SIN_REDUCTION_LIMIT {
            let want = (f64::from(x)).sin().powi(2);
            let got = f64::from(sin_sq(x));
            // absolute error relative to the f32 spacing near 1 (sin² is in [0, 1])
            let err = (got - want).abs() / f64::from(f32::EPSILON);
            worst = worst.max(err);
            x += 0.000_937 * (1.0 + x.abs());
        }
        assert!(worst < 4.0, "sin² error {worst} ulp of 1.0");
        for x in [0.0f32, 1e-20, -1e-20, 1e-3, 3.0e4, -1.0e6, f32::NAN] {
            let s = (f64::from(x)).sin().powi(2);
            let g = f64::from(sin_sq(x));
            assert!(
                x.is_nan() && g.is_nan() || (g - s).abs() < 1e-6,
                "{x}: {g} vs {s}"
            );
        }
    }

    #[test]
    fn affine_is_instance_norm_then_adain() {
        let row: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin() * 3.0 + 1.5).collect();
        let (gamma, beta) = (0.25f32, -0.75f32);
        let (scale, shift) = affine(&row, gamma, beta);
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / 50.0;
        let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / 50.0;
        for &v in &row {
            let want =
                (1.0 + f64::from(gamma)) * (f64::from(v) - mean) / (var + EPS).sqrt() + f64::from(beta);
            let got = f64::from(v * scale + shift);
            assert!((got - want).abs() < 2e-6 * (1.0 + want.abs()), "{got} vs {want}");
        }
    }
}
