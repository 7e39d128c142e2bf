//! [`KokoroBackend`]: the Kokoro-82M engine behind tts-host's [`Backend`] trait.
//!
//! # Construction ([`KokoroBackend::new`])
//!
//! * `--model-path` (required): a Kokoro GGUF (`scripts/fetch-model` makes
//!   `models/kokoro-82m-f32.gguf`), opened and checked by [`KokoroModelFile::open`].
//! * **One copy of the weights per process.** The host builds `--n-parallelism` instances, each
//!   on its own thread; they share one [`KokoroWeights`] through a process-wide cache keyed by the
//!   model's canonical path (weak references, so the weights are freed with the last instance).
//!   Each instance has its own [`KokoroRunner`] (compute device and thread pool).
//! * `--n-threads`: the runner's CPU threads.
//! * `--use-metal`: refused by a build without the `metal` feature (`libkokoro_cpu`). With it
//!   (`libkokoro_metal.dylib`), the Metal device is opened through ggml's backend API
//!   (`tts_ggml::ComputeDevice::metal`) and the runner sends its graphs through ggml's scheduler
//!   over `[Metal, CPU]` ([`KokoroRunner::with_devices`]): ops Metal lacks, such as the LSTM
//!   custom op, run on the CPU. The weights stay in the mapped file (host memory). The scheduler
//!   path is tested here over the CPU alone (bit-identical audio); it has not run on Apple
//!   hardware.
//! * `--voice`: the default voice for requests without one (checked here; it may be a blend);
//!   otherwise the file's first voice (`jf_alpha` for `scripts/fetch-model`'s file).
//! * `--espeak-voice-id`: the phonemizer language for every request that names none, looked up
//!   in the closed set of [`crate::text::languages`] here (an unknown one stops start-up). The
//!   host also passes it as the request's language.
//! * espeak-ng is started here, so a missing data directory stops start-up with its path. It
//!   runs in a **worker process per instance** (`tts-espeak-worker`, [`tts_espeak_ng::worker`]):
//!   a crash or a hang inside espeak-ng on some text fails that request with a 500 and the next
//!   request gets a fresh worker; the server process never runs espeak's code. Each instance has
//!   its own worker, so instances phonemize in parallel. The worker is looked for beside the
//!   host binary (and one directory up), or named with `espeak_worker` / `TTS_ESPEAK_WORKER`.
//!
//! Backend options (`--backend-option key=value`; unknown keys are refused):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `espeak_data` | `$ESPEAK_DATA_PATH`, else the system's | directory containing `espeak-ng-data` |
//! | `espeak_worker` | `tts-espeak-worker` beside the host | the worker executable; `in-process` runs espeak-ng inside the server (no isolation: for tools and debugging) |
//! | `phonemizer_timeout_ms` | `10000` | time limit of one espeak-ng call in the worker; past it the worker is killed and the request fails |
//! | `normalize` | `true` | `false` turns English text normalisation off for every request (a request can only turn it off: the host sends `normalize: true` when a request says nothing) |
//! | `date_order` | `month-first` | `day-first` reads `3/4/2024` as the 3rd of April |
//! | `voice_weight_normalization` | `true` | `false` uses blend weights as written instead of dividing by their sum ([`crate::voice`]) |
//! | `first_chunk_tokens` | `100` | budget of the first chunk, for a quick first audio; `0` treats it like any other chunk |
//!
//! # Synthesis
//!
//! 1. The voice (a name or a blend, [`crate::voice`]) and the speed (`0.25..=4.0`, OpenAI's
//!    range) are checked before anything else.
//! 2. Language: the request's `language`/`lang_code` (or `--espeak-voice-id`) if given, looked
//!    up in the closed set ([`crate::text::languages`]: a Kokoro letter, a language code, or an
//!    espeak-ng voice id or language that espeak listed at start-up; anything else is
//!    [`ErrorKind::UnsupportedLanguage`], HTTP 400 on `language`). An espeak voice no Kokoro
//!    language claims gets the voice's language's post-processing. Otherwise the first letter of
//!    the (first) voice.
//! 3. English text is normalised (numbers, dates, symbols) unless switched off.
//! 4. The text is cut into chunks of at most 510 phoneme tokens, the first one short
//!    ([`crate::text::chunk`]); **every** chunk is phonemized (each piece bounded by
//!    [`crate::text::sanitize`] on its way to espeak) and mapped to token ids with the file's
//!    vocabulary before the first audio, so a failure anywhere in the text is an error response,
//!    never a cut body. Then each chunk is framed by the pad id, given the style row for its own
//!    token count and run through the runner. A chunk that would make more frames than one graph
//!    may hold (slow speeds stretch durations) is halved at a word boundary instead of failing.
//! 5. Each chunk's audio is pushed as soon as it exists. Chunks are joined by plain
//!    concatenation, as the reference `KPipeline` does: Kokoro renders a chunk's final
//!    punctuation as its pause and ends each utterance at rest, so nothing is inserted and no
//!    sample is changed (the output is sample-exact: the concatenation of the runner's outputs).
//! 6. Cancellation (the client left, or the deadline passed) is checked before each chunk and,
//!    through ggml's abort callback, between the nodes of every graph: the computation stops
//!    within one node (tens of milliseconds) of `is_cancelled` turning true. `Flow::Stop` ends the
//!    request at once.
//!
//! Chunks without a sound (only punctuation, symbols espeak does not read) are skipped; if no
//! chunk has one, the request fails with `InvalidInput` before any audio.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use tts_backend_api::{
    AudioSink, Backend, BackendConfig, BackendError, BackendInfo, ErrorKind, Flow, Gender, SynthesisRequest,
    VoiceInfo,
};
use tts_espeak_ng::worker::{locate_worker, Supervisor, WorkerSpec, WORKER_EXE};
use tts_espeak_ng::{EspeakConfig, EspeakError, Phonemizer as Espeak, VoiceEntry};

use crate::graph::{GraphError, KokoroWeights};
use crate::model_file::KokoroModelFile;
use crate::runner::KokoroRunner;
use crate::text::chunk::{ChunkOptions, Chunker, FIRST_CHUNK_TOKENS, MAX_TOKENS};
use crate::text::languages::{EspeakLanguages, ResolvedLanguage};
use crate::text::normalize::{normalize_english_with, DateOrder, NormalizeOptions};
use crate::text::phonemize::{KokoroPhonemizer, Language, PhonemizeError, Phonemized};
use crate::text::vocab::{Vocab, PAD_ID};
use crate::voice::{self, SelectError, StylePack, Weighting};

/// Output sample rate of Kokoro-82M.
pub const SAMPLE_RATE: u32 = 24_000;

/// Slowest and fastest speed accepted (OpenAI's range).
pub const SPEED_RANGE: std::ops::RangeInclusive<f32> = 0.25..=4.0;

/// The backend options this backend knows, with what they take.
const OPTIONS: [(&str, &str); 7] = [
    ("espeak_data", "a directory containing espeak-ng-data"),
    (
        "espeak_worker",
        "the tts-espeak-worker executable, or in-process (no isolation)",
    ),
    (
        "phonemizer_timeout_ms",
        "milliseconds one espeak-ng call may take in the worker (1..=600000)",
    ),
    ("normalize", "true or false"),
    ("date_order", "month-first or day-first"),
    ("voice_weight_normalization", "true or false"),
    (
        "first_chunk_tokens",
        "a whole number of tokens (0: no short first chunk)",
    ),
];

/// Per-instance settings from the configuration.
#[derive(Debug, Clone)]
struct Settings {
    espeak: EspeakConfig,
    /// Where espeak-ng runs.
    isolation: Isolation,
    phonemizer_timeout: std::time::Duration,
    espeak_voice_id: Option<String>,
    default_voice: String,
    normalize: bool,
    date_order: DateOrder,
    weighting: Weighting,
    chunk: ChunkOptions,
}

/// Where espeak-ng runs for this backend.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Isolation {
    /// In a supervised worker process per instance (the default): this executable, or found by
    /// [`locate_worker`] when `None`.
    Worker(Option<PathBuf>),
    /// In this process, behind the process-wide lock: no protection from espeak's crashes.
    InProcess,
}

/// This instance's espeak-ng.
#[derive(Debug)]
enum Phonemizers {
    /// Its own worker process; one call at a time (the host runs one request per instance).
    Worker(Box<Mutex<Supervisor>>),
    /// This process's espeak-ng.
    InProcess,
}

impl Phonemizers {
    fn phonemize(&self, phonemizer: &KokoroPhonemizer, text: &str) -> Result<Phonemized, PhonemizeError> {
        match self {
            Phonemizers::Worker(worker) => {
                let mut worker = worker.lock().unwrap_or_else(PoisonError::into_inner);
                phonemizer.phonemize_in(&mut worker, text)
            }
            Phonemizers::InProcess => phonemizer.phonemize(text),
        }
    }
}

/// The Kokoro-82M backend; see the module docs.
#[derive(Debug)]
pub struct KokoroBackend {
    /// espeak-ng, isolated or not.
    espeak: Phonemizers,
    /// The languages a request may name, from espeak-ng's own voice list.
    languages: EspeakLanguages,
    /// `--espeak-voice-id`, resolved at start-up.
    default_language: Option<ResolvedLanguage>,
    weights: Arc<KokoroWeights>,
    /// The host runs one request per instance at a time; the lock only serialises direct callers
    /// that share an instance between threads (one compute device cannot run two graphs at once).
    runner: Mutex<KokoroRunner>,
    vocab: Vocab,
    settings: Settings,
    model_path: PathBuf,
}

/// The process-wide weight cache: canonical model path → the weights the live instances share.
static SHARED_WEIGHTS: LazyLock<Mutex<HashMap<PathBuf, Weak<KokoroWeights>>>> =
    LazyLock::new(Default::default);

/// The weights of the model at `path` (canonical), loaded once per process and shared while any
/// instance holds them. Holds the cache lock while loading, so instances constructed at the same
/// time wait for one load instead of making their own. Returns whether this call loaded them.
fn shared_weights(path: &Path) -> Result<(Arc<KokoroWeights>, bool), BackendError> {
    let mut cache = SHARED_WEIGHTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(weights) = cache.get(path).and_then(Weak::upgrade) {
        return Ok((weights, false));
    }
    let file = KokoroModelFile::open(path).map_err(|e| {
        BackendError::invalid_config(format!("{} is not a usable Kokoro model: {e}", path.display()))
    })?;
    // The weights wrap the mapped file in host memory; the CPU device only types the buffer and
    // is not borrowed by them.
    let device = tts_ggml::ComputeDevice::cpu(1)
        .map_err(|e| BackendError::internal(format!("cannot open ggml's CPU device: {e}")))?;
    let weights = Arc::new(KokoroWeights::load(file, &device).map_err(|e| {
        BackendError::invalid_config(format!("cannot load the weights of {}: {e}", path.display()))
    })?);
    cache.retain(|_, w| w.strong_count() > 0);
    cache.insert(path.to_path_buf(), Arc::downgrade(&weights));
    Ok((weights, true))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, BackendError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(BackendError::invalid_config(format!(
            "--backend-option {key}={value}: expected true or false"
        ))),
    }
}

/// Reads the backend options (see the module docs).
fn parse_options(config: &BackendConfig) -> Result<Settings, BackendError> {
    if let Some(unknown) = config
        .options
        .keys()
        .find(|k| !OPTIONS.iter().any(|(known, _)| known == k))
    {
        let known: Vec<String> = OPTIONS.iter().map(|(k, what)| format!("{k} ({what})")).collect();
        return Err(BackendError::invalid_config(format!(
            "unknown --backend-option '{unknown}' for the Kokoro backend; it knows: {}",
            known.join(", ")
        )));
    }
    let mut espeak = EspeakConfig::default();
    if let Some(dir) = config.option("espeak_data") {
        espeak = espeak.with_data_path(dir);
    }
    let isolation = match config.option("espeak_worker").as_deref().map(str::trim) {
        None | Some("") => Isolation::Worker(None),
        Some("in-process") => Isolation::InProcess,
        Some(path) => Isolation::Worker(Some(PathBuf::from(path))),
    };
    let phonemizer_timeout = match config.option("phonemizer_timeout_ms") {
        None => std::time::Duration::from_secs(10),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(ms @ 1..=600_000) => std::time::Duration::from_millis(ms),
            _ => {
                return Err(BackendError::invalid_config(format!(
                    "--backend-option phonemizer_timeout_ms={v}: expected a whole number of milliseconds \
                     in 1..=600000"
                )))
            }
        },
    };
    let normalize = match config.option("normalize") {
        Some(v) => parse_bool("normalize", &v)?,
        None => true,
    };
    let weighting = match config.option("voice_weight_normalization") {
        Some(v) if !parse_bool("voice_weight_normalization", &v)? => Weighting::Raw,
        _ => Weighting::Normalized,
    };
    let date_order = match config.option("date_order").as_deref().map(str::trim) {
        None | Some("month-first") => DateOrder::MonthFirst,
        Some("day-first") => DateOrder::DayFirst,
        Some(other) => {
            return Err(BackendError::invalid_config(format!(
                "--backend-option date_order={other}: expected month-first or day-first"
            )))
        }
    };
    let first_chunk_tokens = match config.option("first_chunk_tokens") {
        None => FIRST_CHUNK_TOKENS,
        Some(v) => v.trim().parse::<usize>().map_err(|_| {
            BackendError::invalid_config(format!(
                "--backend-option first_chunk_tokens={v}: expected a whole number"
            ))
        })?,
    };
    Ok(Settings {
        espeak,
        isolation,
        phonemizer_timeout,
        espeak_voice_id: config
            .espeak_voice_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        default_voice: String::new(),
        normalize,
        date_order,
        weighting,
        chunk: ChunkOptions {
            max_tokens: MAX_TOKENS,
            first_chunk_tokens,
        },
    })
}

/// `--use-metal` in a build without Metal: refused; otherwise no accelerator.
#[cfg(not(feature = "metal"))]
fn check_device(config: &BackendConfig) -> Result<Option<tts_ggml::ComputeDevice>, BackendError> {
    if config.use_metal {
        return Err(BackendError::invalid_config(
            "--use-metal: this build of the Kokoro plugin (libkokoro_cpu) has no Metal support; on macOS \
             build the Metal plugin (cargo build --release -p tts-backend-kokoro-metal) and load \
             libkokoro_metal.dylib, or drop --use-metal",
        ));
    }
    Ok(None)
}

/// `--use-metal` in the Metal build: the Metal device, opened through ggml's backend API; the
/// runner then schedules its graphs over `[Metal, CPU]`.
#[cfg(feature = "metal")]
fn check_device(config: &BackendConfig) -> Result<Option<tts_ggml::ComputeDevice>, BackendError> {
    if !config.use_metal {
        return Ok(None);
    }
    let device = tts_ggml::ComputeDevice::metal().map_err(|e| {
        BackendError::invalid_config(format!("--use-metal: no Metal device is available: {e}"))
    })?;
    Ok(Some(device))
}

/// Maps a phonemizer failure to the error kind the client should see.
fn phonemize_error(e: PhonemizeError) -> BackendError {
    let PhonemizeError::Espeak(e) = e;
    match e {
        EspeakError::SetVoice { name, .. } => BackendError::invalid_input(format!(
            "espeak-ng has no voice '{name}' (from the request's language or --espeak-voice-id); use a \
             Kokoro lang code (a b e f h i j p z), a language code (en-us, en-gb, es, fr-fr, hi, it, ja, \
             pt-br, cmn) or an espeak-ng voice id"
        )),
        EspeakError::InteriorNul { .. } => BackendError::invalid_input("the text contains a NUL character"),
        e @ (EspeakError::WorkerCrashed { .. } | EspeakError::WorkerTimeout { .. }) => {
            BackendError::internal(format!("phonemizing this text failed: {e}"))
        }
        e @ EspeakError::WorkerUnavailable { .. } => {
            BackendError::unavailable(format!("the phonemizer is unavailable: {e}"))
        }
        e @ (EspeakError::DataPathInvalid { .. }
        | EspeakError::InitFailed { .. }
        | EspeakError::DataPathMismatch { .. }
        | EspeakError::UnsupportedVersion { .. }) => {
            BackendError::unavailable(format!("espeak-ng is unavailable: {e}"))
        }
        other => BackendError::internal(format!("phonemization failed: {other}")),
    }
}

fn select_error(e: SelectError) -> BackendError {
    match e {
        SelectError::Unknown { voice, available } => {
            BackendError::unknown_voice(&voice, available.iter().map(String::as_str))
        }
        // A malformed blend is a voice that does not exist: the host names `voice` as the field.
        e @ SelectError::Syntax { .. } => BackendError::new(ErrorKind::UnknownVoice, e.to_string()),
        SelectError::Internal(message) => BackendError::internal(message),
    }
}

/// BCP 47 tag of a Kokoro language.
fn bcp47(language: Language) -> &'static str {
    match language {
        Language::AmericanEnglish => "en-US",
        Language::BritishEnglish => "en-GB",
        Language::Spanish => "es",
        Language::French => "fr-FR",
        Language::Hindi => "hi",
        Language::Italian => "it",
        Language::Japanese => "ja",
        Language::BrazilianPortuguese => "pt-BR",
        Language::Mandarin => "zh",
    }
}

fn is_english(language: Language) -> bool {
    matches!(language, Language::AmericanEnglish | Language::BritishEnglish)
}

/// What the voice list says about a Kokoro voice name (`jf_alpha`: Japanese, female, "Alpha").
fn voice_info(id: &str) -> VoiceInfo {
    let mut chars = id.chars();
    let (first, second) = (chars.next(), chars.next());
    let rest = id.split_once('_').map_or(id, |(_, name)| name);
    let mut name: String = rest.chars().take(1).flat_map(char::to_uppercase).collect();
    name.extend(rest.chars().skip(1));
    let mut info = VoiceInfo::new(id).with_name(if name.is_empty() { id.to_owned() } else { name });
    if let Some(language) = first.and_then(Language::from_letter) {
        info = info.with_language(bcp47(language));
    }
    match second {
        Some('f') => info.with_gender(Gender::Female),
        Some('m') => info.with_gender(Gender::Male),
        _ => info,
    }
}

/// A chunk's token ids and whether it has anything to say.
#[derive(Debug)]
struct Tokens {
    ids: Vec<u32>,
    speakable: bool,
}

/// A sound, as opposed to punctuation, spaces, stress and length marks.
fn is_sound(c: char) -> bool {
    c.is_alphabetic() && !matches!(c, 'ˈ' | 'ˌ' | 'ː')
}

/// Phonemizes chunk candidates for the chunker and keeps the results, so the chunk finally taken
/// is not phonemized twice. A phonemizer error is kept (the chunker's counter cannot fail) and
/// returned by [`Tokenizer::take`].
struct Tokenizer<'a> {
    espeak: &'a Phonemizers,
    phonemizer: &'a KokoroPhonemizer,
    vocab: &'a Vocab,
    cache: RefCell<HashMap<String, Rc<Tokens>>>,
    error: RefCell<Option<PhonemizeError>>,
}

impl Tokenizer<'_> {
    fn tokens(&self, text: &str) -> Result<Rc<Tokens>, PhonemizeError> {
        if let Some(tokens) = self.cache.borrow().get(text) {
            return Ok(Rc::clone(tokens));
        }
        let phonemes = self.espeak.phonemize(self.phonemizer, text)?.phonemes;
        let ids = self.vocab.encode(&phonemes).ids;
        let speakable = phonemes
            .chars()
            .any(|c| is_sound(c) && self.vocab.id(c).is_some());
        let tokens = Rc::new(Tokens { ids, speakable });
        self.cache
            .borrow_mut()
            .insert(text.to_owned(), Rc::clone(&tokens));
        Ok(tokens)
    }

    /// The chunker's token counter.
    fn count(&self, text: &str) -> usize {
        match self.tokens(text) {
            Ok(tokens) => tokens.ids.len(),
            Err(e) => {
                self.error.borrow_mut().get_or_insert(e);
                0
            }
        }
    }

    /// The tokens of the chunk the chunker chose; forgets the other candidates.
    fn take(&self, text: &str) -> Result<Rc<Tokens>, PhonemizeError> {
        if let Some(e) = self.error.borrow_mut().take() {
            return Err(e);
        }
        let tokens = self.tokens(text)?;
        self.cache.borrow_mut().clear();
        Ok(tokens)
    }
}

impl KokoroBackend {
    /// Builds an instance from the host's configuration (see the module docs).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] with a message for the operator: no `--model-path`, a file
    /// that is not a Kokoro model, an unknown default voice or espeak voice, bad backend options,
    /// espeak-ng not usable, `--use-metal` without Metal.
    pub fn new(config: BackendConfig) -> Result<Self, BackendError> {
        let mut settings = parse_options(&config)?;
        let Some(model_path) = config.model_path.as_deref() else {
            return Err(BackendError::invalid_config(
                "the Kokoro backend needs a model file: pass --model-path models/kokoro-82m-f32.gguf \
                 (scripts/fetch-model downloads and converts it)",
            ));
        };
        let model_path = std::fs::canonicalize(model_path).map_err(|e| {
            BackendError::invalid_config(format!(
                "--model-path {}: {e} (scripts/fetch-model makes models/kokoro-82m-f32.gguf)",
                model_path.display()
            ))
        })?;
        let accelerator = check_device(&config)?;

        // espeak-ng: start it now (its worker, or this process's library), so a broken
        // installation stops start-up, and learn the voices it has: the closed set of languages.
        let (espeak, voices) = start_espeak(&settings)?;
        let languages = EspeakLanguages::new(&voices);
        let default_language = match &settings.espeak_voice_id {
            None => None,
            Some(id) => Some(
                languages
                    .resolve(id)
                    .map_err(|e| BackendError::invalid_config(format!("--espeak-voice-id: {e}")))?,
            ),
        };

        let (weights, loaded) = shared_weights(&model_path)?;
        let model = weights.file();
        let vocab = Vocab::from_tokens(model.vocab()).map_err(|e| {
            BackendError::invalid_config(format!(
                "{}: the vocabulary is not usable: {e}",
                model_path.display()
            ))
        })?;
        settings.default_voice = match config.voice.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => {
                voice::select(model, v, settings.weighting).map_err(|e| {
                    BackendError::invalid_config(format!("--voice {v}: {}", select_error(e).message))
                })?;
                v.to_owned()
            }
            _ => model
                .voice_names()
                .next()
                .map(str::to_owned)
                .ok_or_else(|| BackendError::invalid_config("the model file has no voices"))?,
        };
        let runner = match accelerator {
            None => KokoroRunner::new(Arc::clone(&weights), config.n_threads),
            Some(device) => KokoroRunner::with_devices(Arc::clone(&weights), config.n_threads, Some(device)),
        }
        .map_err(|e| BackendError::invalid_config(format!("--n-threads {}: {e}", config.n_threads)))?;
        tracing::info!(
            model = %model_path.display(),
            weights = if loaded { "loaded" } else { "shared" },
            voices = model.voice_names().count(),
            default_voice = %settings.default_voice,
            n_threads = config.n_threads,
            device = %runner.device_name(),
            instance = config.instance,
            "kokoro backend ready"
        );
        Ok(Self {
            espeak,
            languages,
            default_language,
            weights,
            runner: Mutex::new(runner),
            vocab,
            settings,
            model_path,
        })
    }

    /// The shared weights (the same `Arc` for every instance over one model file).
    pub fn weights(&self) -> &Arc<KokoroWeights> {
        &self.weights
    }

    /// The model file.
    pub fn model(&self) -> &KokoroModelFile {
        self.weights.file()
    }

    /// The canonical path of the model file.
    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// The voice used when a request names none.
    pub fn default_voice(&self) -> &str {
        &self.settings.default_voice
    }

    /// The phonemizer for a request, and whether its text is English (normalised): the
    /// request's language (checked against the closed set), else `--espeak-voice-id`, else the
    /// voice's language.
    fn phonemizer(
        &self,
        request_language: Option<&str>,
        voice: &str,
    ) -> Result<(KokoroPhonemizer, bool), BackendError> {
        let voice_language = Language::from_voice_name(voice);
        let requested = match request_language.map(str::trim).filter(|l| !l.is_empty()) {
            Some(code) => Some(
                self.languages
                    .resolve(code)
                    .map_err(BackendError::unsupported_language)?,
            ),
            None => self.default_language.clone(),
        };
        let (phonemizer, language) = match requested {
            None => {
                let espeak_voice = voice_language.espeak_voice();
                if self.languages.resolve(espeak_voice).is_err() {
                    return Err(BackendError::unsupported_language(format!(
                        "the voice's language ({}) needs the espeak-ng voice {espeak_voice}, which \
                         this server's espeak-ng data does not have; name another language",
                        voice_language.code()
                    )));
                }
                (KokoroPhonemizer::new(voice_language), voice_language)
            }
            Some(ResolvedLanguage {
                espeak_voice,
                language: Some(language),
            }) => (
                KokoroPhonemizer::new(language).with_espeak_voice(espeak_voice),
                language,
            ),
            Some(ResolvedLanguage {
                espeak_voice,
                language: None,
            }) => (
                KokoroPhonemizer::new(voice_language).with_espeak_voice(espeak_voice),
                voice_language,
            ),
        };
        Ok((
            phonemizer.with_espeak_config(self.settings.espeak.clone()),
            is_english(language),
        ))
    }

    /// Runs one chunk's token ids through the graph; stops within one ggml node when `abort`
    /// turns true (then `Ok(None)`).
    fn run_chunk(
        &self,
        tokens: &[u32],
        pack: &StylePack<'_>,
        speed: f32,
        abort: &dyn Fn() -> bool,
    ) -> Result<Option<Vec<f32>>, BackendError> {
        if tokens.len() > MAX_TOKENS {
            return Err(BackendError::too_long(format!(
                "a piece of the text has {} phoneme tokens; Kokoro reads at most {MAX_TOKENS}",
                tokens.len()
            )));
        }
        let pad = PAD_ID as i32;
        let mut ids = Vec::with_capacity(tokens.len() + 2);
        ids.push(pad);
        // Vocabulary ids are below the vocabulary size (178), far inside i32.
        ids.extend(tokens.iter().map(|&id| id as i32));
        ids.push(pad);
        let ref_s = pack.ref_s(tokens.len());
        let runner = self.runner.lock().unwrap_or_else(PoisonError::into_inner);
        match runner.synthesize_until(&ids, &ref_s, speed, abort) {
            Ok(synthesis) => Ok(Some(synthesis.audio)),
            Err(GraphError::Aborted) => Ok(None),
            Err(GraphError::TooLong(msg)) => Err(BackendError::too_long(msg)),
            Err(other) => Err(BackendError::internal(format!(
                "Kokoro synthesis failed: {other}"
            ))),
        }
    }

    /// Speaks `tokens`, halving them at a word boundary (recursively, up to [`MAX_SPLITS`]
    /// times) when they would make more frames than one graph may hold: slow speeds stretch the
    /// durations, so a chunk that fits at speed 1 may not fit at 0.25. Returns
    /// [`Flow::Stop`] when the request was cancelled or the client went away.
    fn speak(
        &self,
        tokens: &[u32],
        pack: &StylePack<'_>,
        speed: f32,
        sink: &mut dyn AudioSink,
        depth: usize,
    ) -> Result<Flow, BackendError> {
        let result = {
            let sink_ref: &dyn AudioSink = sink;
            let abort = || sink_ref.is_cancelled();
            self.run_chunk(tokens, pack, speed, &abort)
        };
        match result {
            Ok(None) => Ok(Flow::Stop),
            Ok(Some(audio)) => {
                if sink.is_cancelled() {
                    return Ok(Flow::Stop);
                }
                if audio.is_empty() {
                    return Ok(Flow::Continue);
                }
                Ok(sink.push(&audio))
            }
            Err(e) if e.kind == ErrorKind::TooLong && depth < MAX_SPLITS && tokens.len() >= 2 => {
                let (left, right) = split_tokens(tokens, self.vocab.id(' '));
                tracing::debug!(
                    tokens = tokens.len(),
                    left = left.len(),
                    speed,
                    "a chunk is too long for one graph at this speed; halving it"
                );
                if self.speak(left, pack, speed, sink, depth + 1)? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
                self.speak(right, pack, speed, sink, depth + 1)
            }
            Err(e) if e.kind == ErrorKind::TooLong => Err(BackendError::too_long(format!(
                "{}: speak this text faster or in shorter sentences",
                e.message
            ))),
            Err(e) => Err(e),
        }
    }
}

/// How many times one chunk may be halved to fit a graph.
const MAX_SPLITS: usize = 6;

/// Cuts token ids into two halves at the space token nearest the middle (the space itself is
/// dropped: each half is its own utterance), or in the middle when there is no space.
fn split_tokens(tokens: &[u32], space: Option<u32>) -> (&[u32], &[u32]) {
    let mid = tokens.len() / 2;
    let at = space.and_then(|sp| {
        tokens
            .iter()
            .enumerate()
            .filter(|&(i, &t)| t == sp && i > 0 && i + 1 < tokens.len())
            .min_by_key(|&(i, _)| i.abs_diff(mid))
            .map(|(i, _)| i)
    });
    match at {
        Some(i) => (&tokens[..i], &tokens[i + 1..]),
        None => tokens.split_at(mid.max(1)),
    }
}

/// Starts this instance's espeak-ng as the settings say and reads its voice list.
fn start_espeak(settings: &Settings) -> Result<(Phonemizers, Vec<VoiceEntry>), BackendError> {
    match &settings.isolation {
        Isolation::InProcess => {
            tracing::warn!(
                "espeak-ng runs inside the server process (espeak_worker=in-process): a crash in \
                 espeak-ng on some text takes the whole server down"
            );
            let mut espeak = Espeak::lock(&settings.espeak)
                .map_err(|e| BackendError::invalid_config(format!("espeak-ng cannot be used: {e}")))?;
            let voices = espeak.list_voices();
            Ok((Phonemizers::InProcess, voices))
        }
        Isolation::Worker(path) => {
            let executable = match path {
                Some(p) => p.clone(),
                None => locate_worker().map_err(|looked| {
                    let looked: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
                    BackendError::invalid_config(format!(
                        "the espeak-ng worker {WORKER_EXE} was not found (looked at: {}); build it \
                         with `cargo build -p tts-backend-kokoro --bin {WORKER_EXE}` (it belongs \
                         beside tts-host), or name it with --backend-option espeak_worker=PATH or \
                         TTS_ESPEAK_WORKER",
                        if looked.is_empty() {
                            "nowhere".to_owned()
                        } else {
                            looked.join(", ")
                        }
                    ))
                })?,
            };
            let spec = WorkerSpec::new(executable, settings.espeak.clone())
                .with_timeout(settings.phonemizer_timeout);
            let worker = Supervisor::start(spec)
                .map_err(|e| BackendError::invalid_config(format!("espeak-ng cannot be used: {e}")))?;
            let voices = worker.voices().to_vec();
            Ok((Phonemizers::Worker(Box::new(Mutex::new(worker))), voices))
        }
    }
}

impl Backend for KokoroBackend {
    fn info(&self) -> BackendInfo {
        let file = self
            .model_path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        BackendInfo {
            name: "kokoro".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            sample_rate: SAMPLE_RATE,
            languages: Language::ALL.into_iter().map(|l| bcp47(l).to_owned()).collect(),
            description: format!(
                "Kokoro-82M ({file}, {} voices) on ggml {} with espeak-ng",
                self.model().voice_names().count(),
                tts_ggml::GGML_VERSION
            ),
        }
    }

    fn voices(&self) -> Vec<VoiceInfo> {
        self.model().voice_names().map(voice_info).collect()
    }

    fn synthesize(&self, request: &SynthesisRequest, sink: &mut dyn AudioSink) -> Result<(), BackendError> {
        let voice = match request.voice.trim() {
            "" => self.settings.default_voice.as_str(),
            v => v,
        };
        let (blend, pack) =
            voice::select(self.model(), voice, self.settings.weighting).map_err(select_error)?;
        let speed = request.speed;
        if !(speed.is_finite() && SPEED_RANGE.contains(&speed)) {
            return Err(BackendError::invalid_input(format!(
                "speed {speed} is outside {}..={}",
                SPEED_RANGE.start(),
                SPEED_RANGE.end()
            )));
        }
        let (phonemizer, english) = self.phonemizer(request.language.as_deref(), blend.first_voice())?;
        let text = if english {
            normalize_english_with(
                &request.text,
                &NormalizeOptions {
                    enabled: request.normalize && self.settings.normalize,
                    date_order: self.settings.date_order,
                    ..NormalizeOptions::default()
                },
            )
        } else {
            request.text.clone()
        };

        // Phonemize the whole text before the first audio, so that anything in it that fails
        // (espeak on some piece) is an error response rather than a cut body.
        let tokenizer = Tokenizer {
            espeak: &self.espeak,
            phonemizer: &phonemizer,
            vocab: &self.vocab,
            cache: RefCell::new(HashMap::new()),
            error: RefCell::new(None),
        };
        let mut plan = Vec::new();
        for chunk in Chunker::new(&text, |t: &str| tokenizer.count(t), self.settings.chunk) {
            if sink.is_cancelled() {
                return Ok(());
            }
            let tokens = tokenizer.take(chunk.text).map_err(phonemize_error)?;
            if tokens.speakable {
                plan.push(tokens);
            } else {
                tracing::debug!(
                    chunk = %tts_backend_api::quote(chunk.text),
                    "skipping a chunk with nothing to say"
                );
            }
        }
        if plan.is_empty() {
            return Err(BackendError::invalid_input("the text has nothing to speak"));
        }
        for tokens in plan {
            if sink.is_cancelled() {
                return Ok(());
            }
            if self.speak(&tokens.ids, &pack, speed, sink, 0)? == Flow::Stop {
                return Ok(());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(options: &[(&str, &str)]) -> BackendConfig {
        let mut config = BackendConfig::default();
        for (k, v) in options {
            config.options.insert((*k).into(), (*v).into());
        }
        config
    }

    #[test]
    fn options_are_read_and_checked() {
        let s = parse_options(&config(&[])).unwrap();
        assert!(s.normalize);
        assert_eq!(s.weighting, Weighting::Normalized);
        assert_eq!(s.date_order, DateOrder::MonthFirst);
        assert_eq!(s.chunk, ChunkOptions::default());
        assert_eq!(s.espeak, EspeakConfig::default());

        let s = parse_options(&config(&[
            ("normalize", "off"),
            ("voice_weight_normalization", "false"),
            ("date_order", "day-first"),
            ("first_chunk_tokens", "0"),
            ("espeak_data", "/opt/espeak"),
        ]))
        .unwrap();
        assert!(!s.normalize);
        assert_eq!(s.weighting, Weighting::Raw);
        assert_eq!(s.date_order, DateOrder::DayFirst);
        assert_eq!(s.chunk.first_chunk_tokens, 0);
        assert_eq!(s.espeak.data_path.as_deref(), Some(Path::new("/opt/espeak")));

        for (k, v, needle) in [
            ("normalize", "maybe", "normalize=maybe"),
            ("date_order", "ymd", "date_order=ymd"),
            ("first_chunk_tokens", "-1", "first_chunk_tokens=-1"),
            ("speed", "2", "unknown --backend-option 'speed'"),
        ] {
            let e = parse_options(&config(&[(k, v)])).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidConfig);
            assert!(e.message.contains(needle), "{}", e.message);
        }
        // The unknown-key message lists what is known.
        let e = parse_options(&config(&[("speed", "2")])).unwrap_err();
        assert!(e.message.contains("espeak_data") && e.message.contains("normalize"));
    }

    #[test]
    fn a_missing_model_path_names_fetch_model() {
        let e = KokoroBackend::new(BackendConfig::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidConfig);
        assert!(e.message.contains("--model-path"), "{}", e.message);
        assert!(e.message.contains("scripts/fetch-model"), "{}", e.message);

        let e = KokoroBackend::new(BackendConfig {
            model_path: Some("/nonexistent/kokoro.gguf".into()),
            ..BackendConfig::default()
        })
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidConfig);
        assert!(e.message.contains("/nonexistent/kokoro.gguf"), "{}", e.message);
        assert!(e.message.contains("scripts/fetch-model"), "{}", e.message);
    }

    #[cfg(not(feature = "metal"))]
    #[test]
    fn use_metal_is_refused_without_the_metal_feature() {
        let e = check_device(&BackendConfig {
            use_metal: true,
            ..BackendConfig::default()
        })
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidConfig);
        assert!(e.message.contains("libkokoro_metal.dylib"), "{}", e.message);
        assert!(check_device(&BackendConfig::default()).is_ok());
    }

    #[test]
    fn voice_info_reads_the_name() {
        let v = voice_info("jf_alpha");
        assert_eq!(v.id, "jf_alpha");
        assert_eq!(v.name, "Alpha");
        assert_eq!(v.language.as_deref(), Some("ja"));
        assert_eq!(v.gender, Some(Gender::Female));
        let v = voice_info("am_michael");
        assert_eq!(
            (v.name.as_str(), v.language.as_deref()),
            ("Michael", Some("en-US"))
        );
        assert_eq!(v.gender, Some(Gender::Male));
        let v = voice_info("xq");
        assert_eq!((v.name.as_str(), v.language, v.gender), ("Xq", None, None));
    }

    #[test]
    fn errors_map_to_the_right_kinds() {
        let e = phonemize_error(PhonemizeError::Espeak(EspeakError::SetVoice {
            name: "xx".into(),
            code: 2,
        }));
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(e.message.contains("'xx'"), "{}", e.message);
        let e = phonemize_error(PhonemizeError::Espeak(EspeakError::InteriorNul {
            what: "text",
            position: 3,
        }));
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        let e = phonemize_error(PhonemizeError::Espeak(EspeakError::InitFailed {
            code: -1,
            data_path: "/x".into(),
        }));
        assert_eq!(e.kind, ErrorKind::Unavailable);
        let e = phonemize_error(PhonemizeError::Espeak(EspeakError::NoVoice));
        assert_eq!(e.kind, ErrorKind::Internal);

        let e = select_error(SelectError::Unknown {
            voice: "x".into(),
            available: vec!["a".into()],
        });
        assert_eq!(e, BackendError::unknown_voice("x", ["a"]));
        let e = select_error(SelectError::Syntax {
            expression: "a+".into(),
            error: voice::BlendError::EmptyTerm { op: '+', position: 1 },
            available: vec!["a".into()],
        });
        assert_eq!(e.kind, ErrorKind::UnknownVoice);
    }

    #[test]
    fn split_tokens_cuts_at_the_space_nearest_the_middle() {
        let sp = 16;
        // "ab cd efgh" as ids: spaces at 2 and 5; the middle is 5.
        let ids = [1, 2, sp, 3, 4, sp, 5, 6, 7, 8];
        assert_eq!(split_tokens(&ids, Some(sp)), (&ids[..5], &ids[6..]));
        // No space: the middle.
        let ids = [1, 2, 3, 4, 5];
        assert_eq!(split_tokens(&ids, Some(sp)), (&ids[..2], &ids[2..]));
        // A space only at the edges is not a cut point; never an empty half.
        let ids = [sp, 1, sp];
        let (l, r) = split_tokens(&ids, Some(sp));
        assert!(!l.is_empty() && !r.is_empty());
        let ids = [7, 8];
        assert_eq!(split_tokens(&ids, None), (&ids[..1], &ids[1..]));
    }

    #[test]
    fn sounds_exclude_marks() {
        assert!("həlˈO".chars().any(is_sound));
        assert!(!"ˈ.,!? ː…—".chars().any(is_sound));
    }
}
