//! The real `tts-host` with the real Kokoro plugin (`libkokoro_cpu.so`) and the converted model,
//! over HTTP: English speech in every format, streamed chunk by chunk and as SSE, speed, voices
//! and blends, the OpenAI error envelope for bad voices, and `-np 2` sharing one copy of the
//! weights.
//!
//! Needs `cargo build --workspace` (binary and plugin) and `models/kokoro-82m-f32.gguf`
//! (`scripts/fetch-model`, or `$TTS_KOKORO_MODEL`); without the model the tests are skipped with
//! a message, except in CI.
//!
//! The file's voices are Japanese; English text is sent with `"language": "en-us"` (a Kokoro
//! `lang_code` such as `"a"` works too), which selects the English phonemizer and normaliser.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use tts_e2e::audio;
use tts_e2e::kokoro::{self, speech_problems, RATE};

/// 17 words.
const TEXT: &str = "The quick brown fox jumps over the lazy dog. It was a bright cold day in April.";
const WORDS: usize = 17;
const VOICES: [&str; 5] = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"];

/// One Kokoro server at a time: each synthesizes with every core, and several at once would
/// only make each request slower than the harness's read timeout allows on a small machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A speech request for English `TEXT`, with `extra` fields on top.
fn body(extra: Value) -> Value {
    let mut b = json!({"model": "tts-1", "input": TEXT, "voice": "jf_alpha", "language": "en-us"});
    if let (Some(b), Value::Object(extra)) = (b.as_object_mut(), extra) {
        b.extend(extra);
    }
    b
}

fn assert_speech(samples: &[f32], words: usize, speed: f64, what: &str) {
    let problems = speech_problems(samples, RATE, words, speed);
    assert!(problems.is_empty(), "{what}: not speech: {}", problems.join("; "));
}

#[test]
fn health_and_voices_describe_kokoro() {
    let _one = exclusive();
    let Some(model) = kokoro::model_path() else { return };
    let server = kokoro::launch(&model).start();
    let h = server.health();
    assert_eq!(h["backend"]["name"], "kokoro", "{h}");
    assert_eq!(h["backend"]["sample_rate"], RATE, "{h}");
    let v = server.get("/v1/audio/voices").json();
    let ids: Vec<&str> = v["voices"]
        .as_array()
        .expect("voices is a list")
        .iter()
        .map(|v| v["id"].as_str().expect("string ids"))
        .collect();
    assert_eq!(ids, VOICES);
    assert_eq!(v["default"], "jf_alpha", "{v}");
    assert_eq!(v["voices"][0]["language"], "ja", "{v}");
}

/// Every format the host offers decodes to speech; the lossless ones to the same samples.
#[test]
fn english_speech_in_every_format() {
    let _one = exclusive();
    let Some(model) = kokoro::model_path() else { return };
    let server = kokoro::launch(&model).start();
    let mut failures = Vec::new();
    let mut lossless: Vec<(&str, Vec<f32>)> = Vec::new();
    for (format, content_type, exact) in [
        ("wav", "audio/wav", true),
        ("pcm", "audio/pcm", true),
        ("flac", "audio/flac", true),
        ("aiff", "audio/aiff", true),
        ("mp3", "audio/mpeg", false),
        ("opus", "audio/opus", false),
    ] {
        let r = server.speech(&body(json!({"response_format": format})));
        if r.status != 200 || !r.complete {
            failures.push(format!(
                "{format}: status {} ({:?}): {}",
                r.status,
                r.error,
                r.text()
            ));
            continue;
        }
        if r.header("content-type") != Some(content_type) {
            failures.push(format!("{format}: content-type {:?}", r.header("content-type")));
        }
        match audio::decode(format, &r.body, RATE) {
            Err(e) => failures.push(format!("{format}: does not decode: {e}")),
            Ok(d) => {
                if d.channels != 1 || (exact && d.sample_rate != RATE) {
                    failures.push(format!(
                        "{format}: {} channels at {} Hz",
                        d.channels, d.sample_rate
                    ));
                }
                let problems = speech_problems(&d.samples, d.sample_rate, WORDS, 1.0);
                if !problems.is_empty() {
                    failures.push(format!("{format}: {}", problems.join("; ")));
                }
                if exact {
                    lossless.push((format, d.samples));
                } else if let Some((_, wav)) = lossless.first() {
                    let (a, b) = (d.seconds(), wav.len() as f64 / f64::from(RATE));
                    if (a - b).abs() > 0.15 {
                        failures.push(format!("{format}: {a:.3} s, wav {b:.3} s"));
                    }
                }
            }
        }
    }
    // Kokoro is deterministic: the lossless formats carry the same 16-bit samples.
    if let Some(((first, reference), rest)) = lossless.split_first() {
        for (format, samples) in rest {
            if samples != reference {
                failures.push(format!("{format} samples differ from {first}'s"));
            }
        }
    }
    assert!(failures.is_empty(), "formats that fail:\n{}", failures.join("\n"));
}

/// The body arrives in pieces as chunks are synthesized (the first chunk is short), and SSE
/// carries the same audio.
#[test]
fn speech_is_streamed_as_it_is_made() {
    let _one = exclusive();
    let Some(model) = kokoro::model_path() else { return };
    let server = kokoro::launch(&model).start();
    // Two sentences: the first is the short first chunk, the second follows once synthesized.
    let request = body(json!({"response_format": "pcm"}));
    let mut s = server.open_speech(&request);
    assert_eq!(s.status, 200);
    assert_eq!(s.header("transfer-encoding"), Some("chunked"));
    let first = s.next_piece().expect("a first piece").expect("audio");
    let first_at = s.started().elapsed();
    let rest = s.finish();
    assert!(rest.complete, "{:?}", rest.error);
    assert!(
        rest.elapsed > first_at + Duration::from_millis(200),
        "first audio at {first_at:?}, end at {:?}: not streamed",
        rest.elapsed
    );
    let mut pcm = first;
    pcm.extend_from_slice(&rest.body);
    let streamed = audio::decode_pcm(&pcm, RATE).expect("pcm");
    assert_speech(&streamed.samples, WORDS, 1.0, "streamed pcm");

    // The same request again, as server-sent events: the same audio.
    let r = server.speech(&body(json!({"response_format": "pcm", "stream_format": "sse"})));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let mut sse = Vec::new();
    let mut done = false;
    for event in r.text().split("\n\n").filter(|e| !e.trim().is_empty()) {
        let data = event
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or_else(|| panic!("event without data: {event:?}"));
        let v: Value = serde_json::from_str(data).expect("JSON event");
        match v["type"].as_str() {
            Some("speech.audio.delta") => sse.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(v["audio"].as_str().expect("audio"))
                    .expect("base64"),
            ),
            Some("speech.audio.done") => done = true,
            other => panic!("unexpected event {other:?}: {v}"),
        }
    }
    assert!(done, "no speech.audio.done event");
    assert!(sse == pcm, "SSE audio differs from the streamed body");
}

#[test]
fn speed_two_is_clearly_shorter() {
    let _one = exclusive();
    let Some(model) = kokoro::model_path() else { return };
    let server = kokoro::launch(&model).start();
    let len = |speed: f64| {
        let r = server.speech(&body(json!({"response_format": "pcm", "speed": speed})));
        assert_eq!(r.status, 200, "speed {speed}: {}", r.text());
        let d = audio::decode_pcm(&r.body, RATE).expect("pcm");
        assert_speech(&d.samples, WORDS, speed, &format!("speed {speed}"));
        d.samples.len()
    };
    let (normal, fast) = (len(1.0), len(2.0));
    assert!(
        (fast as f64) < 0.75 * normal as f64,
        "speed 2: {fast} samples, speed 1: {normal}"
    );
}

#[test]
fn voices_blends_and_their_errors() {
    let _one = exclusive();
    let Some(model) = kokoro::model_path() else { return };
    let server = kokoro::launch(&model).start();
    let pcm = |voice: &str| {
        let r = server.speech(&body(json!({"voice": voice, "response_format": "pcm"})));
        assert_eq!(r.status, 200, "{voice}: {}", r.text());
        audio::decode_pcm(&r.body, RATE).expect("pcm").samples
    };
    let alpha = pcm("jf_alpha");
    let kumo = pcm("jm_kumo");
    assert_speech(&kumo, WORDS, 1.0, "jm_kumo");
    assert!(alpha != kumo, "two voices gave the same audio");
    let blend = pcm("jf_alpha(2)+jm_kumo(1)");
    assert_speech(&blend, WORDS, 1.0, "blend");
    assert!(blend != alpha && blend != kumo, "the blend is one of its voices");
    // The voice as an object, with spaces in the expression.
    let r = server.speech(&body(
        json!({"voice": {"id": "jf_alpha(2) + jm_kumo(1)"}, "response_format": "pcm"}),
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(audio::decode_pcm(&r.body, RATE).expect("pcm").samples, blend);

    // Unknown voices, alone or inside a blend, and malformed blends: 400 naming the voices.
    for voice in ["nobody", "jf_alpha+nobody", "jf_alpha(2)+", "jf_alpha(x)+jm_kumo"] {
        let r = server.speech(&body(json!({"voice": voice})));
        let e = r.assert_error(400, Some("voice"));
        assert_eq!(e["type"], "invalid_request_error", "{voice}");
        let m = e["message"].as_str().expect("message");
        for v in VOICES {
            assert!(m.contains(v), "{voice}: {v} missing from {m:?}");
        }
    }
    // Nothing to speak: 400 on `input`.
    let r = server.speech(&body(json!({"input": "... !?"})));
    r.assert_error(400, Some("input"));
    // The server is still fine.
    assert_speech(&pcm("jf_alpha"), WORDS, 1.0, "after the errors");
}

/// VmRSS of a process, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("a VmRSS line");
    kb * 1024
}

/// `-np 2`: two requests at once both succeed, and the process holds one copy of the weights:
/// its resident size after serving them stays below twice a one-instance server's, and closer to
/// one copy than two (a second copy of the f32 weights would add the model file's size).
#[test]
fn two_instances_serve_at_once_with_one_copy_of_the_weights() {
    let _one = exclusive();
    let Some(model) = kokoro::model_path() else { return };
    let model_bytes = std::fs::metadata(&model).expect("model size").len();
    let request = body(json!({"response_format": "pcm"}));

    let one = kokoro::launch(&model).args(["-np", "1"]).start();
    let r = one.speech(&request);
    assert_eq!(r.status, 200, "{}", r.text());
    let rss_one = rss_bytes(one.pid());
    drop(one);

    let two = kokoro::launch(&model).args(["-np", "2"]).start();
    assert_eq!(two.health()["instances"], 2);
    let bodies: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let r = two.speech(&request);
                    assert_eq!(r.status, 200, "{}", r.text());
                    assert!(r.complete, "{:?}", r.error);
                    r.body
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("request thread"))
            .collect()
    });
    for b in &bodies {
        let d = audio::decode_pcm(b, RATE).expect("pcm");
        assert_speech(&d.samples, WORDS, 1.0, "-np 2");
    }
    assert_eq!(bodies[0], bodies[1], "the two instances disagree");
    let rss_two = rss_bytes(two.pid());
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    assert!(
        rss_two < 2 * rss_one,
        "-np 2 holds {:.0} MiB, -np 1 {:.0} MiB: the weights are not shared",
        mib(rss_two),
        mib(rss_one)
    );
    assert!(
        rss_two < rss_one + model_bytes / 2,
        "-np 2 holds {:.0} MiB, -np 1 {:.0} MiB, the model is {:.0} MiB: a second copy of the weights?",
        mib(rss_two),
        mib(rss_one),
        mib(model_bytes)
    );
}
