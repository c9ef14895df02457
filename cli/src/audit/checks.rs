//! The audit checks: each looks at the Envoy configuration around api-guard, or at the compiled
//! plugin configuration in its Envoy context, and reports [`Finding`]s with a stable id.
//! The catalog ([`CHECKS`]) is the reference; `docs/audit.md` explains each entry.

use std::collections::BTreeMap;

use api_guard::config::ConfigErrors;
use api_guard::jwt::provider::ProviderKeys;
use api_guard::policy::{Guard, UnmatchedRoutes};
use api_guard::ratelimit::KeySource;
use serde_yaml::Value;

use super::envoy::{
    bool_of, child, duration_of, endpoint_hosts, field, get, items, routes, str_of, typed,
    ConnectionManager, HttpFilter, Inventory, Loc, Source, WASM,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

/// One entry of the catalog: a stable id, a name, and what it is about.
pub struct Check {
    pub id: &'static str,
    pub name: &'static str,
    pub about: &'static str,
}

/// Every check, by id. Ids are stable: a check that goes away leaves its id unused.
pub const CHECKS: &[Check] = &[
    Check {
        id: "AG000",
        name: "plugin-config-invalid",
        about: "the plugin configuration does not compile (the filter would refuse it)",
    },
    Check {
        id: "AG001",
        name: "no-guard-filter",
        about: "no api-guard wasm filter in the configuration",
    },
    Check {
        id: "AG010",
        name: "client-address-from-xff",
        about: "the client address comes from a client-sent X-Forwarded-For",
    },
    Check {
        id: "AG011",
        name: "client-address-from-header",
        about: "the client address comes from a header named by an original IP detection extension",
    },
    Check {
        id: "AG020",
        name: "guard-not-first",
        about: "another HTTP filter sees requests before api-guard",
    },
    Check {
        id: "AG021",
        name: "router-before-guard",
        about: "the router comes before api-guard: api-guard never runs",
    },
    Check {
        id: "AG030",
        name: "fail-open",
        about: "a crashed module lets traffic through unchecked (FAIL_OPEN / fail_open)",
    },
    Check {
        id: "AG031",
        name: "fail-closed-until-restart",
        about: "a crashed module answers 503 on that worker until Envoy restarts",
    },
    Check {
        id: "AG040",
        name: "body-hold-disabled",
        about: "body checks without allow_on_headers_stop_iteration: requests with bodies hang",
    },
    Check {
        id: "AG041",
        name: "buffer-below-body-limit",
        about: "Envoy's buffer limit is below the policy's body limit: Envoy answers 413 first",
    },
    Check {
        id: "AG050",
        name: "bypass-route-keeps-identity-headers",
        about: "a route with the filter disabled forwards client-sent identity headers",
    },
    Check {
        id: "AG051",
        name: "unknown-policy",
        about: "a route names a policy the configuration does not define (every request denied)",
    },
    Check {
        id: "AG052",
        name: "unmatched-route-allowed",
        about: "a route without a policy passes unchecked (unmatched_routes: allow)",
    },
    Check {
        id: "AG060",
        name: "callout-cluster-missing",
        about: "a JWKS, revocation, key-list or introspection cluster does not exist",
    },
    Check {
        id: "AG061",
        name: "callout-cluster-plaintext",
        about: "a JWKS, revocation, key-list or introspection cluster has no TLS",
    },
    Check {
        id: "AG062",
        name: "callout-cluster-unverified",
        about: "a callout cluster's TLS does not verify the server certificate",
    },
    Check {
        id: "AG063",
        name: "mtls-unverified-certificate",
        about: "a policy identifies clients by certificate on a TLS listener that does not verify client certificates",
    },
    Check {
        id: "AG070",
        name: "rate-limit-client-header",
        about: "a rate limit is keyed by a header the client chooses",
    },
    Check {
        id: "AG071",
        name: "identity-header-collision",
        about: "an identity or claim header is a hop-by-hop, forwarding, routing or Envoy header",
    },
    Check {
        id: "AG072",
        name: "rate-limit-memory",
        about: "rate-limit slots in shared data exceed the memory budget",
    },
    Check {
        id: "AG080",
        name: "no-connection-limit",
        about: "no limit on downstream connections",
    },
    Check {
        id: "AG081",
        name: "no-header-timeout",
        about: "no request headers timeout (slow clients hold connections)",
    },
    Check {
        id: "AG082",
        name: "idle-timeout-disabled",
        about: "a stream or connection idle timeout is disabled",
    },
    Check {
        id: "AG090",
        name: "stale-waiver",
        about: "a waiver matches no finding",
    },
    Check {
        id: "AG091",
        name: "not-audited",
        about: "part of the configuration could not be audited (RDS/CDS not given, scoped routes)",
    },
];

pub fn check(id: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.id == id)
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    /// The input file (or `--policy` file) the path is in.
    pub file: String,
    /// Where: a YAML path, and for the plugin configuration `<yaml path>#<json path>`.
    pub path: String,
    pub message: String,
    /// One line: what to change.
    pub fix: String,
    /// The reason given by the waiver that covers this finding.
    pub waived: Option<String>,
}

impl Finding {
    pub fn name(&self) -> &'static str {
        check(self.id).map_or("", |c| c.name)
    }
}

/// Settings of one audit run.
pub struct Settings<'a> {
    /// `--policy`: (label, JSON) used as every api-guard filter's configuration.
    pub policy: Option<(&'a str, &'a [u8])>,
    /// Shared-data bytes rate-limit slots may take (AG072).
    pub rate_limit_budget_bytes: u64,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// Shared-data memory of one rate-limit slot: a 1.6-million-slot configuration added 190 MB
/// to Envoy's resident memory (issue 16's measurement), about 119 bytes per slot.
pub const BYTES_PER_SLOT: u64 = 119;

/// An api-guard filter found in a connection manager, with its compiled configuration.
struct GuardFilter<'a> {
    cm: usize,
    position: usize,
    /// The wasm filter's `PluginConfig` (`config`).
    plugin: Loc<'a>,
    /// Where the plugin configuration JSON is: file and path prefix (`…#` is appended).
    origin: (String, String),
    guard: Option<Guard>,
}

impl GuardFilter<'_> {
    /// File and path of a place in the plugin configuration.
    fn at(&self, json_path: &str) -> (String, String) {
        let (file, prefix) = &self.origin;
        let path = match (prefix.is_empty(), json_path.is_empty()) {
            (true, _) => json_path.to_string(),
            (false, true) => prefix.clone(),
            (false, false) => format!("{prefix}#{json_path}"),
        };
        (file.clone(), path)
    }
}

struct Run<'a, 's> {
    sources: &'a [Source],
    inv: &'s Inventory<'a>,
    cms: Vec<ConnectionManager<'a>>,
    findings: Vec<Finding>,
}

impl Run<'_, '_> {
    fn file(&self, loc: &Loc<'_>) -> String {
        self.sources
            .get(loc.file)
            .map_or_else(String::new, |s| s.label.clone())
    }

    fn add(
        &mut self,
        id: &'static str,
        severity: Severity,
        (file, path): (String, String),
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.findings.push(Finding {
            id,
            severity,
            file,
            path,
            message: message.into(),
            fix: fix.into(),
            waived: None,
        });
    }

    fn at(&self, loc: &Loc<'_>, key: Option<&str>) -> (String, String) {
        let path = match key {
            Some(k) => child(&loc.path, k),
            None => loc.path.clone(),
        };
        (self.file(loc), path)
    }
}

/// Runs every check over the inputs.
pub fn audit(sources: &[Source], settings: &Settings<'_>) -> Vec<Finding> {
    let inv = Inventory::of(sources);
    let mut run = Run {
        sources,
        inv: &inv,
        cms: inv.connection_managers(),
        findings: Vec::new(),
    };
    let guards = find_guards(&mut run, settings);
    if guards.is_empty() {
        let file = sources
            .first()
            .map_or_else(String::new, |s| s.label.clone());
        run.add(
            "AG001",
            Severity::Error,
            (file, String::new()),
            "no api-guard wasm filter found in any HTTP connection manager (looked for a wasm filter with root_id or name \"api_guard\", or a module named api_guard.wasm)",
            "add the api_guard wasm filter first in http_filters, or audit the file that has it",
        );
        return run.findings;
    }
    for g in &guards {
        client_address(&mut run, g);
        filter_order(&mut run, g);
        failure_policy(&mut run, g);
        body_hold(&mut run, g);
        route_checks(&mut run, g);
        callout_clusters(&mut run, g);
        mtls_listener(&mut run, g);
        header_keyed_limits(&mut run, g);
        identity_collisions(&mut run, g);
        timeouts(&mut run, g);
    }
    rate_limit_memory(&mut run, &guards, settings.rate_limit_budget_bytes);
    connection_limits(&mut run, &guards);
    dedup(&mut run.findings);
    run.findings
}

/// Two filters of one connection manager alias (a YAML anchor): keep one finding per place.
fn dedup(findings: &mut Vec<Finding>) {
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| seen.insert((f.id, f.file.clone(), f.path.clone(), f.message.clone())));
}

fn is_api_guard(filter: &HttpFilter<'_>, plugin: &Value) -> bool {
    let module = get(plugin, "vm_config").and_then(|vm| get(vm, "code"));
    let module_named = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|s| s.contains("api_guard") || s.contains("api-guard"))
    };
    str_of(plugin, "root_id") == Some("api_guard")
        || filter.name == "api_guard"
        || module_named(
            module
                .and_then(|c| get(c, "local"))
                .and_then(|l| get(l, "filename")),
        )
        || module_named(
            module
                .and_then(|c| get(c, "remote"))
                .and_then(|r| get(r, "http_uri"))
                .and_then(|u| get(u, "uri")),
        )
}

fn find_guards<'a>(run: &mut Run<'a, '_>, settings: &Settings<'_>) -> Vec<GuardFilter<'a>> {
    let mut found = Vec::new();
    for (cm_index, cm) in run.cms.iter().enumerate() {
        for (position, filter) in cm.filters.iter().enumerate() {
            let (Some(WASM), Some(wasm)) = (filter.kind, &filter.config) else {
                continue;
            };
            let Some(plugin) = field(wasm, "config") else {
                continue;
            };
            if is_api_guard(filter, plugin.value) {
                found.push((cm_index, position, plugin));
            }
        }
    }
    let mut guards = Vec::new();
    for (cm, position, plugin) in found {
        let (origin, json) = match settings.policy {
            Some((label, bytes)) => ((label.to_string(), String::new()), Ok(bytes.to_vec())),
            None => plugin_json(run, &plugin),
        };
        let mut g = GuardFilter {
            cm,
            position,
            plugin,
            origin,
            guard: None,
        };
        match json {
            Err((at, message)) => run.add(
                "AG000",
                Severity::Error,
                at,
                message,
                "set config.configuration to {\"@type\": type.googleapis.com/google.protobuf.StringValue, value: <the JSON policy>}",
            ),
            Ok(bytes) => match api_guard::config::compile_with_env(&bytes, settings.env) {
                Ok(guard) => g.guard = Some(guard),
                Err(ConfigErrors(errors)) => {
                    for e in errors {
                        run.add(
                            "AG000",
                            Severity::Error,
                            g.at(&e.path),
                            e.message,
                            "fix the plugin configuration (`api-guard check` prints the same errors); Envoy refuses it",
                        );
                    }
                }
            },
        }
        guards.push(g);
    }
    guards
}

type Located = (String, String);

/// The plugin configuration JSON of a wasm filter, and where it is.
fn plugin_json(
    run: &Run<'_, '_>,
    plugin: &Loc<'_>,
) -> (Located, Result<Vec<u8>, (Located, String)>) {
    let Some(configuration) = field(plugin, "configuration") else {
        // The filter receives an empty configuration, which it refuses.
        return (run.at(plugin, Some("configuration")), Ok(Vec::new()));
    };
    match typed(&configuration) {
        Some(("google.protobuf.StringValue", v)) => {
            let text = str_of(v.value, "value").unwrap_or_default();
            (run.at(&v, Some("value")), Ok(text.as_bytes().to_vec()))
        }
        other => {
            let kind = other.map_or("no @type", |(k, _)| k);
            let at = run.at(&configuration, None);
            (
                at.clone(),
                Err((
                    at,
                    format!("the plugin configuration is {kind}: api-guard reads a JSON string (google.protobuf.StringValue); a Struct arrives as binary protobuf and is refused"),
                )),
            )
        }
    }
}

fn cm_of<'c, 'a>(run: &'c Run<'a, '_>, g: &GuardFilter<'_>) -> Option<&'c ConnectionManager<'a>> {
    run.cms.get(g.cm)
}

// ---------------------------------------------------------------------------------------------
// Client address (AG010, AG011)
// ---------------------------------------------------------------------------------------------

fn client_address(run: &mut Run<'_, '_>, g: &GuardFilter<'_>) {
    let Some(hcm) = cm_of(run, g).map(|c| c.hcm.clone()) else {
        return;
    };
    let ip_policies: Vec<&str> = g
        .guard
        .iter()
        .flat_map(|guard| guard.policies.iter())
        .filter(|p| p.needs_client_ip())
        .map(|p| p.name.as_str())
        .collect();
    let extensions = items(&hcm, "original_ip_detection_extensions");
    for ext in &extensions {
        let Some((kind, cfg)) = field(ext, "typed_config").and_then(|tc| typed(&tc)) else {
            continue;
        };
        if kind.ends_with("CustomHeaderConfig") {
            let header = str_of(cfg.value, "header_name").unwrap_or("?");
            let at = run.at(ext, None);
            run.add(
                "AG011",
                Severity::Warning,
                at,
                format!("the client address is read from the {header:?} header: a client that reaches Envoy directly chooses it{}", uses(&ip_policies)),
                format!("only if every request passes a proxy that overwrites {header}; otherwise use use_remote_address: true"),
            );
        }
    }
    if extensions.is_empty() && bool_of(hcm.value, "use_remote_address") != Some(true) {
        let severity = if ip_policies.is_empty() {
            Severity::Warning
        } else {
            Severity::Error
        };
        let at = run.at(&hcm, Some("use_remote_address"));
        run.add(
            "AG010",
            severity,
            at,
            format!("use_remote_address is not true: a client-sent X-Forwarded-For becomes the client address api-guard sees{}", uses(&ip_policies)),
            "set use_remote_address: true (at the edge; add xff_num_trusted_hops: N behind N trusted proxies)",
        );
    }
}

fn uses(ip_policies: &[&str]) -> String {
    if ip_policies.is_empty() {
        String::new()
    } else {
        format!(
            " (IP rules or IP-keyed limits of polic{} {} can be bypassed)",
            if ip_policies.len() == 1 { "y" } else { "ies" },
            ip_policies.join(", ")
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Filter order (AG020, AG021)
// ---------------------------------------------------------------------------------------------

/// Filters that may come before api-guard: they answer locally without the upstream (CORS
/// preflights) or only decode what api-guard then checks.
const SAFE_BEFORE: [&str; 3] = [
    "envoy.extensions.filters.http.cors.v3.Cors",
    "envoy.extensions.filters.http.decompressor.v3.Decompressor",
    "envoy.extensions.filters.http.buffer.v3.Buffer",
];

fn filter_order(run: &mut Run<'_, '_>, g: &GuardFilter<'_>) {
    let Some(cm) = cm_of(run, g) else {
        return;
    };
    let mut found = Vec::new();
    for f in cm.filters.iter().take(g.position) {
        if f.is_router() {
            found.push((
                "AG021",
                Severity::Error,
                run.at(&f.entry, None),
                format!("the router ({}) comes before api-guard: requests are forwarded before api-guard runs", f.name),
            ));
        } else if !f.kind.is_some_and(|k| SAFE_BEFORE.contains(&k)) {
            found.push((
                "AG020",
                Severity::Warning,
                run.at(&f.entry, None),
                format!(
                    "{} ({}) runs before api-guard: it sees (and may answer, change or forward) requests api-guard has not checked",
                    f.name,
                    f.kind.unwrap_or("no typed_config")
                ),
            ));
        }
    }
    for (id, severity, at, message) in found {
        let fix = if id == "AG021" {
            "put envoy.filters.http.router last in http_filters, after api_guard"
        } else {
            "move api_guard to the top of http_filters (only cors, decompressor and buffer may precede it)"
        };
        run.add(id, severity, at, message, fix);
    }
}

// ---------------------------------------------------------------------------------------------
// Failure policy (AG030, AG031)
// ---------------------------------------------------------------------------------------------

fn failure_policy(run: &mut Run<'_, '_>, g: &GuardFilter<'_>) {
    let plugin = &g.plugin;
    let policy = str_of(plugin.value, "failure_policy");
    if policy == Some("FAIL_OPEN") || bool_of(plugin.value, "fail_open") == Some(true) {
        let key = if policy == Some("FAIL_OPEN") {
            "failure_policy"
        } else {
            "fail_open"
        };
        let at = run.at(plugin, Some(key));
        run.add(
            "AG030",
            Severity::Error,
            at,
            "after a module crash, Envoy bypasses api-guard: requests reach the upstream unchecked",
            "set failure_policy: FAIL_RELOAD (a fresh VM serves the next request) and remove fail_open",
        );
    } else if matches!(policy, None | Some("FAIL_CLOSED" | "UNSPECIFIED")) {
        let at = run.at(plugin, Some("failure_policy"));
        run.add(
            "AG031",
            Severity::Info,
            at,
            "failure_policy is FAIL_CLOSED (the default): after a module crash that worker answers 503 until Envoy restarts",
            "set failure_policy: FAIL_RELOAD (fails the crashing request closed, reloads the VM, keeps shared data)",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies (AG040; AG041 is a route check)
// ---------------------------------------------------------------------------------------------

fn body_hold(run: &mut Run<'_, '_>, g: &GuardFilter<'_>) {
    let Some(guard) = &g.guard else {
        return;
    };
    let buffering: Vec<&str> = guard
        .policies
        .iter()
        .filter(|p| p.buffered_body_bytes().is_some())
        .map(|p| p.name.as_str())
        .collect();
    if buffering.is_empty()
        || bool_of(g.plugin.value, "allow_on_headers_stop_iteration") == Some(true)
    {
        return;
    }
    let at = run.at(&g.plugin, Some("allow_on_headers_stop_iteration"));
    run.add(
        "AG040",
        Severity::Error,
        at,
        format!(
            "policies {} check whole bodies (JSON checks or body screening), but without allow_on_headers_stop_iteration Envoy never delivers the body while api-guard holds the headers: such requests hang",
            buffering.join(", ")
        ),
        "set allow_on_headers_stop_iteration: true in the wasm filter's config",
    );
}

// ---------------------------------------------------------------------------------------------
// Routes (AG041, AG050, AG051, AG052, AG091)
// ---------------------------------------------------------------------------------------------

fn route_checks(run: &mut Run<'_, '_>, g: &GuardFilter<'_>) {
    let Some(cm) = cm_of(run, g) else {
        return;
    };
    let (hcm, listener) = (cm.hcm.clone(), run.inv.listeners.get(cm.listener).cloned());
    let Some(filter) = cm.filters.get(g.position) else {
        return;
    };
    let config = match run.inv.routes_of(&hcm) {
        Ok(c) => c,
        Err(what) => {
            let at = run.at(&hcm, None);
            run.add(
                "AG091",
                Severity::Info,
                at,
                format!("routes not audited: {what}"),
                "pass the RDS resource file as another argument",
            );
            return;
        }
    };
    let Some(guard) = &g.guard else {
        return;
    };
    let identity = api_guard::edits::identity_header_names(guard);
    let mut found = Vec::new();
    for route in routes(&config) {
        if !route.filter_enabled(filter) {
            if !route.forwards() {
                continue;
            }
            let removed = route.removed_headers();
            let missing: Vec<&str> = identity
                .iter()
                .filter(|h| !removed.contains(h))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                found.push((
                    "AG050",
                    Severity::Error,
                    run.at(&route.route, None),
                    format!(
                        "api-guard is disabled on this route, so nothing removes client-sent {}: the upstream would trust forged identity headers",
                        missing.join(", ")
                    ),
                    format!(
                        "add request_headers_to_remove: [{}] to this route (or its virtual host)",
                        missing.join(", ")
                    ),
                ));
            }
            continue;
        }
        let policy = match route.policy() {
            Some(Err(path)) => {
                found.push((
                    "AG051",
                    Severity::Error,
                    (run.file(&route.route), path),
                    "the api_guard policy metadata is not a string: api-guard reads it as a name no policy has, and denies every request".to_string(),
                    "write the policy name as a string".to_string(),
                ));
                continue;
            }
            Some(Ok(name)) => match guard.by_name.get(name) {
                Some(id) => guard.policy(*id),
                None => {
                    let mut known: Vec<&str> = guard.by_name.keys().map(String::as_str).collect();
                    known.sort_unstable();
                    found.push((
                        "AG051",
                        Severity::Error,
                        (
                            run.file(&route.route),
                            child(&route.route.path, "metadata.filter_metadata.api_guard.policy"),
                        ),
                        format!("the route selects policy {name:?}, which the plugin configuration does not define: every request on it is denied"),
                        format!("name one of: {}", known.join(", ")),
                    ));
                    continue;
                }
            },
            None => match (guard.default_policy, guard.unmatched_routes) {
                (Some(id), _) => guard.policy(id),
                (None, UnmatchedRoutes::Allow) => {
                    if route.forwards() {
                        found.push((
                            "AG052",
                            Severity::Error,
                            run.at(&route.route, None),
                            "the route names no policy, there is no \"default\" policy and unmatched_routes is \"allow\": its requests reach the upstream unchecked".to_string(),
                            "give the route metadata.filter_metadata.api_guard.policy, or define a \"default\" policy, or set unmatched_routes: deny".to_string(),
                        ));
                    }
                    None
                }
                (None, UnmatchedRoutes::Deny) => None,
            },
        };
        let (Some(policy), Some(listener)) = (policy, &listener) else {
            continue;
        };
        let Some(wanted) = policy.buffered_body_bytes() else {
            continue;
        };
        let (limit, set_at) = route.buffer_limit(listener);
        if limit < wanted {
            let where_ = match &set_at {
                Some(p) => format!("set at {p}"),
                None => "Envoy's default".to_string(),
            };
            found.push((
                "AG041",
                Severity::Warning,
                (run.file(&route.route), set_at.unwrap_or_else(|| route.route.path.clone())),
                format!(
                    "policy {} buffers bodies up to {wanted} bytes, but Envoy's buffer limit on this route is {limit} bytes ({where_}): Envoy answers 413 itself to bodies in between",
                    policy.name
                ),
                format!("set request_body_buffer_limit: {wanted} on the route (or lower the policy's payload.max_body_bytes)"),
            ));
        }
    }
    for (id, severity, at, message, fix) in found {
        run.add(id, severity, at, message, fix);
    }
}

// ---------------------------------------------------------------------------------------------
// Callout clusters (AG060, AG061, AG062)
// ---------------------------------------------------------------------------------------------

fn callout_clusters(run: &mut Run<'_, '_>, g: &GuardFilter<'_>) {
    let Some(guard) = &g.guard else {
        return;
    };
    let mut callouts: Vec<(String, String)> = Vec::new();
    for p in &guard.jwt_providers {
        if let ProviderKeys::Remote(src) = &p.keys {
            callouts.push((
                src.cluster.clone(),
                format!("jwt_providers.{}.remote_jwks.cluster", p.name),
            ));
        }
    }
    if let Some(src) = &guard.revocation.remote {
        callouts.push((src.cluster.clone(), "revocation.remote.cluster".to_string()));
    }
    if let Some(src) = &guard.remote_clients {
        callouts.push((src.cluster.clone(), "remote_clients.cluster".to_string()));
    }
    if let Some(svc) = &guard.introspection {
        callouts.push((svc.cluster.clone(), "introspection.cluster".to_string()));
    }
    for (name, json_path) in callouts {
        let Some(cluster) = run.inv.cluster(&name).cloned() else {
            if run.inv.dynamic_clusters {
                run.add(
                    "AG091",
                    Severity::Info,
                    g.at(&json_path),
                    format!(
                        "cluster {name:?} is not among the inputs (CDS): its TLS is not audited"
                    ),
                    "pass the CDS resource file as another argument",
                );
            } else {
                run.add(
                    "AG060",
                    Severity::Error,
                    g.at(&json_path),
                    format!("cluster {name:?} does not exist: every callout fails (the filter fails closed)"),
                    format!("define cluster {name:?}, or name an existing one"),
                );
            }
            continue;
        };
        let tls = field(&cluster, "transport_socket")
            .and_then(|ts| field(&ts, "typed_config"))
            .and_then(|tc| typed(&tc))
            .filter(|(k, _)| *k == "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
        match tls {
            None => {
                let hosts = endpoint_hosts(cluster.value);
                let loopback = !hosts.is_empty() && hosts.iter().all(|h| is_loopback(h));
                let (severity, note) = if loopback {
                    (Severity::Info, " (every endpoint is on loopback)")
                } else {
                    (Severity::Warning, "")
                };
                let at = run.at(&cluster, None);
                run.add(
                    "AG061",
                    severity,
                    at,
                    format!("cluster {name:?} ({json_path}) has no TLS{note}: keys, revocations or token verdicts can be read or replaced on the way"),
                    "add a transport_socket envoy.transport_sockets.tls (UpstreamTlsContext with sni and validation_context.trusted_ca)",
                );
            }
            Some((_, ctx)) => {
                let common = get(ctx.value, "common_tls_context");
                let validated = common.is_some_and(|c| {
                    [
                        "validation_context",
                        "validation_context_sds_secret_config",
                        "combined_validation_context",
                    ]
                    .iter()
                    .any(|k| get(c, k).is_some())
                });
                if !validated {
                    let at = run.at(&ctx, Some("common_tls_context"));
                    run.add(
                        "AG062",
                        Severity::Warning,
                        at,
                        format!("cluster {name:?} ({json_path}) uses TLS without validation_context: any certificate is accepted"),
                        "set common_tls_context.validation_context.trusted_ca (and match_typed_subject_alt_names or sni)",
                    );
                }
            }
        }
    }
}

/// A policy with an `mtls` rule trusts the certificate facts Envoy reports; on a TLS chain that
/// does not verify client certificates, a client presents any certificate it made itself.
fn mtls_listener(run: &mut Run<'_, '_>, g: &GuardFilter<'_>) {
    let Some(guard) = &g.guard else {
        return;
    };
    let policies: Vec<&str> = guard
        .policies
        .iter()
        .filter(|p| p.needs_peer_certificate())
        .map(|p| p.name.as_str())
        .collect();
    let Some(cm) = cm_of(run, g) else {
        return;
    };
    if policies.is_empty() {
        return;
    }
    let chain = cm.chain.clone();
    let Some((kind, tls)) = field(&chain, "transport_socket")
        .and_then(|ts| field(&ts, "typed_config"))
        .and_then(|tc| typed(&tc))
    else {
        // No TLS: no certificate ever, so the policies refuse every request (fail closed).
        return;
    };
    if kind != "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext" {
        return;
    }
    let common = get(tls.value, "common_tls_context");
    let validation = common.and_then(|c| {
        get(c, "validation_context").or_else(|| get(c, "combined_validation_context"))
    });
    let sds = common.is_some_and(|c| get(c, "validation_context_sds_secret_config").is_some());
    let inner = validation.map(|v| get(v, "default_validation_context").unwrap_or(v));
    let accepts_untrusted =
        inner.and_then(|v| str_of(v, "trust_chain_verification")) == Some("ACCEPT_UNTRUSTED");
    let trusted = inner.is_some_and(|v| get(v, "trusted_ca").is_some());
    if (trusted || sds) && !accepts_untrusted {
        return;
    }
    let at = run.at(&tls, Some("common_tls_context"));
    run.add(
        "AG063",
        Severity::Error,
        at,
        format!(
            "policies {} identify clients by their certificate, but this TLS listener does not verify client certificates against a CA: a client can present a self-made certificate with any SAN",
            policies.join(", ")
        ),
        "set common_tls_context.validation_context.trusted_ca (the client CA) and require_client_certificate: true",
    );
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

// ---------------------------------------------------------------------------------------------
// Plugin configuration in context (AG070, AG071, AG072)
// ---------------------------------------------------------------------------------------------

fn header_keyed_limits(run: &mut Run<'_, '_>, g: &GuardFilter<'_>) {
    let Some(guard) = &g.guard else {
        return;
    };
    for p in &guard.policies {
        for (i, limit) in p.rate_limits.iter().enumerate() {
            if let KeySource::Header(h) = &limit.key {
                run.add(
                    "AG070",
                    Severity::Warning,
                    g.at(&format!("policies.{}.rate_limits[{i}].key", p.name)),
                    format!("rate limit {} is keyed by the {h:?} header, whose value the client chooses: a new value is a new, full bucket", limit.name),
                    "key it by \"client\" (an established identity) or \"ip\"; keep header keys for headers a trusted hop sets",
                );
            }
        }
    }
}

/// Why a header must not carry an identity or claim, if it must not.
pub fn collision(h: &str) -> Option<&'static str> {
    const HOP_BY_HOP: [&str; 10] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        "http2-settings",
    ];
    const FORWARDING: [&str; 15] = [
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-forwarded-client-cert",
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-cluster-client-ip",
        "x-original-forwarded-for",
        "via",
    ];
    const ROUTING: [&str; 7] = [
        "host",
        "content-length",
        "content-type",
        "expect",
        "authorization",
        "cookie",
        "x-request-id",
    ];
    if h.starts_with(':') {
        Some("an HTTP/2 pseudo-header")
    } else if HOP_BY_HOP.contains(&h) {
        Some("a hop-by-hop header (removed or interpreted by every proxy on the way)")
    } else if FORWARDING.contains(&h) {
        Some(
            "a forwarding header (proxies append to it; upstreams read the client address from it)",
        )
    } else if h.starts_with("x-envoy-") {
        Some("an Envoy control header (Envoy acts on it, and strips it from external requests)")
    } else if ROUTING.contains(&h) {
        Some("a routing, framing or credential header")
    } else {
        None
    }
}

fn identity_collisions(run: &mut Run<'_, '_>, g: &GuardFilter<'_>) {
    let Some(guard) = &g.guard else {
        return;
    };
    let mut named: Vec<(String, String)> = vec![
        (
            guard.identity_headers.client_id.clone(),
            "identity_headers.client_id".into(),
        ),
        (
            guard.identity_headers.key_id.clone(),
            "identity_headers.key_id".into(),
        ),
    ];
    for p in &guard.jwt_providers {
        for (claim, header) in &p.forward_claims {
            named.push((
                header.clone(),
                format!("jwt_providers.{}.forward_claims.{claim}", p.name),
            ));
        }
    }
    for (header, json_path) in named {
        if let Some(why) = collision(&header) {
            run.add(
                "AG071",
                Severity::Error,
                g.at(&json_path),
                format!("api-guard would write an identity into {header:?}, {why}"),
                "use a header of your own, e.g. x-api-guard-<name>",
            );
        }
    }
}

fn rate_limit_memory(run: &mut Run<'_, '_>, guards: &[GuardFilter<'_>], budget: u64) {
    // Shared data is per vm_id: filters with the same vm_id and policy share tables.
    let mut tables: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut first: Option<&GuardFilter<'_>> = None;
    for g in guards {
        let Some(guard) = &g.guard else {
            continue;
        };
        let vm_id = get(g.plugin.value, "vm_config")
            .and_then(|vm| str_of(vm, "vm_id"))
            .unwrap_or_default()
            .to_string();
        for p in &guard.policies {
            for l in &p.rate_limits {
                first.get_or_insert(g);
                let slots = u64::from(l.table.max_keys) + 1;
                let entry = tables
                    .entry((vm_id.clone(), l.table.prefix.clone()))
                    .or_insert(0);
                *entry = (*entry).max(slots);
            }
        }
    }
    let slots: u64 = tables.values().sum();
    let bytes = slots.saturating_mul(BYTES_PER_SLOT);
    let Some(g) = first else {
        return;
    };
    if bytes > budget {
        run.add(
            "AG072",
            Severity::Warning,
            g.at("policies"),
            format!(
                "{slots} rate-limit slots in shared data (~{} MiB at {BYTES_PER_SLOT} bytes each, all created at start-up) exceed the budget of {} MiB",
                bytes.div_ceil(1 << 20),
                budget >> 20
            ),
            "lower max_keys of the limits (default 10000), or raise --rate-limit-budget-mib if the memory is planned",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Connections and timeouts (AG080, AG081, AG082)
// ---------------------------------------------------------------------------------------------

fn timeouts(run: &mut Run<'_, '_>, g: &GuardFilter<'_>) {
    let Some(hcm) = cm_of(run, g).map(|c| c.hcm.clone()) else {
        return;
    };
    if duration_of(hcm.value, "request_headers_timeout").is_none_or(|s| s <= 0.0) {
        let at = run.at(&hcm, Some("request_headers_timeout"));
        run.add(
            "AG081",
            Severity::Warning,
            at,
            "no request_headers_timeout: a client that sends headers slowly holds its connection and stream indefinitely (Envoy's default is no limit)",
            "set request_headers_timeout: 10s on the connection manager",
        );
    }
    let idle = [
        (Some(hcm.clone()), "stream_idle_timeout"),
        (field(&hcm, "common_http_protocol_options"), "idle_timeout"),
    ];
    for (loc, key) in idle {
        let Some(loc) = loc else { continue };
        if duration_of(loc.value, key).is_some_and(|s| s <= 0.0) {
            let at = run.at(&loc, Some(key));
            run.add(
                "AG082",
                Severity::Warning,
                at,
                format!("{key} is 0: idle streams or connections are never closed"),
                format!("remove {key} (Envoy's default) or set it to a few minutes"),
            );
        }
    }
}

fn connection_limits(run: &mut Run<'_, '_>, guards: &[GuardFilter<'_>]) {
    let guarded: Vec<Loc<'_>> = guards
        .iter()
        .filter_map(|g| run.cms.get(g.cm))
        .filter_map(|c| run.inv.listeners.get(c.listener))
        .cloned()
        .collect();
    let single_bootstrap = run.inv.bootstraps.len() == 1;
    let mut missing = Vec::new();
    for b in &run.inv.bootstraps {
        // The listeners this bootstrap serves: its own, or (one bootstrap given with LDS
        // files) every listener among the inputs.
        let here: Vec<&Loc<'_>> = guarded
            .iter()
            .filter(|l| single_bootstrap || l.file == b.file)
            .collect();
        if here.is_empty() {
            continue;
        }
        let monitored = field(b, "overload_manager").is_some_and(|om| {
            items(&om, "resource_monitors").iter().any(|m| {
                str_of(m.value, "name")
                    == Some("envoy.resource_monitors.global_downstream_max_connections")
                    || field(m, "typed_config")
                        .and_then(|tc| typed(&tc))
                        .is_some_and(|(k, _)| k.ends_with("DownstreamConnectionsConfig"))
            })
        });
        let runtime = runtime_has(b.value, "overload.global_downstream_max_connections");
        if !monitored && !runtime && !here.iter().all(|l| limited_listener(l)) {
            missing.push(b.clone());
        }
    }
    for b in missing {
        let at = run.at(&b, Some("overload_manager"));
        run.add(
            "AG080",
            Severity::Warning,
            at,
            "no limit on downstream connections: a connection flood exhausts memory and file descriptors before any request reaches api-guard",
            "add the overload_manager resource monitor envoy.resource_monitors.global_downstream_max_connections (max_active_downstream_connections), or a connection_limit network filter on each listener",
        );
    }
}

/// Whether every filter chain of a listener starts with a `connection_limit` network filter.
fn limited_listener(l: &Loc<'_>) -> bool {
    let mut chains = items(l, "filter_chains");
    chains.extend(field(l, "default_filter_chain"));
    !chains.is_empty()
        && chains.iter().all(|c| {
            items(c, "filters").iter().any(|f| {
                field(f, "typed_config")
                    .and_then(|tc| typed(&tc))
                    .is_some_and(|(k, _)| k.ends_with("connection_limit.v3.ConnectionLimit"))
            })
        })
}

/// Whether a static runtime layer of the bootstrap sets `key`.
fn runtime_has(bootstrap: &Value, key: &str) -> bool {
    let Some(layers) = get(bootstrap, "layered_runtime")
        .and_then(|r| get(r, "layers"))
        .and_then(Value::as_sequence)
    else {
        return false;
    };
    layers.iter().any(|layer| {
        let Some(static_layer) = get(layer, "static_layer") else {
            return false;
        };
        // Either a flat dotted key or nested maps.
        get(static_layer, key).is_some() || {
            let mut v = Some(static_layer);
            for part in key.split('.') {
                v = v.and_then(|x| get(x, part));
            }
            v.is_some()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collision_table() {
        for (header, collides) in [
            (":authority", true),
            ("host", true),
            ("connection", true),
            ("te", true),
            ("x-forwarded-for", true),
            ("forwarded", true),
            ("x-real-ip", true),
            ("x-envoy-original-path", true),
            ("authorization", true),
            ("x-request-id", true),
            ("x-api-guard-client-id", false),
            ("x-tenant", false),
            // Only exact names and the listed prefixes: a name containing one is fine.
            ("x-forwarded-for-client", false),
            ("hosts", false),
        ] {
            assert_eq!(collision(header).is_some(), collides, "{header}");
        }
    }

    #[test]
    fn every_catalog_id_is_unique_and_named() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len());
        assert!(CHECKS
            .iter()
            .all(|c| !c.name.is_empty() && !c.about.is_empty()));
    }
}
