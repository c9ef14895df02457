//! Requests through Envoy, made with curl: TLS, HTTP/2 and raw (non-UTF-8) header bytes with no
//! client library of our own to trust, and exactly the bytes a test asks for on the wire.

use std::ffi::OsString;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::workspace_root;

/// The curl binary (HTTP/2-capable on this machine).
const CURL: &str = "/usr/bin/curl";
/// Upper bound for one request, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A response as curl received it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// `"1.1"` or `"2"`.
    pub http_version: String,
    /// Lowercase names, in received order; values lossily decoded.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (case-insensitive), in received order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as JSON; panics (showing the body) if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): status {}: {}",
                self.status,
                self.text()
            )
        })
    }

    /// The body, lossily decoded.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request to an [`Envoy`](crate::Envoy) listener; build with [`Envoy::request`](crate::Envoy::request).
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    method: String,
    path: String,
    http_port: u16,
    https_port: Option<u16>,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
    https: bool,
    http2: bool,
    source_ip: Option<IpAddr>,
    /// A client certificate and its key (mTLS on the `https` listener).
    client_cert: Option<(PathBuf, PathBuf)>,
}

impl RequestBuilder {
    pub(crate) fn new(method: &str, path: &str, http_port: u16, https_port: Option<u16>) -> Self {
        assert!(
            path.starts_with('/'),
            "request path must start with '/': {path:?}"
        );
        RequestBuilder {
            method: method.to_string(),
            path: path.to_string(),
            http_port,
            https_port,
            headers: Vec::new(),
            body: None,
            https: false,
            http2: false,
            source_ip: None,
            client_cert: None,
        }
    }

    /// Adds a header (repeatable: the same name twice sends it twice).
    pub fn header(self, name: &str, value: &str) -> Self {
        self.header_bytes(name, value.as_bytes())
    }

    /// Adds a header with a raw value, e.g. non-UTF-8 bytes.
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.push((name.to_string(), value.to_vec()));
        self
    }

    /// Uses the `https` listener (TLS, verified against `target/certs/server.crt`, SNI `localhost`).
    pub fn https(mut self) -> Self {
        assert!(
            self.https_port.is_some(),
            "this Envoy has no listener named \"https\""
        );
        self.https = true;
        self
    }

    /// Uses HTTP/2: ALPN over TLS, prior knowledge (h2c) over plain TCP.
    pub fn http2(mut self) -> Self {
        self.http2 = true;
        self
    }

    /// Connects from this local address, e.g. `"127.0.0.2"` (any of 127.0.0.0/8 works on Linux
    /// loopback): the client address Envoy and the filter see.
    pub fn from_ip(mut self, ip: &str) -> Self {
        let ip = ip
            .parse()
            .unwrap_or_else(|e| panic!("from_ip({ip:?}): {e}"));
        self.source_ip = Some(ip);
        self
    }

    /// Presents this client certificate (PEM) and key on the `https` listener.
    pub fn client_cert(mut self, cert: &std::path::Path, key: &std::path::Path) -> Self {
        self.client_cert = Some((cert.to_path_buf(), key.to_path_buf()));
        self
    }

    /// Sends `bytes` as the request body (no content type unless set as a header).
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = Some(bytes.into());
        self
    }

    /// Sends the request; panics if no HTTP response came back (connection refused, reset, timeout).
    pub fn send(self) -> Response {
        let what = format!("{} {}", self.method, self.path);
        self.try_send().unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// Sends the request; `Err` describes a transport failure (no complete HTTP response).
    pub fn try_send(self) -> Result<Response, String> {
        let (port, url) = if self.https {
            let port = self.https_port.unwrap_or_default();
            (port, format!("https://localhost:{port}{}", self.path))
        } else {
            (
                self.http_port,
                format!("http://127.0.0.1:{}{}", self.http_port, self.path),
            )
        };
        let mut args: Vec<OsString> = Vec::new();
        let mut arg = |a: &str| args.push(a.into());
        if self.https {
            arg("--cacert");
            arg(&cert_path().to_string_lossy());
            // Name `localhost` (the certificate's SAN and SNI) without asking any resolver.
            arg("--resolve");
            arg(&format!("localhost:{port}:127.0.0.1"));
            if let Some((cert, key)) = &self.client_cert {
                arg("--cert");
                arg(&cert.to_string_lossy());
                arg("--key");
                arg(&key.to_string_lossy());
            }
        }
        if let Some(ip) = self.source_ip {
            arg("--interface");
            arg(&ip.to_string());
        }
        arg(match (self.http2, self.https) {
            (false, _) => "--http1.1",
            (true, true) => "--http2",
            (true, false) => "--http2-prior-knowledge",
        });
        if self.method.eq_ignore_ascii_case("HEAD") {
            // `--request HEAD` would make curl wait for a body that never comes.
            arg("--head");
        } else {
            arg("--request");
            arg(&self.method);
        }
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        // Drop curl's own additions unless the test asked for them: the test decides the wire.
        let suppress: &[&str] = if self.body.is_some() && !has("content-type") {
            &["Expect:", "Content-Type:"]
        } else {
            &["Expect:"]
        };
        for header in suppress {
            if !has(header.trim_end_matches(':')) {
                arg("--header");
                arg(header);
            }
        }
        for (name, value) in &self.headers {
            // curl syntax: "name:" removes a header, "name;" sends it with an empty value.
            let mut line = name.as_bytes().to_vec();
            if value.is_empty() {
                line.push(b';');
            } else {
                line.extend_from_slice(b": ");
                line.extend_from_slice(value);
            }
            args.push("--header".into());
            args.push(OsString::from_vec(line));
        }
        if self.body.is_some() {
            args.push("--data-binary".into());
            args.push("@-".into());
        }
        args.push(url.into());
        run_curl(&args, self.body.as_deref())
    }
}

/// GET `path` on an Envoy admin interface at `127.0.0.1:port`; `(status, body)`, or why no
/// response came back within `timeout`.
pub fn admin_get(port: u16, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let response = run_curl_with_timeout(&["--http1.1".into(), url.into()], None, timeout)?;
    Ok((response.status, response.text()))
}

fn cert_path() -> PathBuf {
    workspace_root().join("target/certs/server.crt")
}

fn run_curl(args: &[OsString], body: Option<&[u8]>) -> Result<Response, String> {
    run_curl_with_timeout(args, body, REQUEST_TIMEOUT)
}

fn run_curl_with_timeout(
    args: &[OsString],
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Response, String> {
    let mut command = Command::new(CURL);
    command
        // -sS: no progress meter, but errors; --include: headers then body on stdout.
        .args([
            "-sS",
            "--include",
            "--path-as-is",
            "--globoff",
            "--noproxy",
            "*",
        ])
        .arg("--max-time")
        .arg(format!("{:.1}", timeout.as_secs_f64()))
        .args(args)
        .stdin(if body.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {CURL}: {e}"))?;
    let stdin = child.stdin.take();
    // Feed the body from another thread: a large body and a large response would otherwise
    // deadlock on full pipes.
    let output = std::thread::scope(|scope| {
        if let (Some(mut stdin), Some(body)) = (stdin, body) {
            scope.spawn(move || {
                let _ = stdin.write_all(body);
            });
        }
        child.wait_with_output()
    })
    .map_err(|e| format!("curl: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "curl failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    parse_included_response(&output.stdout)
}

/// Parses curl `--include` output: header blocks (interim 1xx ones skipped), then the body.
fn parse_included_response(raw: &[u8]) -> Result<Response, String> {
    let mut rest = raw;
    loop {
        let end = find(rest, b"\r\n\r\n").ok_or_else(|| {
            format!(
                "no complete header block in curl output: {:?}",
                String::from_utf8_lossy(raw)
            )
        })?;
        let block = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 4..];
        let mut lines = block.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.split_whitespace();
        let http_version = parts
            .next()
            .and_then(|p| p.strip_prefix("HTTP/"))
            .ok_or_else(|| format!("bad status line {status_line:?}"))?
            .to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        if (100..200).contains(&status) {
            continue;
        }
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return Ok(Response {
            status,
            http_version,
            headers,
            body: rest.to_vec(),
        });
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http1_with_interim_response() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\nX-A: 1\r\nx-a: 2\r\n\
                    Content-Type: text/plain\r\n\r\nno\r\n\r\nway";
        let r = parse_included_response(raw).unwrap();
        assert_eq!(r.status, 403);
        assert_eq!(r.http_version, "1.1");
        assert_eq!(r.header("x-a"), Some("1"));
        assert_eq!(r.header_values("X-A"), vec!["1", "2"]);
        assert_eq!(r.body, b"no\r\n\r\nway");
    }

    #[test]
    fn parses_http2_and_empty_body() {
        let r = parse_included_response(b"HTTP/2 200 \r\nserver: envoy\r\n\r\n").unwrap();
        assert_eq!((r.status, r.http_version.as_str()), (200, "2"));
        assert_eq!(r.header("server"), Some("envoy"));
        assert!(r.body.is_empty());
        assert!(parse_included_response(b"garbage").is_err());
    }
}
