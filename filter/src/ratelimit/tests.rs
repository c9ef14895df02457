//! Policy-level rate limiting through the compiled configuration: keys, several limits,
//! shadow mode, store failures.

use super::store::MemoryStore;
use super::*;
use crate::config::compile;
use crate::pipeline::decide;
use crate::policy::Guard;
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
    let view = RequestView {
        headers: &r.headers,
        // As the host reads it: Envoy's `source.address` through the one parser.
        client_ip: crate::cidr::parse_socket_ip(r.ip),
        route_policy: Some("p"),
        route_name: None,
        virtual_host: None,
    };
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
        let headers = Vec::new();
        let key = |source: &str| {
            let view = RequestView {
                headers: &headers,
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
