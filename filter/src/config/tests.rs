use super::*;
use crate::rejection::Rejection;

fn errors_of(json: &str) -> Vec<String> {
    match compile(json.as_bytes()) {
        Ok(_) => panic!("config was accepted: {json}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn demo_policy_compiles() {
    let json = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policies/demo.json"
    ))
    .unwrap();
    let guard = compile(&json).unwrap();
    assert_eq!(guard.policies.len(), 3);
    assert!(guard.default_policy.is_none());
    assert_eq!(guard.unmatched_routes, UnmatchedRoutes::Deny);
}

#[test]
fn every_example_policy_compiles() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let json = std::fs::read(&path).unwrap();
            if let Err(e) = compile(&json) {
                panic!("{}: {e}", path.display());
            }
            n += 1;
        }
    }
    assert!(n > 0);
}

#[test]
fn minimal_configs_and_defaults() {
    let g = compile(br#"{"unmatched_routes":"allow"}"#).unwrap();
    assert_eq!(g.unmatched_routes, UnmatchedRoutes::Allow);
    assert!(g.policies.is_empty());
    let g = compile(br#"{"policies":{"default":{"api_key":{}}}}"#).unwrap();
    let rule = g.policies[0].api_key.as_ref().unwrap();
    assert_eq!(rule.header.as_deref(), Some("x-api-key"));
    assert_eq!(rule.query, None);
    assert!(rule.strip_credential);
    assert!(rule.admitted.is_none());
    assert_eq!(g.policies[0].request_limits, RequestLimits::default());
    assert_eq!(g.identity_headers, IdentityHeaders::default());
    assert_eq!(g.default_policy, Some(PolicyId(0)));
    // Only a query source named: no header source.
    let g = compile(br#"{"policies":{"p":{"api_key":{"query":"key"}}}}"#).unwrap();
    let rule = g.policies[0].api_key.as_ref().unwrap();
    assert_eq!(
        (rule.header.as_deref(), rule.query.as_deref()),
        (None, Some("key"))
    );
    // null is the same as absent.
    assert!(compile(br#"{"policies":{"p":{"ip":null}}}"#)
        .unwrap()
        .policies[0]
        .ip
        .is_none());
}

#[test]
fn error_paths_table() {
    let digest = "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873";
    let cases: Vec<(String, &str)> = vec![
        (r#"{"policies":{"payments":{"ip":{"allow":["10.0.0.0/8","::1","10.0.0.300/8"]}}}}"#.into(),
         r#"policies.payments.ip.allow[2]: not a CIDR: "10.0.0.300/8" (not an IP address)"#),
        (r#"{"policies":{"p":{"ip":{"deny":["10.1.2.3/8"]}}}}"#.into(),
         r#"policies.p.ip.deny[0]: not a CIDR: "10.1.2.3/8" (address has bits set beyond the prefix length)"#),
        (r#"{"policies":{"p":{"ip":{"allow":"10.0.0.0/8"}}}}"#.into(), "policies.p.ip.allow: expected an array, found a string"),
        (r#"{"policies":{"p":{"ip":{"allow":[7]}}}}"#.into(), "policies.p.ip.allow[0]: expected a string, found a number"),
        (r#"{"policies":{"p":{"ipp":{}}}}"#.into(), "policies.p.ipp: unknown field"),
        (r#"{"polices":{}}"#.into(), "polices: unknown field"),
        (r#"{"unmatched_routes":"maybe"}"#.into(), r#"unmatched_routes: expected "deny" or "allow""#),
        (r#"{"policies":{"bad.name":{}}}"#.into(), "policies.bad.name: policy names are 1-64 characters of [A-Za-z0-9_-], starting with a letter or digit"),
        (r#"{"policies":{"_x":{}}}"#.into(), "policies._x: policy names are 1-64 characters of [A-Za-z0-9_-], starting with a letter or digit"),
        (r#"{"policies":{"p":{"methods":[]}}}"#.into(), r#"policies.p.methods: list at least one method, or omit "methods" to allow every method"#),
        (r#"{"policies":{"p":{"methods":["get"]}}}"#.into(), r#"policies.p.methods[0]: not an uppercase HTTP method: "get""#),
        (r#"{"policies":{"p":{"methods":["GET","GET"]}}}"#.into(), r#"policies.p.methods[1]: duplicate method "GET""#),
        (r#"{"policies":{"p":{"request_limits":{"max_path_bytes":0}}}}"#.into(), "policies.p.request_limits.max_path_bytes: must be between 1 and 65536"),
        (r#"{"policies":{"p":{"request_limits":{"max_header_bytes":"big"}}}}"#.into(), "policies.p.request_limits.max_header_bytes: expected a whole number, found a string"),
        (r#"{"policies":{"p":{"api_key":{"header":"X-Api-Key"}}}}"#.into(), r#"policies.p.api_key.header: header names must be lowercase: "X-Api-Key""#),
        (r#"{"policies":{"p":{"api_key":{"header":"x api"}}}}"#.into(), r#"policies.p.api_key.header: not an HTTP header name: "x api""#),
        (r#"{"policies":{"p":{"api_key":{"header":"x-api-guard-client-id"}}}}"#.into(), "policies.p.api_key.header: the key header cannot be one of the identity headers"),
        (r#"{"policies":{"p":{"api_key":{"query":"a&b"}}}}"#.into(), r#"policies.p.api_key.query: not a plain query parameter name: "a&b""#),
        (r#"{"policies":{"p":{"api_key":{"clients":["ghost"]}}}}"#.into(), r#"policies.p.api_key.clients[0]: unknown client "ghost""#),
        (r#"{"policies":{"p":{"api_key":{"clients":[]}}}}"#.into(), r#"policies.p.api_key.clients: list at least one client, or omit "clients" to admit every client"#),
        (r#"{"policies":{"p":{"api_key":{"strip_credential":"yes"}}}}"#.into(), "policies.p.api_key.strip_credential: expected a boolean, found a string"),
        (r#"{"clients":{"c":{"keys":[{"id":"k","sha256":"demo-key-123"}]}}}"#.into(),
         "clients.c.keys[0].sha256: not a SHA-256 digest (64 hex digits); store `printf %s KEY | sha256sum`, never the key"),
        (format!(r#"{{"clients":{{"c":{{"keys":[{{"sha256":"{digest}"}}]}}}}}}"#), r#"clients.c.keys[0]: a key needs an "id""#),
        (r#"{"clients":{"c":{"keys":[{"id":"k"}]}}}"#.into(), r#"clients.c.keys[0]: a key needs "sha256", the hex SHA-256 digest of the key"#),
        (r#"{"clients":{"c":{"keys":[]}}}"#.into(), "clients.c.keys: a client needs at least one key"),
        (r#"{"clients":{"c":{}}}"#.into(), r#"clients.c: a client needs "keys" (at least one)"#),
        (format!(r#"{{"clients":{{"c":{{"keys":[{{"id":"k","sha256":"{digest}"}},{{"id":"k","sha256":"{}"}}]}}}}}}"#, "b".repeat(64)),
         r#"clients.c.keys[1].id: duplicate key id "k""#),
        (format!(r#"{{"clients":{{"a":{{"keys":[{{"id":"k","sha256":"{digest}"}}]}},"b":{{"keys":[{{"id":"k","sha256":"{digest}"}}]}}}}}}"#),
         "clients.b.keys[0].sha256: the same key digest is already used at clients.a.keys[0].sha256"),
        (format!(r#"{{"clients":{{"c":{{"keys":[{{"id":"k","sha256":"{digest}","expires":"tomorrow"}}]}}}}}}"#),
         r#"clients.c.keys[0].expires: not an RFC 3339 timestamp: "tomorrow""#),
        (format!(r#"{{"clients":{{"c":{{"keys":[{{"id":"k","sha256":"{digest}","not_before":"2026-02-01T00:00:00Z","expires":"2026-01-01T00:00:00Z"}}]}}}}}}"#),
         "clients.c.keys[0].expires: must be later than not_before"),
        (format!(r#"{{"clients":{{"c c":{{"keys":[{{"id":"k","sha256":"{digest}"}}]}}}}}}"#),
         "clients.c c: client ids are 1-128 characters of [A-Za-z0-9_.:@-], starting with a letter or digit"),
        (format!(r#"{{"clients":{{"c":{{"keys":[{{"id":"k\n","sha256":"{digest}"}}]}}}}}}"#),
         "clients.c.keys[0].id: key ids are 1-128 characters of [A-Za-z0-9_.:@-], starting with a letter or digit"),
        (format!(r#"{{"clients":{{"c":{{"keys":[{{"id":"k","sha256":"{digest}","disabled":1}}]}}}}}}"#),
         "clients.c.keys[0].disabled: expected a boolean, found a number"),
        (r#"{"identity_headers":{"client_id":"x-a","key_id":"x-a"}}"#.into(), "identity_headers: client_id, key_id and tier must be different headers"),
        (r#"{"identity_headers":{"client":"x-a"}}"#.into(), "identity_headers.client: unknown field"),
        (r#"[]"#.into(), "(root): expected an object, found an array"),
        ("".into(), r#"(root): the configuration is empty (api-guard needs at least {"policies": {...}})"#),
        ("{\"policies\":".into(), "(root): not valid JSON: EOF while parsing a value at line 1 column 12"),
    ];
    for (json, want) in cases {
        let errors = errors_of(&json);
        assert!(
            errors.iter().any(|e| e == want),
            "config {json}\n want: {want}\n got: {errors:#?}"
        );
    }
}

#[test]
fn all_errors_are_reported_at_once() {
    let errors = errors_of(
        r#"{"policies":{
            "a":{"ip":{"allow":["nope","10.0.0.0/40"]},"methods":["get"]},
            "b":{"api_key":{"clients":["ghost"]},"extra":true}
        },"bogus":1}"#,
    );
    assert_eq!(errors.len(), 6, "{errors:#?}");
}

#[test]
fn secrets_are_never_echoed() {
    let errors = errors_of(
        r#"{"clients":{"c":{"keys":[{"id":"k","sha256":"super-secret-plaintext-key"}]}}}"#,
    );
    assert!(
        errors.iter().all(|e| !e.contains("super-secret")),
        "{errors:?}"
    );
}

#[test]
fn unknown_policy_metadata_never_panics() {
    // Bad input on the request path: the decision is a rejection, not a panic.
    let g = compile(br#"{"policies":{"a":{}}}"#).unwrap();
    let view = crate::request::RequestView {
        headers: Default::default(),
        client_ip: None,
        route_policy: Some("\u{0}"),
        route_name: None,
        virtual_host: None,
    };
    let d = crate::pipeline::decide_at(
        &g,
        &view,
        crate::time::UnixTime(0),
        &mut crate::jwt::runtime::TokenRuntime::new(&g),
        true,
    );
    assert_eq!(
        d.verdict,
        crate::verdict::Verdict::Deny(Rejection::UnknownPolicy)
    );
}

#[test]
fn remote_documents_take_client_auth_from_the_environment() {
    let json = serde_json::json!({
        "jwt_providers": {"corp": {
            "issuer": "https://issuer.test", "audiences": ["api"],
            "remote_jwks": {"cluster": "idp", "authority": "idp.test", "path": "/jwks.json",
                            "client_auth": {"method": "bearer", "token_env": "IDP_TOKEN"}}
        }},
        "revocation": {"remote": {"cluster": "auth", "authority": "auth.test", "path": "/revocations",
                                  "client_auth": {"method": "basic", "client_id": "api-guard",
                                                  "client_secret_env": "AUTH_SECRET"}}},
        "remote_clients": {"cluster": "auth", "authority": "auth.test", "path": "/clients",
                           "client_auth": {"method": "basic", "client_id": "api-guard",
                                           "client_secret_env": "AUTH_SECRET"}},
        "policies": {"p": {}}
    })
    .to_string();
    let env = |name: &str| match name {
        "IDP_TOKEN" => Some("idp-t0ken".to_string()),
        "AUTH_SECRET" => Some("s".to_string()),
        _ => None,
    };
    let guard = compile_with_env(json.as_bytes(), &env).unwrap();
    let header = |s: Option<&crate::remote::RemoteSource>| {
        s.and_then(|s| s.client_auth.as_ref())
            .map(|a| a.header_value().to_string())
    };
    let crate::jwt::provider::ProviderKeys::Remote(jwks) = &guard.jwt_providers[0].keys else {
        panic!("remote keys")
    };
    assert_eq!(header(Some(jwks)), Some("Bearer idp-t0ken".into()));
    // base64("api-guard:s")
    let basic = Some("Basic YXBpLWd1YXJkOnM=".to_string());
    assert_eq!(header(guard.revocation.remote.as_ref()), basic);
    assert_eq!(header(guard.remote_clients.as_ref()), basic);
    // Without the environment: every source that needs it is an error at its path.
    let errors = errors_of(&json);
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "jwt_providers.corp.remote_jwks.client_auth.token_env",
            "revocation.remote.client_auth.client_secret_env",
            "remote_clients.client_auth.client_secret_env",
        ]
    );
}
