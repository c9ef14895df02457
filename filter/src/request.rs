//! The host-free view of a request: what the adapter read from Envoy, borrowed for one decision.

use std::borrow::Cow;
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

/// An RFC 9110 `tchar`: a byte of a token (method names, header names, media types).
pub fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

// ---- the query string: one parser and one percent-decoder for every check ----------------

/// Percent-decodes `raw` (and `+` as space when `plus` is set: form data); an invalid escape is
/// kept literally. Borrows when nothing changes.
pub fn percent_decode(raw: &[u8], plus: bool) -> Cow<'_, [u8]> {
    if !raw.iter().any(|&c| c == b'%' || (plus && c == b'+')) {
        return Cow::Borrowed(raw);
    }
    let hex = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        match c {
            b'%' => {
                let pair = raw
                    .get(i + 1)
                    .copied()
                    .and_then(hex)
                    .zip(raw.get(i + 2).copied().and_then(hex));
                if let Some((h, l)) = pair {
                    out.push((h << 4) | l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// The query string of a request target: after the first `?`, before any `#`.
pub fn query_of(path: &[u8]) -> Option<&[u8]> {
    let start = path.iter().position(|&b| b == b'?')?;
    let query = path.get(start + 1..)?;
    Some(match query.iter().position(|&b| b == b'#') {
        Some(end) => query.get(..end).unwrap_or(query),
        None => query,
    })
}

/// Splits one `name=value` pair; a bare `name` has an empty value.
fn split_pair(pair: &[u8]) -> (&[u8], &[u8]) {
    match pair.iter().position(|&b| b == b'=') {
        Some(i) => (
            pair.get(..i).unwrap_or_default(),
            pair.get(i + 1..).unwrap_or_default(),
        ),
        None => (pair, &[]),
    }
}

/// The non-empty `name=value` pairs of a request target's query, raw (not yet decoded).
pub fn query_pairs(path: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query_of(path)
        .unwrap_or_default()
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(split_pair)
}

/// Decoded values of every query parameter whose decoded name is `name` (`+` stays `+`:
/// credentials are not form data).
pub fn query_values<'p>(path: &'p [u8], name: &'p str) -> impl Iterator<Item = Vec<u8>> + 'p {
    query_pairs(path)
        .filter(move |(n, _)| *percent_decode(n, false) == *name.as_bytes())
        .map(|(_, v)| percent_decode(v, false).into_owned())
}

/// The request target with every `name` parameter removed, the rest byte-for-byte unchanged.
pub fn path_without_param(path: &[u8], name: &str) -> String {
    let Some(q) = path.iter().position(|&b| b == b'?') else {
        return String::from_utf8_lossy(path).into_owned();
    };
    let (base, rest) = path.split_at(q);
    let rest = rest.get(1..).unwrap_or_default();
    let (query, fragment) = match rest.iter().position(|&b| b == b'#') {
        Some(f) => rest.split_at(f),
        None => (rest, &[][..]),
    };
    let kept: Vec<&[u8]> = query
        .split(|&b| b == b'&')
        .filter(|pair| *percent_decode(split_pair(pair).0, false) != *name.as_bytes())
        .collect();
    let mut out = base.to_vec();
    // `/a?` alone and `/a?key=x` both become `/a`.
    let keep_query = match kept.as_slice() {
        [] => false,
        [only] => !only.is_empty(),
        _ => true,
    };
    if keep_query {
        out.push(b'?');
        out.extend_from_slice(&kept.join(&b'&'));
    }
    out.extend_from_slice(fragment);
    // Envoy hands us :path as valid header bytes; lossy conversion only guards the type.
    String::from_utf8_lossy(&out).into_owned()
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

    #[test]
    fn percent_decode_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"abc", b"abc"),
            (b"a%20b", b"a b"),
            (b"a+b", b"a+b"),
            (b"%zz", b"%zz"),
            (b"%4", b"%4"),
            (b"%", b"%"),
            (b"%ff", &[0xff]),
        ];
        for (input, want) in cases {
            assert_eq!(&*percent_decode(input, false), *want);
        }
    }

    #[test]
    fn path_without_param_table() {
        let cases = [
            ("/a", "/a"),
            ("/a?", "/a"),
            ("/a?k=1", "/a"),
            ("/a?x=1&k=1", "/a?x=1"),
            ("/a?k=1&x=1&k=2", "/a?x=1"),
            ("/a?x=%6B&y", "/a?x=%6B&y"),
        ];
        for (input, want) in cases {
            assert_eq!(path_without_param(input.as_bytes(), "k"), want, "{input}");
        }
    }
    #[test]
    fn decode_table() {
        let cases: &[(&str, bool, &[u8])] = &[
            ("abc", true, b"abc"),
            ("a+b", true, b"a b"),
            ("a+b", false, b"a+b"),
            ("%41%62", true, b"Ab"),
            ("%4", true, b"%4"),
            ("%zz", true, b"%zz"),
            ("%", true, b"%"),
            ("%ff", true, b"\xff"),
            ("%252e", true, b"%2e"),
        ];
        for (raw, plus, want) in cases {
            assert_eq!(&*percent_decode(raw.as_bytes(), *plus), *want, "{raw}");
        }
    }

    #[test]
    fn query_values_decode_names_and_values_but_not_plus() {
        let path = b"/a?k=1&%6B=a%20b&k=c+d&kk=x&=y&k#k=frag";
        let got: Vec<Vec<u8>> = query_values(path, "k").collect();
        assert_eq!(
            got,
            vec![b"1".to_vec(), b"a b".to_vec(), b"c+d".to_vec(), Vec::new()]
        );
        assert_eq!(query_values(b"/a", "k").count(), 0);
        let pairs: Vec<_> = query_pairs(b"/a?x&&y=1#z").collect();
        assert_eq!(pairs, vec![(&b"x"[..], &b""[..]), (&b"y"[..], &b"1"[..])]);
    }
}
