//! A bounded, linear reader of XML bodies (`application/xml`, `text/xml`, `+xml`) for
//! screening: it hands over every text node, CDATA section, attribute value and processing
//! instruction, entity references undone, with the element path it sits at.
//!
//! It reads one well-formed document in a strict subset of XML 1.0 and refuses the rest as
//! [`Malformed`] (400 `malformed_xml` in `block` mode), because what it could not read would
//! reach a backend parser unscreened:
//! - a `<!DOCTYPE` (entity definitions, external entities: what an XML parser would expand
//!   cannot be screened here, and XXE is refused with it);
//! - entity references other than `&lt;` `&gt;` `&amp;` `&quot;` `&apos;` and numeric ones;
//! - unclosed or mismatched tags, a second root element, text outside the root, `<` in an
//!   attribute value, an attribute without a quoted value, a repeated attribute name;
//! - nesting deeper than [`MAX_DEPTH`], or more than [`MAX_ATTRIBUTES`] attributes on one
//!   element.
//!
//! A UTF-8 byte order mark and the XML declaration are accepted; comments are skipped (data
//! is not in them). Every byte is looked at a bounded number of times: linear in the body.

use std::borrow::Cow;

/// The body is not one document this reader can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Deepest element nesting read.
pub const MAX_DEPTH: usize = 256;

/// Most attributes on one element.
pub const MAX_ATTRIBUTES: usize = 64;

/// What a value is, for its location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node<'a> {
    /// Text or CDATA content of the element at the path.
    Text,
    /// The value of attribute `name` of the element at the path.
    Attribute(&'a [u8]),
    /// A processing instruction's content (`<?target ...?>`), at the path.
    Instruction,
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80
}

fn is_name(b: u8) -> bool {
    is_name_start(b) || b.is_ascii_digit() || b == b'-' || b == b'.'
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn skip_space(s: &[u8], mut i: usize) -> usize {
    while s.get(i).copied().is_some_and(is_space) {
        i += 1;
    }
    i
}

fn name_at(s: &[u8], i: usize) -> Option<(&[u8], usize)> {
    if !s.get(i).copied().is_some_and(is_name_start) {
        return None;
    }
    let n = s.get(i..)?.iter().take_while(|&&b| is_name(b)).count();
    Some((s.get(i..i + n)?, i + n))
}

fn find(s: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    s.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|p| from + p)
}

/// `raw` with its entity references undone; `Malformed` on an unknown or broken one.
pub fn unescape(raw: &[u8]) -> Result<Cow<'_, [u8]>, Malformed> {
    if !raw.contains(&b'&') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b != b'&' {
            out.push(b);
            i += 1;
            continue;
        }
        let end = raw
            .get(i + 1..)
            .and_then(|t| t.iter().take(12).position(|&c| c == b';'))
            .ok_or(Malformed)?;
        let name = raw.get(i + 1..i + 1 + end).ok_or(Malformed)?;
        match name {
            b"lt" => out.push(b'<'),
            b"gt" => out.push(b'>'),
            b"amp" => out.push(b'&'),
            b"quot" => out.push(b'"'),
            b"apos" => out.push(b'\''),
            [b'#', b'x' | b'X', hex @ ..] => push_char(&mut out, hex, 16)?,
            [b'#', dec @ ..] => push_char(&mut out, dec, 10)?,
            _ => return Err(Malformed),
        }
        i += end + 2;
    }
    Ok(Cow::Owned(out))
}

fn push_char(out: &mut Vec<u8>, digits: &[u8], radix: u32) -> Result<(), Malformed> {
    if digits.is_empty() {
        return Err(Malformed);
    }
    let text = std::str::from_utf8(digits).map_err(|_| Malformed)?;
    let cp = u32::from_str_radix(text, radix).map_err(|_| Malformed)?;
    let c = char::from_u32(cp).ok_or(Malformed)?;
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    Ok(())
}

/// Reads `body`, calling `visit(path, node, value)` for every value in document order until
/// it returns `Some`. `path` holds the names of the open elements, outermost first.
pub fn read<'a, T>(
    body: &'a [u8],
    mut visit: impl FnMut(&[&'a [u8]], Node<'a>, &[u8]) -> Option<T>,
) -> Result<Option<T>, Malformed> {
    let mut s = body;
    if let Some(rest) = s.strip_prefix(b"\xef\xbb\xbf") {
        s = rest;
    }
    let mut stack: Vec<&'a [u8]> = Vec::new();
    let mut roots = 0;
    let mut i = 0;
    while i < s.len() {
        let Some(&b) = s.get(i) else { break };
        if b != b'<' {
            // Text up to the next tag: only inside the root element.
            let end = s
                .get(i..)
                .and_then(|t| t.iter().position(|&c| c == b'<'))
                .map_or(s.len(), |p| i + p);
            let text = s.get(i..end).ok_or(Malformed)?;
            if stack.is_empty() {
                if !text.iter().all(|&c| is_space(c)) {
                    return Err(Malformed);
                }
            } else if !text.iter().all(|&c| is_space(c)) {
                if find(text, 0, b"]]>").is_some() {
                    return Err(Malformed);
                }
                let value = unescape(text)?;
                if let Some(found) = visit(&stack, Node::Text, &value) {
                    return Ok(Some(found));
                }
            }
            i = end;
            continue;
        }
        let rest = s.get(i..).unwrap_or_default();
        if rest.starts_with(b"<!--") {
            let end = find(s, i + 4, b"-->").ok_or(Malformed)?;
            i = end + 3;
        } else if rest.starts_with(b"<![CDATA[") {
            if stack.is_empty() {
                return Err(Malformed);
            }
            let end = find(s, i + 9, b"]]>").ok_or(Malformed)?;
            let value = s.get(i + 9..end).ok_or(Malformed)?;
            if let Some(found) = visit(&stack, Node::Text, value) {
                return Ok(Some(found));
            }
            i = end + 3;
        } else if rest.starts_with(b"<!") {
            // DOCTYPE and every other declaration.
            return Err(Malformed);
        } else if rest.starts_with(b"<?") {
            let end = find(s, i + 2, b"?>").ok_or(Malformed)?;
            let (target, after) = name_at(s, i + 2).ok_or(Malformed)?;
            if !target.eq_ignore_ascii_case(b"xml") {
                let value = s.get(after..end).ok_or(Malformed)?;
                if let Some(found) = visit(&stack, Node::Instruction, value) {
                    return Ok(Some(found));
                }
            } else if i != 0 {
                return Err(Malformed);
            }
            i = end + 2;
        } else if rest.starts_with(b"</") {
            let (name, after) = name_at(s, i + 2).ok_or(Malformed)?;
            let after = skip_space(s, after);
            if s.get(after) != Some(&b'>') || stack.pop() != Some(name) {
                return Err(Malformed);
            }
            i = after + 1;
        } else {
            let (name, mut j) = name_at(s, i + 1).ok_or(Malformed)?;
            if stack.is_empty() {
                roots += 1;
                if roots > 1 {
                    return Err(Malformed);
                }
            }
            if stack.len() >= MAX_DEPTH {
                return Err(Malformed);
            }
            stack.push(name);
            let mut seen: Vec<&[u8]> = Vec::new();
            loop {
                let k = skip_space(s, j);
                match s.get(k) {
                    Some(b'>') => {
                        j = k + 1;
                        break;
                    }
                    Some(b'/') if s.get(k + 1) == Some(&b'>') => {
                        stack.pop();
                        j = k + 2;
                        break;
                    }
                    _ => {}
                }
                if k == j {
                    // Attributes are separated by blanks.
                    return Err(Malformed);
                }
                let (attr, after) = name_at(s, k).ok_or(Malformed)?;
                if seen.contains(&attr) || seen.len() >= MAX_ATTRIBUTES {
                    return Err(Malformed);
                }
                seen.push(attr);
                let eq = skip_space(s, after);
                if s.get(eq) != Some(&b'=') {
                    return Err(Malformed);
                }
                let q = skip_space(s, eq + 1);
                let quote = s.get(q).copied().ok_or(Malformed)?;
                if quote != b'"' && quote != b'\'' {
                    return Err(Malformed);
                }
                let close = s
                    .get(q + 1..)
                    .and_then(|t| t.iter().position(|&c| c == quote))
                    .map(|p| q + 1 + p)
                    .ok_or(Malformed)?;
                let raw = s.get(q + 1..close).ok_or(Malformed)?;
                if raw.contains(&b'<') {
                    return Err(Malformed);
                }
                let value = unescape(raw)?;
                if let Some(found) = visit(&stack, Node::Attribute(attr), &value) {
                    return Ok(Some(found));
                }
                j = close + 1;
            }
            i = j;
        }
    }
    if !stack.is_empty() || roots != 1 {
        return Err(Malformed);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Bodies made of XML's own pieces (tags, attributes, entities, CDATA, comments,
        /// declarations) in any order: the reader never panics, every value it hands over is
        /// at most as long as the body, and paths never pass the depth bound.
        #[test]
        fn reads_any_mix_of_pieces_without_panicking(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "<a>", "</a>", "<b x=\"1\">", "</b>", "<c/>", "<d y='&amp;'/>", "text", " ",
                "&lt;", "&#x41;", "&#65;", "&bogus;", "&", "<![CDATA[", "]]>", "<!--", "-->",
                "<?pi data?>", "<?xml version=\"1.0\"?>", "<!DOCTYPE a>", "\"", "'", "=", ">",
                "<", "/", "\u{feff}", "<e z=\"<\"/>", "<f a=\"1\" a=\"2\"/>",
            ]), 0..40)
        ) {
            let body = pieces.concat();
            let _ = read::<()>(body.as_bytes(), |path, _, value| {
                assert!(path.len() <= MAX_DEPTH);
                assert!(value.len() <= body.len());
                None
            });
        }
    }

    fn values(body: &str) -> Result<Vec<String>, Malformed> {
        let mut out = Vec::new();
        read::<()>(body.as_bytes(), |path, node, value| {
            let path: Vec<String> = path
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let node = match node {
                Node::Text => String::new(),
                Node::Attribute(a) => format!("@{}", String::from_utf8_lossy(a)),
                Node::Instruction => "?".to_string(),
            };
            out.push(format!(
                "/{}{node}={}",
                path.join("/"),
                String::from_utf8_lossy(value)
            ));
            None
        })?;
        Ok(out)
    }

    #[test]
    fn reads_values_table() {
        let cases: &[(&str, &[&str])] = &[
            ("<a>x</a>", &["/a=x"]),
            (
                "<?xml version=\"1.0\"?>\n<order id='7'><item sku=\"A&amp;B\">pen &lt;blue&gt;</item><note><![CDATA[<b>hi</b>]]></note><e/></order>",
                &["/order@id=7", "/order/item@sku=A&B", "/order/item=pen <blue>", "/order/note=<b>hi</b>"],
            ),
            ("\u{feff}<a b = \"1\" c='&#x3c;'>&#65;</a>", &["/a@b=1", "/a@c=<", "/a=A"]),
            ("<a><!-- not data --><?php system('id'); ?></a>", &["/a?= system('id'); "]),
            ("<x:a xmlns:x=\"urn:x\"> <x:b>v</x:b> </x:a>", &["/x:a@xmlns:x=urn:x", "/x:a/x:b=v"]),
        ];
        for (body, want) in cases {
            let want: Vec<String> = want.iter().map(|w| w.to_string()).collect();
            assert_eq!(values(body), Ok(want), "{body}");
        }
    }

    #[test]
    fn refuses_table() {
        for body in [
            "",
            "text",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "x<a/>",
            "<a/>x",
            "<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a>&e;</a>",
            "<a>&e;</a>",
            "<a>&lt</a>",
            "<a b=1/>",
            "<a b=\"<\"/>",
            "<a b=\"1\" b=\"2\"/>",
            "<a b=\"1\"c=\"2\"/>",
            "<a><![CDATA[x</a>",
            "<a><!-- x</a>",
            "<a>&#xffffffff;</a>",
            "<a><?xml version=\"1.0\"?></a>",
            "<1a/>",
        ] {
            assert_eq!(values(body), Err(Malformed), "{body}");
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(values(&deep), Err(Malformed));
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(values(&ok).is_ok());
    }
}
