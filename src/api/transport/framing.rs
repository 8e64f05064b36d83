//! HTTP/1.1 framing: a whole request from the bytes received (httparse parses the head),
//! and the bytes of a response.

use crate::api::http::{Body, Failure, MAX_BODY, Method, Request, Response};
use crate::error::Error;

/// Largest request head (request line and headers).
pub(super) const MAX_HEAD: usize = 32 * 1024;
/// Most header lines in a request.
const MAX_HEADERS: usize = 128;
/// Largest chunked body as sent, framing included: tiny chunks cost more than their data.
pub(super) const MAX_CHUNKED: usize = 2 * MAX_BODY;

/// Sent with every response, unless the handler set its own value.
const SECURITY_HEADERS: [(&str, &str); 3] = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
];

/// A request read whole, with how to answer it.
pub(super) struct Received {
    pub request: Request,
    pub keep_alive: bool,
    pub http10: bool,
}

/// What the bytes received so far hold.
pub(super) enum Parsed {
    Incomplete {
        expects_continue: bool,
    },
    Complete {
        received: Box<Received>,
        consumed: usize,
    },
    Bad(Failure),
}

fn bad(detail: &str) -> Parsed {
    Parsed::Bad(Failure::Domain(Error::BadRequest(detail.to_string())))
}

/// Reads one request from the start of `input`, if all of it is there.
pub(super) fn parse(input: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let head_len = match head.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if input.len() > MAX_HEAD => {
            return bad("The request head is larger than 32 KiB.");
        }
        Ok(httparse::Status::Partial) => {
            return Parsed::Incomplete {
                expects_continue: false,
            };
        }
        Err(httparse::Error::TooManyHeaders) => return bad("The request has too many headers."),
        Err(_) => return bad("The request is not valid HTTP/1.1."),
    };
    if head_len > MAX_HEAD {
        return bad("The request head is larger than 32 KiB.");
    }
    let headers: Vec<(String, String)> = head
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let has_token = |name: &'static str, token: &str| {
        values(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let http10 = head.version == Some(0);
    let keep_alive = if http10 {
        has_token("connection", "keep-alive")
    } else {
        !has_token("connection", "close")
    };
    let expects_continue = has_token("expect", "100-continue");
    let mut lengths = values("content-length");
    let length = match (lengths.next(), values("transfer-encoding").next()) {
        (Some(_), Some(_)) => {
            return bad("The request has both Content-Length and Transfer-Encoding.");
        }
        (None, Some(_)) if has_token("transfer-encoding", "chunked") => None,
        (None, Some(_)) => return bad("The request's Transfer-Encoding is not supported."),
        (None, None) => Some(0),
        (Some(first), None) => {
            let Ok(n) = first.parse::<usize>() else {
                return bad("The request's Content-Length is not a number.");
            };
            if lengths.any(|other| other != first) {
                return bad("The request has conflicting Content-Length headers.");
            }
            Some(n)
        }
    };
    let rest = &input[head_len..];
    let (body, body_len) = match length {
        Some(n) if n > MAX_BODY => return Parsed::Bad(Failure::PayloadTooLarge),
        Some(n) if rest.len() < n => return Parsed::Incomplete { expects_continue },
        Some(n) => (rest[..n].to_vec(), n),
        None => match dechunk(rest) {
            Chunked::Whole { body, consumed } => (body, consumed),
            Chunked::Partial if rest.len() >= MAX_CHUNKED => {
                return Parsed::Bad(Failure::PayloadTooLarge);
            }
            Chunked::Partial => return Parsed::Incomplete { expects_continue },
            Chunked::TooLarge => return Parsed::Bad(Failure::PayloadTooLarge),
            Chunked::Invalid => return bad("The request's chunked body is malformed."),
        },
    };
    let request = Request::new(
        Method::parse(head.method.unwrap_or_default()),
        head.path.unwrap_or_default(),
        headers,
        body,
        None,
    );
    Parsed::Complete {
        received: Box::new(Received {
            request,
            keep_alive,
            http10,
        }),
        consumed: head_len + body_len,
    }
}

enum Chunked {
    Whole { body: Vec<u8>, consumed: usize },
    Partial,
    TooLarge,
    Invalid,
}

/// Decodes a chunked body from the start of `data`, if all of it is there.
fn dechunk(data: &[u8]) -> Chunked {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let (line, size) = match httparse::parse_chunk_size(&data[pos..]) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Chunked::Partial,
            Err(_) => return Chunked::Invalid,
        };
        pos += line;
        if size == 0 {
            // Trailer fields, if any, end with an empty line.
            let rest = &data[pos..];
            if rest.starts_with(b"\r\n") {
                return Chunked::Whole {
                    body,
                    consumed: pos + 2,
                };
            }
            return match rest.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(end) => Chunked::Whole {
                    body,
                    consumed: pos + end + 4,
                },
                None => Chunked::Partial,
            };
        }
        let Some(size) = usize::try_from(size)
            .ok()
            .filter(|s| body.len() + s <= MAX_BODY)
        else {
            return Chunked::TooLarge;
        };
        if data.len() < pos + size + 2 {
            return Chunked::Partial;
        }
        if &data[pos + size..pos + size + 2] != b"\r\n" {
            return Chunked::Invalid;
        }
        body.extend_from_slice(&data[pos..pos + size]);
        pos += size + 2;
    }
}

/// The status line and headers of a response whose body is `len` bytes.
pub(super) fn head(response: &Response, len: u64, keep_alive: bool, http10: bool) -> String {
    use std::fmt::Write;
    let status = response.status;
    let reason = ::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let date = jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S GMT");
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nDate: {date}\r\n");
    let own = |name: &str| response.headers.iter().any(|(h, _)| *h == name);
    let defaults = SECURITY_HEADERS.iter().filter(|(n, _)| !own(n));
    for (name, value) in defaults.map(|(n, v)| (*n, *v)).chain(
        response
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .filter(|(_, v)| !v.contains(['\r', '\n'])),
    ) {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    // 204 and 304 have no body to measure, and must not claim one.
    if !matches!(status, 204 | 304) {
        let _ = write!(head, "Content-Length: {len}\r\n");
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    } else if http10 {
        head.push_str("Connection: keep-alive\r\n");
    }
    head.push_str("\r\n");
    head
}

/// A whole in-memory response, its body left out for HEAD.
pub(super) fn serialize(
    response: &Response,
    head_only: bool,
    keep_alive: bool,
    http10: bool,
) -> Vec<u8> {
    let mut out = head(response, response.body_len(), keep_alive, http10).into_bytes();
    if let (Body::Bytes(body), false) = (&response.body, head_only) {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_only_when_whole() {
        let whole = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET";
        match dechunk(whole) {
            Chunked::Whole { body, consumed } => {
                assert_eq!(body, b"hello world");
                assert_eq!(&whole[consumed..], b"GET");
            }
            _ => panic!("a whole body"),
        }
        assert!(matches!(dechunk(b"5\r\nhel"), Chunked::Partial));
        assert!(matches!(dechunk(b"5\r\nhelloXX"), Chunked::Invalid));
        assert!(matches!(dechunk(b"fffff\r\n"), Chunked::TooLarge));
    }
}
