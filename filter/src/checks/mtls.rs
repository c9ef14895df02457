//! mTLS client identity: the client certificate Envoy verified on the connection, mapped to a
//! client id by a policy's `mtls` rule. The TLS handshake (Envoy's `DownstreamTlsContext` with
//! `require_client_certificate` and a `trusted_ca`) proves the client holds the certificate's
//! key; this check says WHICH client that certificate is: by its SPIFFE (URI) SAN, its DNS SAN,
//! or the SHA-256 of the certificate itself. The identity it establishes is an admission's
//! identity like an API key's: identity headers, `clients`-free policies, limits by `client`.

use serde_json::Value;

use crate::config::reader::{object, ConfigErrors};

/// Why a request's certificate identifies no client (the pipeline turns it into a rejection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtlsProblem {
    /// No client certificate on the connection.
    Missing,
    /// A verified certificate no identity matches.
    Unknown,
}

/// What Envoy says about the peer certificate of the connection (`connection.*` attributes).
/// Envoy exposes the first URI SAN and the first DNS SAN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCertificate {
    pub uri_san: Option<String>,
    pub dns_san: Option<String>,
    /// Lowercase hex SHA-256 of the certificate (DER).
    pub sha256: Option<String>,
}

/// How one identity is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    UriSan(String),
    DnsSan(String),
    /// Lowercase hex, 64 digits.
    Sha256(String),
}

impl Matcher {
    /// The key id an admission by this matcher carries (`x-api-guard-key-id`): how the
    /// certificate was recognised.
    pub fn key_id(&self) -> &'static str {
        match self {
            Matcher::UriSan(_) => "mtls-uri-san",
            Matcher::DnsSan(_) => "mtls-dns-san",
            Matcher::Sha256(_) => "mtls-sha256",
        }
    }

    fn matches(&self, peer: &PeerCertificate) -> bool {
        let eq = |want: &String, have: &Option<String>| have.as_deref() == Some(want.as_str());
        match self {
            Matcher::UriSan(u) => eq(u, &peer.uri_san),
            // DNS names compare case-insensitively.
            Matcher::DnsSan(d) => peer
                .dns_san
                .as_deref()
                .is_some_and(|have| have.eq_ignore_ascii_case(d)),
            Matcher::Sha256(h) => peer
                .sha256
                .as_deref()
                .is_some_and(|have| have.eq_ignore_ascii_case(h)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtlsIdentity {
    pub matcher: Matcher,
    pub client: String,
}

/// A policy's `mtls` rule: the identities it admits, first match wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtlsRule {
    pub identities: Vec<MtlsIdentity>,
}

impl MtlsRule {
    /// The (client id, key id) of the connection's certificate; refused without a verified
    /// certificate, or with one no identity matches.
    pub fn identify<'g>(
        &'g self,
        peer: Option<&PeerCertificate>,
    ) -> Result<(&'g str, &'static str), MtlsProblem> {
        let Some(peer) = peer else {
            return Err(MtlsProblem::Missing);
        };
        self.identities
            .iter()
            .find(|i| i.matcher.matches(peer))
            .map(|i| (i.client.as_str(), i.matcher.key_id()))
            .ok_or(MtlsProblem::Unknown)
    }
}

/// Compiles `policies.<name>.mtls`: `{"identities": [{"uri_san" | "dns_san" | "sha256": ...,
/// "client": ID}, ...]}`. Errors are `(path, message)`.
pub fn compile(v: &Value, path: &str) -> Result<MtlsRule, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    let Some(map) = object(v, path, &["identities"], &mut errors) else {
        return Err(errors);
    };
    let mut add = |p: String, m: &str| errors.add(&p, m);
    let ipath = format!("{path}.identities");
    let items = match map.get("identities") {
        Some(Value::Array(items)) if !items.is_empty() => items.as_slice(),
        Some(Value::Array(_)) => {
            add(ipath.clone(), "list at least one identity");
            &[]
        }
        Some(_) => {
            add(ipath.clone(), "expected an array");
            &[]
        }
        None => {
            add(path.to_string(), "an mtls rule needs \"identities\"");
            &[]
        }
    };
    let mut identities: Vec<MtlsIdentity> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{ipath}[{i}]");
        let Some(entry) = item.as_object() else {
            add(p, "expected an object");
            continue;
        };
        let mut matchers = Vec::new();
        let mut client = None;
        for (key, value) in entry {
            let fp = format!("{p}.{key}");
            let text = value.as_str().filter(|s| !s.is_empty());
            match (key.as_str(), text) {
                ("uri_san", Some(s)) => matchers.push(Matcher::UriSan(s.to_string())),
                ("dns_san", Some(s)) => {
                    matchers.push(Matcher::DnsSan(s.to_ascii_lowercase()));
                }
                ("sha256", Some(s)) => match sha256_hex(s) {
                    Some(h) => matchers.push(Matcher::Sha256(h)),
                    None => add(
                        fp,
                        "not a SHA-256 fingerprint (64 hex digits, colons allowed: `openssl x509 -noout -fingerprint -sha256`)",
                    ),
                },
                ("client", Some(s)) if is_client_id(s) => {
                    client = Some(s.to_string());
                }
                ("client", Some(_)) => add(
                    fp,
                    "client ids are 1-128 characters of [A-Za-z0-9_.:@-], starting with a letter or digit",
                ),
                ("uri_san" | "dns_san" | "sha256" | "client", None) => {
                    add(fp, "expected a non-empty string");
                }
                _ => add(fp, "unknown field"),
            }
        }
        if client.is_none() && !entry.contains_key("client") {
            add(p.clone(), "an identity needs \"client\"");
        }
        let matcher = match matchers.len() {
            1 => matchers.pop(),
            0 if !entry
                .keys()
                .any(|k| matches!(k.as_str(), "uri_san" | "dns_san" | "sha256")) =>
            {
                add(
                    p.clone(),
                    "an identity needs one of \"uri_san\", \"dns_san\", \"sha256\"",
                );
                None
            }
            0 => None,
            _ => {
                add(
                    p.clone(),
                    "an identity has exactly one of \"uri_san\", \"dns_san\", \"sha256\"",
                );
                None
            }
        };
        if let (Some(matcher), Some(client)) = (matcher, client) {
            if identities.iter().any(|known| known.matcher == matcher) {
                add(
                    p,
                    "the same certificate is already mapped by an earlier identity",
                );
            } else {
                identities.push(MtlsIdentity { matcher, client });
            }
        }
    }
    if errors.is_empty() {
        Ok(MtlsRule { identities })
    } else {
        Err(errors)
    }
}

/// The rule of client ids everywhere in the configuration (they travel in headers and logs).
fn is_client_id(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=128).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':' | b'@'))
}

/// 64 hex digits (colons between byte pairs allowed), lowercased.
fn sha256_hex(s: &str) -> Option<String> {
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FINGERPRINT: &str = "9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08";

    fn rule() -> MtlsRule {
        compile(
            &json!({"identities": [
                {"uri_san": "spiffe://example.org/ns/shop/sa/checkout", "client": "checkout"},
                {"dns_san": "Billing.Internal.Example", "client": "billing"},
                {"sha256": FINGERPRINT, "client": "batch"}
            ]}),
            "policies.p.mtls",
        )
        .unwrap()
    }

    #[test]
    fn identify_table() {
        let rule = rule();
        let peer = |uri: Option<&str>, dns: Option<&str>, sha: Option<&str>| PeerCertificate {
            uri_san: uri.map(str::to_string),
            dns_san: dns.map(str::to_string),
            sha256: sha.map(str::to_string),
        };
        let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let cases = [
            (
                Some(peer(
                    Some("spiffe://example.org/ns/shop/sa/checkout"),
                    None,
                    None,
                )),
                Ok(("checkout", "mtls-uri-san")),
            ),
            (
                Some(peer(None, Some("billing.internal.example"), None)),
                Ok(("billing", "mtls-dns-san")),
            ),
            (
                Some(peer(None, None, Some(digest))),
                Ok(("batch", "mtls-sha256")),
            ),
            // First match wins, in configuration order.
            (
                Some(peer(
                    Some("spiffe://example.org/ns/shop/sa/checkout"),
                    Some("billing.internal.example"),
                    Some(digest),
                )),
                Ok(("checkout", "mtls-uri-san")),
            ),
            // A URI SAN is compared exactly: no prefix, no case folding.
            (
                Some(peer(
                    Some("spiffe://example.org/ns/shop/sa/checkout-2"),
                    None,
                    None,
                )),
                Err(MtlsProblem::Unknown),
            ),
            (
                Some(peer(
                    Some("SPIFFE://example.org/ns/shop/sa/checkout"),
                    None,
                    None,
                )),
                Err(MtlsProblem::Unknown),
            ),
            (Some(PeerCertificate::default()), Err(MtlsProblem::Unknown)),
            (None, Err(MtlsProblem::Missing)),
        ];
        for (peer, want) in cases {
            assert_eq!(rule.identify(peer.as_ref()), want, "{peer:?}");
        }
    }

    #[test]
    fn compile_errors_name_their_path() {
        let cases = [
            (json!([]), "policies.p.mtls"),
            (json!({}), "policies.p.mtls"),
            (json!({"identities": []}), "policies.p.mtls.identities"),
            (
                json!({"identities": [{"client": "a"}]}),
                "policies.p.mtls.identities[0]",
            ),
            (
                json!({"identities": [{"uri_san": "x", "dns_san": "y", "client": "a"}]}),
                "policies.p.mtls.identities[0]",
            ),
            (
                json!({"identities": [{"uri_san": "x"}]}),
                "policies.p.mtls.identities[0]",
            ),
            (
                json!({"identities": [{"sha256": "abc", "client": "a"}]}),
                "policies.p.mtls.identities[0].sha256",
            ),
            (
                json!({"identities": [{"uri_san": "x", "client": "bad id!"}]}),
                "policies.p.mtls.identities[0].client",
            ),
            (
                json!({"identities": [{"uri_san": "x", "client": "a", "extra": 1}]}),
                "policies.p.mtls.identities[0].extra",
            ),
            (
                json!({"identities": [{"uri_san": "x", "client": "a"}, {"uri_san": "x", "client": "b"}]}),
                "policies.p.mtls.identities[1]",
            ),
            (json!({"identities": [], "more": 1}), "policies.p.mtls.more"),
        ];
        for (v, path) in cases {
            let errors = compile(&v, "policies.p.mtls").unwrap_err();
            assert!(errors.0.iter().any(|e| e.path == path), "{v}: {errors:?}");
        }
    }

    /// Through `pipeline::decide`: the certificate's identity is the admission's, keys limits
    /// by client, and a key's identity wins when the policy also checks one.
    #[test]
    fn decisions_with_a_certificate() {
        use crate::config::compile;
        use crate::jwt::runtime::TokenRuntime;
        use crate::pipeline::{decide, Env, Events};
        use crate::request::RequestView;
        use crate::store::MemoryStore;
        use crate::verdict::Verdict;

        let guard = compile(
            json!({
                "clients": {"acme": {"keys": [{"id": "acme-1", "sha256": "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873"}]}},
                "policies": {
                    "svc": {
                        "mtls": {"identities": [{"uri_san": "spiffe://e/checkout", "client": "checkout"}]},
                        "rate_limits": [{"name": "c", "rate": 1, "per": "hour", "burst": 1, "key": "client"}]
                    },
                    "both": {
                        "mtls": {"identities": [{"uri_san": "spiffe://e/checkout", "client": "checkout"}]},
                        "api_key": {}
                    }
                }
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let checkout = PeerCertificate {
            uri_san: Some("spiffe://e/checkout".into()),
            ..PeerCertificate::default()
        };
        let store = MemoryStore::default();
        let run = |policy: &str, peer: Option<&PeerCertificate>, key: Option<&str>| {
            let mut h = vec![
                (":method".to_string(), b"GET".to_vec()),
                (":path".to_string(), b"/".to_vec()),
            ];
            if let Some(k) = key {
                h.push(("x-api-key".to_string(), k.as_bytes().to_vec()));
            }
            let view = RequestView {
                headers: crate::request::leaked_headers(&h),
                client_ip: None,
                route_policy: Some(policy),
                route_name: None,
                virtual_host: None,
            };
            let mut env = Env::first(&store, 1_000_000_000, true);
            env.peer = peer;
            let mut runtime = TokenRuntime::new(&guard);
            match decide(&guard, &view, &env, &mut runtime, &mut Events::default()).verdict {
                Verdict::Allow(a) => Ok(a.identity.map(|(c, k)| (c.to_string(), k.to_string()))),
                Verdict::Deny(r) => Err(r.reason().as_str()),
                Verdict::Wait(_) => Err("wait"),
            }
        };
        let who = |c: &str, k: &str| Ok(Some((c.to_string(), k.to_string())));
        assert_eq!(
            run("svc", Some(&checkout), None),
            who("checkout", "mtls-uri-san")
        );
        // The client's burst of 1 is spent: the limit is keyed by the certificate's client.
        assert_eq!(run("svc", Some(&checkout), None), Err("rate_limited"));
        assert_eq!(run("svc", None, None), Err("client_certificate_missing"));
        // Both checks required; the key's identity is the request's.
        assert_eq!(
            run("both", Some(&checkout), Some("demo-key-123")),
            who("acme", "acme-1")
        );
        assert_eq!(run("both", Some(&checkout), None), Err("api_key_missing"));
        assert_eq!(
            run("both", None, Some("demo-key-123")),
            Err("client_certificate_missing")
        );
    }
}
