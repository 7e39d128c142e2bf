//! Routing and extraction: which handler a request reaches, and the guards in front of every
//! route.
//!
//! Order matters: the `Host` guard runs first, before any route or auth check, so a request from
//! a rebinding page learns nothing (not even whether a path exists); CORS headers are added last,
//! to every answer (errors included) for an allowed origin.

use std::convert::Infallible;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use warp::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::error::ApiError;
use super::{handlers, page, AppState};
use crate::config::Config;

fn with_state(state: Arc<AppState>) -> impl Filter<Extract = (Arc<AppState>,), Error = Infallible> + Clone {
    warp::any().map(move || Arc::clone(&state))
}

/// Every route behind the guards, with the fallback last; CORS headers added on the way out.
pub fn routes(state: Arc<AppState>) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let config = Arc::clone(&state.config);
    let guarded = host_guard(Arc::clone(&config))
        .and(api(state))
        .recover(|r: Rejection| async move {
            let e = r
                .find::<ApiError>()
                .cloned()
                .unwrap_or_else(|| ApiError::internal("unhandled rejection"));
            Ok::<Response, Infallible>(e.to_response())
        })
        .unify();
    warp::header::headers_cloned()
        .and(guarded)
        .map(move |headers: HeaderMap, res: Response| with_cors(res, &headers, &config))
}

/// The API routes themselves.
fn api(state: Arc<AppState>) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let auth = warp::header::optional::<String>("authorization");

    let preflight = warp::options()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(with_state(Arc::clone(&state)))
        .map(|p: warp::path::FullPath, h: HeaderMap, s: Arc<AppState>| preflight(&s.config, p.as_str(), &h));

    let health = warp::path!("health")
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .map(|s: Arc<AppState>| handlers::health(&s));

    let speech = warp::path!("v1" / "audio" / "speech")
        .and(warp::post())
        .and(with_state(Arc::clone(&state)))
        .and(auth)
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>("content-length"))
        .and(warp::body::stream())
        .then(handlers::speech);

    let voices = warp::path!("v1" / "audio" / "voices")
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .and(auth)
        .map(|s: Arc<AppState>, a: Option<String>| handlers::voices(&s, a.as_deref()));

    let model_list = warp::path!("v1" / "models")
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .and(auth)
        .map(|s: Arc<AppState>, a: Option<String>| handlers::models(&s, a.as_deref(), None));

    let model = warp::path!("v1" / "models" / String)
        .and(warp::get())
        .and(with_state(Arc::clone(&state)))
        .and(auth)
        .map(|id: String, s: Arc<AppState>, a: Option<String>| handlers::models(&s, a.as_deref(), Some(&id)));

    let index = warp::path::end().and(warp::get()).map(page::index);

    let fallback = warp::method()
        .and(warp::path::full())
        .map(|m: Method, p: warp::path::FullPath| handlers::fallback(&m, p.as_str()));

    preflight
        .or(health)
        .unify()
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

/// Refuses requests whose `Host` is not one this server answers to (DNS rebinding: a page on
/// `evil.example` that re-points its name at 127.0.0.1 still sends `Host: evil.example`).
fn host_guard(config: Arc<Config>) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::host::optional()
        .map(|a: Option<warp::host::Authority>| Ok::<_, ApiError>(a.map(|a| a.host().to_string())))
        .or(warp::any().map(|| Err::<Option<String>, _>(ApiError::bad_host())))
        .unify()
        .and_then(move |host: Result<Option<String>, ApiError>| {
            let config = Arc::clone(&config);
            async move {
                match host.and_then(|h| check_host(h.as_deref(), &config)) {
                    Ok(()) => Ok(()),
                    Err(e) => Err(warp::reject::custom(e)),
                }
            }
        })
        .untuple_one()
}

/// Whether the Host guard is on: bound to a loopback address, or `--allowed-host` names hosts
/// (without `*`).
pub fn host_guard_active(config: &Config) -> bool {
    if config.allowed_hosts.iter().any(|h| h == "*") {
        return false;
    }
    config.addr.ip().is_loopback() || !config.allowed_hosts.is_empty()
}

/// Whether `host` (no port; IPv6 in brackets) names this machine's loopback interface:
/// `localhost` and `*.localhost` (RFC 6761: never resolved through DNS), 127.0.0.0/8, `[::1]`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// The Host check. A request without any authority (HTTP/1.0 without `Host`) is served: no
/// browser sends one, so it cannot come from a rebinding page.
fn check_host(host: Option<&str>, config: &Config) -> Result<(), ApiError> {
    let Some(host) = host else { return Ok(()) };
    if !host_guard_active(config) || is_loopback_host(host) {
        return Ok(());
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if config.allowed_hosts.contains(&name) {
        Ok(())
    } else {
        Err(ApiError::host_not_allowed(host))
    }
}

/// The allowed value of `Access-Control-Allow-Origin` for `origin`, if any.
fn allowed_origin(config: &Config, origin: &str) -> Option<HeaderValue> {
    if config.cors_origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let wanted = origin.trim_end_matches('/').to_ascii_lowercase();
    if config.cors_origins.contains(&wanted) {
        HeaderValue::from_str(origin).ok()
    } else {
        None
    }
}

/// Adds CORS headers to a response for an allowed `Origin`; nothing when CORS is off.
fn with_cors(mut res: Response, request: &HeaderMap, config: &Config) -> Response {
    if config.cors_origins.is_empty() {
        return res;
    }
    let h = res.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = request.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return res;
    };
    if let Some(allow) = allowed_origin(config, origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-request-id, retry-after, x-should-retry"),
        );
    }
    res
}

/// Request headers a preflight may ask for: names only (tokens), at most 32 of them.
fn requested_headers(request: &HeaderMap) -> Option<HeaderValue> {
    let asked = request
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())?;
    let names: Vec<&str> = asked
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let valid = names.len() <= 32
        && names
            .iter()
            .all(|n| n.len() <= 64 && header::HeaderName::from_bytes(n.as_bytes()).is_ok());
    if valid {
        HeaderValue::from_str(&names.join(", ")).ok()
    } else {
        None
    }
}

/// `OPTIONS`: a CORS preflight when CORS is on and the origin is allowed; 403 for another
/// origin; without CORS, the fallback's 405.
fn preflight(config: &Config, path: &str, request: &HeaderMap) -> Response {
    let origin = request.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    let is_preflight = request.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let (Some(origin), true, false) = (origin, is_preflight, config.cors_origins.is_empty()) else {
        return handlers::fallback(&Method::OPTIONS, path);
    };
    let Some(allow) = allowed_origin(config, origin) else {
        return ApiError::origin_not_allowed(origin).to_response();
    };
    let mut res = warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response();
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        requested_headers(request).unwrap_or_else(|| HeaderValue::from_static("authorization, content-type")),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for ok in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "app.localhost",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "localhost.evil.example",
            "128.0.0.1",
            "[::2]",
            "::1",
            "0.0.0.0",
            "127.0.0.1.nip.io",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
