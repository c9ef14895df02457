//! An Envoy bootstrap loaded from `envoy/`, with the only edits tests are allowed to make.
//!
//! Tests run the shipped configuration, not a test-only copy: they may swap the plugin
//! configuration string and the upstream endpoints; [`Envoy`](crate::Envoy) itself rewrites
//! ports (to free ones) and relative file paths (to absolute ones) when it starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use serde_yaml::{Mapping, Value};

use crate::workspace_root;

/// The name of the wasm filter entry in `http_filters` (and of the plugin).
pub const FILTER_NAME: &str = "api_guard";
/// The cluster every route sends to.
pub const UPSTREAM_CLUSTER: &str = "upstream";
/// The cluster of the shared auth service (JWKS, revocation list, introspection).
pub const AUTH_CLUSTER: &str = "auth";

#[derive(Debug, Clone)]
pub struct EnvoyConfig {
    yaml: Value,
    source: PathBuf,
    concurrency: u32,
    dynamic_listeners: bool,
    /// Listeners kept on a port the test chose (for a cluster that points back at Envoy).
    fixed_ports: Vec<(String, u16)>,
    /// A program Envoy runs under (its arguments first, Envoy's command line after them), and
    /// how long startup may take then: the bench's instruction counts run Envoy in callgrind.
    wrapper: Option<(Vec<String>, Duration)>,
}

impl EnvoyConfig {
    /// Loads a bootstrap, e.g. `"envoy/envoy.yaml"`, relative to the workspace root.
    pub fn load(relative: &str) -> EnvoyConfig {
        let source = workspace_root().join(relative);
        let text = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
        let yaml = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", source.display()));
        EnvoyConfig {
            yaml,
            source,
            concurrency: 2,
            dynamic_listeners: false,
            fixed_ports: Vec::new(),
            wrapper: None,
        }
    }

    /// Keeps the listener `name` on `port` instead of a port Envoy picks, so that a cluster of
    /// the same bootstrap can point at it (see `envoy/jwks-file.yaml`). Take `port` from
    /// [`free_port`](crate::free_port).
    pub fn with_listener_port(mut self, name: &str, port: u16) -> Self {
        self.fixed_ports.push((name.to_string(), port));
        self
    }

    /// Serves the bootstrap's listeners through file-based LDS instead of `static_resources`,
    /// so a test can update them at runtime ([`Envoy::update_plugin_config`](crate::Envoy)),
    /// the way a control plane would.
    pub fn with_dynamic_listeners(mut self) -> Self {
        self.dynamic_listeners = true;
        self
    }

    pub(crate) fn dynamic_listeners(&self) -> bool {
        self.dynamic_listeners
    }

    /// Replaces the `api_guard` wasm filter's configuration string in every listener.
    /// Panics if the bootstrap has no such filter.
    pub fn with_plugin_config(mut self, json: &str) -> Self {
        let mut replaced = 0;
        for value in plugin_configuration_values(&mut self.yaml) {
            *value = Value::String(json.to_string());
            replaced += 1;
        }
        assert!(
            replaced > 0,
            "{}: no {FILTER_NAME} wasm filter to configure",
            self.source.display()
        );
        self
    }

    /// Loads `module` (an absolute path) instead of the built `api_guard.wasm` wherever the
    /// bootstrap names it: `make bench` compares a module with an earlier build side by side.
    /// Panics if the bootstrap loads no api-guard module.
    pub fn with_wasm_module(mut self, module: &std::path::Path) -> Self {
        let mut replaced = 0;
        for_each_mapping(&mut self.yaml, &mut |m| {
            if let Some(Value::String(file)) = m.get_mut("filename") {
                if file.ends_with("api_guard.wasm") {
                    *file = module.to_string_lossy().into_owned();
                    replaced += 1;
                }
            }
        });
        assert!(
            replaced > 0,
            "{}: loads no api_guard.wasm",
            self.source.display()
        );
        self
    }

    /// Points the `upstream` cluster at exactly `addrs` (round-robin as configured).
    pub fn with_upstreams(self, addrs: &[SocketAddr]) -> Self {
        self.with_cluster_endpoints(UPSTREAM_CLUSTER, addrs)
    }

    /// Points the `auth` cluster (JWKS, revocation list, introspection) at `addr`.
    pub fn with_auth_service(self, addr: SocketAddr) -> Self {
        self.with_cluster_endpoints(AUTH_CLUSTER, &[addr])
    }

    /// Points a static cluster of the bootstrap at exactly `addrs`. Panics if there is none.
    pub fn with_cluster_endpoints(mut self, name: &str, addrs: &[SocketAddr]) -> Self {
        let lb_endpoints: Vec<_> = addrs
            .iter()
            .map(|a| {
                json!({"endpoint": {"address": {"socket_address": {
                    "address": a.ip().to_string(),
                    "port_value": a.port(),
                }}}})
            })
            .collect();
        let endpoints = serde_yaml::to_value(json!([{ "lb_endpoints": lb_endpoints }]))
            .expect("JSON always converts to YAML");
        let source = self.source.display().to_string();
        let cluster = seq_mut(&mut self.yaml, &["static_resources", "clusters"])
            .into_iter()
            .flatten()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
            .unwrap_or_else(|| panic!("{source}: no cluster named {name:?}"));
        let assignment = cluster
            .get_mut("load_assignment")
            .and_then(Value::as_mapping_mut)
            .unwrap_or_else(|| panic!("cluster {name:?} has no load_assignment"));
        assignment.insert("endpoints".into(), endpoints);
        self
    }

    /// Replaces a cluster's endpoints like [`Self::with_cluster_endpoints`], each with a hash key
    /// (`envoy.lb` metadata `hash_key`) that RING_HASH and MAGLEV place on the ring instead of
    /// the address. Test upstreams listen on ephemeral ports, so without it which client hashes
    /// to which endpoint changes from run to run; with it the placement is the same every run.
    pub fn with_hashed_cluster_endpoints(
        self,
        name: &str,
        endpoints: &[(&str, SocketAddr)],
    ) -> Self {
        let addrs: Vec<SocketAddr> = endpoints.iter().map(|(_, a)| *a).collect();
        let mut this = self.with_cluster_endpoints(name, &addrs);
        let cluster = seq_mut(&mut this.yaml, &["static_resources", "clusters"])
            .into_iter()
            .flatten()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
            .expect("with_cluster_endpoints found this cluster");
        let lb_endpoints = cluster
            .get_mut("load_assignment")
            .and_then(|a| a.get_mut("endpoints"))
            .and_then(|e| e.get_mut(0))
            .and_then(|e| e.get_mut("lb_endpoints"))
            .and_then(Value::as_sequence_mut)
            .expect("with_cluster_endpoints wrote lb_endpoints");
        for (endpoint, (key, _)) in lb_endpoints.iter_mut().zip(endpoints) {
            let metadata =
                serde_yaml::to_value(json!({"filter_metadata": {"envoy.lb": {"hash_key": key}}}))
                    .expect("JSON always converts to YAML");
            if let Some(m) = endpoint.as_mapping_mut() {
                m.insert("metadata".into(), metadata);
            }
        }
        this
    }

    /// Passes the named variables of Envoy's own environment into every api-guard VM
    /// (`vm_config.environment_variables.host_env_keys`), where secrets are read from.
    pub fn with_vm_host_env_keys(mut self, keys: &[&str]) -> Self {
        let mut replaced = 0;
        for_each_mapping(&mut self.yaml, &mut |m| {
            if m.get("vm_id").and_then(Value::as_str) == Some("api_guard") {
                let keys: Vec<Value> = keys.iter().map(|k| Value::String(k.to_string())).collect();
                let mut env = Mapping::new();
                env.insert("host_env_keys".into(), Value::Sequence(keys));
                m.insert("environment_variables".into(), Value::Mapping(env));
                replaced += 1;
            }
        });
        assert!(
            replaced > 0,
            "{}: no api_guard vm_config",
            self.source.display()
        );
        self
    }

    /// Sets `xff_num_trusted_hops` on every HTTP connection manager: Envoy sits behind `hops`
    /// trusted proxies and takes the client address from `x-forwarded-for` (the deployment the
    /// comment on `use_remote_address` in `envoy/envoy.yaml` describes). Panics if the bootstrap
    /// has no connection manager.
    pub fn with_xff_trusted_hops(mut self, hops: u32) -> Self {
        let mut replaced = 0;
        for_each_mapping(&mut self.yaml, &mut |m| {
            let is_hcm = m.get("name").and_then(Value::as_str)
                == Some("envoy.filters.network.http_connection_manager");
            if let (true, Some(Value::Mapping(config))) = (is_hcm, m.get_mut("typed_config")) {
                config.insert("xff_num_trusted_hops".into(), u64::from(hops).into());
                replaced += 1;
            }
        });
        assert!(
            replaced > 0,
            "{}: no http_connection_manager",
            self.source.display()
        );
        self
    }

    /// Inserts `filter` (one `http_filters` entry, as JSON) right before the `api_guard` filter
    /// in every listener: for deployments the docs describe, such as Envoy's decompressor in
    /// front of api-guard (docs/payload.md). Panics if the bootstrap has no api_guard filter.
    pub fn with_http_filter_before_api_guard(mut self, filter: serde_json::Value) -> Self {
        let filter: Value = serde_yaml::to_value(filter).expect("JSON always converts to YAML");
        let mut inserted = 0;
        for_each_mapping(&mut self.yaml, &mut |m| {
            let Some(Value::Sequence(filters)) = m.get_mut("http_filters") else {
                return;
            };
            if let Some(at) = filters
                .iter()
                .position(|f| f.get("name").and_then(Value::as_str) == Some(FILTER_NAME))
            {
                filters.insert(at, filter.clone());
                inserted += 1;
            }
        });
        assert!(
            inserted > 0,
            "{}: no {FILTER_NAME} filter",
            self.source.display()
        );
        self
    }

    /// Sets `typed_config.<field>` of every `http_filters` entry named `filter` (e.g. the
    /// `envoy.filters.http.ratelimit` timeout or `failure_mode_deny`). Panics if there is none.
    pub fn with_filter_field(
        mut self,
        filter: &str,
        field: &str,
        value: serde_json::Value,
    ) -> Self {
        let value = serde_yaml::to_value(value).expect("JSON always converts to YAML");
        let mut replaced = 0;
        for_each_mapping(&mut self.yaml, &mut |m| {
            let Some(Value::Sequence(filters)) = m.get_mut("http_filters") else {
                return;
            };
            for f in filters {
                if f.get("name").and_then(Value::as_str) != Some(filter) {
                    continue;
                }
                if let Some(typed) = f.get_mut("typed_config").and_then(Value::as_mapping_mut) {
                    typed.insert(field.into(), value.clone());
                    replaced += 1;
                }
            }
        });
        assert!(
            replaced > 0,
            "{}: no http filter named {filter:?}",
            self.source.display()
        );
        self
    }

    /// Lets every HTTP connection manager accept HTTP/1.1 request trailers
    /// (`http_protocol_options.enable_trailers`; HTTP/2 always accepts them).
    pub fn with_h1_trailers(mut self) -> Self {
        let mut changed = 0;
        for_each_mapping(&mut self.yaml, &mut |m| {
            if m.contains_key("codec_type") {
                let mut options = Mapping::new();
                options.insert("enable_trailers".into(), Value::Bool(true));
                m.insert("http_protocol_options".into(), Value::Mapping(options));
                changed += 1;
            }
        });
        assert!(
            changed > 0,
            "{}: no http_connection_manager with codec_type",
            self.source.display()
        );
        self
    }

    /// Removes every route's `rate_limits` (the descriptors Envoy's `ratelimit` filter sends):
    /// the filter then never calls the rate limit service. `make bench` compares the per-Envoy
    /// tier alone with both tiers this way, on the same bootstrap.
    pub fn without_route_rate_limits(mut self) -> Self {
        let mut removed = 0;
        for_each_mapping(&mut self.yaml, &mut |m| {
            if m.contains_key("cluster") && m.remove("rate_limits").is_some() {
                removed += 1;
            }
        });
        assert!(
            removed > 0,
            "{}: no route has rate_limits",
            self.source.display()
        );
        self
    }

    /// Envoy worker threads (`--concurrency`); 2 unless changed.
    pub fn with_concurrency(mut self, workers: u32) -> Self {
        self.concurrency = workers;
        self
    }

    /// Runs Envoy as the last argument list of `command` (e.g. `valgrind --tool=callgrind`),
    /// allowing `startup` for it to become ready.
    pub fn with_wrapper(mut self, command: Vec<String>, startup: Duration) -> Self {
        self.wrapper = Some((command, startup));
        self
    }

    pub fn wrapper(&self) -> Option<&(Vec<String>, Duration)> {
        self.wrapper.as_ref()
    }

    /// The `api_guard` plugin configuration string of every listener, in listener order.
    pub fn plugin_configs(&self) -> Vec<String> {
        // The search is written once, for mutable access; a copy of a small tree is cheap.
        let mut yaml = self.yaml.clone();
        plugin_configuration_values(&mut yaml)
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    /// The `upstream` cluster's endpoints as written in the file.
    pub fn upstream_endpoints(&self) -> Vec<SocketAddr> {
        let clusters = self.yaml["static_resources"]["clusters"].as_sequence();
        let Some(cluster) = clusters
            .into_iter()
            .flatten()
            .find(|c| c["name"].as_str() == Some(UPSTREAM_CLUSTER))
        else {
            return Vec::new();
        };
        let localities = cluster["load_assignment"]["endpoints"].as_sequence();
        localities
            .into_iter()
            .flatten()
            .filter_map(|locality| locality["lb_endpoints"].as_sequence())
            .flatten()
            .filter_map(|e| {
                let address = &e["endpoint"]["address"]["socket_address"];
                let ip: std::net::IpAddr = address["address"].as_str()?.parse().ok()?;
                let port = u16::try_from(address["port_value"].as_u64()?).ok()?;
                Some(SocketAddr::new(ip, port))
            })
            .collect()
    }

    /// The parsed bootstrap, read-only.
    pub fn yaml(&self) -> &Value {
        &self.yaml
    }

    /// The file this configuration was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    pub(crate) fn concurrency(&self) -> u32 {
        self.concurrency
    }

    /// The bootstrap as the harness runs it: every listener and the admin on port 0 (Envoy picks
    /// free ports, read back from the admin API: no probe-then-bind race), and every relative
    /// `filename` made absolute. Panics with a hint if a referenced file is missing.
    pub(crate) fn for_test_run(&self) -> Value {
        let mut yaml = self.yaml.clone();
        for listener in seq_mut(&mut yaml, &["static_resources", "listeners"])
            .into_iter()
            .flatten()
        {
            let fixed = listener
                .get("name")
                .and_then(Value::as_str)
                .and_then(|n| self.fixed_ports.iter().find(|(f, _)| f == n))
                .map(|(_, p)| *p);
            match fixed {
                Some(port) => {
                    if let Some(address) = listener
                        .get_mut("address")
                        .and_then(|a| a.get_mut("socket_address"))
                        .and_then(Value::as_mapping_mut)
                    {
                        address.insert("port_value".into(), u64::from(port).into());
                    }
                }
                None => set_port_zero(listener),
            }
        }
        if let Some(admin) = yaml.get_mut("admin") {
            set_port_zero(admin);
        }
        let root = workspace_root();
        for_each_mapping(&mut yaml, &mut |m| {
            let Some(Value::String(file)) = m.get_mut("filename") else {
                return;
            };
            let path = root.join(&*file);
            assert!(
                path.is_file(),
                "{} is missing: {}",
                path.display(),
                missing_file_hint(file)
            );
            *file = path.to_string_lossy().into_owned();
        });
        yaml
    }
}

fn missing_file_hint(file: &str) -> &'static str {
    if file.ends_with(".wasm") {
        "run `make wasm`"
    } else if file.contains("certs/") {
        "run `make certs`"
    } else {
        "check the path (relative paths start at the repository root)"
    }
}

fn set_port_zero(node: &mut Value) {
    if let Some(address) = node
        .get_mut("address")
        .and_then(|a| a.get_mut("socket_address"))
        .and_then(Value::as_mapping_mut)
    {
        address.insert("port_value".into(), 0.into());
    }
}

/// The sequence at `path` (mapping keys), if there is one.
fn seq_mut<'a>(root: &'a mut Value, path: &[&str]) -> Option<&'a mut Vec<Value>> {
    let mut node = root;
    for key in path {
        node = node.get_mut(*key)?;
    }
    node.as_sequence_mut()
}

/// Calls `f` on every mapping in the tree, parents before children.
fn for_each_mapping(value: &mut Value, f: &mut dyn FnMut(&mut Mapping)) {
    match value {
        Value::Mapping(m) => {
            f(m);
            for (_, child) in m.iter_mut() {
                for_each_mapping(child, f);
            }
        }
        Value::Sequence(items) => {
            for item in items {
                for_each_mapping(item, f);
            }
        }
        Value::Tagged(tagged) => for_each_mapping(&mut tagged.value, f),
        _ => {}
    }
}

/// `typed_config.config.configuration.value` of every `http_filters` entry named `api_guard`.
pub(crate) fn plugin_configuration_values(yaml: &mut Value) -> Vec<&mut Value> {
    let mut out = Vec::new();
    collect_plugin_values(yaml, &mut out);
    out
}

fn collect_plugin_values<'a>(value: &'a mut Value, out: &mut Vec<&'a mut Value>) {
    match value {
        Value::Mapping(m) => {
            for (key, child) in m.iter_mut() {
                if key.as_str() == Some("http_filters") {
                    for filter in child.as_sequence_mut().into_iter().flatten() {
                        if filter.get("name").and_then(Value::as_str) != Some(FILTER_NAME) {
                            continue;
                        }
                        let value = filter
                            .get_mut("typed_config")
                            .and_then(|t| t.get_mut("config"))
                            .and_then(|c| c.get_mut("configuration"))
                            .and_then(|c| c.get_mut("value"));
                        out.extend(value);
                    }
                } else {
                    collect_plugin_values(child, out);
                }
            }
        }
        Value::Sequence(items) => {
            for item in items {
                collect_plugin_values(item, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_the_shipped_config() {
        let a: SocketAddr = "127.0.0.1:1111".parse().unwrap();
        let b: SocketAddr = "[::1]:2222".parse().unwrap();
        let config = EnvoyConfig::load("envoy/envoy.yaml")
            .with_plugin_config(r#"{"policies":{}}"#)
            .with_upstreams(&[a, b]);
        assert_eq!(config.plugin_configs(), vec![r#"{"policies":{}}"#; 2]);
        assert_eq!(config.upstream_endpoints(), vec![a, b]);
    }

    #[test]
    fn shipped_config_targets_the_demo_replicas() {
        let config = EnvoyConfig::load("envoy/envoy.yaml");
        let expected: Vec<SocketAddr> = vec![
            "127.0.0.1:8081".parse().unwrap(),
            "127.0.0.1:8082".parse().unwrap(),
        ];
        assert_eq!(config.upstream_endpoints(), expected);
        assert_eq!(config.concurrency(), 2);
    }
}
