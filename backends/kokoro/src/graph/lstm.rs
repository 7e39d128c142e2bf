//! `nn.LSTM(in, 256, 1, batch_first=True, bidirectional=True)`, the one recurrent building block
//! of Kokoro (text encoder, the three DurationEncoder LSTMs, the duration LSTM, the shared LSTM).
//!
//! Reference: `torch.nn.LSTM` as used in
//! <https://github.com/hexgrad/kokoro/blob/4b647d3/kokoro/modules.py> (`TextEncoder.lstm`,
//! `DurationEncoder.lstms`, `ProsodyPredictor.lstm` / `.shared`). Gate order i, f, g, o;
//! `c' = σ(f)·c + σ(i)·tanh(g)`, `h' = σ(o)·tanh(c')`, zero initial state, the reverse direction
//! reads the sequence backwards and its outputs are stored at their original time index.
//!
//! Not unrolled (kokoro-model.md §6.4): the input projections of all steps are 4 `mul_mat`s per
//! direction in the graph; the recurrence is one custom op (a CPU loop over `t` with a
//! `1024 × 256` GEMV per step), both directions in parallel on two threads. The recurrent
//! matrices are fused per direction at load ([`Recurrent`]) because the custom op reads them on
//! the host.

use std::sync::Arc;

use tts_ggml::{Context, CustomArgs, Split, Tensor};

use super::{GraphError, KokoroWeights, Loader, Result, Weight};
use crate::weights::LstmNames;

/// Gate count (i, f, g, o).
const N_GATES: usize = 4;

/// The recurrent weights `W_hh` of both directions, fused per direction as `[4H rows][H]`
/// (row `gate·H + j` holds unit `j` of that gate), F32, on the host.
#[derive(Debug)]
pub struct Recurrent {
    hidden: usize,
    /// `[forward, reverse]`, each `4H·H` floats.
    w_hh: [Vec<f32>; 2],
}

impl Recurrent {
    /// Reads and fuses the `W_hh` of both directions (each `ne = [H, H]`, i.e. `H` rows of `H`
    /// inputs), converting F16 and quantized storage to F32: the recurrence is a host loop over
    /// F32 rows, so F16 and quantized files (TTS.cpp's -nqf/Q8_0/Q4...) are dequantized once here.
    pub fn load(ld: &Loader<'_>, names: &LstmNames) -> Result<Self> {
        let hidden = ld.hparams().lstm_hidden() as usize;
        let mut w_hh: [Vec<f32>; 2] = [Vec::new(), Vec::new()];
        for (dir, d) in names.dirs.iter().enumerate() {
            for name in &d.w_hh {
                w_hh[dir].extend(ld.host_f32(name)?);
            }
        }
        if hidden == 0 || w_hh.iter().any(|w| w.len() != N_GATES * hidden * hidden) {
            return Err(GraphError::Input(format!(
                "{}: W_hh blocks are not [H, H]",
                names.prefix
            )));
        }
        Ok(Self { hidden, w_hh })
    }

    /// Hidden size per direction (256).
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Runs one direction over precomputed input gates `[T][4H]` (bias included), writing
    /// `h_t` to `out[t·H ..]` `[T][H]`.
    fn run(&self, dir: usize, gates: &[f32], out: &mut [f32]) {
        let h_n = self.hidden;
        let w = &self.w_hh[dir];
        let n_t = out.len() / h_n;
        let mut h = vec![0f32; h_n];
        let mut c = vec![0f32; h_n];
        let mut g = vec![0f32; N_GATES * h_n];
        for step in 0..n_t {
            let t = if dir == 0 { step } else { n_t - 1 - step };
            g.copy_from_slice(&gates[t * N_GATES * h_n..(t + 1) * N_GATES * h_n]);
            for (gr, row) in g.iter_mut().zip(w.chunks_exact(h_n)) {
                *gr += row.iter().zip(&h).map(|(a, b)| a * b).sum::<f32>();
            }
            let (gi, rest) = g.split_at(h_n);
            let (gf, rest) = rest.split_at(h_n);
            let (gg, go) = rest.split_at(h_n);
            let o = &mut out[t * h_n..(t + 1) * h_n];
            for j in 0..h_n {
                c[j] = sigmoid(gf[j]) * c[j] + sigmoid(gi[j]) * gg[j].tanh();
                h[j] = sigmoid(go[j]) * c[j].tanh();
                o[j] = h[j];
            }
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The input projection of one gate: `W_ih`, `b_ih`, `b_hh`.
#[derive(Debug, Clone)]
struct GateInput {
    w_ih: Weight,
    b_ih: Weight,
    b_hh: Weight,
}

/// A bidirectional `nn.LSTM` (see the module docs): the input projections as graph weights, the
/// fused recurrent matrices for the custom op.
#[derive(Debug, Clone)]
pub struct BiLstm {
    /// `[forward, reverse]`, gates i, f, g, o.
    dirs: [[GateInput; N_GATES]; 2],
    rec: Arc<Recurrent>,
}

impl BiLstm {
    /// Resolves the LSTM under `names`.
    pub fn load(ld: &Loader<'_>, names: &LstmNames) -> Result<Self> {
        let dir = |d: usize| -> Result<[GateInput; N_GATES]> {
            let n = &names.dirs[d];
            let gate = |g: usize| -> Result<GateInput> {
                Ok(GateInput {
                    w_ih: ld.weight(&n.w_ih[g])?,
                    b_ih: ld.weight(&n.b_ih[g])?,
                    b_hh: ld.weight(&n.b_hh[g])?,
                })
            };
            Ok([gate(0)?, gate(1)?, gate(2)?, gate(3)?])
        };
        Ok(Self {
            dirs: [dir(0)?, dir(1)?],
            rec: Arc::new(Recurrent::load(ld, names)?),
        })
    }

    /// The LSTM over `x` `[In, T]`; returns `[2H, T]` (forward units 0..H, reverse units
    /// H..2H), named `name`.
    pub fn forward<'a>(
        &self,
        ctx: &'a Context,
        w: &'a KokoroWeights,
        x: Tensor<'a>,
        name: &str,
    ) -> Result<Tensor<'a>> {
        let rec = &self.rec;
        let h_n = rec.hidden() as i64;
        let n_t = x.ne()[1];
        let mut dirs = Vec::with_capacity(2);
        for dir in &self.dirs {
            let mut gates: Option<Tensor<'a>> = None;
            for g in dir {
                let mut cur = ctx.mul_mat(w.get(&g.w_ih)?, x)?; // [H, T]
                cur = ctx.add(cur, w.get(&g.b_ih)?)?;
                cur = ctx.add(cur, w.get(&g.b_hh)?)?;
                gates = Some(match gates {
                    None => cur,
                    Some(g) => ctx.concat(g, cur, 0)?, // [(gate+1)·H, T]
                });
            }
            dirs.push(gates.ok_or_else(|| GraphError::Input("no gates".into()))?);
            // [4H, T]
        }
        let gates = ctx.concat(dirs[0], dirs[1], 2)?; // [4H, T, 2]
        let gates = gates.set_name(&format!("{name}.gates"))?;
        let op_rec = Arc::clone(rec);
        let hs = ctx.custom(
            [h_n, n_t, 2, 1],
            &[gates],
            Split::Outer(2),
            move |args: CustomArgs<'_>| {
                let CustomArgs {
                    dst,
                    blocks,
                    block_len,
                    srcs,
                    ..
                } = args;
                let src = srcs[0].data;
                let per_dir = src.len() / 2;
                for (out, dir) in dst.chunks_exact_mut(block_len).zip(blocks) {
                    op_rec.run(dir, &src[dir * per_dir..(dir + 1) * per_dir], out);
                }
            },
        )?; // [H, T, 2]
        let cur = ctx.permute(hs, [0, 2, 1, 3])?; // [H, 2, T]
        let cur = ctx.cont(cur)?;
        let cur = ctx.reshape(cur, &[2 * h_n, n_t])?; // [2H, T]
        Ok(cur.set_name(name)?)
    }
}
