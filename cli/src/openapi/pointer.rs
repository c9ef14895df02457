//! JSON pointers (RFC 6901) and `$ref` fragments (RFC 3986 percent-encoding on top).

/// Escapes one reference token: `~` -> `~0`, `/` -> `~1`.
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// `base` + `/` + the escaped token.
pub fn push(base: &str, token: &str) -> String {
    format!("{base}/{}", escape(token))
}

/// Percent-decodes a `$ref` fragment (`Foo%20Bar` -> `Foo Bar`); `None` if malformed.
pub fn decode_fragment(fragment: &str) -> Option<String> {
    let bytes = fragment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = fragment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_escapes() {
        let cases = [
            ("", "paths", "/paths"),
            ("/paths", "/pets/{id}", "/paths/~1pets~1{id}"),
            ("/a", "x~y", "/a/x~0y"),
        ];
        for (base, token, expected) in cases {
            assert_eq!(push(base, token), expected);
        }
    }

    #[test]
    fn decode_table() {
        let cases = [
            ("Pet", Some("Pet")),
            ("Foo%20Bar", Some("Foo Bar")),
            ("caf%C3%A9", Some("café")),
            // Failing edges: truncated escape, non-hex, invalid UTF-8.
            ("bad%2", None),
            ("bad%zz", None),
            ("%ff", None),
        ];
        for (input, expected) in cases {
            assert_eq!(decode_fragment(input).as_deref(), expected, "{input}");
        }
    }
}
