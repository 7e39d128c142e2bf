//! The OpenAI contract end to end: the real `tts-host` binary with the real `sine` plugin over
//! HTTP on 127.0.0.1. Statuses, the error envelope, every format decoded, chunked and SSE
//! streaming, parallel instances, the queue, auth, cancellation on disconnect.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tts_e2e::audio::{self, zero_crossing_hz};
use tts_e2e::{sine, Launch};

const RATE: u32 = 24_000;

#[test]
fn health_voices_models_and_index() {
    let server = Launch::sine().start();
    let h = server.health();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["backend"]["name"], "sine");
    assert_eq!(h["backend"]["sample_rate"], RATE);
    assert_eq!(h["instances"], 1);
    assert_eq!(h["busy"], 0);
    if let Some(loading) = &server.loading_seen {
        // Caught by luck while the instance started: it must be the documented answer.
        assert_eq!(loading.json(), json!({"status": "loading"}));
        assert!(loading.header("retry-after").is_some());
    }

    let voices = server.get("/v1/audio/voices");
    assert_eq!(voices.status, 200);
    assert_eq!(voices.header("content-type"), Some("application/json"));
    let v = voices.json();
    let ids: Vec<&str> = v["voices"]
        .as_array()
        .expect("voices is a list")
        .iter()
        .map(|v| v["id"].as_str().expect("each voice has a string id"))
        .collect();
    assert_eq!(ids, ["sine_alto", "sine_bass", "sine_kana", "sine_sol"]);

    let models = server.get("/v1/models");
    assert_eq!(models.status, 200);
    let m = models.json();
    assert_eq!(m["object"], "list");
    let data = m["data"].as_array().expect("data is a list");
    let model_ids: Vec<&str> = data.iter().map(|m| m["id"].as_str().unwrap()).collect();
    for want in ["sine", "tts-1", "tts-1-hd", "gpt-4o-mini-tts"] {
        assert!(model_ids.contains(&want), "{want} missing from {model_ids:?}");
    }
    for model in data {
        assert_eq!(model["object"], "model");
        assert!(model["created"].is_u64(), "{model}");
        assert!(model["owned_by"].is_string(), "{model}");
    }

    let one = server.get("/v1/models/tts-1");
    assert_eq!(one.status, 200);
    let one = one.json();
    assert_eq!(one["id"], "tts-1");
    assert_eq!(one["object"], "model");

    server
        .get("/v1/models/whisper-1")
        .assert_error(404, Some("model"));

    let index = server.get("/");
    assert_eq!(index.status, 200);
    assert!(
        index
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{:?}",
        index.header("content-type")
    );
    assert!(
        index.text().to_ascii_lowercase().contains("<html"),
        "not an HTML page"
    );
}

#[test]
fn every_refusal_is_an_openai_envelope() {
    let server = Launch::sine()
        .args(["--max-input-chars", "50", "--max-body-bytes", "2000"])
        .start();
    let json_ct = [("content-type", "application/json")];

    let r = server.request("POST", "/v1/audio/speech", &json_ct, b"{\"input\": ");
    let e = r.assert_error(400, None);
    assert_eq!(e["type"], "invalid_request_error");

    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"model": "tts-1", "voice": "sine_alto"}),
            "input",
            "missing",
        ),
        (json!({"input": ""}), "input", "empty"),
        (json!({"input": "x".repeat(51)}), "input", "over the limit"),
        (
            json!({"input": "hi", "voice": "nobody"}),
            "voice",
            "unknown voice",
        ),
        (json!({"input": "hi", "speed": 5.0}), "speed", "speed too high"),
        (json!({"input": "hi", "speed": 0.1}), "speed", "speed too low"),
        (
            json!({"input": "hi", "speed": "fast"}),
            "speed",
            "speed not a number",
        ),
        (
            json!({"input": "hi", "response_format": "ogg"}),
            "response_format",
            "unknown format",
        ),
        (
            json!({"input": "hi", "response_format": "aac"}),
            "response_format",
            "aac",
        ),
        (
            json!({"input": "hi", "model": "whisper-1"}),
            "model",
            "unknown model",
        ),
    ];
    for (body, param, why) in cases {
        let r = server.speech(&body);
        let e = r.assert_error(400, Some(param));
        assert_eq!(e["type"], "invalid_request_error", "{why}");
        if why == "aac" {
            let m = e["message"].as_str().unwrap().to_ascii_lowercase();
            assert!(m.contains("aac"), "aac refusal should say so: {m}");
        }
        if why == "unknown voice" {
            let m = e["message"].as_str().unwrap();
            assert!(m.contains("nobody") && m.contains("sine_alto"), "{m}");
        }
    }
    // Exactly at the limit is fine.
    assert_eq!(
        server
            .speech(&json!({"input": "x".repeat(50), "response_format": "pcm"}))
            .status,
        200
    );

    server.get("/v1/nothing-here").assert_error(404, None);
    server
        .request("DELETE", "/health", &[], b"")
        .assert_error(405, None);
    let r = server.get("/v1/audio/speech");
    r.assert_error(405, None);
    assert_eq!(r.header("allow"), Some("POST"));

    let big = json!({"input": "hi", "padding": "p".repeat(5000)}).to_string();
    let r = server.request("POST", "/v1/audio/speech", &json_ct, big.as_bytes());
    r.assert_error(413, None);

    let body = json!({"input": "hi"}).to_string();
    let r = server.request(
        "POST",
        "/v1/audio/speech",
        &[("content-type", "text/plain")],
        body.as_bytes(),
    );
    r.assert_error(415, None);
    // A charset parameter on JSON is still JSON; unknown headers are ignored.
    let r = server.request(
        "POST",
        "/v1/audio/speech",
        &[
            ("content-type", "application/json; charset=utf-8"),
            ("x-stainless-lang", "python"),
            ("authorization", "Bearer anything"),
        ],
        json!({"input": "hi", "response_format": "pcm", "unknown_key": 1})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Every format decodes to what sine produced: exact length for lossless formats, within a codec
/// frame or two for lossy ones, RMS of a 0.3 tone, and the pitch of the voice.
#[test]
fn every_format_decodes_to_the_sine_tone() {
    let server = Launch::sine().start();
    let text = "aaaa aaaa";
    let expected = sine::expected_samples(text, 1.0, RATE);
    let expected_s = expected as f64 / f64::from(RATE);
    let hz = sine::tone_hz("sine_bass", 'a');
    let mut failures = Vec::new();
    for (format, content_type, lossless) in [
        ("wav", "audio/wav", true),
        ("aiff", "audio/aiff", true),
        ("pcm", "audio/pcm", true),
        ("flac", "audio/flac", true),
        ("mp3", "audio/mpeg", false),
        ("opus", "audio/opus", false),
    ] {
        let r = server.speech(&json!({
            "model": "tts-1", "input": text, "voice": "sine_bass", "response_format": format
        }));
        assert_eq!(r.status, 200, "{format}: {}", r.text());
        assert!(r.complete, "{format}: body cut: {:?}", r.error);
        let mut problems = Vec::new();
        if r.header("content-type") != Some(content_type) {
            problems.push(format!(
                "content-type {:?}, want {content_type}",
                r.header("content-type")
            ));
        }
        match audio::decode(format, &r.body, RATE) {
            Err(e) => problems.push(format!("does not decode: {e}")),
            Ok(d) => {
                if d.channels != 1 {
                    problems.push(format!("{} channels", d.channels));
                }
                if lossless {
                    if d.sample_rate != RATE || d.samples.len() != expected {
                        problems.push(format!(
                            "{} samples at {} Hz, want exactly {expected} at {RATE}",
                            d.samples.len(),
                            d.sample_rate
                        ));
                    }
                } else if (d.seconds() - expected_s).abs() > 0.1 {
                    problems.push(format!("{:.3} s, want {expected_s:.3} s ± 0.1", d.seconds()));
                }
                // 8 of 9 characters are tone: RMS ≈ 0.3/√2 · √(8/9 · ramp loss).
                let rms = d.rms();
                if !(0.15..0.23).contains(&rms) {
                    problems.push(format!("RMS {rms:.3}, want about 0.19"));
                }
                let measured = zero_crossing_hz(&d.samples, d.sample_rate) * 9.0 / 8.0;
                if (measured - hz).abs() > hz * 0.08 {
                    problems.push(format!("pitch {measured:.1} Hz, want {hz:.1}"));
                }
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{format}: {}", problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "formats that fail the contract:\n{}",
        failures.join("\n")
    );
}

#[test]
fn pcm_is_exact_and_follows_speed_voice_and_defaults() {
    let server = Launch::sine().start();
    let text = "Hello there, world.";
    for speed in [1.0f32, 2.0, 0.5] {
        let r = server
            .speech(&json!({"input": text, "voice": "sine_alto", "response_format": "pcm", "speed": speed}));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("audio/pcm"));
        assert_eq!(
            r.body.len(),
            2 * sine::expected_samples(text, speed, RATE),
            "speed {speed}"
        );
        let d = audio::decode_pcm(&r.body, RATE).unwrap();
        assert!(d.samples.iter().all(|s| s.abs() <= 0.31), "amplitude above 0.3");
    }
    // The same request gives the same bytes (sine is deterministic).
    let body = json!({"input": "abc", "voice": "sine_kana", "response_format": "pcm"});
    assert_eq!(server.speech(&body).body, server.speech(&body).body);
    // OpenAI's voice names map to the default voice; the object form names a voice.
    let alloy = server.speech(&json!({"input": "abc", "voice": "alloy", "response_format": "pcm"}));
    let alto = server.speech(&json!({"input": "abc", "voice": "sine_alto", "response_format": "pcm"}));
    assert_eq!(alloy.status, 200);
    assert_eq!(alloy.body, alto.body);
    let bass =
        server.speech(&json!({"input": "abc", "voice": {"id": "sine_bass"}, "response_format": "pcm"}));
    assert_eq!(bass.status, 200);
    assert_ne!(bass.body, alto.body);
    // No response_format: the server default (wav).
    let r = server.speech(&json!({"input": "abc"}));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("audio/wav"));
    assert!(r.body.starts_with(b"RIFF"), "default format is not WAV");
}

#[test]
fn audio_is_streamed_chunked_as_it_is_made() {
    let server = Launch::sine().option("delay_ms", "300").start();
    let text = "one two three four";
    let mut s = server.open_speech(&json!({"input": text, "response_format": "pcm"}));
    assert_eq!(s.status, 200);
    assert_eq!(s.header("transfer-encoding"), Some("chunked"));
    assert_eq!(s.header("cache-control"), Some("no-cache"));
    assert_eq!(s.header("x-accel-buffering"), Some("no"));
    let first = s.next_piece().unwrap().expect("a first chunk");
    let first_at = s.started().elapsed();
    let rest = s.finish();
    assert!(rest.complete, "{:?}", rest.error);
    let total = first.len() + rest.body.len();
    assert_eq!(total, 2 * sine::expected_samples(text, 1.0, RATE));
    // Four words, 300 ms of "thinking" each: the first word arrives ~0.9 s before the end.
    assert!(
        rest.elapsed > first_at + Duration::from_millis(500),
        "first chunk at {first_at:?}, end at {:?}: not streamed",
        rest.elapsed
    );
    assert!(rest.pieces >= 2, "the rest came in {} piece(s)", rest.pieces);
}

#[test]
fn sse_carries_the_same_audio_and_usage() {
    let server = Launch::sine().start();
    let text = "stream me please";
    let plain = server.speech(&json!({"input": text, "response_format": "pcm"}));
    let r = server.speech(&json!({"input": text, "response_format": "pcm", "stream_format": "sse"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(r.complete);
    let text_body = r.text();
    let events: Vec<Value> = text_body
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let data = e
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("event without data: {e:?}"));
            serde_json::from_str(data).unwrap()
        })
        .collect();
    assert!(events.len() >= 2, "{events:?}");
    let (done, deltas) = events.split_last().unwrap();
    let mut audio = Vec::new();
    for d in deltas {
        assert_eq!(d["type"], "speech.audio.delta", "{d}");
        assert_eq!(
            d.as_object().unwrap().len(),
            2,
            "delta has exactly type and audio: {d}"
        );
        audio.extend(
            base64::engine::general_purpose::STANDARD
                .decode(d["audio"].as_str().unwrap())
                .unwrap(),
        );
    }
    assert_eq!(audio, plain.body, "SSE audio differs from the plain body");
    assert_eq!(done["type"], "speech.audio.done");
    let usage = &done["usage"];
    let (i, o, t) = (
        usage["input_tokens"].as_u64().unwrap(),
        usage["output_tokens"].as_u64().unwrap(),
        usage["total_tokens"].as_u64().unwrap(),
    );
    assert_eq!(t, i + o);
    assert!(o > 0);
}

#[test]
fn api_key_is_required_when_configured() {
    let server = Launch::sine().args(["--api-key", "sesame"]).start();
    let body = json!({"input": "hi", "response_format": "pcm"}).to_string();
    let post = |auth: Option<&str>| {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        server.request("POST", "/v1/audio/speech", &headers, body.as_bytes())
    };
    for auth in [None, Some("Bearer wrong"), Some("sesame"), Some("Basic sesame")] {
        let e = post(auth).assert_error(401, None);
        assert_eq!(e["code"], "invalid_api_key", "{auth:?}");
    }
    let ok = post(Some("Bearer sesame"));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.body.len(), 2 * sine::expected_samples("hi", 1.0, RATE));
    server.get("/v1/models").assert_error(401, None);
    server.get("/v1/audio/voices").assert_error(401, None);
    let models = server.request("GET", "/v1/models", &[("authorization", "Bearer sesame")], b"");
    assert_eq!(models.status, 200);
}

/// N instances serve N requests at once: every request has its first audio before any ends.
#[test]
fn n_instances_serve_n_requests_in_parallel() {
    const N: usize = 3;
    let server = Launch::sine()
        .args(["-np", &N.to_string()])
        .option("delay_ms", "400")
        .start();
    assert_eq!(server.health()["instances"], N);
    let text = "one two three";
    let t0 = Instant::now();
    let times: Vec<(Duration, Duration, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..N)
            .map(|_| {
                scope.spawn(|| {
                    let mut s = server.open_speech(&json!({"input": text, "response_format": "pcm"}));
                    assert_eq!(s.status, 200);
                    let first = s.next_piece().unwrap().unwrap();
                    let first_at = t0.elapsed();
                    let rest = s.finish();
                    assert!(rest.complete);
                    (first_at, t0.elapsed(), first.len() + rest.body.len())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let latest_first = times.iter().map(|t| t.0).max().unwrap();
    let earliest_end = times.iter().map(|t| t.1).min().unwrap();
    assert!(
        latest_first < earliest_end,
        "requests did not overlap: (first audio, end) = {times:?}"
    );
    for t in &times {
        assert_eq!(t.2, 2 * sine::expected_samples(text, 1.0, RATE));
    }
    // Serial would be N × 1.2 s; parallel about 1.2 s. Generous bound for a noisy machine.
    let slowest = times.iter().map(|t| t.1).max().unwrap();
    assert!(
        slowest < Duration::from_millis(1200 * N as u64 - 200),
        "{times:?}"
    );
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let server = Launch::sine()
        .args(["-np", "1", "--queue-size", "1"])
        .option("delay_ms", "500")
        .start();
    let slow = json!({"input": "a b c d", "response_format": "pcm"});
    std::thread::scope(|scope| {
        let first = scope.spawn(|| server.speech(&slow));
        assert!(
            server
                .wait_health(Duration::from_secs(10), |h| h["busy"] == 1)
                .is_some(),
            "the first request never started"
        );
        let second = scope.spawn(|| server.speech(&slow));
        assert!(
            server
                .wait_health(Duration::from_secs(10), |h| h["queued_or_running"] == 2)
                .is_some(),
            "the second request was never queued"
        );
        let third = server.speech(&slow);
        let e = third.assert_error(429, None);
        assert_eq!(e["type"], "rate_limit_error");
        let retry: u64 = third
            .header("retry-after")
            .expect("429 carries Retry-After")
            .parse()
            .expect("Retry-After is seconds");
        assert!((1..=120).contains(&retry));
        for h in [first, second] {
            let r = h.join().unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.body.len(), 2 * sine::expected_samples("a b c d", 1.0, RATE));
        }
    });
    // Once drained, the queue takes requests again.
    assert_eq!(
        server
            .speech(&json!({"input": "x", "response_format": "pcm"}))
            .status,
        200
    );
}

#[test]
fn a_client_that_disconnects_cancels_its_request() {
    let server = Launch::sine().option("delay_ms", "300").start();
    // Twenty words at 300 ms each: six seconds if nobody cancelled.
    let text = vec!["word"; 20].join(" ");
    let mut s = server.open_speech(&json!({"input": text, "response_format": "pcm"}));
    assert_eq!(s.status, 200);
    assert!(!s.next_piece().unwrap().unwrap().is_empty());
    assert_eq!(server.health()["busy"], 1);
    let dropped = Instant::now();
    drop(s);
    let took = server
        .wait_health(Duration::from_secs(4), |h| {
            h["busy"] == 0 && h["queued_or_running"] == 0
        })
        .unwrap_or_else(|| panic!("still busy 4 s after the client left; log:\n{}", server.stderr()));
    assert!(took < Duration::from_secs(2), "cancelled only after {took:?}");
    assert!(dropped.elapsed() < Duration::from_secs(4));
    assert_eq!(
        server
            .speech(&json!({"input": "ok", "response_format": "pcm"}))
            .status,
        200
    );
}

/// While the backends start, `/health` answers 503 `{"status":"loading"}` with `Retry-After`
/// (the faulty plugin's constructor is made slow for this).
#[test]
fn health_says_loading_until_every_instance_is_up() {
    let server = Launch::faulty()
        .args(["-np", "2", "--backend-option", "load_delay_ms=1500"])
        .start();
    let loading = server
        .loading_seen
        .as_ref()
        .expect("a 1.5 s start-up must be observed as 503 loading");
    assert_eq!(loading.status, 503);
    assert_eq!(loading.json(), json!({"status": "loading"}));
    assert_eq!(loading.header("retry-after"), Some("1"));
    assert_eq!(server.health()["instances"], 2);
}
