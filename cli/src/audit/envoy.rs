//! Reading an Envoy configuration (bootstrap, or LDS/RDS/CDS resources) as YAML values with
//! their paths: the listeners, connection managers, HTTP filters, routes and clusters the checks
//! look at. Nothing here judges; it only finds things and says where they are.
//!
//! Paths are dotted field names with `[i]` list indexes, from the document root, e.g.
//! `static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1]`.

use serde_yaml::Value;

/// One input file, parsed.
pub struct Source {
    pub label: String,
    pub root: Value,
}

/// A value and where it is.
#[derive(Clone)]
pub struct Loc<'a> {
    pub file: usize,
    pub path: String,
    pub value: &'a Value,
}

pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub fn item(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping()?.get(key)
}

/// A field and its path.
pub fn field<'a>(loc: &Loc<'a>, key: &str) -> Option<Loc<'a>> {
    get(loc.value, key).map(|value| Loc {
        file: loc.file,
        path: child(&loc.path, key),
        value,
    })
}

/// The items of a list field, with their paths (nothing if absent or not a list).
pub fn items<'a>(loc: &Loc<'a>, key: &str) -> Vec<Loc<'a>> {
    let Some(list) = get(loc.value, key).and_then(Value::as_sequence) else {
        return Vec::new();
    };
    let base = child(&loc.path, key);
    list.iter()
        .enumerate()
        .map(|(i, value)| Loc {
            file: loc.file,
            path: item(&base, i),
            value,
        })
        .collect()
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get(v, key).and_then(Value::as_str)
}

/// A protobuf bool or `BoolValue` (`true`, or `{value: true}`).
pub fn bool_of(v: &Value, key: &str) -> Option<bool> {
    let f = get(v, key)?;
    f.as_bool()
        .or_else(|| get(f, "value").and_then(Value::as_bool))
}

/// A protobuf integer or wrapper: `5`, `"5"` (JSON mapping of 64-bit numbers) or `{value: 5}`.
pub fn u64_of(v: &Value, key: &str) -> Option<u64> {
    fn number(v: &Value) -> Option<u64> {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .or_else(|| get(v, "value").and_then(number))
    }
    number(get(v, key)?)
}

/// A protobuf `Duration` in seconds: `"10s"`, `"0.25s"` or `{seconds: 10, nanos: 0}`.
pub fn duration_of(v: &Value, key: &str) -> Option<f64> {
    let f = get(v, key)?;
    if let Some(s) = f.as_str() {
        return s.strip_suffix('s')?.parse().ok();
    }
    let seconds = get(f, "seconds").map_or(Some(0.0), |s| {
        s.as_f64()
            .or_else(|| s.as_str().and_then(|t| t.parse().ok()))
    })?;
    let nanos = get(f, "nanos").and_then(Value::as_f64).unwrap_or(0.0);
    Some(seconds + nanos / 1e9)
}

/// The message name of an `Any` (`type.googleapis.com/a.b.C` -> `a.b.C`).
fn type_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// A typed config: its message name and the message itself. A `TypedStruct` (Istio writes
/// these) is unwrapped to the type and value it carries.
pub fn typed<'a>(loc: &Loc<'a>) -> Option<(&'a str, Loc<'a>)> {
    let url = str_of(loc.value, "@type")?;
    let name = type_name(url);
    if name == "udpa.type.v1.TypedStruct" || name == "xds.type.v3.TypedStruct" {
        let inner = field(loc, "value")?;
        let inner_name = type_name(str_of(loc.value, "type_url")?);
        return Some((inner_name, inner));
    }
    Some((name, loc.clone()))
}

pub const HCM: &str =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
pub const WASM: &str = "envoy.extensions.filters.http.wasm.v3.Wasm";
pub const ROUTER: &str = "envoy.extensions.filters.http.router.v3.Router";
pub const FILTER_CONFIG: &str = "envoy.config.route.v3.FilterConfig";
const LISTENER: &str = "envoy.config.listener.v3.Listener";
const ROUTE_CONFIG: &str = "envoy.config.route.v3.RouteConfiguration";
const CLUSTER: &str = "envoy.config.cluster.v3.Cluster";

/// Everything found in the input files.
#[derive(Default)]
pub struct Inventory<'a> {
    /// Bootstrap roots (the files that have one).
    pub bootstraps: Vec<Loc<'a>>,
    pub listeners: Vec<Loc<'a>>,
    /// Route configurations given as resources (for RDS names).
    pub route_configs: Vec<Loc<'a>>,
    pub clusters: Vec<Loc<'a>>,
    /// Whether clusters may come from a CDS server this audit does not see.
    pub dynamic_clusters: bool,
}

impl<'a> Inventory<'a> {
    pub fn of(sources: &'a [Source]) -> Inventory<'a> {
        let mut inv = Inventory::default();
        for (file, source) in sources.iter().enumerate() {
            let root = Loc {
                file,
                path: String::new(),
                value: &source.root,
            };
            inv.add_document(root);
        }
        inv
    }

    fn add_document(&mut self, doc: Loc<'a>) {
        if let Some(list) = doc.value.as_sequence() {
            for (i, value) in list.iter().enumerate() {
                self.add_resource(Loc {
                    file: doc.file,
                    path: item(&doc.path, i),
                    value,
                });
            }
            return;
        }
        let bootstrap_keys = [
            "static_resources",
            "dynamic_resources",
            "overload_manager",
            "admin",
            "layered_runtime",
        ];
        if bootstrap_keys.iter().any(|k| get(doc.value, k).is_some()) {
            if let Some(statics) = field(&doc, "static_resources") {
                self.listeners.extend(items(&statics, "listeners"));
                self.clusters.extend(items(&statics, "clusters"));
            }
            if let Some(dynamic) = get(doc.value, "dynamic_resources") {
                if get(dynamic, "cds_config").is_some() {
                    self.dynamic_clusters = true;
                }
            }
            self.bootstraps.push(doc);
            return;
        }
        // A discovery response, or a file of resources for file-based xDS.
        if get(doc.value, "resources").is_some() {
            for r in items(&doc, "resources") {
                self.add_resource(r);
            }
            return;
        }
        self.add_resource(doc);
    }

    fn add_resource(&mut self, r: Loc<'a>) {
        let kind = str_of(r.value, "@type").map(type_name);
        let has = |k: &str| get(r.value, k).is_some();
        match kind {
            Some(LISTENER) => self.listeners.push(r),
            Some(ROUTE_CONFIG) => self.route_configs.push(r),
            Some(CLUSTER) => self.clusters.push(r),
            Some(_) => {}
            None if has("filter_chains") || has("default_filter_chain") => self.listeners.push(r),
            None if has("virtual_hosts") => self.route_configs.push(r),
            None if has("load_assignment") || (has("name") && has("type")) => self.clusters.push(r),
            None => {}
        }
    }

    pub fn cluster(&self, name: &str) -> Option<&Loc<'a>> {
        self.clusters
            .iter()
            .find(|c| str_of(c.value, "name") == Some(name))
    }

    /// Every HTTP connection manager of every listener.
    pub fn connection_managers(&self) -> Vec<ConnectionManager<'a>> {
        let mut out = Vec::new();
        for (listener, l) in self.listeners.iter().enumerate() {
            let mut chains = items(l, "filter_chains");
            chains.extend(field(l, "default_filter_chain"));
            for chain in chains {
                for filter in items(&chain, "filters") {
                    let Some(tc) = field(&filter, "typed_config") else {
                        continue;
                    };
                    if let Some((HCM, hcm)) = typed(&tc) {
                        out.push(ConnectionManager {
                            listener,
                            chain: chain.clone(),
                            hcm,
                            filters: Vec::new(),
                        });
                    }
                }
            }
        }
        for cm in &mut out {
            cm.filters = http_filters(&cm.hcm);
        }
        out
    }

    /// The route configurations of a connection manager: inline, or found by RDS name among
    /// the inputs. `Err` names what could not be found.
    pub fn routes_of(&self, hcm: &Loc<'a>) -> Result<Loc<'a>, String> {
        if let Some(rc) = field(hcm, "route_config") {
            return Ok(rc);
        }
        if let Some(name) = get(hcm.value, "rds").and_then(|r| str_of(r, "route_config_name")) {
            return self
                .route_configs
                .iter()
                .find(|rc| str_of(rc.value, "name") == Some(name))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "RDS route configuration {name:?} (pass its file too to audit its routes)"
                    )
                });
        }
        if get(hcm.value, "scoped_routes").is_some() {
            return Err("scoped routes (not audited)".to_string());
        }
        Err("no route configuration".to_string())
    }
}

pub struct ConnectionManager<'a> {
    /// Index in [`Inventory::listeners`].
    pub listener: usize,
    /// The filter chain it is in (its `transport_socket` says whether the connection is TLS).
    pub chain: Loc<'a>,
    /// The `HttpConnectionManager` message.
    pub hcm: Loc<'a>,
    pub filters: Vec<HttpFilter<'a>>,
}

pub struct HttpFilter<'a> {
    pub entry: Loc<'a>,
    pub name: String,
    /// The message name of its typed config, if it has one.
    pub kind: Option<&'a str>,
    pub config: Option<Loc<'a>>,
    /// `disabled: true` on the entry: off unless a route turns it on.
    pub disabled: bool,
}

fn http_filters<'a>(hcm: &Loc<'a>) -> Vec<HttpFilter<'a>> {
    items(hcm, "http_filters")
        .into_iter()
        .map(|entry| {
            let typed_config = field(&entry, "typed_config").and_then(|tc| typed(&tc));
            HttpFilter {
                name: str_of(entry.value, "name").unwrap_or_default().to_string(),
                kind: typed_config.as_ref().map(|(k, _)| *k),
                config: typed_config.map(|(_, c)| c),
                disabled: bool_of(entry.value, "disabled").unwrap_or(false),
                entry,
            }
        })
        .collect()
}

impl HttpFilter<'_> {
    pub fn is_router(&self) -> bool {
        self.kind == Some(ROUTER)
            || (self.kind.is_none() && self.name == "envoy.filters.http.router")
    }
}

/// One route with the context that decides what it does.
pub struct Route<'a> {
    pub route: Loc<'a>,
    pub vhost: Loc<'a>,
    pub config: Loc<'a>,
}

pub fn routes<'a>(config: &Loc<'a>) -> Vec<Route<'a>> {
    let mut out = Vec::new();
    for vhost in items(config, "virtual_hosts") {
        for route in items(&vhost, "routes") {
            out.push(Route {
                route,
                vhost: vhost.clone(),
                config: config.clone(),
            });
        }
    }
    out
}

impl<'a> Route<'a> {
    /// Whether the route sends requests to an upstream (not a direct response or redirect).
    pub fn forwards(&self) -> bool {
        get(self.route.value, "route").is_some()
    }

    /// Whether the named HTTP filter runs on this route: the most specific
    /// `typed_per_filter_config` entry decides (route, then virtual host, then route
    /// configuration), otherwise the filter entry's own `disabled`.
    pub fn filter_enabled(&self, filter: &HttpFilter<'_>) -> bool {
        for level in [&self.route, &self.vhost, &self.config] {
            let Some(entry) =
                get(level.value, "typed_per_filter_config").and_then(|m| get(m, &filter.name))
            else {
                continue;
            };
            let loc = Loc {
                file: level.file,
                path: String::new(),
                value: entry,
            };
            if let Some((FILTER_CONFIG, fc)) = typed(&loc) {
                return !bool_of(fc.value, "disabled").unwrap_or(false);
            }
            // Any other per-route config leaves the filter on.
            return true;
        }
        !filter.disabled
    }

    /// The route's `api_guard` metadata policy: `None` without one, `Some(Err(path))` when it
    /// is not a string (the filter then reads bytes that name no policy).
    pub fn policy(&self) -> Option<Result<&'a str, String>> {
        let meta = field(&self.route, "metadata")?;
        let fm = field(&meta, "filter_metadata")?;
        let ag = field(&fm, "api_guard")?;
        let p = field(&ag, "policy")?;
        Some(p.value.as_str().ok_or(p.path))
    }

    /// Headers removed from the request on this route (route, virtual host and route
    /// configuration lists all apply), lowercase.
    pub fn removed_headers(&self) -> Vec<String> {
        [&self.route, &self.vhost, &self.config]
            .iter()
            .filter_map(|l| get(l.value, "request_headers_to_remove"))
            .filter_map(Value::as_sequence)
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect()
    }

    /// The request buffer limit Envoy applies on this route, and where it is set (`None`:
    /// Envoy's 1 MiB default).
    pub fn buffer_limit(&self, listener: &Loc<'a>) -> (u64, Option<String>) {
        for level in [&self.route, &self.vhost] {
            for key in [
                "request_body_buffer_limit",
                "per_request_buffer_limit_bytes",
            ] {
                if let Some(n) = u64_of(level.value, key) {
                    return (n, Some(child(&level.path, key)));
                }
            }
        }
        let key = "per_connection_buffer_limit_bytes";
        match u64_of(listener.value, key) {
            Some(n) => (n, Some(child(&listener.path, key))),
            None => (DEFAULT_BUFFER_LIMIT, None),
        }
    }
}

/// Envoy's default per-connection (and so per-stream) buffer limit.
pub const DEFAULT_BUFFER_LIMIT: u64 = 1 << 20;

/// The endpoint hosts of a cluster (socket addresses of its load assignment).
pub fn endpoint_hosts(cluster: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(groups) = get(cluster, "load_assignment")
        .and_then(|la| get(la, "endpoints"))
        .and_then(Value::as_sequence)
    else {
        return out;
    };
    for group in groups {
        let Some(lbs) = get(group, "lb_endpoints").and_then(Value::as_sequence) else {
            continue;
        };
        for lb in lbs {
            if let Some(host) = get(lb, "endpoint")
                .and_then(|e| get(e, "address"))
                .and_then(|a| get(a, "socket_address"))
                .and_then(|s| str_of(s, "address"))
            {
                out.push(host.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn scalar_readers() {
        let v = yaml(
            "a: 10s\nb: 0.25s\nc: {seconds: 2, nanos: 500000000}\nd: ten\ne: 7\nf: \"8\"\ng: {value: 9}\nh: -1\ni: {value: true}\nj: yes-ish",
        );
        assert_eq!(duration_of(&v, "a"), Some(10.0));
        assert_eq!(duration_of(&v, "b"), Some(0.25));
        assert_eq!(duration_of(&v, "c"), Some(2.5));
        assert_eq!(duration_of(&v, "d"), None);
        assert_eq!(duration_of(&v, "missing"), None);
        assert_eq!(u64_of(&v, "e"), Some(7));
        assert_eq!(u64_of(&v, "f"), Some(8));
        assert_eq!(u64_of(&v, "g"), Some(9));
        assert_eq!(u64_of(&v, "h"), None);
        assert_eq!(bool_of(&v, "i"), Some(true));
        assert_eq!(bool_of(&v, "j"), None);
    }

    #[test]
    fn typed_struct_is_unwrapped() {
        let v = yaml(
            "\"@type\": type.googleapis.com/xds.type.v3.TypedStruct\ntype_url: type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm\nvalue: {config: {root_id: api_guard}}",
        );
        let loc = Loc {
            file: 0,
            path: "x".into(),
            value: &v,
        };
        let (kind, inner) = typed(&loc).unwrap();
        assert_eq!(kind, WASM);
        assert_eq!(inner.path, "x.value");
        assert!(get(inner.value, "config").is_some());
        let plain =
            yaml("\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");
        let loc = Loc {
            file: 0,
            path: "y".into(),
            value: &plain,
        };
        assert_eq!(typed(&loc).unwrap().0, ROUTER);
        let untyped = yaml("name: x");
        let loc = Loc {
            file: 0,
            path: String::new(),
            value: &untyped,
        };
        assert!(typed(&loc).is_none());
    }

    #[test]
    fn the_most_specific_per_filter_config_decides() {
        let off = "{api_guard: {\"@type\": type.googleapis.com/envoy.config.route.v3.FilterConfig, disabled: true}}";
        let on = "{api_guard: {\"@type\": type.googleapis.com/envoy.config.route.v3.FilterConfig, config: {}}}";
        let config_of = |route: &str, vhost: &str, entry_disabled: bool| {
            let rc = yaml(&format!(
                "virtual_hosts: [{{name: v, domains: ['*'], {vhost} routes: [{{match: {{prefix: /}}, route: {{cluster: c}}, {route}}}]}}]"
            ));
            let entry = yaml("name: api_guard");
            let filter = HttpFilter {
                entry: Loc {
                    file: 0,
                    path: String::new(),
                    value: Box::leak(Box::new(entry)),
                },
                name: "api_guard".into(),
                kind: Some(WASM),
                config: None,
                disabled: entry_disabled,
            };
            let rc: &'static Value = Box::leak(Box::new(rc));
            let loc = Loc {
                file: 0,
                path: String::new(),
                value: rc,
            };
            routes(&loc)[0].filter_enabled(&filter)
        };
        let route_off = format!("typed_per_filter_config: {off}");
        let route_on = format!("typed_per_filter_config: {on}");
        let vhost_off = format!("typed_per_filter_config: {off},");
        assert!(config_of("", "", false));
        assert!(!config_of(&route_off, "", false));
        assert!(!config_of("", &vhost_off, false));
        // The route turns back on what the virtual host turned off.
        assert!(config_of(&route_on, &vhost_off, false));
        // Off on the filter entry, on where a route says so.
        assert!(!config_of("", "", true));
        assert!(config_of(&route_on, "", true));
    }
}
