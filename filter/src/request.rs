//! The host-free view of a request: what the adapter read from Envoy, borrowed for one decision.

use std::borrow::Cow;
use std::net::IpAddr;

/// Request facts the checks work on. Header names are lowercase (Envoy normalises them); values
/// are raw bytes because HTTP allows non-UTF-8 octets and a check must never fail on them.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Every request header in arrival order, pseudo-headers (`:method`, `:path`, ...) included.
    pub headers: Headers<'a>,
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
        self.headers.values(name)
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.get(name)
    }

    pub fn method(&self) -> &'a [u8] {
        self.header(":method").unwrap_or_default()
    }

    /// The request target as sent (`/path?query`).
    pub fn path(&self) -> &'a [u8] {
        self.header(":path").unwrap_or_default()
    }
}

// ---- the header map: the host's one buffer, read in place ---------------------------------

/// What a header name that is not UTF-8 reads as through [`Headers::iter`]. Envoy's codecs
/// only accept token names, so only another filter could add one; no configured name can
/// match it (configured names are UTF-8), and its value is still screened.
pub const NON_UTF8_NAME: &str = "\u{fffd}";

/// The request headers in the proxy-wasm pair encoding, checked once by [`Headers::parse`] and
/// then read in place: a u32 count, `count` (name length, value length) u32 pairs (little
/// endian), then each name and value followed by a NUL. No header is copied out of the buffer
/// the host handed over.
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers<'a> {
    /// The whole map (empty for no headers), every length in it checked against its size.
    bytes: &'a [u8],
    count: usize,
}

/// Each header takes at least 10 bytes of the map: two u32 lengths and two NULs.
const MIN_PAIR_BYTES: usize = 10;

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(b)).ok()
}

impl<'a> Headers<'a> {
    /// Checks a map in the pair encoding; `None` when it is malformed (a count or a length the
    /// buffer does not hold, a missing NUL, bytes after the last pair). An empty buffer is an
    /// empty map (the host's answer for no headers).
    pub fn parse(bytes: &'a [u8]) -> Option<Headers<'a>> {
        if bytes.is_empty() {
            return Some(Headers::default());
        }
        let count = u32_at(bytes, 0)?;
        // Refuse counts the buffer cannot hold before reading any length.
        if count > bytes.len() / MIN_PAIR_BYTES {
            return None;
        }
        let mut at = count.checked_mul(8)?.checked_add(4)?;
        for n in 0..count {
            let name_len = u32_at(bytes, 4 + n * 8)?;
            let value_len = u32_at(bytes, 8 + n * 8)?;
            for len in [name_len, value_len] {
                at = at.checked_add(len)?;
                if bytes.get(at) != Some(&0) {
                    return None;
                }
                at += 1;
            }
        }
        (at == bytes.len()).then_some(Headers { bytes, count })
    }

    /// The number of headers (repeated names counted each time).
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every header in arrival order, name and raw value; a name that is not UTF-8 reads as
    /// [`NON_UTF8_NAME`].
    pub fn iter(&self) -> HeaderIter<'a> {
        HeaderIter(RawHeaders::new(*self))
    }

    /// Every header in arrival order as raw name and value bytes: [`Headers::iter`] without
    /// the UTF-8 check of each name (for loops that compare names as bytes).
    pub fn iter_raw(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        RawHeaders::new(*self)
    }

    /// The first value of a header.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        let name = name.as_bytes();
        RawHeaders::new(*self)
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// All values of a header, in order.
    pub fn values<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        RawHeaders::new(*self)
            .filter(move |(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// The bytes of every name and value (what a header-size limit counts).
    pub fn name_value_bytes(&self) -> usize {
        // The map is the lengths table, the names and values and one NUL after each.
        self.bytes
            .len()
            .saturating_sub(4 + self.count.saturating_mul(MIN_PAIR_BYTES))
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = (&'a str, &'a [u8]);
    type IntoIter = HeaderIter<'a>;

    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

/// Headers as raw (name, value) byte slices of a checked map: two cursors, the lengths table
/// still to read and the names and values still to read, each header taken off their fronts.
#[derive(Debug, Clone)]
struct RawHeaders<'a> {
    /// (name length, value length) pairs of the headers not read yet.
    table: &'a [u8],
    /// Their names and values, each followed by its NUL.
    rest: &'a [u8],
}

impl<'a> RawHeaders<'a> {
    fn new(headers: Headers<'a>) -> Self {
        let bytes = headers.bytes;
        let table_end = headers.count.saturating_mul(8).saturating_add(4);
        RawHeaders {
            table: bytes.get(4..table_end).unwrap_or_default(),
            rest: bytes.get(table_end..).unwrap_or_default(),
        }
    }
}

impl<'a> Iterator for RawHeaders<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        // `parse` checked every length and NUL: these reads cannot fail, and would end the
        // iteration rather than panic if they did.
        let (&[n0, n1, n2, n3, v0, v1, v2, v3], table) = self.table.split_first_chunk::<8>()?;
        let name_len = usize::try_from(u32::from_le_bytes([n0, n1, n2, n3])).ok()?;
        let value_len = usize::try_from(u32::from_le_bytes([v0, v1, v2, v3])).ok()?;
        let (name, rest) = self.rest.split_at_checked(name_len)?;
        let (value, rest) = rest.get(1..)?.split_at_checked(value_len)?;
        self.rest = rest.get(1..)?;
        self.table = table;
        Some((name, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.table.len() / 8))
    }
}

/// Iterator of [`Headers::iter`].
#[derive(Debug, Clone)]
pub struct HeaderIter<'a>(RawHeaders<'a>);

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (name, value) = self.0.next()?;
        Some((std::str::from_utf8(name).unwrap_or(NON_UTF8_NAME), value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// A checked header map that owns its buffer (the one allocation the host made), so that the
/// request's headers can be kept from the decision to the edits that follow it.
#[derive(Debug, Clone, Default)]
pub struct HeaderMap {
    bytes: Vec<u8>,
    count: usize,
}

impl HeaderMap {
    /// Takes the host's buffer if it is a well-formed map ([`Headers::parse`]).
    pub fn parse(bytes: Vec<u8>) -> Option<HeaderMap> {
        let count = Headers::parse(&bytes)?.count;
        Some(HeaderMap { bytes, count })
    }

    /// A map of these headers, in order (tests, benchmarks and fuzz targets build their requests
    /// with it); `None` if a name or value is longer than the encoding's u32 lengths.
    pub fn from_pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Option<HeaderMap> {
        let pairs: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
            .collect();
        HeaderMap::parse(encode_pairs(&pairs)?)
    }

    pub fn headers(&self) -> Headers<'_> {
        Headers {
            bytes: &self.bytes,
            count: self.count,
        }
    }

    /// The map in the pair encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Test helper: the headers of a map that lives for the rest of the test run (leaked), so that
/// a view can be built in one expression.
#[cfg(test)]
pub fn leaked_headers<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Headers<'static> {
    Box::leak(Box::new(HeaderMap::from_pairs(pairs).unwrap())).headers()
}

/// The pair encoding of `pairs` (see [`Headers`]); `None` if a count or length does not fit
/// in a u32.
fn encode_pairs(pairs: &[(&[u8], &[u8])]) -> Option<Vec<u8>> {
    let size = pairs
        .iter()
        .map(|(n, v)| n.len() + v.len() + MIN_PAIR_BYTES)
        .sum::<usize>()
        + 4;
    let mut out = Vec::with_capacity(size);
    let len = |n: usize| u32::try_from(n).ok().map(u32::to_le_bytes);
    out.extend_from_slice(&len(pairs.len())?);
    for (n, v) in pairs {
        out.extend_from_slice(&len(n.len())?);
        out.extend_from_slice(&len(v.len())?);
    }
    for (n, v) in pairs {
        out.extend_from_slice(n);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    Some(out)
}

/// Encodes header pairs in the proxy-wasm pair encoding (see [`Headers`]).
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

    fn map(pairs: &[(&str, &[u8])]) -> HeaderMap {
        HeaderMap::from_pairs(pairs).unwrap()
    }

    fn view(headers: Headers<'_>) -> RequestView<'_> {
        RequestView {
            headers,
            client_ip: None,
            route_policy: None,
            route_name: None,
            virtual_host: None,
        }
    }

    #[test]
    fn reads_pseudo_and_repeated_headers() {
        let headers = map(&[
            (":method", b"GET"),
            (":path", b"/a?b=c"),
            ("x-k", b"1"),
            ("x-k", &[0xff, 0xfe]),
        ]);
        let view = view(headers.headers());
        assert_eq!(view.method(), b"GET");
        assert_eq!(view.path(), b"/a?b=c");
        assert_eq!(
            view.header_values("x-k").collect::<Vec<_>>(),
            vec![&b"1"[..], &[0xff, 0xfe][..]]
        );
        assert_eq!(view.header("x-k"), Some(&b"1"[..]));
        assert_eq!(view.header("absent"), None);
        assert_eq!(view.header("x-"), None);
        assert_eq!(view.headers.len(), 4);
        // Names and values of every header: 7+3 + 5+6 + 3+1 + 3+2.
        assert_eq!(view.headers.name_value_bytes(), 30);
    }

    #[test]
    fn header_pairs_round_trip() {
        let pairs: [(&str, &[u8]); 4] = [
            (":method", b"GET"),
            ("x-empty", b""),
            ("", b"no name"),
            ("x-k", b"v=1"),
        ];
        let encoded = map(&pairs);
        let decoded: Vec<(&str, &[u8])> = encoded.headers().iter().collect();
        assert_eq!(decoded, pairs);
        // The host's empty buffer is a map without headers.
        let empty = Headers::parse(&[]).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.iter().count(), 0);
        assert_eq!(empty.get(":path"), None);
        assert_eq!(empty.name_value_bytes(), 0);
        // So is an explicit count of zero.
        assert_eq!(Headers::parse(&[0, 0, 0, 0]).unwrap().len(), 0);
    }

    #[test]
    fn header_pairs_keep_raw_bytes_and_refuse_truncation() {
        let mut buf = encode_header_pairs(&[("x-bin", "ab")]);
        // Replace the value with non-UTF-8 bytes of the same length.
        let at = buf.len() - 3;
        buf[at] = 0xff;
        buf[at + 1] = 0xfe;
        let headers = Headers::parse(&buf).unwrap();
        assert_eq!(headers.get("x-bin"), Some(&[0xff, 0xfe][..]));
        for cut in 1..buf.len() {
            assert!(Headers::parse(&buf[..cut]).is_none(), "cut at {cut}");
        }
    }

    /// Failing edges of the map: each is refused as a whole (the adapter then fails closed).
    #[test]
    fn malformed_maps_are_refused() {
        let good = encode_header_pairs(&[("a", "b"), ("cd", "")]);
        assert_eq!(Headers::parse(&good).unwrap().len(), 2);
        let with = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            edit(&mut b);
            b
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "count larger than the buffer can hold",
                vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0],
            ),
            ("count of one more header", with(&|b| b[0] = 3)),
            (
                "count of one header less (bytes left over)",
                with(&|b| b[0] = 1),
            ),
            ("a byte after the last NUL", with(&|b| b.push(0))),
            ("name length past the end", with(&|b| b[4] = 200)),
            (
                "name length u32::MAX",
                with(&|b| b[4..8].copy_from_slice(&u32::MAX.to_le_bytes())),
            ),
            ("value length one too long", with(&|b| b[8] = 2)),
            ("value length one too short", with(&|b| b[8] = 0)),
            ("no NUL after a name", with(&|b| b[21] = b'x')),
            (
                "no NUL after the last value",
                with(&|b| *b.last_mut().unwrap() = b'x'),
            ),
            ("count only, no lengths", vec![1, 0, 0, 0]),
            ("three bytes", vec![0, 0, 0]),
        ];
        for (what, bytes) in cases {
            assert!(Headers::parse(&bytes).is_none(), "{what}: {bytes:?}");
            assert!(HeaderMap::parse(bytes).is_none(), "{what}");
        }
    }

    #[test]
    fn non_utf8_names_read_as_the_placeholder_and_match_nothing() {
        let headers = map(&[]);
        assert!(headers.headers().is_empty());
        let raw = HeaderMap::from_pairs(&[(&[b'x', 0xff][..], &b"v"[..]), (b"k", b"w")]).unwrap();
        let got: Vec<(&str, &[u8])> = raw.headers().iter().collect();
        assert_eq!(got, vec![(NON_UTF8_NAME, &b"v"[..]), ("k", &b"w"[..])]);
        assert_eq!(raw.headers().get(NON_UTF8_NAME), None);
        assert_eq!(raw.headers().get("x"), None);
    }

    proptest::proptest! {
        /// Any bytes: parsing never panics, and a map it accepts iterates exactly `len` headers
        /// whose bytes add up to the buffer, and re-encodes to the same bytes.
        #[test]
        fn header_map_parse_is_exact(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            if let Some(headers) = Headers::parse(&bytes) {
                let raw: Vec<(&[u8], &[u8])> = RawHeaders::new(headers).collect();
                proptest::prop_assert_eq!(raw.len(), headers.len());
                proptest::prop_assert_eq!(headers.iter().count(), headers.len());
                if !bytes.is_empty() {
                    proptest::prop_assert_eq!(encode_pairs(&raw), Some(bytes.clone()));
                }
            }
        }

        /// Any headers: encoded and parsed back unchanged, found by name.
        #[test]
        fn header_map_round_trips(pairs in proptest::collection::vec(
            ("[a-z:-]{0,12}", proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)), 0..12)) {
            let map = HeaderMap::from_pairs(&pairs).unwrap();
            let headers = map.headers();
            let got: Vec<(String, Vec<u8>)> =
                headers.iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect();
            proptest::prop_assert_eq!(&got, &pairs);
            for (name, _) in &pairs {
                let first = pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice());
                proptest::prop_assert_eq!(headers.get(name), first);
                proptest::prop_assert_eq!(
                    headers.values(name).count(),
                    pairs.iter().filter(|(n, _)| n == name).count()
                );
            }
            let sizes: usize = pairs.iter().map(|(n, v)| n.len() + v.len()).sum();
            proptest::prop_assert_eq!(headers.name_value_bytes(), sizes);
        }
    }

    #[test]
    fn missing_pseudo_headers_read_as_empty() {
        let view = view(Headers::default());
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
