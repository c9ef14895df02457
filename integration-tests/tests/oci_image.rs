//! `make oci` (tools/oci/build-image.sh): the image Istio and Envoy Gateway pull. Checked with
//! independent tools from Debian (installed by `make setup`): skopeo reads the layout, umoci
//! unpacks the layer, and a Docker registry on loopback stores and serves the image. The format
//! is the "compat" Wasm image both fetchers accept: an OCI image manifest whose last layer is
//! `application/vnd.oci.image.layer.v1.tar+gzip` holding `plugin.wasm`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::process::{spawn_in_own_group, terminate_group};
use integration_tests::{free_port, wasm_path, workspace_root};
use serde_json::Value;
use sha2::{Digest, Sha256};

const TAG: &str = "0.1.0";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A directory under target/ for one test, emptied first and removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new(name: &str) -> WorkDir {
        let dir = workspace_root()
            .join("target/oci-test")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        WorkDir(dir)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a tool to completion and returns its stdout; panics with its stderr on failure.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): `make setup` installs skopeo, umoci and docker-registry")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Builds the image of `module` into `<dir>/api-guard` with the shipped manifest templates, as
/// `make oci` does; returns the printed manifest digest.
fn build(module: &Path, dir: &Path) -> String {
    let layout = dir.join("api-guard");
    let out = run(
        "tools/oci/build-image.sh",
        &[
            module.to_str().unwrap(),
            layout.to_str().unwrap(),
            TAG,
            "envoy/istio/wasmplugin.yaml",
            "envoy/envoy-gateway/extension-policy.yaml",
        ],
    );
    let digest = out.trim().to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{out}");
    digest
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
    assert_eq!(sha256_hex(&bytes), hex, "blob {digest} is not its digest");
    bytes
}

/// Unpacks the image's layers with umoci and returns the root file system's files.
fn unpack(image: &str, into: &Path) -> Vec<(String, Vec<u8>)> {
    run(
        "umoci",
        &[
            "raw",
            "unpack",
            "--rootless",
            "--image",
            image,
            into.to_str().unwrap(),
        ],
    );
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(into)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_image_is_reproducible_and_in_the_compat_format() {
    let module = wasm_path();
    let wasm = std::fs::read(&module).unwrap();
    let work = WorkDir::new("build");

    // Two builds, the second from a copy with another name and modification time.
    let first = build(&module, &mkdir(work.0.join("one")));
    let copy = work.0.join("renamed.wasm");
    std::fs::copy(&module, &copy).unwrap();
    let old = std::fs::File::options().write(true).open(&copy).unwrap();
    old.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    let second = build(&copy, &mkdir(work.0.join("two")));
    assert_eq!(first, second, "two builds of one module differ");
    println!("manifest digest of both builds: {first}");

    let layout = work.0.join("one/api-guard");
    // The layout's index names the manifest by tag; the manifest is an OCI image manifest.
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], first.as_str());
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        TAG
    );
    let manifest: Value = serde_json::from_slice(&blob(&layout, &first)).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    let last = layers.last().unwrap();
    assert_eq!(last["mediaType"], LAYER_TYPE);
    let layer = blob(&layout, last["digest"].as_str().unwrap());
    assert_eq!(last["size"].as_u64(), Some(layer.len() as u64));
    // gzip -n: no file name (FLG bit 3) and a zero timestamp in the header.
    assert_eq!(&layer[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&layer[4..8], &[0, 0, 0, 0]);
    let config: Value = serde_json::from_slice(&blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(1)
    );

    // skopeo reads the layout and reports the same manifest digest.
    let image = format!("oci:{}:{TAG}", layout.display());
    let inspected: Value = serde_json::from_str(&run("skopeo", &["inspect", &image])).unwrap();
    assert_eq!(inspected["Digest"], first.as_str());
    assert_eq!(inspected["Layers"][0], last["digest"]);

    // umoci unpacks exactly one file, plugin.wasm, byte for byte the module.
    let files = unpack(
        &format!("{}:{TAG}", layout.display()),
        &work.0.join("rootfs"),
    );
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "plugin.wasm");
    assert!(
        files[0].1 == wasm,
        "plugin.wasm differs from {}",
        module.display()
    );

    // The manifests are written next to the layout with the digest Istio and Envoy Gateway
    // compare for oci:// (the manifest digest's hex), in place of the placeholder.
    let hex = first.strip_prefix("sha256:").unwrap();
    for name in ["wasmplugin.yaml", "extension-policy.yaml"] {
        let text = std::fs::read_to_string(work.0.join("one").join(name)).unwrap();
        assert!(!text.contains("@MANIFEST_DIGEST@"), "{name}");
        assert!(
            text.contains(&format!("sha256: \"{hex}\"")),
            "{name} does not pin {hex}"
        );
        assert!(
            !text.contains(&sha256_hex(&wasm)),
            "{name} pins the .wasm hash"
        );
    }
    assert_eq!(
        std::fs::read_to_string(work.0.join("one/api-guard.digest"))
            .unwrap()
            .trim(),
        first
    );
}

/// A Docker registry (Debian's docker-registry) on a loopback port, its configuration and
/// storage under target/; stopped when dropped.
struct Registry {
    child: Child,
    port: u16,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        for _ in 0..3 {
            let port = free_port();
            let config = dir.join("registry.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                    dir.join("storage").display()
                ),
            )
            .unwrap();
            let mut command = Command::new("docker-registry");
            command
                .args(["serve", config.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = spawn_in_own_group(command).unwrap_or_else(|e| {
                panic!("cannot start docker-registry ({e}): `make setup` installs it")
            });
            let mut registry = Registry { child, port };
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = registry.child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                if registry.get("/v2/", "").0 == 200 {
                    return registry;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("docker-registry did not answer on loopback");
    }

    /// GET on the registry: (status, Docker-Content-Digest header, body).
    fn get(&self, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut args = vec!["-s", "--max-time", "5", "-D", "/dev/stderr", "-o", "-"];
        if !accept.is_empty() {
            args.extend(["-H", accept]);
        }
        args.push(&url);
        let Ok(output) = Command::new("curl").args(&args).output() else {
            return (0, String::new(), Vec::new());
        };
        let headers = String::from_utf8_lossy(&output.stderr).into_owned();
        let status = headers
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let digest = headers
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("docker-content-digest")
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_default();
        (status, digest, output.stdout)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        terminate_group(&mut self.child, Duration::from_secs(5));
    }
}

#[test]
fn a_registry_round_trip_keeps_the_digest_and_the_module() {
    let module = wasm_path();
    let wasm = std::fs::read(&module).unwrap();
    let work = WorkDir::new("registry");
    let digest = build(&module, &work.0);
    let registry = Registry::start(&work.0);
    let remote = format!("docker://127.0.0.1:{}/api-guard:{TAG}", registry.port);

    // Push as is (an OCI manifest, not converted), as a user publishes it.
    let local = format!("oci:{}:{TAG}", work.0.join("api-guard").display());
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &local,
            &remote,
        ],
    );

    // What Istio's and Envoy Gateway's fetchers ask for: the manifest by tag, whose digest
    // (the registry's header and the hash of the bytes served) is the one the manifests pin.
    let (status, header, body) = registry.get(
        &format!("/v2/api-guard/manifests/{TAG}"),
        "Accept: application/vnd.oci.image.manifest.v1+json",
    );
    assert_eq!(status, 200);
    assert_eq!(header, digest);
    assert_eq!(format!("sha256:{}", sha256_hex(&body)), digest);
    let manifest: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        manifest["layers"].as_array().unwrap().last().unwrap()["mediaType"],
        LAYER_TYPE
    );
    let inspected: Value =
        serde_json::from_str(&run("skopeo", &["inspect", "--tls-verify=false", &remote])).unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());

    // Pulled back into a fresh layout, it unpacks to the module byte for byte.
    let pulled = work.0.join("pulled");
    let pulled_ref = format!("oci:{}:{TAG}", pulled.display());
    run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--preserve-digests",
            "--src-tls-verify=false",
            &remote,
            &pulled_ref,
        ],
    );
    let files = unpack(
        &format!("{}:{TAG}", pulled.display()),
        &work.0.join("rootfs"),
    );
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "plugin.wasm");
    assert!(
        files[0].1 == wasm,
        "the pulled plugin.wasm differs from the module"
    );
    drop(registry);
}

fn mkdir(path: PathBuf) -> PathBuf {
    std::fs::create_dir_all(&path).unwrap();
    path
}
