//! Route policy selection: which policy a request runs. The route's `api_guard` metadata names it;
//! a route without metadata is matched against the configuration's `routes` (first match wins);
//! what neither selects gets `default`, else `unmatched_routes` decides (`policy::select`, which
//! has the whole configuration; this module knows only the matchers).
//!
//! Istio and Envoy Gateway cannot set route metadata, so on those platforms the matchers are how
//! a route gets its policy. They are compiled once into hash and trie indexes: a request looks up
//! its route name, virtual host, host and path instead of walking the list, so its cost does not
//! grow with the number of matchers. Only matchers with no indexed condition (methods alone, or
//! a regex without a literal start) are tried one by one.

use std::borrow::Cow;
use std::collections::HashMap;

use regex_lite::Regex;

use crate::checks::method::MethodSet;
use crate::request::RequestView;
use crate::verdict::PolicyId;

/// The outcome of selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    Policy(PolicyId),
    /// No policy applies and the configuration explicitly lets such routes through.
    PassThrough,
    /// No policy applies and unmatched routes are denied (the default).
    NoPolicy,
    /// The route names a policy the configuration does not define: deny (fail closed).
    UnknownPolicy,
}

/// A host condition: one host name, or every name under a domain (`*.example.com` matches
/// `a.example.com` and `a.b.example.com`, not `example.com`, as Envoy's virtual host domains do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// Lowercase, without port.
    Exact(String),
    /// The suffix with its leading dot, lowercase: `.example.com`.
    Suffix(String),
}

/// A path condition on the request path without its query string.
#[derive(Debug)]
pub enum PathMatch {
    Exact(String),
    /// A byte prefix (as Envoy's route `prefix`), optionally with a regex the whole path must
    /// also match.
    Prefix(String, Option<PathRegex>),
    /// A regex the whole path must match (as Envoy's `safe_regex`).
    Regex(PathRegex),
}

/// A regex-lite pattern matched against the whole path, compiled at configure time.
#[derive(Debug)]
pub struct PathRegex {
    regex: Regex,
    /// The literal text every matching path starts with (its leading plain characters), used
    /// as the index key; empty when the pattern starts with an operator.
    literal_head: String,
}

/// Longest pattern accepted; paths longer than this are still matched.
pub const MAX_PATTERN_LEN: usize = 256;

impl PathRegex {
    /// Compiles `source` anchored at both ends; the error is regex-lite's message.
    pub fn new(source: &str) -> Result<PathRegex, String> {
        if source.len() > MAX_PATTERN_LEN {
            return Err(format!("longer than {MAX_PATTERN_LEN} characters"));
        }
        let regex = regex_lite::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(1 << 18)
            .nest_limit(32)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(PathRegex {
            regex,
            literal_head: literal_head(source).to_string(),
        })
    }

    pub fn is_match(&self, path: &[u8]) -> bool {
        std::str::from_utf8(path).is_ok_and(|p| self.regex.is_match(p))
    }

    pub fn literal_head(&self) -> &str {
        &self.literal_head
    }
}

/// The plain characters a pattern starts with, which every full match must start with too.
/// Conservative: only `[A-Za-z0-9/_-]` count (no escapes, no `.`), a character followed by a
/// quantifier is dropped (it may repeat zero times), and a pattern with `|` anywhere has none
/// (an alternation at the top would make the head optional).
fn literal_head(source: &str) -> &str {
    if source.contains('|') {
        return "";
    }
    let plain = source
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
        .count();
    let end = match source.as_bytes().get(plain) {
        Some(b'?' | b'*' | b'+' | b'{') => plain.saturating_sub(1),
        _ => plain,
    };
    source.get(..end).unwrap_or("")
}

/// One entry of `routes`: every condition it has must hold; absent conditions hold always.
#[derive(Debug)]
pub struct RouteMatcher {
    pub policy: PolicyId,
    pub route_name: Option<String>,
    pub virtual_host: Option<String>,
    pub authority: Option<HostMatch>,
    pub path: Option<PathMatch>,
    pub methods: Option<MethodSet>,
}

/// Which index a matcher is filed under: its most selective condition.
enum Key<'a> {
    RouteName(&'a str),
    VirtualHost(&'a str),
    Path(&'a str),
    Host(&'a str),
    PathPrefix(&'a str),
    HostSuffix(&'a str),
    Scan,
}

impl RouteMatcher {
    fn key(&self) -> Key<'_> {
        if let Some(n) = &self.route_name {
            return Key::RouteName(n);
        }
        if let Some(n) = &self.virtual_host {
            return Key::VirtualHost(n);
        }
        if let Some(PathMatch::Exact(p)) = &self.path {
            return Key::Path(p);
        }
        if let Some(HostMatch::Exact(h)) = &self.authority {
            return Key::Host(h);
        }
        let head = match &self.path {
            Some(PathMatch::Prefix(p, _)) => p.as_str(),
            Some(PathMatch::Regex(r)) => r.literal_head(),
            _ => "",
        };
        if !head.is_empty() {
            return Key::PathPrefix(head);
        }
        if let Some(HostMatch::Suffix(s)) = &self.authority {
            return Key::HostSuffix(s);
        }
        Key::Scan
    }

    fn matches(&self, facts: &Facts<'_>) -> bool {
        let name_ok = |want: &Option<String>, got: Option<&str>| {
            want.as_deref().is_none_or(|w| got == Some(w))
        };
        name_ok(&self.route_name, facts.route_name)
            && name_ok(&self.virtual_host, facts.virtual_host)
            && self.authority.as_ref().is_none_or(|a| match a {
                HostMatch::Exact(h) => facts.host.as_deref() == Some(h.as_bytes()),
                HostMatch::Suffix(s) => facts
                    .host
                    .as_deref()
                    .is_some_and(|h| h.len() > s.len() && h.ends_with(s.as_bytes())),
            })
            && self.path.as_ref().is_none_or(|p| match p {
                PathMatch::Exact(e) => facts.path == e.as_bytes(),
                PathMatch::Prefix(prefix, regex) => {
                    facts.path.starts_with(prefix.as_bytes())
                        && regex.as_ref().is_none_or(|r| r.is_match(facts.path))
                }
                PathMatch::Regex(r) => r.is_match(facts.path),
            })
            && self.methods.as_ref().is_none_or(|m| m.admits(facts.method))
    }
}

/// The request facts matchers look at, read once per selection.
struct Facts<'a> {
    route_name: Option<&'a str>,
    virtual_host: Option<&'a str>,
    /// `:authority` lowercase, without port and trailing dot.
    host: Option<Cow<'a, [u8]>>,
    /// `:path` without query string or fragment.
    path: &'a [u8],
    method: &'a [u8],
}

impl<'a> Facts<'a> {
    fn of(request: &RequestView<'a>) -> Facts<'a> {
        let target = request.path();
        let path_end = target
            .iter()
            .position(|b| matches!(b, b'?' | b'#'))
            .unwrap_or(target.len());
        Facts {
            route_name: request.route_name,
            virtual_host: request.virtual_host,
            host: request.header(":authority").map(host_of),
            path: target.get(..path_end).unwrap_or_default(),
            method: request.method(),
        }
    }
}

/// The host of an authority: without port (`[v6]:port` keeps its brackets) or one trailing dot,
/// lowercased (host names are case-insensitive) without copying when it already is.
fn host_of(authority: &[u8]) -> Cow<'_, [u8]> {
    let host = if authority.first() == Some(&b'[') {
        match authority.iter().position(|b| *b == b']') {
            Some(end) => authority.get(..=end).unwrap_or(authority),
            None => authority,
        }
    } else {
        match authority.iter().rposition(|b| *b == b':') {
            Some(colon) => authority.get(..colon).unwrap_or(authority),
            None => authority,
        }
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.iter().any(u8::is_ascii_uppercase) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

fn lookup<'m>(map: &'m HashMap<String, Vec<u32>>, key: Option<&str>) -> &'m [u32] {
    key.and_then(|k| map.get(k)).map_or(&[], Vec::as_slice)
}

/// Byte trie of path prefixes: walking a path visits every prefix that is one, in
/// `O(path length)` whatever the number of prefixes.
#[derive(Debug, Default)]
struct PrefixTrie {
    /// Node 0 is the root (the empty prefix).
    nodes: Vec<TrieNode>,
}

#[derive(Debug, Default)]
struct TrieNode {
    /// Sorted by byte.
    next: Vec<(u8, u32)>,
    /// Matchers (indexes, ascending) filed under the prefix ending here.
    here: Vec<u32>,
}

impl PrefixTrie {
    fn insert(&mut self, prefix: &[u8], matcher: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut at = 0usize;
        for byte in prefix {
            let Some(node) = self.nodes.get(at) else {
                return;
            };
            at = match node.next.binary_search_by_key(byte, |(b, _)| *b) {
                Ok(i) => node.next.get(i).map_or(0, |(_, n)| *n as usize),
                Err(i) => {
                    let new = self.nodes.len();
                    if let Some(node) = self.nodes.get_mut(at) {
                        node.next.insert(i, (*byte, new as u32));
                    }
                    self.nodes.push(TrieNode::default());
                    new
                }
            };
        }
        if let Some(node) = self.nodes.get_mut(at) {
            node.here.push(matcher);
        }
    }

    /// Calls `visit` with the matchers of every prefix of `path`, shortest first.
    fn walk(&self, path: &[u8], mut visit: impl FnMut(&[u32])) {
        let Some(mut node) = self.nodes.first() else {
            return;
        };
        visit(&node.here);
        for byte in path {
            let Ok(i) = node.next.binary_search_by_key(byte, |(b, _)| *b) else {
                return;
            };
            let Some(next) = node
                .next
                .get(i)
                .and_then(|(_, n)| self.nodes.get(*n as usize))
            else {
                return;
            };
            node = next;
            visit(&node.here);
        }
    }
}

/// The compiled `routes` list with its indexes.
#[derive(Debug, Default)]
pub struct RouteMatchers {
    matchers: Vec<RouteMatcher>,
    by_route_name: HashMap<String, Vec<u32>>,
    by_virtual_host: HashMap<String, Vec<u32>>,
    by_path: HashMap<Vec<u8>, Vec<u32>>,
    by_host: HashMap<Vec<u8>, Vec<u32>>,
    by_host_suffix: HashMap<Vec<u8>, Vec<u32>>,
    path_prefixes: PrefixTrie,
    /// Matchers with no indexable condition, tried in order.
    scanned: Vec<u32>,
    needs_route_name: bool,
    needs_virtual_host: bool,
}

impl RouteMatchers {
    /// Files each matcher under its most selective condition; indexes stay ascending because
    /// matchers are added in configuration order.
    pub fn new(matchers: Vec<RouteMatcher>) -> RouteMatchers {
        let mut out = RouteMatchers::default();
        for (i, m) in matchers.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            out.needs_route_name |= m.route_name.is_some();
            out.needs_virtual_host |= m.virtual_host.is_some();
            match m.key() {
                Key::RouteName(n) => out.by_route_name.entry(n.into()).or_default().push(i),
                Key::VirtualHost(n) => out.by_virtual_host.entry(n.into()).or_default().push(i),
                Key::Path(p) => out.by_path.entry(p.into()).or_default().push(i),
                Key::Host(h) => out.by_host.entry(h.into()).or_default().push(i),
                Key::PathPrefix(p) => out.path_prefixes.insert(p.as_bytes(), i),
                Key::HostSuffix(s) => out.by_host_suffix.entry(s.into()).or_default().push(i),
                Key::Scan => out.scanned.push(i),
            }
        }
        out.matchers = matchers;
        out
    }

    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }

    pub fn len(&self) -> usize {
        self.matchers.len()
    }

    /// Whether selection reads Envoy's route name (`xds.route_name`): the adapter reads the
    /// property only then.
    pub fn needs_route_name(&self) -> bool {
        self.needs_route_name
    }

    /// Whether selection reads the virtual host name (`xds.virtual_host_name`).
    pub fn needs_virtual_host(&self) -> bool {
        self.needs_virtual_host
    }

    /// The first matcher in order that the request satisfies, by walking the list: the
    /// specification [`select`](Self::select)'s indexes must agree with (property tests and the
    /// `route_select` fuzz target compare them). Not used on the request path.
    pub fn select_in_order(&self, request: &RequestView<'_>) -> Option<PolicyId> {
        let facts = Facts::of(request);
        self.matchers
            .iter()
            .find(|m| m.matches(&facts))
            .map(|m| m.policy)
    }

    /// The policy of the first matcher the request satisfies.
    pub fn select(&self, request: &RequestView<'_>) -> Option<PolicyId> {
        if self.matchers.is_empty() {
            return None;
        }
        let facts = Facts::of(request);
        let mut best = u32::MAX;
        // Each index list is ascending: its first satisfied matcher is its best, and a
        // matcher at or after the best found so far cannot win.
        let mut try_list = |list: &[u32]| {
            for &i in list {
                if i >= best {
                    return;
                }
                if self
                    .matchers
                    .get(i as usize)
                    .is_some_and(|m| m.matches(&facts))
                {
                    best = i;
                    return;
                }
            }
        };
        try_list(lookup(&self.by_route_name, facts.route_name));
        try_list(lookup(&self.by_virtual_host, facts.virtual_host));
        try_list(self.by_path.get(facts.path).map_or(&[], Vec::as_slice));
        if let Some(host) = facts.host.as_deref() {
            try_list(self.by_host.get(host).map_or(&[], Vec::as_slice));
            if !self.by_host_suffix.is_empty() {
                // Every `.domain` suffix of the host: one lookup per dot.
                for (at, _) in host.iter().enumerate().filter(|(_, b)| **b == b'.') {
                    if let Some(list) = host.get(at..).and_then(|s| self.by_host_suffix.get(s)) {
                        try_list(list);
                    }
                }
            }
        }
        self.path_prefixes.walk(facts.path, &mut try_list);
        try_list(&self.scanned);
        self.matchers.get(best as usize).map(|m| m.policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::compile;
    use crate::policy::{select, Guard};

    fn view<'a>(
        headers: &'a [(String, Vec<u8>)],
        route_name: Option<&'a str>,
        virtual_host: Option<&'a str>,
    ) -> RequestView<'a> {
        RequestView {
            headers: crate::request::leaked_headers(headers),
            client_ip: None,
            route_policy: None,
            route_name,
            virtual_host,
        }
    }

    fn headers(method: &str, authority: &str, path: &str) -> Vec<(String, Vec<u8>)> {
        vec![
            (":method".into(), method.as_bytes().to_vec()),
            (":authority".into(), authority.as_bytes().to_vec()),
            (":path".into(), path.as_bytes().to_vec()),
        ]
    }

    #[test]
    fn selection_table() {
        let with_default = compile(br#"{"policies":{"default":{},"api":{}}}"#).unwrap();
        let deny = compile(br#"{"policies":{"api":{}}}"#).unwrap();
        let allow = compile(br#"{"unmatched_routes":"allow","policies":{"api":{}}}"#).unwrap();
        let id = |g: &Guard, n: &str| Selection::Policy(g.by_name[n]);
        let cases = [
            (&with_default, Some("api"), id(&with_default, "api")),
            (&with_default, None, id(&with_default, "default")),
            (&with_default, Some("payments"), Selection::UnknownPolicy),
            (&deny, None, Selection::NoPolicy),
            (&deny, Some("API"), Selection::UnknownPolicy),
            (&allow, None, Selection::PassThrough),
            // An explicit but unknown name is never passed through, even when unmatched is allowed.
            (&allow, Some("ghost"), Selection::UnknownPolicy),
            (&allow, Some(""), Selection::UnknownPolicy),
        ];
        for (guard, name, want) in cases {
            let request = RequestView {
                route_policy: name,
                ..view(&[], None, None)
            };
            assert_eq!(select(guard, &request), want, "{name:?}");
        }
    }

    const MATCHERS: &str = r#"{
        "unmatched_routes": "deny",
        "policies": {"public": {}, "api": {}, "admin": {}, "orders": {}, "wild": {}, "host": {}, "writes": {}},
        "routes": [
            {"route_name": "shop-api.reads", "policy": "public"},
            {"route_name": "shop-api", "methods": ["POST"], "policy": "writes"},
            {"route_name": "shop-api", "policy": "api"},
            {"virtual_host": "admin.example.com:443", "policy": "admin"},
            {"authority": "api.example.com", "path": "/health", "policy": "public"},
            {"path_prefix": "/v1/users/", "path_regex": "/v1/users/[0-9]+/orders", "policy": "orders"},
            {"path_regex": "/v2/[a-z]+/items", "policy": "orders"},
            {"path_prefix": "/admin", "policy": "admin"},
            {"authority": "*.internal.example.com", "policy": "host"},
            {"authority": "API.Example.com", "policy": "api"},
            {"methods": ["DELETE"], "policy": "writes"},
            {"path_regex": "(/x|/y)/z", "policy": "wild"}
        ]
    }"#;

    /// Route name, virtual host, method, `:authority`, `:path`, expected selection.
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
        &'a str,
        &'a str,
        Selection,
    );

    #[test]
    fn matchers_table() {
        let guard = compile(MATCHERS.as_bytes()).unwrap();
        let id = |n: &str| Selection::Policy(guard.by_name[n]);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (Some("shop-api.reads"), None, "GET", "shop.example.com", "/x", id("public")),
            (Some("shop-api"), None, "GET", "shop.example.com", "/x", id("api")),
            (Some("shop-api"), None, "POST", "shop.example.com", "/x", id("writes")),
            // Route names are exact and case-sensitive.
            (Some("Shop-api"), None, "GET", "shop.example.com", "/x", Selection::NoPolicy),
            (Some("shop-ap"), None, "GET", "shop.example.com", "/x", Selection::NoPolicy),
            // Virtual host names as Istio writes them (host:port).
            (None, Some("admin.example.com:443"), "GET", "admin.example.com", "/", id("admin")),
            (None, Some("admin.example.com:80"), "GET", "admin.example.com", "/", Selection::NoPolicy),
            // Exact path with host; query string ignored; port and case of the host ignored.
            (None, None, "GET", "api.example.com", "/health?full=1", id("public")),
            (None, None, "GET", "API.example.com:8443", "/health", id("public")),
            (None, None, "GET", "api.example.com.", "/health", id("public")),
            (None, None, "GET", "api.example.com", "/health/", id("api")),
            (None, None, "GET", "other.example.com", "/health", Selection::NoPolicy),
            // Prefix and regex together: both must hold.
            (None, None, "GET", "x", "/v1/users/42/orders", id("orders")),
            (None, None, "GET", "x", "/v1/users/42/orders/1", Selection::NoPolicy),
            (None, None, "GET", "x", "/v1/users/me/orders", Selection::NoPolicy),
            // Regex alone, matched on the whole path.
            (None, None, "GET", "x", "/v2/shop/items", id("orders")),
            (None, None, "GET", "x", "/v2/shop/items?x=1", id("orders")),
            (None, None, "GET", "x", "/v2/Shop/items", Selection::NoPolicy),
            (None, None, "GET", "x", "/a/v2/shop/items", Selection::NoPolicy),
            // Byte prefix, as Envoy's `prefix`.
            (None, None, "GET", "x", "/admin", id("admin")),
            (None, None, "GET", "x", "/administrators", id("admin")),
            (None, None, "GET", "x", "/Admin", Selection::NoPolicy),
            // Wildcard hosts cover subdomains at any depth, never the domain itself.
            (None, None, "GET", "a.internal.example.com", "/", id("host")),
            (None, None, "GET", "a.b.internal.example.com:80", "/", id("host")),
            (None, None, "GET", "internal.example.com", "/", Selection::NoPolicy),
            (None, None, "GET", "xinternal.example.com", "/", Selection::NoPolicy),
            // The configuration's host is lowercased at compile time.
            (None, None, "GET", "api.example.com", "/other", id("api")),
            // Method-only matcher (scanned).
            (None, None, "DELETE", "x", "/anything", id("writes")),
            (None, None, "delete", "x", "/anything", Selection::NoPolicy),
            // An alternation: no literal head, scanned, still matched on the whole path.
            (None, None, "GET", "x", "/y/z", id("wild")),
            (None, None, "GET", "x", "/y/zz", Selection::NoPolicy),
            // First match wins across indexes: the exact host (index 9) beats DELETE (10).
            (None, None, "DELETE", "api.example.com", "/other", id("api")),
            // ... and the prefix (7) beats the wildcard host (8).
            (None, None, "GET", "a.internal.example.com", "/admin", id("admin")),
            // Facts missing entirely.
            (None, None, "GET", "", "", Selection::NoPolicy),
        ];
        for (i, (route, vhost, method, authority, path, want)) in cases.iter().enumerate() {
            let h = headers(method, authority, path);
            assert_eq!(select(&guard, &view(&h, *route, *vhost)), *want, "case {i}");
        }
    }

    #[test]
    fn metadata_wins_over_matchers_and_unknown_metadata_fails_closed() {
        let guard = compile(MATCHERS.as_bytes()).unwrap();
        let h = headers("GET", "api.example.com", "/health");
        let request = RequestView {
            route_policy: Some("admin"),
            ..view(&h, Some("shop-api"), None)
        };
        assert_eq!(
            select(&guard, &request),
            Selection::Policy(guard.by_name["admin"])
        );
        let request = RequestView {
            route_policy: Some("ghost"),
            ..view(&h, Some("shop-api"), None)
        };
        assert_eq!(select(&guard, &request), Selection::UnknownPolicy);
    }

    #[test]
    fn unmatched_requests_fall_to_default() {
        let guard = compile(
            br#"{"policies":{"default":{},"api":{}},"routes":[{"path_prefix":"/api/","policy":"api"}]}"#,
        )
        .unwrap();
        let h = headers("GET", "x", "/apix");
        assert_eq!(
            select(&guard, &view(&h, None, None)),
            Selection::Policy(guard.by_name["default"])
        );
        assert!(!guard.routes.needs_route_name() && !guard.routes.needs_virtual_host());
    }

    #[test]
    fn literal_heads_are_conservative() {
        for (pattern, head) in [
            ("/v1/users/[0-9]+", "/v1/users/"),
            ("/v1/users?", "/v1/user"),
            ("/v1/a*", "/v1/"),
            ("/v1/a{2}", "/v1/"),
            ("/v1\\.json", "/v1"),
            ("/v1.json", "/v1"),
            ("/a|/b", ""),
            ("(?i)/admin", ""),
            ("[/]admin", ""),
            ("", ""),
        ] {
            assert_eq!(literal_head(pattern), head, "{pattern}");
        }
    }

    #[test]
    fn host_of_strips_port_dot_and_case() {
        for (authority, host) in [
            ("Example.COM:8080", "example.com"),
            ("example.com.", "example.com"),
            ("[::1]:443", "[::1]"),
            ("[::1]", "[::1]"),
            ("127.0.0.1:80", "127.0.0.1"),
            ("", ""),
        ] {
            assert_eq!(host_of(authority.as_bytes()).as_ref(), host.as_bytes());
        }
    }

    proptest::proptest! {
        /// Indexed selection equals the in-order scan, for requests built from the pieces the
        /// matchers use (so that many requests do match), and regex heads never hide a match.
        #[test]
        fn indexes_agree_with_first_match_in_order(
            route in proptest::sample::select(vec!["shop-api", "shop-api.reads", "other", ""]),
            vhost in proptest::sample::select(vec!["admin.example.com:443", "x:80", ""]),
            method in proptest::sample::select(vec!["GET", "POST", "DELETE"]),
            host in proptest::sample::select(vec![
                "api.example.com", "API.example.com:1", "a.internal.example.com",
                "internal.example.com", "x", "",
            ]),
            path in proptest::collection::vec(proptest::sample::select(vec![
                "/", "v1", "v2", "users", "42", "orders", "admin", "health", "shop", "items",
                "y", "z", "?q", "x",
            ]), 0..7),
        ) {
            let guard = compile(MATCHERS.as_bytes()).unwrap();
            let path: String = path.concat();
            let h = headers(method, host, &path);
            let request = view(&h, Some(route).filter(|r| !r.is_empty()), Some(vhost).filter(|v| !v.is_empty()));
            proptest::prop_assert_eq!(guard.routes.select(&request), guard.routes.select_in_order(&request));
        }

        /// Every path a regex matches starts with the regex's literal head.
        #[test]
        fn regex_matches_start_with_the_head(
            pattern in proptest::collection::vec(proptest::sample::select(vec![
                "/", "a", "b", "-", "[0-9]+", "x?", "y*", ".", "\\.", "(a|b)", "c{1,2}", "|",
            ]), 1..6),
            path in proptest::collection::vec(proptest::sample::select(vec![
                "/", "a", "b", "-", "1", "x", "y", "c", ".", "cc",
            ]), 0..8),
        ) {
            let pattern = pattern.concat();
            let path = path.concat();
            if let Ok(re) = PathRegex::new(&pattern) {
                if re.is_match(path.as_bytes()) {
                    proptest::prop_assert!(path.starts_with(re.literal_head()), "{} {}", pattern, path);
                }
            }
        }
    }
}
