//! The decision as one line for Envoy's access log. The host adapter stores it in the request's
//! filter state under [`FILTER_STATE_KEY`] (one host call per decided request), where
//! `%FILTER_STATE(wasm.api_guard.decision:PLAIN)%` in an access-log format prints it:
//!
//! ```text
//! decision=deny policy=api reason=rate_limited client_id=acme key_id=acme-1 limit=per_second
//! ```
//!
//! Fields are always present, in this order, `-` when empty, separated by one space. Values
//! are names from the configuration (policy, limit), fixed reason codes, and client and key ids;
//! ids an auth service sent are reduced to a safe alphabet here, so a value can never break
//! the line, inject another field or carry a secret the service echoed.

use crate::rejection::Rejection;
use crate::verdict::Admission;

/// The property name the adapter sets (`proxy_set_property`); Envoy files it under
/// `wasm.<name>` in the filter state.
pub const FILTER_STATE_KEY: &str = "api_guard.decision";

/// Longest value kept per field.
const MAX_VALUE: usize = 128;

/// One decision's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord<'a> {
    pub decision: &'static str,
    pub policy: &'a str,
    pub reason: &'static str,
    pub client_id: Option<&'a str>,
    pub key_id: Option<&'a str>,
    /// The rate limit that refused the request.
    pub limit: Option<&'a str>,
}

impl<'a> DecisionRecord<'a> {
    pub fn allowed(policy: &'a str, admission: &'a Admission<'_>) -> DecisionRecord<'a> {
        let key_id = admission.identity.map(|(_, k)| k).or_else(|| {
            admission
                .introspected
                .as_ref()
                .and_then(|i| i.key_id.as_deref())
        });
        DecisionRecord {
            decision: "allow",
            policy,
            reason: "-",
            client_id: admission.client_id(),
            key_id,
            limit: None,
        }
    }

    pub fn denied(policy: &'a str, rejection: &'a Rejection<'_>) -> DecisionRecord<'a> {
        let limit = match rejection {
            Rejection::RateLimited(l) => Some(l.limit),
            _ => None,
        };
        DecisionRecord {
            decision: "deny",
            policy,
            reason: rejection.reason().as_str(),
            client_id: rejection.client_id(),
            key_id: rejection.key_id(),
            limit,
        }
    }

    /// The line stored in the filter state.
    pub fn line(&self) -> String {
        let mut out = String::with_capacity(96);
        let fields = [
            ("decision", Some(self.decision)),
            ("policy", Some(self.policy)),
            ("reason", Some(self.reason)),
            ("client_id", self.client_id),
            ("key_id", self.key_id),
            ("limit", self.limit),
        ];
        for (i, (name, value)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(name);
            out.push('=');
            push_safe(&mut out, value.unwrap_or("-"));
        }
        out
    }
}

/// Appends `value` with every byte outside `[A-Za-z0-9_.:@/-]` replaced by `_`, at most
/// [`MAX_VALUE`] bytes; an empty value is `-`.
fn push_safe(out: &mut String, value: &str) {
    if value.is_empty() {
        out.push('-');
        return;
    }
    for c in value.chars().take(MAX_VALUE) {
        let safe = c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '/' | '-');
        out.push(if safe { c } else { '_' });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::introspection::Introspected;
    use crate::rejection::KeyProblem;
    use crate::rejection::Limited;

    #[test]
    fn line_table() {
        let admitted = Admission {
            identity: Some(("acme", "acme-1")),
            ..Admission::default()
        };
        let limited = Rejection::RateLimited(Limited {
            limit: "per_second",
            quota: 10,
            window_secs: 1,
            retry_after_secs: 1,
            reset_secs: 1,
        });
        let revoked = Rejection::ApiKeyInvalid {
            problem: KeyProblem::Revoked,
            key_id: Some("acme-1"),
        };
        let cases = [
            (
                DecisionRecord::allowed("api", &admitted),
                "decision=allow policy=api reason=- client_id=acme key_id=acme-1 limit=-",
            ),
            (
                DecisionRecord::denied("api", &limited),
                "decision=deny policy=api reason=rate_limited client_id=- key_id=- limit=per_second",
            ),
            (
                DecisionRecord::denied("_none", &Rejection::UnknownPolicy),
                "decision=deny policy=_none reason=unknown_policy client_id=- key_id=- limit=-",
            ),
            (
                DecisionRecord::denied("api", &revoked),
                "decision=deny policy=api reason=api_key_revoked client_id=- key_id=acme-1 limit=-",
            ),
        ];
        for (record, want) in cases {
            assert_eq!(record.line(), want);
        }
    }

    #[test]
    fn ids_from_an_auth_service_cannot_break_the_line() {
        let admitted = Admission {
            introspected: Some(Introspected {
                subject: None,
                client_id: Some("evil client=x\nlimit=y".into()),
                key_id: Some("".into()),
            }),
            ..Admission::default()
        };
        let line = DecisionRecord::allowed("api", &admitted).line();
        assert_eq!(
            line,
            "decision=allow policy=api reason=- client_id=evil_client_x_limit_y key_id=- limit=-"
        );
        let long = "a".repeat(500);
        let admitted = Admission {
            introspected: Some(Introspected {
                subject: None,
                client_id: Some(long),
                key_id: None,
            }),
            ..Admission::default()
        };
        let line = DecisionRecord::allowed("api", &admitted).line();
        assert_eq!(line.split(' ').count(), 6);
        assert!(line.contains(&format!("client_id={} ", "a".repeat(MAX_VALUE))));
    }
}
