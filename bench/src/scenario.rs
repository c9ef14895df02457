//! The rows of `make bench`: which bootstrap, listener, request and credential each one sends,
//! what it is compared with (no filter, the native filters, the do-nothing floor), and the access
//! checks every row passes before it is measured. See the `bench` binary for the whole design.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use integration_tests::config::AUTH_CLUSTER;
use integration_tests::{AuthServer, EnvoyConfig};

pub const PATH: &str = "/bench";
pub const API_KEY: (&str, &str) = ("x-api-key", "demo-key-123");

/// The scenarios the ratio columns compare against.
pub const NO_FILTER: &str = "none";
/// No filter, POSTing [`ORDER_JSON`]: the baseline of every row that sends a body.
pub const NO_FILTER_POST: &str = "post-none";
pub const NATIVE: &str = "native";
pub const NATIVE_RATE_LIMIT: &str = "native-rl";
/// api-guard's IP + API-key check (api-guard.yaml): the reference of the introspection rows.
pub const API_GUARD_KEY: &str = "api-guard";

/// The do-nothing wasm module (issue 18): listener `http` does nothing, `http-body` holds,
/// buffers and reads the body.
pub const FLOOR_CONFIG: &str = "envoy/bench/floor.yaml";
/// Where `make floor-wasm` puts the trimmed floor module (relative to the root, as in
/// [`FLOOR_CONFIG`]).
pub const FLOOR_MODULE: &str = "target/bench/floor.wasm";
/// The floor of GET rows.
pub const FLOOR: &str = "floor";
/// The floor of POST rows that do not read the body.
pub const FLOOR_POST: &str = "post-floor";
/// The floor of rows that check the body: holds, buffers and reads it.
pub const FLOOR_BODY: &str = "post-floor-body";
/// The floor plus only the host calls an IP + API key gate cannot avoid (issue 19).
pub const FLOOR_MIN: &str = "floor-min";
/// The floor plus api-guard's host calls on the IP + API key row, without its logic.
pub const FLOOR_CALLS: &str = "floor-calls";

/// The JWS fixture (keys and tokens minted by PyJWT, `tools/jwt-fixtures/mint_jws.py`); the JWT
/// bench configs carry its public JWKS.
pub const JWS_FIXTURE: &str = include_str!("../../filter/src/jwt/testdata/jws.json");
pub const NATIVE_JWT_CONFIG: &str = "envoy/bench/native-jwt.yaml";
/// The listener of [`NATIVE_JWT_CONFIG`] whose jwt_authn has `jwt_cache_config`.
pub const NATIVE_JWT_CACHED_LISTENER: &str = "http-cached";
pub const API_GUARD_JWT_CONFIG: &str = "envoy/bench/api-guard-jwt.yaml";
pub const API_GUARD_JWT_NOCACHE_CONFIG: &str = "envoy/bench/api-guard-jwt-nocache.yaml";
/// (row label, id suffix, fixture token): one valid token per algorithm family.
pub const JWT_ALGORITHMS: [(&str, &str, &str); 4] = [
    ("RS256", "rs256", "valid_rs256"),
    ("ES256", "es256", "valid_es256"),
    ("EdDSA", "eddsa", "valid_eddsa"),
    ("HS256", "hs256", "valid_hs256"),
];

/// Payload checks (issue 5): one Envoy, one policy per route (`/plain`, `/schema`,
/// `/screening`, `/both`).
pub const API_GUARD_PAYLOAD_CONFIG: &str = "envoy/bench/api-guard-payload.yaml";
/// Introspection (issue 6): IP + RFC 7662 introspection through cluster `auth`.
pub const API_GUARD_INTROSPECTION_CONFIG: &str = "envoy/bench/api-guard-introspection.yaml";
/// The whole gate (issue 7): `/jwt` and `/key`, every check at once.
pub const API_GUARD_FULL_CONFIG: &str = "envoy/bench/api-guard-full.yaml";
/// Envoy's native chain doing what it can of [`API_GUARD_FULL_CONFIG`]: `http` (JWT) and
/// `http-key` (API key).
pub const NATIVE_FULL_CONFIG: &str = "envoy/bench/native-full.yaml";
/// The path of the introspection endpoint the bench's auth server answers.
pub const INTROSPECT_PATH: &str = "/introspect";
/// Issue 14: the abuse defences under a flood, and the same policy without them.
pub const API_GUARD_DOS_CONFIG: &str = "envoy/bench/api-guard-dos.yaml";
pub const API_GUARD_DOS_UNDEFENDED_CONFIG: &str = "envoy/bench/api-guard-dos-undefended.yaml";
/// The legitimate client's and the attacker's addresses (X-Forwarded-For, trusted by the DoS
/// bootstraps only).
pub const LEGIT_ADDRESS: &str = "10.0.0.1";
pub const FLOOD_ADDRESS: &str = "10.0.0.2";
/// The flood's pace: 8 connections each waiting 3 ms between requests, at most about 2,600
/// requests/s (the issue measured a flood of ~2,400 forged tokens/s): an open-ended flood on
/// as many connections as the legitimate client would take half of any server by fair sharing
/// alone, whatever each refusal costs.
pub const FLOOD_CONNECTIONS: u32 = 8;
pub const FLOOD_DELAY_MS: u32 = 3;

/// The ~1 KiB JSON order every payload and full-policy row POSTs; it satisfies the order schema
/// of [`API_GUARD_PAYLOAD_CONFIG`] and [`API_GUARD_FULL_CONFIG`] and carries ordinary prose (an
/// apostrophe, "select", "drop") that screening must let through.
pub const ORDER_JSON: &str = concat!(
    r#"{"order_id":"3f6c2a9e-8b1d-4c7a-9e2f-5a4b3c2d1e0f","created":"2026-03-14T09:26:53Z","#,
    r#""customer":{"name":"Siobhan O'Brien","email":"siobhan.obrien@example.com","tier":"gold"},"#,
    r#""shipping":{"street":"12 Harbour View Road","city":"Cork","postcode":"T12 X2Y4","country":"IE"},"#,
    r#""items":[{"sku":"BK-1042","title":"The Pragmatic Programmer","quantity":1,"unit_price":39.5},"#,
    r#"{"sku":"MG-2210","title":"Ceramic mug, 350 ml","quantity":2,"unit_price":12.0},"#,
    r#"{"sku":"NB-0007","title":"Dotted notebook (A5)","quantity":3,"unit_price":8.25},"#,
    r#"{"sku":"PN-3301","title":"Fountain pen, fine nib","quantity":1,"unit_price":24.9},"#,
    r#"{"sku":"IK-0420","title":"Ink cartridges, blue-black (pack of 6)","quantity":2,"unit_price":4.75},"#,
    r#"{"sku":"BM-0099","title":"Leather bookmark","quantity":1,"unit_price":6.5}],"#,
    r#""gift":false,"tags":["books","stationery","spring-sale"],"#,
    r#""note":"Please leave the parcel with the neighbour at number 14 if nobody is home; "#,
    r#"we will select a delivery slot and drop you a line. Thanks!"}"#
);

/// [`ORDER_JSON`] with a schema violation (quantity 0 is below the minimum): 400 where the
/// schema is checked.
pub fn order_invalid() -> String {
    ORDER_JSON.replacen(r#""quantity":2"#, r#""quantity":0"#, 1)
}

/// [`ORDER_JSON`], valid against the schema, with an SQL injection in the note: 403 where
/// screening is on.
pub fn order_injection() -> String {
    ORDER_JSON.replacen("Thanks!", "x' UNION SELECT password FROM users--", 1)
}

/// A request the scenario must refuse even with its credential, with this status.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub what: &'static str,
    pub body: String,
    pub status: u16,
}

/// One row of the table.
#[derive(Clone)]
pub struct Scenario {
    /// Short stable id (the ratio columns refer to ids).
    pub id: String,
    pub name: String,
    /// Bootstrap, relative to the repository root. Scenarios with the same bootstrap share one
    /// Envoy.
    pub config: &'static str,
    /// The listener wrk drives.
    pub listener: &'static str,
    /// The request path (route metadata picks the api-guard policy in shared bootstraps).
    pub path: &'static str,
    /// Sent with every request (the credential).
    pub headers: Vec<(&'static str, String)>,
    /// POSTed as `application/json` with every request (GET without).
    pub body: Option<String>,
    /// Every wrk request carries a token never seen before (`Authorization: Bearer t<run>-<n>`)
    /// instead of the `authorization` of `headers` (used only by the access checks).
    pub distinct_tokens: bool,
    /// Without `headers`, the scenario must refuse with this status (an access-control sanity
    /// check: a benchmark of a filter that lets everything through is meaningless).
    pub status_without_headers: u16,
    /// Bodies refused even with the credential (payload rows: the checks really run).
    pub refusals: Vec<Refusal>,
    /// Needs the api-guard module (`make wasm`).
    pub needs_wasm: bool,
    /// Another api-guard module to load instead of the built one (`BENCH_BEFORE_WASM`).
    pub module: Option<PathBuf>,
    /// The no-filter row sending the same kind of request, for the "vs no filter" column.
    pub baseline: String,
    /// The row doing the job this one is compared with, for the "vs ref" column.
    pub reference: String,
    /// The floor row (the do-nothing module in the same request shape) this row's cost is
    /// measured over; api-guard rows and the body floor have one.
    pub floor: Option<String>,
    /// Another wrk floods the same listener from [`FLOOD_ADDRESS`] while this row is measured.
    pub flood: Option<Flood>,
}

/// What a flood sends (every request distinct, so no cache helps the gate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flood {
    /// ES256 tokens with the fixture's header and payload and a random signature.
    ForgedEs256,
    /// Random API keys.
    RandomKeys,
}

impl Scenario {
    /// A GET of [`PATH`] on listener `http`, refused with 401 without the headers, compared with
    /// no filter and with itself.
    pub fn new(id: &str, name: &str, config: &'static str) -> Scenario {
        Scenario {
            id: id.to_string(),
            name: name.to_string(),
            config,
            listener: "http",
            path: PATH,
            headers: Vec::new(),
            body: None,
            distinct_tokens: false,
            status_without_headers: 401,
            refusals: Vec::new(),
            needs_wasm: config.starts_with("envoy/bench/api-guard"),
            module: None,
            baseline: NO_FILTER.to_string(),
            reference: id.to_string(),
            floor: config
                .starts_with("envoy/bench/api-guard")
                .then(|| FLOOR.to_string()),
            flood: None,
        }
    }

    pub fn flood(mut self, flood: Flood) -> Self {
        self.flood = Some(flood);
        self
    }

    pub fn headers(mut self, headers: Vec<(&'static str, String)>) -> Self {
        self.headers = headers;
        self
    }

    pub fn listener(mut self, listener: &'static str) -> Self {
        self.listener = listener;
        self
    }

    pub fn path(mut self, path: &'static str) -> Self {
        self.path = path;
        self
    }

    /// POSTs [`ORDER_JSON`]; compared with no filter POSTing it, and (api-guard rows) with the
    /// floor POSTing it.
    pub fn post_order(mut self) -> Self {
        self.body = Some(ORDER_JSON.to_string());
        self.baseline = NO_FILTER_POST.to_string();
        if self.floor.as_deref() == Some(FLOOR) {
            self.floor = Some(FLOOR_POST.to_string());
        }
        self
    }

    /// Measured over this floor row instead (rows that check the body: [`FLOOR_BODY`]).
    pub fn floor(mut self, id: &str) -> Self {
        self.floor = Some(id.to_string());
        self
    }

    pub fn refuses(mut self, refusals: Vec<Refusal>) -> Self {
        self.refusals = refusals;
        self
    }

    pub fn without_headers(mut self, status: u16) -> Self {
        self.status_without_headers = status;
        self
    }

    /// A twin row of a `probe-*` module: a build that stops after some stage of the request
    /// path (reading headers, reading route metadata and address, deciding) to price that
    /// stage inside Envoy; such a module enforces nothing, so its row skips the access checks.
    pub fn is_probe(&self) -> bool {
        self.module
            .as_ref()
            .and_then(|m| m.file_stem())
            .is_some_and(|s| s.to_string_lossy().starts_with("probe-"))
    }

    pub fn reference(mut self, id: &str) -> Self {
        self.reference = id.to_string();
        self
    }
}

pub fn scenarios() -> Result<Vec<Scenario>, String> {
    let api_key = || vec![(API_KEY.0, API_KEY.1.to_string())];
    let schema_refusal = || Refusal {
        what: "a body violating the schema",
        body: order_invalid(),
        status: 400,
    };
    let screening_refusal = || Refusal {
        what: "a body with an SQL injection",
        body: order_injection(),
        status: 403,
    };
    let mut all = vec![
        Scenario::new(NO_FILTER, "no filter", "envoy/bench/none.yaml")
            .headers(api_key())
            .without_headers(200)
            .reference(NATIVE),
        Scenario::new(
            FLOOR,
            "floor: do-nothing wasm module (api-guard's callbacks)",
            FLOOR_CONFIG,
        )
        .headers(api_key())
        .without_headers(200)
        .reference(NATIVE),
        // Issue 19: the floor module making host calls and nothing else, to price them.
        Scenario::new(
            FLOOR_MIN,
            "floor + the host calls an ip + api key gate cannot avoid (headers, address, 1 header set)",
            FLOOR_CONFIG,
        )
        .listener("http-min")
        .headers(api_key())
        .without_headers(200)
        .reference(NATIVE)
        .floor(FLOOR),
        Scenario::new(
            FLOOR_CALLS,
            "floor + api-guard's host calls on the ip + api key row (+ route metadata, clock, record, counter)",
            FLOOR_CONFIG,
        )
        .listener("http-calls")
        .headers(api_key())
        .without_headers(200)
        .reference(NATIVE)
        .floor(FLOOR),
        Scenario::new(
            NATIVE,
            "native (rbac + api_key_auth)",
            "envoy/bench/native.yaml",
        )
        .headers(api_key()),
        Scenario::new(
            API_GUARD_KEY,
            "api-guard (ip + api key)",
            "envoy/bench/api-guard.yaml",
        )
        .headers(api_key())
        .reference(NATIVE),
        Scenario::new(
            NATIVE_RATE_LIMIT,
            "native (rbac + api_key_auth + local_ratelimit)",
            "envoy/bench/native-ratelimit.yaml",
        )
        .headers(api_key()),
        Scenario::new(
            "api-guard-rl1",
            "api-guard (ip + api key + 1 limit by client)",
            "envoy/bench/api-guard-ratelimit-1.yaml",
        )
        .headers(api_key())
        .reference(NATIVE_RATE_LIMIT),
        Scenario::new(
            "api-guard-rl3",
            "api-guard (ip + api key + 3 limits)",
            "envoy/bench/api-guard-ratelimit-3.yaml",
        )
        .headers(api_key())
        .reference(NATIVE_RATE_LIMIT),
    ];
    for (alg, suffix, token_name) in JWT_ALGORITHMS {
        let bearer = vec![(
            "authorization",
            format!("Bearer {}", fixture_token(token_name)?),
        )];
        let native = format!("native-jwt-{suffix}");
        let native_cached = format!("native-jwt-cached-{suffix}");
        all.extend([
            Scenario::new(
                &native,
                &format!("native jwt_authn {alg}, no cache"),
                NATIVE_JWT_CONFIG,
            )
            .headers(bearer.clone()),
            Scenario::new(
                &native_cached,
                &format!("native jwt_authn {alg}, jwt_cache_config"),
                NATIVE_JWT_CONFIG,
            )
            .listener(NATIVE_JWT_CACHED_LISTENER)
            .headers(bearer.clone()),
            Scenario::new(
                &format!("api-guard-jwt-cold-{suffix}"),
                &format!("api-guard JWT {alg}, cache off (cold)"),
                API_GUARD_JWT_NOCACHE_CONFIG,
            )
            .headers(bearer.clone())
            .reference(&native),
            Scenario::new(
                &format!("api-guard-jwt-warm-{suffix}"),
                &format!("api-guard JWT {alg}, cache on (warm)"),
                API_GUARD_JWT_CONFIG,
            )
            .headers(bearer.clone())
            .reference(&native_cached),
        ]);
    }

    // Issue 14: legitimate traffic (a valid ES256 token, cached after its first request) under a
    // flood from another address, with the shipped defences and without them; "vs ref" is the
    // throughput kept, against the same row without a flood.
    let legit = vec![
        (
            "authorization",
            format!("Bearer {}", fixture_token("valid_es256")?),
        ),
        ("x-forwarded-for", LEGIT_ADDRESS.to_string()),
    ];
    for (config, suffix, label) in [
        (API_GUARD_DOS_CONFIG, "", "defended"),
        (
            API_GUARD_DOS_UNDEFENDED_CONFIG,
            "-undefended",
            "no defences",
        ),
    ] {
        let alone = format!("dos-alone{suffix}");
        all.push(
            Scenario::new(
                &alone,
                &format!("DoS: legitimate JWT alone ({label})"),
                config,
            )
            .headers(legit.clone()),
        );
        for (flood, what) in [
            (Flood::ForgedEs256, "forged ES256"),
            (Flood::RandomKeys, "random API keys"),
        ] {
            let id = match flood {
                Flood::ForgedEs256 => format!("dos-forged-es256{suffix}"),
                Flood::RandomKeys => format!("dos-random-keys{suffix}"),
            };
            all.push(
                Scenario::new(
                    &id,
                    &format!("DoS: legitimate JWT under a {what} flood ({label})"),
                    config,
                )
                .headers(legit.clone())
                .flood(flood)
                .reference(&alone),
            );
        }
    }

    // Issue 5: what the payload checks cost, all POSTing the same ~1 KiB JSON order.
    let plain = "post-api-guard-plain";
    all.extend([
        Scenario::new(
            NO_FILTER_POST,
            "no filter, POST 1 KiB JSON",
            "envoy/bench/none.yaml",
        )
        .post_order()
        .headers(api_key())
        .without_headers(200)
        .reference(plain),
        Scenario::new(
            FLOOR_POST,
            "floor: do-nothing wasm module, POST 1 KiB JSON",
            FLOOR_CONFIG,
        )
        .post_order()
        .headers(api_key())
        .without_headers(200)
        .reference(plain),
        Scenario::new(
            FLOOR_BODY,
            "floor: wasm module holding, buffering and reading the body, POST 1 KiB JSON",
            FLOOR_CONFIG,
        )
        .listener("http-body")
        .post_order()
        .headers(api_key())
        .without_headers(200)
        .reference(plain)
        .floor(FLOOR_POST),
        Scenario::new(
            plain,
            "api-guard (ip + api key), POST 1 KiB JSON, payload checks off",
            API_GUARD_PAYLOAD_CONFIG,
        )
        .path("/plain")
        .post_order()
        .headers(api_key()),
        Scenario::new(
            "post-api-guard-schema",
            "api-guard (ip + api key), POST 1 KiB JSON, + JSON schema",
            API_GUARD_PAYLOAD_CONFIG,
        )
        .path("/schema")
        .post_order()
        .headers(api_key())
        .refuses(vec![schema_refusal()])
        .floor(FLOOR_BODY)
        .reference(plain),
        Scenario::new(
            "post-api-guard-screening",
            "api-guard (ip + api key), POST 1 KiB JSON, + injection screening",
            API_GUARD_PAYLOAD_CONFIG,
        )
        .path("/screening")
        .post_order()
        .headers(api_key())
        .refuses(vec![screening_refusal()])
        .floor(FLOOR_BODY)
        .reference(plain),
        Scenario::new(
            "post-api-guard-both",
            "api-guard (ip + api key), POST 1 KiB JSON, + schema + screening",
            API_GUARD_PAYLOAD_CONFIG,
        )
        .path("/both")
        .post_order()
        .headers(api_key())
        .refuses(vec![schema_refusal(), screening_refusal()])
        .floor(FLOOR_BODY)
        .reference(plain),
    ]);

    // Issue 6: introspection through the bench's auth service, cached and not.
    let cached = "api-guard-introspect-cached";
    all.extend([
        Scenario::new(
            cached,
            "api-guard (ip + introspection), one token (cached)",
            API_GUARD_INTROSPECTION_CONFIG,
        )
        .headers(vec![("authorization", "Bearer bench-token".to_string())])
        .reference(API_GUARD_KEY),
        Scenario {
            distinct_tokens: true,
            ..Scenario::new(
                "api-guard-introspect-uncached",
                "api-guard (ip + introspection), a new token per request (uncached)",
                API_GUARD_INTROSPECTION_CONFIG,
            )
            .headers(vec![("authorization", "Bearer check-token".to_string())])
            .reference(cached)
        },
    ]);

    // Issue 7: the whole gate against no filter and Envoy's native chain.
    let es256 = vec![(
        "authorization",
        format!("Bearer {}", fixture_token("valid_es256")?),
    )];
    let refusals = || vec![schema_refusal(), screening_refusal()];
    all.extend([
        Scenario::new(
            "full-native-jwt",
            "native (rbac + jwt_authn ES256 cached + 2 local_ratelimit), POST 1 KiB JSON",
            NATIVE_FULL_CONFIG,
        )
        .post_order()
        .headers(es256.clone()),
        Scenario::new(
            "full-api-guard-jwt",
            "api-guard full (ip + JWT ES256 warm + 2 limits + schema + screening), POST 1 KiB JSON",
            API_GUARD_FULL_CONFIG,
        )
        .path("/jwt")
        .post_order()
        .headers(es256)
        .refuses(refusals())
        .floor(FLOOR_BODY)
        .reference("full-native-jwt"),
        Scenario::new(
            "full-native-key",
            "native (rbac + api_key_auth + 2 local_ratelimit), POST 1 KiB JSON",
            NATIVE_FULL_CONFIG,
        )
        .listener("http-key")
        .post_order()
        .headers(api_key()),
        Scenario::new(
            "full-api-guard-key",
            "api-guard full (ip + api key + 2 limits + schema + screening), POST 1 KiB JSON",
            API_GUARD_FULL_CONFIG,
        )
        .path("/key")
        .post_order()
        .headers(api_key())
        .refuses(refusals())
        .floor(FLOOR_BODY)
        .reference("full-native-key"),
    ]);
    Ok(all)
}

/// A token of the JWS fixture, by name.
pub fn fixture_token(name: &str) -> Result<String, String> {
    let fixture: serde_json::Value = serde_json::from_str(JWS_FIXTURE)
        .map_err(|e| format!("filter/src/jwt/testdata/jws.json is not JSON: {e}"))?;
    fixture["tokens"][name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("filter/src/jwt/testdata/jws.json has no token {name:?}"))
}

/// `BENCH_ONLY`: the scenarios whose id contains one of the comma-separated words, or equals a
/// word written `=id` (all if unset or empty).
pub fn select(scenarios: Vec<Scenario>, only: Option<&str>) -> Result<Vec<Scenario>, String> {
    let words: Vec<&str> = only
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Ok(scenarios);
    }
    let matches = |id: &str, word: &str| match word.strip_prefix('=') {
        Some(exact) => id == exact,
        None => id.contains(word),
    };
    let ids: Vec<String> = scenarios.iter().map(|s| s.id.clone()).collect();
    let selected: Vec<Scenario> = scenarios
        .into_iter()
        .filter(|s| words.iter().any(|w| matches(&s.id, w)))
        .collect();
    if selected.is_empty() {
        return Err(format!(
            "BENCH_ONLY={:?} matches no scenario; ids: {}",
            only.unwrap_or(""),
            ids.join(", ")
        ));
    }
    Ok(selected)
}

/// `BENCH_BEFORE_WASM=<module>[,<module>...]`: every api-guard row runs again with each module
/// (earlier builds, or builds that stop early to price a stage), in the same interleaved rounds,
/// so an optimisation is measured against the code it replaces under the same conditions. A
/// twin row is labelled with its module's file stem.
pub fn with_before_twins(
    scenarios: Vec<Scenario>,
    modules: &[PathBuf],
) -> Result<Vec<Scenario>, String> {
    let modules: Vec<(PathBuf, String)> = modules
        .iter()
        .map(|m| {
            let path = m
                .canonicalize()
                .map_err(|e| format!("BENCH_BEFORE_WASM: {}: {e}", m.display()))?;
            let stem = path
                .file_stem()
                .map_or("before".into(), |s| s.to_string_lossy().into_owned());
            Ok((path, stem))
        })
        .collect::<Result<_, String>>()?;
    let mut out = Vec::with_capacity(scenarios.len() * (modules.len() + 1));
    for s in scenarios {
        let twins: Vec<Scenario> = if s.needs_wasm {
            modules
                .iter()
                .map(|(path, stem)| {
                    let mut twin = s.clone();
                    twin.id = format!("{}@{stem}", s.id);
                    twin.name = format!("{} [{stem}]", s.name);
                    twin.module = Some(path.clone());
                    twin.reference = s.id.clone();
                    twin
                })
                .collect()
        } else {
            Vec::new()
        };
        out.push(s);
        out.extend(twins);
    }
    Ok(out)
}

/// Whether a bootstrap has the `auth` cluster (the introspection service).
pub fn uses_auth_service(config: &EnvoyConfig) -> bool {
    config.yaml()["static_resources"]["clusters"]
        .as_sequence()
        .into_iter()
        .flatten()
        .any(|c| c["name"].as_str() == Some(AUTH_CLUSTER))
}

/// The bench's introspection service: every token is active with scope `read` (RFC 7662).
pub fn start_auth_service() -> Result<AuthServer, String> {
    let auth = AuthServer::try_start().map_err(|e| format!("auth server: {e}"))?;
    auth.set_handler(INTROSPECT_PATH, |r| {
        let body = String::from_utf8_lossy(&r.body);
        let has_token = body
            .split('&')
            .any(|kv| kv.strip_prefix("token=").is_some_and(|t| !t.is_empty()));
        let answer = if has_token {
            serde_json::json!({"active": true, "scope": "read", "sub": "bench"})
        } else {
            serde_json::json!({"active": false})
        };
        (
            200,
            "application/json".to_string(),
            answer.to_string().into_bytes(),
        )
    });
    Ok(auth)
}

/// With its headers the scenario answers 200; without them, the expected refusal; with them
/// and a refused body, that body's status.
pub fn check_access_control(scenario: &Scenario, port: u16) -> Result<(), String> {
    let body = scenario.body.as_deref();
    let (status, text) = request(port, scenario.path, &scenario.headers, body)?;
    if status != 200 {
        return Err(format!(
            "{}: expected 200 with the credential, got {status}: {text}",
            scenario.name
        ));
    }
    let (status, text) = request(port, scenario.path, &[], body)?;
    if status != scenario.status_without_headers {
        return Err(format!(
            "{}: expected {} without the credential, got {status}: {text}",
            scenario.name, scenario.status_without_headers
        ));
    }
    for refusal in &scenario.refusals {
        let (status, text) = request(port, scenario.path, &scenario.headers, Some(&refusal.body))?;
        if status != refusal.status {
            return Err(format!(
                "{}: expected {} for {}, got {status}: {text}",
                scenario.name, refusal.status, refusal.what
            ));
        }
    }
    Ok(())
}

/// `GET path`, or `POST path` with a JSON body, on a loopback port over HTTP/1.1 (any listener,
/// not only `http`): status and the whole response as text.
pub fn request(
    port: u16,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let method = if body.is_some() { "POST" } else { "GET" };
    let fail = |e: std::io::Error| format!("{method} 127.0.0.1:{port}{path}: {e}");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(fail)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(fail)?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    if let Some(body) = body {
        let _ = write!(
            request,
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or(""));
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(fail)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            format!("{method} 127.0.0.1:{port}{path}: not an HTTP/1.1 response: {text}")
        })?;
    Ok((status, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{median_cpu, micros_over};
    use crate::wrk::{process_cpu_time, wrk_script, Run};

    #[test]
    fn before_twins_follow_each_api_guard_row_and_only_probes_skip_the_checks() {
        let dir = std::env::temp_dir().join(format!("bench-twins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (earlier, probe) = (dir.join("earlier.wasm"), dir.join("probe-noop.wasm"));
        std::fs::write(&earlier, b"").unwrap();
        std::fs::write(&probe, b"").unwrap();
        let rows = select(scenarios().unwrap(), Some("=none,=api-guard")).unwrap();
        let all = with_before_twins(rows, &[earlier, probe]).unwrap();
        let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "none",
                "api-guard",
                "api-guard@earlier",
                "api-guard@probe-noop"
            ]
        );
        assert!(all.iter().skip(2).all(|t| t.reference == "api-guard"));
        let probes: Vec<bool> = all.iter().map(Scenario::is_probe).collect();
        assert_eq!(probes, [false, false, false, true]);
        assert!(with_before_twins(Vec::new(), &[dir.join("missing.wasm")]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn scenarios_point_at_existing_configs() {
        for s in scenarios().unwrap() {
            assert!(
                integration_tests::workspace_root().join(s.config).is_file(),
                "{}",
                s.config
            );
        }
    }

    #[test]
    fn scenario_ids_are_unique_and_ratio_references_exist() {
        let all = scenarios().unwrap();
        let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
        for (i, id) in ids.iter().enumerate() {
            assert!(!ids[..i].contains(id), "duplicate id {id}");
        }
        assert!(ids.contains(&NO_FILTER));
        assert!(ids.contains(&NO_FILTER_POST));
        for s in &all {
            for reference in [&s.reference, &s.baseline] {
                assert!(ids.contains(&reference.as_str()), "{}: {reference}", s.id);
            }
            // Rows compare with no filter sending the same request.
            assert_eq!(
                s.baseline,
                if s.body.is_some() {
                    NO_FILTER_POST
                } else {
                    NO_FILTER
                },
                "{}",
                s.id
            );
            // A scenario's listener must exist in its bootstrap.
            let config = EnvoyConfig::load(s.config);
            let listeners = config.yaml()["static_resources"]["listeners"]
                .as_sequence()
                .unwrap();
            assert!(
                listeners
                    .iter()
                    .any(|l| l["name"].as_str() == Some(s.listener)),
                "{}: no listener {} in {}",
                s.id,
                s.listener,
                s.config
            );
            assert_eq!(
                s.needs_wasm,
                !config.plugin_configs().is_empty(),
                "{}",
                s.id
            );
        }
    }

    #[test]
    fn jwt_rows_compare_cold_with_uncached_and_warm_with_cached_native() {
        let all = scenarios().unwrap();
        let find = |id: &str| all.iter().find(|s| s.id == id).unwrap();
        for (_, suffix, token) in JWT_ALGORITHMS {
            let bearer = format!("Bearer {}", fixture_token(token).unwrap());
            for id in [
                format!("native-jwt-{suffix}"),
                format!("native-jwt-cached-{suffix}"),
                format!("api-guard-jwt-cold-{suffix}"),
                format!("api-guard-jwt-warm-{suffix}"),
            ] {
                let s = find(&id);
                assert_eq!(s.headers, vec![("authorization", bearer.clone())], "{id}");
                assert_eq!(s.status_without_headers, 401, "{id}");
            }
            let cold = find(&format!("api-guard-jwt-cold-{suffix}"));
            assert_eq!(cold.config, API_GUARD_JWT_NOCACHE_CONFIG);
            assert_eq!(cold.reference, format!("native-jwt-{suffix}"));
            let warm = find(&format!("api-guard-jwt-warm-{suffix}"));
            assert_eq!(warm.config, API_GUARD_JWT_CONFIG);
            assert_eq!(warm.reference, format!("native-jwt-cached-{suffix}"));
        }
        assert!(fixture_token("no-such-token").is_err());
    }

    /// Every `inline_string` under a YAML tree (the jwt_authn providers' local JWKS).
    fn inline_strings(value: &serde_yaml::Value, out: &mut Vec<String>) {
        match value {
            serde_yaml::Value::Mapping(m) => {
                for (k, v) in m {
                    match (k.as_str(), v.as_str()) {
                        (Some("inline_string"), Some(text)) => out.push(text.to_string()),
                        _ => inline_strings(v, out),
                    }
                }
            }
            serde_yaml::Value::Sequence(items) => {
                items.iter().for_each(|v| inline_strings(v, out));
            }
            _ => {}
        }
    }

    #[test]
    fn jwt_configs_carry_the_fixture_keys_and_claims() {
        let fixture: serde_json::Value = serde_json::from_str(JWS_FIXTURE).unwrap();
        let jwks = &fixture["jwks"];
        assert!(!jwks["keys"].as_array().unwrap().is_empty());

        // Native: both listeners, same JWKS, issuer and audience as the fixture's tokens.
        let native = EnvoyConfig::load(NATIVE_JWT_CONFIG);
        let mut inline = Vec::new();
        inline_strings(native.yaml(), &mut inline);
        assert_eq!(inline.len(), 2, "one local JWKS per listener");
        for text in inline {
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(&doc, jwks, "{NATIVE_JWT_CONFIG} drifted from the fixture");
        }
        let text = serde_yaml::to_string(native.yaml()).unwrap();
        assert_eq!(text.matches("issuer: https://issuer.test").count(), 2);
        assert_eq!(text.matches("jwt_cache_config").count(), 1);

        // The full-policy native chain: the same JWKS on its jwt_authn.
        let full = EnvoyConfig::load(NATIVE_FULL_CONFIG);
        let mut inline = Vec::new();
        inline_strings(full.yaml(), &mut inline);
        assert_eq!(inline.len(), 1, "{NATIVE_FULL_CONFIG}");
        let doc: serde_json::Value = serde_json::from_str(&inline[0]).unwrap();
        assert_eq!(&doc, jwks, "{NATIVE_FULL_CONFIG} drifted from the fixture");

        // The full api-guard policy: the same JWKS, issuer and audience, the cache on.
        let configs = EnvoyConfig::load(API_GUARD_FULL_CONFIG).plugin_configs();
        assert_eq!(configs.len(), 1);
        let plugin: serde_json::Value = serde_json::from_str(&configs[0]).unwrap();
        let provider = &plugin["jwt_providers"]["bench"];
        assert_eq!(&provider["jwks"], jwks, "{API_GUARD_FULL_CONFIG} drifted");
        assert_eq!(provider["issuer"], fixture["issuer"]);
        assert_eq!(
            provider["audiences"],
            serde_json::json!([fixture["audience"]])
        );
        assert_eq!(
            plugin["jwt_cache"],
            serde_json::json!({"max_entries": 10000, "max_ttl_seconds": 300})
        );
        assert_eq!(
            plugin["policies"]["full-jwt"]["jwt"]["providers"],
            serde_json::json!(["bench"])
        );

        // api-guard: the same JWKS, issuer and audience; the cache on or off.
        for (path, cache) in [
            (
                API_GUARD_JWT_CONFIG,
                serde_json::json!({"max_entries": 10000, "max_ttl_seconds": 300}),
            ),
            (
                API_GUARD_JWT_NOCACHE_CONFIG,
                serde_json::json!({"max_entries": 0}),
            ),
        ] {
            let configs = EnvoyConfig::load(path).plugin_configs();
            assert_eq!(configs.len(), 1, "{path}");
            let plugin: serde_json::Value = serde_json::from_str(&configs[0]).unwrap();
            let provider = &plugin["jwt_providers"]["bench"];
            assert_eq!(&provider["jwks"], jwks, "{path} drifted from the fixture");
            assert_eq!(provider["issuer"], fixture["issuer"], "{path}");
            assert_eq!(
                provider["audiences"],
                serde_json::json!([fixture["audience"]]),
                "{path}"
            );
            assert_eq!(plugin["jwt_cache"], cache, "{path}");
            assert_eq!(
                plugin["policies"]["default"]["jwt"]["providers"],
                serde_json::json!(["bench"]),
                "{path}"
            );
        }
    }

    #[test]
    fn payload_rows_post_the_order_and_check_what_they_claim() {
        assert!(
            (900..=1100).contains(&ORDER_JSON.len()),
            "{}",
            ORDER_JSON.len()
        );
        for body in [ORDER_JSON.to_string(), order_invalid(), order_injection()] {
            serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
        assert_ne!(order_invalid(), ORDER_JSON);
        assert_ne!(order_injection(), ORDER_JSON);
        let all = scenarios().unwrap();
        let find = |id: &str| all.iter().find(|s| s.id == id).unwrap();
        let statuses =
            |id: &str| -> Vec<u16> { find(id).refusals.iter().map(|r| r.status).collect() };
        assert_eq!(statuses("post-api-guard-plain"), Vec::<u16>::new());
        assert_eq!(statuses("post-api-guard-schema"), vec![400]);
        assert_eq!(statuses("post-api-guard-screening"), vec![403]);
        assert_eq!(statuses("post-api-guard-both"), vec![400, 403]);
        assert_eq!(statuses("full-api-guard-jwt"), vec![400, 403]);
        assert_eq!(statuses("full-api-guard-key"), vec![400, 403]);
        for s in all.iter().filter(|s| s.config == API_GUARD_PAYLOAD_CONFIG) {
            assert_eq!(s.body.as_deref(), Some(ORDER_JSON), "{}", s.id);
            assert_eq!(
                s.path,
                format!("/{}", s.id.trim_start_matches("post-api-guard-"))
            );
            assert_eq!(s.reference, "post-api-guard-plain");
        }
        // Bodies are checked only where the wasm filter may hold the headers for them.
        for config in [API_GUARD_PAYLOAD_CONFIG, API_GUARD_FULL_CONFIG] {
            let text = serde_yaml::to_string(EnvoyConfig::load(config).yaml()).unwrap();
            assert!(
                text.contains("allow_on_headers_stop_iteration: true"),
                "{config}"
            );
        }
        assert_eq!(find("full-api-guard-jwt").reference, "full-native-jwt");
        assert_eq!(find("full-api-guard-key").reference, "full-native-key");
    }

    #[test]
    fn introspection_rows_use_the_auth_service() {
        let all = scenarios().unwrap();
        let introspection: Vec<&Scenario> = all
            .iter()
            .filter(|s| s.config == API_GUARD_INTROSPECTION_CONFIG)
            .collect();
        assert_eq!(introspection.len(), 2);
        assert!(uses_auth_service(&EnvoyConfig::load(
            API_GUARD_INTROSPECTION_CONFIG
        )));
        assert!(!uses_auth_service(&EnvoyConfig::load(
            "envoy/bench/api-guard.yaml"
        )));
        let configs = EnvoyConfig::load(API_GUARD_INTROSPECTION_CONFIG).plugin_configs();
        let plugin: serde_json::Value = serde_json::from_str(&configs[0]).unwrap();
        assert_eq!(plugin["introspection"]["cluster"], AUTH_CLUSTER);
        assert_eq!(plugin["introspection"]["path"], INTROSPECT_PATH);
        let [cached, uncached] = introspection[..] else {
            unreachable!()
        };
        assert!(!cached.distinct_tokens && uncached.distinct_tokens);
        assert_eq!(cached.reference, API_GUARD_KEY);
        assert_eq!(uncached.reference, cached.id);
        assert!(wrk_script(cached, 1).is_none());
        let script = wrk_script(uncached, 7).unwrap();
        assert!(script.contains("\"Bearer t7-\" .. n"), "{script}");
        assert!(script.contains("request = function()"), "{script}");
    }

    #[test]
    fn every_api_guard_row_has_the_floor_of_its_request_shape() {
        let all = scenarios().unwrap();
        let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
        for floor in [FLOOR, FLOOR_POST, FLOOR_BODY] {
            let row = all.iter().find(|s| s.id == floor).unwrap();
            assert_eq!(row.config, FLOOR_CONFIG);
            assert!(!row.needs_wasm && row.refusals.is_empty(), "{floor}");
            assert_eq!(
                row.status_without_headers, 200,
                "{floor}: it enforces nothing"
            );
        }
        assert_eq!(
            all.iter().find(|s| s.id == FLOOR_BODY).unwrap().listener,
            "http-body"
        );
        for s in &all {
            if let Some(floor) = &s.floor {
                assert!(ids.contains(&floor.as_str()), "{}: {floor}", s.id);
            }
            if !s.needs_wasm {
                let priced = [FLOOR_BODY, FLOOR_MIN, FLOOR_CALLS];
                assert!(
                    s.floor.is_none() || priced.contains(&s.id.as_str()),
                    "{}",
                    s.id
                );
                continue;
            }
            // Rows that refuse bodies check them: their floor reads the body too.
            let expected = match (&s.body, s.refusals.is_empty()) {
                (None, _) => FLOOR,
                (Some(_), true) => FLOOR_POST,
                (Some(_), false) => FLOOR_BODY,
            };
            assert_eq!(s.floor.as_deref(), Some(expected), "{}", s.id);
        }
        // The floor bootstrap loads the floor module, and only that.
        let text = serde_yaml::to_string(EnvoyConfig::load(FLOOR_CONFIG).yaml()).unwrap();
        assert_eq!(text.matches(FLOOR_MODULE).count(), 4);
        for (id, listener) in [(FLOOR_MIN, "http-min"), (FLOOR_CALLS, "http-calls")] {
            let row = all.iter().find(|s| s.id == id).unwrap();
            assert_eq!((row.config, row.listener), (FLOOR_CONFIG, listener));
            assert_eq!(row.floor.as_deref(), Some(FLOOR));
        }
        assert!(!text.contains("api_guard"));
        let us = Duration::from_micros;
        assert_eq!(micros_over(Some(us(50)), Some(us(40))), "+10.0");
        assert_eq!(micros_over(Some(us(38)), Some(us(40))), "-2.0");
        assert_eq!(micros_over(Some(us(50)), None), "-");
        let run = |cpu: Option<u64>| Run {
            requests_per_sec: 1.0,
            p50: Duration::ZERO,
            p99: Duration::ZERO,
            requests: 1,
            cpu_per_request: cpu.map(us),
        };
        assert_eq!(
            median_cpu(&[run(Some(30)), run(None), run(Some(10)), run(Some(20))]),
            Some(us(20))
        );
        assert_eq!(median_cpu(&[run(None)]), None);
        // This process's own threads have run for some time already.
        assert!(process_cpu_time(std::process::id()).is_some_and(|t| t > Duration::ZERO));
        assert_eq!(process_cpu_time(u32::MAX), None);
    }

    #[test]
    fn bench_only_selects_by_id_words() {
        let ids = |only: Option<&str>| -> Result<Vec<String>, String> {
            select(scenarios().unwrap(), only).map(|v| v.into_iter().map(|s| s.id).collect())
        };
        let all = ids(None).unwrap();
        assert_eq!(ids(Some("")).unwrap(), all);
        assert_eq!(ids(Some(" , ")).unwrap(), all);
        assert_eq!(
            ids(Some("none, native-jwt-es256")).unwrap(),
            vec!["none", "native-jwt-es256", "post-none"]
        );
        assert_eq!(
            ids(Some("=none,=api-guard, introspect")).unwrap(),
            vec![
                "none",
                "api-guard",
                "api-guard-introspect-cached",
                "api-guard-introspect-uncached"
            ]
        );
        assert_eq!(
            ids(Some("post")).unwrap(),
            vec![
                "post-none",
                "post-floor",
                "post-floor-body",
                "post-api-guard-plain",
                "post-api-guard-schema",
                "post-api-guard-screening",
                "post-api-guard-both"
            ]
        );
        assert_eq!(
            ids(Some("jwt-cold")).unwrap(),
            vec![
                "api-guard-jwt-cold-rs256",
                "api-guard-jwt-cold-es256",
                "api-guard-jwt-cold-eddsa",
                "api-guard-jwt-cold-hs256"
            ]
        );
        let err = ids(Some("nothing-like-this")).unwrap_err();
        assert!(
            err.contains("matches no scenario") && err.contains("native-rl"),
            "{err}"
        );
    }
}
