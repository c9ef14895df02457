//! Auth server: a small real HTTP/1.1 server that tests put behind an Envoy cluster as the JWKS
//! endpoint, the revocation-list endpoint or a token introspection service.
//!
//! hyper on its own Tokio runtime, like the echo upstream ([`crate::echo`]): the HTTP parsing
//! is hyper's, not a hand-written one. Tests still *break* it the way real services break (answer
//! late, die, come back on the same port). Everything is bounded: connections, header and body
//! sizes, the request log and the per-path hit counters.
//!
//! - [`AuthServer::set`]: the response for a path (replaceable at runtime); unknown paths 404.
//! - [`AuthServer::set_delay`]: answer a path late (timeouts).
//! - [`AuthServer::hits`] / [`AuthServer::requests`]: what arrived.
//! - [`AuthServer::stop`] / [`AuthServer::restart`]: the service killed (listener closed, open
//!   keep-alive connections reset, so Envoy's pooled connections fail too), then back on the
//!   same port with the same responses.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener as StdTcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// At most this many open connections; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// Request line plus headers (hyper answers 431 above it).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Request body (introspection forms and the like are tiny); 413 above it.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Requests kept by [`AuthServer::requests`]; older ones are forgotten.
pub const MAX_LOGGED_REQUESTS: usize = 1000;
/// Distinct paths counted by [`AuthServer::hits`]; further paths are not counted.
const MAX_COUNTED_PATHS: usize = 1024;
/// How long a stopped server waits for its tasks (they are reset, so they end at once).
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// One request as the auth server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub method: String,
    /// The request target as sent (path and query).
    pub path: String,
    /// Lowercase names (hyper's order: first appearance, repeated names together), values
    /// lossily decoded as UTF-8.
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

/// State shared by the handle and the server; survives stop/restart.
#[derive(Default)]
struct Shared {
    handlers: Mutex<HashMap<String, Handler>>,
    responses: Mutex<HashMap<String, Canned>>,
    delays: Mutex<HashMap<String, Duration>>,
    hits: Mutex<HashMap<String, usize>>,
    log: Mutex<VecDeque<AuthRequest>>,
}

/// One listening period, from start (or restart) to stop: a thread running a Tokio runtime.
struct Running {
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
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
        let listener = StdTcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
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
    /// connections are reset and delayed answers are abandoned. Returns once the server's
    /// thread has exited. Does nothing if already stopped.
    pub fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        // Err only if the server already ended on its own.
        let _ = running.stop.send(());
        let _ = running.thread.join();
    }

    /// Listens again on the same port, with the same responses, delays, counters and log.
    /// Panics if the port cannot be bound (test helper). Does nothing if running.
    pub fn restart(&mut self) {
        if self.running.is_some() {
            return;
        }
        let started = StdTcpListener::bind(self.addr())
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

/// Binds nothing: serves `listener` (already bound, so a busy port is reported to the caller)
/// on a new thread with its own runtime until [`Running::stop`] fires.
fn listen(listener: StdTcpListener, shared: Arc<Shared>) -> io::Result<Running> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("auth-server")
        .enable_all()
        .build()?;
    let (stop, stopped) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("auth-server".into())
        .spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => accept_loop(listener, shared, stopped).await,
                    Err(e) => eprintln!("auth server: {e}"),
                }
                // Dropping the tokio listener here closes the socket: new connections are refused.
            });
            runtime.shutdown_timeout(STOP_TIMEOUT);
        })?;
    Ok(Running { stop, thread })
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut connections: JoinSet<()> = JoinSet::new();
    // A copy (dup) of every open connection's socket, to reset it on stop.
    let mut sockets: HashMap<tokio::task::Id, TcpStream> = HashMap::new();
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => accepted,
            Some(done) = connections.join_next_with_id() => {
                if let Ok((id, ())) = done {
                    sockets.remove(&id);
                }
                continue;
            }
        };
        let mut stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // EMFILE and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if connections.len() >= MAX_CONNECTIONS {
            // Answered before any request is read; FIN, then the socket is dropped.
            let _ = stream
                .write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
                      content-length: 20\r\nconnection: close\r\n\r\ntoo many connections",
                )
                .await;
            let _ = stream.shutdown().await;
            continue;
        }
        let _ = stream.set_nodelay(true);
        let copy = stream
            .into_std()
            .and_then(|std_stream| Ok((std_stream.try_clone()?, std_stream)))
            .and_then(|(copy, std_stream)| {
                Ok((copy, tokio::net::TcpStream::from_std(std_stream)?))
            });
        let Ok((copy, stream)) = copy else {
            continue;
        };
        let shared = Arc::clone(&shared);
        let task = connections.spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&shared)));
            // Errors here are peers going away mid-request: nothing to report.
            let _ = http1::Builder::new()
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        sockets.insert(task.id(), copy);
    }
    // Stopped: reset every open connection (the peer sees what a killed process leaves behind),
    // abandon delayed answers, and wait for every task to end.
    for socket in sockets.values() {
        let _ = reset(socket);
    }
    connections.shutdown().await;
}

/// `SO_LINGER 0` then shutdown: the peer sees a reset, as when a process is killed mid-flight.
#[allow(unsafe_code)] // libc::setsockopt, SAFETY argument below
fn reset(socket: &TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd (owned by `socket`) and a correctly sized, initialised value.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
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
    socket.shutdown(Shutdown::Both)?;
    result
}

fn response(status: u16, content_type: &str, body: Vec<u8>, close: bool) -> Response<Full<Bytes>> {
    let length = body.len();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if let Ok(value) = content_type.parse() {
        headers.insert(CONTENT_TYPE, value);
    }
    headers.insert(CONTENT_LENGTH, length.into());
    if close {
        headers.insert(CONNECTION, hyper::header::HeaderValue::from_static("close"));
    }
    response
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    // Origin form only (`/path?query`), what Envoy sends a cluster.
    let Some(target) = parts
        .uri
        .path_and_query()
        .filter(|_| parts.uri.authority().is_none())
        .map(|p| p.as_str().to_string())
        .filter(|t| t.starts_with('/'))
    else {
        return Ok(response(
            400,
            "text/plain",
            b"bad request target".to_vec(),
            true,
        ));
    };
    // A declared length above the bound is refused before reading any of it.
    if hyper::body::Body::size_hint(&body).lower() > MAX_BODY_BYTES as u64 {
        return Ok(response(
            413,
            "text/plain",
            b"request body too large".to_vec(),
            true,
        ));
    }
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Ok(response(
                413,
                "text/plain",
                b"request body too large".to_vec(),
                true,
            ))
        }
        // A broken chunked body (or the peer went away mid-body).
        Err(_) => {
            return Ok(response(
                400,
                "text/plain",
                b"bad request body".to_vec(),
                true,
            ))
        }
    };
    let request = AuthRequest {
        method: parts.method.to_string(),
        path: target,
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let route = route_key(&request.path).to_string();
    record(&shared, &request, &route);

    let delay = {
        let delays = lock(&shared.delays);
        delays
            .get(&request.path)
            .or_else(|| delays.get(&route))
            .copied()
    };
    if let Some(delay) = delay {
        // A stop aborts this task, abandoning the answer.
        tokio::time::sleep(delay).await;
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
    // HEAD: hyper sends the head with the GET length and no body.
    Ok(response(
        canned.status,
        &canned.content_type,
        canned.body,
        false,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};

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

    /// (Content-Length with Transfer-Encoding is not among them: hyper reads such a body as
    /// chunked, as RFC 9112 section 6.3 allows.)
    #[test]
    fn malformed_requests_get_400_and_close() {
        let server = AuthServer::start();
        for raw in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET /a HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET /a HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"GET /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
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
