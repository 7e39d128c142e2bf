//! `tts-kokoro`: tools for the Kokoro backend's model files.
#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "tts-kokoro", version, about = "Kokoro-82M backend tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a Kokoro GGUF's metadata, tensor counts by type, size, voices and phonemizer
    /// variant, and run the model checks (exit status 1 if they fail, 2 if the file is unreadable).
    Inspect {
        /// The GGUF file (e.g. models/kokoro-82m-f16.gguf from scripts/fetch-model).
        file: PathBuf,
    },
    /// Print the espeak IPA, Kokoro phonemes and token ids for a text (the backend's own code
    /// path). Exit status 2 on an espeak or model error.
    Phonemize(PhonemizeArgs),
    /// Synthesize raw phonemes or token ids with a voice and speed (no text processing): write
    /// a 16-bit wav and optionally the named intermediates as `.npy` files, the golden arrays'
    /// names and layouts (`--dump all` for every one). Exit status 2 on any error.
    Synthesize(SynthesizeArgs),
}

#[derive(Debug, clap::Args)]
struct SynthesizeArgs {
    /// The Kokoro GGUF.
    #[arg(long, default_value = "models/kokoro-82m-f32.gguf")]
    model: PathBuf,
    /// Phonemes in Kokoro's alphabet (one token per character; unknown characters are dropped
    /// and reported), wrapped in the BOS/EOS pads.
    #[arg(long, conflicts_with = "ids", required_unless_present = "ids")]
    phonemes: Option<String>,
    /// Token ids as given to the model, pads included (e.g. `0,50,83,54,0`).
    #[arg(long, value_delimiter = ',')]
    ids: Option<Vec<i32>>,
    /// A voice of the file or a blend such as `jf_alpha(2)+jm_kumo(1)`.
    #[arg(long, default_value = "jf_alpha")]
    voice: String,
    /// Speed (durations are divided by it before rounding).
    #[arg(long, default_value_t = 1.0)]
    speed: f32,
    /// Output wav (24 kHz mono, 16-bit, clamped to ±1).
    #[arg(long, short, default_value = "out.wav")]
    out: PathBuf,
    /// Intermediates to write as `<dump-dir>/<name>.npy` (comma-separated golden array names,
    /// or `all`).
    #[arg(long, value_delimiter = ',')]
    dump: Vec<String>,
    /// Where the `.npy` files go.
    #[arg(long, default_value = ".")]
    dump_dir: PathBuf,
    /// Compute threads.
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    threads: usize,
}

#[derive(Debug, clap::Args)]
struct PhonemizeArgs {
    /// Language: a Kokoro letter (a b e f h i j p z), a code (en-us, en-gb, es, fr-fr, hi, it,
    /// pt-br, ja, cmn) or an espeak voice identifier (gmw/en-US; unknown ones get the
    /// non-English mapping). Default: from --voice.
    #[arg(long)]
    lang: Option<String>,
    /// A Kokoro voice name; its first letter picks the language when --lang is absent.
    #[arg(long)]
    voice: Option<String>,
    /// The voice passed to espeak_SetVoiceByName, overriding the language's.
    #[arg(long)]
    espeak_voice_id: Option<String>,
    /// Post-processing: `misaki` (EspeakG2P) or `english-us` / `english-gb` (EspeakFallback's
    /// E2M). Default: English fallback for English, misaki otherwise.
    #[arg(long)]
    mapping: Option<String>,
    /// Read the vocabulary from this Kokoro GGUF instead of the built-in v1.0 table.
    #[arg(long)]
    model: Option<PathBuf>,
    /// The directory containing espeak-ng-data (default: $ESPEAK_DATA_PATH, else the system's).
    #[arg(long)]
    espeak_data: Option<PathBuf>,
    /// Do not normalise English text (numbers, dates, money, ...) before phonemizing; the
    /// backend normalises English unless a request says `"normalize": false`.
    #[arg(long)]
    no_normalize: bool,
    /// The text (one argument; quote it).
    text: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect { file } => match tts_backend_kokoro::inspect::report(&file) {
            Ok((text, ok)) => {
                print!("{text}");
                if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Synthesize(args) => print_or_fail(synthesize(&args)),
        Command::Phonemize(args) => print_or_fail(phonemize(&args)),
    }
}

/// Prints a subcommand's report (exit 0) or its error (exit 2).
fn print_or_fail(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn phonemize(args: &PhonemizeArgs) -> Result<String, String> {
    use std::fmt::Write as _;

    use tts_backend_kokoro::text::phonemize::{KokoroPhonemizer, Language, Mapping};
    use tts_backend_kokoro::text::vocab::{Vocab, PAD_ID};
    use tts_espeak_ng::{EspeakConfig, Phonemizer as Espeak};

    // The language and espeak voice: --lang, else the voice's first letter; an espeak
    // identifier no language claims is used as is, with the non-English mapping.
    let (language, raw_voice) = match (&args.lang, &args.voice) {
        (Some(lang), _) => match Language::parse(lang) {
            Some(l) => (Some(l), None),
            None if lang.contains('/') => (None, Some(lang.clone())),
            None => return Err(format!("unknown language {lang:?}")),
        },
        (None, Some(voice)) => (Some(Language::from_voice_name(voice)), None),
        (None, None) => return Err("give --lang or --voice".into()),
    };
    let mut phonemizer = match (language, raw_voice) {
        (Some(l), _) => KokoroPhonemizer::new(l),
        (None, voice) => KokoroPhonemizer::from_espeak_voice(voice.unwrap_or_default(), Mapping::Misaki),
    };
    if let Some(id) = &args.espeak_voice_id {
        phonemizer = phonemizer.with_espeak_voice(id.clone());
    }
    if let Some(m) = &args.mapping {
        phonemizer = phonemizer.with_mapping(match m.as_str() {
            "misaki" | "g2p" => Mapping::Misaki,
            "english-us" | "fallback" => Mapping::EnglishFallback { british: false },
            "english-gb" => Mapping::EnglishFallback { british: true },
            other => return Err(format!("unknown mapping {other:?}")),
        });
    }
    let mut config = EspeakConfig::default();
    if let Some(dir) = &args.espeak_data {
        config = config.with_data_path(dir);
    }
    phonemizer = phonemizer.with_espeak_config(config.clone());
    let (vocab, vocab_source) = match &args.model {
        Some(path) => {
            let model = tts_backend_kokoro::KokoroModelFile::open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let vocab = Vocab::from_tokens(model.vocab()).map_err(|e| format!("{}: {e}", path.display()))?;
            (vocab, path.display().to_string())
        }
        None => (Vocab::kokoro_v1(), "built-in Kokoro v1.0 table".to_owned()),
    };

    let english = matches!(
        language,
        Some(Language::AmericanEnglish | Language::BritishEnglish)
    );
    let text = if english && !args.no_normalize {
        tts_backend_kokoro::text::normalize::normalize_english(&args.text)
    } else {
        args.text.clone()
    };
    let result = phonemizer.phonemize(&text).map_err(|e| e.to_string())?;
    let info = Espeak::lock(&config).map_err(|e| e.to_string())?.info().clone();
    let encoded = vocab.encode(&result.phonemes);

    let mut out = String::new();
    let lang = language.map_or_else(
        || "(none: raw espeak voice)".to_owned(),
        |l| format!("{} ({})", l.code(), l.letter()),
    );
    let _ = writeln!(out, "language:     {lang}");
    if let Some(l) = language.filter(|l| !l.reference_uses_espeak()) {
        let _ = writeln!(
            out,
            "warning:      Kokoro's reference does not use espeak for {}; expect accented speech",
            l.code()
        );
    }
    if text != args.text {
        let _ = writeln!(out, "normalized:   {text}");
    }
    let _ = writeln!(out, "espeak voice: {}", phonemizer.espeak_voice());
    let _ = writeln!(out, "espeak-ng:    {} ({})", info.version, info.data_path);
    let _ = writeln!(out, "mapping:      {:?}", phonemizer.mapping());
    let _ = writeln!(out, "vocabulary:   {vocab_source}");
    let _ = writeln!(
        out,
        "espeak ipa:   {}",
        result.espeak_ipa.as_deref().unwrap_or("(none)")
    );
    let _ = writeln!(out, "phonemes:     {}", result.phonemes);
    let _ = writeln!(
        out,
        "token ids:    {:?} ({} tokens; model input [{PAD_ID}, ..., {PAD_ID}])",
        encoded.ids,
        encoded.ids.len()
    );
    let dropped: String = encoded
        .dropped
        .iter()
        .map(|c| format!("{c:?} U+{:04X} ", u32::from(*c)))
        .collect();
    let _ = writeln!(
        out,
        "dropped:      {}",
        if dropped.is_empty() {
            "(none)"
        } else {
            dropped.trim_end()
        }
    );
    Ok(out)
}

fn synthesize(args: &SynthesizeArgs) -> Result<String, String> {
    use std::fmt::Write as _;
    use std::sync::Arc;
    use std::time::Instant;

    use tts_backend_kokoro::graph::KokoroWeights;
    use tts_backend_kokoro::runner::KokoroRunner;
    use tts_backend_kokoro::text::vocab::{Vocab, PAD_ID};
    use tts_backend_kokoro::trace::{Trace, TraceData};
    use tts_backend_kokoro::voice::{select, Weighting};

    let model = tts_backend_kokoro::KokoroModelFile::open(&args.model)
        .map_err(|e| format!("{}: {e}", args.model.display()))?;
    let mut out = String::new();
    let ids: Vec<i32> = match (&args.ids, &args.phonemes) {
        (Some(ids), _) => ids.clone(),
        (None, Some(p)) => {
            let vocab = Vocab::from_tokens(model.vocab()).map_err(|e| e.to_string())?;
            let enc = vocab.encode(p);
            if !enc.dropped.is_empty() {
                let _ = writeln!(out, "dropped (not in the vocabulary): {:?}", enc.dropped);
            }
            let pad = PAD_ID as i32;
            std::iter::once(pad)
                .chain(enc.ids.iter().map(|&i| i as i32))
                .chain(std::iter::once(pad))
                .collect()
        }
        (None, None) => return Err("give --phonemes or --ids".into()),
    };
    let (_, pack) = select(&model, &args.voice, Weighting::Normalized).map_err(|e| e.to_string())?;
    let ref_s = pack.ref_s(ids.len().saturating_sub(2));
    let device = tts_ggml::ComputeDevice::cpu(args.threads).map_err(|e| e.to_string())?;
    let weights = Arc::new(KokoroWeights::load(model, &device).map_err(|e| e.to_string())?);
    let runner = KokoroRunner::new(weights, args.threads).map_err(|e| e.to_string())?;
    let mut trace = if args.dump.iter().any(|d| d == "all") {
        Trace::all()
    } else {
        Trace::new(&args.dump).map_err(|e| e.to_string())?
    };
    let t0 = Instant::now();
    let res = runner
        .synthesize_traced(&ids, &ref_s, args.speed, &mut trace)
        .map_err(|e| e.to_string())?;
    let secs = t0.elapsed().as_secs_f64();
    write_wav(&args.out, &res.audio).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let audio_secs = res.audio.len() as f64 / 24_000.0;
    let _ = writeln!(out, "tokens:    {} (pads included)", ids.len());
    let _ = writeln!(out, "frames:    {}", res.pred_dur.iter().sum::<i64>());
    let _ = writeln!(
        out,
        "audio:     {} samples, {audio_secs:.2} s -> {}",
        res.audio.len(),
        args.out.display()
    );
    let _ = writeln!(
        out,
        "time:      {secs:.2} s ({:.2}x real time, {} threads)",
        audio_secs / secs.max(1e-9),
        args.threads
    );
    if !trace.arrays().is_empty() {
        std::fs::create_dir_all(&args.dump_dir).map_err(|e| format!("{}: {e}", args.dump_dir.display()))?;
    }
    for (name, arr) in trace.arrays() {
        let path = args.dump_dir.join(format!("{name}.npy"));
        let bytes = match &arr.data {
            TraceData::F32(v) => npy_bytes("<f4", &arr.shape, v.iter().flat_map(|x| x.to_le_bytes())),
            TraceData::I64(v) => npy_bytes("<i8", &arr.shape, v.iter().flat_map(|x| x.to_le_bytes())),
        };
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = writeln!(out, "dumped:    {} {:?}", path.display(), arr.shape);
    }
    Ok(out)
}

/// A 24 kHz mono 16-bit PCM wav (samples clamped to ±1, scaled by 32767).
fn write_wav(path: &std::path::Path, audio: &[f32]) -> Result<(), String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 24_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(|e| e.to_string())?;
    for &x in audio {
        let v = (x.clamp(-1.0, 1.0) * 32767.0) as i16;
        w.write_sample(v).map_err(|e| e.to_string())?;
    }
    w.finalize().map_err(|e| e.to_string())
}

/// An `.npy` (format 1.0) file: magic, header dict padded so the data starts at a multiple of
/// 64 bytes, then the little-endian values. Written here because it is a dozen lines of a
/// fixed format.
fn npy_bytes(descr: &str, shape: &[usize], data: impl Iterator<Item = u8>) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(data);
    out
}
