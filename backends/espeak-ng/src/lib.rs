//! Text to IPA phonemes with the system espeak-ng library (1.51), behind one process-wide lock.
//!
//! espeak-ng keeps all of its state in C globals: the loaded voice, the dictionaries, the phoneme
//! buffer that `espeak_TextToPhonemes` returns. Two threads phonemizing at once corrupt each other's
//! output, and a failed initialisation leaves it in a state where the next call crashes. This crate
//! is the one place in tts-host that knows that:
//!
//! * [`Phonemizer::lock`] takes a process-wide [`Mutex`] and, on first use, initialises espeak-ng
//!   once (`espeak_Initialize` with `espeakINITIALIZE_DONT_EXIT`, so a missing data directory is an
//!   error instead of `exit(1)`). A failed initialisation is remembered and returned to every later
//!   caller; espeak is never called again in that process.
//! * A [`Phonemizer`] is the lock guard. Selecting the voice and phonemizing under one guard is one
//!   atomic job, so no other thread can switch the voice in between. It is neither `Send` nor `Sync`.
//! * Every espeak return code is checked and turned into an [`EspeakError`].
//!
//! Limit: the lock lives in this crate's statics. Two copies of this crate in one process (two
//! plugins that each link it) have two locks but share espeak's single global state; only one
//! loaded plugin may use espeak until the host hands out the lock as a service.
//!
//! Sources: espeak-ng 1.51 `speak_lib.h` (as bound by `espeakng-sys` 0.3.0) and behaviour measured
//! against Debian 12's `libespeak-ng1` 1.51 (`docs/phonemizer.md` §2–3).
#![allow(unsafe_code)]

pub mod worker;

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use espeakng_sys as sys;

/// The espeak-ng release the fixtures and the phoneme post-processing were made with. 1.52 data
/// gives different vowels for some words (`kəkˈɔːɹoʊ` instead of `kəkˈoːɹoʊ`).
pub const SUPPORTED_VERSION: &str = "1.51";

/// Environment variable naming the data directory when [`EspeakConfig::data_path`] is not set.
/// It is espeak-ng's own variable; this crate checks it before espeak sees it, because espeak
/// silently falls back to its compiled-in default when the directory does not exist.
pub const DATA_PATH_ENV: &str = "ESPEAK_DATA_PATH";

/// `espeak_Initialize` option that makes a data-loading failure return an error instead of calling
/// `exit(1)`. Always set.
const INIT_DONT_EXIT: c_int = sys::espeakINITIALIZE_DONT_EXIT as c_int;

/// The file whose presence marks an espeak-ng data directory.
const DATA_MARKER: &str = "phontab";

/// Errors from espeak-ng or from using it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EspeakError {
    /// The configured data path has no espeak-ng data in it (espeak itself would silently fall
    /// back to its default, so this is checked first).
    #[error(
        "espeak-ng data not found under {path}: expected {path}/espeak-ng-data/{DATA_MARKER} or {path}/{DATA_MARKER}"
    )]
    DataPathInvalid { path: PathBuf },
    /// `espeak_Initialize` returned a sample rate ≤ 0. espeak is unusable for the rest of the
    /// process (calling it after a failed initialisation crashes).
    #[error("espeak_Initialize failed (returned {code}) with data path {data_path}")]
    InitFailed { code: i32, data_path: String },
    /// A second caller asked for a different data directory than the one espeak was
    /// initialised with; espeak can only be initialised once per process.
    #[error("espeak-ng is already initialised with data path {active}, not {requested}")]
    DataPathMismatch { active: String, requested: String },
    /// The library is not the release the phoneme post-processing was checked against.
    #[error(
        "espeak-ng {found} found, {SUPPORTED_VERSION} required (set EspeakConfig::allow_other_versions to use it anyway)"
    )]
    UnsupportedVersion { found: String },
    /// `espeak_SetVoiceByName` failed; espeak keeps the previous voice in that case.
    #[error("espeak_SetVoiceByName({name:?}) failed: {}", describe_status(*.code))]
    SetVoice { name: String, code: i32 },
    /// The text (or a voice name) contains a NUL character, which the C API cannot take.
    #[error("{what} contains a NUL character at byte {position}")]
    InteriorNul { what: &'static str, position: usize },
    /// `espeak_TextToPhonemes` returned bytes that are not UTF-8.
    #[error("espeak_TextToPhonemes returned invalid UTF-8: {lossy:?}")]
    InvalidUtf8 { lossy: String },
    /// `espeak_TextToPhonemes` did not advance through the text (guard against an endless loop).
    #[error("espeak_TextToPhonemes made no progress at byte {offset} of the text")]
    NoProgress { offset: usize },
    /// Phonemes were requested before any voice was selected.
    #[error("no espeak-ng voice selected")]
    NoVoice,
    /// The worker process ([`worker`]) cannot be started or did not start properly.
    #[error("the espeak-ng worker {} is unavailable: {detail}", executable.display())]
    WorkerUnavailable { executable: PathBuf, detail: String },
    /// The worker process died during the call (espeak-ng crashed on this text).
    #[error("espeak-ng crashed on this text ({detail}); the phonemizer was restarted")]
    WorkerCrashed { detail: String },
    /// The worker process overran the time limit of one call and was killed.
    #[error("espeak-ng did not finish within {millis} ms on this text; the phonemizer was restarted")]
    WorkerTimeout { millis: u64 },
    /// The worker sent something that is not a valid frame.
    #[error("the espeak-ng worker broke the protocol: {detail}")]
    WorkerProtocol { detail: String },
}

fn describe_status(code: i32) -> &'static str {
    match code {
        sys::espeak_ERROR_EE_OK => "EE_OK",
        sys::espeak_ERROR_EE_INTERNAL_ERROR => "EE_INTERNAL_ERROR",
        sys::espeak_ERROR_EE_BUFFER_FULL => "EE_BUFFER_FULL",
        sys::espeak_ERROR_EE_NOT_FOUND => "EE_NOT_FOUND (no voice of that name)",
        _ => "unknown espeak_ERROR",
    }
}

/// How espeak-ng is initialised. Only the first successful [`Phonemizer::lock`] in a process
/// initialises; later callers must ask for the same data path (or none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EspeakConfig {
    /// The directory that contains `espeak-ng-data` (or that directory itself). `None`: the
    /// [`DATA_PATH_ENV`] variable, else the library's compiled-in default (Debian:
    /// `/usr/lib/x86_64-linux-gnu/espeak-ng-data`).
    pub data_path: Option<PathBuf>,
    /// Accept an espeak-ng other than [`SUPPORTED_VERSION`] with a warning instead of refusing it.
    pub allow_other_versions: bool,
}

impl EspeakConfig {
    /// Uses `path` as the data directory (see [`EspeakConfig::data_path`]).
    #[must_use]
    pub fn with_data_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.data_path = Some(path.into());
        self
    }

    /// See [`EspeakConfig::allow_other_versions`].
    #[must_use]
    pub fn with_allow_other_versions(mut self, allow: bool) -> Self {
        self.allow_other_versions = allow;
        self
    }

    /// The explicitly requested data directory: the field, else [`DATA_PATH_ENV`].
    fn requested_path(&self) -> Option<PathBuf> {
        self.data_path.clone().or_else(|| {
            std::env::var_os(DATA_PATH_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }
}

/// What espeak-ng reported after initialisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspeakInfo {
    /// `espeak_Info`'s version string, e.g. `1.51`.
    pub version: String,
    /// The `espeak-ng-data` directory in use, as `espeak_Info` reports it.
    pub data_path: String,
    /// The synthesis sample rate `espeak_Initialize` returned (22050); unused for phonemes.
    pub sample_rate: i32,
}

/// `espeak_TextToPhonemes`'s `phonememode` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhonemeMode(i32);

impl PhonemeMode {
    /// IPA with no separator between phonemes (`0x02`): `həlˈoʊ`.
    pub const IPA: PhonemeMode = PhonemeMode(sys::espeakPHONEMES_IPA as i32);

    /// IPA with `tie` inside multi-letter phonemes (`0x02 | 0x80 | tie << 8`). With `'^'` this is
    /// mode `0x5E82`, what misaki's phonemizer ends up with: `həlˈo^ʊ`.
    pub const fn ipa_with_tie(tie: char) -> PhonemeMode {
        PhonemeMode((sys::espeakPHONEMES_IPA | sys::espeakPHONEMES_TIE) as i32 | ((tie as i32) << 8))
    }

    /// IPA with `separator` between phonemes (`0x02 | separator << 8`): `h_ə_l_ˈoʊ`.
    pub const fn ipa_with_separator(separator: char) -> PhonemeMode {
        PhonemeMode(sys::espeakPHONEMES_IPA as i32 | ((separator as i32) << 8))
    }

    /// The raw `phonememode` value.
    pub const fn bits(self) -> i32 {
        self.0
    }
}

/// Process-wide espeak-ng state, only ever touched under [`ENGINE`].
#[derive(Debug)]
struct Engine {
    /// `None` until the first initialisation attempt; then its outcome, forever.
    init: Option<Result<Initialised, EspeakError>>,
}

#[derive(Debug)]
struct Initialised {
    info: EspeakInfo,
    /// The voice last selected successfully, so an unchanged voice is not reloaded.
    voice: Option<String>,
}

static ENGINE: Mutex<Engine> = Mutex::new(Engine { init: None });

/// Exclusive access to the process's espeak-ng: the process lock, held until this value is
/// dropped. Keep it only for one job (select a voice, phonemize a text); every other thread that
/// needs espeak waits meanwhile.
///
/// Not `Send` (it is a [`MutexGuard`]) and not `Sync` (a marker), so it cannot leave the thread
/// that locked it or be shared.
#[derive(Debug)]
pub struct Phonemizer {
    guard: MutexGuard<'static, Engine>,
    _not_sync: PhantomData<Cell<()>>,
}

impl Phonemizer {
    /// Takes the process lock, blocking while another thread holds it, and initialises espeak-ng
    /// on the first call in the process.
    ///
    /// # Errors
    ///
    /// [`EspeakError::DataPathInvalid`] if the requested data directory holds no espeak-ng data;
    /// [`EspeakError::InitFailed`] if `espeak_Initialize` fails (now or in an earlier call: the
    /// outcome of the first initialisation is final); [`EspeakError::DataPathMismatch`] if espeak
    /// was initialised with another directory; [`EspeakError::UnsupportedVersion`] if the library
    /// is not 1.51 and `allow_other_versions` is off.
    pub fn lock(config: &EspeakConfig) -> Result<Phonemizer, EspeakError> {
        // A panic while the lock was held cannot have left espeak inside a call (FFI calls do
        // not unwind), so a poisoned lock still guards a consistent state.
        let mut guard = ENGINE.lock().unwrap_or_else(PoisonError::into_inner);
        let requested = match config.requested_path() {
            Some(path) => Some(resolve_data_path(&path)?),
            None => None,
        };
        let init = guard.init.get_or_insert_with(|| initialise(requested.as_deref()));
        let state = init.as_ref().map_err(Clone::clone)?;
        if let Some(requested) = &requested {
            let requested_data = requested_data_dir(requested);
            if Path::new(&state.info.data_path) != requested_data {
                return Err(EspeakError::DataPathMismatch {
                    active: state.info.data_path.clone(),
                    requested: requested_data.display().to_string(),
                });
            }
        }
        check_version(&state.info.version, config.allow_other_versions)?;
        Ok(Phonemizer {
            guard,
            _not_sync: PhantomData,
        })
    }

    /// Version, data path and sample rate of the initialised library.
    pub fn info(&self) -> &EspeakInfo {
        &self.state().info
    }

    fn state(&self) -> &Initialised {
        match &self.guard.init {
            Some(Ok(state)) => state,
            // `lock` only builds a Phonemizer after a successful initialisation.
            _ => unreachable!("Phonemizer exists only over an initialised engine"),
        }
    }

    fn state_mut(&mut self) -> &mut Initialised {
        match &mut self.guard.init {
            Some(Ok(state)) => state,
            _ => unreachable!("Phonemizer exists only over an initialised engine"),
        }
    }

    /// Selects the voice by name or identifier (`gmw/en-US`, `roa/fr`, `en-us`, `es`, …). The
    /// call is skipped when `name` is already the current voice.
    ///
    /// Debian's 1.51 does not know `en-gb` or `fr-fr`; use `gmw/en` and `roa/fr`.
    ///
    /// # C equivalent
    ///
    /// `espeak_SetVoiceByName(name)`.
    ///
    /// # Errors
    ///
    /// [`EspeakError::SetVoice`] with espeak's status (2 = not found); afterwards no voice counts
    /// as selected, so [`Phonemizer::text_to_phonemes`] fails until one is.
    pub fn set_voice(&mut self, name: &str) -> Result<(), EspeakError> {
        if self.state().voice.as_deref() == Some(name) {
            return Ok(());
        }
        let c_name = c_string(name, "voice name")?;
        // The voice state is about to change; until it succeeds, nothing is known to be selected.
        self.state_mut().voice = None;
        // SAFETY: espeak is initialised (a Phonemizer exists only then) and we hold the process
        // lock, so no other thread is inside espeak. `c_name` is a valid NUL-terminated string
        // that outlives the call; espeak copies what it keeps.
        let code = unsafe { sys::espeak_SetVoiceByName(c_name.as_ptr()) };
        if code != sys::espeak_ERROR_EE_OK {
            return Err(EspeakError::SetVoice {
                name: name.to_owned(),
                code,
            });
        }
        self.state_mut().voice = Some(name.to_owned());
        Ok(())
    }

    /// The voice selected by the last successful [`Phonemizer::set_voice`].
    pub fn voice(&self) -> Option<&str> {
        self.state().voice.as_deref()
    }

    /// Phonemizes `text` with the current voice, returning one string per clause as espeak splits
    /// them (at sentence ends, commas, colons, dashes, …; the clause punctuation itself is not
    /// returned). Empty clauses are kept as empty strings.
    ///
    /// # C equivalent
    ///
    /// `espeak_TextToPhonemes(&ptr, espeakCHARS_UTF8, mode)` in a loop while `ptr` is not NULL.
    ///
    /// # Errors
    ///
    /// [`EspeakError::NoVoice`] without a selected voice; [`EspeakError::InteriorNul`] if `text`
    /// contains NUL; [`EspeakError::InvalidUtf8`] or [`EspeakError::NoProgress`] if espeak
    /// misbehaves.
    pub fn text_to_phonemes(&mut self, text: &str, mode: PhonemeMode) -> Result<Vec<String>, EspeakError> {
        if self.state().voice.is_none() {
            return Err(EspeakError::NoVoice);
        }
        let c_text = c_string(text, "text")?;
        let start = c_text.as_ptr();
        let mut ptr: *const c_void = start.cast();
        let mut clauses = Vec::new();
        while !ptr.is_null() {
            let before = ptr;
            // SAFETY: espeak is initialised, a voice is selected, and we hold the process lock.
            // `ptr` points into `c_text` (NUL-terminated, alive until the end of this function):
            // initially its start, afterwards wherever espeak advanced it. espeak reads up to the
            // NUL and writes only `ptr` itself.
            let out =
                unsafe { sys::espeak_TextToPhonemes(&mut ptr, sys::espeakCHARS_UTF8 as c_int, mode.bits()) };
            clauses.push(copy_clause(out)?);
            if !ptr.is_null() && ptr == before {
                let offset = (ptr as usize).saturating_sub(start as usize);
                return Err(EspeakError::NoProgress { offset });
            }
        }
        Ok(clauses)
    }

    /// Every voice espeak-ng lists (`espeak_ListVoices(NULL)`), in its order: the voice files
    /// under `espeak-ng-data/voices` (MBROLA voices included; variants are not voices).
    ///
    /// # C equivalent
    ///
    /// `espeak_ListVoices(NULL)`.
    pub fn list_voices(&mut self) -> Vec<VoiceEntry> {
        // SAFETY: espeak is initialised and we hold the process lock. With a NULL spec espeak
        // returns its static, NULL-terminated array of voice pointers, valid until the next
        // espeak_ListVoices call, which cannot happen before the copies below finish.
        let list = unsafe { sys::espeak_ListVoices(std::ptr::null_mut()) };
        let mut voices = Vec::new();
        if list.is_null() {
            return voices;
        }
        for i in 0.. {
            // SAFETY: `list` is NULL-terminated; `i` never passes the terminator (loop ends there).
            let voice = unsafe { *list.add(i) };
            if voice.is_null() {
                break;
            }
            // SAFETY: a non-NULL entry points to a live espeak_VOICE in espeak's voice table.
            let v = unsafe { &*voice };
            voices.push(VoiceEntry {
                identifier: c_str_lossy(v.identifier),
                name: c_str_lossy(v.name),
                // SAFETY: `languages` is NULL or espeak's (priority byte, NUL-terminated name)*
                // list ended by an extra zero byte, as speak_lib.h documents.
                languages: unsafe { languages_of(v.languages) },
            });
        }
        voices
    }

    /// [`Phonemizer::set_voice`] then [`Phonemizer::text_to_phonemes`], under the one guard.
    ///
    /// # Errors
    ///
    /// Those of the two calls.
    pub fn phonemize(
        &mut self,
        voice: &str,
        text: &str,
        mode: PhonemeMode,
    ) -> Result<Vec<String>, EspeakError> {
        self.set_voice(voice)?;
        self.text_to_phonemes(text, mode)
    }
}

/// One voice as `espeak_ListVoices` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceEntry {
    /// The voice file's path under `espeak-ng-data/voices` (`gmw/en-US`), what
    /// `espeak_SetVoiceByName` accepts.
    pub identifier: String,
    /// The voice's given name (`English_(America)`).
    pub name: String,
    /// The languages it speaks, best first (`en-us`, `en`).
    pub languages: Vec<String>,
}

impl VoiceEntry {
    /// Whether the voice needs the MBROLA synthesiser (`mb/…`), which phonemization cannot use.
    pub fn is_mbrola(&self) -> bool {
        self.identifier.starts_with("mb/") || self.identifier.starts_with("mb-")
    }
}

/// Reads an `espeak_VOICE::languages` list.
///
/// # Safety
///
/// `p` is NULL or points to a sequence of (priority byte, NUL-terminated string) pairs ended by a
/// zero priority byte.
unsafe fn languages_of(p: *const c_char) -> Vec<String> {
    let mut out = Vec::new();
    if p.is_null() {
        return out;
    }
    let mut cursor = p;
    // Bounded: espeak's voices have a handful of languages each.
    for _ in 0..64 {
        // SAFETY: the caller guarantees the layout; `cursor` is at a priority byte.
        let priority = unsafe { *cursor };
        if priority == 0 {
            break;
        }
        // SAFETY: a language name follows the priority byte, NUL-terminated.
        let name = unsafe { CStr::from_ptr(cursor.add(1)) };
        let len = name.to_bytes().len();
        out.push(name.to_string_lossy().into_owned());
        // SAFETY: skip the priority byte, the name and its NUL: the next pair or the terminator.
        cursor = unsafe { cursor.add(len + 2) };
    }
    out
}

/// Copies the buffer `espeak_TextToPhonemes` returned; espeak overwrites it on the next call.
fn copy_clause(out: *const c_char) -> Result<String, EspeakError> {
    if out.is_null() {
        return Ok(String::new());
    }
    // SAFETY: a non-NULL result of espeak_TextToPhonemes is a NUL-terminated string in espeak's
    // static buffer, valid until the next espeak call, which cannot happen before the copy below
    // because the caller holds the process lock.
    let bytes = unsafe { CStr::from_ptr(out) }.to_bytes();
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(EspeakError::InvalidUtf8 {
            lossy: String::from_utf8_lossy(bytes).into_owned(),
        }),
    }
}

fn c_string(s: &str, what: &'static str) -> Result<CString, EspeakError> {
    CString::new(s).map_err(|e| EspeakError::InteriorNul {
        what,
        position: e.nul_position(),
    })
}

/// Checks that `path` holds espeak-ng data in one of the two layouts espeak accepts and returns
/// it unchanged.
fn resolve_data_path(path: &Path) -> Result<PathBuf, EspeakError> {
    if path.join("espeak-ng-data").join(DATA_MARKER).is_file() || path.join(DATA_MARKER).is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(EspeakError::DataPathInvalid {
            path: path.to_path_buf(),
        })
    }
}

/// The data directory espeak will report for an accepted `path`: espeak prefers
/// `path/espeak-ng-data` and otherwise takes `path` itself.
fn requested_data_dir(path: &Path) -> PathBuf {
    let nested = path.join("espeak-ng-data");
    if nested.join(DATA_MARKER).is_file() {
        nested
    } else {
        path.to_path_buf()
    }
}

fn check_version(version: &str, allow_other: bool) -> Result<(), EspeakError> {
    if is_supported_version(version) {
        return Ok(());
    }
    if allow_other {
        tracing::warn!(
            version,
            "espeak-ng {version} is not {SUPPORTED_VERSION}: phonemes may differ from the reference"
        );
        return Ok(());
    }
    Err(EspeakError::UnsupportedVersion {
        found: version.to_owned(),
    })
}

/// `1.51`, `1.51.x` or `1.51-suffix`.
fn is_supported_version(version: &str) -> bool {
    match version.strip_prefix(SUPPORTED_VERSION) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('-'),
        None => false,
    }
}

/// Runs `espeak_Initialize` once. `path` has been checked by [`resolve_data_path`]; `None` lets
/// espeak use its compiled-in default.
fn initialise(path: Option<&Path>) -> Result<Initialised, EspeakError> {
    let shown = path.map_or_else(|| "(library default)".to_owned(), |p| p.display().to_string());
    let c_path =
        match path {
            Some(p) => Some(CString::new(p.as_os_str().as_encoded_bytes()).map_err(|e| {
                EspeakError::InteriorNul {
                    what: "data path",
                    position: e.nul_position(),
                }
            })?),
            None => None,
        };
    let path_ptr = c_path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
    // SAFETY: called once per process (the caller stores the outcome under the process lock and
    // never calls again). `path_ptr` is NULL or a NUL-terminated string alive for the call.
    // espeakINITIALIZE_DONT_EXIT makes a data-loading failure return ≤ 0 instead of exit(1).
    let rate = unsafe {
        sys::espeak_Initialize(
            sys::espeak_AUDIO_OUTPUT_AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            path_ptr,
            INIT_DONT_EXIT,
        )
    };
    let mut data: *const c_char = std::ptr::null();
    // SAFETY: espeak_Info only reads two static strings (version, data path), set by the
    // initialisation above; `data` is a valid out-pointer. The strings are copied before the lock
    // is released.
    let version = unsafe { sys::espeak_Info(&mut data) };
    let version = c_str_lossy(version);
    let data_path = c_str_lossy(data);
    if rate <= 0 {
        tracing::error!(code = rate, data_path, "espeak_Initialize failed");
        return Err(EspeakError::InitFailed {
            code: rate,
            data_path: if data_path.is_empty() { shown } else { data_path },
        });
    }
    tracing::info!(version, data_path, "espeak-ng initialised");
    Ok(Initialised {
        info: EspeakInfo {
            version,
            data_path,
            sample_rate: rate,
        },
        voice: None,
    })
}

fn c_str_lossy(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: `p` is non-NULL and comes from espeak_Info, which returns pointers to NUL-terminated
    // static strings.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_check_accepts_only_1_51() {
        assert!(is_supported_version("1.51"));
        assert!(is_supported_version("1.51.1"));
        assert!(is_supported_version("1.51-dev"));
        assert!(!is_supported_version("1.510"));
        assert!(!is_supported_version("1.52"));
        assert!(!is_supported_version("1.52.0.1-dev"));
        assert!(check_version("1.52", true).is_ok());
        assert_eq!(
            check_version("1.52", false),
            Err(EspeakError::UnsupportedVersion { found: "1.52".into() })
        );
    }

    #[test]
    fn phoneme_modes_match_speak_lib_h() {
        assert_eq!(PhonemeMode::IPA.bits(), 0x02);
        assert_eq!(PhonemeMode::ipa_with_tie('^').bits(), 0x5E82);
        assert_eq!(PhonemeMode::ipa_with_tie('\u{361}').bits(), 0x0003_6182);
        assert_eq!(PhonemeMode::ipa_with_separator('_').bits(), 0x5F02);
    }

    #[test]
    fn data_path_without_data_is_refused() {
        let dir = std::env::temp_dir().join("tts-espeak-ng-no-data");
        std::fs::create_dir_all(&dir).expect("temp dir");
        assert_eq!(
            resolve_data_path(&dir),
            Err(EspeakError::DataPathInvalid { path: dir.clone() })
        );
        assert!(resolve_data_path(Path::new("/nonexistent/espeak")).is_err());
    }
}
