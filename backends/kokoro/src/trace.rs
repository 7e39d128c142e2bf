//! Capturing the golden arrays during a synthesis: [`KokoroRunner::synthesize_traced`] and
//! the [`Trace`] that says what to capture (`tts-kokoro synthesize --dump`, the end-to-end golden
//! test).
//!
//! The names are those of the golden `.npz` files (`shared/docs/golden-reference.md` §3). Graph
//! tensors are captured by name after the compute (the graph marks them as outputs), host-side
//! arrays when they are made; an empty trace costs nothing, which is how the production path
//! ([`KokoroRunner::synthesize`]) runs.

use crate::graph::{GraphError, Result};
use crate::runner::{KokoroRunner, Synthesis};

impl KokoroRunner {
    /// [`KokoroRunner::synthesize`], capturing the intermediates `trace` asks for (the golden
    /// arrays' names, [`TRACE_NAMES`]) and honouring its abort check ([`Trace::with_abort`]).
    pub fn synthesize_traced(
        &self,
        ids: &[i32],
        ref_s: &[f32],
        speed: f32,
        trace: &mut Trace,
    ) -> Result<Synthesis> {
        self.synthesize_with(ids, ref_s, speed, trace)
    }
}

/// Every name [`KokoroRunner::synthesize_traced`] can capture: the arrays of the golden `.npz`
/// files (`shared/docs/golden-reference.md` §3), in pipeline order.
pub const TRACE_NAMES: &[&str] = &[
    "input_ids",
    "ref_s",
    "speed",
    "style_predictor_s",
    "style_decoder_s",
    "bert_last_hidden_state",
    "bert_encoder_out",
    "duration_sigmoid",
    "duration_float",
    "pred_dur",
    "pred_aln_trg",
    "en",
    "F0_pred",
    "N_pred",
    "t_en",
    "asr",
    "decoder_encode_in",
    "generator_in",
    "har_source",
    "har_spec_phase",
    "conv_post_out",
    "audio",
];

/// Values of a captured array.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceData {
    /// Float arrays.
    F32(Vec<f32>),
    /// Integer arrays (`input_ids`, `pred_dur`).
    I64(Vec<i64>),
}

/// One captured array, in numpy (C) order with the golden array's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TracedArray {
    /// numpy shape (last axis fastest).
    pub shape: Vec<usize>,
    /// The values.
    pub data: TraceData,
}

/// Which intermediates to capture during [`KokoroRunner::synthesize_traced`], and what was
/// captured; also an optional abort check ([`Trace::with_abort`]). The default captures nothing
/// and costs nothing.
#[derive(Default, Clone)]
pub struct Trace<'a> {
    wanted: std::collections::BTreeSet<String>,
    arrays: std::collections::BTreeMap<String, TracedArray>,
    abort: Option<&'a dyn Fn() -> bool>,
}

impl std::fmt::Debug for Trace<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("wanted", &self.wanted)
            .field("arrays", &self.arrays.keys().collect::<Vec<_>>())
            .field("abort", &self.abort.is_some())
            .finish()
    }
}

impl<'a> Trace<'a> {
    /// Stops every graph of the synthesis within one ggml node of `abort` returning true (it is
    /// asked between nodes, on the calling thread); the synthesis then fails with
    /// [`GraphError::Aborted`].
    #[must_use]
    pub fn with_abort(mut self, abort: &'a dyn Fn() -> bool) -> Self {
        self.abort = Some(abort);
        self
    }

    pub(crate) fn aborted(&self) -> bool {
        self.abort.is_some_and(|f| f())
    }

    /// The abort check, if any.
    pub(crate) fn abort(&self) -> Option<&'a dyn Fn() -> bool> {
        self.abort
    }

    /// Captures `names` (each one of [`TRACE_NAMES`]); an unknown name is an error.
    pub fn new<S: AsRef<str>>(names: &[S]) -> Result<Self> {
        let mut wanted = std::collections::BTreeSet::new();
        for n in names {
            let n = n.as_ref();
            if !TRACE_NAMES.contains(&n) {
                return Err(GraphError::Input(format!(
                    "unknown intermediate {n:?}; known: {}",
                    TRACE_NAMES.join(", ")
                )));
            }
            wanted.insert(n.to_owned());
        }
        Ok(Self {
            wanted,
            arrays: Default::default(),
            abort: None,
        })
    }

    /// Captures every name of [`TRACE_NAMES`].
    pub fn all() -> Self {
        Self {
            wanted: TRACE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            arrays: Default::default(),
            abort: None,
        }
    }

    pub(crate) fn is_active(&self) -> bool {
        !self.wanted.is_empty()
    }

    pub(crate) fn wants(&self, name: &str) -> bool {
        self.wanted.contains(name)
    }

    /// The captured arrays by name.
    pub fn arrays(&self) -> &std::collections::BTreeMap<String, TracedArray> {
        &self.arrays
    }

    pub(crate) fn record_f32(&mut self, name: &str, shape: Vec<usize>, data: Vec<f32>) {
        if self.wants(name) {
            let data = TraceData::F32(data);
            self.arrays.insert(name.to_owned(), TracedArray { shape, data });
        }
    }

    pub(crate) fn record_i64(&mut self, name: &str, shape: Vec<usize>, data: Vec<i64>) {
        if self.wants(name) {
            let data = TraceData::I64(data);
            self.arrays.insert(name.to_owned(), TracedArray { shape, data });
        }
    }

    /// Records a graph tensor `ne` in the golden array's layout: the channel-major text-side
    /// tensors (`ne = [C, T]`) that the goldens store as `[1, C, T]` are transposed; the
    /// time-major ones (`ne = [T, C]`) already have the golden's memory order.
    pub(crate) fn record_tensor(&mut self, name: &str, ne: [i64; 4], data: Vec<f32>) {
        let (n0, n1) = (ne[0].max(0) as usize, ne[1].max(0) as usize);
        match name {
            "en" | "asr" | "t_en" => {
                let mut out = vec![0f32; data.len()];
                for (t, col) in data.chunks_exact(n0.max(1)).enumerate() {
                    for (c, &v) in col.iter().enumerate() {
                        out[c * n1 + t] = v;
                    }
                }
                self.record_f32(name, vec![1, n0, n1], out);
            }
            "duration_float" => self.record_f32(name, vec![1, n0 * n1], data),
            "F0_pred" | "N_pred" => self.record_f32(name, vec![1, n0 * n1], data),
            _ => self.record_f32(name, vec![1, n1, n0], data),
        }
    }
}
