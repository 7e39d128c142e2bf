//! `KokoroBackend::synthesize` on the real model: the audio pipeline checked sample for sample
//! against the runner (chunk by chunk, plain concatenation, blends, speed, cancellation,
//! normalisation). The conformance kit runs in `conformance.rs`.
//!
//! These need a working `KokoroRunner::synthesize`. Model path: `$TTS_KOKORO_MODEL`, else
//! `models/kokoro-82m-f32.gguf` (`scripts/fetch-model`); skipped with a message when absent,
//! except in CI.

mod support;

use std::sync::Arc;

use support::model_path;
use tts_backend_api::{Backend, BackendConfig, SynthesisRequest, VecSink};
use tts_backend_kokoro::runner::KokoroRunner;
use tts_backend_kokoro::text::chunk::{split_into_chunks, ChunkOptions};
use tts_backend_kokoro::text::normalize::normalize_english;
use tts_backend_kokoro::text::phonemize::{KokoroPhonemizer, Language};
use tts_backend_kokoro::text::vocab::Vocab;
use tts_backend_kokoro::voice::{self, Weighting};
use tts_backend_kokoro::KokoroBackend;

const THREADS: usize = 2;

const LONG: &str = "The quick brown fox jumps over the lazy dog. It was a bright cold day in April, \
                    and the clocks were striking thirteen. Winston Smith, his chin nuzzled into his \
                    breast in an effort to escape the vile wind, slipped quickly through the glass \
                    doors of Victory Mansions.";

fn config(path: &std::path::Path) -> BackendConfig {
    BackendConfig {
        model_path: Some(path.to_path_buf()),
        n_threads: THREADS,
        ..BackendConfig::default()
    }
}

fn english(text: &str, voice: &str) -> SynthesisRequest {
    let mut r = SynthesisRequest::new(text, voice);
    r.language = Some("en-us".into());
    r
}

fn speak(b: &KokoroBackend, request: &SynthesisRequest) -> VecSink {
    let mut sink = VecSink::new();
    b.synthesize(request, &mut sink)
        .unwrap_or_else(|e| panic!("{request:?}: {e}"));
    sink
}

/// What the backend must push for `text`: the runner's output for each chunk, recomputed here
/// through the public pieces (normaliser, chunker, phonemizer, vocabulary, style row).
fn expected_chunks(b: &KokoroBackend, text: &str, voice_expr: &str, speed: f32) -> Vec<Vec<f32>> {
    let model = b.model();
    let vocab = Vocab::from_tokens(model.vocab()).expect("the model's vocabulary");
    let phonemizer = KokoroPhonemizer::new(Language::AmericanEnglish);
    let ids = |t: &str| {
        vocab
            .encode(&phonemizer.phonemize(t).expect("espeak-ng").phonemes)
            .ids
    };
    let text = normalize_english(text);
    let chunks = split_into_chunks(&text, |t: &str| ids(t).len(), ChunkOptions::default());
    let (_, pack) = voice::select(model, voice_expr, Weighting::Normalized).expect("a known voice");
    let runner = KokoroRunner::new(Arc::clone(b.weights()), THREADS).expect("a CPU runner");
    chunks
        .iter()
        .map(|c| {
            let tokens = ids(c.text);
            let mut framed = vec![0i32];
            framed.extend(tokens.iter().map(|&i| i as i32));
            framed.push(0);
            runner
                .synthesize(&framed, &pack.ref_s(tokens.len()), speed)
                .expect("the runner synthesizes the chunk")
                .audio
        })
        .collect()
}

#[test]
fn audio_is_each_chunk_as_the_runner_made_it_in_order() {
    let Some(path) = model_path() else { return };
    let b = KokoroBackend::new(config(&path)).unwrap();
    let sink = speak(&b, &english(LONG, "jf_alpha"));
    let want = expected_chunks(&b, LONG, "jf_alpha", 1.0);
    assert!(want.len() >= 2, "the text should need several chunks");
    assert_eq!(sink.chunks.len(), want.len(), "one push per chunk");
    for (i, (got, want)) in sink.chunks.iter().zip(&want).enumerate() {
        assert!(got == want, "chunk {i} differs from the runner's output");
    }
    // The short first chunk arrives first: shorter than the second.
    assert!(sink.chunks[0].len() < sink.chunks[1].len());
    let all = sink.samples();
    assert_eq!(all.len(), want.iter().map(Vec::len).sum::<usize>());
    assert!(all.iter().all(|x| x.is_finite()));
    // 600 samples per frame.
    assert!(sink.chunks.iter().all(|c| c.len() % 600 == 0));
    // Clean joins: every chunk starts and ends in near silence (the BOS/EOS pads), so plain
    // concatenation (what the reference does) cannot click.
    const EDGE: usize = 240; // 10 ms
    for (i, c) in sink.chunks.iter().enumerate() {
        let rms = (c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32).sqrt();
        let peak = |w: &[f32]| w.iter().fold(0f32, |m, x| m.max(x.abs()));
        let (head, tail) = (peak(&c[..EDGE]), peak(&c[c.len() - EDGE..]));
        println!("chunk {i}: rms {rms:.3}, first 10 ms peak {head:.4}, last 10 ms peak {tail:.4}");
        assert!(rms > 0.03, "chunk {i} is not speech (rms {rms})");
        assert!(
            head < 0.05 && tail < 0.05,
            "chunk {i} edges are not quiet: {head} / {tail}"
        );
    }
    for (i, pair) in sink.chunks.windows(2).enumerate() {
        let step = (pair[1][0] - pair[0][pair[0].len() - 1]).abs();
        assert!(step < 0.01, "join {i}: step of {step}");
    }
}

#[test]
fn blends_mix_the_style_rows() {
    let Some(path) = model_path() else { return };
    let b = KokoroBackend::new(config(&path)).unwrap();
    let text = "Good morning, everyone.";
    let alpha = speak(&b, &english(text, "jf_alpha")).samples();
    // Half of alpha plus half of alpha is alpha, bit for bit.
    let twice = speak(&b, &english(text, "jf_alpha(1) + jf_alpha(1)")).samples();
    assert!(alpha == twice, "jf_alpha+jf_alpha differs from jf_alpha");
    let mix = speak(&b, &english(text, "jf_alpha(2)+jm_kumo(1)")).samples();
    assert!(!mix.is_empty() && mix.iter().all(|x| x.is_finite()));
    assert!(mix != alpha, "the blend sounds exactly like its first voice");
    assert_eq!(
        mix,
        expected_chunks(&b, text, "jf_alpha(2)+jm_kumo(1)", 1.0).concat()
    );
    let minus = speak(&b, &english(text, "jf_alpha-jm_kumo")).samples();
    assert!(!minus.is_empty() && minus.iter().all(|x| x.is_finite()));
}

#[test]
fn speed_shortens_the_audio() {
    let Some(path) = model_path() else { return };
    let b = KokoroBackend::new(config(&path)).unwrap();
    let text = "The quick brown fox jumps over the lazy dog.";
    let normal = speak(&b, &english(text, "jf_alpha")).samples().len();
    let fast = speak(&b, &english(text, "jf_alpha").with_speed(2.0))
        .samples()
        .len();
    let slow = speak(&b, &english(text, "jf_alpha").with_speed(0.5))
        .samples()
        .len();
    assert!(
        (fast as f64) < 0.75 * normal as f64,
        "speed 2: {fast} samples, speed 1: {normal}"
    );
    assert!(
        (slow as f64) > 1.4 * normal as f64,
        "speed 0.5: {slow}, speed 1: {normal}"
    );
}

#[test]
fn a_stop_ends_the_request_after_the_current_chunk() {
    let Some(path) = model_path() else { return };
    let b = KokoroBackend::new(config(&path)).unwrap();
    let mut sink = VecSink {
        stop_after: Some(1),
        ..VecSink::default()
    };
    b.synthesize(&english(LONG, "jf_alpha"), &mut sink).unwrap();
    assert_eq!(sink.chunks.len(), 1);
}

#[test]
fn english_text_is_normalised_unless_switched_off() {
    let Some(path) = model_path() else { return };
    let b = KokoroBackend::new(config(&path)).unwrap();
    let text = "It costs $3.50 on 3/15/2024.";
    let on = speak(&b, &english(text, "jf_alpha")).samples();
    assert_eq!(on, expected_chunks(&b, text, "jf_alpha", 1.0).concat());
    let mut raw = english(text, "jf_alpha");
    raw.normalize = false;
    let off = speak(&b, &raw).samples();
    assert!(on != off, "normalize=false changed nothing");

    let mut options = config(&path);
    options.options.insert("normalize".into(), "false".into());
    let server_off = KokoroBackend::new(options).unwrap();
    assert_eq!(speak(&server_off, &english(text, "jf_alpha")).samples(), off);
}

#[test]
fn japanese_voices_speak_japanese_text_by_default() {
    let Some(path) = model_path() else { return };
    let b = KokoroBackend::new(config(&path)).unwrap();
    let audio = speak(&b, &SynthesisRequest::new("こんにちは、世界。", "jf_alpha")).samples();
    let seconds = audio.len() as f64 / 24_000.0;
    assert!((0.4..6.0).contains(&seconds), "{seconds} s");
}
