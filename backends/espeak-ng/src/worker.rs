//! espeak-ng in a child process: a crash or a hang inside the C library costs one call, never
//! the process that asked.
//!
//! espeak-ng 1.51 has known memory-safety bugs on crafted text (CVE-2023-49990…49994) and aborts
//! on some inputs. A [`Supervisor`] runs the library in a separate worker process (the small
//! `tts-espeak-worker` executable, whose `main` is [`serve_stdio`]) and talks to it over its
//! stdin/stdout:
//!
//! * every call has a time limit; a worker that overruns it is killed;
//! * a worker that dies (a signal, an abort, an exit) fails the call that was running with
//!   [`EspeakError::WorkerCrashed`], and the next call starts a fresh one;
//! * the worker's stderr (espeak prints warnings there) is logged, each line bounded and
//!   escaped, and only the first lines of each worker's life;
//! * the worker has no core dumps and a bounded address space ([`WORKER_ADDRESS_SPACE`]).
//!
//! Each supervisor owns its own worker, so instances that each hold one phonemize in parallel
//! (the in-process [`crate::Phonemizer`] has one process-wide lock).
//!
//! # Protocol
//!
//! Frames in both directions are a little-endian `u32` length followed by that many bytes, at
//! most [`MAX_FRAME`]. A frame is a tag byte and fields: strings as `u32` length + UTF-8,
//! integers as little-endian `i32`/`u32`.
//!
//! * worker → supervisor, once at start: `H` version, data path, sample rate, voice count, then
//!   per voice identifier, name, language count, languages; or `E` and an error.
//! * supervisor → worker: `P` voice, mode, text (phonemize).
//! * worker → supervisor: `R` clause count, clauses; or `E` and an error.
//!
//! The worker is a trusted executable of this project; the supervisor still checks every frame
//! it reads (lengths, tags, UTF-8) and treats a malformed one as a crash of the worker.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::{EspeakConfig, EspeakError, EspeakInfo, PhonemeMode, Phonemizer, VoiceEntry};

/// The largest frame either side accepts (text is bounded far below this by its callers).
pub const MAX_FRAME: usize = 8 << 20;

/// The worker's address-space limit (`RLIMIT_AS`): espeak needs a few tens of MB; a runaway
/// allocation fails inside the worker instead of eating the machine.
pub const WORKER_ADDRESS_SPACE: u64 = 1 << 30;

/// How many stderr lines of one worker are logged before the rest are counted only.
const STDERR_LINES: usize = 20;

/// How long a worker may take to start and say hello.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The name of the worker executable.
pub const WORKER_EXE: &str = "tts-espeak-worker";

/// How a [`Supervisor`] starts its worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSpec {
    /// The `tts-espeak-worker` executable.
    pub executable: PathBuf,
    /// How the worker initialises espeak-ng.
    pub config: EspeakConfig,
    /// The time limit of one call.
    pub timeout: Duration,
}

impl WorkerSpec {
    /// A spec with the default time limit (10 s per call).
    pub fn new(executable: impl Into<PathBuf>, config: EspeakConfig) -> Self {
        Self {
            executable: executable.into(),
            config,
            timeout: Duration::from_secs(10),
        }
    }

    /// Uses `timeout` as the time limit of one call.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Finds the worker executable: `$TTS_ESPEAK_WORKER` if set, else beside the running executable
/// or one directory up (test binaries live in `target/<profile>/deps`, the worker in
/// `target/<profile>`). Returns the places looked at when it is nowhere.
pub fn locate_worker() -> Result<PathBuf, Vec<PathBuf>> {
    if let Some(p) = std::env::var_os("TTS_ESPEAK_WORKER").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(vec![p]) };
    }
    let mut looked = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        for candidate in [
            Some(dir.join(WORKER_EXE)),
            dir.parent().map(|d| d.join(WORKER_EXE)),
        ]
        .into_iter()
        .flatten()
        {
            if candidate.is_file() {
                return Ok(candidate);
            }
            looked.push(candidate);
        }
    }
    Err(looked)
}

// ---------------------------------------------------------------------------------------------
// Framing

fn write_frame(w: &mut impl Write, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(payload)?;
    w.flush()
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
fn read_frame(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {MAX_FRAME}"),
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

#[derive(Default)]
struct Encoder(Vec<u8>);

impl Encoder {
    fn tag(mut self, tag: u8) -> Self {
        self.0.push(tag);
        self
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        // Strings here are bounded by MAX_FRAME, far below u32::MAX.
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(s.as_bytes());
    }
}

struct Decoder<'a> {
    buf: &'a [u8],
}

/// A malformed frame.
fn bad(what: &str) -> EspeakError {
    EspeakError::WorkerProtocol {
        detail: what.to_owned(),
    }
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EspeakError> {
        if self.buf.len() < n {
            return Err(bad("truncated frame"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn tag(&mut self) -> Result<u8, EspeakError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, EspeakError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self) -> Result<i32, EspeakError> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn str(&mut self) -> Result<String, EspeakError> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| bad("a string is not UTF-8"))
    }

    /// A count of items that each take at least `min_size` bytes, checked against what is left.
    fn count(&mut self, min_size: usize) -> Result<usize, EspeakError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.buf.len() {
            return Err(bad("a count exceeds the frame"));
        }
        Ok(n)
    }

    fn end(&self) -> Result<(), EspeakError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(bad("trailing bytes in a frame"))
        }
    }
}

fn encode_error(e: &EspeakError) -> Vec<u8> {
    let mut enc = Encoder::default().tag(b'E');
    match e {
        EspeakError::DataPathInvalid { path } => {
            enc.u32(1);
            enc.str(&path.display().to_string());
        }
        EspeakError::InitFailed { code, data_path } => {
            enc.u32(2);
            enc.i32(*code);
            enc.str(data_path);
        }
        EspeakError::DataPathMismatch { active, requested } => {
            enc.u32(3);
            enc.str(active);
            enc.str(requested);
        }
        EspeakError::UnsupportedVersion { found } => {
            enc.u32(4);
            enc.str(found);
        }
        EspeakError::SetVoice { name, code } => {
            enc.u32(5);
            enc.str(name);
            enc.i32(*code);
        }
        EspeakError::InteriorNul { what, position } => {
            enc.u32(6);
            enc.str(what);
            enc.u32(u32::try_from(*position).unwrap_or(u32::MAX));
        }
        EspeakError::InvalidUtf8 { lossy } => {
            enc.u32(7);
            enc.str(lossy);
        }
        EspeakError::NoProgress { offset } => {
            enc.u32(8);
            enc.u32(u32::try_from(*offset).unwrap_or(u32::MAX));
        }
        EspeakError::NoVoice => enc.u32(9),
        other => {
            enc.u32(0);
            enc.str(&other.to_string());
        }
    }
    enc.0
}

fn decode_error(dec: &mut Decoder<'_>) -> Result<EspeakError, EspeakError> {
    let e = match dec.u32()? {
        1 => EspeakError::DataPathInvalid {
            path: PathBuf::from(dec.str()?),
        },
        2 => EspeakError::InitFailed {
            code: dec.i32()?,
            data_path: dec.str()?,
        },
        3 => EspeakError::DataPathMismatch {
            active: dec.str()?,
            requested: dec.str()?,
        },
        4 => EspeakError::UnsupportedVersion { found: dec.str()? },
        5 => EspeakError::SetVoice {
            name: dec.str()?,
            code: dec.i32()?,
        },
        6 => {
            let what = match dec.str()?.as_str() {
                "voice name" => "voice name",
                "data path" => "data path",
                _ => "text",
            };
            EspeakError::InteriorNul {
                what,
                position: dec.u32()? as usize,
            }
        }
        7 => EspeakError::InvalidUtf8 { lossy: dec.str()? },
        8 => EspeakError::NoProgress {
            offset: dec.u32()? as usize,
        },
        9 => EspeakError::NoVoice,
        _ => EspeakError::WorkerProtocol {
            detail: format!("the worker reported: {}", dec.str()?),
        },
    };
    dec.end()?;
    Ok(e)
}

fn encode_hello(info: &EspeakInfo, voices: &[VoiceEntry]) -> Vec<u8> {
    let mut enc = Encoder::default().tag(b'H');
    enc.str(&info.version);
    enc.str(&info.data_path);
    enc.i32(info.sample_rate);
    enc.u32(u32::try_from(voices.len()).unwrap_or(u32::MAX));
    for v in voices {
        enc.str(&v.identifier);
        enc.str(&v.name);
        enc.u32(u32::try_from(v.languages.len()).unwrap_or(u32::MAX));
        for l in &v.languages {
            enc.str(l);
        }
    }
    enc.0
}

fn decode_hello(frame: &[u8]) -> Result<(EspeakInfo, Vec<VoiceEntry>), EspeakError> {
    let mut dec = Decoder { buf: frame };
    match dec.tag()? {
        b'H' => {}
        b'E' => return Err(decode_error(&mut dec)?),
        _ => return Err(bad("expected a hello frame")),
    }
    let info = EspeakInfo {
        version: dec.str()?,
        data_path: dec.str()?,
        sample_rate: dec.i32()?,
    };
    let n = dec.count(12)?;
    let mut voices = Vec::with_capacity(n);
    for _ in 0..n {
        let identifier = dec.str()?;
        let name = dec.str()?;
        let k = dec.count(4)?;
        let mut languages = Vec::with_capacity(k);
        for _ in 0..k {
            languages.push(dec.str()?);
        }
        voices.push(VoiceEntry {
            identifier,
            name,
            languages,
        });
    }
    dec.end()?;
    Ok((info, voices))
}

fn encode_request(voice: &str, mode: PhonemeMode, text: &str) -> Vec<u8> {
    let mut enc = Encoder::default().tag(b'P');
    enc.str(voice);
    enc.i32(mode.bits());
    enc.str(text);
    enc.0
}

fn encode_clauses(clauses: &[String]) -> Vec<u8> {
    let mut enc = Encoder::default().tag(b'R');
    enc.u32(u32::try_from(clauses.len()).unwrap_or(u32::MAX));
    for c in clauses {
        enc.str(c);
    }
    enc.0
}

fn decode_reply(frame: &[u8]) -> Result<Result<Vec<String>, EspeakError>, EspeakError> {
    let mut dec = Decoder { buf: frame };
    match dec.tag()? {
        b'R' => {
            let n = dec.count(4)?;
            let mut clauses = Vec::with_capacity(n);
            for _ in 0..n {
                clauses.push(dec.str()?);
            }
            dec.end()?;
            Ok(Ok(clauses))
        }
        b'E' => Ok(Err(decode_error(&mut dec)?)),
        _ => Err(bad("expected a reply frame")),
    }
}

// ---------------------------------------------------------------------------------------------
// The worker side

/// Arguments of the worker executable: `[--data-path DIR] [--allow-other-versions]`.
fn worker_args(config: &EspeakConfig) -> Vec<std::ffi::OsString> {
    let mut args = Vec::new();
    if let Some(p) = &config.data_path {
        args.push("--data-path".into());
        args.push(p.clone().into_os_string());
    }
    if config.allow_other_versions {
        args.push("--allow-other-versions".into());
    }
    args
}

fn parse_worker_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<EspeakConfig, String> {
    let mut config = EspeakConfig::default();
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--data-path") => {
                let p = args.next().ok_or("--data-path needs a directory")?;
                config = config.with_data_path(PathBuf::from(p));
            }
            Some("--allow-other-versions") => config = config.with_allow_other_versions(true),
            _ => return Err(format!("unknown argument {}", a.to_string_lossy())),
        }
    }
    Ok(config)
}

/// Turns off core dumps and bounds the address space of this process.
fn limit_self() {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let space = libc::rlimit {
        rlim_cur: WORKER_ADDRESS_SPACE as libc::rlim_t,
        rlim_max: WORKER_ADDRESS_SPACE as libc::rlim_t,
    };
    // SAFETY: setrlimit only reads the struct passed by reference; failure leaves the old limit,
    // which is acceptable (the limits are hardening, not correctness).
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::setrlimit(libc::RLIMIT_AS, &space);
    }
}

/// The worker executable's `main`: initialises espeak-ng as the arguments say, says hello, then
/// answers phonemize requests from stdin until stdin closes. Returns the process exit code.
pub fn serve_stdio() -> i32 {
    limit_self();
    let config = match parse_worker_args(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{WORKER_EXE}: {e}");
            return 2;
        }
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    match serve(&config, &mut stdin.lock(), &mut stdout.lock()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{WORKER_EXE}: {e}");
            1
        }
    }
}

/// The worker loop over any streams (the unit tests run it in-process).
fn serve(config: &EspeakConfig, input: &mut impl Read, output: &mut impl Write) -> std::io::Result<()> {
    let mut espeak = match Phonemizer::lock(config) {
        Ok(p) => p,
        Err(e) => return write_frame(output, &encode_error(&e)),
    };
    let voices = espeak.list_voices();
    write_frame(output, &encode_hello(espeak.info(), &voices))?;
    while let Some(frame) = read_frame(input)? {
        let reply = match handle(&mut espeak, &frame) {
            Ok(clauses) => encode_clauses(&clauses),
            Err(e) => encode_error(&e),
        };
        write_frame(output, &reply)?;
    }
    Ok(())
}

fn handle(espeak: &mut Phonemizer, frame: &[u8]) -> Result<Vec<String>, EspeakError> {
    let mut dec = Decoder { buf: frame };
    if dec.tag()? != b'P' {
        return Err(bad("expected a phonemize request"));
    }
    let voice = dec.str()?;
    let mode = PhonemeMode(dec.i32()?);
    let text = dec.str()?;
    dec.end()?;
    espeak.phonemize(&voice, &text, mode)
}

// ---------------------------------------------------------------------------------------------
// The supervisor side

/// A running worker.
struct Running {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<std::io::Result<Vec<u8>>>,
}

impl Running {
    /// Kills the worker (if still alive) and says how it ended.
    fn end(mut self) -> String {
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(status) => describe_exit(status),
            Err(e) => format!("its status is unknown ({e})"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("it exited with status {code}"),
        (None, Some(sig)) => format!("it was killed by signal {sig} ({})", signal_name(sig)),
        _ => "it ended".to_owned(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGABRT => "SIGABRT: espeak-ng aborted",
        libc::SIGSEGV => "SIGSEGV: a memory fault inside espeak-ng",
        libc::SIGBUS => "SIGBUS",
        libc::SIGKILL => "SIGKILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        _ => "a signal",
    }
}

/// Logs a worker's stderr, bounded: each line cut to 200 characters and escaped, and only the
/// first [`STDERR_LINES`] lines (the rest are counted when the stream ends).
fn forward_stderr(stderr: impl Read, pid: u32) {
    let reader = BufReader::new(stderr);
    let mut lines = 0usize;
    for line in reader.split(b'\n') {
        let Ok(line) = line else { break };
        lines += 1;
        if lines <= STDERR_LINES {
            let text = String::from_utf8_lossy(&line);
            let shown: String = text.chars().take(200).flat_map(char::escape_debug).collect();
            tracing::warn!(worker = pid, "espeak-ng: {shown}");
        }
    }
    if lines > STDERR_LINES {
        tracing::warn!(
            worker = pid,
            "espeak-ng wrote {} more lines that were not logged",
            lines - STDERR_LINES
        );
    }
}

/// espeak-ng in a supervised worker process; see the module docs. One call at a time (`&mut`).
pub struct Supervisor {
    spec: WorkerSpec,
    running: Option<Running>,
    info: EspeakInfo,
    voices: Vec<VoiceEntry>,
    restarts: u64,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("spec", &self.spec)
            .field("pid", &self.running.as_ref().map(|r| r.child.id()))
            .field("info", &self.info)
            .field("voices", &self.voices.len())
            .field("restarts", &self.restarts)
            .finish()
    }
}

impl Supervisor {
    /// Starts the worker and waits for its hello (espeak-ng's version, data path and voices).
    ///
    /// # Errors
    ///
    /// [`EspeakError::WorkerUnavailable`] if the executable cannot be started or does not answer
    /// in time; the worker's own initialisation errors ([`EspeakError::DataPathInvalid`],
    /// [`EspeakError::InitFailed`], [`EspeakError::UnsupportedVersion`]) as it reports them.
    pub fn start(spec: WorkerSpec) -> Result<Self, EspeakError> {
        let (running, info, voices) = spawn(&spec)?;
        tracing::info!(
            worker = running.child.id(),
            version = %info.version,
            data_path = %info.data_path,
            voices = voices.len(),
            "espeak-ng worker started"
        );
        Ok(Self {
            spec,
            running: Some(running),
            info,
            voices,
            restarts: 0,
        })
    }

    /// What the first worker reported about espeak-ng.
    pub fn info(&self) -> &EspeakInfo {
        &self.info
    }

    /// The voices espeak-ng listed at start-up.
    pub fn voices(&self) -> &[VoiceEntry] {
        &self.voices
    }

    /// How many times a worker was replaced after a crash or a timeout.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// The worker's process id, if one is running.
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.child.id())
    }

    /// Phonemizes `text` with `voice` in the worker (as [`Phonemizer::phonemize`]), starting a
    /// worker first if the last one ended.
    ///
    /// # Errors
    ///
    /// espeak's own errors as the worker reports them; [`EspeakError::WorkerTimeout`] if the call
    /// overran the time limit (the worker is killed); [`EspeakError::WorkerCrashed`] if the worker
    /// died during the call; [`EspeakError::WorkerUnavailable`] if no worker can be started.
    pub fn phonemize(
        &mut self,
        voice: &str,
        text: &str,
        mode: PhonemeMode,
    ) -> Result<Vec<String>, EspeakError> {
        let request = encode_request(voice, mode, text);
        if request.len() > MAX_FRAME {
            return Err(EspeakError::WorkerProtocol {
                detail: format!("the text is too long for one call ({} bytes)", text.len()),
            });
        }
        // A worker that died while idle (killed from outside) is replaced before the call, so
        // the call does not pay for it.
        if let Some(r) = self.running.as_mut() {
            if let Ok(Some(status)) = r.child.try_wait() {
                tracing::warn!(
                    worker = r.child.id(),
                    "espeak-ng worker ended while idle ({}); starting a new one",
                    describe_exit(status)
                );
                self.running = None;
            }
        }
        let mut running = match self.running.take() {
            Some(r) => r,
            None => {
                let (r, _, _) = spawn(&self.spec)?;
                self.restarts += 1;
                tracing::info!(
                    worker = r.child.id(),
                    restarts = self.restarts,
                    "espeak-ng worker restarted"
                );
                r
            }
        };
        let started = Instant::now();
        if let Err(e) = write_frame(&mut running.stdin, &request) {
            let how = running.end();
            return Err(EspeakError::WorkerCrashed {
                detail: format!("the request could not be sent ({e}); {how}"),
            });
        }
        match running.replies.recv_timeout(self.spec.timeout) {
            Ok(Ok(frame)) => match decode_reply(&frame) {
                Ok(result) => {
                    self.running = Some(running);
                    result
                }
                Err(e) => {
                    let how = running.end();
                    Err(EspeakError::WorkerCrashed {
                        detail: format!("{e}; {how}"),
                    })
                }
            },
            Err(RecvTimeoutError::Timeout) => {
                let how = running.end();
                tracing::error!(
                    ms = started.elapsed().as_millis(),
                    "espeak-ng worker overran its time limit and was killed ({how})"
                );
                Err(EspeakError::WorkerTimeout {
                    millis: u64::try_from(self.spec.timeout.as_millis()).unwrap_or(u64::MAX),
                })
            }
            Ok(Err(e)) => {
                let how = running.end();
                Err(EspeakError::WorkerCrashed {
                    detail: format!("reading its answer failed ({e}); {how}"),
                })
            }
            Err(RecvTimeoutError::Disconnected) => {
                let how = running.end();
                tracing::error!("espeak-ng worker died during a call ({how})");
                Err(EspeakError::WorkerCrashed { detail: how })
            }
        }
    }
}

/// Starts a worker and reads its hello.
fn spawn(spec: &WorkerSpec) -> Result<(Running, EspeakInfo, Vec<VoiceEntry>), EspeakError> {
    let unavailable = |detail: String| EspeakError::WorkerUnavailable {
        executable: spec.executable.clone(),
        detail,
    };
    let mut child = Command::new(&spec.executable)
        .args(worker_args(&spec.config))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| unavailable(format!("cannot start it: {e}")))?;
    let pid = child.id();
    let (Some(stdin), Some(mut stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(unavailable("its pipes were not set up".into()));
    };
    let _ = std::thread::Builder::new()
        .name(format!("espeak-stderr-{pid}"))
        .spawn(move || forward_stderr(stderr, pid));
    let (tx, replies) = mpsc::channel();
    let reader = std::thread::Builder::new()
        .name(format!("espeak-reader-{pid}"))
        .spawn(move || loop {
            match read_frame(&mut stdout) {
                Ok(Some(frame)) => {
                    if tx.send(Ok(frame)).is_err() {
                        break;
                    }
                }
                // End of stream: dropping the sender tells the supervisor.
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        });
    let running = Running {
        child,
        stdin,
        replies,
    };
    if let Err(e) = reader {
        let how = running.end();
        return Err(unavailable(format!("cannot start its reader thread: {e}; {how}")));
    }
    match running.replies.recv_timeout(START_TIMEOUT) {
        Ok(Ok(frame)) => match decode_hello(&frame) {
            Ok((info, voices)) => Ok((running, info, voices)),
            Err(e @ EspeakError::WorkerProtocol { .. }) => {
                let how = running.end();
                Err(unavailable(format!("{e}; {how}")))
            }
            // espeak's own start-up error, as the worker reports it.
            Err(e) => {
                drop(running);
                Err(e)
            }
        },
        Ok(Err(e)) => {
            let how = running.end();
            Err(unavailable(format!("reading its hello failed ({e}); {how}")))
        }
        Err(RecvTimeoutError::Timeout) => {
            let how = running.end();
            Err(unavailable(format!(
                "it did not answer within {} s; {how}",
                START_TIMEOUT.as_secs()
            )))
        }
        Err(RecvTimeoutError::Disconnected) => {
            let how = running.end();
            Err(unavailable(format!("it ended before saying hello; {how}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_are_checked() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").unwrap();
        write_frame(&mut buf, b"").unwrap();
        let mut r = buf.as_slice();
        assert_eq!(read_frame(&mut r).unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(read_frame(&mut r).unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(read_frame(&mut r).unwrap(), None);
        // A length beyond MAX_FRAME is refused before allocating.
        let huge = (MAX_FRAME as u32 + 1).to_le_bytes();
        assert!(read_frame(&mut huge.as_slice()).is_err());
        // A truncated frame is an error, not a clean end.
        let mut cut = Vec::new();
        write_frame(&mut cut, b"abcdef").unwrap();
        cut.truncate(6);
        assert!(read_frame(&mut cut.as_slice()).is_err());
    }

    #[test]
    fn messages_round_trip() {
        let info = EspeakInfo {
            version: "1.51".into(),
            data_path: "/usr/share/espeak-ng-data".into(),
            sample_rate: 22050,
        };
        let voices = vec![VoiceEntry {
            identifier: "gmw/en-US".into(),
            name: "English_(America)".into(),
            languages: vec!["en-us".into(), "en".into()],
        }];
        assert_eq!(
            decode_hello(&encode_hello(&info, &voices)).unwrap(),
            (info, voices)
        );
        let clauses = vec!["həlˈoʊ".to_owned(), String::new()];
        assert_eq!(decode_reply(&encode_clauses(&clauses)).unwrap(), Ok(clauses));
        for e in [
            EspeakError::SetVoice {
                name: "xx".into(),
                code: 2,
            },
            EspeakError::NoVoice,
            EspeakError::InitFailed {
                code: -1,
                data_path: "/x".into(),
            },
            EspeakError::InteriorNul {
                what: "text",
                position: 3,
            },
        ] {
            assert_eq!(decode_reply(&encode_error(&e)).unwrap(), Err(e));
        }
    }

    #[test]
    fn malformed_frames_are_protocol_errors() {
        for frame in [
            &b""[..],
            b"X",
            b"R\x05\x00\x00\x00",
            b"R\x01\x00\x00\x00\xff\xff\xff\x00",
            b"R\x00\x00\x00\x00trailing",
            b"R\x01\x00\x00\x00\x02\x00\x00\x00\xff\xfe",
        ] {
            assert!(
                matches!(decode_reply(frame), Err(EspeakError::WorkerProtocol { .. })),
                "{frame:?}"
            );
        }
        assert!(matches!(
            decode_hello(b"H\x01\x00\x00\x00"),
            Err(EspeakError::WorkerProtocol { .. })
        ));
    }

    #[test]
    fn worker_arguments_round_trip() {
        let config = EspeakConfig::default()
            .with_data_path("/opt/espeak")
            .with_allow_other_versions(true);
        assert_eq!(parse_worker_args(worker_args(&config)).unwrap(), config);
        assert!(parse_worker_args(["--bogus".into()]).is_err());
    }

    #[test]
    fn a_missing_executable_is_unavailable() {
        let e = Supervisor::start(WorkerSpec::new(
            "/nonexistent/tts-espeak-worker",
            EspeakConfig::default(),
        ))
        .unwrap_err();
        assert!(matches!(e, EspeakError::WorkerUnavailable { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/tts-espeak-worker"), "{e}");
    }
}
