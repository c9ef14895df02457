//! Bounded load from threads: plain HTTP/1.1 over fresh connections (`connection: close`), so
//! requests spread over Envoy's workers. Every request has a timeout; every run a fixed count.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

/// One GET; the status, or `Err` for a connection or protocol failure (never a panic: load
/// tests count failures).
pub fn get(port: u16, path: &str, headers: &[(String, String)]) -> Result<u16, String> {
    get_with_head(port, path, headers).map(|(status, _)| status)
}

/// [`get`], plus the response head (status line and headers) as text, to tell apart who
/// answered (e.g. Envoy's `x-envoy-ratelimited` on a 429).
pub fn get_with_head(
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<(u16, String), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: load\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .take(1 << 20)
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let head_len = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..head_len]).into_owned();
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {} bytes", response.len()))?;
    Ok((status, head))
}

/// Outcome counts: status codes, and `0` for connection or protocol failures.
pub type Tally = BTreeMap<u16, usize>;

/// Sends `total` requests from `threads` threads; `request(i)` gives (port, path, headers) of the
/// i-th request.
pub fn burst<F>(total: usize, threads: usize, request: F) -> Tally
where
    F: Fn(usize) -> (u16, String, Vec<(String, String)>) + Send + Sync + 'static,
{
    burst_with_errors(total, threads, request).0
}

/// [`burst`], plus the first few failure messages (status 0 in the tally).
pub fn burst_with_errors<F>(total: usize, threads: usize, request: F) -> (Tally, Vec<String>)
where
    F: Fn(usize) -> (u16, String, Vec<(String, String)>) + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let request = Arc::new(request);
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (next, tally, request, errors) =
                (next.clone(), tally.clone(), request.clone(), errors.clone());
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let (port, path, headers) = request(i);
                let status = match get(port, &path, &headers) {
                    Ok(s) => s,
                    Err(e) => {
                        let mut errors = errors.lock().unwrap_or_else(|e| e.into_inner());
                        if errors.len() < 10 {
                            errors.push(e);
                        }
                        0
                    }
                };
                *tally
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(status)
                    .or_default() += 1;
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let tally = tally.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let errors = errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
    (tally, errors)
}
