//! The shipped Envoy configurations are valid for the Envoy we test with, and cannot drift from
//! the demo policy or from docker-compose.

use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::{envoy_bin, wasm_path, workspace_root, EnvoyConfig};
use serde_yaml::Value;

/// Every Envoy bootstrap under `envoy/`, relative to the root (`envoy/istio/` and
/// `envoy/envoy-gateway/` hold Kubernetes manifests, not bootstraps).
fn bootstraps() -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                if relative != Path::new("envoy/istio")
                    && relative != Path::new("envoy/envoy-gateway")
                {
                    walk(&path, root, out);
                }
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(relative);
            }
        }
    }
    let root = workspace_root();
    let mut out = Vec::new();
    walk(&root.join("envoy"), &root, &mut out);
    out
}

#[test]
fn every_bootstrap_passes_envoy_validate() {
    // Validation loads the module and runs its configure step: the module must exist.
    wasm_path();
    let configs = bootstraps();
    for expected in [
        "envoy/envoy.yaml",
        "envoy/bench/none.yaml",
        "envoy/bench/native.yaml",
        "envoy/bench/api-guard.yaml",
    ] {
        assert!(
            configs.contains(&PathBuf::from(expected)),
            "{expected} not found in {configs:?}"
        );
    }
    for config in configs {
        // From the root, exactly as the demo and docker-compose start Envoy.
        let output = Command::new(envoy_bin())
            .args(["--mode", "validate", "-c"])
            .arg(&config)
            .current_dir(workspace_root())
            .output()
            .expect("cannot run envoy");
        assert!(
            output.status.success(),
            "envoy --mode validate -c {} failed ({}):\n{}{}",
            config.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn shipped_plugin_configuration_is_the_demo_policy() {
    let demo_path = workspace_root().join("policies/demo.json");
    let demo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&demo_path).unwrap()).unwrap();
    let embedded = EnvoyConfig::load("envoy/envoy.yaml").plugin_configs();
    assert_eq!(
        embedded.len(),
        2,
        "one api_guard filter per listener (http, https)"
    );
    for config in embedded {
        let config: serde_json::Value = serde_json::from_str(&config)
            .unwrap_or_else(|e| panic!("embedded plugin configuration is not JSON: {e}"));
        assert_eq!(
            config, demo,
            "envoy/envoy.yaml and policies/demo.json differ"
        );
    }
}

fn compose() -> Value {
    let path = workspace_root().join("docker-compose.yml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn command_of(service: &Value) -> String {
    match &service["command"] {
        Value::String(s) => s.clone(),
        Value::Sequence(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        other => panic!("unexpected command: {other:?}"),
    }
}

#[test]
fn docker_compose_runs_the_shipped_config() {
    let compose = compose();
    let envoy = &compose["services"]["envoy"];
    let volumes: Vec<&str> = envoy["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        volumes.contains(&".:/api-guard:ro"),
        "repository mounted read-only: {volumes:?}"
    );
    assert_eq!(
        envoy["working_dir"].as_str(),
        Some("/api-guard"),
        "relative paths start at the root"
    );
    let command = command_of(envoy);
    assert!(
        command.contains("-c /api-guard/envoy/envoy.yaml"),
        "{command}"
    );
    assert!(envoy["image"]
        .as_str()
        .unwrap()
        .starts_with("envoyproxy/envoy:v1.40"));
}

#[test]
fn docker_compose_replicas_are_the_configured_upstreams() {
    let compose = compose();
    let mut listening: Vec<std::net::SocketAddr> = ["replica-1", "replica-2"]
        .iter()
        .map(|name| {
            let command = command_of(&compose["services"][*name]);
            assert!(command.contains(&format!("--name {name}")), "{command}");
            let addr = command
                .split_whitespace()
                .skip_while(|w| *w != "--listen")
                .nth(1);
            addr.unwrap_or_else(|| panic!("{name}: no --listen in {command}"))
                .parse()
                .unwrap()
        })
        .collect();
    listening.sort();
    let mut configured = EnvoyConfig::load("envoy/envoy.yaml").upstream_endpoints();
    configured.sort();
    assert_eq!(listening, configured);
}

/// The `api-guard audit` corpus (cli/tests/audit/) is made of configurations Envoy accepts:
/// each bad one is a mistake Envoy lets through silently, which is why the audit exists. The
/// few Envoy itself refuses say so in an `# envoy: rejects` line (`# envoy: skip` for one that
/// needs a file outside the corpus). Two validations run at a time: each loads the module.
#[test]
fn the_audit_corpus_is_what_envoy_accepts() {
    wasm_path();
    let dir = workspace_root().join("cli/tests/audit");
    let mut files = Vec::new();
    for sub in ["good", "good/xds", "bad", "bad/xds"] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "json")
                )
            })
            .collect();
        entries.sort();
        files.extend(entries);
    }
    // Resource files are loaded through their bootstrap, not on their own.
    files.retain(|f| {
        !f.ends_with("good/xds/lds.yaml")
            && !f.ends_with("good/xds/rds.yaml")
            && !f.ends_with("bad/xds/rds-unknown-policy.yaml")
    });
    assert!(files.len() >= 25, "{files:?}");
    let validate = |file: &Path| -> (PathBuf, bool, String) {
        let output = Command::new(envoy_bin())
            .args(["--mode", "validate", "-c"])
            .arg(file)
            .current_dir(workspace_root())
            .output()
            .expect("cannot run envoy");
        let log = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        (file.to_path_buf(), output.status.success(), log)
    };
    let mut results = Vec::new();
    for pair in files.chunks(2) {
        std::thread::scope(|s| {
            let handles: Vec<_> = pair.iter().map(|f| s.spawn(move || validate(f))).collect();
            for h in handles {
                results.push(h.join().unwrap());
            }
        });
    }
    for (file, accepted, log) in results {
        let text = std::fs::read_to_string(&file).unwrap();
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# envoy: "))
            .unwrap_or("accepts");
        if expect.starts_with("skip") {
            continue;
        }
        let want = !expect.starts_with("rejects");
        let tail: String = log.lines().rev().take(3).collect::<Vec<_>>().join("\n");
        assert_eq!(
            accepted,
            want,
            "{}: expected Envoy to {expect}:\n{tail}",
            file.display()
        );
    }
}

#[test]
fn docker_compose_compiles_nothing_at_start_up() {
    let compose = compose();
    let services = compose["services"].as_mapping().unwrap();
    for (name, service) in services {
        let image = service["image"].as_str().unwrap_or_default();
        assert!(!image.starts_with("rust"), "{name:?} runs {image}");
        assert!(service.get("build").is_none(), "{name:?} builds an image");
        let command = command_of(service);
        assert!(!command.contains("cargo"), "{name:?}: {command}");
    }
    // The replicas run the echo server `make build` puts in target/release, from the
    // repository mounted read-only, as an unprivileged user.
    let makefile = std::fs::read_to_string(workspace_root().join("Makefile")).unwrap();
    let build_recipe = makefile
        .split("\nbuild:")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_default();
    assert!(
        build_recipe.contains("cargo build -p integration-tests --release --bins"),
        "make build: {build_recipe}"
    );
    assert!(workspace_root()
        .join("integration-tests/src/bin/echo-upstream.rs")
        .exists());
    for name in ["replica-1", "replica-2"] {
        let replica = &compose["services"][name];
        let command = command_of(replica);
        assert!(
            command.starts_with("/api-guard/target/release/echo-upstream "),
            "{command}"
        );
        let volumes: Vec<&str> = replica["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(volumes, [".:/api-guard:ro"]);
        assert_eq!(replica["user"].as_str(), Some("65534:65534"));
    }
}
