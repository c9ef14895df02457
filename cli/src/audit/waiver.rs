//! Waivers: a finding that is understood and accepted is listed with its id, its path and the
//! reason, either in a comment of the audited YAML file itself,
//!
//! ```yaml
//! # api-guard-audit: waive AG080 overload_manager benchmark bootstrap, loopback only
//! ```
//!
//! or in a `--waivers` file, one `<ID> <PATH> <REASON>` per line. `*` as the path waives the id
//! anywhere in the file. A waived finding is still printed (with its reason) but does not count
//! towards the exit status; a waiver that matches nothing is itself reported (AG090), so
//! waivers cannot outlive what they excuse.

use super::checks::{Finding, Severity};

pub const INLINE_MARKER: &str = "api-guard-audit: waive ";

#[derive(Debug, Clone)]
pub struct Waiver {
    pub id: String,
    pub path: String,
    pub reason: String,
    /// The file whose findings it covers (`None`: every file), and where it was written.
    pub applies_to: Option<String>,
    pub written_in: String,
    pub line: usize,
}

/// Parses `<ID> <PATH> <REASON>`.
fn parse_entry(text: &str) -> Result<(String, String, String), String> {
    let mut parts = text.trim().splitn(3, char::is_whitespace);
    let id = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let reason = parts.next().unwrap_or_default().trim();
    if super::checks::check(id).is_none() {
        return Err(format!("unknown check id {id:?}"));
    }
    if path.is_empty() || reason.is_empty() {
        return Err("a waiver is `<ID> <PATH> <REASON>` (use * as PATH for the whole file); the reason is required".to_string());
    }
    Ok((id.to_string(), path.to_string(), reason.to_string()))
}

/// The waivers written in comments of an audited file.
pub fn inline(label: &str, text: &str) -> Result<Vec<Waiver>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(comment) = line.trim_start().strip_prefix('#') else {
            continue;
        };
        let Some(entry) = comment.trim_start().strip_prefix(INLINE_MARKER) else {
            continue;
        };
        let (id, path, reason) =
            parse_entry(entry).map_err(|e| format!("{label}:{}: {e}", i + 1))?;
        out.push(Waiver {
            id,
            path,
            reason,
            applies_to: Some(label.to_string()),
            written_in: label.to_string(),
            line: i + 1,
        });
    }
    Ok(out)
}

/// The waivers of a `--waivers` file: they apply to every input.
pub fn file(label: &str, text: &str) -> Result<Vec<Waiver>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, path, reason) =
            parse_entry(line).map_err(|e| format!("{label}:{}: {e}", i + 1))?;
        out.push(Waiver {
            id,
            path,
            reason,
            applies_to: None,
            written_in: label.to_string(),
            line: i + 1,
        });
    }
    Ok(out)
}

fn covers(w: &Waiver, f: &Finding) -> bool {
    w.id == f.id
        && (w.path == "*" || w.path == f.path)
        && w.applies_to.as_deref().is_none_or(|file| file == f.file)
}

/// Marks the findings the waivers cover, and reports every waiver that covers none.
pub fn apply(findings: &mut Vec<Finding>, waivers: &[Waiver]) {
    let mut used = vec![false; waivers.len()];
    for f in findings.iter_mut() {
        if let Some((i, w)) = waivers.iter().enumerate().find(|(_, w)| covers(w, f)) {
            f.waived = Some(w.reason.clone());
            if let Some(u) = used.get_mut(i) {
                *u = true;
            }
        }
    }
    for (w, used) in waivers.iter().zip(used) {
        if !used {
            findings.push(Finding {
                id: "AG090",
                severity: Severity::Warning,
                file: w.written_in.clone(),
                path: format!("line {}", w.line),
                message: format!("the waiver of {} at {} matches no finding", w.id, w.path),
                fix: "remove the waiver (or correct its id or path)".to_string(),
                waived: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn waiver_lines() {
        let text = "# api-guard-audit: waive AG081 a.b front proxy times out headers\n\
                    key: value # api-guard-audit: waive AG080 * not at the start of a line\n\
                    #api-guard-audit: waive AG080 * benchmark\n";
        let w = inline("f.yaml", text).unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].id.as_str(), w[0].path.as_str()), ("AG081", "a.b"));
        assert_eq!(w[0].reason, "front proxy times out headers");
        assert_eq!((w[0].line, w[1].line), (1, 3));
        assert_eq!(w[1].path, "*");
        for bad in [
            "# api-guard-audit: waive AG081 a.b",
            "# api-guard-audit: waive AG081",
            "# api-guard-audit: waive AG999 a.b reason",
        ] {
            assert!(inline("f.yaml", bad).is_err(), "{bad}");
        }
        let from_file = file(
            "w.txt",
            "# comment\n\nAG070 p.q keyed by a header our CDN sets\n",
        )
        .unwrap();
        assert_eq!(from_file.len(), 1);
        assert_eq!(from_file[0].applies_to, None);
    }

    #[test]
    fn apply_marks_covered_findings_and_reports_unused_waivers() {
        let finding = |id: &'static str, file: &str, path: &str| Finding {
            id,
            severity: Severity::Warning,
            file: file.into(),
            path: path.into(),
            message: String::new(),
            fix: String::new(),
            waived: None,
        };
        let mut findings = vec![
            finding("AG081", "a.yaml", "x"),
            finding("AG081", "b.yaml", "x"),
            finding("AG080", "a.yaml", "overload_manager"),
        ];
        let mut waivers = inline(
            "a.yaml",
            "# api-guard-audit: waive AG081 x reason one\n# api-guard-audit: waive AG070 y stale\n",
        )
        .unwrap();
        waivers.extend(file("w.txt", "AG080 * reason two\n").unwrap());
        apply(&mut findings, &waivers);
        assert_eq!(findings[0].waived.as_deref(), Some("reason one"));
        // An inline waiver covers only its own file.
        assert_eq!(findings[1].waived, None);
        assert_eq!(findings[2].waived.as_deref(), Some("reason two"));
        assert_eq!(findings.len(), 4);
        assert_eq!(findings[3].id, "AG090");
        assert_eq!(
            (findings[3].file.as_str(), findings[3].path.as_str()),
            ("a.yaml", "line 2")
        );
    }
}
