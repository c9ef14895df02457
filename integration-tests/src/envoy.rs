//! A real Envoy process for one test: free ports, private temp directory, bounded startup.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{self, RequestBuilder};
use crate::config::EnvoyConfig;
use crate::process::{spawn_in_own_group, terminate_group};
use crate::tempdir::TempDir;
use crate::{envoy_bin, workspace_root};

/// How long Envoy may take to become ready (V8 compiles the module on every worker).
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
/// How long Envoy may take to exit after SIGTERM before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Envoy did not become ready: it exited (`exit_code` is `Some` for a normal exit) or the startup
/// deadline passed (`None`; the process was killed).
#[derive(Debug, Clone)]
pub struct StartFailure {
    pub exit_code: Option<i32>,
    pub log: String,
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.exit_code {
            Some(code) => writeln!(f, "Envoy exited with code {code} during startup; log:")?,
            None => writeln!(f, "Envoy did not become ready (killed); log:")?,
        }
        f.write_str(&self.log)
    }
}

impl std::error::Error for StartFailure {}

/// A running Envoy. Dropping it stops the process; if the dropping thread is panicking (a failed
/// test), Envoy's log is printed to stderr first.
pub struct Envoy {
    /// Port of the listener named `http`.
    pub http_port: u16,
    /// Port of the listener named `https`, if the bootstrap has one.
    pub https_port: Option<u16>,
    pub admin_port: u16,
    listener_ports: BTreeMap<String, u16>,
    /// With dynamic listeners: the LDS file Envoy watches, and the listeners as first served.
    lds: Option<(PathBuf, Vec<serde_yaml::Value>)>,
    child: Child,
    log_path: PathBuf,
    // Declared last: removed after the process is gone.
    _dir: TempDir,
}

impl Envoy {
    /// Starts Envoy and waits until it is ready; panics with Envoy's log if it is not.
    pub fn start(config: EnvoyConfig) -> Envoy {
        Envoy::try_start(config).unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// Starts Envoy and waits until it is ready, or reports why it is not (for tests that expect
    /// Envoy to reject a configuration).
    ///
    /// Every listener and the admin get a free port chosen by Envoy itself; relative file paths
    /// become absolute; the log (Envoy's own at `info`, `wasm` at `debug`, plus the access log)
    /// goes to a temporary file. Ready means: admin `/ready` says `LIVE` and every listener
    /// reports a bound port.
    ///
    /// Missing prerequisites are not start failures: it panics with a hint if the Envoy binary,
    /// the module or a certificate is missing (`make setup`, `make wasm`, `make certs`).
    pub fn try_start(config: EnvoyConfig) -> Result<Envoy, StartFailure> {
        let mut bootstrap = config.for_test_run();
        let dir = TempDir::new("api-guard-envoy").expect("cannot create a temporary directory");
        let lds = config
            .dynamic_listeners()
            .then(|| move_listeners_to_lds(&mut bootstrap, dir.path()));
        let config_path = dir.path().join("envoy.yaml");
        let admin_address_path = dir.path().join("admin-address");
        let log_path = dir.path().join("envoy.log");
        let yaml = serde_yaml::to_string(&bootstrap).expect("a parsed YAML tree serializes");
        std::fs::write(&config_path, yaml).expect("cannot write the Envoy config");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("cannot create the Envoy log file");

        let mut command = match config.wrapper() {
            Some((wrapper, _)) if !wrapper.is_empty() => {
                let mut c = Command::new(&wrapper[0]);
                c.args(&wrapper[1..]).arg(envoy_bin());
                c
            }
            _ => Command::new(envoy_bin()),
        };
        let startup = config.wrapper().map_or(STARTUP_DEADLINE, |&(_, d)| d);
        command
            .arg("-c")
            .arg(&config_path)
            .arg("--concurrency")
            .arg(config.concurrency().to_string())
            // Tests run in parallel: each Envoy needs its own shared-memory/hot-restart domain.
            .arg("--use-dynamic-base-id")
            .arg("--admin-address-path")
            .arg(&admin_address_path)
            .args(["--log-level", "info", "--component-log-level", "wasm:debug"])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            // Both streams into one append-mode file: access log and Envoy log interleave in order.
            .stdout(
                log.try_clone()
                    .expect("cannot duplicate the log file handle"),
            )
            .stderr(log);
        let child = spawn_in_own_group(command)
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", envoy_bin().display()));

        let mut envoy = Envoy {
            http_port: 0,
            https_port: None,
            admin_port: 0,
            listener_ports: BTreeMap::new(),
            lds,
            child,
            log_path,
            _dir: dir,
        };
        match envoy.wait_until_ready(&admin_address_path, startup) {
            Ok(()) => Ok(envoy),
            Err(exit_code) => {
                let _ = terminate_group(&mut envoy.child, SHUTDOWN_GRACE);
                Err(StartFailure {
                    exit_code,
                    log: envoy.log(),
                })
            }
        }
    }

    /// Polls until ready. `Err(Some(code))`: Envoy exited; `Err(None)`: deadline passed.
    fn wait_until_ready(
        &mut self,
        admin_address_path: &Path,
        startup: Duration,
    ) -> Result<(), Option<i32>> {
        let deadline = Instant::now() + startup;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // A signal death has no code; report it like a timeout (no normal exit).
                return Err(status.code());
            }
            if self.admin_port == 0 {
                self.admin_port = read_admin_port(admin_address_path).unwrap_or(0);
            }
            if self.admin_port != 0 && self.is_ready() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(None)
    }

    /// Admin says LIVE and every listener has a port. Fills in the ports.
    fn is_ready(&mut self) -> bool {
        let live = client::admin_get(self.admin_port, "/ready", Duration::from_secs(2));
        if !matches!(live, Ok((200, ref body)) if body.trim() == "LIVE") {
            return false;
        }
        let Ok((200, listeners)) = client::admin_get(
            self.admin_port,
            "/listeners?format=json",
            Duration::from_secs(2),
        ) else {
            return false;
        };
        let Some(ports) = parse_listener_ports(&listeners) else {
            return false;
        };
        if ports.is_empty() || ports.values().any(|&p| p == 0) {
            return false;
        }
        self.http_port = ports.get("http").copied().unwrap_or(0);
        self.https_port = ports.get("https").copied();
        self.listener_ports = ports;
        true
    }

    /// The port of the listener called `name`.
    pub fn listener_port(&self, name: &str) -> Option<u16> {
        self.listener_ports.get(name).copied()
    }

    /// Everything Envoy logged so far (Envoy log and access log).
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// GET on the admin interface, e.g. `"/stats/prometheus"`. Panics unless it answers 200.
    pub fn admin_get(&self, path: &str) -> String {
        match client::admin_get(self.admin_port, path, Duration::from_secs(10)) {
            Ok((200, body)) => body,
            Ok((status, body)) => panic!("admin GET {path}: status {status}: {body}"),
            Err(e) => panic!("admin GET {path}: {e}"),
        }
    }

    /// A request to the `http` listener (see [`RequestBuilder::https`] for the `https` one).
    pub fn request(&self, method: &str, path: &str) -> RequestBuilder {
        assert!(
            self.http_port != 0,
            "this Envoy has no listener named \"http\""
        );
        RequestBuilder::new(method, path, self.http_port, self.https_port)
    }

    /// A plain-HTTP request to the listener called `name` (panics if there is none).
    pub fn request_on(&self, name: &str, method: &str, path: &str) -> RequestBuilder {
        let port = self
            .listener_port(name)
            .unwrap_or_else(|| panic!("this Envoy has no listener named {name:?}"));
        RequestBuilder::new(method, path, port, None)
    }

    /// Replaces the plugin configuration of every listener through LDS (the listeners keep their
    /// ports), like a control plane pushing a changed policy. Returns at once; use
    /// [`Envoy::lds_updates`] to see whether Envoy applied or rejected it.
    /// Panics unless the Envoy was started [`with_dynamic_listeners`](EnvoyConfig::with_dynamic_listeners).
    pub fn update_plugin_config(&self, json: &str) {
        let (path, listeners) = self
            .lds
            .as_ref()
            .expect("update_plugin_config needs EnvoyConfig::with_dynamic_listeners");
        let mut listeners = listeners.clone();
        for listener in &mut listeners {
            let name = listener["name"].as_str().unwrap_or_default().to_string();
            if let (Some(port), Some(address)) = (
                self.listener_ports.get(&name),
                listener
                    .get_mut("address")
                    .and_then(|a| a.get_mut("socket_address"))
                    .and_then(serde_yaml::Value::as_mapping_mut),
            ) {
                address.insert("port_value".into(), u64::from(*port).into());
            }
            for value in crate::config::plugin_configuration_values(listener) {
                *value = serde_yaml::Value::String(json.to_string());
            }
        }
        write_lds(path, &listeners);
    }

    /// (accepted, rejected) LDS updates so far, from Envoy's own counters.
    pub fn lds_updates(&self) -> (u64, u64) {
        let stats = self.admin_get("/stats?filter=listener_manager.lds.update_");
        let read = |name: &str| {
            stats
                .lines()
                .find_map(|l| l.strip_prefix(&format!("listener_manager.lds.{name}: ")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        (read("update_success"), read("update_rejected"))
    }

    /// Whether the process is still running (it should be, unless a test killed it on purpose).
    /// The Envoy process id (for CPU pinning in the benchmark).
    /// Stops Envoy (SIGTERM, as on drop) and returns its whole log: Envoy writes access logs
    /// from a buffer flushed about once a second, and everything at shutdown.
    pub fn stop_and_log(mut self) -> String {
        let _ = terminate_group(&mut self.child, SHUTDOWN_GRACE);
        self.log()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = terminate_group(&mut self.child, SHUTDOWN_GRACE);
        if std::thread::panicking() {
            eprintln!(
                "----- Envoy log ({}) -----\n{}\n----- end of Envoy log -----",
                self.log_path.display(),
                self.log()
            );
        }
    }
}

/// Moves `static_resources.listeners` into an LDS file in `dir` and points the bootstrap at it.
fn move_listeners_to_lds(
    bootstrap: &mut serde_yaml::Value,
    dir: &Path,
) -> (PathBuf, Vec<serde_yaml::Value>) {
    let listeners = bootstrap
        .get_mut("static_resources")
        .and_then(serde_yaml::Value::as_mapping_mut)
        .and_then(|m| m.remove("listeners"))
        .and_then(|l| l.as_sequence().cloned())
        .unwrap_or_default();
    // Fixed ports from the start: an update that keeps the listener's address is applied in
    // place (only the filter chains are swapped and drained); one that changes it (port 0 -> N)
    // would replace the listener and reset connections waiting in the old socket's queue.
    let mut listeners = listeners;
    for listener in &mut listeners {
        if let Some(address) = listener
            .get_mut("address")
            .and_then(|a| a.get_mut("socket_address"))
            .and_then(serde_yaml::Value::as_mapping_mut)
        {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("cannot find a free port");
            address.insert("port_value".into(), u64::from(port).into());
        }
    }
    let path = dir.join("lds.yaml");
    write_lds(&path, &listeners);
    let dynamic = serde_yaml::to_value(serde_json::json!({
        "lds_config": {
            "resource_api_version": "V3",
            "path_config_source": {"path": path.to_string_lossy()}
        }
    }))
    .expect("JSON always converts to YAML");
    if let Some(root) = bootstrap.as_mapping_mut() {
        root.insert("dynamic_resources".into(), dynamic);
        root.insert(
            "node".into(),
            serde_yaml::to_value(
                serde_json::json!({"id": "api-guard-test", "cluster": "api-guard"}),
            )
            .expect("JSON always converts to YAML"),
        );
    }
    (path, listeners)
}

/// Writes an LDS file atomically (Envoy watches for the rename).
fn write_lds(path: &Path, listeners: &[serde_yaml::Value]) {
    let resources: Vec<serde_yaml::Value> = listeners
        .iter()
        .map(|l| {
            let mut l = l.clone();
            if let Some(m) = l.as_mapping_mut() {
                m.insert(
                    "@type".into(),
                    "type.googleapis.com/envoy.config.listener.v3.Listener".into(),
                );
            }
            l
        })
        .collect();
    let mut doc = serde_yaml::Mapping::new();
    doc.insert("resources".into(), serde_yaml::Value::Sequence(resources));
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, serde_yaml::to_string(&doc).expect("YAML serializes"))
        .expect("cannot write the LDS file");
    std::fs::rename(&tmp, path).expect("cannot move the LDS file into place");
}

/// `--admin-address-path` holds `127.0.0.1:PORT` once the admin listener is bound.
fn read_admin_port(path: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(path).ok()?;
    let (_, port) = text.trim().rsplit_once(':')?;
    port.parse().ok().filter(|&p| p != 0)
}

/// Listener name → bound port, from admin `/listeners?format=json`.
fn parse_listener_ports(json: &str) -> Option<BTreeMap<String, u16>> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let statuses = value.get("listener_statuses")?.as_array()?;
    statuses
        .iter()
        .map(|s| {
            let name = s.get("name")?.as_str()?.to_string();
            let port = s
                .pointer("/local_address/socket_address/port_value")
                .and_then(serde_json::Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0);
            Some((name, port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listener_ports() {
        let json = r#"{"listener_statuses":[
            {"name":"http","local_address":{"socket_address":{"address":"127.0.0.1","port_value":4100}}},
            {"name":"https","local_address":{"socket_address":{"address":"127.0.0.1","port_value":4101}}}]}"#;
        let ports = parse_listener_ports(json).unwrap();
        assert_eq!(ports.get("http"), Some(&4100));
        assert_eq!(ports.get("https"), Some(&4101));
        assert_eq!(parse_listener_ports("{}"), None);
    }
}
