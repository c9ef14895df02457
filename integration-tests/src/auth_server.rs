//! Auth server: a small real HTTP/1.1 server that tests put behind an Envoy cluster as the JWKS
//! endpoint, the revocation-list endpoint or a token introspection service.
//!
//! Plain `std::net` and threads, on purpose: tests need to *break* it the way real services
//! break (answer late, die, come back on the same port), which is easier to control here than
//! in an async server. Everything is bounded: connections (and so threads), header and body
//! sizes, the request log, the per-path hit counters, and every read and write has a timeout.
//!
//! - [`AuthServer::set`]: the response for a path (replaceable at runtime); unknown paths 404.
//! - [`AuthServer::set_delay`]: answer a path late (timeouts).
//! - [`AuthServer::hits`] / [`AuthServer::requests`]: what arrived.
//! - [`AuthServer::stop`] / [`AuthServer::restart`]: the service killed (listener closed, open
//!   keep-alive connections reset, so Envoy's pooled connections fail too), then back on the
//!   same port with the same responses.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// At most this many open connections (one thread each); more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// Request line plus headers.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Request body (introspection forms and the like are tiny).
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Requests kept by [`AuthServer::requests`]; older ones are forgotten.
pub const MAX_LOGGED_REQUESTS: usize = 1000;
/// Distinct paths counted by [`AuthServer::hits`]; further paths are not counted.
const MAX_COUNTED_PATHS: usize = 1024;
/// A keep-alive connection idle this long is closed. Longer than any test, so the server never
/// closes a connection Envoy is about to reuse (that race would look like a service failure).
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a delayed answer checks whether the server was stopped meanwhile.
const DELAY_STEP: Duration = Duration::from_millis(5);

/// One request as the auth server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub method: String,
    /// The request target as sent (path and query).
    pub path: String,
    /// Lowercase names, in arrival order, values lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked if it was sent chunked.
    pub body: Vec<u8>,
}

impl AuthRequest {
    /// The first value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
struct Canned {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

/// Computes a response from the request: (status, content type, body).
pub type Handler = Arc<dyn Fn(&AuthRequest) -> (u16, String, Vec<u8>) + Send + Sync>;

/// State shared by the handle and every server thread; survives stop/restart.
#[derive(Default)]
struct Shared {
    handlers: Mutex<HashMap<String, Handler>>,
    responses: Mutex<HashMap<String, Canned>>,
    delays: Mutex<HashMap<String, Duration>>,
    hits: Mutex<HashMap<String, usize>>,
    log: Mutex<VecDeque<AuthRequest>>,
}

/// One listening period, from start (or restart) to stop.
struct Running {
    stopping: Arc<AtomicBool>,
    listener: Arc<TcpListener>,
    acceptor: JoinHandle<()>,
}

/// A running auth server on 127.0.0.1; stopped when dropped.
pub struct AuthServer {
    port: u16,
    shared: Arc<Shared>,
    running: Option<Running>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not turn every later call into a poison error.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl AuthServer {
    /// Starts on a free loopback port. Panics if that fails (test helper).
    pub fn start() -> AuthServer {
        AuthServer::try_start().unwrap_or_else(|e| panic!("auth server: cannot start: {e}"))
    }

    /// [`start`](Self::start), or the error.
    pub fn try_start() -> io::Result<AuthServer> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::default());
        let running = Some(listen(listener, Arc::clone(&shared))?);
        Ok(AuthServer {
            port,
            shared,
            running,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers requests for `path` with this response from now on (replacing any earlier one).
    /// `path` matches the request target exactly, or its path without the query string.
    pub fn set(&self, path: &str, status: u16, content_type: &str, body: impl Into<Vec<u8>>) {
        lock(&self.shared.responses).insert(
            path.to_string(),
            Canned {
                status,
                content_type: content_type.to_string(),
                body: body.into(),
            },
        );
    }

    /// [`set`](Self::set) with `200` and `application/json`.
    pub fn set_json(&self, path: &str, body: &serde_json::Value) {
        self.set(path, 200, "application/json", body.to_string());
    }

    /// Forgets the response for `path` (it answers 404 again).
    pub fn unset(&self, path: &str) {
        lock(&self.shared.responses).remove(path);
    }

    /// Answers `path` only after `delay` (`Duration::ZERO` removes the delay). The request is
    /// counted and logged when it arrives, before the delay.
    pub fn set_delay(&self, path: &str, delay: Duration) {
        let mut delays = lock(&self.shared.delays);
        if delay.is_zero() {
            delays.remove(path);
        } else {
            delays.insert(path.to_string(), delay);
        }
    }

    /// Requests received for `path` (a target with a query is also counted under its path).
    pub fn hits(&self, path: &str) -> usize {
        lock(&self.shared.hits).get(path).copied().unwrap_or(0)
    }

    /// The last [`MAX_LOGGED_REQUESTS`] requests, oldest first.
    pub fn requests(&self) -> Vec<AuthRequest> {
        lock(&self.shared.log).iter().cloned().collect()
    }

    /// Answers a path with a function of the request (e.g. an introspection endpoint that
    /// answers per token). Takes precedence over [`AuthServer::set`] for that path.
    pub fn set_handler(
        &self,
        path: &str,
        handler: impl Fn(&AuthRequest) -> (u16, String, Vec<u8>) + Send + Sync + 'static,
    ) {
        lock(&self.shared.handlers).insert(path.to_string(), Arc::new(handler));
    }

    /// Forgets the request log and the hit counters (responses and delays stay).
    pub fn clear(&self) {
        lock(&self.shared.log).clear();
        lock(&self.shared.hits).clear();
    }

    /// Waits until `path` has at least `count` hits; false if `timeout` passes first.
    pub fn wait_for_hits(&self, path: &str, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.hits(path) >= count {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The service dies: the listener is closed (new connections are refused), open
    /// connections are reset and delayed answers are abandoned. Returns once every server
    /// thread has exited. Does nothing if already stopped.
    #[allow(unsafe_code)] // libc::shutdown, SAFETY argument below
    pub fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.stopping.store(true, Ordering::SeqCst);
        // Wakes the blocked accept(): on Linux shutdown() of a listening socket makes accept
        // fail at once (closing the fd from another thread would not).
        // SAFETY: the fd belongs to `running.listener`, alive (Arc) until after the join below.
        unsafe {
            libc::shutdown(running.listener.as_raw_fd(), libc::SHUT_RDWR);
        }
        let _ = running.acceptor.join();
        // `running.listener` is the last reference: dropping it closes the socket.
    }

    /// Listens again on the same port, with the same responses, delays, counters and log.
    /// Panics if the port cannot be bound (test helper). Does nothing if running.
    pub fn restart(&mut self) {
        if self.running.is_some() {
            return;
        }
        let started = TcpListener::bind(self.addr())
            .and_then(|listener| listen(listener, Arc::clone(&self.shared)));
        match started {
            Ok(running) => self.running = Some(running),
            Err(e) => panic!("auth server: cannot listen again on {}: {e}", self.addr()),
        }
    }

    /// An Envoy STATIC cluster named `name` that sends HTTP/1.1 to this server, as YAML (for a
    /// bootstrap's `static_resources.clusters`).
    pub fn cluster(&self, name: &str) -> serde_yaml::Value {
        let json = serde_json::json!({
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                    "address": "127.0.0.1",
                    "port_value": self.port,
                }}}}]}],
            },
        });
        serde_yaml::to_value(json).unwrap_or(serde_yaml::Value::Null)
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn listen(listener: TcpListener, shared: Arc<Shared>) -> io::Result<Running> {
    let listener = Arc::new(listener);
    let stopping = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let listener = Arc::clone(&listener);
        let stopping = Arc::clone(&stopping);
        std::thread::Builder::new()
            .name("auth-server".into())
            .spawn(move || accept_loop(&listener, &stopping, &shared))?
    };
    Ok(Running {
        stopping,
        listener,
        acceptor,
    })
}

/// Open connections of one listening period: threads to join and sockets to reset on stop.
#[derive(Default)]
struct Connections {
    next_id: AtomicU64,
    streams: Mutex<HashMap<u64, TcpStream>>,
}

fn accept_loop(listener: &TcpListener, stopping: &Arc<AtomicBool>, shared: &Arc<Shared>) {
    let connections = Arc::new(Connections::default());
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let accepted = listener.accept();
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let mut stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // EMFILE and the like: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        threads.retain(|t| !t.is_finished());
        if threads.len() >= MAX_CONNECTIONS {
            let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
            let _ = write_response(
                &mut stream,
                503,
                "text/plain",
                b"too many connections",
                true,
            );
            // No lingering close here (it would stall accepting): FIN first, then close.
            let _ = stream.shutdown(Shutdown::Write);
            continue;
        }
        let id = connections.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(copy) = stream.try_clone() {
            lock(&connections.streams).insert(id, copy);
        }
        let shared = Arc::clone(shared);
        let stopping_conn = Arc::clone(stopping);
        let connections_conn = Arc::clone(&connections);
        let spawned = std::thread::Builder::new()
            .name("auth-server-conn".into())
            .spawn(move || {
                serve_connection(stream, &shared, &stopping_conn);
                lock(&connections_conn.streams).remove(&id);
            });
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(_) => {
                if let Some(stream) = lock(&connections.streams).remove(&id) {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
        }
    }
    // Stopped: reset every open connection (their blocked reads return), then wait for them.
    for stream in lock(&connections.streams).values() {
        let _ = stream.set_linger_zero();
    }
    for thread in threads {
        let _ = thread.join();
    }
}

/// `SO_LINGER 0` then shutdown: the peer sees a reset, as when a process is killed mid-flight.
trait ResetExt {
    fn set_linger_zero(&self) -> io::Result<()>;
}

impl ResetExt for TcpStream {
    #[allow(unsafe_code)] // libc::setsockopt, SAFETY argument below
    fn set_linger_zero(&self) -> io::Result<()> {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid socket fd and a correctly sized, initialised option value.
        let rc = unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                std::ptr::addr_of!(linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        let result = if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        };
        self.shutdown(Shutdown::Both)?;
        result
    }
}

/// Why a request could not be read.
enum ReadError {
    /// The peer closed (or the server stopped) between requests: not worth an answer.
    Closed,
    /// A broken request: answer 400 (or 413) and close.
    Bad(u16, &'static str),
}

fn serve_connection(stream: TcpStream, shared: &Shared, stopping: &AtomicBool) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while !stopping.load(Ordering::SeqCst) {
        let request = match read_request(&mut reader) {
            Ok(r) => r,
            Err(ReadError::Closed) => return,
            Err(ReadError::Bad(status, message)) => {
                let _ = write_response(&mut writer, status, "text/plain", message.as_bytes(), true);
                lingering_close(&mut reader, &writer);
                return;
            }
        };
        let (request, keep_alive) = request;
        let route = route_key(&request.path).to_string();
        record(shared, &request, &route);

        let delay = {
            let delays = lock(&shared.delays);
            delays
                .get(&request.path)
                .or_else(|| delays.get(&route))
                .copied()
        };
        if let Some(delay) = delay {
            let deadline = Instant::now() + delay;
            while Instant::now() < deadline {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(
                    DELAY_STEP.min(deadline.saturating_duration_since(Instant::now())),
                );
            }
        }
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let handler = {
            let handlers = lock(&shared.handlers);
            handlers
                .get(&request.path)
                .or_else(|| handlers.get(&route))
                .cloned()
        };
        let canned = match handler {
            Some(h) => {
                let (status, content_type, body) = h(&request);
                Some(Canned {
                    status,
                    content_type,
                    body,
                })
            }
            None => {
                let responses = lock(&shared.responses);
                responses
                    .get(&request.path)
                    .or_else(|| responses.get(&route))
                    .cloned()
            }
        };
        let canned = canned.unwrap_or_else(|| Canned {
            status: 404,
            content_type: "text/plain".into(),
            body: b"not found".to_vec(),
        });
        let body: &[u8] = if request.method == "HEAD" {
            b""
        } else {
            &canned.body
        };
        let written = write_head_and_body(
            &mut writer,
            canned.status,
            &canned.content_type,
            canned.body.len(),
            body,
            !keep_alive,
        );
        if written.is_err() || !keep_alive {
            return;
        }
    }
}

/// After an error answer: stop sending, then read (and discard) what the client still sends, for
/// a bounded time, before closing. Closing with unread input would make the kernel send a reset,
/// which can destroy the error answer before the client reads it.
fn lingering_close(reader: &mut impl Read, writer: &TcpStream) {
    let _ = writer.shutdown(Shutdown::Write);
    let _ = writer.set_read_timeout(Some(Duration::from_millis(500)));
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buffer = [0u8; 8192];
    let mut drained = 0usize;
    while Instant::now() < deadline && drained < 2 * MAX_BODY_BYTES {
        match reader.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// The path part of a request target (without `?query`).
fn route_key(target: &str) -> &str {
    target.split_once('?').map_or(target, |(path, _)| path)
}

fn record(shared: &Shared, request: &AuthRequest, route: &str) {
    {
        let mut hits = lock(&shared.hits);
        let mut count = |key: &str| {
            if let Some(n) = hits.get_mut(key) {
                *n += 1;
            } else if hits.len() < MAX_COUNTED_PATHS {
                hits.insert(key.to_string(), 1);
            }
        };
        count(route);
        if request.path != route {
            count(&request.path);
        }
    }
    let mut log = lock(&shared.log);
    if log.len() >= MAX_LOGGED_REQUESTS {
        log.pop_front();
    }
    log.push_back(request.clone());
}

/// One line (up to and including `\n`), within `budget` bytes; `Ok(empty)` at end of stream.
fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> Result<Vec<u8>, ReadError> {
    let mut line = Vec::new();
    let limit = u64::try_from(*budget).unwrap_or(u64::MAX);
    reader
        .by_ref()
        .take(limit)
        .read_until(b'\n', &mut line)
        .map_err(|_| ReadError::Closed)?;
    *budget = budget.saturating_sub(line.len());
    if !line.is_empty() && !line.ends_with(b"\n") {
        return Err(if *budget == 0 {
            ReadError::Bad(431, "request head too large")
        } else {
            ReadError::Closed
        });
    }
    Ok(line)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Reads one request; the bool says whether the connection stays open after the answer.
fn read_request(reader: &mut impl BufRead) -> Result<(AuthRequest, bool), ReadError> {
    let mut budget = MAX_HEAD_BYTES;
    let mut first = read_line(reader, &mut budget)?;
    // RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
    if trim_eol(&first).is_empty() && !first.is_empty() {
        first = read_line(reader, &mut budget)?;
    }
    if first.is_empty() {
        return Err(ReadError::Closed);
    }
    let request_line = String::from_utf8_lossy(trim_eol(&first)).into_owned();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(400, "bad request line"));
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(ReadError::Bad(505, "HTTP/1.x only")),
    };
    if method.is_empty() || !target.starts_with('/') {
        return Err(ReadError::Bad(400, "bad request line"));
    }

    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?;
        if line.is_empty() {
            return Err(ReadError::Closed);
        }
        let line = trim_eol(&line);
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(line);
        let Some((name, value)) = text.split_once(':') else {
            return Err(ReadError::Bad(400, "bad header line"));
        };
        if name.is_empty() || name.ends_with(' ') || name.ends_with('\t') {
            return Err(ReadError::Bad(400, "bad header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }

    let values = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let chunked = values("transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    let lengths = values("content-length");
    let body = if chunked {
        if !lengths.is_empty() {
            // RFC 9112 6.3: both is a smuggling signal; refuse.
            return Err(ReadError::Bad(400, "content-length with chunked"));
        }
        read_chunked(reader)?
    } else {
        match lengths.as_slice() {
            [] => Vec::new(),
            [length] => {
                let length: usize = length
                    .parse()
                    .map_err(|_| ReadError::Bad(400, "bad content-length"))?;
                read_exact_body(reader, length)?
            }
            _ => return Err(ReadError::Bad(400, "repeated content-length")),
        }
    };

    let connection: Vec<String> = values("connection")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let keep_alive = if http10 {
        connection.iter().any(|t| t == "keep-alive")
    } else {
        !connection.iter().any(|t| t == "close")
    };
    let request = AuthRequest {
        method: method.to_string(),
        path: target.to_string(),
        headers,
        body,
    };
    Ok((request, keep_alive))
}

fn read_exact_body(reader: &mut impl BufRead, length: usize) -> Result<Vec<u8>, ReadError> {
    if length > MAX_BODY_BYTES {
        return Err(ReadError::Bad(413, "body too large"));
    }
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|_| ReadError::Closed)?;
    Ok(body)
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let mut budget = 1024;
        let line = read_line(reader, &mut budget)?;
        let line = String::from_utf8_lossy(trim_eol(&line)).into_owned();
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Bad(400, "bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            let mut budget = MAX_HEAD_BYTES;
            loop {
                let line = read_line(reader, &mut budget)?;
                if line.is_empty() {
                    return Err(ReadError::Closed);
                }
                if trim_eol(&line).is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len().saturating_add(size) > MAX_BODY_BYTES {
            return Err(ReadError::Bad(413, "body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader
            .read_exact(body.get_mut(start..).unwrap_or_default())
            .map_err(|_| ReadError::Closed)?;
        let mut crlf = [0u8; 2];
        reader
            .read_exact(&mut crlf)
            .map_err(|_| ReadError::Closed)?;
        if &crlf != b"\r\n" {
            return Err(ReadError::Bad(400, "bad chunk terminator"));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

fn write_response(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    write_head_and_body(stream, status, content_type, body.len(), body, close)
}

/// `content_length` may differ from `body.len()` only for HEAD (length of the GET body).
fn write_head_and_body(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    content_length: usize,
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {content_length}\r\n",
        reason(status)
    );
    if close {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keep-alive client: sends raw requests on one connection, reads one response each.
    struct Client {
        reader: BufReader<TcpStream>,
        writer: TcpStream,
    }

    /// Status, lowercase headers, body.
    type Reply = (u16, Vec<(String, String)>, Vec<u8>);

    impl Client {
        fn connect(server: &AuthServer) -> Client {
            let stream = TcpStream::connect(server.addr()).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            Client {
                writer: stream.try_clone().unwrap(),
                reader: BufReader::new(stream),
            }
        }

        fn send(&mut self, raw: &[u8]) -> io::Result<Reply> {
            self.writer.write_all(raw)?;
            self.read_reply()
        }

        fn read_reply(&mut self) -> io::Result<Reply> {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line)?;
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (n, v) = line.split_once(':').unwrap();
                headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
            }
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .unwrap();
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body)?;
            Ok((status, headers, body))
        }

        fn get(&mut self, path: &str) -> io::Result<Reply> {
            self.send(format!("GET {path} HTTP/1.1\r\nhost: auth.test\r\n\r\n").as_bytes())
        }
    }

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply
            .1
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn serves_canned_responses_and_404_over_keep_alive() {
        let server = AuthServer::start();
        server.set("/jwks.json", 200, "application/json", r#"{"keys":[]}"#);
        let mut client = Client::connect(&server);

        let reply = client.get("/jwks.json").unwrap();
        assert_eq!(reply.0, 200);
        assert_eq!(header(&reply, "content-type"), Some("application/json"));
        assert_eq!(reply.2, br#"{"keys":[]}"#);
        assert_eq!(header(&reply, "connection"), None, "keep-alive by default");

        // Same connection: unknown path, then a query on a known path.
        assert_eq!(client.get("/nope").unwrap().0, 404);
        assert_eq!(client.get("/jwks.json?v=2").unwrap().0, 200);

        // Replaced at runtime.
        server.set("/jwks.json", 500, "text/plain", "boom");
        let reply = client.get("/jwks.json").unwrap();
        assert_eq!((reply.0, reply.2.as_slice()), (500, &b"boom"[..]));

        assert_eq!(server.hits("/jwks.json"), 3);
        assert_eq!(server.hits("/jwks.json?v=2"), 1);
        assert_eq!(server.hits("/nope"), 1);
        assert_eq!(server.hits("/never"), 0);

        server.unset("/jwks.json");
        assert_eq!(client.get("/jwks.json").unwrap().0, 404);
    }

    #[test]
    fn exact_target_wins_over_path() {
        let server = AuthServer::start();
        server.set("/r", 200, "text/plain", "path");
        server.set("/r?x=1", 200, "text/plain", "exact");
        let mut client = Client::connect(&server);
        assert_eq!(client.get("/r?x=1").unwrap().2, b"exact");
        assert_eq!(client.get("/r?x=2").unwrap().2, b"path");
    }

    #[test]
    fn records_method_path_headers_and_body() {
        let server = AuthServer::start();
        server.set_json("/introspect", &serde_json::json!({"active": true}));
        let mut client = Client::connect(&server);
        let reply = client
            .send(
                b"POST /introspect?q=1 HTTP/1.1\r\nHost: auth.test\r\nX-Test: A b\r\n\
                  Content-Length: 11\r\n\r\ntoken=abc.d",
            )
            .unwrap();
        assert_eq!(reply.0, 200);
        assert_eq!(reply.2, br#"{"active":true}"#);
        // Chunked body (Envoy sends a body of unknown length this way).
        let reply = client
            .send(
                b"POST /introspect HTTP/1.1\r\nHost: auth.test\r\nTransfer-Encoding: chunked\r\n\r\n\
                  5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
            )
            .unwrap();
        assert_eq!(reply.0, 200);

        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        let first = &requests[0];
        assert_eq!(first.method, "POST");
        assert_eq!(first.path, "/introspect?q=1");
        assert_eq!(first.header("x-test"), Some("A b"));
        assert_eq!(first.header("HOST"), Some("auth.test"));
        assert_eq!(first.headers[0].0, "host", "names are lowercased");
        assert_eq!(first.body, b"token=abc.d");
        assert_eq!(requests[1].body, b"hello world");

        server.clear();
        assert!(server.requests().is_empty());
        assert_eq!(server.hits("/introspect"), 0);
    }

    #[test]
    fn malformed_requests_get_400_and_close() {
        let server = AuthServer::start();
        for raw in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET /a HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET /a HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"GET /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST /a HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"GET a HTTP/1.1\r\n\r\n",
        ] {
            let mut client = Client::connect(&server);
            let reply = client.send(raw).unwrap();
            assert_eq!(reply.0, 400, "{}", String::from_utf8_lossy(raw));
            assert_eq!(header(&reply, "connection"), Some("close"));
            assert!(client.get("/a").is_err(), "closed after a bad request");
        }
        // Oversized head and body.
        let mut client = Client::connect(&server);
        let big = format!(
            "GET /a HTTP/1.1\r\nx: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(client.send(big.as_bytes()).unwrap().0, 431);
        let mut client = Client::connect(&server);
        let raw = format!(
            "POST /a HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert_eq!(client.send(raw.as_bytes()).unwrap().0, 413);
        assert_eq!(server.hits("/a"), 0, "bad requests are not counted");
    }

    #[test]
    fn connection_close_and_http10_close_after_the_answer() {
        let server = AuthServer::start();
        server.set("/a", 200, "text/plain", "ok");
        let mut client = Client::connect(&server);
        let reply = client
            .send(b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert_eq!(header(&reply, "connection"), Some("close"));
        assert!(client.get("/a").is_err());

        let mut client = Client::connect(&server);
        assert_eq!(client.send(b"GET /a HTTP/1.0\r\n\r\n").unwrap().0, 200);
        assert!(client.get("/a").is_err());

        // HEAD: the GET length, no body bytes (the next response parses cleanly).
        let mut client = Client::connect(&server);
        client
            .writer
            .write_all(b"HEAD /a HTTP/1.1\r\n\r\nGET /a HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut line = String::new();
        client.reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        loop {
            line.clear();
            client.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        assert_eq!(client.read_reply().unwrap().2, b"ok");
    }

    #[test]
    fn delay_answers_late_and_is_removable() {
        let server = AuthServer::start();
        server.set("/slow", 200, "text/plain", "late");
        server.set_delay("/slow", Duration::from_millis(300));
        let mut client = Client::connect(&server);
        let started = Instant::now();
        assert_eq!(client.get("/slow").unwrap().2, b"late");
        assert!(started.elapsed() >= Duration::from_millis(300));
        // Counted on arrival, before the delay.
        assert_eq!(server.hits("/slow"), 1);

        server.set_delay("/slow", Duration::ZERO);
        let started = Instant::now();
        assert_eq!(client.get("/slow").unwrap().0, 200);
        assert!(started.elapsed() < Duration::from_millis(250));
    }

    #[test]
    fn stop_refuses_and_resets_then_restart_serves_on_the_same_port() {
        let mut server = AuthServer::start();
        let port = server.port();
        server.set("/revocations", 200, "application/json", r#"{"jtis":[]}"#);
        let mut idle = Client::connect(&server);
        assert_eq!(idle.get("/revocations").unwrap().0, 200);

        // A request stuck in a long delay must not hold stop() up.
        server.set_delay("/revocations", Duration::from_secs(30));
        let mut waiting = Client::connect(&server);
        waiting
            .writer
            .write_all(b"GET /revocations HTTP/1.1\r\n\r\n")
            .unwrap();
        assert!(server.wait_for_hits("/revocations", 2, Duration::from_secs(5)));

        let started = Instant::now();
        server.stop();
        assert!(started.elapsed() < Duration::from_secs(5), "stop is prompt");
        assert!(!server.is_running());
        assert!(TcpStream::connect(server.addr()).is_err(), "refused");
        assert!(idle.get("/revocations").is_err(), "pooled connection dead");
        assert!(waiting.read_reply().is_err(), "delayed answer abandoned");
        server.stop(); // idempotent

        server.set_delay("/revocations", Duration::ZERO);
        server.restart();
        assert_eq!(server.port(), port);
        let mut client = Client::connect(&server);
        let reply = client.get("/revocations").unwrap();
        assert_eq!((reply.0, reply.2.as_slice()), (200, &br#"{"jtis":[]}"#[..]));
        assert_eq!(server.hits("/revocations"), 3, "counters survive a restart");
        server.restart(); // no-op while running
        assert_eq!(client.get("/revocations").unwrap().0, 200);
    }

    #[test]
    fn drop_stops_the_server() {
        let server = AuthServer::start();
        let addr = server.addr();
        let _client = Client::connect(&server);
        drop(server);
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn connections_are_bounded() {
        let server = AuthServer::start();
        server.set("/a", 200, "text/plain", "ok");
        let mut clients: Vec<Client> = (0..MAX_CONNECTIONS)
            .map(|_| Client::connect(&server))
            .collect();
        // Make sure every connection has its thread (requests answered).
        for client in &mut clients {
            assert_eq!(client.get("/a").unwrap().0, 200);
        }
        // Answered at once, before any request is read (so send none: unread input would reset).
        let mut extra = Client::connect(&server);
        assert_eq!(extra.read_reply().unwrap().0, 503);
        // Closing one frees a slot.
        drop(clients.pop());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut client = Client::connect(&server);
            if client.get("/a").map(|r| r.0).unwrap_or(0) == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "slot never freed");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn request_log_is_bounded() {
        let server = AuthServer::start();
        let mut client = Client::connect(&server);
        for i in 0..MAX_LOGGED_REQUESTS + 5 {
            client.get(&format!("/p?{i}")).unwrap();
        }
        let log = server.requests();
        assert_eq!(log.len(), MAX_LOGGED_REQUESTS);
        assert_eq!(log[0].path, "/p?5", "oldest dropped first");
        assert_eq!(server.hits("/p"), MAX_LOGGED_REQUESTS + 5);
    }

    #[test]
    fn cluster_points_at_the_server() {
        let server = AuthServer::start();
        let cluster = server.cluster("jwks");
        assert_eq!(cluster["name"].as_str(), Some("jwks"));
        let address = &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
            ["address"]["socket_address"];
        assert_eq!(
            address["port_value"].as_u64(),
            Some(u64::from(server.port()))
        );
        assert_eq!(
            server.url("/jwks.json"),
            format!("http://127.0.0.1:{}/jwks.json", server.port())
        );
    }
}
