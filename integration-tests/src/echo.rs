//! Echo upstream: the service behind Envoy in tests, the demo and the benchmark.
//!
//! Every request is answered with `200`, `x-upstream: <name>` and a JSON description of what
//! arrived, and (unless switched off) recorded so an in-process test can assert exactly what the
//! upstream received after Envoy and the filter were done with it.

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One request as the upstream received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, byte-exact as sent on the wire (origin form).
    pub path: String,
    /// Lowercase names. Order is hyper's `HeaderMap` order: names in order of first appearance,
    /// repeated names grouped together.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of `name` (case-insensitive), lossily decoded as UTF-8.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// How many times `name` (case-insensitive) arrived.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
}

/// Shared between the server tasks and the [`Upstream`] handle.
#[derive(Default)]
struct Recorder {
    enabled: AtomicBool,
    requests: Mutex<Vec<RecordedRequest>>,
}

impl Recorder {
    fn requests(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        // A panicking test thread must not turn every later assertion into a poison error.
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running echo server on its own thread and Tokio runtime; stops when dropped.
pub struct Upstream {
    pub name: String,
    pub addr: SocketAddr,
    recorder: Arc<Recorder>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Starts an upstream on a free loopback port. Panics if that fails (test helper).
    pub fn start(name: &str) -> Upstream {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Upstream::bind(name, loopback)
            .unwrap_or_else(|e| panic!("echo upstream {name}: cannot bind {loopback}: {e}"))
    }

    /// Starts an upstream on a fixed address (the demo and the `echo-upstream` binary).
    pub fn bind(name: &str, addr: SocketAddr) -> io::Result<Upstream> {
        // Bind on the caller's thread so a busy port is reported here, not in a log.
        let listener = StdTcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            // Two workers keep up with one or two Envoy workers on loopback (the benchmark).
            .worker_threads(2)
            .thread_name(format!("upstream-{name}"))
            .enable_all()
            .build()?;
        let recorder = Arc::new(Recorder {
            enabled: AtomicBool::new(true),
            ..Recorder::default()
        });
        let (shutdown, stop) = oneshot::channel();
        let server_name: Arc<str> = name.into();
        let server_recorder = Arc::clone(&recorder);
        let thread = std::thread::Builder::new()
            .name(format!("upstream-{name}"))
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            accept_loop(listener, server_name, server_recorder, stop).await
                        }
                        Err(e) => eprintln!("echo upstream: {e}"),
                    }
                });
                // Open keep-alive connections from Envoy are simply dropped.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(Upstream {
            name: name.to_string(),
            addr,
            recorder,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Every request received since start (or the last [`clear`](Self::clear)), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.recorder.requests().clone()
    }

    /// Forgets the recorded requests.
    pub fn clear(&self) {
        self.recorder.requests().clear();
    }

    /// Switches recording on or off (on by default). Long runs (demo, benchmark) switch it off so
    /// memory stays flat.
    pub fn set_recording(&self, on: bool) {
        self.recorder.enabled.store(on, Ordering::Relaxed);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // Err only if the server already stopped.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    name: Arc<str>,
    recorder: Arc<Recorder>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Typically EMFILE under load: back off instead of spinning.
                    eprintln!("echo upstream {name}: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let name = Arc::clone(&name);
        let recorder = Arc::clone(&recorder);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                handle(request, Arc::clone(&name), Arc::clone(&recorder))
            });
            // Errors here are peers going away mid-request: nothing to report.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    name: Arc<str>,
    recorder: Arc<Recorder>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "request body aborted")),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.to_string(), |pq| pq.as_str().to_string());
    let headers: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();

    let description = json!({
        "upstream": &*name,
        "method": parts.method.as_str(),
        "path": &path,
        "headers": headers
            .iter()
            .map(|(n, v)| [n.clone(), String::from_utf8_lossy(v).into_owned()])
            .collect::<Vec<_>>(),
        "body_len": body.len(),
    });

    if recorder.enabled.load(Ordering::Relaxed) {
        recorder.requests().push(RecordedRequest {
            method: parts.method.as_str().to_string(),
            path,
            headers,
            body: body.to_vec(),
        });
    }

    let response = Response::builder()
        .status(StatusCode::OK)
        .header("x-upstream", &*name)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(description.to_string())));
    // Only an invalid upstream name (not a valid header value) can fail here.
    Ok(response.unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "bad upstream name")))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// Sends raw HTTP/1.1 bytes and returns the whole raw response (the server closes after it).
    fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        String::from_utf8_lossy(&response).into_owned()
    }

    #[test]
    fn records_and_describes_the_request_byte_exact() {
        let upstream = Upstream::start("unit");
        let mut request = b"POST /a/%2e%2E/b?x=1&y=%ZZ HTTP/1.1\r\nHost: t\r\nX-Raw: caf\xe9\r\n\
                            X-Dup: 1\r\nX-Dup: 2\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
            .to_vec();
        request.extend_from_slice(b"hello");
        let response = raw_exchange(upstream.addr, &request);

        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("x-upstream: unit\r\n"), "{response}");
        assert!(
            response.contains("content-type: application/json\r\n"),
            "{response}"
        );
        let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["upstream"], "unit");
        assert_eq!(json["method"], "POST");
        assert_eq!(json["path"], "/a/%2e%2E/b?x=1&y=%ZZ");
        assert_eq!(json["body_len"], 5);
        assert_eq!(json["headers"][0], json!(["host", "t"]));
        assert_eq!(json["headers"][1], json!(["x-raw", "caf\u{fffd}"]));

        let recorded = upstream.requests();
        assert_eq!(recorded.len(), 1);
        let r = &recorded[0];
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/a/%2e%2E/b?x=1&y=%ZZ");
        assert_eq!(r.body, b"hello");
        assert_eq!(r.headers[1], ("x-raw".to_string(), b"caf\xe9".to_vec()));
        assert_eq!(r.header("X-DUP").as_deref(), Some("1"));
        assert_eq!(r.header_count("x-dup"), 2);
        assert_eq!(r.header_count("x-absent"), 0);

        upstream.clear();
        assert!(upstream.requests().is_empty());
    }

    #[test]
    fn recording_can_be_switched_off() {
        let upstream = Upstream::start("quiet");
        upstream.set_recording(false);
        let response = raw_exchange(
            upstream.addr,
            b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(upstream.requests().is_empty());
    }

    #[test]
    fn drop_stops_the_server() {
        let upstream = Upstream::start("short-lived");
        let addr = upstream.addr;
        drop(upstream);
        assert!(TcpStream::connect(addr).is_err());
    }
}
