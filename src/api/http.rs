//! The request as handlers see it, and the response and error types every handler returns.

use crate::error::Error;
use serde_json::{Value, json};
use std::fs::File;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Other,
}

impl Method {
    pub fn parse(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => Method::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Other => "OTHER",
        }
    }

    /// Whether the method may change state (and so needs a CSRF token with a cookie).
    pub fn is_mutating(self) -> bool {
        !matches!(self, Method::Get | Method::Head)
    }
}

/// A request as the handlers see it: decoded path segments, query pairs, headers with
/// lower-case names, and the whole (bounded) body.
pub struct Request {
    pub method: Method,
    /// The raw path, without the query string.
    pub path: String,
    /// Percent-decoded path segments; None when a segment is not valid UTF-8.
    pub segments: Option<Vec<String>>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub ip: Option<String>,
}

impl Request {
    /// A request from its parts as received: `target` is the request line's path and query,
    /// header names are in lower case.
    pub fn new(
        method: Method,
        target: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        ip: Option<String>,
    ) -> Request {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|s| s.into_owned())
            })
            .collect::<Result<Vec<_>, _>>()
            .ok();
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode_query(k), decode_query(v))
            })
            .collect();
        Request {
            method,
            path: path.to_string(),
            segments,
            query,
            headers,
            body,
            ip,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A cookie's value from the `Cookie` header.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The body's declared media type, without parameters.
    fn media_type(&self) -> Option<&str> {
        self.header("content-type")
            .and_then(|v| v.split(';').next())
            .map(str::trim)
    }

    /// Whether the body is declared as JSON (`application/json`, any parameters).
    pub fn is_json(&self) -> bool {
        self.media_type()
            .is_some_and(|t| t.eq_ignore_ascii_case("application/json"))
    }

    /// The body's fields: a JSON object, or a form-encoded body (which Laravel reads like
    /// one, so Pterodactyl clients send either); an empty body is an empty object.
    pub fn body_object(&self) -> Result<serde_json::Map<String, Value>, Error> {
        if self.body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(serde_json::Map::new());
        }
        if self
            .media_type()
            .is_some_and(|t| t.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        {
            return form_object(&self.body);
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(Error::BadRequest(
                "The request body must be a JSON object.".into(),
            )),
            Err(e) => Err(Error::BadRequest(format!(
                "The request body is not valid JSON: {e}."
            ))),
        }
    }

    /// `scheme://host` of this request, for links back to hoard.
    pub fn base_url(&self) -> String {
        let scheme = match self.header("x-forwarded-proto") {
            Some("https") => "https",
            _ => "http",
        };
        let host = self
            .header("host")
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("localhost");
        format!("{scheme}://{host}")
    }
}

/// A form-encoded body as a JSON object of strings, as Laravel sees it: `name[]` keys
/// collect into a list, and an empty value is null (its `ConvertEmptyStringsToNull`).
fn form_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Error> {
    let text = std::str::from_utf8(body).map_err(|_| {
        Error::BadRequest("The form-encoded request body is not valid UTF-8.".into())
    })?;
    let mut map = serde_json::Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (decode_query(k), decode_query(v));
        let value = if value.is_empty() {
            Value::Null
        } else {
            Value::String(value)
        };
        match name.strip_suffix("[]") {
            Some(list) => match map.entry(list).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(items) => items.push(value),
                _ => {
                    return Err(Error::BadRequest(format!(
                        "The form field {list} is given both as a value and as a list."
                    )));
                }
            },
            None => {
                map.insert(name, value);
            }
        }
    }
    Ok(map)
}

fn decode_query(s: &str) -> String {
    let plus_as_space = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from its current position.
    File {
        file: File,
        len: u64,
    },
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Response {
    pub fn json<T: serde::Serialize + ?Sized>(status: u16, value: &T) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: Body::Bytes(serde_json::to_vec(value).expect("responses serialise")),
        }
    }

    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body_len(&self) -> u64 {
        match &self.body {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }
}

/// Every way a request can fail: a domain error, or one of HTTP's own.
pub enum Failure {
    Domain(Error),
    MethodNotAllowed(Vec<Method>),
    PayloadTooLarge,
    /// The request did not arrive whole within the request deadline.
    RequestTimeout,
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        Failure::Domain(err)
    }
}

fn error_body(status: u16, code: &str, detail: &str) -> Value {
    json!({"errors": [{"code": code, "status": status.to_string(), "detail": detail}]})
}

/// The single place where errors become the wire format.
pub fn error_response(failure: Failure) -> Response {
    let err = match failure {
        Failure::MethodNotAllowed(allowed) => {
            let allow = allowed
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Response::json(
                405,
                &error_body(
                    405,
                    "MethodNotAllowedHttpException",
                    &format!("This route supports only {allow}."),
                ),
            )
            .with_header("Allow", allow);
        }
        Failure::PayloadTooLarge => {
            return Response::json(
                413,
                &error_body(
                    413,
                    "PayloadTooLargeException",
                    "The request body is larger than 64 KiB.",
                ),
            );
        }
        Failure::RequestTimeout => {
            return Response::json(
                408,
                &error_body(
                    408,
                    "RequestTimeoutException",
                    "The request did not arrive in time.",
                ),
            );
        }
        Failure::Domain(err) => err,
    };
    let detail = err.to_string();
    let (status, code) = match &err {
        Error::BadRequest(_) => (400, "BadRequestException"),
        Error::Unauthorized | Error::LoginFailed => (401, "InvalidCredentialsException"),
        Error::Forbidden(_) => (403, "InsufficientPermissionsException"),
        Error::InvalidSignature(_) => (403, "InvalidSignatureException"),
        Error::NotFound(_) => (404, "NotFoundHttpException"),
        Error::Conflict(_) => (409, "ConflictingServerStateException"),
        Error::TooManyBackups(_) => (400, "TooManyBackupsException"),
        Error::BackupNotCompleted(_) => (400, "BackupNotCompletedException"),
        Error::BackupFailed(_) => (400, "BackupFailedException"),
        Error::BackupLocked(_) => (400, "BackupIsLockedException"),
        Error::Validation(fields) => {
            let errors: Vec<Value> = fields
                .iter()
                .map(|f| {
                    json!({
                        "code": "ValidationException",
                        "status": "422",
                        "detail": f.detail,
                        "meta": {"source_field": f.field, "rule": f.rule},
                    })
                })
                .collect();
            return Response::json(422, &json!({ "errors": errors }));
        }
        Error::UnsupportedMediaType(_) => (415, "UnsupportedMediaTypeHttpException"),
        Error::TooManyRequests { retry_after, .. } => {
            return Response::json(429, &error_body(429, "TooManyRequestsException", &detail))
                .with_header("Retry-After", retry_after.to_string());
        }
        Error::InsufficientStorage(_) => (507, "InsufficientStorageException"),
        Error::Internal(msg) => {
            log::error!("internal error: {msg}");
            return Response::json(
                500,
                &error_body(
                    500,
                    "InternalServerErrorException",
                    "An unexpected error occurred; the server log has the details.",
                ),
            );
        }
    };
    Response::json(status, &error_body(status, code, &detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content_type: &str, body: &str) -> Request {
        Request::new(
            Method::Post,
            "/",
            vec![("content-type".into(), content_type.into())],
            body.as_bytes().to_vec(),
            None,
        )
    }

    #[test]
    fn form_bodies_read_like_json_ones() {
        let req = request(
            "application/x-www-form-urlencoded; charset=UTF-8",
            "name=Before+update%21&is_locked=1&ignored=&permissions[]=backup.read&permissions[]=backup.create",
        );
        let map = req.body_object().map_err(|e| e.to_string()).unwrap();
        assert_eq!(
            Value::Object(map),
            json!({
                "name": "Before update!",
                "is_locked": "1",
                "ignored": null,
                "permissions": ["backup.read", "backup.create"],
            })
        );
    }

    #[test]
    fn json_bodies_need_an_object() {
        assert!(
            request("application/json", "{\"a\": 1}")
                .body_object()
                .is_ok()
        );
        assert!(request("application/json", "[1]").body_object().is_err());
        assert!(
            request("application/json", "  ")
                .body_object()
                .is_ok_and(|m| m.is_empty())
        );
    }
}
