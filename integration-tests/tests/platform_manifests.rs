//! The Istio and Envoy Gateway manifests as shipped: they parse, their plugin configuration
//! compiles with api-guard's own compiler, the image is pinned by the placeholder `make oci`
//! replaces with the manifest digest, and the route matchers name routes the manifests create.
//! (No Kubernetes here: what the control planes do with them is documented, not run.)

use std::collections::BTreeSet;

use integration_tests::workspace_root;
use serde_json::Value;

const PLACEHOLDER: &str = "@MANIFEST_DIGEST@";

/// Every YAML document of a file under the workspace, as JSON values.
fn documents(relative: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(workspace_root().join(relative)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let yaml = <serde_yaml::Value as serde::Deserialize>::deserialize(doc)
                .unwrap_or_else(|e| panic!("{relative}: {e}"));
            serde_json::to_value(yaml).unwrap()
        })
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// Compiles a plugin configuration as the control plane hands it to the module (a JSON string).
fn compile(config: &Value) -> api_guard::policy::Guard {
    api_guard::config::compile(config.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("the plugin configuration does not compile:\n{e}"))
}

/// The values of one field over the `routes` matchers.
fn matcher_values(config: &Value, field: &str) -> BTreeSet<String> {
    config["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m[field].as_str().map(str::to_string))
        .collect()
}

#[test]
fn istio_wasm_plugin_compiles_and_matches_the_routes_istio_names() {
    let docs = documents("envoy/istio/wasmplugin.yaml");
    let plugins = of_kind(&docs, "WasmPlugin");
    assert_eq!(plugins.len(), 1);
    let spec = &plugins[0]["spec"];
    // Pinned by the manifest digest `make oci` fills in, fetched over oci://, failing closed.
    assert!(spec["url"].as_str().unwrap().starts_with("oci://"));
    assert_eq!(spec["sha256"], PLACEHOLDER);
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
    assert_eq!(spec["pluginName"], "api_guard");
    assert_eq!(spec["type"], "HTTP");
    let config = &spec["pluginConfig"];
    let guard = compile(config);
    assert!(!guard.routes.is_empty());

    // Route names Istio generates: the HTTP route's name, and `<name>.<match name>` for
    // named matches; virtual hosts `<host>:<port>` of the Gateway's servers.
    let mut routes = BTreeSet::new();
    for vs in of_kind(&docs, "VirtualService") {
        for http in vs["spec"]["http"].as_array().unwrap() {
            let name = http["name"].as_str().unwrap().to_string();
            for m in http["match"].as_array().into_iter().flatten() {
                if let Some(match_name) = m["name"].as_str() {
                    routes.insert(format!("{name}.{match_name}"));
                }
            }
            routes.insert(name);
        }
    }
    let mut virtual_hosts = BTreeSet::new();
    for gateway in of_kind(&docs, "Gateway") {
        for server in gateway["spec"]["servers"].as_array().unwrap() {
            for host in server["hosts"].as_array().unwrap() {
                virtual_hosts.insert(format!(
                    "{}:{}",
                    host.as_str().unwrap(),
                    server["port"]["number"]
                ));
            }
        }
    }
    let named = matcher_values(config, "route_name");
    assert!(!named.is_empty());
    assert!(
        named.is_subset(&routes),
        "matchers {named:?} name routes Istio does not generate ({routes:?})"
    );
    let hosts = matcher_values(config, "virtual_host");
    assert!(
        hosts.is_subset(&virtual_hosts),
        "{hosts:?} not in {virtual_hosts:?}"
    );
}

#[test]
fn envoy_gateway_policy_compiles_and_targets_the_route() {
    let docs = documents("envoy/envoy-gateway/extension-policy.yaml");
    let policies = of_kind(&docs, "EnvoyExtensionPolicy");
    assert_eq!(policies.len(), 1);
    let spec = &policies[0]["spec"];
    let routes: BTreeSet<&str> = of_kind(&docs, "HTTPRoute")
        .iter()
        .filter_map(|r| r["metadata"]["name"].as_str())
        .collect();
    for target in spec["targetRefs"].as_array().unwrap() {
        assert_eq!(target["kind"], "HTTPRoute");
        assert!(routes.contains(target["name"].as_str().unwrap()));
    }
    // One entry: Envoy Gateway gives each entry its own VM (shared data is per VM).
    let wasm = spec["wasm"].as_array().unwrap();
    assert_eq!(wasm.len(), 1);
    let entry = &wasm[0];
    assert_eq!(entry["rootID"], "api_guard");
    assert_eq!(entry["failOpen"], false);
    assert_eq!(entry["code"]["type"], "Image");
    assert_eq!(entry["code"]["image"]["sha256"], PLACEHOLDER);
    let guard = compile(&entry["config"]);
    assert!(guard.default_policy.is_some());
    assert!(!guard.routes.is_empty());
    // Envoy Gateway's generated route names carry rule indexes: this example matches paths.
    assert!(matcher_values(&entry["config"], "route_name").is_empty());
}
