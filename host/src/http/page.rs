//! `GET /`: a small page to try the server from a browser.

use warp::reply::Response;
use warp::Reply;

const INDEX: &str = include_str!("index.html");

/// The page.
pub fn index() -> Response {
    warp::reply::html(INDEX).into_response()
}
