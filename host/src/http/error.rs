//! API errors and the OpenAI error envelope. Every failure of every route ends up here, and
//! [`ApiError::status`] plus the envelope fields are decided in this one file.

use tts_backend_api::{quote, BackendError, ErrorKind};
use warp::http::{header, HeaderValue, StatusCode};
use warp::reject::Reject;
use warp::reply::Response;
use warp::Reply;

/// An error answered as `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message.
    pub message: String,
    /// OpenAI's `type`.
    pub kind: &'static str,
    /// The request field at fault.
    pub param: Option<&'static str>,
    /// A machine-readable code.
    pub code: Option<&'static str>,
    /// Seconds to put in `Retry-After`.
    pub retry_after: Option<u32>,
}

impl Reject for ApiError {}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after: None,
        }
    }

    fn param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// 400 for a request field.
    pub fn invalid(param: Option<&'static str>, code: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message).code(code);
        e.param = param;
        e
    }

    /// 400: the body is not JSON.
    pub fn malformed_json(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("We could not parse the JSON body of your request: {detail}"),
        )
        .code("invalid_json")
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Incorrect or missing API key: send 'Authorization: Bearer <key>' with a key this server accepts.",
        )
        .code("invalid_api_key")
    }

    /// 404 for a path.
    pub fn no_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("Invalid URL ({} {})", quote(method), quote(path)),
        )
        .code("unknown_url")
    }

    /// 404 for a model id.
    pub fn no_model(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("The model {} does not exist", quote(id)),
        )
        .param("model")
        .code("model_not_found")
    }

    /// 405.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            format!("Method {} is not allowed for {}", quote(method), quote(path)),
        )
        .code("method_not_allowed")
    }

    /// 403: the `Host` header names a host this server does not answer to (DNS rebinding).
    pub fn host_not_allowed(host: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            format!(
                "Host {} is not allowed: this server answers loopback names and those given with --allowed-host",
                quote(host)
            ),
        )
        .code("host_not_allowed")
    }

    /// 400: the `Host` header cannot be parsed, or disagrees with the request target.
    pub fn bad_host() -> Self {
        Self::invalid(
            None,
            "invalid_host",
            "The Host header is not a valid authority, or differs from the request target",
        )
    }

    /// 403: a CORS preflight from an origin that is not allowed.
    pub fn origin_not_allowed(origin: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "invalid_request_error",
            format!("Origin {} is not allowed (see --cors-origin)", quote(origin)),
        )
        .code("origin_not_allowed")
    }

    /// 408: the body did not arrive in time.
    pub fn body_timeout(seconds: f64) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            format!("The request body did not arrive within {seconds} s"),
        )
        .code("request_timeout")
    }

    /// 503 for a connection over `--max-connections` (written raw, before any HTTP parsing).
    pub fn too_many_connections() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_error",
            "Too many open connections; retry shortly.",
        )
        .code("too_many_connections");
        e.retry_after = Some(1);
        e
    }

    /// 503: every backend instance was written off and none could be replaced.
    pub fn no_instances() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_error",
            "No backend instance is serving: they stopped answering and the replacement limit \
             (--max-written-off) is reached. Restart the server.",
        )
        .code("backend_unavailable");
        e.retry_after = Some(30);
        e
    }

    /// The in-band error event that ends an SSE stream.
    pub fn stream_failed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message).code("stream_failed")
    }

    /// A `/health` answer that is not 200 (`loading`, `degraded`): the body stays the health
    /// JSON, the status is 503 and `Retry-After` says when to look again.
    pub fn health_unavailable(body: &serde_json::Value, retry_after: u32) -> Response {
        let mut res = warp::reply::with_status(warp::reply::json(body), StatusCode::SERVICE_UNAVAILABLE)
            .into_response();
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        res
    }

    /// The raw HTTP/1.1 bytes of this error with `Connection: close`, for answers written before
    /// hyper sees the connection.
    pub fn to_raw_http1(&self) -> Vec<u8> {
        let body = self.body().to_string();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            body.len()
        );
        if let Some(seconds) = self.retry_after {
            head.push_str(&format!("retry-after: {seconds}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body.as_bytes());
        out
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("The request body is larger than this server accepts ({limit} bytes)"),
        )
        .code("request_too_large")
    }

    /// 415; `got` is the request's Content-Type, if it had one.
    pub fn unsupported_media_type(got: Option<&str>) -> Self {
        let message = match got {
            Some(got) => format!("Content-Type must be application/json, got {}", quote(got)),
            None => "Content-Type must be application/json; the request has none".to_string(),
        };
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            message,
        )
        .code("unsupported_media_type")
    }

    /// 429 with `Retry-After`.
    pub fn queue_full() -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "The server is busy: every backend instance is working and the queue is full. Retry shortly.",
        )
        .code("queue_full");
        e.retry_after = Some(1);
        e
    }

    /// 503 with `Retry-After` while backends start.
    pub fn loading() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_error",
            "The backend is still loading; retry shortly.",
        )
        .code("model_loading");
        e.retry_after = Some(1);
        e
    }

    /// 504.
    pub fn timeout(seconds: u64) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout_error",
            format!("The request did not finish within the server's timeout of {seconds} s"),
        )
        .code("timeout")
    }

    /// 500 for a failure of the server itself.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message).code("internal_error")
    }

    /// Maps a backend error to its status and envelope (the one place that does).
    pub fn from_backend(e: &BackendError) -> Self {
        let message = e.message.clone();
        match e.kind {
            ErrorKind::InvalidInput => Self::invalid(Some("input"), "invalid_input", message),
            ErrorKind::UnknownVoice => Self::invalid(Some("voice"), "voice_not_found", message),
            ErrorKind::TooLong => Self::invalid(Some("input"), "string_too_long", message),
            ErrorKind::UnsupportedLanguage => {
                Self::invalid(Some("language"), "unsupported_language", message)
            }
            ErrorKind::Overloaded => {
                let mut e =
                    Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message).code("overloaded");
                e.retry_after = Some(1);
                e
            }
            ErrorKind::Unavailable => {
                let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable_error", message)
                    .code("backend_unavailable");
                e.retry_after = Some(5);
                e
            }
            ErrorKind::Panicked => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                format!("The backend failed on this request: {message}"),
            )
            .code("backend_panicked"),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                format!("The backend failed on this request: {message}"),
            )
            .code("backend_error"),
        }
    }

    /// The JSON envelope.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }

    /// The full response.
    pub fn to_response(&self) -> Response {
        let mut res = warp::reply::with_status(warp::reply::json(&self.body()), self.status).into_response();
        let headers = res.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status.is_server_error()
            && self.status != StatusCode::SERVICE_UNAVAILABLE
            && self.status != StatusCode::GATEWAY_TIMEOUT
        {
            // A failure of the backend on this input would fail again: tell OpenAI's clients not
            // to retry it (they retry every 5xx by default).
            headers.insert("x-should-retry", HeaderValue::from_static("false"));
        }
        res
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        self.to_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_kinds_map_to_statuses() {
        let cases = [
            (ErrorKind::InvalidInput, 400, Some("input")),
            (ErrorKind::UnknownVoice, 400, Some("voice")),
            (ErrorKind::TooLong, 400, Some("input")),
            (ErrorKind::UnsupportedLanguage, 400, Some("language")),
            (ErrorKind::Overloaded, 429, None),
            (ErrorKind::Unavailable, 503, None),
            (ErrorKind::Internal, 500, None),
            (ErrorKind::Panicked, 500, None),
            (ErrorKind::InvalidConfig, 500, None),
        ];
        for (kind, status, param) in cases {
            let e = ApiError::from_backend(&BackendError::new(kind, "m"));
            assert_eq!(e.status.as_u16(), status, "{kind}");
            assert_eq!(e.param, param, "{kind}");
        }
    }

    #[test]
    fn envelope_has_all_four_fields() {
        let body = ApiError::queue_full().body();
        let err = &body["error"];
        assert_eq!(err["type"], "rate_limit_error");
        assert_eq!(err["code"], "queue_full");
        assert!(err["param"].is_null());
        assert!(err["message"].as_str().unwrap().contains("busy"));
    }

    #[test]
    fn server_errors_say_do_not_retry() {
        let res = ApiError::internal("x").to_response();
        assert_eq!(res.headers()["x-should-retry"], "false");
        let res = ApiError::queue_full().to_response();
        assert_eq!(res.headers()["retry-after"], "1");
        assert!(res.headers().get("x-should-retry").is_none());
    }

    #[test]
    fn client_strings_are_quoted_bounded_and_escaped() {
        let hostile = format!("a\n\u{1b}[31m'{}", "x".repeat(500));
        for e in [
            ApiError::no_route("GET", &hostile),
            ApiError::no_model(&hostile),
            ApiError::method_not_allowed("PUT", &hostile),
            ApiError::host_not_allowed(&hostile),
            ApiError::origin_not_allowed(&hostile),
            ApiError::unsupported_media_type(Some(&hostile)),
        ] {
            assert!(!e.message.chars().any(char::is_control), "{:?}", e.message);
            assert!(e.message.contains("a\\n\\u{1b}[31m\\'"), "{}", e.message);
            assert!(e.message.len() < 400, "{}", e.message.len());
        }
    }

    #[test]
    fn raw_503_is_a_complete_http_response() {
        let raw = String::from_utf8(ApiError::too_many_connections().to_raw_http1()).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("retry-after: 1"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "too_many_connections");
    }
}
