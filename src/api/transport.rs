//! The HTTP transport: tiny_http's listener, the threads that take requests from it, and
//! the writing of responses.

use super::handle;
use super::http::{self, Body, Failure, Method, Request, Response};
use crate::app::App;
use crate::error::Error;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

const SECURITY_HEADERS: [(&str, &str); 3] = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
];

fn header(name: &str, value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

/// Sends a response; file bodies stream from disk with a fixed-size buffer.
fn send(rq: tiny_http::Request, response: Response, head_only: bool) {
    let mut headers: Vec<(&str, String)> = SECURITY_HEADERS
        .iter()
        .filter(|(n, _)| !response.headers.iter().any(|(h, _)| h == n))
        .map(|(n, v)| (*n, v.to_string()))
        .collect();
    headers.extend(response.headers.iter().map(|(n, v)| (*n, v.clone())));
    let len = response.body_len();
    let status = tiny_http::StatusCode(response.status);
    let result = match response.body {
        Body::File { file, len } => send_file(rq, status, &headers, file, len, head_only),
        body => {
            let reader: Box<dyn Read + Send> = match body {
                Body::Bytes(bytes) if !head_only => Box::new(std::io::Cursor::new(bytes)),
                _ => Box::new(std::io::empty()),
            };
            let headers = headers.iter().filter_map(|(n, v)| header(n, v)).collect();
            // Never chunked: clients (and HEAD requests) get the real Content-Length.
            let out = tiny_http::Response::new(status, headers, reader, Some(len as usize), None)
                .with_chunked_threshold(usize::MAX);
            rq.respond(out)
        }
    };
    if let Err(e) = result {
        log::debug!("client went away while sending the response: {e}");
    }
}

/// Writes a file response on the connection directly, in 1 MiB writes: tiny_http copies
/// bodies in 8 KiB pieces, a send call each, which capped downloads well below disk speed.
fn send_file(
    rq: tiny_http::Request,
    status: tiny_http::StatusCode,
    headers: &[(&str, String)],
    file: std::fs::File,
    len: u64,
    head_only: bool,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.0,
        status.default_reason_phrase()
    );
    for (name, value) in headers {
        if !value.contains(['\r', '\n']) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {len}\r\n\r\n"));
    let mut out = rq.into_writer();
    out.write_all(head.as_bytes())?;
    if !head_only {
        let mut body = file.take(len);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            out.write_all(&buf[..n])?;
        }
    }
    out.flush()
}

/// Raises the open-file limit to its hard maximum: tiny_http's accept thread gives up for
/// good when it runs out of descriptors.
fn raise_file_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The listening HTTP server and its worker threads.
pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    workers: Vec<std::thread::JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
}

impl HttpServer {
    pub fn start(app: Arc<App>) -> Result<HttpServer, Error> {
        raise_file_limit();
        let cannot = |e: &dyn std::fmt::Display| {
            Error::internal(format!("cannot listen on {}: {e}", app.config.listen))
        };
        let listener = std::net::TcpListener::bind(&app.config.listen).map_err(|e| cannot(&e))?;
        // Accepted sockets inherit TCP_NODELAY. tiny_http writes a response in 1 KiB pieces;
        // with Nagle's algorithm, each response would wait ~40 ms for the client's delayed ACK.
        socket2::SockRef::from(&listener)
            .set_tcp_nodelay(true)
            .map_err(|e| cannot(&e))?;
        let timeout = std::time::Duration::from_secs(app.config.http_timeout_secs);
        let server =
            tiny_http::Server::from_listener_with_io_timeout(listener, None, Some(timeout))
                .map_err(|e| cannot(&e))?;
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let workers = (0..app.config.http_threads)
            .map(|i| {
                let (server, app, stopping) = (server.clone(), app.clone(), stopping.clone());
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || worker(&server, &app, &stopping))
                    .expect("cannot start an HTTP thread")
            })
            .collect();
        Ok(HttpServer {
            server,
            workers,
            stopping,
        })
    }

    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.server_addr().to_ip()
    }

    /// Stops taking requests and waits for the workers to finish the ones they hold.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in &self.workers {
            self.server.unblock();
        }
        for w in self.workers {
            let _ = w.join();
        }
    }
}

fn worker(server: &tiny_http::Server, app: &App, stopping: &AtomicBool) {
    while !stopping.load(Ordering::SeqCst) {
        let mut rq = match server.recv() {
            Ok(rq) => rq,
            Err(_) if stopping.load(Ordering::SeqCst) => break,
            Err(e) => {
                log::warn!("cannot receive a request: {e}");
                continue;
            }
        };
        let started = Instant::now();
        let (method, path, response) = match Request::read(&mut rq) {
            Ok(req) => {
                let response = handle(app, &req);
                (req.method, req.path, response)
            }
            Err(err) => {
                let response = match err {
                    http::ReadError::TooLarge => http::error_response(Failure::PayloadTooLarge),
                    http::ReadError::Io(e) => http::error_response(Failure::Domain(
                        Error::BadRequest(format!("Cannot read the request body: {e}.")),
                    )),
                };
                let path = rq.url().split('?').next().unwrap_or("").to_string();
                (Method::Other, path, response)
            }
        };
        let status = response.status;
        let head_only = method == Method::Head;
        let streams = matches!(response.body, Body::File { .. });
        if streams {
            // Long downloads get their own thread so slow clients cannot hold API workers.
            let _ = std::thread::Builder::new()
                .name("download".into())
                .spawn(move || send(rq, response, head_only));
        } else {
            send(rq, response, head_only);
        }
        log::info!(
            "{} {} {} {}ms",
            method.as_str(),
            path,
            status,
            started.elapsed().as_millis()
        );
    }
}
