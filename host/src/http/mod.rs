//! The HTTP API, split as warp's examples split it: [`filters`] route and extract (and hold the
//! guards that run before any route: Host check, CORS), [`handlers`] answer, [`error`] maps every
//! failure to its status and OpenAI envelope, [`openai`] validates the speech request, and
//! `stream` turns a job's events into the streamed body.
//!
//! Handlers never reject: every failure becomes an [`ApiError`] response right away, so warp's
//! rejection merging cannot turn a 400 into a 404. Requests that match no route fall through to
//! the fallback handler, which knows the route table and answers 405 for a known path with the
//! wrong method and 404 otherwise. The only rejection is a guard's refusal, recovered into its
//! envelope at the top of [`filters::routes`].

pub mod error;
pub mod filters;
pub mod handlers;
pub mod openai;
mod page;
mod stream;
#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::pool::{BackendMeta, Pool, Readiness};
use error::ApiError;
pub use filters::routes;
use openai::MODEL_ALIASES;

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
        if self.config.api_keys.is_empty() || self.config.api_keys.accepts(authorization) {
            Ok(())
        } else {
            Err(ApiError::unauthorized())
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

/// Bytes for tests and the SSE encoder.
pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
