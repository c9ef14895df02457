//! `api-guard check`: the filter's own compiler, every error with its path.

// Test helpers (not #[test] functions themselves) may unwrap and panic too: a failure is the test failing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

fn run(path: &str) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_api-guard"))
        .args(["check", path])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn valid_configuration() {
    let demo = format!("{}/../policies/demo.json", env!("CARGO_MANIFEST_DIR"));
    let (code, stdout, _) = run(&demo);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("ok, 3 policies: api, internal, public"),
        "{stdout}"
    );
}

#[test]
fn every_error_with_its_path() {
    let bad = format!(
        "{}/tests/fixtures/bad-config.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, stdout, stderr) = run(&bad);
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty());
    for line in [
        "error: unmatched_routes: ",
        "error: policies.api.methods: ",
        "error: policies.api.ip.allow[0]: ",
        "error: policies.bad name!: ",
        "rejected with 4 error(s)",
    ] {
        assert!(stderr.contains(line), "{line}\n{stderr}");
    }
}

#[test]
fn unreadable_and_usage() {
    let (code, _, stderr) = run("/nonexistent/config.json");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot read"));
    let out = Command::new(env!("CARGO_BIN_EXE_api-guard"))
        .args(["check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
