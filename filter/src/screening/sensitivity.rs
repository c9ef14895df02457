//! How eagerly the detectors report, in its own module: the detectors (`sqli`, `xss`,
//! `traversal`, `cmdi`) read it, and `screening/mod.rs` above them runs the detectors.

/// How eagerly the detectors report: `low` keeps only the surest signatures, `high` also
/// reports weak signals (and has false positives on ordinary text). Default `medium`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sensitivity {
    Low,
    Medium,
    High,
}

impl Sensitivity {
    pub const ALL: [Sensitivity; 3] = [Sensitivity::Low, Sensitivity::Medium, Sensitivity::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Low => "low",
            Sensitivity::Medium => "medium",
            Sensitivity::High => "high",
        }
    }
}
