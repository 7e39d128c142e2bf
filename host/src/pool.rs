//! Backend instances on worker threads, fed from one bounded queue.
//!
//! Each instance lives on its own OS thread (plugin code never runs on the async runtime). The
//! HTTP side takes a permit from a semaphore sized `n_parallelism + queue_size` before queueing a
//! job; no permit means the queue is full (429). A job carries its own output channel, a
//! cancellation flag and a deadline; the worker's sink encodes audio as it arrives and stops the
//! backend once the client is gone or the deadline has passed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tts_backend_api::load::Plugin;
use tts_backend_api::{
    AudioSink, Backend, BackendConfig, BackendError, BackendInfo, ErrorKind, Flow, SynthesisRequest,
    VoiceInfo,
};

use crate::audio::{new_encoder, AudioFormat, StreamEncoder};

/// Makes backend instances; a loaded plugin in production, an in-process backend in tests.
pub trait BackendFactory: Send + Sync + 'static {
    /// Creates one instance with `config` (its `instance` field already set).
    fn create(&self, config: &BackendConfig) -> Result<Box<dyn Backend>, BackendError>;
}

impl BackendFactory for Plugin {
    fn create(&self, config: &BackendConfig) -> Result<Box<dyn Backend>, BackendError> {
        self.instantiate(config).map(|b| Box::new(b) as Box<dyn Backend>)
    }
}

/// What a job sends back, in order: audio bytes, then `Done` or `Failed`.
#[derive(Debug)]
pub enum Event {
    /// Encoded bytes, ready to send.
    Audio(Bytes),
    /// Synthesis finished; the encoder is flushed.
    Done {
        /// Samples produced, at the backend's rate.
        samples: u64,
    },
    /// Synthesis failed (possibly after some audio).
    Failed(JobError),
}

/// Why a job failed.
#[derive(Debug, Clone)]
pub enum JobError {
    /// The backend reported an error.
    Backend(BackendError),
    /// The deadline passed.
    Timeout,
    /// The encoder failed.
    Encode(String),
}

/// A cancellation flag shared by the HTTP side and the worker.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Asks the work to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Cancels on drop: held by the HTTP side, so a client that goes away cancels its work.
#[derive(Debug)]
pub struct CancelOnDrop(pub Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// One request for a worker.
#[derive(Debug)]
pub struct Job {
    /// What to synthesize.
    pub request: SynthesisRequest,
    /// How to encode it.
    pub format: AudioFormat,
    /// Where the bytes go.
    pub events: mpsc::Sender<Event>,
    /// Set when the client is gone.
    pub cancel: Cancel,
    /// When the request times out.
    pub deadline: Instant,
    /// The request's span, so worker logs carry its id.
    pub span: tracing::Span,
    /// Released when the job is finished; bounds queue plus running jobs.
    pub permit: OwnedSemaphorePermit,
}

/// What the backend said about itself, read from the first instance.
#[derive(Debug, Clone)]
pub struct BackendMeta {
    /// Name, version, rate, languages.
    pub info: BackendInfo,
    /// The voices.
    pub voices: Vec<VoiceInfo>,
}

/// The state of the instances.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// Instances are still being constructed.
    Loading,
    /// Every instance is up.
    Ready(Arc<BackendMeta>),
}

/// The worker pool.
#[derive(Debug)]
pub struct Pool {
    jobs: crossbeam_channel::Sender<Job>,
    permits: Arc<Semaphore>,
    meta: OnceLock<Arc<BackendMeta>>,
    busy: AtomicUsize,
    n_instances: usize,
}

/// The queue is full.
#[derive(Debug, Clone, Copy)]
pub struct QueueFull;

impl Pool {
    /// Starts `n` worker threads, each constructing one instance. Returns the pool and a receiver
    /// that yields once every instance is up, or the first construction error.
    pub fn start(
        factory: Arc<dyn BackendFactory>,
        config: &BackendConfig,
        n: usize,
        queue_size: usize,
    ) -> (
        Arc<Self>,
        tokio::sync::oneshot::Receiver<Result<(), BackendError>>,
    ) {
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        let pool = Arc::new(Self {
            jobs,
            permits: Arc::new(Semaphore::new(n + queue_size)),
            meta: OnceLock::new(),
            busy: AtomicUsize::new(0),
            n_instances: n,
        });
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (up_tx, up_rx) = std::sync::mpsc::channel::<Result<BackendMeta, BackendError>>();
        for instance in 0..n {
            let factory = Arc::clone(&factory);
            let config = BackendConfig {
                instance,
                ..config.clone()
            };
            let rx = rx.clone();
            let up = up_tx.clone();
            let pool = Arc::clone(&pool);
            let spawned = std::thread::Builder::new()
                .name(format!("backend-{instance}"))
                .spawn(move || worker(instance, &*factory, &config, &rx, &up, &pool));
            if let Err(e) = spawned {
                let _ = up_tx.send(Err(BackendError::internal(format!(
                    "cannot start a worker thread: {e}"
                ))));
            }
        }
        drop(up_tx);
        let waiter = Arc::clone(&pool);
        std::thread::spawn(move || {
            let mut first = None;
            let mut result = Ok(());
            for _ in 0..n {
                match up_rx.recv() {
                    Ok(Ok(meta)) => {
                        first.get_or_insert(meta);
                    }
                    Ok(Err(e)) => {
                        result = Err(e);
                        break;
                    }
                    Err(_) => {
                        result = Err(BackendError::internal("a worker thread ended during start-up"));
                        break;
                    }
                }
            }
            // Ready only when every instance is up; until then the routes answer 503.
            if result.is_ok() {
                match first {
                    Some(meta) => {
                        let _ = waiter.meta.set(Arc::new(meta));
                    }
                    None => result = Err(BackendError::internal("no backend instance started")),
                }
            }
            let _ = ready_tx.send(result);
        });
        (pool, ready_rx)
    }

    /// Whether every instance is up.
    pub fn readiness(&self) -> Readiness {
        match self.meta.get() {
            Some(meta) => Readiness::Ready(Arc::clone(meta)),
            None => Readiness::Loading,
        }
    }

    /// Takes a queue slot, or fails when `n_parallelism + queue_size` jobs are already in.
    pub fn try_reserve(&self) -> Result<OwnedSemaphorePermit, QueueFull> {
        Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|e: TryAcquireError| {
                tracing::debug!(%e, "queue full");
                QueueFull
            })
    }

    /// Queues a job (its permit was taken with [`Pool::try_reserve`]).
    pub fn submit(&self, job: Job) -> Result<(), BackendError> {
        self.jobs
            .send(job)
            .map_err(|_| BackendError::unavailable("the server is shutting down"))
    }

    /// Instances currently synthesizing.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Number of instances.
    pub fn instances(&self) -> usize {
        self.n_instances
    }

    /// Jobs waiting or running.
    pub fn in_flight(&self, queue_capacity: usize) -> usize {
        (self.n_instances + queue_capacity).saturating_sub(self.permits.available_permits())
    }
}

fn worker(
    instance: usize,
    factory: &dyn BackendFactory,
    config: &BackendConfig,
    jobs: &crossbeam_channel::Receiver<Job>,
    up: &std::sync::mpsc::Sender<Result<BackendMeta, BackendError>>,
    pool: &Pool,
) {
    let created = catch_unwind(AssertUnwindSafe(|| factory.create(config))).unwrap_or_else(|p| {
        Err(BackendError::new(
            ErrorKind::Panicked,
            format!("the backend panicked while starting: {}", panic_text(&*p)),
        ))
    });
    let backend = match created {
        Ok(b) => b,
        Err(e) => {
            let _ = up.send(Err(e));
            return;
        }
    };
    let meta = BackendMeta {
        info: backend.info(),
        voices: backend.voices(),
    };
    tracing::info!(instance, backend = %meta.info.name, voices = meta.voices.len(), "backend instance ready");
    let sample_rate = meta.info.sample_rate;
    if up.send(Ok(meta)).is_err() {
        return;
    }
    while let Ok(job) = jobs.recv() {
        pool.busy.fetch_add(1, Ordering::Relaxed);
        let span = job.span.clone();
        span.in_scope(|| run_job(&*backend, sample_rate, job));
        pool.busy.fetch_sub(1, Ordering::Relaxed);
    }
    tracing::debug!(instance, "backend instance shutting down");
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

fn run_job(backend: &dyn Backend, sample_rate: u32, job: Job) {
    let started = Instant::now();
    if job.cancel.is_cancelled() || job.events.is_closed() {
        tracing::debug!("request cancelled while queued");
        return;
    }
    if started >= job.deadline {
        let _ = job.events.try_send(Event::Failed(JobError::Timeout));
        return;
    }
    let encoder = match new_encoder(job.format, sample_rate) {
        Ok(e) => e,
        Err(e) => {
            let _ = job
                .events
                .try_send(Event::Failed(JobError::Encode(e.to_string())));
            return;
        }
    };
    let mut sink = JobSink {
        job: &job,
        encoder,
        samples: 0,
        scratch: Vec::new(),
        encode_error: None,
    };
    let result = catch_unwind(AssertUnwindSafe(|| backend.synthesize(&job.request, &mut sink)))
        .unwrap_or_else(|p| {
            Err(BackendError::new(
                ErrorKind::Panicked,
                format!("the backend panicked: {}", panic_text(&*p)),
            ))
        });
    let samples = sink.samples;
    let outcome = match (result, sink.encode_error.take()) {
        (_, Some(e)) => Err(JobError::Encode(e)),
        (Err(e), None) => Err(JobError::Backend(e)),
        (Ok(()), None) if job.cancel.is_cancelled() || job.events.is_closed() => {
            tracing::info!(
                samples,
                elapsed_ms = started.elapsed().as_millis(),
                "request cancelled"
            );
            return;
        }
        (Ok(()), None) if Instant::now() >= job.deadline => Err(JobError::Timeout),
        (Ok(()), None) => match sink.encoder.finish() {
            Ok(tail) => {
                if !tail.is_empty() {
                    sink.send(Event::Audio(Bytes::from(tail)));
                }
                Ok(())
            }
            Err(e) => Err(JobError::Encode(e.to_string())),
        },
    };
    match outcome {
        Ok(()) => {
            let seconds = samples as f64 / f64::from(sample_rate);
            let elapsed = started.elapsed().as_secs_f64();
            tracing::info!(
                samples,
                audio_seconds = format!("{seconds:.2}"),
                rtf = format!("{:.3}", if seconds > 0.0 { elapsed / seconds } else { 0.0 }),
                "request done"
            );
            sink.send(Event::Done { samples });
        }
        Err(e) => {
            tracing::warn!(error = ?e, "request failed");
            sink.send(Event::Failed(e));
        }
    }
}

/// The sink a backend writes into: sanitises, encodes and forwards with backpressure.
struct JobSink<'a> {
    job: &'a Job,
    encoder: Box<dyn StreamEncoder>,
    samples: u64,
    scratch: Vec<f32>,
    encode_error: Option<String>,
}

impl JobSink<'_> {
    /// Sends an event, waiting while the client reads slowly; gives up when cancelled.
    fn send(&self, mut event: Event) -> Flow {
        loop {
            match self.job.events.try_send(event) {
                Ok(()) => return Flow::Continue,
                Err(TrySendError::Closed(_)) => return Flow::Stop,
                Err(TrySendError::Full(back)) => {
                    if self.is_cancelled() {
                        return Flow::Stop;
                    }
                    event = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
}

impl AudioSink for JobSink<'_> {
    fn push(&mut self, samples: &[f32]) -> Flow {
        if self.is_cancelled() || self.encode_error.is_some() {
            return Flow::Stop;
        }
        self.scratch.clear();
        // Backends are untrusted: NaN becomes silence, everything else is clipped.
        self.scratch.extend(
            samples
                .iter()
                .map(|&s| if s.is_nan() { 0.0 } else { s.clamp(-1.0, 1.0) }),
        );
        self.samples += samples.len() as u64;
        match self.encoder.push(&self.scratch) {
            Ok(bytes) if bytes.is_empty() => Flow::Continue,
            Ok(bytes) => self.send(Event::Audio(Bytes::from(bytes))),
            Err(e) => {
                self.encode_error = Some(e.to_string());
                Flow::Stop
            }
        }
    }

    fn is_cancelled(&self) -> bool {
        self.job.cancel.is_cancelled() || self.job.events.is_closed() || Instant::now() >= self.job.deadline
    }
}
