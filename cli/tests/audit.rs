//! `api-guard audit`: every check flags its mistake (one bad configuration per finding in
//! `tests/audit/bad/`, each naming the id and path it must produce), good configurations come
//! out clean, and so does every shipped configuration in `envoy/`.

// Test helpers (not #[test] functions themselves) may unwrap and panic too: a failure is the test failing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `api-guard audit` from the workspace root (the corpus names paths relative to it).
fn audit(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_api-guard"))
        .arg("audit")
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The JSON report, with its exit status.
fn audit_json(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let (code, stdout, stderr) = audit(&all);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {stdout}\n{stderr}"));
    (code, report)
}

/// `(id, path)` of every finding that is not waived.
fn unwaived(report: &Value) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["waived"].is_null())
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    out.sort();
    out
}

fn relative(p: &Path) -> String {
    p.strip_prefix(root())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Every check id, from `audit --list`.
fn catalog() -> Vec<String> {
    let (code, stdout, _) = audit(&["--list"]);
    assert_eq!(code, Some(0));
    stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn every_bad_config_yields_exactly_its_finding() {
    let bad = yaml_files(&root().join("cli/tests/audit/bad"));
    assert!(bad.len() >= 20, "{bad:?}");
    let mut covered = BTreeSet::new();
    for file in bad {
        let text = std::fs::read_to_string(&file).unwrap();
        let header = |key: &str| -> Vec<String> {
            text.lines()
                .filter_map(|l| l.strip_prefix(key))
                .map(str::to_string)
                .collect()
        };
        let expected: BTreeSet<(String, String)> = header("# expect: ")
            .iter()
            .map(|e| {
                let (id, path) = e.split_once(' ').unwrap_or((e, ""));
                (id.to_string(), path.to_string())
            })
            .collect();
        assert!(
            !expected.is_empty(),
            "{}: no `# expect:` line",
            file.display()
        );
        let rel = relative(&file);
        let mut args = vec![rel.as_str(), "--fail-on", "info"];
        let extra = header("# args: ");
        args.extend(extra.iter().flat_map(|a| a.split_whitespace()));
        let (code, report) = audit_json(&args);
        assert_eq!(unwaived(&report), expected, "{rel}:\n{report:#}");
        // The exit status is the worst severity: 5 error, 4 warning, 3 info.
        let worst = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| match f["severity"].as_str().unwrap() {
                "error" => 5,
                "warning" => 4,
                _ => 3,
            })
            .max()
            .unwrap();
        assert_eq!(code, Some(worst), "{rel}");
        assert_eq!(report["exit_status"], worst, "{rel}");
        for f in report["findings"].as_array().unwrap() {
            assert_eq!(f["file"], rel.as_str(), "{rel}");
            assert!(!f["fix"].as_str().unwrap().is_empty(), "{rel}: {f}");
            assert!(!f["name"].as_str().unwrap().is_empty(), "{rel}: {f}");
        }
        covered.extend(expected.into_iter().map(|(id, _)| id));
    }
    // One bad configuration at least for every check of the catalog.
    let all: BTreeSet<String> = catalog().into_iter().collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "checks without a bad configuration: {missing:?}"
    );
}

#[test]
fn good_configs_are_clean() {
    for file in [
        "cli/tests/audit/good/edge.yaml",
        "cli/tests/audit/good/edge.json",
    ] {
        let (code, report) = audit_json(&[file, "--fail-on", "info"]);
        assert_eq!(code, Some(0), "{file}: {report:#}");
        assert_eq!(report["findings"], serde_json::json!([]), "{file}");
    }
}

#[test]
fn a_waived_finding_is_listed_with_its_reason_and_does_not_fail() {
    let file = "cli/tests/audit/good/waived.yaml";
    let (code, report) = audit_json(&[file]);
    assert_eq!(code, Some(0), "{report:#}");
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report:#}");
    assert_eq!(findings[0]["id"], "AG081");
    assert_eq!(
        findings[0]["waived"],
        "a front proxy enforces a 5 s header timeout on every connection"
    );
    assert_eq!(report["counts"]["waived"], 1);
    // The same finding without the waiver fails.
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let stripped: String = text
        .lines()
        .filter(|l| !l.contains("api-guard-audit: waive"))
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = std::env::temp_dir().join(format!("api-guard-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("unwaived.yaml");
    std::fs::write(&copy, stripped).unwrap();
    let (code, report) = audit_json(&[copy.to_str().unwrap()]);
    assert_eq!(code, Some(4), "{report:#}");
    // And a waivers file does the same as the inline comment.
    let waivers = dir.join("waivers.txt");
    std::fs::write(
        &waivers,
        "# id path reason\nAG081 static_resources.listeners[0].filter_chains[0].filters[0].typed_config.request_headers_timeout front proxy\n",
    )
    .unwrap();
    let (code, report) = audit_json(&[
        copy.to_str().unwrap(),
        "--waivers",
        waivers.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{report:#}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lds_and_rds_files_are_audited_as_one_configuration() {
    let dir = "cli/tests/audit/good/xds";
    let (code, report) = audit_json(&[
        &format!("{dir}/bootstrap.yaml"),
        &format!("{dir}/lds.yaml"),
        &format!("{dir}/rds.yaml"),
        "--fail-on",
        "info",
    ]);
    assert_eq!(code, Some(0), "{report:#}");
    // Without the RDS file the routes cannot be audited, and the audit says so.
    let (code, report) = audit_json(&[&format!("{dir}/lds.yaml"), "--fail-on", "info"]);
    assert_eq!(code, Some(3), "{report:#}");
    assert_eq!(
        unwaived(&report),
        BTreeSet::from([(
            "AG091".to_string(),
            "resources[0].filter_chains[0].filters[0].typed_config".to_string()
        )])
    );
    // A finding in the RDS file names that file.
    let bad = "cli/tests/audit/bad/xds/rds-unknown-policy.yaml";
    let (code, report) = audit_json(&[&format!("{dir}/lds.yaml"), bad]);
    assert_eq!(code, Some(5), "{report:#}");
    let f = &report["findings"][0];
    assert_eq!(f["id"], "AG051");
    assert_eq!(f["file"], bad);
    assert_eq!(
        f["path"],
        "resources[0].virtual_hosts[0].routes[0].metadata.filter_metadata.api_guard.policy"
    );
}

#[test]
fn policy_option_audits_a_separate_plugin_configuration() {
    let (code, report) = audit_json(&[
        "cli/tests/audit/good/edge.yaml",
        "--policy",
        "cli/tests/fixtures/bad-config.json",
    ]);
    assert_eq!(code, Some(5), "{report:#}");
    let paths: BTreeSet<(String, String)> = unwaived(&report);
    assert!(
        paths.contains(&("AG000".to_string(), "policies.api.ip.allow[0]".to_string())),
        "{report:#}"
    );
    for f in report["findings"].as_array().unwrap() {
        assert_eq!(f["file"], "cli/tests/fixtures/bad-config.json");
    }
}

#[test]
fn text_report_names_id_path_and_fix() {
    let (code, stdout, _) = audit(&["cli/tests/audit/bad/ag030-fail-open.yaml"]);
    assert_eq!(code, Some(5));
    assert!(
        stdout.contains("error   AG030 fail-open cli/tests/audit/bad/ag030-fail-open.yaml: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.failure_policy"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: set failure_policy: FAIL_RELOAD"),
        "{stdout}"
    );
    assert!(stdout.contains("1 error(s), 0 warning(s)"), "{stdout}");
}

#[test]
fn fail_on_sets_the_lowest_failing_severity() {
    let warning_only = "cli/tests/audit/bad/ag081-no-header-timeout.yaml";
    assert_eq!(audit(&[warning_only]).0, Some(4));
    assert_eq!(audit(&[warning_only, "--fail-on", "error"]).0, Some(0));
    let info_only = "cli/tests/audit/bad/ag031-fail-closed-until-restart.yaml";
    assert_eq!(audit(&[info_only]).0, Some(0));
    assert_eq!(audit(&[info_only, "--fail-on", "info"]).0, Some(3));
}

#[test]
fn usage_and_unreadable_input() {
    for args in [
        vec![],
        vec!["--format", "xml", "envoy/envoy.yaml"],
        vec!["--fail-on", "fatal", "envoy/envoy.yaml"],
        vec!["--bogus", "envoy/envoy.yaml"],
    ] {
        let (code, _, stderr) = audit(&args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(stderr.contains("api-guard help"), "{stderr}");
    }
    let (code, _, stderr) = audit(&["/nonexistent/envoy.yaml"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot read"), "{stderr}");
    let (code, _, stderr) = audit(&["cli/tests/fixtures/petstore.yaml-missing"]);
    assert_eq!(code, Some(2), "{stderr}");
    // A waiver without a reason is refused, not silently applied.
    let dir = std::env::temp_dir().join(format!("api-guard-audit-w-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("noreason.yaml");
    let text = std::fs::read_to_string(root().join("cli/tests/audit/good/edge.yaml")).unwrap();
    std::fs::write(&file, format!("# api-guard-audit: waive AG081 *\n{text}")).unwrap();
    let (code, _, stderr) = audit(&[file.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("the reason is required"), "{stderr}");
    std::fs::write(
        &file,
        format!("# api-guard-audit: waive AG999 * why\n{text}"),
    )
    .unwrap();
    let (code, _, stderr) = audit(&[file.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("unknown check id"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The shipped configurations pass (`make test` runs the same audit through the Makefile).
#[test]
fn every_shipped_envoy_config_passes() {
    let mut files = yaml_files(&root().join("envoy"));
    files.extend(yaml_files(&root().join("envoy/bench")));
    assert!(files.iter().any(|f| f.ends_with("envoy/envoy.yaml")));
    for file in files {
        let rel = relative(&file);
        let (code, report) = audit_json(&[&rel]);
        assert_eq!(code, Some(0), "{rel}:\n{report:#}");
    }
}

#[test]
fn every_check_is_documented() {
    let doc = std::fs::read_to_string(root().join("docs/audit.md")).unwrap();
    for id in catalog() {
        assert!(
            doc.contains(&format!("`{id}`")),
            "docs/audit.md does not describe {id}"
        );
    }
}
