//! The plugin contract of `tts-host`: everything a third party needs to ship a speech engine.
//!
//! A backend is an ordinary Rust type implementing [`Backend`]. One line,
//! [`export_backend!`], turns a `cdylib` crate into a plugin that `tts-host --backend
//! path/to/libmy_backend.so` loads. abi_stable does the checking underneath; backend authors never
//! see it.
//!
//! ```
//! use tts_backend_api::{
//!     AudioSink, Backend, BackendConfig, BackendError, BackendInfo, Flow, SynthesisRequest,
//!     VecSink, VoiceInfo,
//! };
//!
//! /// Speaks every character as 10 ms of a square wave.
//! struct Beeper {
//!     rate: u32,
//! }
//!
//! impl Beeper {
//!     fn new(_config: BackendConfig) -> Result<Self, BackendError> {
//!         Ok(Self { rate: 16_000 })
//!     }
//! }
//!
//! impl Backend for Beeper {
//!     fn info(&self) -> BackendInfo {
//!         BackendInfo {
//!             name: "beeper".into(),
//!             version: "1.0.0".into(),
//!             sample_rate: self.rate,
//!             languages: vec!["en".into()],
//!             description: "beeps".into(),
//!         }
//!     }
//!
//!     fn voices(&self) -> Vec<VoiceInfo> {
//!         vec![VoiceInfo::new("beep")]
//!     }
//!
//!     fn synthesize(&self, req: &SynthesisRequest, sink: &mut dyn AudioSink) -> Result<(), BackendError> {
//!         if req.voice != "beep" {
//!             return Err(BackendError::unknown_voice(&req.voice, ["beep"]));
//!         }
//!         if req.text.trim().is_empty() {
//!             return Err(BackendError::invalid_input("nothing to say"));
//!         }
//!         let n = (self.rate as f32 * 0.01 / req.speed) as usize;
//!         for _ in req.text.chars() {
//!             let chunk: Vec<f32> = (0..n).map(|i| if i % 40 < 20 { 0.3 } else { -0.3 }).collect();
//!             if sink.push(&chunk) == Flow::Stop {
//!                 break;
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! // In a `cdylib` crate this one line makes the plugin:
//! tts_backend_api::export_backend!(Beeper::new);
//!
//! let backend = Beeper::new(BackendConfig::default())?;
//! let mut sink = VecSink::new();
//! backend.synthesize(&SynthesisRequest::new("hi", "beep"), &mut sink)?;
//! assert_eq!(sink.samples().len(), 2 * 160);
//! # Ok::<(), BackendError>(())
//! ```
//!
//! # The contract
//!
//! **Construction.** The plugin's constructor receives a [`BackendConfig`]: the operator's
//! command-line values (`--model-path`, `--n-threads`, `--use-metal`, `--voice`,
//! `--espeak-voice-id`, the sampling defaults) and backend-specific `--backend-option key=value`
//! pairs. A missing or bad value is an [`ErrorKind::InvalidConfig`] error whose message the host
//! prints at startup, so name the flag (`"--model-path is required"`).
//!
//! **Threads and call order.** With `--n-parallelism N` the host constructs N instances, each on
//! its own worker thread, which then owns it: the thread reads [`Backend::info`] and
//! [`Backend::voices`] once, calls [`Backend::synthesize`] for one request at a time, and finally
//! drops the instance. Different instances run concurrently, so anything shared between them (model
//! weights) must be thread-safe. No plugin code ever runs on the host's async runtime.
//!
//! **Audio.** [`Backend::synthesize`] pushes mono `f32` chunks at [`BackendInfo::sample_rate`] into
//! the [`AudioSink`] as soon as they exist. The host encodes them (wav, mp3, opus, …) and streams
//! them to the client. `push` may block when the client reads slowly.
//!
//! **Errors.** Return a [`BackendError`]; its [`ErrorKind`] decides the HTTP status and its message
//! goes to the client. Report an unknown voice or unusable text before pushing any audio: the host
//! holds the response headers until the first chunk, so such errors still become proper HTTP
//! errors.
//!
//! **Cancellation.** When the client disconnects or the host's `--timeout` passes,
//! [`AudioSink::push`] returns [`Flow::Stop`] and [`AudioSink::is_cancelled`] turns true. Stop
//! promptly and return `Ok(())`. A backend that ignores this keeps its worker busy.
//!
//! **Panics.** A panic inside any call is caught at the boundary and becomes an
//! [`ErrorKind::Panicked`] error for that request; the host stays up and keeps using the instance.
//! Never build a plugin with `panic = "abort"`, and never let C code `abort()` on input.
//!
//! **Logs.** Use `tracing` as usual: the export macro forwards the plugin's events to the host's
//! log with the plugin's target attached.
//!
//! **espeak-ng.** It is process-global and not thread-safe; only one loaded plugin may use it.
//!
//! # The ABI and how it may evolve
//!
//! The ABI version is this crate's version. A host refuses, before running any plugin code, a
//! plugin built against another `0.y` release (or another major release from 1.0 on), or one whose
//! shared types differ in layout; the error names the expected and found versions. Within a
//! compatible release:
//!
//! 1. fields and methods are only appended, with defaults where possible;
//! 2. `Send + Sync` on the backend is fixed forever;
//! 3. only abi_stable's `R*` types cross the boundary; structured data crosses as JSON, so
//!    [`BackendInfo`], [`VoiceInfo`], [`SynthesisRequest`] and [`BackendConfig`] may gain fields
//!    (unknown fields are ignored, missing ones take defaults);
//! 4. error kinds cross as numeric codes; a host treats a code it does not know as
//!    [`ErrorKind::Internal`];
//! 5. libraries are loaded once and never unloaded;
//! 6. hosts load plugins by absolute path, one library per path.
//!
//! # Testing a backend
//!
//! With the `testkit` feature, `testkit::Conformance` runs the checks every backend must pass
//! (info, voices, audio, unknown voice, empty text, cancellation, speed, concurrency). Run it in the
//! backend's own tests; the host's tests run it over the loaded plugin too.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod abi;
mod backend;
mod error;
mod export;
mod log;
mod types;

#[cfg(feature = "host")]
pub mod load;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use backend::{AudioSink, Backend, Flow, VecSink};
pub use error::{quote, BackendError, ErrorKind, QUOTE_MAX_CHARS};
pub use types::{BackendConfig, BackendInfo, Gender, SamplingParams, SynthesisRequest, VoiceInfo};

/// What `export_backend!` expands to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::abi::BackendModule_Ref;
    pub use crate::export::{erased_root_module, Constructor};
    pub use abi_stable::library::{CheckTypeLayout, LibHeader};
}
