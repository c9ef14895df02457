//! The key-id prefix of a presented API key: the key of a lockout that counts failures per key
//! id (`abuse::lockout`) wherever they come from. Here, below both, because [`super::KeySource`]
//! names it and the lockouts read it.

use crate::request::RequestView;

/// Longest key-id prefix counted as one: a longer one is not a prefix of the scheme (and the
/// lockout must not hash a key's secret part).
pub const MAX_KEY_ID_PREFIX_BYTES: usize = 64;

/// Where the key-id part of a presented API key ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixRule {
    /// The bytes before the first `separator` (`kid_3f9a.s3cr3t` with `.`).
    Separator(u8),
    /// The first `n` bytes (keys of a fixed-length id followed by the secret).
    Length(usize),
}

impl PrefixRule {
    /// The key-id prefix of `key`, or `None` when the key does not follow the scheme (no
    /// separator, an empty or too long id, shorter than the id length).
    pub fn of<'k>(&self, key: &'k [u8]) -> Option<&'k [u8]> {
        let prefix = match *self {
            PrefixRule::Separator(sep) => key.get(..key.iter().position(|&b| b == sep)?)?,
            // The id must leave a secret after it.
            PrefixRule::Length(n) if key.len() > n => key.get(..n)?,
            PrefixRule::Length(_) => return None,
        };
        (!prefix.is_empty() && prefix.len() <= MAX_KEY_ID_PREFIX_BYTES).then_some(prefix)
    }
}

/// A lockout key: the key-id prefix of the API key a request presents in the header the
/// policy's `api_key` check reads (`key: {"key_prefix": ...}`, `counts: failed_auth` only; the
/// compiler refuses it for a check that also reads a query parameter, which would let a guesser
/// send the key where the lockout does not look).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIdPrefix {
    /// Lowercase header name of the policy's `api_key` check.
    pub header: String,
    pub rule: PrefixRule,
}

impl KeyIdPrefix {
    /// The key-id prefix of the API key `request` presents. `None` when it presents none, or a
    /// key outside the scheme: such a request is not this lockout's to count or refuse (a key
    /// outside the scheme cannot be a configured key when every key follows it, and a shared
    /// bucket for them would lock out a configured key that does not; the address lockouts
    /// still count it).
    pub fn presented<'r>(&self, request: &RequestView<'r>) -> Option<&'r [u8]> {
        self.rule.of(request.header(&self.header)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_prefix_table() {
        let dot = PrefixRule::Separator(b'.');
        let eight = PrefixRule::Length(8);
        let long = format!("{}.secret", "k".repeat(MAX_KEY_ID_PREFIX_BYTES));
        let too_long = format!("{}.secret", "k".repeat(MAX_KEY_ID_PREFIX_BYTES + 1));
        let cases: &[(PrefixRule, &str, Option<&str>)] = &[
            (dot, "kid_3f9a.s3cr3t", Some("kid_3f9a")),
            // The first separator ends the id: a secret may contain more.
            (dot, "kid.a.b", Some("kid")),
            (dot, "kid.", Some("kid")),
            (dot, ".secret", None),
            (dot, "no-separator", None),
            (dot, "", None),
            (dot, &long, Some(&long[..MAX_KEY_ID_PREFIX_BYTES])),
            (dot, &too_long, None),
            (eight, "ak_12345secret", Some("ak_12345")),
            (eight, "ak_123456", Some("ak_12345")),
            // Nothing left for a secret: not a key of the scheme.
            (eight, "ak_12345", None),
            (eight, "short", None),
        ];
        for (rule, key, want) in cases {
            assert_eq!(
                rule.of(key.as_bytes()),
                want.map(str::as_bytes),
                "{rule:?} {key:?}"
            );
        }
    }

    proptest::proptest! {
        /// A prefix never contains the separator, never exceeds the bound, and is a prefix.
        #[test]
        fn a_prefix_is_a_bounded_head_of_the_key(key in proptest::collection::vec(proptest::num::u8::ANY, 0..100), n in 1usize..70) {
            for rule in [PrefixRule::Separator(b'.'), PrefixRule::Length(n)] {
                if let Some(p) = rule.of(&key) {
                    proptest::prop_assert!(key.starts_with(p) && p.len() < key.len());
                    proptest::prop_assert!(!p.is_empty() && p.len() <= MAX_KEY_ID_PREFIX_BYTES);
                    if let PrefixRule::Separator(sep) = rule {
                        proptest::prop_assert!(!p.contains(&sep));
                    }
                }
            }
        }
    }
}
