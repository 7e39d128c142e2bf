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
    }
}
