//! The HTTP/1.1 transport. One thread waits on every open connection with epoll and reads
//! each request whole, head and body, into its connection's buffer; only a complete request
//! goes to the fixed pool of workers, which answer it and give the connection back for the
//! next one. A slow or idle client therefore costs a buffer, never a thread. Downloads are
//! written by threads of their own, at most [`MAX_DOWNLOADS`] at once.
//!
//! This module keeps the connections (deadlines, limits, keep-alive); [`framing`] turns
//! bytes into requests and responses into bytes.

mod framing;

use super::handle;
use super::http::{self, Body, Failure, Method, Request, Response};
use crate::app::App;
use crate::error::Error;
use crossbeam_channel::{Receiver, Sender};
use framing::{MAX_CHUNKED, MAX_HEAD, Parsed, Received, head, parse, serialize};
use rustix::buffer::spare_capacity;
use rustix::event::epoll;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most bytes buffered for a connection: one request at its largest.
const MAX_INPUT: usize = MAX_HEAD + MAX_CHUNKED;
/// Downloads being sent at once; a download beyond gets 429.
const MAX_DOWNLOADS: usize = 32;
/// Descriptors never handed to clients: jobs need them for the walk, archives and SQLite.
const RESERVED_FDS: u64 = 512;
/// Connections allowed whatever the open-file limit, so a tiny limit still serves someone.
const MIN_CONNECTIONS: usize = 16;
/// Pause in accepting after the kernel refused a connection (out of descriptors or memory).
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);
/// At most one log line per this interval about connections refused at the cap.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

const LISTENER: u64 = 0;
const WAKE: u64 = 1;

struct Limits {
    /// For a whole request, from its first byte.
    request: Duration,
    /// For the next request on an open connection.
    idle: Duration,
    /// For any progress while a response is sent.
    stall: Duration,
    connections: usize,
}

/// What the poller shares with the workers and download threads.
struct Shared {
    limits: Limits,
    /// Connections given back by workers, announced on `wake`.
    returned: Mutex<Vec<Conn>>,
    wake: OwnedFd,
    downloads: AtomicUsize,
    stopping: AtomicBool,
}

impl Shared {
    fn give_back(&self, conn: Conn) {
        let mut returned = self.returned.lock().unwrap_or_else(|e| e.into_inner());
        returned.push(conn);
        // The poller takes them all at once: one wake-up per batch is enough.
        if returned.len() == 1 {
            self.wake();
        }
    }

    fn wake(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }
}

/// One open connection's place under the cap, given up when the connection is dropped.
struct OpenSlot(Arc<AtomicUsize>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Conn {
    stream: TcpStream,
    ip: Option<String>,
    /// Bytes received and not yet taken as a request.
    input: Vec<u8>,
    /// Response bytes, sent up to `sent`.
    output: Vec<u8>,
    sent: usize,
    close_when_sent: bool,
    /// When the request being received sent its first byte.
    request_started: Option<Instant>,
    continue_sent: bool,
    deadline: Instant,
    /// The events the poller waits for on this connection.
    interest: epoll::EventFlags,
    _slot: OpenSlot,
}

/// What a connection needs next.
enum Step {
    Wait(epoll::EventFlags),
    Answer(Box<Received>),
    Close,
}

/// A request taken by a worker.
struct Job {
    conn: Conn,
    received: Box<Received>,
}

fn would_block(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
}

impl Conn {
    fn pending_output(&self) -> bool {
        self.sent < self.output.len()
    }

    /// Waits for the next request.
    fn idle(&mut self, limits: &Limits) {
        self.request_started = None;
        self.continue_sent = false;
        self.deadline = Instant::now() + limits.idle;
    }

    fn queue(&mut self, bytes: Vec<u8>, close: bool, limits: &Limits) {
        self.output = bytes;
        self.sent = 0;
        self.close_when_sent = close;
        self.deadline = Instant::now() + limits.stall;
    }

    /// Sends what the socket takes without blocking; true when something was sent.
    fn flush(&mut self) -> std::io::Result<bool> {
        let mut progress = false;
        while self.pending_output() {
            match (&self.stream).write(&self.output[self.sent..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent += n;
                    progress = true;
                }
                Err(e) if would_block(&e) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.pending_output() {
            self.output = Vec::new();
            self.sent = 0;
        }
        Ok(progress)
    }

    /// Reads what the socket holds without blocking, up to [`MAX_INPUT`]; true at end of
    /// stream.
    fn fill(&mut self, scratch: &mut [u8]) -> std::io::Result<bool> {
        while self.input.len() < MAX_INPUT {
            match (&self.stream).read(scratch) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    self.input.extend_from_slice(&scratch[..n]);
                    // A short read emptied the socket; epoll reports whatever comes next.
                    if n < scratch.len() {
                        break;
                    }
                }
                Err(e) if would_block(&e) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Moves the connection on as far as it goes without blocking.
    fn step(&mut self, scratch: &mut [u8], limits: &Limits) -> Step {
        if self.pending_output() {
            match self.flush() {
                Err(_) => return Step::Close,
                Ok(progress) if self.pending_output() => {
                    if progress {
                        self.deadline = Instant::now() + limits.stall;
                    }
                    return Step::Wait(epoll::EventFlags::OUT);
                }
                Ok(_) if self.close_when_sent => return Step::Close,
                Ok(_) => self.idle(limits),
            }
        }
        let Ok(eof) = self.fill(scratch) else {
            return Step::Close;
        };
        if self.input.is_empty() {
            return if eof {
                Step::Close
            } else {
                Step::Wait(epoll::EventFlags::IN)
            };
        }
        if self.request_started.is_none() {
            let now = Instant::now();
            self.request_started = Some(now);
            self.deadline = now + limits.request;
        }
        match parse(&self.input) {
            Parsed::Incomplete { expects_continue } => {
                if eof {
                    return Step::Close;
                }
                if expects_continue && !self.continue_sent {
                    self.continue_sent = true;
                    let _ = (&self.stream).write(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                Step::Wait(epoll::EventFlags::IN)
            }
            Parsed::Complete {
                mut received,
                consumed,
            } => {
                self.input.drain(..consumed);
                if self.input.is_empty() {
                    self.input = Vec::new();
                }
                received.request.ip = self.ip.clone();
                received.keep_alive &= !eof;
                Step::Answer(received)
            }
            Parsed::Bad(failure) => {
                let response = http::error_response(failure);
                log::info!("- - {} (unreadable request)", response.status);
                self.queue(serialize(&response, false, false, false), true, limits);
                self.step(scratch, limits)
            }
        }
    }
}

/// Raises the soft open-file limit to the hard one, and returns it.
fn raise_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// Connections allowed: the setting, lowered so that clients, at two descriptors each (a
/// socket, and an archive when downloading), leave [`RESERVED_FDS`] to the jobs.
fn connection_cap(setting: usize, nofile: u64) -> usize {
    let by_fds = usize::try_from(nofile.saturating_sub(RESERVED_FDS) / 2).unwrap_or(usize::MAX);
    setting.min(by_fds.max(MIN_CONNECTIONS))
}

/// The listening HTTP server and its threads.
pub struct HttpServer {
    shared: Arc<Shared>,
    poller: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
    addr: Option<std::net::SocketAddr>,
}

impl HttpServer {
    pub fn start(app: Arc<App>) -> Result<HttpServer, Error> {
        let config = &app.config;
        let cannot = |e: &dyn std::fmt::Display| {
            Error::internal(format!("cannot listen on {}: {e}", config.listen))
        };
        let nofile = raise_file_limit();
        let connections = connection_cap(config.max_connections, nofile);
        if connections < config.max_connections {
            log::warn!(
                "the open-file limit ({nofile}) allows {connections} connections, not \
                 max_connections ({}): {RESERVED_FDS} descriptors are kept for jobs and each \
                 connection may need two; raise the limit (LimitNOFILE) to allow more",
                config.max_connections
            );
        }
        log::info!("accepting at most {connections} connections (open-file limit {nofile})");
        let listener = TcpListener::bind(&config.listen).map_err(|e| cannot(&e))?;
        // Accepted sockets inherit TCP_NODELAY: a response is written in pieces (head, then
        // file), and Nagle's algorithm would hold the last one for the client's delayed ACK.
        let socket = socket2::SockRef::from(&listener);
        socket.set_tcp_nodelay(true).map_err(|e| cannot(&e))?;
        // The standard library listens with a queue of 128: a burst of new clients beyond it
        // has its handshakes dropped and retried seconds later. Linux lets a listening
        // socket's queue be resized, and caps it at net.core.somaxconn.
        socket
            .listen(i32::try_from(connections).unwrap_or(i32::MAX))
            .map_err(|e| cannot(&e))?;
        listener.set_nonblocking(true).map_err(|e| cannot(&e))?;
        let addr = listener.local_addr().ok();
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| cannot(&e))?;
        let wake = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .map_err(|e| cannot(&e))?;
        let readable = epoll::EventFlags::IN;
        epoll::add(
            &epoll,
            &listener,
            epoll::EventData::new_u64(LISTENER),
            readable,
        )
        .map_err(|e| cannot(&e))?;
        epoll::add(&epoll, &wake, epoll::EventData::new_u64(WAKE), readable)
            .map_err(|e| cannot(&e))?;
        let secs = Duration::from_secs;
        let shared = Arc::new(Shared {
            limits: Limits {
                request: secs(config.request_timeout_secs),
                idle: secs(config.idle_timeout_secs),
                stall: secs(config.http_timeout_secs),
                connections,
            },
            returned: Mutex::new(Vec::new()),
            wake,
            downloads: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        });
        let (jobs, queue) = crossbeam_channel::unbounded();
        let workers = (0..config.http_threads)
            .map(|i| {
                let (app, queue, shared) = (app.clone(), queue.clone(), shared.clone());
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || worker(&app, &queue, &shared))
                    .map_err(|e| cannot(&e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let poller = Poller {
            epoll,
            listener,
            conns: HashMap::new(),
            next_token: WAKE + 1,
            next_deadline: Instant::now() + Duration::from_secs(3600),
            accept_paused_until: None,
            open: Arc::new(AtomicUsize::new(0)),
            refused: 0,
            refusals_logged: None,
            jobs,
            shared: shared.clone(),
        };
        let poller = std::thread::Builder::new()
            .name("http-poll".into())
            .spawn(move || poller.run())
            .map_err(|e| cannot(&e))?;
        Ok(HttpServer {
            shared,
            poller,
            workers,
            addr,
        })
    }

    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.addr
    }

    /// Stops taking requests and waits for the workers to answer the ones they hold.
    pub fn stop(self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake();
        let _ = self.poller.join();
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// The thread that holds every connection waiting for (or receiving) a request, or
/// waiting to take the rest of a response.
struct Poller {
    epoll: OwnedFd,
    listener: TcpListener,
    conns: HashMap<u64, Conn>,
    next_token: u64,
    /// No connection's deadline is earlier.
    next_deadline: Instant,
    accept_paused_until: Option<Instant>,
    open: Arc<AtomicUsize>,
    /// Connections refused at the cap since the last log line about it.
    refused: u64,
    refusals_logged: Option<Instant>,
    jobs: Sender<Job>,
    shared: Arc<Shared>,
}

impl Poller {
    fn run(mut self) {
        let mut events = Vec::with_capacity(256);
        let mut scratch = vec![0u8; 16 * 1024];
        while !self.shared.stopping.load(Ordering::SeqCst) {
            let wait = self
                .next_deadline
                .saturating_duration_since(Instant::now())
                // Whole milliseconds up, so an almost-due deadline does not spin.
                .max(Duration::from_millis(1));
            let timeout = rustix::event::Timespec {
                tv_sec: wait.as_secs() as _,
                tv_nsec: wait.subsec_nanos() as _,
            };
            events.clear();
            if let Err(e) = epoll::wait(&self.epoll, spare_capacity(&mut events), Some(&timeout)) {
                if e != rustix::io::Errno::INTR {
                    log::error!("waiting for connections failed: {e}");
                    std::thread::sleep(ACCEPT_PAUSE);
                }
                continue;
            }
            for event in &events {
                match event.data.u64() {
                    LISTENER => self.accept(),
                    WAKE => self.take_returned(),
                    token => {
                        if let Some(conn) = self.conns.remove(&token) {
                            self.advance(token, conn, &mut scratch);
                        }
                    }
                }
            }
            if Instant::now() >= self.next_deadline {
                self.expire();
            }
        }
    }

    fn accept(&mut self) {
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if would_block(&e) => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    // Out of descriptors or memory: the listener stays readable, so stop
                    // watching it for a moment instead of spinning.
                    log::error!("cannot accept a connection: {e}");
                    let _ = epoll::modify(
                        &self.epoll,
                        &self.listener,
                        epoll::EventData::new_u64(LISTENER),
                        epoll::EventFlags::empty(),
                    );
                    let until = Instant::now() + ACCEPT_PAUSE;
                    self.accept_paused_until = Some(until);
                    self.next_deadline = self.next_deadline.min(until);
                    return;
                }
            };
            if self.open.load(Ordering::SeqCst) >= self.shared.limits.connections {
                self.refuse();
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            self.open.fetch_add(1, Ordering::SeqCst);
            let ip = stream.peer_addr().ok().map(|a| a.ip().to_string());
            let mut conn = Conn {
                stream,
                ip,
                input: Vec::new(),
                output: Vec::new(),
                sent: 0,
                close_when_sent: false,
                request_started: None,
                continue_sent: false,
                deadline: Instant::now(),
                interest: epoll::EventFlags::empty(),
                _slot: OpenSlot(self.open.clone()),
            };
            conn.idle(&self.shared.limits);
            self.admit(conn);
        }
    }

    fn refuse(&mut self) {
        self.refused += 1;
        let due = self
            .refusals_logged
            .is_none_or(|at| at.elapsed() >= REFUSAL_LOG_INTERVAL);
        if due {
            log::warn!(
                "{} connections closed at once: {} open, the most allowed",
                self.refused,
                self.shared.limits.connections
            );
            self.refused = 0;
            self.refusals_logged = Some(Instant::now());
        }
    }

    fn take_returned(&mut self) {
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&self.shared.wake, &mut count);
        let returned = std::mem::take(
            &mut *self
                .shared
                .returned
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for mut conn in returned {
            if !conn.pending_output() {
                conn.idle(&self.shared.limits);
            }
            self.admit(conn);
        }
    }

    /// Starts watching a connection, and takes it as far as it goes.
    fn admit(&mut self, mut conn: Conn) {
        let token = self.next_token;
        self.next_token += 1;
        conn.interest = epoll::EventFlags::IN;
        let data = epoll::EventData::new_u64(token);
        if epoll::add(&self.epoll, &conn.stream, data, conn.interest).is_err() {
            return;
        }
        if conn.input.is_empty() && !conn.pending_output() {
            // Nothing to do before the client sends: epoll reports it, even if already here.
            self.next_deadline = self.next_deadline.min(conn.deadline);
            self.conns.insert(token, conn);
            return;
        }
        let mut scratch = [0u8; 4096];
        self.advance(token, conn, &mut scratch);
    }

    fn advance(&mut self, token: u64, mut conn: Conn, scratch: &mut [u8]) {
        match conn.step(scratch, &self.shared.limits) {
            Step::Wait(interest) => {
                if interest != conn.interest {
                    let data = epoll::EventData::new_u64(token);
                    if epoll::modify(&self.epoll, &conn.stream, data, interest).is_err() {
                        return;
                    }
                    conn.interest = interest;
                }
                self.next_deadline = self.next_deadline.min(conn.deadline);
                self.conns.insert(token, conn);
            }
            Step::Answer(received) => {
                let _ = epoll::delete(&self.epoll, &conn.stream);
                let _ = self.jobs.send(Job { conn, received });
            }
            Step::Close => {}
        }
    }

    /// Closes the connections past their deadline, answering 408 to a request that did not
    /// arrive in time.
    fn expire(&mut self) {
        let now = Instant::now();
        let limits = &self.shared.limits;
        self.conns.retain(|_, conn| {
            if conn.deadline > now {
                return true;
            }
            if !conn.pending_output() && conn.request_started.is_some() {
                let response = http::error_response(Failure::RequestTimeout);
                log::info!("- - 408 (request not received in time)");
                conn.queue(serialize(&response, false, false, false), true, limits);
                let _ = conn.flush();
            }
            false
        });
        let mut next = self.conns.values().map(|c| c.deadline).min();
        if let Some(until) = self.accept_paused_until {
            if until <= now {
                self.accept_paused_until = None;
                let _ = epoll::modify(
                    &self.epoll,
                    &self.listener,
                    epoll::EventData::new_u64(LISTENER),
                    epoll::EventFlags::IN,
                );
            } else {
                next = Some(next.map_or(until, |n| n.min(until)));
            }
        }
        self.next_deadline = next.unwrap_or(now + Duration::from_secs(3600));
    }
}

fn worker(app: &App, queue: &Receiver<Job>, shared: &Arc<Shared>) {
    for Job { mut conn, received } in queue {
        let started = Instant::now();
        let Received {
            request,
            keep_alive,
            http10,
        } = *received;
        let mut response = handle(app, &request);
        let head_only = request.method == Method::Head;
        if matches!(response.body, Body::File { .. }) {
            if let Some(slot) = DownloadSlot::take(shared) {
                log_request(&request, response.status, started);
                start_download(conn, response, head_only, keep_alive, http10, slot);
                continue;
            }
            let busy = Error::TooManyRequests {
                detail: format!("{MAX_DOWNLOADS} downloads are running: try again shortly."),
                retry_after: 10,
            };
            response = http::error_response(Failure::Domain(busy));
        }
        log_request(&request, response.status, started);
        let bytes = serialize(&response, head_only, keep_alive, http10);
        conn.queue(bytes, !keep_alive, &shared.limits);
        match conn.flush() {
            Ok(_) if conn.pending_output() || keep_alive => shared.give_back(conn),
            _ => {}
        }
    }
}

fn log_request(request: &Request, status: u16, started: Instant) {
    log::info!(
        "{} {} {} {}ms",
        request.method.as_str(),
        request.path,
        status,
        started.elapsed().as_millis()
    );
}

/// One of the [`MAX_DOWNLOADS`] downloads that may run at once, given up when dropped.
struct DownloadSlot(Arc<Shared>);

impl DownloadSlot {
    fn take(shared: &Arc<Shared>) -> Option<DownloadSlot> {
        let running = shared.downloads.fetch_add(1, Ordering::SeqCst);
        let slot = DownloadSlot(shared.clone());
        (running < MAX_DOWNLOADS).then_some(slot)
    }
}

impl Drop for DownloadSlot {
    fn drop(&mut self) {
        self.0.downloads.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Sends a file response on a thread of its own, so a slow download holds no worker.
fn start_download(
    conn: Conn,
    response: Response,
    head_only: bool,
    keep_alive: bool,
    http10: bool,
    slot: DownloadSlot,
) {
    let spawned = std::thread::Builder::new()
        .name("download".into())
        .spawn(move || {
            let shared = slot.0.clone();
            let sent = send_file(&conn, &response, head_only, keep_alive, http10, &shared);
            drop(slot);
            match sent {
                Ok(()) if keep_alive => shared.give_back(conn),
                Ok(()) => {}
                Err(e) => log::debug!("download ended early: {e}"),
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start a download thread: {e}");
    }
}

/// Writes a file response with sendfile(2), blocking, each write bounded by the stall
/// limit; the connection is left non-blocking again for the poller.
fn send_file(
    conn: &Conn,
    response: &Response,
    head_only: bool,
    keep_alive: bool,
    http10: bool,
    shared: &Shared,
) -> std::io::Result<()> {
    let Body::File { file, len } = &response.body else {
        unreachable!("only file responses are downloads");
    };
    let mut stream = &conn.stream;
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(shared.limits.stall))?;
    stream.write_all(head(response, *len, keep_alive, http10).as_bytes())?;
    let mut left = if head_only { 0 } else { *len };
    while left > 0 {
        let chunk = usize::try_from(left.min(1 << 30)).unwrap_or(1 << 30);
        match rustix::fs::sendfile(stream, file, None, chunk) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => left -= n as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    stream.set_write_timeout(None)?;
    stream.set_nonblocking(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_descriptors_to_jobs() {
        assert_eq!(connection_cap(1024, 1024), 256);
        assert_eq!(connection_cap(1024, 1 << 20), 1024);
        assert_eq!(connection_cap(1024, 64), MIN_CONNECTIONS);
    }
}
