//! The browser UI: static files from `web/`, embedded in the binary (read from disk in debug
//! builds), served with a strict Content-Security-Policy. Every path that is not a file
//! serves the app shell, so deep links work.

use crate::api::http::Body;
use crate::api::http::{Request, Response};

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Assets;

const SHELL: &str = "index.html";
const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

pub fn serve(req: &Request) -> Response {
    let rel = req.path.trim_start_matches('/');
    let (name, file) = match Assets::get(rel).filter(|_| !rel.is_empty()) {
        Some(file) => (rel, file),
        None => match Assets::get(SHELL) {
            Some(file) => (SHELL, file),
            None => return Response::empty(404),
        },
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let base = |r: Response| {
        r.with_header("ETag", etag.clone())
            .with_header("Cache-Control", "no-cache")
            .with_header("Content-Security-Policy", CSP)
    };
    if req.header("if-none-match") == Some(etag.as_str()) {
        return base(Response::empty(304));
    }
    let mime = if name.ends_with(".js") {
        "text/javascript; charset=utf-8".to_string()
    } else if name.ends_with(".html") {
        "text/html; charset=utf-8".to_string()
    } else if name.ends_with(".css") {
        "text/css; charset=utf-8".to_string()
    } else {
        file.metadata.mimetype().to_string()
    };
    base(Response {
        status: 200,
        headers: vec![("Content-Type", mime)],
        body: Body::Bytes(file.data.into_owned()),
    })
}
