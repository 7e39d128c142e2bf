//! The streaming response body: audio bytes as they come, or SSE events around them.

use std::time::Instant;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::json;
use tokio::sync::mpsc;

use super::error::ApiError;
use super::openai::StreamFormat;
use crate::pool::{CancelOnDrop, Event, JobError};
use crate::sanitize::log_text;

/// The state behind one streaming body. Dropping it (the client went away) cancels the work.
#[derive(Debug)]
pub struct Body {
    /// The event that arrived before the headers went out.
    pub first: Option<Event>,
    /// The rest.
    pub rx: mpsc::Receiver<Event>,
    /// Cancels the job when the body is dropped.
    pub guard: CancelOnDrop,
    /// When the request times out.
    pub deadline: Instant,
    /// Raw audio or SSE.
    pub format: StreamFormat,
    /// The backend's sample rate (for usage counts).
    pub sample_rate: u32,
    /// Characters of input (for usage counts).
    pub input_chars: usize,
    /// The request's span.
    pub span: tracing::Span,
    /// Set once the last item was produced.
    pub finished: bool,
}

/// An error that aborts the response, so the client sees a truncated body, not a complete one.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Aborted(String);

fn sse(value: &serde_json::Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

impl Body {
    /// Audio frames of 20 ms: the `output_tokens` of the SSE usage.
    fn output_tokens(&self, samples: u64) -> u64 {
        let frame = u64::from(self.sample_rate / 50).max(1);
        samples.div_ceil(frame)
    }

    /// One step: the next bytes to send, `None` at the end, or an error that aborts the body.
    async fn next_item(&mut self) -> Option<Result<Bytes, Aborted>> {
        if self.finished {
            return None;
        }
        let event = match self.first.take() {
            Some(e) => Some(e),
            None => match tokio::time::timeout_at(self.deadline.into(), self.rx.recv()).await {
                Ok(e) => e,
                Err(_) => Some(Event::Failed(JobError::Timeout)),
            },
        };
        match (event, self.format) {
            (Some(Event::Audio(bytes)), StreamFormat::Audio) => Some(Ok(bytes)),
            (Some(Event::Audio(bytes)), StreamFormat::Sse) => Some(Ok(sse(
                &json!({"type": "speech.audio.delta", "audio": super::b64(&bytes)}),
            ))),
            (Some(Event::Done { .. }), StreamFormat::Audio) => {
                self.finished = true;
                None
            }
            (Some(Event::Done { samples }), StreamFormat::Sse) => {
                self.finished = true;
                let input = self.input_chars as u64;
                let output = self.output_tokens(samples);
                Some(Ok(sse(&json!({
                    "type": "speech.audio.done",
                    "usage": {"input_tokens": input, "output_tokens": output, "total_tokens": input + output}
                }))))
            }
            (failed, format) => {
                self.finished = true;
                self.guard.0.cancel();
                let message = match failed {
                    Some(Event::Failed(JobError::Backend(e))) => {
                        format!("the backend failed mid-stream: {}", e.message)
                    }
                    Some(Event::Failed(JobError::Timeout)) => {
                        "the request ran past the server's timeout".to_string()
                    }
                    Some(Event::Failed(JobError::Encode(m))) => format!("encoding failed mid-stream: {m}"),
                    Some(Event::Failed(JobError::Host(m))) => format!("the server failed mid-stream: {m}"),
                    _ => "the backend worker stopped mid-stream".to_string(),
                };
                self.span
                    .in_scope(|| tracing::warn!(message = %log_text(&message), "stream aborted"));
                match format {
                    // SSE can say what happened in-band, then end cleanly: the same envelope as
                    // every other error, in an event of type `error`.
                    StreamFormat::Sse => {
                        let envelope = ApiError::stream_failed(message).body();
                        Some(Ok(sse(&json!({"type": "error", "error": envelope["error"]}))))
                    }
                    StreamFormat::Audio => {
                        // Give the connection a moment to flush what was already produced (at
                        // least the status line and the first chunk), so the client sees a 200
                        // with a cut body rather than an empty reply.
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        Some(Err(Aborted(message)))
                    }
                }
            }
        }
    }

    /// The body as a `Send + Sync` stream for `warp::reply::stream`.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, Aborted>> + Send + Sync + 'static {
        let s = futures_util::stream::unfold(self, |mut body| async move {
            let item = body.next_item().await?;
            Some((item, body))
        });
        sync_wrapper::SyncStream::new(s)
    }
}
