//! The handlers: what each route answers, given what its filter extracted.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Buf;
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tts_backend_api::quote;
use warp::http::{header, HeaderValue, Method};
use warp::reply::Response;
use warp::Reply;

use super::error::ApiError;
use super::openai::{self, Limits, StreamFormat};
use super::{stream, AppState};
use crate::pool::{BackendMeta, Cancel, CancelOnDrop, Event, Job, JobError, Readiness};
use crate::sanitize::log_text;

/// The route table, for 405 answers.
const ROUTES: [(&str, &str); 6] = [
    ("/", "GET"),
    ("/health", "GET"),
    ("/v1/audio/speech", "POST"),
    ("/v1/audio/voices", "GET"),
    ("/v1/models", "GET"),
    ("/v1/models/", "GET"),
];

/// No route matched: 405 with `Allow` for a known path, 400 when the route matched but a header
/// could not be read, 404 otherwise.
pub fn fallback(method: &Method, path: &str) -> Response {
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

/// `GET /health`: 200 `ok`; 503 `loading` while instances start; 503 `degraded` once instances
/// were written off past `--max-written-off` (or none is serving).
pub fn health(state: &AppState) -> Response {
    let meta = match state.pool.readiness() {
        Readiness::Ready(meta) => meta,
        Readiness::Loading => return ApiError::health_unavailable(&json!({"status": "loading"}), 1),
    };
    let pool = &state.pool;
    let instances = pool.instances();
    let degraded = pool.degraded() || instances == 0;
    let body = json!({
        "status": if degraded { "degraded" } else { "ok" },
        "backend": { "name": meta.info.name, "version": meta.info.version, "sample_rate": meta.info.sample_rate },
        "abi_version": tts_backend_api::load::Plugin::host_abi_version(),
        "instances": instances,
        "busy": pool.busy(),
        "queued_or_running": pool.in_flight(),
        "written_off": pool.written_off(),
        "max_written_off": pool.max_written_off(),
        "instance_states": pool
            .instance_status()
            .iter()
            .map(|s| json!({"instance": s.instance, "state": s.phase.name(), "jobs": s.jobs}))
            .collect::<Vec<_>>(),
    });
    if degraded {
        ApiError::health_unavailable(&body, 30)
    } else {
        warp::reply::json(&body).into_response()
    }
}

/// `GET /v1/audio/voices`.
pub fn voices(state: &AppState, authorization: Option<&str>) -> Response {
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

/// `GET /v1/models` and `GET /v1/models/{id}`.
pub fn models(state: &AppState, authorization: Option<&str>, id: Option<&str>) -> Response {
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

/// Reads the body up to `limit` bytes, within `timeout`.
pub(crate) async fn read_body<S, B>(body: S, limit: usize, timeout: Duration) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let read = async {
        let mut body = std::pin::pin!(body);
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            let mut chunk = chunk.map_err(|e| {
                ApiError::invalid(
                    None,
                    "bad_body",
                    format!("could not read the request body: {}", log_text(&e.to_string())),
                )
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
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| Err(ApiError::body_timeout(timeout.as_secs_f64())))
}

/// `POST /v1/audio/speech`.
pub async fn speech<S, B>(
    state: std::sync::Arc<AppState>,
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
                tracing::info!(status = e.status.as_u16(), code = e.code.unwrap_or(""), message = %log_text(&e.message), "request refused");
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

/// Whether a Content-Type is JSON (`application/json`, or any `…+json`, parameters allowed).
pub fn is_json(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
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
    // JSON only, and a Content-Type is required: a browser can send text/plain or a form
    // cross-origin without a preflight, never application/json.
    match content_type.as_deref() {
        Some(ct) if is_json(ct) => {}
        other => return Err(ApiError::unsupported_media_type(other)),
    }
    let bytes = read_body(body, limit, state.config.body_read_timeout).await?;
    let value = openai::parse_json(&bytes)?;
    let request = openai::parse_speech(&value, &limits(state, &meta).get())?;
    span.in_scope(|| {
        tracing::info!(
            chars = request.input_chars,
            voice = %quote(&request.synthesis.voice),
            language = %request.synthesis.language.as_deref().map(quote).unwrap_or_default(),
            format = request.format.name(),
            speed = request.synthesis.speed,
            sse = request.stream == StreamFormat::Sse,
            "speech request"
        );
    });
    if state.pool.instances() == 0 && state.pool.degraded() {
        return Err(ApiError::no_instances());
    }

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

fn limits<'a>(state: &'a AppState, meta: &'a BackendMeta) -> OwnedLimits<'a> {
    OwnedLimits {
        models: state.model_ids(meta),
        default_voice: state.default_voice(meta),
        state,
        meta,
    }
}

/// The owned parts of [`Limits`], so [`limits`] can lend them.
struct OwnedLimits<'a> {
    models: Vec<String>,
    default_voice: String,
    state: &'a AppState,
    meta: &'a BackendMeta,
}

impl OwnedLimits<'_> {
    fn get(&self) -> Limits<'_> {
        Limits {
            max_input_chars: self.state.config.max_input_chars,
            default_format: self.state.config.default_format,
            voices: &self.meta.voices,
            default_voice: &self.default_voice,
            models: &self.models,
            sampling: self.state.config.backend_config.sampling,
            language: self.state.config.backend_config.espeak_voice_id.as_deref(),
        }
    }
}

/// The API error for a failed job.
pub fn job_error(e: &JobError, timeout_secs: u64) -> ApiError {
    match e {
        JobError::Backend(b) => ApiError::from_backend(b),
        JobError::Timeout => ApiError::timeout(timeout_secs),
        JobError::Encode(m) => ApiError::internal(format!("encoding the audio failed: {m}")),
        JobError::Host(m) => ApiError::internal(m.clone()),
    }
}
