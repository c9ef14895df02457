//! CORS preflights. A browser asks before a cross-origin request that is not "simple" with an
//! `OPTIONS` request carrying `Origin` and `Access-Control-Request-Method`, and never sends
//! credentials on it (Fetch standard, "CORS-preflight request"). A policy that requires an API
//! key or a token therefore refuses every preflight, and the browser never sends the real
//! request. `preflight: "pass"` lets a real preflight skip the credential checks; everything
//! else (size limits, IP rules, screening, rate limits by address or policy) still applies, and
//! the method check applies to the method the preflight asks for.

use crate::request::RequestView;

/// How a policy treats CORS preflights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preflight {
    /// Like any request: credentials required as the policy says (the default).
    #[default]
    Check,
    /// A real preflight skips the credential checks (`api_key`, `jwt`, `introspection`).
    Pass,
}

/// The method a CORS preflight asks permission for, if `request` is one: `OPTIONS` (exactly;
/// methods are case-sensitive) with a non-empty `Origin` and a non-empty
/// `Access-Control-Request-Method`. An `OPTIONS` without either is an ordinary request.
pub fn requested_method<'a>(request: &RequestView<'a>) -> Option<&'a [u8]> {
    if request.method() != b"OPTIONS" {
        return None;
    }
    let non_empty = |name: &str| request.header(name).filter(|v| !v.is_empty());
    non_empty("origin")?;
    non_empty("access-control-request-method")
}

/// Whether `request` is a CORS preflight.
pub fn is_preflight(request: &RequestView<'_>) -> bool {
    requested_method(request).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(headers: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn preflight_table() {
        let origin = ("origin", "https://app.example");
        let acrm = ("access-control-request-method", "PUT");
        type Headers<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Headers<'_>, Option<&str>); 8] = [
            (&[(":method", "OPTIONS"), origin, acrm], Some("PUT")),
            // Either header missing: an ordinary OPTIONS request.
            (&[(":method", "OPTIONS"), origin], None),
            (&[(":method", "OPTIONS"), acrm], None),
            // Empty values do not make a preflight.
            (&[(":method", "OPTIONS"), ("origin", ""), acrm], None),
            (
                &[
                    (":method", "OPTIONS"),
                    origin,
                    ("access-control-request-method", ""),
                ],
                None,
            ),
            // Not OPTIONS (methods are case-sensitive).
            (&[(":method", "options"), origin, acrm], None),
            (&[(":method", "GET"), origin, acrm], None),
            (&[origin, acrm], None),
        ];
        for (headers, want) in cases {
            let h = view(headers);
            let request = RequestView {
                headers: crate::request::leaked_headers(&h),
                client_ip: None,
                route_policy: None,
                route_name: None,
                virtual_host: None,
            };
            assert_eq!(
                requested_method(&request),
                want.map(str::as_bytes),
                "{headers:?}"
            );
            assert_eq!(is_preflight(&request), want.is_some());
        }
    }

    mod decisions {
        use crate::config::compile;
        use crate::jwt::runtime::TokenRuntime;
        use crate::pipeline::{decide, Env, Events};
        use crate::policy::Guard;
        use crate::rejection::Rejection;
        use crate::request::RequestView;
        use crate::store::MemoryStore;
        use crate::verdict::Verdict;

        const CONFIG: &str = r#"{
            "clients": {"acme": {"keys": [{"id": "acme-1", "sha256": "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873"}]}},
            "policies": {
                "api": {
                    "methods": ["GET", "PUT"],
                    "ip": {"allow": ["10.0.0.0/8"]},
                    "headers": {"required": ["x-tenant"]},
                    "api_key": {},
                    "preflight": "pass",
                    "rate_limits": [
                        {"name": "per_client", "rate": 100, "per": "second", "key": "client"},
                        {"name": "per_ip", "rate": 1, "per": "hour", "burst": 2, "key": "ip"}
                    ]
                },
                "strict": {"api_key": {}}
            }
        }"#;

        fn guard() -> &'static Guard {
            Box::leak(Box::new(compile(CONFIG.as_bytes()).unwrap()))
        }

        /// One decision against `store` (shared between calls to count rate limits).
        fn decide_with(
            guard: &'static Guard,
            store: &MemoryStore,
            policy: &str,
            ip: &str,
            headers: &[(&str, &str)],
        ) -> Verdict<'static> {
            let h: Vec<(String, Vec<u8>)> = [(":path", "/x")]
                .iter()
                .chain(headers)
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect();
            let view = RequestView {
                headers: crate::request::leaked_headers(&h),
                client_ip: ip.parse().ok(),
                route_policy: Some(policy),
                route_name: None,
                virtual_host: None,
            };
            let env = Env::first(store, 1_000_000_000, true);
            let mut runtime = TokenRuntime::new(guard);
            decide(guard, &view, &env, &mut runtime, &mut Events::default()).verdict
        }

        const PREFLIGHT: [(&str, &str); 3] = [
            (":method", "OPTIONS"),
            ("origin", "https://app.example"),
            ("access-control-request-method", "PUT"),
        ];

        #[test]
        fn a_preflight_skips_credentials_and_header_rules_only() {
            let guard = guard();
            let fresh = || MemoryStore::default();
            // Admitted without a key or x-tenant, and without an identity.
            match decide_with(guard, &fresh(), "api", "10.1.1.1", &PREFLIGHT) {
                Verdict::Allow(a) => assert_eq!(a.identity, None),
                other => panic!("{other:?}"),
            }
            // The policy that does not let preflights pass refuses it like any request.
            assert_eq!(
                decide_with(guard, &fresh(), "strict", "10.1.1.1", &PREFLIGHT),
                Verdict::Deny(Rejection::ApiKeyMissing)
            );
            // The IP rule still applies.
            assert_eq!(
                decide_with(guard, &fresh(), "api", "192.0.2.1", &PREFLIGHT),
                Verdict::Deny(Rejection::IpDenied)
            );
            // The method check applies to the method asked for.
            let delete = [
                (":method", "OPTIONS"),
                ("origin", "https://app.example"),
                ("access-control-request-method", "DELETE"),
            ];
            assert_eq!(
                decide_with(guard, &fresh(), "api", "10.1.1.1", &delete),
                Verdict::Deny(Rejection::MethodNotAllowed { allow: "GET, PUT" })
            );
            // Not a real preflight (no Access-Control-Request-Method): an ordinary OPTIONS.
            let plain = [(":method", "OPTIONS"), ("origin", "https://app.example")];
            assert_eq!(
                decide_with(guard, &fresh(), "api", "10.1.1.1", &plain),
                Verdict::Deny(Rejection::MethodNotAllowed { allow: "GET, PUT" })
            );
            // The real request still needs its key.
            let get = [(":method", "GET"), ("x-tenant", "t1")];
            assert_eq!(
                decide_with(guard, &fresh(), "api", "10.1.1.1", &get),
                Verdict::Deny(Rejection::ApiKeyMissing)
            );
        }

        #[test]
        fn preflights_count_against_address_limits_not_client_limits() {
            let guard = guard();
            let store = MemoryStore::default();
            for _ in 0..2 {
                assert!(matches!(
                    decide_with(guard, &store, "api", "10.1.1.1", &PREFLIGHT),
                    Verdict::Allow(_)
                ));
            }
            assert!(matches!(
                decide_with(guard, &store, "api", "10.1.1.1", &PREFLIGHT),
                Verdict::Deny(Rejection::RateLimited(l)) if l.limit == "per_ip"
            ));
        }

        #[test]
        fn an_unknown_preflight_value_is_a_configuration_error() {
            let errors = compile(br#"{"policies": {"p": {"preflight": "allow"}}}"#).unwrap_err();
            assert!(
                errors.0.iter().any(|e| e.path == "policies.p.preflight"),
                "{errors}"
            );
        }

        use proptest::prelude::*;

        /// The same policy with and without `preflight: "pass"`.
        const PAIR: &str = r#"{
            "clients": {"acme": {"keys": [{"id": "acme-1", "sha256": "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873"}]}},
            "policies": {
                "pass": {"methods": ["GET", "OPTIONS"], "ip": {"allow": ["10.0.0.0/8"]}, "api_key": {},
                         "preflight": "pass", "rate_limits": [{"name": "c", "rate": 100, "per": "second", "key": "client"}]},
                "check": {"methods": ["GET", "OPTIONS"], "ip": {"allow": ["10.0.0.0/8"]}, "api_key": {},
                          "rate_limits": [{"name": "c", "rate": 100, "per": "second", "key": "client"}]}
            }
        }"#;

        proptest! {
            /// `preflight: "pass"` changes nothing for a request that is not a real preflight,
            /// and a preflight it admits carries no identity.
            #[test]
            fn pass_only_changes_real_preflights(
                method in prop::sample::select(vec!["GET", "OPTIONS", "options", "POST"]),
                origin in prop::option::of(prop::sample::select(vec!["", "https://a.example"])),
                asked in prop::option::of(prop::sample::select(vec!["", "GET", "DELETE"])),
                key in prop::option::of(prop::sample::select(vec!["demo-key-123", "wrong"])),
                ip in prop::sample::select(vec!["10.1.1.1", "192.0.2.1"]),
            ) {
                let guard: &'static Guard = Box::leak(Box::new(compile(PAIR.as_bytes()).unwrap()));
                let mut headers = vec![(":method", method)];
                if let Some(o) = origin { headers.push(("origin", o)); }
                if let Some(a) = asked { headers.push(("access-control-request-method", a)); }
                if let Some(k) = key { headers.push(("x-api-key", k)); }
                let h: Vec<(String, Vec<u8>)> = headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                    .collect();
                let view = RequestView { headers: crate::request::leaked_headers(&h), client_ip: None, route_policy: None, route_name: None, virtual_host: None };
                let preflight = super::super::is_preflight(&view);
                let pass = decide_with(guard, &MemoryStore::default(), "pass", ip, &headers);
                let check = decide_with(guard, &MemoryStore::default(), "check", ip, &headers);
                if preflight {
                    match pass {
                        Verdict::Allow(a) => prop_assert_eq!(a.identity, None),
                        Verdict::Deny(r) => prop_assert!(
                            matches!(r, Rejection::IpDenied | Rejection::MethodNotAllowed { .. }),
                            "{:?}", r
                        ),
                        other => prop_assert!(false, "{:?}", other),
                    }
                } else {
                    prop_assert_eq!(pass, check);
                }
            }
        }
    }
}
