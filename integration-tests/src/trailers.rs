//! Requests that end with trailers, which curl cannot send: HTTP/2 over cleartext (prior
//! knowledge) with hyper's client, and HTTP/1.1 chunked encoding written byte by byte.
//!
//! Trailers are how a client ends a stream without a last DATA frame; a filter that pauses a
//! request and does not handle them lets Envoy release the request undecided. Every request has
//! a timeout, so a request the filter holds for ever shows up as an error, not a hung test.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::client::Response;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A request whose body (possibly empty, possibly in several chunks) ends with trailers.
#[derive(Debug, Clone)]
pub struct TrailerRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// Body chunks, sent as separate DATA frames / chunks; none: HEADERS then trailers only.
    pub chunks: Vec<Vec<u8>>,
    pub trailers: Vec<(String, String)>,
}

impl TrailerRequest {
    /// `method path` with one trailer `x-trailer: 1` and no body.
    pub fn new(method: &str, path: &str) -> Self {
        TrailerRequest {
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            chunks: Vec::new(),
            trailers: vec![("x-trailer".into(), "1".into())],
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds one body chunk (one DATA frame in HTTP/2, one chunk in HTTP/1.1).
    pub fn chunk(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.chunks.push(bytes.into());
        self
    }

    /// HTTP/2 with prior knowledge over cleartext to `127.0.0.1:port`.
    pub fn send_h2(&self, port: u16) -> Result<Response, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            tokio::time::timeout(TIMEOUT, self.h2(port))
                .await
                .map_err(|_| format!("no response within {TIMEOUT:?}"))?
        })
    }

    async fn h2(&self, port: u16) -> Result<Response, String> {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(self.method.as_str())
            .uri(format!("http://127.0.0.1:{port}{}", self.path));
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut frames: VecDeque<Frame<Bytes>> = self
            .chunks
            .iter()
            .map(|c| Frame::data(Bytes::from(c.clone())))
            .collect();
        let mut trailers = HeaderMap::new();
        for (name, value) in &self.trailers {
            trailers.append(
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?,
                HeaderValue::from_str(value).map_err(|e| e.to_string())?,
            );
        }
        frames.push_back(Frame::trailers(trailers));
        let request = request.body(Frames(frames)).map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes()
            .to_vec();
        Ok(Response {
            status,
            http_version: "2".into(),
            headers,
            body,
        })
    }

    /// HTTP/1.1 chunked encoding with a trailer section (Envoy forwards it only with
    /// `http_protocol_options.enable_trailers`; it parses it either way).
    pub fn send_h1(&self, port: u16) -> Result<Response, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut wire = format!(
            "{} {} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ntransfer-encoding: chunked\r\n",
            self.method, self.path
        )
        .into_bytes();
        for (name, value) in &self.headers {
            wire.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        for chunk in self.chunks.iter().filter(|c| !c.is_empty()) {
            wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n");
        for (name, value) in &self.trailers {
            wire.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        stream.write_all(&wire).map_err(|e| e.to_string())?;
        read_h1_response(&mut stream)
    }
}

/// A request body that yields its frames in order: data, then trailers.
struct Frames(VecDeque<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.pop_front().map(Ok))
    }
}

/// Reads one HTTP/1.1 response up to its `content-length` (Envoy may keep the socket open for a
/// while after `connection: close`, so reading to close would wait for nothing).
fn read_h1_response(stream: &mut TcpStream) -> Result<Response, String> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(buf.get(..n).unwrap_or_default());
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if raw.len() >= end + 4 + length {
                break;
            }
        }
        if raw.len() > 1 << 20 {
            return Err("response over 1 MiB".into());
        }
    }
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no response head in {:?}", String::from_utf8_lossy(&raw)))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Response {
        status,
        http_version: "1.1".into(),
        headers,
        body: raw[end + 4..].to_vec(),
    })
}
