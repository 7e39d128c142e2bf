//! Backend instances on worker threads, fed from one bounded queue, watched by a supervisor.
//!
//! Each instance lives on its own OS thread (plugin code never runs on the async runtime). The
//! HTTP side takes a permit from a semaphore sized `n_parallelism + queue_size` before queueing a
//! job; no permit means the queue is full (429). A job carries its own output channel, a
//! cancellation flag and a deadline; the worker's sink encodes audio as it arrives and stops the
//! backend once the client is gone or the deadline has passed.
//!
//! A backend that ignores its deadline by more than the stall grace is *written off* by the
//! supervisor thread: its permit is released, it stops counting as an instance, and a fresh
//! instance (a new `factory.create` on a new thread) takes its place, up to `max_written_off`
//! replacements. The stuck thread, if it ever returns, drops its backend and exits without taking
//! another job. Past the bound the pool is degraded (`/health` answers 503).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tts_backend_api::load::Plugin;
use tts_backend_api::{
    AudioSink, Backend, BackendConfig, BackendError, BackendInfo, ErrorKind, Flow, SynthesisRequest,
    VoiceInfo,
};

use crate::audio::{new_encoder, AudioFormat, EncodeError, StreamEncoder};
use crate::sanitize::log_text;

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

/// Makes the encoder of one job ([`new_encoder`] in production; tests may swap it).
pub type EncoderFactory = fn(AudioFormat, u32) -> Result<Box<dyn StreamEncoder>, EncodeError>;

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
    /// The encoder failed (or panicked).
    Encode(String),
    /// Host code on the worker panicked outside the encoder.
    Host(String),
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
    /// Released when the job is finished (or its instance written off); bounds queue plus
    /// running jobs.
    pub permit: OwnedSemaphorePermit,
}

/// A job without its permit, as the worker runs it.
struct Work {
    request: SynthesisRequest,
    format: AudioFormat,
    events: mpsc::Sender<Event>,
    cancel: Cancel,
    deadline: Instant,
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

/// How the pool runs.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Instances (`--n-parallelism`).
    pub n_parallelism: usize,
    /// Jobs that may wait for an instance (`--queue-size`).
    pub queue_size: usize,
    /// How long past its deadline a job may run before its instance is written off.
    pub stall_grace: Duration,
    /// Written-off instances that are replaced; past this the pool is degraded.
    pub max_written_off: usize,
    /// Makes each job's encoder.
    pub encoder: EncoderFactory,
}

impl PoolOptions {
    /// `n` instances, `queue_size` waiting jobs, the CLI's defaults for the rest.
    pub fn new(n_parallelism: usize, queue_size: usize) -> Self {
        Self {
            n_parallelism,
            queue_size,
            stall_grace: Duration::from_secs(10),
            max_written_off: 4 * n_parallelism,
            encoder: new_encoder,
        }
    }
}

/// What one instance is doing, as `/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Its backend is being constructed.
    Starting,
    /// Waiting for a job.
    Idle,
    /// Running a job.
    Busy,
    /// Ignored a deadline; replaced, its thread still inside the backend.
    WrittenOff,
    /// Written off, and its thread has since returned and exited.
    Retired,
    /// Construction failed (a replacement that could not start).
    Failed,
    /// The pool shut down.
    Stopped,
}

impl Phase {
    /// The name `/health` uses.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Idle => "idle",
            Phase::Busy => "busy",
            Phase::WrittenOff => "written_off",
            Phase::Retired => "retired",
            Phase::Failed => "failed",
            Phase::Stopped => "stopped",
        }
    }
}

/// One instance's row in `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    /// The instance number (replacements get new numbers).
    pub instance: usize,
    /// What it is doing.
    pub phase: Phase,
    /// Jobs it has run.
    pub jobs: u64,
}

#[derive(Debug)]
struct Slot {
    instance: usize,
    state: Mutex<SlotState>,
}

#[derive(Debug)]
struct SlotState {
    phase: Phase,
    jobs: u64,
    /// Deadline of the running job and its permit (taken by a write-off).
    running: Option<(Instant, Option<OwnedSemaphorePermit>)>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // A panic while holding this lock cannot leave the state inconsistent (plain fields).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An instance and its thread (taken by [`Pool::shutdown`]).
type SlotEntry = (Arc<Slot>, Option<JoinHandle<()>>);

type StartReply = std::sync::mpsc::Sender<Result<BackendMeta, BackendError>>;

/// The worker pool.
#[derive(Debug)]
pub struct Pool {
    jobs: Mutex<Option<crossbeam_channel::Sender<Job>>>,
    queue: crossbeam_channel::Receiver<Job>,
    permits: Arc<Semaphore>,
    capacity: usize,
    meta: OnceLock<Arc<BackendMeta>>,
    busy: AtomicUsize,
    written_off: AtomicUsize,
    replacement_failed: AtomicBool,
    closing: AtomicBool,
    next_instance: AtomicUsize,
    slots: Mutex<Vec<SlotEntry>>,
    factory: Arc<dyn BackendFactoryDebug>,
    config: BackendConfig,
    options: PoolOptions,
}

/// `BackendFactory` with a `Debug` the pool can print.
trait BackendFactoryDebug: BackendFactory {}
impl<T: BackendFactory + ?Sized> BackendFactoryDebug for T {}

impl std::fmt::Debug for dyn BackendFactoryDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackendFactory")
    }
}

/// The queue is full.
#[derive(Debug, Clone, Copy)]
pub struct QueueFull;

/// What [`Pool::shutdown`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Worker threads that ended within the bound.
    pub joined: usize,
    /// Worker threads still running at the bound (not written off).
    pub abandoned: usize,
    /// Written-off threads, not waited for.
    pub written_off: usize,
}

impl Pool {
    /// Starts `options.n_parallelism` worker threads, each constructing one instance, and the
    /// supervisor. Returns the pool and a receiver that yields once every instance is up, or the
    /// first construction error.
    pub fn start(
        factory: Arc<dyn BackendFactory>,
        config: &BackendConfig,
        options: PoolOptions,
    ) -> (
        Arc<Self>,
        tokio::sync::oneshot::Receiver<Result<(), BackendError>>,
    ) {
        let n = options.n_parallelism;
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let capacity = n + options.queue_size;
        let factory: Arc<dyn BackendFactoryDebug> = Arc::new(FactoryRef(factory));
        let pool = Arc::new(Self {
            jobs: Mutex::new(Some(jobs)),
            queue,
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            meta: OnceLock::new(),
            busy: AtomicUsize::new(0),
            written_off: AtomicUsize::new(0),
            replacement_failed: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            next_instance: AtomicUsize::new(0),
            slots: Mutex::new(Vec::new()),
            factory,
            config: config.clone(),
            options,
        });
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (up_tx, up_rx) = std::sync::mpsc::channel::<Result<BackendMeta, BackendError>>();
        for _ in 0..n {
            if let Err(e) = pool.spawn_instance(Some(up_tx.clone())) {
                let _ = up_tx.send(Err(e));
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
        let supervised = Arc::downgrade(&pool);
        let tick =
            (pool.options.stall_grace / 10).clamp(Duration::from_millis(10), Duration::from_millis(250));
        let spawned = std::thread::Builder::new()
            .name("backend-supervisor".into())
            .spawn(move || supervise(&supervised, tick));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the backend supervisor; stalled instances will not be replaced");
        }
        (pool, ready_rx)
    }

    fn lock_slots(&self) -> MutexGuard<'_, Vec<SlotEntry>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts one instance on a new thread; `up` is told when it is up (start-up only).
    fn spawn_instance(self: &Arc<Self>, up: Option<StartReply>) -> Result<(), BackendError> {
        let instance = self.next_instance.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            instance,
            state: Mutex::new(SlotState {
                phase: Phase::Starting,
                jobs: 0,
                running: None,
            }),
        });
        let config = BackendConfig {
            instance,
            ..self.config.clone()
        };
        let pool = Arc::clone(self);
        let thread_slot = Arc::clone(&slot);
        let handle = std::thread::Builder::new()
            .name(format!("backend-{instance}"))
            .spawn(move || worker(&pool, &thread_slot, &config, up))
            .map_err(|e| BackendError::internal(format!("cannot start a worker thread: {e}")))?;
        self.lock_slots().push((slot, Some(handle)));
        Ok(())
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
        let jobs = self
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match jobs.as_ref() {
            Some(tx) => tx
                .send(job)
                .map_err(|_| BackendError::unavailable("the server is shutting down")),
            None => Err(BackendError::unavailable("the server is shutting down")),
        }
    }

    /// Instances currently synthesizing.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Instances that are up and serving (idle or busy).
    pub fn instances(&self) -> usize {
        self.lock_slots()
            .iter()
            .filter(|(s, _)| matches!(s.lock().phase, Phase::Idle | Phase::Busy))
            .count()
    }

    /// Jobs waiting or running (written-off jobs no longer count).
    pub fn in_flight(&self) -> usize {
        self.capacity.saturating_sub(self.permits.available_permits())
    }

    /// Instances written off so far.
    pub fn written_off(&self) -> usize {
        self.written_off.load(Ordering::Relaxed)
    }

    /// The bound on replaced write-offs.
    pub fn max_written_off(&self) -> usize {
        self.options.max_written_off
    }

    /// Whether capacity was lost for good: a write-off past the bound, or a replacement that
    /// failed to start.
    pub fn degraded(&self) -> bool {
        self.written_off() > self.options.max_written_off || self.replacement_failed.load(Ordering::Relaxed)
    }

    /// Every instance ever started, in order, with what it is doing.
    pub fn instance_status(&self) -> Vec<InstanceStatus> {
        self.lock_slots()
            .iter()
            .map(|(s, _)| {
                let st = s.lock();
                InstanceStatus {
                    instance: s.instance,
                    phase: st.phase,
                    jobs: st.jobs,
                }
            })
            .collect()
    }

    /// Stops taking jobs, lets the workers finish what is queued (jobs whose clients are gone
    /// are skipped), and waits up to `wait` for their threads. Written-off threads are not
    /// waited for.
    pub fn shutdown(&self, wait: Duration) -> ShutdownReport {
        self.closing.store(true, Ordering::Release);
        drop(
            self.jobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        let mut handles = Vec::new();
        let mut written_off = 0;
        for (slot, handle) in self.lock_slots().iter_mut() {
            if matches!(slot.lock().phase, Phase::WrittenOff) {
                written_off += 1;
                continue;
            }
            if let Some(h) = handle.take() {
                handles.push(h);
            }
        }
        let deadline = Instant::now() + wait;
        while handles.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (done, running): (Vec<_>, Vec<_>) = handles.into_iter().partition(JoinHandle::is_finished);
        let joined = done.len();
        for h in done {
            let _ = h.join();
        }
        ShutdownReport {
            joined,
            abandoned: running.len(),
            written_off,
        }
    }
}

/// Wraps the caller's factory so the pool can hold it as a `Debug` trait object.
struct FactoryRef(Arc<dyn BackendFactory>);

impl BackendFactory for FactoryRef {
    fn create(&self, config: &BackendConfig) -> Result<Box<dyn Backend>, BackendError> {
        self.0.create(config)
    }
}

/// The supervisor: writes off instances whose job ran past its deadline plus the grace.
fn supervise(pool: &std::sync::Weak<Pool>, tick: Duration) {
    loop {
        std::thread::sleep(tick);
        let Some(pool) = pool.upgrade() else { return };
        if pool.closing.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let grace = pool.options.stall_grace;
        let slots: Vec<Arc<Slot>> = pool.lock_slots().iter().map(|(s, _)| Arc::clone(s)).collect();
        for slot in slots {
            let permit = {
                let mut st = slot.lock();
                match st.running {
                    Some((deadline, _)) if st.phase == Phase::Busy && now > deadline + grace => {
                        st.phase = Phase::WrittenOff;
                        st.running.take().and_then(|(_, p)| p)
                    }
                    _ => continue,
                }
            };
            drop(permit);
            pool.busy.fetch_sub(1, Ordering::Relaxed);
            let count = pool.written_off.fetch_add(1, Ordering::Relaxed) + 1;
            let bound = pool.options.max_written_off;
            tracing::error!(
                instance = slot.instance,
                grace_ms = grace.as_millis(),
                written_off = count,
                "backend instance ignored its deadline by more than the stall grace; written off"
            );
            if count > bound {
                tracing::error!(
                    written_off = count,
                    max_written_off = bound,
                    "no replacement: more instances written off than --max-written-off allows; the server is degraded"
                );
                continue;
            }
            match pool.spawn_instance(None) {
                Ok(()) => tracing::warn!(
                    replaces = slot.instance,
                    "starting a replacement backend instance"
                ),
                Err(e) => {
                    pool.replacement_failed.store(true, Ordering::Relaxed);
                    tracing::error!(error = %log_text(&e.message), "cannot start a replacement instance");
                }
            }
        }
    }
}

fn worker(pool: &Pool, slot: &Slot, config: &BackendConfig, up: Option<StartReply>) {
    let instance = slot.instance;
    let created = catch_unwind(AssertUnwindSafe(|| pool.factory.create(config))).unwrap_or_else(|p| {
        Err(BackendError::new(
            ErrorKind::Panicked,
            format!("the backend panicked while starting: {}", panic_text(&*p)),
        ))
    });
    let backend = match created {
        Ok(b) => b,
        Err(e) => {
            slot.lock().phase = Phase::Failed;
            match up {
                Some(up) => {
                    let _ = up.send(Err(e));
                }
                None => {
                    pool.replacement_failed.store(true, Ordering::Relaxed);
                    tracing::error!(instance, error = %log_text(&e.message), "a replacement backend instance failed to start; the server is degraded");
                }
            }
            return;
        }
    };
    let info = catch_unwind(AssertUnwindSafe(|| (backend.info(), backend.voices())));
    let Ok((info, voices)) = info else {
        slot.lock().phase = Phase::Failed;
        let e = BackendError::new(ErrorKind::Panicked, "the backend panicked describing itself");
        match up {
            Some(up) => {
                let _ = up.send(Err(e));
            }
            None => pool.replacement_failed.store(true, Ordering::Relaxed),
        }
        return;
    };
    let meta = BackendMeta { info, voices };
    tracing::info!(instance, backend = %log_text(&meta.info.name), voices = meta.voices.len(), "backend instance ready");
    let sample_rate = meta.info.sample_rate;
    slot.lock().phase = Phase::Idle;
    if let Some(up) = up {
        if up.send(Ok(meta)).is_err() {
            return;
        }
    }
    while let Ok(job) = pool.queue.recv() {
        let Job {
            request,
            format,
            events,
            cancel,
            deadline,
            span,
            permit,
        } = job;
        let entered = span.enter();
        if cancel.is_cancelled() || events.is_closed() {
            tracing::info!("request cancelled while queued; not run");
            continue;
        }
        {
            let mut st = slot.lock();
            st.phase = Phase::Busy;
            st.jobs += 1;
            st.running = Some((deadline, Some(permit)));
        }
        pool.busy.fetch_add(1, Ordering::Relaxed);
        let work = Work {
            request,
            format,
            events,
            cancel,
            deadline,
        };
        let ran = catch_unwind(AssertUnwindSafe(|| {
            run_job(&*backend, sample_rate, &work, pool.options.encoder);
        }));
        if let Err(p) = ran {
            let text = panic_text(&*p);
            tracing::error!(panic = %log_text(&text), "host code panicked on the worker; the request fails, the worker goes on");
            let _ = work.events.try_send(Event::Failed(JobError::Host(format!(
                "the server failed on this request: {text}"
            ))));
        }
        let finished = {
            let mut st = slot.lock();
            if st.phase == Phase::WrittenOff {
                st.phase = Phase::Retired;
                None
            } else {
                st.phase = Phase::Idle;
                Some(st.running.take())
            }
        };
        match finished {
            // Written off while it ran: the supervisor released its permit and a replacement
            // took its place. Drop the backend and end the thread.
            None => {
                drop(entered);
                tracing::warn!(
                    instance,
                    "a written-off backend instance returned; dropping it, its thread ends"
                );
                drop(catch_unwind(AssertUnwindSafe(move || drop(backend))));
                return;
            }
            Some(running) => {
                drop(running);
                pool.busy.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    slot.lock().phase = Phase::Stopped;
    tracing::debug!(instance, "backend instance shutting down");
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

fn run_job(backend: &dyn Backend, sample_rate: u32, job: &Work, encoder: EncoderFactory) {
    let started = Instant::now();
    if started >= job.deadline {
        let _ = job.events.try_send(Event::Failed(JobError::Timeout));
        return;
    }
    let encoder = match catch_unwind(AssertUnwindSafe(|| encoder(job.format, sample_rate))) {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => {
            let _ = job
                .events
                .try_send(Event::Failed(JobError::Encode(e.to_string())));
            return;
        }
        Err(p) => {
            let _ = job.events.try_send(Event::Failed(JobError::Encode(format!(
                "the encoder panicked: {}",
                panic_text(&*p)
            ))));
            return;
        }
    };
    let mut sink = JobSink {
        job,
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
        (Ok(()), None) => match sink.encode(|e| e.finish()) {
            Ok(tail) => {
                if !tail.is_empty() {
                    sink.send(Event::Audio(Bytes::from(tail)));
                }
                Ok(())
            }
            Err(e) => Err(JobError::Encode(e)),
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
            tracing::warn!(error = %log_text(&format!("{e:?}")), "request failed");
            sink.send(Event::Failed(e));
        }
    }
}

/// The sink a backend writes into: sanitises, encodes and forwards with backpressure.
struct JobSink<'a> {
    job: &'a Work,
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

    /// Runs the encoder, turning its errors and panics into a message.
    fn encode(
        &mut self,
        f: impl FnOnce(&mut dyn StreamEncoder) -> Result<Vec<u8>, EncodeError>,
    ) -> Result<Vec<u8>, String> {
        let encoder = &mut *self.encoder;
        match catch_unwind(AssertUnwindSafe(|| f(encoder))) {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(e.to_string()),
            Err(p) => {
                let text = panic_text(&*p);
                tracing::error!(panic = %log_text(&text), "the audio encoder panicked");
                Err(format!("the encoder panicked: {text}"))
            }
        }
    }
}

impl AudioSink for JobSink<'_> {
    fn push(&mut self, samples: &[f32]) -> Flow {
        if self.is_cancelled() || self.encode_error.is_some() {
            return Flow::Stop;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        // Backends are untrusted: NaN becomes silence, everything else is clipped.
        scratch.extend(
            samples
                .iter()
                .map(|&s| if s.is_nan() { 0.0 } else { s.clamp(-1.0, 1.0) }),
        );
        self.samples += samples.len() as u64;
        let encoded = self.encode(|e| e.push(&scratch));
        self.scratch = scratch;
        match encoded {
            Ok(bytes) if bytes.is_empty() => Flow::Continue,
            Ok(bytes) => self.send(Event::Audio(Bytes::from(bytes))),
            Err(e) => {
                self.encode_error = Some(e);
                Flow::Stop
            }
        }
    }

    fn is_cancelled(&self) -> bool {
        self.job.cancel.is_cancelled() || self.job.events.is_closed() || Instant::now() >= self.job.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend that blocks (ignoring cancellation) while `block` is set, else speaks one chunk.
    struct Blocking {
        release: Arc<AtomicBool>,
        dropped: Arc<AtomicUsize>,
    }

    impl Drop for Blocking {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Backend for Blocking {
        fn info(&self) -> BackendInfo {
            BackendInfo {
                name: "blocking".into(),
                version: "0".into(),
                sample_rate: 8000,
                languages: vec![],
                description: String::new(),
            }
        }

        fn voices(&self) -> Vec<VoiceInfo> {
            vec![VoiceInfo::new("v")]
        }

        fn synthesize(
            &self,
            request: &SynthesisRequest,
            sink: &mut dyn AudioSink,
        ) -> Result<(), BackendError> {
            if request.text == "stall" {
                while !self.release.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            sink.push(&[0.1; 80]);
            Ok(())
        }
    }

    struct Factory {
        created: AtomicUsize,
        release: Arc<AtomicBool>,
        dropped: Arc<AtomicUsize>,
    }

    impl BackendFactory for Factory {
        fn create(&self, _: &BackendConfig) -> Result<Box<dyn Backend>, BackendError> {
            self.created.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(Blocking {
                release: Arc::clone(&self.release),
                dropped: Arc::clone(&self.dropped),
            }))
        }
    }

    fn factory() -> Arc<Factory> {
        Arc::new(Factory {
            created: AtomicUsize::new(0),
            release: Arc::new(AtomicBool::new(false)),
            dropped: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn job(pool: &Pool, text: &str, timeout: Duration) -> (mpsc::Receiver<Event>, CancelOnDrop) {
        let (tx, rx) = mpsc::channel(16);
        let cancel = Cancel::default();
        pool.submit(Job {
            request: SynthesisRequest::new(text, "v"),
            format: AudioFormat::Pcm,
            events: tx,
            cancel: cancel.clone(),
            deadline: Instant::now() + timeout,
            span: tracing::Span::none(),
            permit: pool.try_reserve().expect("a permit"),
        })
        .expect("submitted");
        (rx, CancelOnDrop(cancel))
    }

    fn wait(what: &str, mut f: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn done(rx: &mut mpsc::Receiver<Event>) -> bool {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            match rx.try_recv() {
                Ok(Event::Done { .. }) => return true,
                Ok(Event::Failed(_)) => return false,
                Ok(Event::Audio(_)) => {}
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
                Err(mpsc::error::TryRecvError::Empty) => {
                    assert!(Instant::now() < end, "no answer");
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }

    fn started(f: &Arc<Factory>, options: PoolOptions) -> Arc<Pool> {
        let (pool, ready) = Pool::start(
            Arc::clone(f) as Arc<dyn BackendFactory>,
            &BackendConfig::default(),
            options,
        );
        ready.blocking_recv().expect("ready").expect("started");
        pool
    }

    #[test]
    fn a_stalled_instance_is_written_off_and_replaced() {
        let f = factory();
        let options = PoolOptions {
            stall_grace: Duration::from_millis(100),
            max_written_off: 1,
            ..PoolOptions::new(1, 2)
        };
        let pool = started(&f, options);
        let (_rx, _guard) = job(&pool, "stall", Duration::from_millis(50));
        wait("the write-off", || pool.written_off() == 1);
        assert_eq!(pool.in_flight(), 0, "the stalled job's permit was released");
        wait("the replacement", || pool.instances() == 1);
        assert_eq!(f.created.load(Ordering::SeqCst), 2);
        assert!(!pool.degraded());
        // The replacement serves while the first thread is still stuck.
        let (mut rx, _g) = job(&pool, "hello", Duration::from_secs(5));
        assert!(done(&mut rx));
        let phases: Vec<Phase> = pool.instance_status().iter().map(|s| s.phase).collect();
        assert_eq!(phases, [Phase::WrittenOff, Phase::Idle]);
        // The stuck thread returns: it drops its backend and ends without taking a job.
        f.release.store(true, Ordering::SeqCst);
        wait("the retirement", || {
            pool.instance_status()[0].phase == Phase::Retired
        });
        assert_eq!(f.dropped.load(Ordering::SeqCst), 1);
        assert_eq!(pool.instance_status()[0].jobs, 1);
        let (mut rx, _g) = job(&pool, "again", Duration::from_secs(5));
        assert!(done(&mut rx));
        assert_eq!(pool.instance_status()[0].jobs, 1, "a retired instance took a job");
    }

    #[test]
    fn past_the_bound_there_is_no_replacement() {
        let f = factory();
        let options = PoolOptions {
            stall_grace: Duration::from_millis(50),
            max_written_off: 0,
            ..PoolOptions::new(1, 2)
        };
        let pool = started(&f, options);
        let (_rx, _guard) = job(&pool, "stall", Duration::from_millis(20));
        wait("the write-off", || pool.written_off() == 1);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(f.created.load(Ordering::SeqCst), 1);
        assert_eq!(pool.instances(), 0);
        assert!(pool.degraded());
        f.release.store(true, Ordering::SeqCst);
        let report = pool.shutdown(Duration::from_secs(2));
        assert_eq!(report.abandoned, 0);
    }

    #[test]
    fn a_job_cancelled_while_queued_never_runs() {
        let f = factory();
        let pool = started(&f, PoolOptions::new(1, 4));
        let (_rx, guard) = job(&pool, "stall", Duration::from_secs(10));
        wait("busy", || pool.busy() == 1);
        let (mut queued, queued_guard) = job(&pool, "queued", Duration::from_secs(10));
        drop(queued_guard);
        f.release.store(true, Ordering::SeqCst);
        drop(guard);
        wait("idle", || pool.busy() == 0 && pool.in_flight() == 0);
        assert!(!done(&mut queued), "the cancelled job produced an answer");
        assert_eq!(pool.instance_status()[0].jobs, 1, "the cancelled job ran");
    }

    fn panicking_encoder(format: AudioFormat, rate: u32) -> Result<Box<dyn StreamEncoder>, EncodeError> {
        struct Boom;
        impl StreamEncoder for Boom {
            fn push(&mut self, _: &[f32]) -> Result<Vec<u8>, EncodeError> {
                panic!("encoder exploded")
            }
            fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
                Ok(Vec::new())
            }
        }
        match format {
            AudioFormat::Flac => Ok(Box::new(Boom)),
            other => new_encoder(other, rate),
        }
    }

    #[test]
    fn an_encoder_panic_fails_the_job_and_the_worker_goes_on() {
        let f = factory();
        let options = PoolOptions {
            encoder: panicking_encoder,
            ..PoolOptions::new(1, 2)
        };
        let pool = started(&f, options);
        let (tx, mut rx) = mpsc::channel(16);
        pool.submit(Job {
            request: SynthesisRequest::new("x", "v"),
            format: AudioFormat::Flac,
            events: tx,
            cancel: Cancel::default(),
            deadline: Instant::now() + Duration::from_secs(5),
            span: tracing::Span::none(),
            permit: pool.try_reserve().unwrap(),
        })
        .unwrap();
        let failed = loop {
            match rx.blocking_recv() {
                Some(Event::Failed(e)) => break e,
                Some(_) => {}
                None => panic!("no failure event"),
            }
        };
        assert!(
            matches!(&failed, JobError::Encode(m) if m.contains("encoder exploded")),
            "{failed:?}"
        );
        let (mut rx, _g) = job(&pool, "fine", Duration::from_secs(5));
        assert!(done(&mut rx));
    }

    #[test]
    fn shutdown_refuses_new_jobs_and_joins_the_workers() {
        let f = factory();
        let pool = started(&f, PoolOptions::new(2, 2));
        let report = pool.shutdown(Duration::from_secs(2));
        assert_eq!(
            report,
            ShutdownReport {
                joined: 2,
                abandoned: 0,
                written_off: 0
            }
        );
        let (tx, _rx) = mpsc::channel(1);
        let e = pool
            .submit(Job {
                request: SynthesisRequest::new("x", "v"),
                format: AudioFormat::Pcm,
                events: tx,
                cancel: Cancel::default(),
                deadline: Instant::now(),
                span: tracing::Span::none(),
                permit: pool.try_reserve().unwrap(),
            })
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert_eq!(f.dropped.load(Ordering::SeqCst), 2, "backends dropped");
    }
}
