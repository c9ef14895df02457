//! The service configuration: one domain and its limits, each keyed by a descriptor pattern.
//! Parsed and checked once at start; every semantic error is reported with its path.
//!
//! ```yaml
//! domain: api-guard
//! admission: exact        # or "fast" (see Admission)
//! storage_timeout_ms: 100
//! limits:
//!   - name: per_client
//!     descriptor: [{key: client_id}]          # one counter per client id
//!     rate: 6000
//!     per: minute
//!   - name: premium_subject
//!     descriptor: [{key: tier, value: premium}, {key: subject}]
//!     rate: 20000
//!     per: minute
//! ```

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

/// Bounds on what one request may carry; more is refused (INVALID_ARGUMENT), not truncated.
pub const MAX_DESCRIPTORS: usize = 16;
pub const MAX_ENTRIES: usize = 8;
pub const MAX_KEY_BYTES: usize = 128;
pub const MAX_VALUE_BYTES: usize = 512;
const MAX_LIMITS: usize = 1000;
const MAX_NAME_CHARS: usize = 64;

/// How a descriptor is counted in Redis (both are Limitador calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    /// `reserve` (one atomic Lua script: admit only if count + holds + hits <= limit, and hold
    /// the hits) then `commit_reservation`. Never admits more than the limit.
    Exact,
    /// `check_rate_limited_and_update` (read, then increment): one round trip fewer, but
    /// concurrent checks at the boundary can all pass (measured in docs/fleet-rate-limits.md).
    Fast,
}

/// The window of a limit; the names of Envoy's `RateLimitResponse.RateLimit.Unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Second,
    Minute,
    Hour,
    Day,
}

impl Per {
    pub fn seconds(self) -> u64 {
        match self {
            Per::Second => 1,
            Per::Minute => 60,
            Per::Hour => 3600,
            Per::Day => 86_400,
        }
    }
}

/// One entry of a descriptor pattern: the key, and the value if only one value matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryPattern {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    pub name: String,
    pub descriptor: Vec<EntryPattern>,
    pub rate: u32,
    pub per: Per,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub domain: String,
    #[serde(default = "default_admission")]
    pub admission: Admission,
    #[serde(default = "default_storage_timeout_ms")]
    pub storage_timeout_ms: u64,
    pub limits: Vec<LimitSpec>,
}

fn default_admission() -> Admission {
    Admission::Exact
}

fn default_storage_timeout_ms() -> u64 {
    100
}

impl Config {
    /// Parses and checks a YAML configuration; `Err` lists every problem found, one a line.
    pub fn from_yaml(text: &str) -> Result<Config, Vec<String>> {
        let config: Config = serde_yaml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    pub fn storage_timeout(&self) -> Duration {
        Duration::from_millis(self.storage_timeout_ms)
    }

    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.domain.is_empty() || self.domain.len() > MAX_KEY_BYTES {
            out.push(format!("domain: 1-{MAX_KEY_BYTES} bytes"));
        }
        if !(1..=10_000).contains(&self.storage_timeout_ms) {
            out.push("storage_timeout_ms: 1-10000".into());
        }
        if self.limits.is_empty() || self.limits.len() > MAX_LIMITS {
            out.push(format!("limits: 1-{MAX_LIMITS} limits"));
        }
        let mut names = HashSet::new();
        let mut patterns = HashSet::new();
        for (i, limit) in self.limits.iter().enumerate() {
            let at = format!("limits[{i}]");
            if !valid_name(&limit.name) {
                out.push(format!(
                    "{at}.name: 1-{MAX_NAME_CHARS} characters of [A-Za-z0-9_-]"
                ));
            } else if !names.insert(limit.name.as_str()) {
                out.push(format!("{at}.name: {:?} is used twice", limit.name));
            }
            if limit.rate == 0 {
                out.push(format!("{at}.rate: at least 1"));
            }
            if limit.descriptor.is_empty() || limit.descriptor.len() > MAX_ENTRIES {
                out.push(format!("{at}.descriptor: 1-{MAX_ENTRIES} entries"));
            }
            for (j, entry) in limit.descriptor.iter().enumerate() {
                if entry.key.is_empty() || entry.key.len() > MAX_KEY_BYTES {
                    out.push(format!("{at}.descriptor[{j}].key: 1-{MAX_KEY_BYTES} bytes"));
                }
                if let Some(value) = &entry.value {
                    if value.is_empty() || value.len() > MAX_VALUE_BYTES {
                        out.push(format!(
                            "{at}.descriptor[{j}].value: 1-{MAX_VALUE_BYTES} bytes (omit it to count each value apart)"
                        ));
                    }
                }
            }
            if !patterns.insert(&limit.descriptor) {
                out.push(format!(
                    "{at}.descriptor: the same pattern as an earlier limit (which one would count?)"
                ));
            }
        }
        out
    }
}

fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "
domain: api-guard
limits:
  - name: per_client
    descriptor: [{key: client_id}]
    rate: 10
    per: minute
  - name: premium
    descriptor: [{key: tier, value: premium}, {key: subject}]
    rate: 20
    per: hour
";

    #[test]
    fn reads_a_config_with_defaults() {
        let c = Config::from_yaml(GOOD).unwrap();
        assert_eq!(c.domain, "api-guard");
        assert_eq!(c.admission, Admission::Exact);
        assert_eq!(c.storage_timeout(), Duration::from_millis(100));
        assert_eq!(c.limits.len(), 2);
        assert_eq!(c.limits[1].descriptor[0].value.as_deref(), Some("premium"));
        assert_eq!(c.limits[1].per.seconds(), 3600);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let bad = "
domain: ''
storage_timeout_ms: 0
limits:
  - name: 'a b'
    descriptor: []
    rate: 0
    per: minute
  - name: dup
    descriptor: [{key: '', value: ''}]
    rate: 1
    per: second
  - name: dup
    descriptor: [{key: '', value: ''}]
    rate: 1
    per: second
";
        let problems = Config::from_yaml(bad).unwrap_err();
        let expected = [
            "domain: 1-128 bytes",
            "storage_timeout_ms: 1-10000",
            "limits[0].name: 1-64 characters of [A-Za-z0-9_-]",
            "limits[0].rate: at least 1",
            "limits[0].descriptor: 1-8 entries",
            "limits[1].descriptor[0].key: 1-128 bytes",
            "limits[1].descriptor[0].value: 1-512 bytes (omit it to count each value apart)",
            "limits[2].name: \"dup\" is used twice",
            "limits[2].descriptor[0].key: 1-128 bytes",
            "limits[2].descriptor[0].value: 1-512 bytes (omit it to count each value apart)",
            "limits[2].descriptor: the same pattern as an earlier limit (which one would count?)",
        ];
        assert_eq!(problems, expected);
    }

    #[test]
    fn structural_errors_name_the_field() {
        for (yaml, needle) in [
            ("domain: d\nlimits: []\nextra: 1", "unknown field `extra`"),
            (
                "domain: d\nlimits: [{name: a, descriptor: [{key: k}], rate: 1, per: week}]",
                "unknown variant `week`",
            ),
            (
                "domain: d\nlimits: [{name: a, descriptor: [{key: k}], rate: -1, per: hour}]",
                "limits[0].rate: invalid type",
            ),
            (
                "domain: d\nadmission: maybe\nlimits: []",
                "unknown variant `maybe`",
            ),
            ("limits: []", "missing field `domain`"),
        ] {
            let problems = Config::from_yaml(yaml).unwrap_err();
            assert!(problems[0].contains(needle), "{yaml}: {problems:?}");
        }
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../example.yaml");
        let c = Config::from_yaml(text).unwrap();
        assert_eq!(c.domain, "api-guard");
        assert_eq!(c.limits.len(), 2);
    }

    #[test]
    fn empty_limits_are_refused() {
        assert_eq!(
            Config::from_yaml("domain: d\nlimits: []").unwrap_err(),
            vec!["limits: 1-1000 limits".to_string()]
        );
    }
}
