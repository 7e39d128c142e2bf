//! The routes in process through `warp::test`, over the sine backend (no socket, no plugin).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tts_backend_api::{Backend, BackendConfig, BackendError};
use warp::http::Response;

use super::{routes, AppState};
use crate::auth::ApiKeys;
use crate::config::Config;
use crate::pool::{BackendFactory, Pool, PoolOptions, Readiness};

struct Sine;

impl BackendFactory for Sine {
    fn create(&self, config: &BackendConfig) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(tts_backend_sine::SineBackend::new(config.clone())?))
    }
}

fn state_with(edit: impl FnOnce(&mut Config), options: impl FnOnce(&mut PoolOptions)) -> Arc<AppState> {
    let mut config = Config::new("sine.so".into(), "127.0.0.1:8080".parse().unwrap());
    config.backend_config.n_threads = 1;
    edit(&mut config);
    let mut opts = PoolOptions::new(config.n_parallelism, config.queue_size);
    options(&mut opts);
    let (pool, _ready) = Pool::start(Arc::new(Sine), &config.backend_config, opts);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while matches!(pool.readiness(), Readiness::Loading) {
        assert!(std::time::Instant::now() < deadline, "sine did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    AppState::new(pool, Arc::new(config))
}

fn state(edit: impl FnOnce(&mut Config)) -> Arc<AppState> {
    state_with(edit, |_| {})
}

fn json_of(res: &Response<bytes::Bytes>) -> Value {
    serde_json::from_slice(res.body()).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", res.body()))
}

/// Asserts the envelope and returns `error`.
fn error_of(res: &Response<bytes::Bytes>, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status, "{:?}", res.body());
    let v = json_of(res);
    let e = v["error"].clone();
    for k in ["message", "type", "param", "code"] {
        assert!(e.get(k).is_some(), "{k} missing: {v}");
    }
    e
}

fn speech(body: &str) -> warp::test::RequestBuilder {
    warp::test::request()
        .method("POST")
        .path("/v1/audio/speech")
        .header("host", "127.0.0.1:8080")
        .header("content-type", "application/json")
        .body(body)
}

const OK_BODY: &str = r#"{"input": "hi", "response_format": "pcm"}"#;

#[tokio::test]
async fn speech_works_in_process() {
    let api = routes(state(|_| {}));
    let res = speech(OK_BODY).reply(&api).await;
    assert_eq!(res.status(), 200, "{:?}", res.body());
    assert_eq!(res.headers()["content-type"], "audio/pcm");
    assert!(!res.body().is_empty());
}

#[tokio::test]
async fn content_type_is_required_and_must_be_json() {
    let api = routes(state(|_| {}));
    let res = warp::test::request()
        .method("POST")
        .path("/v1/audio/speech")
        .body(OK_BODY)
        .reply(&api)
        .await;
    let e = error_of(&res, 415);
    assert_eq!(e["code"], "unsupported_media_type");
    assert!(e["message"].as_str().unwrap().contains("has none"));
    for bad in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/json+x",
    ] {
        let res = speech(OK_BODY).header("content-type", bad).reply(&api).await;
        error_of(&res, 415);
    }
    for good in [
        "application/json",
        "Application/JSON; charset=utf-8",
        "application/vnd.api+json",
    ] {
        let res = speech(OK_BODY).header("content-type", good).reply(&api).await;
        assert_eq!(res.status(), 200, "{good}");
    }
}

#[tokio::test]
async fn host_header_rebinding_is_refused_on_loopback() {
    let api = routes(state(|_| {}));
    for host in [
        "evil.example",
        "evil.example:8080",
        "127.0.0.1.nip.io",
        "10.0.0.1:8080",
    ] {
        let res = warp::test::request()
            .path("/health")
            .header("host", host)
            .reply(&api)
            .await;
        let e = error_of(&res, 403);
        assert_eq!(e["code"], "host_not_allowed", "{host}");
        // Even an unknown path says nothing but 403.
        let res = warp::test::request()
            .path("/nothing")
            .header("host", host)
            .reply(&api)
            .await;
        error_of(&res, 403);
    }
    for host in [
        "localhost",
        "localhost:8080",
        "127.0.0.1:1",
        "127.9.9.9",
        "[::1]:8080",
        "[::1]",
        "app.localhost:3000",
    ] {
        let res = warp::test::request()
            .path("/health")
            .header("host", host)
            .reply(&api)
            .await;
        assert_eq!(res.status(), 200, "{host}: {:?}", res.body());
    }
    // HTTP/1.0 without Host: served (no browser sends such a request).
    let res = warp::test::request().path("/health").reply(&api).await;
    assert_eq!(res.status(), 200);
    // A hostile Host is quoted in the message, escaped and bounded.
    let res = warp::test::request()
        .path("/health")
        .header("host", "x".repeat(300))
        .reply(&api)
        .await;
    let e = error_of(&res, 403);
    assert!(e["message"].as_str().unwrap().contains("(300 characters)"), "{e}");
}

#[tokio::test]
async fn allowed_hosts_extend_the_loopback_names() {
    let api = routes(state(|c| c.allowed_hosts = vec!["tts.example".into()]));
    for (host, status) in [
        ("tts.example:8080", 200),
        ("TTS.EXAMPLE", 200),
        ("localhost", 200),
        ("other.example", 403),
    ] {
        let res = warp::test::request()
            .path("/health")
            .header("host", host)
            .reply(&api)
            .await;
        assert_eq!(res.status().as_u16(), status, "{host}");
    }
    let any = routes(state(|c| c.allowed_hosts = vec!["*".into()]));
    let res = warp::test::request()
        .path("/health")
        .header("host", "anything.example")
        .reply(&any)
        .await;
    assert_eq!(res.status(), 200);
    // Bound to a public address without --allowed-host: no Host check.
    let public = routes(state(|c| c.addr = "0.0.0.0:8080".parse().unwrap()));
    let res = warp::test::request()
        .path("/health")
        .header("host", "anything.example")
        .reply(&public)
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let api = routes(state(|_| {}));
    let res = warp::test::request()
        .method("OPTIONS")
        .path("/v1/audio/speech")
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .reply(&api)
        .await;
    error_of(&res, 405);
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let res = speech(OK_BODY)
        .header("origin", "https://app.example")
        .reply(&api)
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert!(res.headers().get("vary").is_none());
}

#[tokio::test]
async fn cors_allows_listed_origins_only() {
    let api = routes(state(|c| c.cors_origins = vec!["https://app.example".into()]));
    let preflight = |origin: &'static str| {
        warp::test::request()
            .method("OPTIONS")
            .path("/v1/audio/speech")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, authorization")
    };
    let res = preflight("https://app.example").reply(&api).await;
    assert_eq!(res.status(), 204);
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-headers"], "content-type, authorization");
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert_eq!(h["vary"], "Origin");

    let res = preflight("https://evil.example").reply(&api).await;
    let e = error_of(&res, 403);
    assert_eq!(e["code"], "origin_not_allowed");
    assert!(res.headers().get("access-control-allow-origin").is_none());

    let res = speech(OK_BODY)
        .header("origin", "https://app.example")
        .reply(&api)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let res = speech(OK_BODY)
        .header("origin", "https://evil.example")
        .reply(&api)
        .await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert_eq!(res.headers()["vary"], "Origin");

    let star = routes(state(|c| c.cors_origins = vec!["*".into()]));
    let res = speech(OK_BODY)
        .header("origin", "https://any.example")
        .reply(&star)
        .await;
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn api_keys_and_www_authenticate() {
    let api = routes(state(|c| c.api_keys = ApiKeys::new(["sesame", " padded "])));
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("sesame"),
        Some("Basic sesame"),
        Some("Bearer sesame x"),
    ] {
        let mut req = speech(OK_BODY);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.reply(&api).await;
        let e = error_of(&res, 401);
        assert_eq!(e["code"], "invalid_api_key", "{auth:?}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer", "{auth:?}");
    }
    for auth in ["Bearer sesame", "bearer sesame", "BEARER  padded  "] {
        let res = speech(OK_BODY).header("authorization", auth).reply(&api).await;
        assert_eq!(res.status(), 200, "{auth}");
    }
    let res = warp::test::request().path("/v1/models").reply(&api).await;
    error_of(&res, 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn hostile_json_bodies() {
    let api = routes(state(|c| c.max_body_bytes = 200_000));
    let deep = "[".repeat(100_000);
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (deep.into_bytes(), 400, "invalid_json"),
        (br#"{"input": "a", "input": "b"}"#.to_vec(), 400, "invalid_json"),
        (b"{\"input\": \"\xff\xfe\"}".to_vec(), 400, "invalid_json"),
        (b"{\"input\": \"a\"".to_vec(), 400, "invalid_json"),
        (vec![b' '; 200_001], 413, "request_too_large"),
        (
            br#"{"input": "hi", "language": "en\nus"}"#.to_vec(),
            400,
            "unsupported_language",
        ),
        (
            br#"{"input": "hi", "language": "en\u000aus"}"#.to_vec(),
            400,
            "unsupported_language",
        ),
        (
            br#"{"input": "hi", "lang_code": "../../etc/passwd;"}"#.to_vec(),
            400,
            "unsupported_language",
        ),
    ];
    for (body, status, code) in cases {
        let res = speech("").body(&body).reply(&api).await;
        let e = error_of(&res, status);
        assert_eq!(
            e["code"],
            code,
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
    }
    let res = speech(r#"{"input": "hi", "lang_code": "a\u001b[31m"}"#)
        .reply(&api)
        .await;
    let e = error_of(&res, 400);
    assert_eq!(e["param"], "lang_code");
    let res = speech(OK_BODY).reply(&api).await;
    assert_eq!(res.status(), 200, "still serving");
}

#[tokio::test]
async fn a_slow_body_is_a_408() {
    let api = routes(state(|c| c.body_read_timeout = Duration::from_millis(200)));
    // warp::test cannot send a body slowly, so the handler's body reader is driven directly.
    let (mut tx, body) = hyper_body_channel();
    tx.push(bytes::Bytes::from_static(b"{\"input\""));
    let started = std::time::Instant::now();
    let e = super::handlers::read_body(body, 1000, Duration::from_millis(200)).await;
    let e = e.unwrap_err();
    assert_eq!(e.status.as_u16(), 408);
    assert_eq!(e.code, Some("request_timeout"));
    assert!(started.elapsed() >= Duration::from_millis(200));
    drop(tx);
    let res = speech(OK_BODY).reply(&api).await;
    assert_eq!(res.status(), 200);
}

/// A body stream that yields what is pushed and then stays pending.
struct Pending {
    queue: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<bytes::Bytes>>>,
}

impl Pending {
    fn push(&mut self, b: bytes::Bytes) {
        self.queue.lock().unwrap().push_back(b);
    }
}

fn hyper_body_channel() -> (
    Pending,
    impl futures_util::Stream<Item = Result<bytes::Bytes, warp::Error>>,
) {
    let queue = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
    let reader = std::sync::Arc::clone(&queue);
    let stream = futures_util::stream::unfold(reader, |q| async move {
        loop {
            let next = q.lock().unwrap().pop_front();
            if let Some(b) = next {
                return Some((Ok(b), q));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (Pending { queue }, stream)
}

#[tokio::test]
async fn errors_go_through_the_envelope_and_health_reports_instances() {
    let api = routes(state(|c| c.n_parallelism = 2));
    let res = warp::test::request().path("/health").reply(&api).await;
    assert_eq!(res.status(), 200);
    let h = json_of(&res);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["instances"], 2);
    assert_eq!(h["written_off"], 0);
    assert_eq!(h["max_written_off"], 8);
    let states: Vec<&str> = h["instance_states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["idle", "idle"]);
    let res = warp::test::request().path("/nope%0a%1b").reply(&api).await;
    let e = error_of(&res, 404);
    assert!(!e["message"].as_str().unwrap().chars().any(char::is_control));
    let res = warp::test::request()
        .method("PUT")
        .path("/health")
        .reply(&api)
        .await;
    error_of(&res, 405);
    assert_eq!(res.headers()["allow"], "GET");
    let res = warp::test::request().path("/").reply(&api).await;
    assert_eq!(res.status(), 200);
}

fn panicking_encoder(
    format: crate::audio::AudioFormat,
    rate: u32,
) -> Result<Box<dyn crate::audio::StreamEncoder>, crate::audio::EncodeError> {
    struct Boom;
    impl crate::audio::StreamEncoder for Boom {
        fn push(&mut self, _: &[f32]) -> Result<Vec<u8>, crate::audio::EncodeError> {
            panic!("encoder exploded on purpose")
        }
        fn finish(&mut self) -> Result<Vec<u8>, crate::audio::EncodeError> {
            Ok(Vec::new())
        }
    }
    match format {
        crate::audio::AudioFormat::Flac => Ok(Box::new(Boom)),
        other => crate::audio::new_encoder(other, rate),
    }
}

#[tokio::test]
async fn an_encoder_panic_is_a_500_and_the_server_goes_on() {
    let api = routes(state_with(|_| {}, |o| o.encoder = panicking_encoder));
    for _ in 0..2 {
        let res = speech(r#"{"input": "hi", "response_format": "flac"}"#)
            .reply(&api)
            .await;
        let e = error_of(&res, 500);
        assert!(e["message"].as_str().unwrap().contains("encoder panicked"), "{e}");
        assert_eq!(res.headers()["x-should-retry"], "false");
        let res = speech(OK_BODY).reply(&api).await;
        assert_eq!(res.status(), 200);
    }
    let body = json!({"input": "hi", "response_format": "flac", "stream_format": "sse"}).to_string();
    let res = speech(&body).reply(&api).await;
    error_of(&res, 500);
}
