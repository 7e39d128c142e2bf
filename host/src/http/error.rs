//! API errors and the OpenAI error envelope. Every failure of every route ends up here, and
//! [`ApiError::status`] plus the envelope fields are decided in this one file.

use tts_backend_api::{BackendError, ErrorKind};
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
            format!("Invalid URL ({method} {path})"),
        )
        .code("unknown_url")
    }

    /// 404 for a model id.
    pub fn no_model(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("The model '{id}' does not exist"),
        )
        .param("model")
        .code("model_not_found")
    }

    /// 405.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            format!("Method {method} is not allowed for {path}"),
        )
        .code("method_not_allowed")
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

    /// 415.
    pub fn unsupported_media_type(got: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            format!("Content-Type must be application/json, got '{got}'"),
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
}
