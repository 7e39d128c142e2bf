//! The trait a backend implements, and the sink it writes audio into.

use crate::{BackendError, BackendInfo, SynthesisRequest, VoiceInfo};

/// What the sink tells the backend after each chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// The client has gone away or the deadline has passed: stop producing audio, push nothing
    /// more, and return from [`Backend::synthesize`] (with `Ok(())`) as soon as possible.
    Stop,
}

/// Where a backend writes the audio of one request.
///
/// The sink is valid for the duration of one [`Backend::synthesize`] call and only on the thread
/// that made the call. `push` may block for a while when the client reads slowly (backpressure).
pub trait AudioSink {
    /// Hands over the next chunk: mono `f32` samples at [`BackendInfo::sample_rate`], nominally
    /// within `[-1, 1]`. Chunks of any size are fine; push as soon as audio exists so that the
    /// first audio reaches the client quickly.
    fn push(&mut self, samples: &[f32]) -> Flow;

    /// Whether the request has been cancelled (client gone, deadline passed). Long computations
    /// should check this between steps, since they may not push for a while.
    fn is_cancelled(&self) -> bool;
}

/// A speech engine. Implement this, then export it with [`export_backend!`](crate::export_backend).
///
/// # Threads and call order
///
/// * The host constructs each instance on the worker thread that will own it, then calls
///   [`info`](Backend::info) and [`voices`](Backend::voices) once (the host caches both).
/// * With `--n-parallelism N` the host constructs N instances in one process, each on its own
///   thread; they run [`synthesize`](Backend::synthesize) at the same time. Share read-only data
///   (weights) between instances through statics or `Arc`s; keep per-request state per call.
/// * One instance never runs two `synthesize` calls at once, but the trait requires `Send + Sync`
///   so that the host may move and share the handle freely.
/// * An instance is dropped on its worker thread when the host shuts down.
///
/// # Errors and panics
///
/// Return a [`BackendError`] whose kind says what happened; its message goes to the client.
/// A panic is caught by the export macro and reported as [`ErrorKind::Panicked`](crate::ErrorKind::Panicked)
/// for that request; the instance stays in service, so a panic must not leave it broken.
/// Never abort the process (no `panic = "abort"`, no C `abort()` reachable from input).
///
/// # Cancellation
///
/// When [`AudioSink::push`] answers [`Flow::Stop`] or [`AudioSink::is_cancelled`] turns true,
/// stop work and return `Ok(())`. The host drops whatever arrives after that.
pub trait Backend: Send + Sync {
    /// Name, version, sample rate and languages.
    fn info(&self) -> BackendInfo;

    /// Every voice this instance can speak with.
    fn voices(&self) -> Vec<VoiceInfo>;

    /// Speaks `request.text`, pushing audio into `sink` as it is produced.
    ///
    /// Must return [`ErrorKind::UnknownVoice`](crate::ErrorKind::UnknownVoice) for a voice it does
    /// not know and [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for text with
    /// nothing to speak, before pushing any audio.
    fn synthesize(&self, request: &SynthesisRequest, sink: &mut dyn AudioSink) -> Result<(), BackendError>;
}

/// A sink that collects everything in memory; handy in tests.
#[derive(Debug, Default, Clone)]
pub struct VecSink {
    /// Every chunk pushed so far, in order.
    pub chunks: Vec<Vec<f32>>,
    /// Answer [`Flow::Stop`] once this many chunks have arrived.
    pub stop_after: Option<usize>,
}

impl VecSink {
    /// An empty sink that never stops.
    pub fn new() -> Self {
        Self::default()
    }

    /// All samples, concatenated.
    pub fn samples(&self) -> Vec<f32> {
        self.chunks.concat()
    }
}

impl AudioSink for VecSink {
    fn push(&mut self, samples: &[f32]) -> Flow {
        self.chunks.push(samples.to_vec());
        match self.stop_after {
            Some(n) if self.chunks.len() >= n => Flow::Stop,
            _ => Flow::Continue,
        }
    }

    fn is_cancelled(&self) -> bool {
        matches!(self.stop_after, Some(n) if self.chunks.len() >= n)
    }
}
