//! Size limits that protect the filter itself (and the upstream) from oversized requests.

use crate::rejection::Rejection;
use crate::request::RequestView;

pub const DEFAULT_MAX_PATH_BYTES: usize = 4096;
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Longest `:path` (path and query) accepted; longer is 414.
    pub max_path_bytes: usize,
    /// Largest sum of header name and value lengths, pseudo-headers included; larger is 431.
    pub max_header_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_path_bytes: DEFAULT_MAX_PATH_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

impl RequestLimits {
    pub fn check(&self, request: &RequestView<'_>) -> Result<(), Rejection<'static>> {
        if request.path().len() > self.max_path_bytes {
            return Err(Rejection::UriTooLong);
        }
        // Names and values, raw (read off the map's size, no walk over the headers).
        let header_bytes = request.headers.name_value_bytes();
        if header_bytes > self.max_header_bytes {
            return Err(Rejection::HeadersTooLarge);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(path_len: usize, extra: usize) -> Vec<(String, Vec<u8>)> {
        vec![
            (":path".to_string(), vec![b'/'; path_len]),
            ("x-pad".to_string(), vec![b'a'; extra]),
        ]
    }

    #[test]
    fn limits_table() {
        let limits = RequestLimits {
            max_path_bytes: 10,
            max_header_bytes: 100,
        };
        // (path length, padding header value length, expected)
        let cases: &[(usize, usize, Result<(), Rejection>)] = &[
            (10, 0, Ok(())),
            (11, 0, Err(Rejection::UriTooLong)),
            // 5 (":path") + 10 + 5 ("x-pad") + 80 = 100: exactly at the limit.
            (10, 80, Ok(())),
            (10, 81, Err(Rejection::HeadersTooLarge)),
            // The path check runs first.
            (11, 1000, Err(Rejection::UriTooLong)),
        ];
        for (path, pad, want) in cases {
            let h = headers(*path, *pad);
            let view = RequestView {
                headers: crate::request::leaked_headers(&h),
                client_ip: None,
                route_policy: None,
                route_name: None,
                virtual_host: None,
            };
            assert_eq!(&limits.check(&view), want, "path {path} pad {pad}");
        }
    }
}
