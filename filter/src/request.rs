//! The host-free view of a request: what the adapter read from Envoy, borrowed for one decision.

use std::net::IpAddr;

/// Request facts the checks work on. Header names are lowercase (Envoy normalises them); values
/// are raw bytes because HTTP allows non-UTF-8 octets and a check must never fail on them.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Every request header in arrival order, pseudo-headers (`:method`, `:path`, ...) included.
    pub headers: &'a [(String, Vec<u8>)],
    /// The client address as Envoy established it (`source.address`), `None` if it was unreadable.
    /// IPv4-mapped addresses arrive as IPv4 (`cidr::parse_socket_ip`).
    pub client_ip: Option<IpAddr>,
    /// The policy name from the route's `api_guard` metadata, if the route sets one.
    pub route_policy: Option<&'a str>,
    /// Envoy's route name (`xds.route_name`), read only when a route matcher needs it.
    pub route_name: Option<&'a str>,
    /// Envoy's virtual host name (`xds.virtual_host_name`), read only when a matcher needs it.
    pub virtual_host: Option<&'a str>,
}

impl<'a> RequestView<'a> {
    /// All values of a header, in order.
    pub fn header_values(&self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn method(&self) -> &'a [u8] {
        self.header(":method").unwrap_or_default()
    }

    /// The request target as sent (`/path?query`).
    pub fn path(&self) -> &'a [u8] {
        self.header(":path").unwrap_or_default()
    }
}

/// Decodes the proxy-wasm pair encoding: a u32 count, `count` (name length, value length) u32
/// pairs, then each name and value followed by a NUL. Header names are HTTP tokens; a name that
/// is not UTF-8 is decoded lossily rather than trusted or panicked on.
pub fn decode_header_pairs(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let u32_at = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(b)).ok()
    };
    let count = u32_at(0)?;
    // Each pair takes at least 10 bytes (8 of lengths, 2 NULs): refuse counts the buffer cannot hold.
    if count > bytes.len() / 10 {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    let mut at = 4usize.checked_add(count.checked_mul(8)?)?;
    for n in 0..count {
        let name_len = u32_at(4 + n * 8)?;
        let value_len = u32_at(8 + n * 8)?;
        let name = bytes.get(at..at.checked_add(name_len)?)?;
        at = at.checked_add(name_len)?;
        if bytes.get(at) != Some(&0) {
            return None;
        }
        at += 1;
        let value = bytes.get(at..at.checked_add(value_len)?)?;
        at = at.checked_add(value_len)?;
        if bytes.get(at) != Some(&0) {
            return None;
        }
        at += 1;
        out.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    Some(out)
}

/// Encodes header pairs in the proxy-wasm pair encoding (see [`decode_header_pairs`]).
pub fn encode_header_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(n, v)| n.len() + v.len() + 10)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len(pairs.len()));
    for (n, v) in pairs {
        out.extend_from_slice(&len(n.len()));
        out.extend_from_slice(&len(v.len()));
    }
    for (n, v) in pairs {
        out.extend_from_slice(n.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pseudo_and_repeated_headers() {
        let headers = vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), b"/a?b=c".to_vec()),
            ("x-k".to_string(), b"1".to_vec()),
            ("x-k".to_string(), vec![0xff, 0xfe]),
        ];
        let view = RequestView {
            headers: &headers,
            client_ip: None,
            route_policy: None,
            route_name: None,
            virtual_host: None,
        };
        assert_eq!(view.method(), b"GET");
        assert_eq!(view.path(), b"/a?b=c");
        assert_eq!(view.header_values("x-k").count(), 2);
        assert_eq!(view.header("x-k"), Some(&b"1"[..]));
        assert_eq!(view.header("absent"), None);
    }

    #[test]
    fn header_pairs_round_trip() {
        let pairs = [(":method", "GET"), ("x-empty", ""), ("x-k", "v=1")];
        let decoded = decode_header_pairs(&encode_header_pairs(&pairs)).unwrap();
        let want: Vec<(String, Vec<u8>)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(decoded, want);
        assert_eq!(decode_header_pairs(&[]), Some(vec![]));
    }

    #[test]
    fn header_pairs_keep_raw_bytes_and_refuse_truncation() {
        let mut buf = encode_header_pairs(&[("x-bin", "ab")]);
        // Replace the value with non-UTF-8 bytes of the same length.
        let at = buf.len() - 3;
        buf[at] = 0xff;
        buf[at + 1] = 0xfe;
        assert_eq!(decode_header_pairs(&buf).unwrap()[0].1, vec![0xff, 0xfe]);
        for cut in 1..buf.len() {
            assert_eq!(decode_header_pairs(&buf[..cut]), None, "cut at {cut}");
        }
        // A count the buffer cannot possibly hold is refused before allocating.
        assert_eq!(
            decode_header_pairs(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0]),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn header_pairs_decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = decode_header_pairs(&bytes);
        }
    }

    #[test]
    fn missing_pseudo_headers_read_as_empty() {
        let view = RequestView {
            headers: &[],
            client_ip: None,
            route_policy: None,
            route_name: None,
            virtual_host: None,
        };
        assert_eq!(view.method(), b"");
        assert_eq!(view.path(), b"");
    }
}
