//! A direct 1-D convolution as K shifted GEMMs, without im2col.
//!
//! ggml's `conv_1d` materialises an im2col matrix (`K · C_in` floats per output sample: 0.7 MB
//! per generator frame) and multiplies it with llamafile's tinyBLAS, which has no cache
//! blocking; on the Kokoro generator that pair was ~77 % of the CPU time at ~29 GFLOP/s per
//! core. Here the convolution of a time-major input `x` `[T, C_in]` (each channel a contiguous
//! row of `T` samples) with a kernel `w` `[K, C_in, C_out]` is, for each tap `k`,
//!
//! ```text
//! Y[co, t] += Σ_ci W[co, ci, k] · x[ci, t·stride + k·dilation − padding]
//! ```
//!
//! a GEMM `W_k (C_out × C_in) · X_k (C_in × T_out)` whose operands are strided views of the
//! kernel and the input as they lie in memory. The GEMM is the `gemm` crate's (packed, cache
//! blocked, runtime-dispatched AVX2/AVX-512/NEON microkernels; the library candle and faer
//! use), called single-threaded on each ggml thread's share of the output channels, over time
//! blocks of [`TIME_BLOCK`] samples so that the output block stays in L2. Padding is never
//! copied: each tap's GEMM covers only the outputs whose input sample exists (the others get
//! the zero the padding would contribute).
//!
//! Exactness: every output is the same sum of products as PyTorch's, in another order (f32
//! rounding only).

use std::ops::Range;

/// Output samples per GEMM call (measured on the generator's shapes: 512–2048 are within
/// noise; a block of 1024 × 64 rows of f32 is 256 KiB).
pub(crate) const TIME_BLOCK: usize = 1024;

/// The shape of one direct convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    /// Input length `T`.
    pub t_in: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel taps `K`.
    pub k: usize,
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
}

impl ConvShape {
    /// Output length, `None` when the padded input is shorter than the kernel's span or a
    /// parameter is zero.
    pub fn t_out(&self) -> Option<usize> {
        if self.stride == 0 || self.dilation == 0 || self.k == 0 || self.t_in == 0 {
            return None;
        }
        let span = self.dilation.checked_mul(self.k - 1)?.checked_add(1)?;
        let padded = self.t_in.checked_add(self.padding.checked_mul(2)?)?;
        if padded < span {
            return None;
        }
        Some((padded - span) / self.stride + 1)
    }

    /// The outputs `t` in `block` whose input sample for tap `tap` exists:
    /// `0 ≤ t·stride + tap·dilation − padding < t_in`.
    fn valid(&self, tap: usize, block: Range<usize>) -> Range<usize> {
        let off = (tap * self.dilation) as isize - self.padding as isize;
        let s = self.stride as isize;
        // smallest t with t·s + off ≥ 0
        let lo = if off >= 0 { 0 } else { ((-off) + s - 1) / s };
        // largest t with t·s + off ≤ t_in − 1, plus one
        let hi_num = self.t_in as isize - 1 - off;
        let hi = if hi_num < 0 { 0 } else { hi_num / s + 1 };
        let start = block.start.max(lo as usize);
        let end = block.end.min(hi as usize);
        start..end.max(start)
    }
}

/// Computes output channels `rows` of the convolution into `dst` (`rows.len()` rows of
/// `t_out` samples, accumulated into whatever `dst` holds, normally zeros).
///
/// # Panics
/// When a slice length does not match `shape` (the op builder checks shapes, so this is a
/// bug; the custom-op trampoline turns the panic into a compute error).
pub(crate) fn conv1d_rows(shape: &ConvShape, x: &[f32], w: &[f32], rows: Range<usize>, dst: &mut [f32]) {
    let t_out = shape.t_out().expect("conv shape checked when the op was built");
    let (c_in, k) = (shape.c_in, shape.k);
    assert_eq!(x.len(), shape.t_in * c_in, "input length");
    assert_eq!(w.len(), k * c_in * shape.c_out, "kernel length");
    assert!(rows.end <= shape.c_out, "output rows");
    assert_eq!(dst.len(), rows.len() * t_out, "output length");
    if rows.is_empty() {
        return;
    }
    let m = rows.len();
    let mut t0 = 0;
    while t0 < t_out {
        let block = t0..(t0 + TIME_BLOCK).min(t_out);
        for tap in 0..k {
            let cols = shape.valid(tap, block.clone());
            if cols.is_empty() {
                continue;
            }
            let n = cols.len();
            // First input sample read by this tap: ≥ 0 by `valid`.
            let first = cols.start * shape.stride + tap * shape.dilation - shape.padding;
            // Largest indices touched (all in bounds):
            // dst: (m − 1)·t_out + cols.end − 1 < m·t_out = dst.len();
            // w: (rows.end − 1)·C_in·K + (C_in − 1)·K + tap < C_out·C_in·K = w.len();
            // x: (C_in − 1)·T + first + (n − 1)·stride ≤ (C_in − 1)·T + T − 1 < x.len()
            //    because the last column's input sample is < T (`valid`).
            debug_assert!((c_in - 1) * shape.t_in + first + (n - 1) * shape.stride < x.len());
            // SAFETY: the three pointers and strides describe, for `m × n` (dst), `m × C_in`
            // (lhs) and `C_in × n` (rhs) matrices, only elements inside the slices (bounds
            // above, from the asserted lengths and `valid`); `dst` is a unique borrow and does
            // not overlap the shared `x`, `w`; `gemm` reads and writes nothing else, and runs
            // on this thread only (`Parallelism::None`).
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    c_in,
                    dst.as_mut_ptr().add(cols.start),
                    1,
                    t_out as isize,
                    true,
                    w.as_ptr().add(rows.start * c_in * k + tap),
                    k as isize,
                    (c_in * k) as isize,
                    x.as_ptr().add(first),
                    shape.stride as isize,
                    shape.t_in as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        t0 = block.end;
    }
}

/// Computes output channels `rows` of the transposed convolution (no padding, no output
/// padding) of `x` `[L, C_in]` with `w` `[K, C_out, C_in]` at `stride` into `dst`
/// (`rows.len()` rows of `(L − 1)·stride + K` samples, accumulated into its contents):
/// `Y[co, t·stride + j] += Σ_ci W[ci, co, j] · x[ci, t]`, one GEMM per tap `j` whose output is
/// the strided view of every `stride`-th column (no col2im buffer).
///
/// # Panics
/// When a slice length does not match the shape (a bug: the op builder checks shapes).
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_transpose1d_rows(
    l: usize,
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    x: &[f32],
    w: &[f32],
    rows: Range<usize>,
    dst: &mut [f32],
) {
    assert!(l > 0 && k > 0 && stride > 0, "empty transposed conv");
    let l_full = (l - 1) * stride + k;
    assert_eq!(x.len(), l * c_in, "input length");
    assert_eq!(w.len(), k * c_out * c_in, "kernel length");
    assert!(rows.end <= c_out, "output rows");
    assert_eq!(dst.len(), rows.len() * l_full, "output length");
    if rows.is_empty() {
        return;
    }
    let m = rows.len();
    // Inputs per block: the block's output span (≈ TIME_BLOCK + K columns) stays in cache.
    let block = (TIME_BLOCK / stride).max(1);
    let mut t0 = 0;
    while t0 < l {
        let n = block.min(l - t0);
        for j in 0..k {
            // Largest indices touched (all in bounds):
            // dst: (m − 1)·L_full + (t0 + n − 1)·stride + j ≤ (m − 1)·L_full + (L − 1)·stride + K − 1;
            // w: (C_in − 1)·C_out·K + (rows.end − 1)·K + j < C_in·C_out·K;
            // x: (C_in − 1)·L + t0 + n − 1 < C_in·L.
            // SAFETY: the pointers and strides describe `m × n` (dst, every `stride`-th
            // column), `m × C_in` (lhs) and `C_in × n` (rhs) matrices whose elements lie inside
            // the slices (bounds above, from the asserted lengths); `dst` is a unique borrow
            // disjoint from `x` and `w`; `gemm` runs on this thread only.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    c_in,
                    dst.as_mut_ptr().add(t0 * stride + j),
                    stride as isize,
                    l_full as isize,
                    true,
                    w.as_ptr().add(rows.start * k + j),
                    (c_out * k) as isize,
                    k as isize,
                    x.as_ptr().add(t0),
                    1,
                    l as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        t0 += n;
    }
}

/// The direct convs' operand rules: an F32 or F16 contiguous kernel, F32 data.
fn check_operands(
    op: &'static str,
    kernel: &crate::Tensor<'_>,
    data: &crate::Tensor<'_>,
) -> crate::Result<()> {
    use crate::{GgmlError, GgmlType};
    if !matches!(kernel.ty(), GgmlType::F32 | GgmlType::F16) {
        return Err(GgmlError::Type {
            op,
            operand: "kernel",
            ty: kernel.type_name(),
        });
    }
    if data.ty() != GgmlType::F32 {
        return Err(GgmlError::Type {
            op,
            operand: "data",
            ty: data.type_name(),
        });
    }
    if !kernel.is_contiguous() {
        return Err(GgmlError::Layout {
            op,
            operand: "kernel",
            requirement: "contiguous (use cont first)",
        });
    }
    Ok(())
}

impl crate::Context {
    /// `nn.Conv1d` without bias on a time-major F32 input `data` `[T, C_in]` (made contiguous
    /// first when it is not) with an F32 or F16 kernel `[K, C_in, C_out]` →
    /// `[T_out, C_out]`, as K shifted GEMMs (see the module docs): no im2col buffer, so the
    /// memory is the output only, whatever the length. ggml's threads share the output
    /// channels; a 16-bit kernel is widened to f32 per call, each thread its own channels
    /// (`C_in · K` values per channel: small next to the `T_out`-fold GEMM work).
    ///
    /// The result equals [`conv_1d`](crate::Context::conv_1d)'s up to f32 rounding.
    ///
    /// # C equivalent
    /// none: a `ggml_custom_4d` op over the `gemm` crate.
    pub fn conv_1d_direct<'a>(
        &'a self,
        kernel: crate::Tensor<'a>,
        data: crate::Tensor<'a>,
        stride: usize,
        padding: usize,
        dilation: usize,
    ) -> crate::Result<crate::Tensor<'a>> {
        use crate::{GgmlError, GgmlType, Split};
        const OP: &str = "conv_1d_direct";
        check_operands(OP, &kernel, &data)?;
        let [k, kc_in, c_out, k4] = kernel.ne();
        let [t_in, c_in, n3, n4] = data.ne();
        if k4 != 1 || n3 != 1 || n4 != 1 || kc_in != c_in {
            return Err(GgmlError::Shape {
                op: OP,
                detail: format!(
                    "kernel {} and data {} are not [K, C_in, C_out] and [T, C_in]",
                    crate::ops::shape(&kernel),
                    crate::ops::shape(&data)
                ),
            });
        }
        let dim = |n: i64| usize::try_from(n).unwrap_or(0);
        let shape = ConvShape {
            t_in: dim(t_in),
            c_in: dim(c_in),
            c_out: dim(c_out),
            k: dim(k),
            stride,
            padding,
            dilation,
        };
        let t_out = shape.t_out().ok_or_else(|| GgmlError::Shape {
            op: OP,
            detail: format!(
                "input of length {t_in} with padding {padding} is shorter than a kernel of {k} \
                 taps at dilation {dilation} (or stride/dilation is 0)"
            ),
        })?;
        let data = if data.is_contiguous() {
            data
        } else {
            self.cont(data)?
        };
        let ne = [t_out as i64, c_out, 1, 1];
        self.custom_16(OP, ne, &[kernel, data], Split::Outer(1), move |args| {
            let (w, x, rows) = (&args.srcs[0], args.srcs[1].data, args.blocks.clone());
            if w.ty == GgmlType::F32 {
                conv1d_rows(&shape, x, w.data, rows, args.dst);
                return;
            }
            // This thread's output channels are contiguous rows of `C_in · K` kernel values.
            let row = shape.c_in * shape.k;
            let es = w.ty.type_size();
            let w_rows =
                w.ty.to_f32(
                    &w.bytes[rows.start * row * es..rows.end * row * es],
                    rows.len() * row,
                )
                .expect("a 16-bit kernel converts (type checked when the op was built)");
            let part = ConvShape {
                c_out: rows.len(),
                ..shape
            };
            conv1d_rows(&part, x, &w_rows, 0..rows.len(), args.dst);
        })
    }

    /// `ConvTranspose1d` without bias, padding or output padding on a time-major F32 input
    /// `data` `[L, C_in]` with an F32 or F16 kernel `[K, C_out, C_in]` (PyTorch's
    /// `(C_in, C_out, K)`; a 16-bit kernel is widened per call, each thread its channels)
    /// → `[(L − 1)·stride + K, C_out]`, as one GEMM per tap into a strided view of the output
    /// (no col2im buffer). ggml's threads share the output channels.
    ///
    /// The result equals [`conv_transpose_1d`](crate::Context::conv_transpose_1d)'s up to
    /// f32 rounding.
    ///
    /// # C equivalent
    /// none: a `ggml_custom_4d` op over the `gemm` crate.
    pub fn conv_transpose_1d_direct<'a>(
        &'a self,
        kernel: crate::Tensor<'a>,
        data: crate::Tensor<'a>,
        stride: usize,
    ) -> crate::Result<crate::Tensor<'a>> {
        use crate::{GgmlError, GgmlType, Split};
        const OP: &str = "conv_transpose_1d_direct";
        check_operands(OP, &kernel, &data)?;
        let [k, c_out, kc_in, k4] = kernel.ne();
        let [l, c_in, n3, n4] = data.ne();
        if k4 != 1 || n3 != 1 || n4 != 1 || kc_in != c_in || stride == 0 {
            return Err(GgmlError::Shape {
                op: OP,
                detail: format!(
                    "kernel {} and data {} are not [K, C_out, C_in] and [L, C_in] (stride {stride})",
                    crate::ops::shape(&kernel),
                    crate::ops::shape(&data)
                ),
            });
        }
        let dim = |n: i64| usize::try_from(n).unwrap_or(0);
        let (l, c_in, c_out, k) = (dim(l), dim(c_in), dim(c_out), dim(k));
        let l_full = l
            .checked_sub(1)
            .and_then(|v| v.checked_mul(stride))
            .and_then(|v| v.checked_add(k))
            .ok_or_else(|| GgmlError::Shape {
                op: OP,
                detail: format!("output length of {l} inputs at stride {stride} overflows"),
            })?;
        let data = if data.is_contiguous() {
            data
        } else {
            self.cont(data)?
        };
        let ne = [l_full as i64, c_out as i64, 1, 1];
        self.custom_16(OP, ne, &[kernel, data], Split::Outer(1), move |args| {
            let (w, x, rows) = (&args.srcs[0], args.srcs[1].data, args.blocks.clone());
            if w.ty == GgmlType::F32 {
                conv_transpose1d_rows(l, c_in, c_out, k, stride, x, w.data, rows, args.dst);
                return;
            }
            // For each input channel, this thread's output channels are `rows.len() · K`
            // contiguous kernel values: gather and widen them into a `[K, m, C_in]` kernel.
            let (m, es) = (rows.len(), w.ty.type_size());
            let mut w_rows = Vec::with_capacity(c_in * m * k);
            for ci in 0..c_in {
                let start = (ci * c_out + rows.start) * k * es;
                let seg =
                    w.ty.to_f32(&w.bytes[start..start + m * k * es], m * k)
                        .expect("a 16-bit kernel converts (type checked when the op was built)");
                w_rows.extend_from_slice(&seg);
            }
            conv_transpose1d_rows(l, c_in, m, k, stride, x, &w_rows, 0..m, args.dst);
        })
    }
}

/// The same convolution by the definition, for tests.
#[cfg(test)]
pub(crate) fn conv1d_reference(shape: &ConvShape, x: &[f32], w: &[f32]) -> Vec<f32> {
    let t_out = shape.t_out().expect("valid shape");
    let mut y = vec![0f32; shape.c_out * t_out];
    for co in 0..shape.c_out {
        for t in 0..t_out {
            let mut acc = 0f64;
            for ci in 0..shape.c_in {
                for tap in 0..shape.k {
                    let pos = (t * shape.stride + tap * shape.dilation) as isize - shape.padding as isize;
                    if pos >= 0 && (pos as usize) < shape.t_in {
                        acc += f64::from(w[(co * shape.c_in + ci) * shape.k + tap])
                            * f64::from(x[ci * shape.t_in + pos as usize]);
                    }
                }
            }
            y[co * t_out + t] = acc as f32;
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn check(shape: ConvShape) {
        let x = fill(shape.t_in * shape.c_in, 1);
        let w = fill(shape.k * shape.c_in * shape.c_out, 2);
        let want = conv1d_reference(&shape, &x, &w);
        let t_out = shape.t_out().unwrap();
        // Two "threads": split the rows unevenly, as the trampoline may.
        let split = shape.c_out / 3;
        let mut got = vec![0f32; shape.c_out * t_out];
        let (a, b) = got.split_at_mut(split * t_out);
        conv1d_rows(&shape, &x, &w, 0..split, a);
        conv1d_rows(&shape, &x, &w, split..shape.c_out, b);
        let scale = (shape.c_in * shape.k) as f32;
        for (i, (g, r)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - r).abs() <= 1e-6 * scale.max(1.0) * (1.0 + r.abs()),
                "{shape:?}: output {i}: {g} vs {r}"
            );
        }
    }

    #[test]
    fn matches_the_definition_for_every_kokoro_kind_of_conv() {
        let base = ConvShape {
            t_in: 37,
            c_in: 5,
            c_out: 7,
            k: 3,
            stride: 1,
            padding: 1,
            dilation: 1,
        };
        check(base);
        // dilated, "same" padding (resblock convs1)
        check(ConvShape {
            k: 11,
            dilation: 5,
            padding: 25,
            t_in: 60,
            ..base
        });
        // strided with kernel 2·stride (noise_convs), and stride 2 (F0/N conv)
        check(ConvShape {
            k: 12,
            stride: 6,
            padding: 3,
            t_in: 121,
            ..base
        });
        check(ConvShape {
            k: 3,
            stride: 2,
            padding: 1,
            t_in: 40,
            ..base
        });
        // 1×1 (conv1x1, asr_conv) and no padding
        check(ConvShape {
            k: 1,
            padding: 0,
            ..base
        });
        // longer than one time block, with a ragged last block
        check(ConvShape {
            t_in: 2 * TIME_BLOCK + 77,
            c_in: 4,
            c_out: 3,
            k: 7,
            padding: 3,
            ..base
        });
        // padding larger than the input (every tap partly outside)
        check(ConvShape {
            t_in: 2,
            k: 7,
            padding: 3,
            ..base
        });
    }

    #[test]
    fn transposed_matches_the_definition_across_time_blocks() {
        for &(l, c_in, c_out, k, stride) in &[
            (5usize, 2usize, 3usize, 4usize, 2usize),
            (300, 3, 5, 20, 10),
            (400, 2, 4, 12, 6),
            (7, 1, 1, 3, 5),
        ] {
            let x = fill(l * c_in, 3);
            let w = fill(k * c_out * c_in, 4);
            let l_full = (l - 1) * stride + k;
            let mut want = vec![0f64; c_out * l_full];
            for ci in 0..c_in {
                for co in 0..c_out {
                    for t in 0..l {
                        for j in 0..k {
                            want[co * l_full + t * stride + j] +=
                                f64::from(x[ci * l + t]) * f64::from(w[(ci * c_out + co) * k + j]);
                        }
                    }
                }
            }
            let mut got = vec![0f32; c_out * l_full];
            let split = c_out / 2;
            let (a, b) = got.split_at_mut(split * l_full);
            conv_transpose1d_rows(l, c_in, c_out, k, stride, &x, &w, 0..split, a);
            conv_transpose1d_rows(l, c_in, c_out, k, stride, &x, &w, split..c_out, b);
            for (i, (g, r)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (f64::from(*g) - r).abs() < 1e-5 * (1.0 + r.abs()),
                    "({l}, {k}, {stride}) output {i}: {g} vs {r}"
                );
            }
        }
    }

    #[test]
    fn impossible_shapes_have_no_output_length() {
        let s = ConvShape {
            t_in: 3,
            c_in: 1,
            c_out: 1,
            k: 7,
            stride: 1,
            padding: 0,
            dilation: 1,
        };
        assert_eq!(s.t_out(), None);
        assert_eq!(ConvShape { padding: 2, ..s }.t_out(), Some(1));
        assert_eq!(ConvShape { stride: 0, ..s }.t_out(), None);
        assert_eq!(ConvShape { dilation: 0, ..s }.t_out(), None);
    }
}
