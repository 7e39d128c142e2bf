//! Alignment: the one-hot `pred_aln_trg` `[T, F]` from the durations, and the expansion of
//! token-rate features to frame rate (`en = d·A`, `asr = t_en·A`) as a column gather.
//!
//! Reference: `KModel.forward_with_tokens` (`pred_aln_trg`, `en = d.transpose(-1, -2) @
//! pred_aln_trg`, `asr = t_en @ pred_aln_trg`) in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/model.py>; kokoro-model.md §3
//! "Host: durations and alignment" and step 7. Done on the host: `A` is one-hot, so `x·A`
//! repeats column `i` of `x` `pred_dur[i]` times (exact, no matmul).

/// Total frames `F = Σ pred_dur` (every entry ≥ 1 after rounding).
pub fn n_frames(pred_dur: &[i64]) -> usize {
    pred_dur.iter().map(|&n| n.max(0) as usize).sum()
}

/// `pred_aln_trg` `[T, F]` row-major (numpy order): `A[i, f] = 1` iff
/// `Σ_{j<i} n_j ≤ f < Σ_{j≤i} n_j`.
pub fn alignment_matrix(pred_dur: &[i64]) -> Vec<f32> {
    let n_f = n_frames(pred_dur);
    let mut a = vec![0f32; pred_dur.len() * n_f];
    let mut f0 = 0;
    for (i, &n) in pred_dur.iter().enumerate() {
        let n = n.max(0) as usize;
        a[i * n_f + f0..i * n_f + f0 + n].fill(1.0);
        f0 += n;
    }
    a
}

/// `x·A` for `x` `ne = [C, T]` (T rows of C): returns `ne = [C, F]`, token `i`'s column
/// repeated `pred_dur[i]` times. `None` when `x.len() != C·T`.
pub fn expand(x: &[f32], channels: usize, pred_dur: &[i64]) -> Option<Vec<f32>> {
    if channels == 0 || x.len() != channels * pred_dur.len() {
        return None;
    }
    let mut out = Vec::with_capacity(channels * n_frames(pred_dur));
    for (col, &n) in x.chunks_exact(channels).zip(pred_dur) {
        for _ in 0..n.max(0) {
            out.extend_from_slice(col);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_and_expansion_agree() {
        let dur = [2, 1, 3];
        let a = alignment_matrix(&dur);
        assert_eq!(
            a,
            vec![
                1., 1., 0., 0., 0., 0., //
                0., 0., 1., 0., 0., 0., //
                0., 0., 0., 1., 1., 1.,
            ]
        );
        let x = [1., 10., 2., 20., 3., 30.]; // C = 2, T = 3
        assert_eq!(
            expand(&x, 2, &dur),
            Some(vec![1., 10., 1., 10., 2., 20., 3., 30., 3., 30., 3., 30.])
        );
        assert_eq!(expand(&x, 4, &dur), None);
    }
}
