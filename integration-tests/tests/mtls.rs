//! mTLS client identity through the real Envoy (envoy/mtls.yaml): the `https` listener requires
//! a client certificate signed by the client CA; api-guard's `mtls` rule maps the verified
//! certificate to a client id (SPIFFE URI SAN, DNS SAN, SHA-256), which the upstream receives
//! in the identity headers and which keys `client` rate limits. Certificates are made by
//! openssl (tools/mtls-certs.sh) when the tests start.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use integration_tests::{workspace_root, Envoy, EnvoyConfig, Upstream};
use serde_json::json;

/// Makes the certificates once per test run, where envoy/mtls.yaml expects the client CA.
fn certs() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = workspace_root().join("target/certs/mtls");
        let status = Command::new(workspace_root().join("tools/mtls-certs.sh"))
            .arg(&dir)
            .status()
            .expect("cannot run tools/mtls-certs.sh (openssl)");
        assert!(status.success(), "tools/mtls-certs.sh failed");
        dir
    })
    .clone()
}

/// The SHA-256 of a certificate, as `openssl x509 -fingerprint -sha256` prints it.
fn fingerprint(cert: &str) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(certs().join(format!("{cert}.crt")))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim().rsplit('=').next().unwrap().to_string()
}

fn start(upstream: &Upstream) -> Envoy {
    certs();
    let config = json!({
        "policies": {
            "services": {
                "mtls": {"identities": [
                    {"uri_san": "spiffe://example.org/ns/shop/sa/checkout", "client": "checkout"},
                    {"dns_san": "billing.internal.example", "client": "billing"},
                    {"sha256": fingerprint("batch"), "client": "batch"}
                ]},
                "rate_limits": [{"name": "per_client", "rate": 1, "per": "hour", "burst": 2, "key": "client"}]
            }
        }
    });
    Envoy::start(
        EnvoyConfig::load("envoy/mtls.yaml")
            .with_plugin_config(&config.to_string())
            .with_upstreams(&[upstream.addr]),
    )
}

#[test]
fn a_verified_certificate_is_the_client_identity() {
    let up = Upstream::start("replica");
    let envoy = start(&up);
    let dir = certs();
    let with = |name: &str| {
        envoy.request("GET", "/api/orders").https().client_cert(
            &dir.join(format!("{name}.crt")),
            &dir.join(format!("{name}.key")),
        )
    };
    // Each way of recognising a certificate, over HTTP/1.1 and HTTP/2; forged identity headers
    // are replaced by the certificate's.
    for (cert, client, key_id) in [
        ("checkout", "checkout", "mtls-uri-san"),
        ("billing", "billing", "mtls-dns-san"),
        ("batch", "batch", "mtls-sha256"),
    ] {
        up.clear();
        let r = with(cert).header("x-api-guard-client-id", "admin").send();
        assert_eq!(r.status, 200, "{cert}: {}", r.text());
        let r = with(cert).http2().send();
        assert_eq!(r.status, 200, "{cert} over h2: {}", r.text());
        let seen = up.requests();
        assert_eq!(seen.len(), 2);
        for request in seen {
            assert_eq!(
                request.header("x-api-guard-client-id").as_deref(),
                Some(client)
            );
            assert_eq!(
                request.header("x-api-guard-key-id").as_deref(),
                Some(key_id)
            );
            assert_eq!(request.header_count("x-api-guard-client-id"), 1);
        }
    }
    // The limit by client counts per certificate identity: checkout's burst (2) is spent.
    let r = with("checkout").send();
    assert_eq!(r.status, 429, "{}", r.text());
    // A certificate the CA signed but no identity names: refused by api-guard.
    up.clear();
    let r = with("stranger").send();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "client_certificate_forbidden");
    // No certificate, or one from another CA: Envoy refuses the handshake.
    assert!(envoy
        .request("GET", "/api/orders")
        .https()
        .try_send()
        .is_err());
    assert!(with("outsider").try_send().is_err());
    // The plain listener has no client certificate: the policy refuses every request.
    let r = envoy.request("GET", "/api/orders").send();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "client_certificate_required");
    assert!(up.requests().is_empty());
}
