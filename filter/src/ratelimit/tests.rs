//! Policy-level rate limiting through the compiled configuration: keys, several limits,
//! shadow mode, store failures.

use super::*;
use crate::config::compile;
use crate::pipeline::decide;
use crate::policy::Guard;
use crate::store::MemoryStore;
use crate::time::UnixTime;
use crate::verdict::{Decision, Verdict};

const S: u64 = 1_000_000_000;
const NOW: u64 = 1_800_000_000 * S;

fn hex_digest(key: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn guard(policy: serde_json::Value) -> Guard {
    let config = serde_json::json!({
        "clients": {
            "acme": {"keys": [{"id": "a1", "sha256": "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873"}]},
            "globex": {"keys": [{"id": "g1", "sha256": hex_digest("globex-key")}]}
        },
        "policies": {"p": policy}
    });
    match compile(config.to_string().as_bytes()) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

struct Req {
    headers: Vec<(String, Vec<u8>)>,
    ip: &'static str,
}

fn req(key: Option<&str>, ip: &'static str, extra: &[(&str, &str)]) -> Req {
    let mut headers = vec![
        (":method".to_string(), b"GET".to_vec()),
        (":path".to_string(), b"/x".to_vec()),
    ];
    if let Some(k) = key {
        headers.push(("x-api-key".into(), k.as_bytes().to_vec()));
    }
    for (n, v) in extra {
        headers.push((n.to_string(), v.as_bytes().to_vec()));
    }
    Req { headers, ip }
}

fn run<'g>(
    g: &'g Guard,
    store: &MemoryStore,
    r: &Req,
    now: u64,
    events: &mut Vec<(usize, Event)>,
) -> Decision<'g> {
    let view = view_of(r);
    let env = crate::pipeline::Env {
        store,
        now: UnixTime((now / S) as i64),
        now_ns: now,
        end_of_stream: true,
        attempt: crate::lifecycle::Attempt {
            may_wait: true,
            may_refetch: true,
        },
        peer: None,
    };
    let mut all = crate::pipeline::Events::default();
    let decision = decide(
        g,
        &view,
        &env,
        &mut crate::jwt::runtime::TokenRuntime::new(g),
        &mut all,
    );
    events.append(&mut all.rate_limits);
    decision
}

fn admitted(g: &Guard, store: &MemoryStore, r: &Req, n: usize, now: u64) -> usize {
    (0..n)
        .filter(|_| {
            matches!(
                run(g, store, r, now, &mut Vec::new()).verdict,
                Verdict::Allow(_)
            )
        })
        .count()
}

#[test]
fn keyed_by_client_each_client_has_its_own_bucket() {
    let g = guard(serde_json::json!({
        "api_key": {},
        "rate_limits": [{"name": "day", "rate": 1, "per": "day", "burst": 3, "key": "client"}]
    }));
    let store = MemoryStore::new();
    assert_eq!(
        admitted(
            &g,
            &store,
            &req(Some("demo-key-123"), "10.0.0.1", &[]),
            10,
            NOW
        ),
        3
    );
    // A client that exhausted its limit does not affect another client.
    let other = req(Some("globex-key"), "10.0.0.1", &[]);
    assert_eq!(admitted(&g, &store, &other, 10, NOW), 3);
    // Requests refused by an earlier check never count.
    let none = req(None, "10.0.0.1", &[]);
    let d = run(&g, &store, &none, NOW, &mut Vec::new());
    assert_eq!(d.verdict, Verdict::Deny(Rejection::ApiKeyMissing));
}

#[test]
fn rejection_carries_the_header_values() {
    let g = guard(serde_json::json!({
        "rate_limits": [{"name": "burst", "rate": 10, "per": "second", "burst": 20, "key": "policy"}]
    }));
    let store = MemoryStore::new();
    let r = req(None, "10.0.0.1", &[]);
    assert_eq!(admitted(&g, &store, &r, 25, NOW), 20);
    let mut events = Vec::new();
    let d = run(&g, &store, &r, NOW, &mut events);
    assert_eq!(
        d.verdict,
        Verdict::Deny(Rejection::RateLimited(Limited {
            limit: "burst",
            quota: 20,
            window_secs: 2,
            retry_after_secs: 1,
            reset_secs: 2,
        }))
    );
    assert_eq!(events, vec![(0, Event::Limited)]);
    // 10 per second: half a second later, 5 more.
    assert_eq!(admitted(&g, &store, &r, 10, NOW + S / 2), 5);
}

#[test]
fn ip_prefixes_group_addresses() {
    let g = guard(serde_json::json!({
        "rate_limits": [{"name": "net", "rate": 1, "per": 3600, "burst": 2,
                         "key": {"ip": {"v4_prefix": 24, "v6_prefix": 64}}}]
    }));
    let store = MemoryStore::new();
    assert_eq!(admitted(&g, &store, &req(None, "10.1.2.3", &[]), 1, NOW), 1);
    assert_eq!(
        admitted(&g, &store, &req(None, "10.1.2.200", &[]), 5, NOW),
        1
    );
    assert_eq!(admitted(&g, &store, &req(None, "10.1.3.1", &[]), 5, NOW), 2);
    assert_eq!(
        admitted(&g, &store, &req(None, "2001:db8::1", &[]), 1, NOW),
        1
    );
    assert_eq!(
        admitted(&g, &store, &req(None, "2001:db8::ffff:1", &[]), 5, NOW),
        1
    );
}

/// Envoy reports a client as `[::ffff:a.b.c.d]:port` when it came through an IPv4-mapped
/// address (an `x-forwarded-for` entry, a dual-stack socket): such a client is the IPv4
/// client `a.b.c.d`, keyed by `v4_prefix`, not one of the `v6_prefix` /64 that every mapped
/// client shares (`::ffff:0:0/64`).
#[test]
fn ipv4_mapped_clients_are_keyed_as_ipv4() {
    let g = guard(serde_json::json!({
        "ip": {"allow": ["10.0.0.0/8"]},
        "rate_limits": [{"name": "net", "rate": 1, "per": 3600, "burst": 1,
                         "key": {"ip": {"v4_prefix": 32, "v6_prefix": 64}}}]
    }));
    // (source address, requests, admitted): each row runs after the rows above it.
    let cases: &[(&str, usize, usize)] = &[
        ("[::ffff:10.7.7.7]:0", 3, 1),
        // Another mapped client: its own /32 bucket, not the mapped /64.
        ("[::ffff:10.7.7.8]:0", 3, 1),
        ("[::ffff:a07:709]:40000", 3, 1),
        // The same client in plain IPv4 form: the bucket its mapped form already emptied.
        ("10.7.7.7:5555", 2, 0),
        ("10.7.7.8", 2, 0),
        ("10.7.7.10:5555", 2, 1),
        // The IPv4 `ip` rule sees mapped clients as IPv4 too.
        ("[::ffff:11.1.1.1]:0", 1, 0),
    ];
    let store = MemoryStore::new();
    for (source, n, want) in cases {
        let r = req(None, source, &[]);
        assert_eq!(admitted(&g, &store, &r, *n, NOW), *want, "{source}");
    }
}

proptest::proptest! {
    /// For any IPv4 client, prefix lengths and ports, the IPv4-mapped form Envoy may report
    /// lands in the same rate-limit bucket as the plain form.
    #[test]
    fn mapped_and_plain_ipv4_share_a_bucket(
        v4 in proptest::prelude::any::<u32>(),
        v4_prefix in 0u8..=32,
        v6_prefix in 0u8..=128,
        ports in (proptest::prelude::any::<u16>(), proptest::prelude::any::<u16>()),
    ) {
        let a = std::net::Ipv4Addr::from(v4);
        let mapped = format!("[{}]:{}", a.to_ipv6_mapped(), ports.0);
        let plain = format!("{a}:{}", ports.1);
        let headers: Vec<(String, Vec<u8>)> = Vec::new();
        let key = |source: &str| {
            let view = RequestView {
                headers: crate::request::leaked_headers(&headers),
                client_ip: crate::cidr::parse_socket_ip(source),
                route_policy: None,
                route_name: None,
                virtual_host: None,
            };
            key_hash(&KeySource::Ip { v4_prefix, v6_prefix }, &view, &crate::verdict::Admission::default())
        };
        proptest::prop_assert_eq!(key(&mapped), key(&plain));
        proptest::prop_assert!(key(&plain).is_some());
    }
}

#[test]
fn header_keys_and_several_limits() {
    let g = guard(serde_json::json!({
        "rate_limits": [
            {"name": "per_tenant", "rate": 1, "per": "day", "burst": 2, "key": {"header": "x-tenant"}},
            {"name": "total", "rate": 1, "per": "day", "burst": 5, "key": "policy"}
        ]
    }));
    let store = MemoryStore::new();
    let t = |v: &'static str| req(None, "10.0.0.1", &[("x-tenant", v)]);
    assert_eq!(admitted(&g, &store, &t("a"), 5, NOW), 2);
    assert_eq!(admitted(&g, &store, &t("b"), 5, NOW), 2);
    // The policy-wide limit caps everyone: 1 left of 5.
    assert_eq!(admitted(&g, &store, &t("c"), 5, NOW), 1);
    let mut events = Vec::new();
    let d = run(&g, &store, &t("d"), NOW, &mut events);
    assert!(matches!(
        d.verdict,
        Verdict::Deny(Rejection::RateLimited(Limited { limit: "total", .. }))
    ));
    assert_eq!(events, vec![(0, Event::Allowed), (1, Event::Limited)]);
}

#[test]
fn shadow_mode_counts_but_passes() {
    let g = guard(serde_json::json!({
        "rate_limits": [{"name": "s", "rate": 1, "per": "day", "burst": 2, "key": "policy", "mode": "shadow"}]
    }));
    let store = MemoryStore::new();
    let mut events = Vec::new();
    for _ in 0..5 {
        let d = run(&g, &store, &req(None, "10.0.0.1", &[]), NOW, &mut events);
        assert!(matches!(d.verdict, Verdict::Allow(_)));
    }
    let shadow = events
        .iter()
        .filter(|e| e.1 == Event::ShadowLimited)
        .count();
    assert_eq!(shadow, 3);
}

#[test]
fn store_errors_follow_on_store_error() {
    let deny = guard(serde_json::json!({
        "rate_limits": [{"name": "l", "rate": 5, "per": "second", "key": "policy"}]
    }));
    let allow = guard(serde_json::json!({
        "rate_limits": [{"name": "l", "rate": 5, "per": "second", "key": "policy", "on_store_error": "allow"}]
    }));
    let store = MemoryStore::new();
    store.set_unavailable(true);
    let r = req(None, "10.0.0.1", &[]);
    let mut events = Vec::new();
    assert_eq!(
        run(&deny, &store, &r, NOW, &mut events).verdict,
        Verdict::Deny(Rejection::RateLimitUnavailable)
    );
    assert!(matches!(
        run(&allow, &store, &r, NOW, &mut events).verdict,
        Verdict::Allow(_)
    ));
    assert_eq!(
        events,
        vec![(0, Event::StoreErrors), (0, Event::StoreErrors)]
    );
    // Every CAS retry meeting a concurrent writer: counted, then on_store_error.
    store.set_unavailable(false);
    store.interfere_with_next_writes(1_000);
    events.clear();
    assert_eq!(
        run(&deny, &store, &r, NOW, &mut events).verdict,
        Verdict::Deny(Rejection::RateLimitUnavailable)
    );
    assert_eq!(events.last(), Some(&(0, Event::CasRetriesExhausted)));
    assert_eq!(
        events.iter().filter(|e| e.1 == Event::CasRetries).count(),
        table::MAX_CAS_RETRIES as usize
    );
}

#[test]
fn config_errors_have_paths() {
    let cases: &[(serde_json::Value, &str)] = &[
        (serde_json::json!([{"name": "a", "rate": 1, "per": "fortnight", "key": "ip"}]),
         r#"policies.p.rate_limits[0].per: expected "second", "minute", "hour", "day" or a number of seconds"#),
        (serde_json::json!([{"name": "a", "rate": 0, "per": "second", "key": "ip"}]),
         "policies.p.rate_limits[0].rate: must be between 1 and 1000000000"),
        (serde_json::json!([{"name": "a", "rate": 1, "per": "second", "key": "client"}]),
         r#"policies.p.rate_limits[0].key: key "client" needs an identity: add an "api_key" or "mtls" check to this policy"#),
        (serde_json::json!([{"name": "a", "rate": 1, "per": "second", "key": "ip"}, {"name": "a", "rate": 1, "per": "second", "key": "ip"}]),
         r#"policies.p.rate_limits[1].name: duplicate rate limit name "a""#),
        (serde_json::json!([{"name": "a", "rate": 1, "per": "second", "key": "ip", "burts": 3}]),
         "policies.p.rate_limits[0].burts: unknown field"),
        (serde_json::json!([{"name": "a", "rate": 1, "per": "second", "key": {"header": "X-T"}}]),
         r#"policies.p.rate_limits[0].key.header: header names must be lowercase: "X-T""#),
        (serde_json::json!([{"name": "a", "rate": 1, "per": "second", "key": {"ip": {"v4_prefix": 33}}}]),
         "policies.p.rate_limits[0].key.ip.v4_prefix: must be between 0 and 32"),
        (serde_json::json!([{"name": "a", "rate": 1, "per": "second", "key": "policy", "max_keys": 5}]),
         r#"policies.p.rate_limits[0].max_keys: a limit keyed by "policy" has one bucket; remove max_keys"#),
        (serde_json::json!([{"name": "a", "rate": 1, "per": "second", "key": "ip", "max_keys": 0}]),
         "policies.p.rate_limits[0].max_keys: must be between 1 and 100000"),
        (serde_json::json!([{"name": "a", "rate": 1, "per": "second", "key": "ip", "mode": "dry"}]),
         r#"policies.p.rate_limits[0].mode: expected "enforce" or "shadow""#),
        (serde_json::json!([{"name": "a", "rate": 1, "per": "second", "key": "ip", "on_store_error": "ignore"}]),
         r#"policies.p.rate_limits[0].on_store_error: expected "deny" or "allow""#),
        (serde_json::json!([{"name": "a", "rate": 1, "per": "second", "key": "ip", "mode": true}]),
         "policies.p.rate_limits[0].mode: expected a string, found a boolean"),
        (serde_json::json!([{"name": "a.b", "rate": 1, "per": "second", "key": "ip"}]),
         "policies.p.rate_limits[0].name: rate limit names are 1-64 characters of [A-Za-z0-9_-], starting with a letter or digit"),
        (serde_json::json!([{"rate": 1, "per": 31_700_000, "burst": 1_000_000_000, "key": "ip"}]),
         r#"policies.p.rate_limits[0]: a rate limit needs a "name" (used in metrics and headers)"#),
        (serde_json::json!([{"name": "a", "rate": 1, "per": 31_000_000, "burst": 1_000_000_000, "key": "ip"}]),
         "policies.p.rate_limits[0].burst: burst x (per / rate) is too long a time to track"),
        (serde_json::json!({"name": "a"}), "policies.p.rate_limits: expected an array, found an object"),
    ];
    for (limits, want) in cases {
        let config = serde_json::json!({"policies": {"p": {"rate_limits": limits}}}).to_string();
        let errors = match compile(config.as_bytes()) {
            Ok(_) => panic!("accepted: {config}"),
            Err(e) => e.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
        assert!(
            errors.iter().any(|e| e == want),
            "{config}\n want: {want}\n got: {errors:#?}"
        );
    }
}

#[test]
fn defaults() {
    let g = guard(serde_json::json!({
        "rate_limits": [{"name": "l", "rate": 100, "per": "minute", "key": "ip"}]
    }));
    let l = &g.policies[0].rate_limits[0];
    assert_eq!(l.gcra.burst, 100);
    assert_eq!(l.window_secs(), 60);
    assert_eq!(l.mode, Mode::Enforce);
    assert_eq!(l.on_store_error, OnStoreError::Deny);
    assert_eq!(l.table.max_keys, DEFAULT_MAX_KEYS);
    assert_eq!(l.table.prefix, "api_guard.rl.p.l");
}

#[test]
fn ipv6_clients_are_keyed_by_their_slash_64_by_default() {
    let g = guard(serde_json::json!({
        "rate_limits": [{"name": "l", "rate": 1, "per": "day", "burst": 2, "key": "ip"}]
    }));
    assert_eq!(
        g.policies[0].rate_limits[0].key,
        KeySource::Ip {
            v4_prefix: 32,
            v6_prefix: 64
        }
    );
    let store = MemoryStore::new();
    // One client rotating through the addresses of its /64 has one bucket.
    let n: usize = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"]
        .iter()
        .map(|&ip| admitted(&g, &store, &req(None, ip, &[]), 2, NOW))
        .sum();
    assert_eq!(n, 2);
    assert_eq!(
        admitted(&g, &store, &req(None, "2001:db8:1:3::1", &[]), 5, NOW),
        2
    );
}

/// ES256 tokens minted by tools/jwt-fixtures/mint.py (PyJWT) with the fixture key `ec-256`:
/// subjects `user-gold` (plan gold) and `user-free` (plan free), both of org `o-1`, and one
/// without `sub` (plan free).
const GOLD: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjLTI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci50ZXN0IiwiYXVkIjoiYXBpIiwiZXhwIjo0MTAyNDQ0ODAwLCJzdWIiOiJ1c2VyLWdvbGQiLCJwbGFuIjoiZ29sZCIsIm9yZyI6Im8tMSJ9.bcQFWlSD1BMvgnQCxoP6b5xlDdQQlA-dhLNjjbToSET13KxjSNxJEliHJizZ21p_SG2xUZP5KndfGN35xCo0Mg";
const FREE: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjLTI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci50ZXN0IiwiYXVkIjoiYXBpIiwiZXhwIjo0MTAyNDQ0ODAwLCJzdWIiOiJ1c2VyLWZyZWUiLCJwbGFuIjoiZnJlZSIsIm9yZyI6Im8tMSJ9.OKw10f9rMAZEkV_kjhRdrsjeiulm0Q_uz6d9bQHUEeNRznjO-55st_erxF4009h-i-0nsyLi3uUhA5KraOUe_Q";
const NO_SUB: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjLTI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci50ZXN0IiwiYXVkIjoiYXBpIiwiZXhwIjo0MTAyNDQ0ODAwLCJwbGFuIjoiZnJlZSJ9.0iedxBQBgTQlsc5ERaLXFI7k1be9kbvceJqUbsnYBCzAEhaVgNIzdf8HCXgDjsXkhPShymTtRFalif27RJLB-w";

fn config_with_jwt(policy: serde_json::Value) -> serde_json::Value {
    let jwks = crate::jwt::verify::tests::fixture()["jwks"].clone();
    serde_json::json!({
        "clients": {
            "acme": {"keys": [{"id": "a1", "sha256": "a52782e3a2d4dd2f95f640b9abfb3b2a6b8e722c65f55be830f6e5f619f7f873"}]},
            "globex": {"keys": [{"id": "g1", "sha256": hex_digest("globex-key")}]}
        },
        "jwt_providers": {"corp": {"issuer": "https://issuer.test", "audiences": ["api"], "jwks": jwks}},
        "policies": {"p": policy}
    })
}

fn guard_with_jwt(policy: serde_json::Value) -> Guard {
    match compile(config_with_jwt(policy).to_string().as_bytes()) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The verdicts of `n` requests, one letter each: `A` allowed (with its tier after `:` if
/// any), `L` rate limited, anything else the reason.
fn verdicts(g: &Guard, store: &MemoryStore, r: &Req, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| match run(g, store, r, NOW, &mut Vec::new()).verdict {
            Verdict::Allow(a) => match a.tier {
                Some(t) => format!("A:{t}"),
                None => "A".into(),
            },
            Verdict::Deny(Rejection::RateLimited(_)) => "L".into(),
            Verdict::Deny(r) => r.reason().as_str().into(),
            Verdict::Wait(p) => format!("wait {p:?}"),
        })
        .collect()
}

#[test]
fn identity_keys_count_whichever_credential_admitted_the_request() {
    // auth any: API-key clients and JWT subjects each get their own bucket; no 503.
    let g = guard_with_jwt(serde_json::json!({
        "api_key": {}, "jwt": {"providers": ["corp"]}, "auth": "any",
        "rate_limits": [{"name": "who", "rate": 1, "per": "day", "burst": 2, "key": "identity"}]
    }));
    let store = MemoryStore::new();
    let key = req(Some("demo-key-123"), "10.0.0.1", &[]);
    let gold = req(None, "10.0.0.1", &[("authorization", &bearer(GOLD))]);
    let free = req(None, "10.0.0.1", &[("authorization", &bearer(FREE))]);
    let anonymous_sub = req(None, "10.0.0.1", &[("authorization", &bearer(NO_SUB))]);
    assert_eq!(verdicts(&g, &store, &key, 3), ["A", "A", "L"]);
    assert_eq!(verdicts(&g, &store, &gold, 3), ["A", "A", "L"]);
    assert_eq!(verdicts(&g, &store, &free, 3), ["A", "A", "L"]);
    // Verified tokens without `sub` share one bucket (of their provider).
    assert_eq!(verdicts(&g, &store, &anonymous_sub, 3), ["A", "A", "L"]);
    // No credential at all is refused by the auth check, not counted.
    assert_eq!(
        verdicts(&g, &store, &req(None, "10.0.0.1", &[]), 1),
        ["jwt_missing"]
    );
}

#[test]
fn identity_keys_can_use_a_claim() {
    let g = guard_with_jwt(serde_json::json!({
        "jwt": {"providers": ["corp"]},
        "rate_limits": [{"name": "org", "rate": 1, "per": "day", "burst": 3,
                         "key": {"identity": {"claim": "org"}}}]
    }));
    assert_eq!(g.policies[0].jwt.as_ref().unwrap().limit_claims, ["org"]);
    let store = MemoryStore::new();
    let gold = req(None, "10.0.0.1", &[("authorization", &bearer(GOLD))]);
    let free = req(None, "10.0.0.1", &[("authorization", &bearer(FREE))]);
    // Both subjects are in org o-1: one bucket of 3.
    assert_eq!(verdicts(&g, &store, &gold, 2), ["A", "A"]);
    assert_eq!(verdicts(&g, &store, &free, 2), ["A", "L"]);
}

#[test]
fn overrides_give_consumers_their_own_rate_and_a_tier() {
    let g = guard_with_jwt(serde_json::json!({
        "api_key": {}, "jwt": {"providers": ["corp"]}, "auth": "any",
        "rate_limits": [{"name": "who", "rate": 1, "per": "day", "burst": 1, "key": "identity",
            "overrides": [
                {"claim": "plan", "value": "gold", "rate": 3},
                {"client": "acme", "tier": "partner", "rate": 1, "burst": 2}
            ]}]
    }));
    let store = MemoryStore::new();
    let gold = req(None, "10.0.0.1", &[("authorization", &bearer(GOLD))]);
    let free = req(None, "10.0.0.1", &[("authorization", &bearer(FREE))]);
    let acme = req(Some("demo-key-123"), "10.0.0.1", &[]);
    let globex = req(Some("globex-key"), "10.0.0.1", &[]);
    assert_eq!(
        verdicts(&g, &store, &gold, 4),
        ["A:gold", "A:gold", "A:gold", "L"]
    );
    assert_eq!(verdicts(&g, &store, &free, 2), ["A", "L"]);
    assert_eq!(
        verdicts(&g, &store, &acme, 3),
        ["A:partner", "A:partner", "L"]
    );
    assert_eq!(verdicts(&g, &store, &globex, 2), ["A", "L"]);
    // The 429 of a tier reports the tier's numbers.
    match run(&g, &store, &gold, NOW, &mut Vec::new()).verdict {
        Verdict::Deny(Rejection::RateLimited(l)) => assert_eq!(l.quota, 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn identity_config_errors_are_found_at_configure_time() {
    let cases: &[(serde_json::Value, &str)] = &[
        (
            serde_json::json!({"api_key": {}, "jwt": {"providers": ["corp"]}, "auth": "any",
            "rate_limits": [{"name": "a", "rate": 1, "per": "second", "key": "client"}]}),
            r#"policies.p.rate_limits[0].key: key "client" needs every admitted request to carry an API key, but under "auth": "any" or "optional" some do not: use "identity" (any verified credential)"#,
        ),
        (
            serde_json::json!({"api_key": {}, "auth": "optional",
            "rate_limits": [{"name": "a", "rate": 1, "per": "second", "key": "identity"}]}),
            r#"policies.p.rate_limits[0].key: key "identity" needs every admitted request to carry a verified credential: this policy admits requests without one (no api_key/jwt/introspection, or "auth": "optional"); key such requests by "ip""#,
        ),
        (
            serde_json::json!({"rate_limits": [{"name": "a", "rate": 1, "per": "second", "key": "identity"}]}),
            r#"policies.p.rate_limits[0].key: key "identity" needs every admitted request to carry a verified credential: this policy admits requests without one (no api_key/jwt/introspection, or "auth": "optional"); key such requests by "ip""#,
        ),
        (
            serde_json::json!({"api_key": {},
            "rate_limits": [{"name": "a", "rate": 1, "per": "second", "key": {"identity": {"claim": "org"}}}]}),
            r#"policies.p.rate_limits[0].key: an identity "claim" needs a "jwt" check in this policy"#,
        ),
        (
            serde_json::json!({"api_key": {},
            "rate_limits": [{"name": "a", "rate": 1, "per": "second", "key": "client",
                             "overrides": [{"client": "nobody", "rate": 5}]}]}),
            r#"policies.p.rate_limits[0].overrides[0].client: no client "nobody" in "clients""#,
        ),
        (
            serde_json::json!({"api_key": {},
            "rate_limits": [{"name": "a", "rate": 1, "per": "second", "key": "client",
                             "overrides": [{"claim": "plan", "value": "gold", "rate": 5}]}]}),
            r#"policies.p.rate_limits[0].overrides[0].claim: a claim override needs a "jwt" check in this policy"#,
        ),
        (
            serde_json::json!({"jwt": {"providers": ["corp"]},
            "rate_limits": [{"name": "a", "rate": 1, "per": "second", "key": "identity",
                             "overrides": [{"claim": "plan", "value": "gold plan", "rate": 5}]}]}),
            r#"policies.p.rate_limits[0].overrides[0]: this override needs a "tier" name (the value is not one)"#,
        ),
        (
            serde_json::json!({"jwt": {"providers": ["corp"]},
            "rate_limits": [{"name": "a", "rate": 1, "per": "second", "key": "identity",
                             "overrides": [{"claim": "plan", "rate": 5}]}]}),
            r#"policies.p.rate_limits[0].overrides[0]: an override has either "client", or "claim" and "value""#,
        ),
        (
            serde_json::json!({"jwt": {"providers": ["corp"]},
            "rate_limits": [{"name": "a", "rate": 1, "per": "second", "key": "identity",
                             "overrides": [{"claim": "plan", "value": "gold"}]}]}),
            r#"policies.p.rate_limits[0].overrides[0]: an override needs "rate" (requests per the limit's "per")"#,
        ),
    ];
    for (policy, want) in cases {
        let config = config_with_jwt(policy.clone()).to_string();
        let errors = match compile(config.as_bytes()) {
            Ok(_) => panic!("accepted: {policy}"),
            Err(e) => e.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
        assert!(
            errors.iter().any(|e| e == want),
            "{policy}\n want: {want}\n got: {errors:#?}"
        );
    }
}

fn decide_all<'g>(
    g: &'g Guard,
    store: &MemoryStore,
    r: &Req,
    now: u64,
) -> (Decision<'g>, crate::pipeline::Events) {
    let view = view_of(r);
    let env = crate::pipeline::Env::first(store, now, true);
    let mut all = crate::pipeline::Events::default();
    let d = decide(
        g,
        &view,
        &env,
        &mut crate::jwt::runtime::TokenRuntime::new(g),
        &mut all,
    );
    (d, all)
}

fn summary(d: &Decision<'_>) -> String {
    match &d.verdict {
        Verdict::Allow(_) => "A".into(),
        Verdict::Deny(Rejection::RateLimited(l)) => format!("429 {}", l.limit),
        Verdict::Deny(r) => r.reason().as_str().into(),
        Verdict::Wait(p) => format!("wait {p:?}"),
    }
}

#[test]
fn a_lockout_answers_429_from_the_nth_failure_on_without_verifying() {
    let g = guard(serde_json::json!({
        "api_key": {},
        "rate_limits": [{"name": "failed_auth", "rate": 20, "per": "hour", "key": "ip",
                         "counts": "failed_auth"}]
    }));
    let store = MemoryStore::new();
    let wrong = |i: usize| format!("wrong-key-{i}");
    let got: Vec<String> = (0..25)
        .map(|i| {
            let k = wrong(i);
            summary(&decide_all(&g, &store, &req(Some(&k), "10.0.0.9", &[]), NOW).0)
        })
        .collect();
    assert!(got[..20].iter().all(|s| s == "api_key_unknown"), "{got:?}");
    assert!(got[20..].iter().all(|s| s == "429 failed_auth"), "{got:?}");
    // Even the right key is refused from the locked address (nothing is verified)...
    let good = req(Some("demo-key-123"), "10.0.0.9", &[]);
    assert_eq!(
        summary(&decide_all(&g, &store, &good, NOW).0),
        "429 failed_auth"
    );
    // ...and admitted from another one; successes and missing keys never count.
    let other = req(Some("demo-key-123"), "10.0.0.10", &[]);
    for _ in 0..30 {
        assert_eq!(summary(&decide_all(&g, &store, &other, NOW).0), "A");
        let none = req(None, "10.0.0.10", &[]);
        assert_eq!(
            summary(&decide_all(&g, &store, &none, NOW).0),
            "api_key_missing"
        );
    }
    // 20 per hour: 3 minutes later one more guess.
    let later = NOW + 180 * S;
    assert_eq!(
        summary(&decide_all(&g, &store, &req(Some("x"), "10.0.0.9", &[]), later).0),
        "api_key_unknown"
    );
    assert_eq!(
        summary(&decide_all(&g, &store, &req(Some("y"), "10.0.0.9", &[]), later).0),
        "429 failed_auth"
    );
}

#[test]
fn pre_authentication_limits_run_before_the_credential_checks() {
    let g = guard(serde_json::json!({
        "api_key": {},
        "rate_limits": [{"name": "per_address", "rate": 1, "per": "day", "burst": 3,
                         "key": "ip", "counts": "requests"}]
    }));
    let store = MemoryStore::new();
    // Missing and wrong keys count too: the limit is before them.
    let got: Vec<String> = [
        None,
        Some("wrong"),
        Some("demo-key-123"),
        Some("demo-key-123"),
    ]
    .iter()
    .map(|k| summary(&decide_all(&g, &store, &req(*k, "10.0.0.1", &[]), NOW).0))
    .collect();
    assert_eq!(
        got,
        ["api_key_missing", "api_key_unknown", "A", "429 per_address"]
    );
}

#[test]
fn pre_authentication_config_errors() {
    let cases: &[(serde_json::Value, &str)] = &[
        (
            serde_json::json!({"api_key": {}, "rate_limits": [{"name": "a", "rate": 1, "per": "second",
            "key": "client", "counts": "requests"}]}),
            r#"policies.p.rate_limits[0].counts: a limit that counts "requests" or "failed_auth" runs before any credential is verified: key it by "ip", a header or "policy""#,
        ),
        (
            serde_json::json!({"rate_limits": [{"name": "a", "rate": 1, "per": "second",
            "key": "ip", "counts": "failed_auth"}]}),
            r#"policies.p.rate_limits[0].counts: "failed_auth" counts refused credentials: this policy checks none"#,
        ),
        (
            serde_json::json!({"api_key": {}, "rate_limits": [{"name": "a", "rate": 1, "per": "second",
            "key": "ip", "counts": "requests", "overrides": [{"client": "acme", "rate": 2}]}]}),
            r#"policies.p.rate_limits[0].counts: "overrides" need a verified identity: only limits that count "admitted" requests have them"#,
        ),
        (
            serde_json::json!({"api_key": {}, "rate_limits": [{"name": "a", "rate": 1, "per": "second",
            "key": "ip", "counts": "sometimes"}]}),
            r#"policies.p.rate_limits[0].counts: expected "admitted" or "requests" or "failed_auth""#,
        ),
    ];
    for (policy, want) in cases {
        let config = config_with_jwt(policy.clone()).to_string();
        let errors = match compile(config.as_bytes()) {
            Ok(_) => panic!("accepted: {policy}"),
            Err(e) => e.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
        assert!(
            errors.iter().any(|e| e == want),
            "{policy}\n want: {want}\n got: {errors:#?}"
        );
    }
}

fn guard_with_abuse(policy: serde_json::Value, abuse: serde_json::Value) -> Guard {
    let mut config = config_with_jwt(policy);
    config["abuse"] = abuse;
    match compile(config.to_string().as_bytes()) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// GOLD with its signature's first character changed: a forged ES256 token.
fn forged() -> String {
    let (head, sig) = GOLD.rsplit_once('.').unwrap();
    let first = if sig.starts_with('A') { 'B' } else { 'A' };
    format!("{head}.{first}{}", &sig[1..])
}

#[test]
fn cold_verifications_spend_the_address_budget() {
    let g = guard_with_abuse(
        serde_json::json!({"jwt": {"providers": ["corp"]}}),
        serde_json::json!({"expensive_per_address": {"rate": 1, "per": "minute", "burst": 3}}),
    );
    let store = MemoryStore::new();
    let forged = forged();
    let attacker = req(None, "10.0.0.66", &[("authorization", &bearer(&forged))]);
    let got: Vec<String> = (0..5)
        .map(|_| summary(&decide_all(&g, &store, &attacker, NOW).0))
        .collect();
    assert_eq!(
        got,
        [
            "jwt_bad_signature",
            "jwt_bad_signature",
            "jwt_bad_signature",
            "429 expensive_per_address",
            "429 expensive_per_address"
        ]
    );
    // Another address verifies normally.
    let user = req(None, "10.0.0.7", &[("authorization", &bearer(GOLD))]);
    assert_eq!(summary(&decide_all(&g, &store, &user, NOW).0), "A");
}

#[test]
fn a_refused_token_is_refused_again_without_verification() {
    let g = guard_with_abuse(
        serde_json::json!({"jwt": {"providers": ["corp"]}}),
        serde_json::json!({"negative_cache": {"ttl_seconds": 30}}),
    );
    let store = MemoryStore::new();
    let forged = forged();
    let r = req(None, "10.0.0.66", &[("authorization", &bearer(&forged))]);
    let (d, events) = decide_all(&g, &store, &r, NOW);
    assert_eq!(summary(&d), "jwt_bad_signature");
    assert_eq!(events.abuse, [crate::abuse::AbuseEvent::NegativeRecorded]);
    let (d, events) = decide_all(&g, &store, &r, NOW + S);
    assert_eq!(summary(&d), "jwt_bad_signature");
    assert_eq!(events.abuse, [crate::abuse::AbuseEvent::NegativeHit]);
    // After the TTL it is verified (and refused) again.
    let (_, events) = decide_all(&g, &store, &r, NOW + 31 * S);
    assert_eq!(events.abuse, [crate::abuse::AbuseEvent::NegativeRecorded]);
    // A valid token is never remembered as refused.
    let ok = req(None, "10.0.0.66", &[("authorization", &bearer(GOLD))]);
    let (d, events) = decide_all(&g, &store, &ok, NOW);
    assert_eq!(summary(&d), "A");
    assert!(events.abuse.is_empty());
}

#[test]
fn shipped_rate_limit_examples_compile() {
    for file in ["rate-limits.json", "jwt.json", "demo.json"] {
        let path = format!("{}/../policies/{file}", env!("CARGO_MANIFEST_DIR"));
        let json = std::fs::read(&path).unwrap();
        if let Err(e) = compile(&json) {
            panic!("{file}: {e}");
        }
    }
}

#[test]
fn abuse_config_compiles_and_reports_errors_with_paths() {
    let ok = serde_json::json!({
        "abuse": {"negative_cache": {"ttl_seconds": 5, "max_entries": 16},
                  "expensive_per_address": {"rate": 3, "per": "minute", "burst": 6, "max_keys": 64,
                                            "v6_prefix": 56, "on_store_error": "deny"}},
        "introspection": {"cluster": "auth", "authority": "a", "path": "/i",
                          "token_shape": {"min_length": 20, "max_length": 64, "prefixes": ["at_"],
                                          "alphabet": "b64token"}},
        "policies": {"p": {}}
    });
    let g = compile(ok.to_string().as_bytes()).unwrap();
    let neg = g.abuse.negative_cache.as_ref().unwrap();
    assert_eq!((neg.ttl_ms, neg.max_entries), (5000, 16));
    let b = g.abuse.expensive_per_address.as_ref().unwrap();
    assert_eq!((b.gcra.burst, b.table.max_keys, b.v6_prefix), (6, 64, 56));
    assert!(!b.allow_on_store_error);
    let shape = &g.introspection.as_ref().unwrap().token_shape;
    assert!(shape.admits("at_0123456789abcdefghij"));
    assert!(!shape.admits("at_short"));
    let cases: &[(serde_json::Value, &str)] = &[
        (
            serde_json::json!({"negative_cache": {"ttl_seconds": 0}}),
            "abuse.negative_cache.ttl_seconds: must be between 1 and 3600",
        ),
        (
            serde_json::json!({"expensive_per_address": {}}),
            r#"abuse.expensive_per_address: the budget needs "rate" (expensive operations per "per")"#,
        ),
        (
            serde_json::json!({"expensive_per_address": {"rate": 1, "per": "hour"}}),
            r#"abuse.expensive_per_address.per: expected "second" or "minute""#,
        ),
        (
            serde_json::json!({"negative_cache": {}, "budget": {}}),
            "abuse.budget: unknown field",
        ),
    ];
    for (abuse, want) in cases {
        let config = serde_json::json!({"abuse": abuse, "policies": {"p": {}}}).to_string();
        let errors = match compile(config.as_bytes()) {
            Ok(_) => panic!("accepted: {abuse}"),
            Err(e) => e.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
        assert!(
            errors.iter().any(|e| e == want),
            "{abuse}\n want: {want}\n got: {errors:#?}"
        );
    }
}

/// The same guard with every limit in a table of its own (one entry per limit: the layout
/// before limits on one key shared an entry).
fn unshared(mut g: Guard) -> Guard {
    for policy in &mut g.policies {
        let name = policy.name.clone();
        for limit in &mut policy.rate_limits {
            limit.table = table::Table::new(
                format!("api_guard.rl.{name}.{}", limit.name),
                limit.table.max_keys,
            );
            limit.lane = 0;
        }
    }
    g
}

#[test]
fn limits_on_one_key_share_an_entry_per_stage_run() {
    let g = guard(serde_json::json!({
        "api_key": {},
        "rate_limits": [
            {"name": "early_a", "rate": 1, "per": "second", "key": "ip", "counts": "requests"},
            {"name": "per_second", "rate": 10, "per": "second", "key": "client"},
            {"name": "lock", "rate": 1, "per": "hour", "key": "ip", "counts": "failed_auth"},
            {"name": "per_hour", "rate": 300, "per": "hour", "key": "client"},
            {"name": "early_b", "rate": 2, "per": "second", "key": "ip", "counts": "requests"},
            {"name": "per_network", "rate": 5, "per": "second", "key": {"ip": {"v4_prefix": 24}}},
            {"name": "per_day", "rate": 900, "per": "day", "key": "client"},
            {"name": "small", "rate": 900, "per": "day", "key": "client", "max_keys": 5}
        ]
    }));
    let got: Vec<(&str, &str, usize, u32)> = g.policies[0]
        .rate_limits
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.table.prefix.as_str(),
                l.lane,
                l.table.lanes,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("early_a", "api_guard.rl.p.early_a+early_b", 0, 2),
            ("per_second", "api_guard.rl.p.per_second+per_hour", 0, 2),
            ("lock", "api_guard.rl.p.lock", 0, 1),
            ("per_hour", "api_guard.rl.p.per_second+per_hour", 1, 2),
            ("early_b", "api_guard.rl.p.early_a+early_b", 1, 2),
            // Another key runs between per_hour and per_day: separate entries, so that a
            // refusal by per_network never counts against per_day (which runs after it).
            ("per_network", "api_guard.rl.p.per_network", 0, 1),
            ("per_day", "api_guard.rl.p.per_day", 0, 1),
            // Another table size: its own table.
            ("small", "api_guard.rl.p.small", 0, 1),
        ]
    );
}

#[test]
fn two_limits_on_one_key_cost_one_read_and_one_write() {
    let policy = serde_json::json!({
        "api_key": {},
        "rate_limits": [
            {"name": "per_second", "rate": 1000, "per": "second", "key": "client"},
            {"name": "per_hour", "rate": 100000, "per": "hour", "key": "client"}
        ]
    });
    let shared = guard(policy.clone());
    let separate = unshared(guard(policy));
    let r = req(Some("demo-key-123"), "10.0.0.1", &[]);
    let mut costs = Vec::new();
    for g in [&shared, &separate] {
        let store = MemoryStore::new();
        assert_eq!(admitted(g, &store, &r, 1, NOW), 1);
        let before = store.calls();
        assert_eq!(admitted(g, &store, &r, 10, NOW), 10);
        let after = store.calls();
        costs.push(((after.0 - before.0) / 10, (after.1 - before.1) / 10));
    }
    // (gets, sets) per request of a known key: one entry against two.
    assert_eq!(costs, [(1, 1), (2, 2)]);
}

#[test]
fn limits_sharing_an_entry_run_in_order_as_separate_limits_do() {
    // per_second admits 2 at once, per_minute 3 a minute: a request per_minute refuses has
    // already counted against per_second (listed before it), as with separate entries.
    let g = guard(serde_json::json!({
        "api_key": {},
        "rate_limits": [
            {"name": "per_second", "rate": 1, "per": "second", "burst": 2, "key": "client"},
            {"name": "shadow", "rate": 1, "per": "day", "burst": 1, "key": "client", "mode": "shadow"},
            {"name": "per_minute", "rate": 3, "per": "minute", "key": "client"}
        ]
    }));
    assert_eq!(g.policies[0].rate_limits[2].lane, 2);
    let store = MemoryStore::new();
    let r = req(Some("demo-key-123"), "10.0.0.1", &[]);
    let mut events = Vec::new();
    let at = |t: u64, events: &mut Vec<(usize, Event)>| run(&g, &store, &r, t, events).verdict;
    assert!(matches!(at(NOW, &mut events), Verdict::Allow(_)));
    assert!(matches!(at(NOW, &mut events), Verdict::Allow(_)));
    assert_eq!(
        events,
        [
            (0, Event::Allowed),
            (1, Event::Allowed),
            (2, Event::Allowed),
            (0, Event::Allowed),
            (1, Event::ShadowLimited),
            (2, Event::Allowed)
        ]
    );
    events.clear();
    // per_second refuses: neither the shadow limit nor per_minute is consulted.
    match at(NOW, &mut events) {
        Verdict::Deny(Rejection::RateLimited(l)) => {
            assert_eq!((l.limit, l.retry_after_secs), ("per_second", 1))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(events, [(0, Event::Limited)]);
    events.clear();
    // A second later per_second admits one more, per_minute its third.
    assert!(matches!(at(NOW + S, &mut events), Verdict::Allow(_)));
    events.clear();
    // Two seconds later per_second admits, per_minute refuses: per_second has counted it.
    match at(NOW + 3 * S, &mut events) {
        Verdict::Deny(Rejection::RateLimited(l)) => {
            assert_eq!(
                (l.limit, l.quota, l.retry_after_secs),
                ("per_minute", 3, 17)
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        events,
        [
            (0, Event::Allowed),
            (1, Event::ShadowLimited),
            (2, Event::Limited)
        ]
    );
    // per_second counted that request: its tat moved from NOW + 3s (full) to NOW + 4s.
    let tats = g.policies[0].rate_limits[0]
        .table
        .peek(&store, key_of(&g, &r))
        .unwrap();
    assert_eq!(tats[0], NOW + 4 * S);
}

/// The view the host would build for `r` on a route of policy `p`.
fn view_of(r: &Req) -> RequestView<'static> {
    RequestView {
        headers: crate::request::leaked_headers(&r.headers),
        // As the host reads it: Envoy's `source.address` through the one parser.
        client_ip: crate::cidr::parse_socket_ip(r.ip),
        route_policy: Some("p"),
        route_name: None,
        virtual_host: None,
    }
}

/// The key hash of `r` for the policy's first limit (a client key here).
fn key_of(g: &Guard, r: &Req) -> u64 {
    let view = view_of(r);
    let admission = crate::verdict::Admission {
        identity: Some(("acme", "a1")),
        ..Default::default()
    };
    key_hash(&g.policies[0].rate_limits[0].key, &view, &admission).unwrap()
}

#[test]
fn lockouts_on_one_key_share_an_entry() {
    let g = guard(serde_json::json!({
        "api_key": {},
        "rate_limits": [
            {"name": "fast", "rate": 2, "per": "minute", "key": "ip", "counts": "failed_auth"},
            {"name": "slow", "rate": 3, "per": "hour", "key": "ip", "counts": "failed_auth"}
        ]
    }));
    assert_eq!(
        g.policies[0].rate_limits[1].table.prefix,
        "api_guard.rl.p.fast+slow"
    );
    let store = MemoryStore::new();
    let wrong =
        |t: u64| summary(&decide_all(&g, &store, &req(Some("wrong"), "10.0.0.9", &[]), t).0);
    assert_eq!(wrong(NOW), "api_key_unknown");
    // A lockout check is one read for both lockouts.
    let before = store.calls();
    assert_eq!(wrong(NOW), "api_key_unknown");
    let after = store.calls();
    // One read (check) + one read and one write (count the failure).
    assert_eq!((after.0 - before.0, after.1 - before.1), (2, 1));
    assert_eq!(wrong(NOW), "429 fast");
    // 30 s later fast has one more guess; slow (3 an hour) counted all 2 and has 1 left.
    assert_eq!(wrong(NOW + 30 * S), "api_key_unknown");
    assert_eq!(wrong(NOW + 60 * S), "429 slow");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// The model: one entry holding several limits decides every request exactly as the same
    /// limits in entries of their own (verdicts, retry-after and every metric event), over
    /// random limits (rates, bursts, shadow mode, keys by address or policy, pre-authentication
    /// or not), clients and clock steps, with concurrent writers forcing re-reads.
    #[test]
    fn a_shared_entry_decides_exactly_as_separate_entries(
        limits in proptest::collection::vec(
            (1u64..5, 1u64..4, 1u64..5, proptest::prelude::any::<bool>(), 0u8..4,
             proptest::prelude::any::<bool>()), 1..6),
        arrivals in proptest::collection::vec((0usize..3, 0u64..3_000_000_000), 1..120),
        interference in proptest::collection::vec(0u32..3, 1..20),
    ) {
        let specs: Vec<serde_json::Value> = limits
            .iter()
            .enumerate()
            .map(|(i, (rate, per, burst, shadow, key, early))| {
                let key = if *key == 0 { serde_json::json!("policy") } else { serde_json::json!("ip") };
                let mut l = serde_json::json!({"name": format!("l{i}"), "rate": rate, "per": per,
                    "burst": burst, "key": key, "mode": if *shadow { "shadow" } else { "enforce" },
                    "counts": if *early { "requests" } else { "admitted" }});
                if key == "ip" {
                    l["max_keys"] = serde_json::json!(64);
                }
                l
            })
            .collect();
        let shared = guard(serde_json::json!({"rate_limits": specs}));
        let separate = unshared(guard(serde_json::json!({"rate_limits": specs})));
        let (a, b) = (MemoryStore::new(), MemoryStore::new());
        let ips = ["10.0.0.1", "10.0.0.2", "192.0.2.7"];
        let mut now = NOW;
        for (i, (client, gap)) in arrivals.iter().enumerate() {
            now += gap;
            if i % 5 == 0 {
                let n = interference[(i / 5) % interference.len()];
                a.interfere_with_next_writes(n);
                b.interfere_with_next_writes(n);
            }
            let r = req(None, ips[*client], &[]);
            let (mut ea, mut eb) = (Vec::new(), Vec::new());
            let va = run(&shared, &a, &r, now, &mut ea).verdict;
            let vb = run(&separate, &b, &r, now, &mut eb).verdict;
            proptest::prop_assert_eq!(&va, &vb, "request {}", i);
            // Re-reads are per entry: compare every other event exactly.
            ea.retain(|e| e.1 != Event::CasRetries);
            eb.retain(|e| e.1 != Event::CasRetries);
            proptest::prop_assert_eq!(&ea, &eb, "request {}", i);
        }
    }

    /// A clock that steps backwards: each limit of a shared entry still never admits more than
    /// its burst plus the refill of the latest time seen.
    #[test]
    fn a_shared_entry_is_safe_when_the_clock_steps_back(
        bursts in (1u64..5, 1u64..5),
        times in proptest::collection::vec(0u64..(20 * S), 1..150),
    ) {
        let g = guard(serde_json::json!({"rate_limits": [
            {"name": "a", "rate": 1, "per": "second", "burst": bursts.0, "key": "policy", "mode": "shadow"},
            {"name": "b", "rate": 1, "per": 4, "burst": bursts.1, "key": "policy", "mode": "shadow"}
        ]}));
        let store = MemoryStore::new();
        let r = req(None, "10.0.0.1", &[]);
        let mut admitted = [0u64; 2];
        let mut max_seen = NOW;
        for t in times {
            let now = NOW + t;
            max_seen = max_seen.max(now);
            let mut events = Vec::new();
            run(&g, &store, &r, now, &mut events);
            for (lane, event) in events {
                if event == Event::Allowed {
                    admitted[lane] += 1;
                }
            }
            proptest::prop_assert!(admitted[0] <= bursts.0 + (max_seen - NOW) / S);
            proptest::prop_assert!(admitted[1] <= bursts.1 + (max_seen - NOW) / (4 * S));
        }
    }
}
