//! The HTTP API: routes, handlers and streaming bodies.
//!
//! Handlers never reject: every failure becomes an [`ApiError`] response right away, so warp's
//! rejection merging cannot turn a 400 into a 404. Requests that match no route fall through to
//! [`fallback`], which knows the route table and answers 405 for a known path with the wrong
//! method and 404 otherwise.

pub mod error;
pub mod openai;
mod page;
mod stream;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Buf;
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use warp::http::{header, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::config::Config;
use crate::pool::{BackendMeta, Cancel, CancelOnDrop, Event, Job, JobError, Pool, Readiness};
use error::ApiError;
use openai::{Limits, StreamFormat, MODEL_ALIASES};

/// Shared state of the routes.
#[derive(Debug)]
pub struct AppState {
    /// The backend instances.
    pub pool: Arc<Pool>,
    /// The server's configuration.
    pub config: Arc<Config>,
    /// Unix time the server started (the `created` of models).
    pub started: u64,
    next_id: AtomicU64,
}

impl AppState {
    /// State over a pool.
    pub fn new(pool: Arc<Pool>, config: Arc<Config>) -> Arc<Self> {
        Arc::new(Self {
            pool,
            config,
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            next_id: AtomicU64::new(1),
        })
    }

    fn ready(&self) -> Result<Arc<BackendMeta>, ApiError> {
        match self.pool.readiness() {
            Readiness::Ready(meta) => Ok(meta),
            Readiness::Loading => Err(ApiError::loading()),
        }
    }

    fn authorize(&self, authorization: Option<&str>) -> Result<(), ApiError> {
        if self.config.api_keys.is_empty() {
            return Ok(());
        }
        let key = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        match key {
            Some(k) if self.config.api_keys.iter().any(|a| a == k) => Ok(()),
            _ => Err(ApiError::unauthorized()),
        }
    }

    /// Model ids: the backend's name, the model file's stem, OpenAI's names.
    fn model_ids(&self, meta: &BackendMeta) -> Vec<String> {
        let mut ids = vec![meta.info.name.clone()];
        if let Some(stem) = self
            .config
            .backend_config
            .model_path
            .as_deref()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
        {
            if !ids.contains(&stem) {
                ids.push(stem);
            }
        }
        ids.extend(MODEL_ALIASES.iter().map(|s| (*s).to_string()));
        ids
    }

    fn default_voice(&self, meta: &BackendMeta) -> String {
        self.config
            .backend_config
            .voice
            .clone()
            .or_else(|| meta.voices.first().map(|v| v.id.clone()))
            .unwrap_or_default()
    }
}

fn with_state(state: Arc<AppState>) -> impl Filter<Extract = (Arc<AppState>,), Error = Infallible> + Clone {
    warp::any().map(move || Arc::clone(&state))
}

/// Every route, with the fallback last.
pub fn routes(state: Arc<AppState>) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let auth = warp::header::optional::<String>("authorization");

    let health = warp::path!("health")
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .map(|s: Arc<AppState>| health(&s));

    let speech = warp::path!("v1" / "audio" / "speech")
        .and(warp::post())
        .and(with_state(Arc::clone(&state)))
        .and(auth)
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("content-length"))
        .and(warp::body::stream())
        .then(speech);

    let voices = warp::path!("v1" / "audio" / "voices")
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .and(auth)
        .map(|s: Arc<AppState>, a: Option<String>| voices(&s, a.as_deref()));

    let model_list = warp::path!("v1" / "models")
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .and(auth)
        .map(|s: Arc<AppState>, a: Option<String>| models(&s, a.as_deref(), None));

    let model = warp::path!("v1" / "models" / String)
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .and(auth)
        .map(|id: String, s: Arc<AppState>, a: Option<String>| models(&s, a.as_deref(), Some(&id)));

    let index = warp::path::end().and(warp::get()).map(page::index);

    let fallback = warp::method()
        .and(warp::path::full())
        .map(|m: Method, p: warp::path::FullPath| fallback(&m, p.as_str()));

    health
        .or(speech)
        .unify()
        .or(voices)
        .unify()
        .or(model_list)
        .unify()
        .or(model)
        .unify()
        .or(index)
        .unify()
        .or(fallback)
        .unify()
}

/// The route table, for 405 answers.
const ROUTES: [(&str, &str); 6] = [
    ("/", "GET"),
    ("/health", "GET"),
    ("/v1/audio/speech", "POST"),
    ("/v1/audio/voices", "GET"),
    ("/v1/models", "GET"),
    ("/v1/models/", "GET"),
];

fn fallback(method: &Method, path: &str) -> Response {
    let allowed = ROUTES.iter().find(|(p, _)| {
        if p.ends_with('/') && p.len() > 1 {
            path.strip_prefix(p)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
        } else {
            *p == path
        }
    });
    match allowed {
        Some((_, allow)) if *allow == method.as_str() => ApiError::invalid(
            None,
            "invalid_headers",
            "The request headers could not be read (a header is not valid text or has a malformed value)",
        )
        .to_response(),
        Some((_, allow)) => {
            let mut res = ApiError::method_not_allowed(method.as_str(), path).to_response();
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            res
        }
        None => ApiError::no_route(method.as_str(), path).to_response(),
    }
}

fn health(state: &AppState) -> Response {
    match state.pool.readiness() {
        Readiness::Ready(meta) => warp::reply::json(&json!({
            "status": "ok",
            "backend": { "name": meta.info.name, "version": meta.info.version, "sample_rate": meta.info.sample_rate },
            "abi_version": tts_backend_api::load::Plugin::host_abi_version(),
            "instances": state.pool.instances(),
            "busy": state.pool.busy(),
            "queued_or_running": state.pool.in_flight(state.config.queue_size),
        }))
        .into_response(),
        Readiness::Loading => {
            let mut res = warp::reply::with_status(warp::reply::json(&json!({"status": "loading"})), StatusCode::SERVICE_UNAVAILABLE)
                .into_response();
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            res
        }
    }
}

fn voices(state: &AppState, authorization: Option<&str>) -> Response {
    let result = state.authorize(authorization).and_then(|()| state.ready());
    match result {
        Ok(meta) => warp::reply::json(&json!({
            "voices": meta.voices,
            "default": state.default_voice(&meta),
        }))
        .into_response(),
        Err(e) => e.to_response(),
    }
}

fn model_object(id: &str, created: u64) -> Value {
    json!({"id": id, "object": "model", "created": created, "owned_by": "tts-host"})
}

fn models(state: &AppState, authorization: Option<&str>, id: Option<&str>) -> Response {
    let meta = match state.authorize(authorization).and_then(|()| state.ready()) {
        Ok(m) => m,
        Err(e) => return e.to_response(),
    };
    let ids = state.model_ids(&meta);
    match id {
        None => warp::reply::json(&json!({
            "object": "list",
            "data": ids.iter().map(|i| model_object(i, state.started)).collect::<Vec<_>>(),
        }))
        .into_response(),
        Some(id) if ids.iter().any(|i| i == id) => {
            warp::reply::json(&model_object(id, state.started)).into_response()
        }
        Some(id) => ApiError::no_model(id).to_response(),
    }
}

/// Reads the body up to `limit` bytes.
async fn read_body<S, B>(body: S, limit: usize) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| {
            ApiError::invalid(None, "bad_body", format!("could not read the request body: {e}"))
        })?;
        if out.len() + chunk.remaining() > limit {
            return Err(ApiError::too_large(limit));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(out)
}

async fn speech<S, B>(
    state: Arc<AppState>,
    authorization: Option<String>,
    content_type: Option<String>,
    content_length: Option<String>,
    body: S,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("speech", id);
    let started = Instant::now();
    let mut res = match speech_inner(
        &state,
        authorization,
        content_type,
        content_length,
        body,
        span.clone(),
    )
    .await
    {
        Ok(res) => res,
        Err(e) => {
            span.in_scope(|| {
                tracing::info!(status = e.status.as_u16(), code = e.code.unwrap_or(""), message = %e.message, "request refused");
            });
            e.to_response()
        }
    };
    span.in_scope(|| {
        tracing::debug!(
            ms = started.elapsed().as_millis(),
            status = res.status().as_u16(),
            "headers sent"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&format!("req_{id}")) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

async fn speech_inner<S, B>(
    state: &AppState,
    authorization: Option<String>,
    content_type: Option<String>,
    content_length: Option<String>,
    body: S,
    span: tracing::Span,
) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    state.authorize(authorization.as_deref())?;
    let meta = state.ready()?;
    let limit = state.config.max_body_bytes;
    if content_length
        .and_then(|n| n.trim().parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
    {
        return Err(ApiError::too_large(limit));
    }
    if let Some(ct) = content_type.as_deref() {
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(ApiError::unsupported_media_type(ct));
        }
    }
    let bytes = read_body(body, limit).await?;
    let value: Value = serde_json::from_slice(&bytes).map_err(ApiError::malformed_json)?;
    let models = state.model_ids(&meta);
    let default_voice = state.default_voice(&meta);
    let limits = Limits {
        max_input_chars: state.config.max_input_chars,
        default_format: state.config.default_format,
        voices: &meta.voices,
        default_voice: &default_voice,
        models: &models,
        sampling: state.config.backend_config.sampling,
        language: state.config.backend_config.espeak_voice_id.as_deref(),
    };
    let request = openai::parse_speech(&value, &limits)?;
    span.in_scope(|| {
        tracing::info!(
            chars = request.input_chars,
            voice = %request.synthesis.voice,
            format = request.format.name(),
            speed = request.synthesis.speed,
            sse = request.stream == StreamFormat::Sse,
            "speech request"
        );
    });

    let permit = state.pool.try_reserve().map_err(|_| ApiError::queue_full())?;
    let deadline = Instant::now() + state.config.timeout;
    let (tx, mut rx) = mpsc::channel::<Event>(16);
    let cancel = Cancel::default();
    let guard = CancelOnDrop(cancel.clone());
    state
        .pool
        .submit(Job {
            request: request.synthesis.clone(),
            format: request.format,
            events: tx,
            cancel,
            deadline,
            span: span.clone(),
            permit,
        })
        .map_err(|e| ApiError::from_backend(&e))?;

    // Hold the headers until the first audio (or a failure) so an early error is a real error.
    let timeout_secs = state.config.timeout.as_secs();
    let first = match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
        Err(_) => return Err(ApiError::timeout(timeout_secs)),
        Ok(None) => return Err(ApiError::internal("the backend worker stopped without an answer")),
        Ok(Some(Event::Failed(e))) => return Err(job_error(&e, timeout_secs)),
        Ok(Some(first)) => first,
    };
    let body = stream::Body {
        first: Some(first),
        rx,
        guard,
        deadline,
        format: request.stream,
        sample_rate: meta.info.sample_rate,
        input_chars: request.input_chars,
        span,
        finished: false,
    };
    let content_type = match request.stream {
        StreamFormat::Audio => request.format.content_type(),
        StreamFormat::Sse => "text/event-stream",
    };
    let mut res = warp::reply::stream(body.into_stream()).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if request.stream == StreamFormat::Audio {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"speech.{}\"",
            request.format.name()
        )) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(res)
}

/// The API error for a failed job.
fn job_error(e: &JobError, timeout_secs: u64) -> ApiError {
    match e {
        JobError::Backend(b) => ApiError::from_backend(b),
        JobError::Timeout => ApiError::timeout(timeout_secs),
        JobError::Encode(m) => ApiError::internal(format!("encoding the audio failed: {m}")),
    }
}

/// Bytes for tests and the SSE encoder.
pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
