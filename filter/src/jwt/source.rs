//! Where a provider looks for its token: the `Authorization` header with the `Bearer` scheme
//! (RFC 6750; the scheme name is case-insensitive), a custom header, a cookie or a query
//! parameter. Exactly one token may be present across a provider's sources: two are refused
//! (`Ambiguous`) rather than guessed at, because proxies and apps disagree on which one wins.

use crate::request::RequestView;
use crate::request::{path_without_param, query_values};
pub use crate::verdict::TokenLocation;

use super::TokenProblem;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A header; with `scheme`, the value must be `<scheme> <token>` (scheme case-insensitive)
    /// and a value with another scheme (e.g. `Basic`) is not a token for this provider.
    Header {
        name: String,
        scheme: Option<String>,
    },
    Cookie(String),
    Query(String),
}

impl TokenSource {
    pub fn bearer() -> TokenSource {
        TokenSource::Header {
            name: "authorization".into(),
            scheme: Some("Bearer".into()),
        }
    }
}

/// The single token in the request, or `Missing` / `Ambiguous`.
pub fn find_token<'g>(
    sources: &'g [TokenSource],
    request: &RequestView<'_>,
) -> Result<(String, &'g TokenSource), TokenProblem> {
    let mut found: Option<(String, &TokenSource)> = None;
    let mut count = 0usize;
    for source in sources {
        let mut take = |value: String| {
            count += 1;
            found = Some((value, source));
        };
        match source {
            TokenSource::Header { name, scheme } => {
                for value in request.header_values(name) {
                    // A proxy may have merged repeated headers into one comma-separated value;
                    // a token68 has no commas, so each part is a separate credential.
                    for part in value.split(|&b| b == b',') {
                        if let Some(token) = header_token(part, scheme.as_deref()) {
                            take(token);
                        }
                    }
                }
            }
            TokenSource::Cookie(name) => {
                for header in request.header_values("cookie") {
                    for (n, v) in cookies(header) {
                        if n == name.as_bytes() {
                            take(String::from_utf8_lossy(v).into_owned());
                        }
                    }
                }
            }
            TokenSource::Query(name) => {
                for value in query_values(request.path(), name) {
                    take(String::from_utf8_lossy(&value).into_owned());
                }
            }
        }
    }
    if count > 1 {
        return Err(TokenProblem::Ambiguous);
    }
    match found {
        Some((token, source)) if !token.is_empty() => Ok((token, source)),
        _ => Err(TokenProblem::Missing),
    }
}

/// How to remove a token found at `source` from the request.
pub fn location<'g>(source: &'g TokenSource, request: &RequestView<'_>) -> TokenLocation<'g> {
    match source {
        TokenSource::Header { name, .. } => TokenLocation::Header(name),
        TokenSource::Cookie(name) => {
            let kept: Vec<String> = request
                .header_values("cookie")
                .flat_map(cookies)
                .filter(|(n, _)| *n != name.as_bytes())
                .map(|(n, v)| {
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(n),
                        String::from_utf8_lossy(v)
                    )
                })
                .collect();
            TokenLocation::Cookie {
                rest: (!kept.is_empty()).then(|| kept.join("; ")),
            }
        }
        TokenSource::Query(name) => TokenLocation::Query {
            name,
            path_without_token: path_without_param(request.path(), name),
        },
    }
}

/// The token in a header value: `scheme SP token` (RFC 6750 allows 1*SP; surrounding
/// whitespace is trimmed), or the whole trimmed value without a scheme. Non-UTF-8 is no token.
fn header_token(value: &[u8], scheme: Option<&str>) -> Option<String> {
    let value = std::str::from_utf8(value).ok()?.trim_matches([' ', '\t']);
    let token = match scheme {
        None => value,
        Some(scheme) => {
            let (given, rest) = value.split_once(' ')?;
            if !given.eq_ignore_ascii_case(scheme) {
                return None;
            }
            rest.trim_start_matches(' ')
        }
    };
    Some(token.to_string())
}

/// `name=value` pairs of a `cookie` header (RFC 6265 section 4.2: separated by `; `).
fn cookies(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&b| b == b';').filter_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (n, v) = pair.split_at(eq);
        let v = v.get(1..).unwrap_or_default();
        // A quoted cookie value keeps its quotes out of the token.
        let v = v
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(v);
        Some((n.trim_ascii(), v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(headers: &[(String, Vec<u8>)]) -> RequestView<'_> {
        RequestView {
            headers: crate::request::leaked_headers(headers),
            client_ip: None,
            route_policy: None,
            route_name: None,
            virtual_host: None,
        }
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn finds_exactly_one_token() {
        let all = vec![
            TokenSource::bearer(),
            TokenSource::Header {
                name: "x-token".into(),
                scheme: None,
            },
            TokenSource::Cookie("session".into()),
            TokenSource::Query("access_token".into()),
        ];
        type Case<'a> = (Vec<(&'a str, &'a str)>, Result<&'a str, TokenProblem>);
        let cases: Vec<Case> = vec![
            (vec![("authorization", "Bearer abc")], Ok("abc")),
            (vec![("authorization", "bearer abc")], Ok("abc")),
            (vec![("authorization", "BEARER   abc ")], Ok("abc")),
            (
                vec![("authorization", "Basic abc")],
                Err(TokenProblem::Missing),
            ),
            (
                vec![("authorization", "Bearer")],
                Err(TokenProblem::Missing),
            ),
            (
                vec![("authorization", "Bearer ")],
                Err(TokenProblem::Missing),
            ),
            (
                vec![("authorization", "Bearerabc")],
                Err(TokenProblem::Missing),
            ),
            (vec![("x-token", "t1")], Ok("t1")),
            (vec![("cookie", "a=1; session=c1; b=2")], Ok("c1")),
            (vec![("cookie", "session=\"c2\"")], Ok("c2")),
            (vec![("cookie", "xsession=c1")], Err(TokenProblem::Missing)),
            (vec![(":path", "/a?x=1&access_token=q1")], Ok("q1")),
            (vec![(":path", "/a?access_token=q%2E1")], Ok("q.1")),
            (vec![], Err(TokenProblem::Missing)),
            (
                vec![("authorization", "Bearer a"), ("authorization", "Bearer b")],
                Err(TokenProblem::Ambiguous),
            ),
            (
                vec![("authorization", "Bearer a"), ("x-token", "b")],
                Err(TokenProblem::Ambiguous),
            ),
            (
                vec![("cookie", "session=a"), (":path", "/?access_token=b")],
                Err(TokenProblem::Ambiguous),
            ),
            (
                vec![("cookie", "session=a; session=b")],
                Err(TokenProblem::Ambiguous),
            ),
            // A Basic header next to a bearer token elsewhere is not a second token.
            (
                vec![("authorization", "Basic x"), ("x-token", "t")],
                Ok("t"),
            ),
        ];
        for (pairs, want) in cases {
            let headers = h(&pairs);
            let got = find_token(&all, &view(&headers)).map(|(t, _)| t);
            assert_eq!(got.as_deref().map_err(|e| *e), want, "{pairs:?}");
        }
    }

    #[test]
    fn only_configured_sources_count() {
        let headers = h(&[("x-token", "t"), (":path", "/?access_token=q")]);
        let bearer_only = vec![TokenSource::bearer()];
        assert_eq!(
            find_token(&bearer_only, &view(&headers)).map(|(t, _)| t),
            Err(TokenProblem::Missing)
        );
    }

    #[test]
    fn locations_for_stripping() {
        let headers = h(&[
            (":path", "/a?access_token=q&x=1"),
            ("cookie", "a=1; session=s; b=2"),
        ]);
        let v = view(&headers);
        assert_eq!(
            location(&TokenSource::Query("access_token".into()), &v),
            TokenLocation::Query {
                name: "access_token",
                path_without_token: "/a?x=1".into()
            }
        );
        assert_eq!(
            location(&TokenSource::Cookie("session".into()), &v),
            TokenLocation::Cookie {
                rest: Some("a=1; b=2".into())
            }
        );
        let only = h(&[("cookie", "session=s")]);
        assert_eq!(
            location(&TokenSource::Cookie("session".into()), &view(&only)),
            TokenLocation::Cookie { rest: None }
        );
        assert_eq!(
            location(&TokenSource::bearer(), &v),
            TokenLocation::Header("authorization")
        );
    }
}
