//! Loading backend plugins into a host (feature `host`).
//!
//! ```no_run
//! use tts_backend_api::{load::Plugin, Backend, BackendConfig};
//! let plugin = Plugin::load("target/debug/libtts_backend_sine.so".as_ref())?;
//! let backend = plugin.instantiate(&BackendConfig::default())?;
//! println!("{} at {} Hz", backend.info().name, backend.info().sample_rate);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Libraries are never unloaded (abi_stable leaks the handle by design), so a [`Plugin`] and every
//! backend made from it stay valid until the process exits. Loading the same path twice yields the
//! same library; loading different plugins in one process is fine.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSlice, RStr};

use crate::abi::{AbiSink, AbiSink_TO, BackendModule_Ref, HostServices, HostServices_TO, TtsBackendBox};
use crate::{
    AudioSink, Backend, BackendConfig, BackendError, BackendInfo, Flow, SynthesisRequest, VoiceInfo,
};

/// Why a plugin could not be loaded. Messages are short; [`LoadError::details`] has the full
/// text abi_stable produced, for debug logs.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No file at the path.
    #[error("backend plugin {path} does not exist")]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// The dynamic loader refused the file (not a shared library, wrong architecture, a missing
    /// dependency).
    #[error("cannot open backend plugin {path}: {message}")]
    Open {
        /// The canonical path.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// A shared library, but not a tts-host backend (no root-module symbol).
    #[error("{path} is not a tts-host backend plugin (it exports no backend module): {message}")]
    NotAPlugin {
        /// The canonical path.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// Built against an incompatible `tts-backend-api` (ABI) version or layout. Nothing of the
    /// plugin ran.
    #[error("backend plugin {path} was built for a different plugin ABI and was not loaded:\n{summary}")]
    AbiMismatch {
        /// The canonical path.
        path: PathBuf,
        /// The decisive lines (`Error:` with `Expected`/`Found`).
        summary: String,
        /// abi_stable's full report.
        details: String,
    },
    /// The plugin's root-module function failed or panicked.
    #[error("backend plugin {path} failed to initialise: {message}")]
    Init {
        /// The canonical path.
        path: PathBuf,
        /// What it reported.
        message: String,
    },
}

impl LoadError {
    /// The full text behind the short message (for debug logs).
    pub fn details(&self) -> String {
        match self {
            LoadError::AbiMismatch { details, .. } => details.clone(),
            other => other.to_string(),
        }
    }
}

/// A loaded plugin library.
#[derive(Clone)]
pub struct Plugin {
    path: PathBuf,
    module: BackendModule_Ref,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Loads the plugin at `path` (made absolute here: bare names would go through the dynamic
    /// loader's search path). The ABI version and the layout of every shared type are checked
    /// before any code of the plugin runs.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let path = path.canonicalize().map_err(|_| LoadError::NotFound {
            path: path.to_path_buf(),
        })?;
        let header = lib_header_from_path(&path).map_err(|e| classify(&path, e))?;
        check_version(&path, header.version_strings())?;
        let module = header
            .init_root_module::<BackendModule_Ref>()
            .map_err(|e| classify(&path, e))?;
        Ok(Self { path, module })
    }

    /// The canonical path the plugin was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ABI version this host was built with (`tts-backend-api`'s version).
    pub fn host_abi_version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    /// Creates one backend instance. Call it on the thread that will own the instance.
    pub fn instantiate(&self, config: &BackendConfig) -> Result<PluginBackend, BackendError> {
        let json = serde_json::to_string(config)
            .map_err(|e| BackendError::internal(format!("cannot serialise the configuration: {e}")))?;
        let host = HostServices_TO::from_value(TracingHost, TD_Opaque);
        let inner = match (self.module.new_backend())(RStr::from_str(&json), host) {
            RResult::ROk(b) => b,
            RResult::RErr(e) => return Err(e.into()),
        };
        let info: BackendInfo = read_json(inner.info_json(), "info")?;
        let voices: Vec<VoiceInfo> = read_json(inner.voices_json(), "voice list")?;
        Ok(PluginBackend { inner, info, voices })
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    r: RResult<abi_stable::std_types::RString, crate::abi::AbiError>,
    what: &str,
) -> Result<T, BackendError> {
    match r {
        RResult::ROk(s) => serde_json::from_str(s.as_str())
            .map_err(|e| BackendError::internal(format!("the plugin returned a malformed {what}: {e}"))),
        RResult::RErr(e) => Err(e.into()),
    }
}

/// The ABI policy: the same `0.y` (or, from 1.0 on, the same major) as this host. abi_stable
/// alone would accept a plugin built against a newer minor release.
fn check_version(path: &Path, found: abi_stable::sabi_types::VersionStrings) -> Result<(), LoadError> {
    let ours = Plugin::host_abi_version();
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split('.');
        Some((it.next()?.trim().parse().ok()?, it.next()?.trim().parse().ok()?))
    };
    let found_text = found.version.to_string();
    let compatible = match (parse(ours), parse(&found_text)) {
        (Some((0, a)), Some((0, b))) => a == b,
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    };
    if compatible {
        return Ok(());
    }
    let summary = format!(
        "Error:incompatible plugin ABI (tts-backend-api) version\n  Expected: {ours} (any {})\n  Found: {found_text}",
        match parse(ours) {
            Some((0, minor)) => format!("0.{minor}.x"),
            Some((major, _)) => format!("{major}.x.y"),
            None => ours.to_string(),
        }
    );
    Err(LoadError::AbiMismatch {
        path: path.to_path_buf(),
        details: summary.clone(),
        summary,
    })
}

fn classify(path: &Path, e: LibraryError) -> LoadError {
    let path = path.to_path_buf();
    match e {
        LibraryError::OpenError { err, .. } => LoadError::Open {
            path,
            message: err.to_string(),
        },
        LibraryError::GetSymbolError { err, .. } => LoadError::NotAPlugin {
            path,
            message: err.to_string(),
        },
        LibraryError::RootModule { err, .. } => LoadError::Init {
            path,
            message: err.to_string(),
        },
        other => {
            let details = other.to_string();
            LoadError::AbiMismatch {
                path,
                summary: summarize_mismatch(&details),
                details,
            }
        }
    }
}

/// Keeps the decisive lines of abi_stable's report: each `Error:` line with its `Expected` and
/// `Found` values (which abi_stable puts on the following lines), without repeats. Falls back to
/// the first lines.
pub fn summarize_mismatch(details: &str) -> String {
    let lines: Vec<&str> = details.lines().map(str::trim).collect();
    let mut out: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(pos) = line.find("Error:") else { continue };
        let mut entry = line[pos..].to_string();
        let mut label: Option<&str> = None;
        for next in lines.iter().skip(i + 1) {
            if next.is_empty() || next.contains("Error:") {
                break;
            }
            if let Some(rest) = next
                .strip_prefix("Expected:")
                .or_else(|| next.strip_prefix("Found:"))
            {
                label = Some(if next.starts_with("Expected") {
                    "Expected"
                } else {
                    "Found"
                });
                entry.push_str(&format!("\n  {}:", label.unwrap_or_default()));
                if !rest.trim().is_empty() {
                    entry.push(' ');
                    entry.push_str(rest.trim());
                }
            } else if label.is_some() {
                entry.push(' ');
                entry.push_str(next);
            }
        }
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    if out.is_empty() {
        let head: Vec<&str> = lines.iter().copied().filter(|l| !l.is_empty()).take(6).collect();
        return head.join("\n");
    }
    out.truncate(8);
    out.join("\n")
}

/// A backend instance living in a plugin. It implements [`Backend`], so a host treats plugins and
/// in-process backends alike. Info and voices are read once, at construction.
pub struct PluginBackend {
    inner: TtsBackendBox,
    info: BackendInfo,
    voices: Vec<VoiceInfo>,
}

impl std::fmt::Debug for PluginBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginBackend")
            .field("info", &self.info)
            .field("voices", &self.voices.len())
            .finish_non_exhaustive()
    }
}

impl Backend for PluginBackend {
    fn info(&self) -> BackendInfo {
        self.info.clone()
    }

    fn voices(&self) -> Vec<VoiceInfo> {
        self.voices.clone()
    }

    fn synthesize(&self, request: &SynthesisRequest, sink: &mut dyn AudioSink) -> Result<(), BackendError> {
        let json = serde_json::to_string(request)
            .map_err(|e| BackendError::internal(format!("cannot serialise the request: {e}")))?;
        let mut host_sink = HostSink { sink };
        let abi_sink = AbiSink_TO::from_ptr(&mut host_sink, TD_Opaque);
        match self.inner.synthesize(RStr::from_str(&json), abi_sink) {
            RResult::ROk(()) => Ok(()),
            RResult::RErr(e) => Err(e.into()),
        }
    }
}

/// The host's sink as the plugin calls it. Host code runs inside an `extern "C"` shim here, so a
/// panic is caught and turned into "stop".
struct HostSink<'a> {
    sink: &'a mut dyn AudioSink,
}

impl AbiSink for HostSink<'_> {
    fn push(&mut self, samples: RSlice<'_, f32>) -> bool {
        let sink = &mut self.sink;
        catch_unwind(AssertUnwindSafe(|| {
            sink.push(samples.as_slice()) == Flow::Continue
        }))
        .unwrap_or(false)
    }

    fn is_cancelled(&self) -> bool {
        catch_unwind(AssertUnwindSafe(|| self.sink.is_cancelled())).unwrap_or(true)
    }
}

/// Host services that record plugin logs through the host's `tracing` subscriber, with the
/// plugin's target in the `plugin_target` field.
#[derive(Debug, Clone, Copy)]
struct TracingHost;

impl HostServices for TracingHost {
    fn max_level(&self) -> u8 {
        use tracing::level_filters::LevelFilter;
        match LevelFilter::current() {
            LevelFilter::OFF => 0,
            LevelFilter::ERROR => 1,
            LevelFilter::WARN => 2,
            LevelFilter::INFO => 3,
            LevelFilter::DEBUG => 4,
            _ => 5,
        }
    }

    fn log(&self, level: u8, target: RStr<'_>, message: RStr<'_>) {
        let _ = catch_unwind(|| {
            let (target, message) = (target.as_str(), message.as_str());
            match level {
                0 | 1 => tracing::error!(target: "plugin", plugin_target = target, "{message}"),
                2 => tracing::warn!(target: "plugin", plugin_target = target, "{message}"),
                3 => tracing::info!(target: "plugin", plugin_target = target, "{message}"),
                4 => tracing::debug!(target: "plugin", plugin_target = target, "{message}"),
                _ => tracing::trace!(target: "plugin", plugin_target = target, "{message}"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_keeps_error_expected_found() {
        let details = "lots of noise\n  field_name:x\n Error:incompatible package versions\n Expected: 0.1.0\n Found: 0.2.0\n\n more noise\nError:incompatible package versions\nExpected: 0.1.0\nFound: 0.2.0\n";
        assert_eq!(
            summarize_mismatch(details),
            "Error:incompatible package versions\n  Expected: 0.1.0\n  Found: 0.2.0"
        );
        let layout =
            "noise\n\nError:mismatched package\nExpected:\n    tts-backend-api\nFound:\n    other\n\n";
        assert_eq!(
            summarize_mismatch(layout),
            "Error:mismatched package\n  Expected: tts-backend-api\n  Found: other"
        );
    }

    #[test]
    fn missing_file_is_not_found() {
        let e = Plugin::load(Path::new("/nonexistent/libnothing.so")).unwrap_err();
        assert!(matches!(e, LoadError::NotFound { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "backend plugin /nonexistent/libnothing.so does not exist"
        );
    }

    #[test]
    fn a_non_library_is_refused_with_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("tts-load-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("libnot_a_plugin.so");
        std::fs::write(&file, b"this is not an ELF file").unwrap();
        let e = Plugin::load(&file).unwrap_err();
        assert!(matches!(e, LoadError::Open { .. }), "{e:?}");
        assert!(e.to_string().starts_with("cannot open backend plugin"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
