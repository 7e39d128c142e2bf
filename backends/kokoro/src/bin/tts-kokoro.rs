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
        Command::Phonemize(args) => match phonemize(&args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
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

    let result = phonemizer.phonemize(&args.text).map_err(|e| e.to_string())?;
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
