//! What an opaque access token of the configured auth service can look like
//! (`introspection.token_shape`). A presented token outside the shape cannot be a credential of
//! that service, so it is refused without a callout (an attacker's random strings of the wrong
//! length or alphabet cost nothing). The shape is the operator's knowledge of their issuer:
//! length bounds, optional required prefixes, and optionally RFC 6750's `b64token` alphabet
//! (visible ASCII is always required).

/// The compiled shape. The default admits 1 to 4096 bytes of visible ASCII.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenShape {
    pub min_length: usize,
    pub max_length: usize,
    /// The token starts with one of these (empty: any).
    pub prefixes: Vec<String>,
    /// Only RFC 6750 `b64token` characters.
    pub b64token: bool,
}

impl Default for TokenShape {
    fn default() -> Self {
        TokenShape {
            min_length: 1,
            max_length: 4096,
            prefixes: Vec::new(),
            b64token: false,
        }
    }
}

/// RFC 6750 section 2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

impl TokenShape {
    /// Whether `token` could be one of the service's tokens.
    pub fn admits(&self, token: &str) -> bool {
        (self.min_length..=self.max_length).contains(&token.len())
            && token.bytes().all(|c| (0x21..=0x7e).contains(&c))
            && (!self.b64token || is_b64token(token))
            && (self.prefixes.is_empty()
                || self.prefixes.iter().any(|p| token.starts_with(p.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_table() {
        let def = TokenShape {
            b64token: true,
            ..TokenShape::default()
        };
        let visible = TokenShape::default();
        let strict = TokenShape {
            min_length: 24,
            max_length: 64,
            prefixes: vec!["at_".into(), "svc_".into()],
            b64token: true,
        };
        let cases: &[(&TokenShape, &str, bool)] = &[
            (&visible, "a=b!$", true),
            (&visible, "a b", false),
            (&visible, "", false),
            (&def, "abc", true),
            (&def, "a.b-c_d~e+f/g==", true),
            (&def, "", false),
            (&def, "==", false),
            (&def, "a=b", false),
            (&def, "a b", false),
            (&def, "a%20b", false),
            (&def, "caf\u{e9}", false),
            (&def, &"a".repeat(4096), true),
            (&def, &"a".repeat(4097), false),
            (&strict, "at_0123456789abcdefghijkl", true),
            (&strict, "svc_0123456789abcdefghijk", true),
            (&strict, "xx_0123456789abcdefghijkl", false),
            (&strict, "at_short", false),
            (&strict, &format!("at_{}", "a".repeat(62)), false),
        ];
        for (shape, token, want) in cases {
            assert_eq!(shape.admits(token), *want, "{token:?}");
        }
    }

    proptest::proptest! {
        /// Nothing outside the alphabet or the bounds is ever admitted.
        #[test]
        fn admitted_tokens_fit_the_shape(t in "\\PC{0,80}", min in 0usize..20, extra in 0usize..60) {
            let shape = TokenShape { min_length: min, max_length: min + extra, prefixes: vec![], b64token: false };
            if shape.admits(&t) {
                proptest::prop_assert!(t.len() >= min && t.len() <= min + extra);
                proptest::prop_assert!(t.is_ascii() && !t.contains(' '));
            }
        }
    }
}
