//! `multipart/form-data` bodies (RFC 7578 over RFC 2046) split into their parts, so that body
//! screening sees each field's name, value and file name.
//!
//! Strict on purpose. A body this parser cannot read is refused by the caller rather than let
//! through unscreened: a lenient backend parser that reads it differently is exactly the gap
//! an attacker looks for (ModSecurity's `MULTIPART_STRICT_ERROR` does the same). So:
//! lines end in CRLF; every part has exactly one `Content-Disposition: form-data` with a
//! `name`; a delimiter-like line inside a part, header folding, a transfer encoding other than
//! the identity ones, nested multiparts and a missing close delimiter are all malformed.
//! Parsing borrows from the body; the bounds are the body's own size and [`MAX_PARTS`].

use std::borrow::Cow;

/// More parts than this is malformed (a form with a thousand fields is not a real form).
pub const MAX_PARTS: usize = 1_000;
/// More header lines than this in one part is malformed.
const MAX_PART_HEADERS: usize = 16;
/// RFC 2046: a boundary is 1 to 70 characters.
const MAX_BOUNDARY: usize = 70;

/// The body (or its content type) is not a well-formed `multipart/form-data` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// One part: its field name, its file name when it carries a file, and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'b> {
    pub name: Cow<'b, [u8]>,
    /// `filename` (or `filename*`, kept as sent) of a file part.
    pub filename: Option<Cow<'b, [u8]>>,
    pub content: &'b [u8],
}

/// The `boundary` parameter of a `content-type` value, checked against RFC 2046's grammar.
pub fn boundary(content_type: &[u8]) -> Option<&[u8]> {
    let mut found = None;
    for param in content_type.split(|&b| b == b';').skip(1) {
        let param = param.trim_ascii();
        let Some(eq) = param.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = (param.get(..eq)?, param.get(eq + 1..)?);
        if !key.trim_ascii().eq_ignore_ascii_case(b"boundary") {
            continue;
        }
        if found.is_some() {
            // Two boundaries: which one would the backend take?
            return None;
        }
        let value = value.trim_ascii();
        let value = match value {
            [b'"', inner @ .., b'"'] => inner,
            _ => value,
        };
        found = Some(value);
    }
    let b = found?;
    let valid = (1..=MAX_BOUNDARY).contains(&b.len())
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c))
        && b.last() != Some(&b' ');
    valid.then_some(b)
}

/// Splits `body` into its parts. RFC 2046 allows text before the first and after the last
/// delimiter; no form client sends any, and parsers disagree on it, so only whitespace is
/// accepted there.
pub fn parse<'b>(body: &'b [u8], boundary: &[u8]) -> Result<Vec<Part<'b>>, Malformed> {
    let mut delimiter = Vec::with_capacity(boundary.len() + 4);
    delimiter.extend_from_slice(b"\r\n--");
    delimiter.extend_from_slice(boundary);
    let preamble = body.len() - body.trim_ascii_start().len();
    let first = delimiter.get(2..).ok_or(Malformed)?;
    if !body.get(preamble..).is_some_and(|b| b.starts_with(first)) {
        return Err(Malformed);
    }
    let mut at = preamble + first.len();
    let mut parts = Vec::new();
    loop {
        let rest = body.get(at..).ok_or(Malformed)?;
        if let Some(epilogue) = rest.strip_prefix(b"--") {
            // The close delimiter.
            return if epilogue.trim_ascii().is_empty() {
                Ok(parts)
            } else {
                Err(Malformed)
            };
        }
        // Otherwise the delimiter line ends here: a line that starts like the delimiter but
        // goes on (`--boundaryX`) is read as content by some parsers and as a broken
        // delimiter by others.
        at += line_end_after_padding(rest)?;
        if parts.len() == MAX_PARTS {
            return Err(Malformed);
        }
        let (part, next) = part(body, at, &delimiter)?;
        parts.push(part);
        at = next;
    }
}

/// After a delimiter: optional spaces and tabs, then CRLF; the offset past it.
fn line_end_after_padding(rest: &[u8]) -> Result<usize, Malformed> {
    let pad = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    match rest.get(pad..pad + 2) {
        Some(b"\r\n") => Ok(pad + 2),
        _ => Err(Malformed),
    }
}

/// One part starting at `at` (its header lines); the part and the offset just past the next
/// delimiter.
fn part<'b>(body: &'b [u8], at: usize, delimiter: &[u8]) -> Result<(Part<'b>, usize), Malformed> {
    let mut line_start = at;
    let mut disposition = None;
    let mut headers = 0;
    loop {
        let end = find(body, b"\r\n", line_start).ok_or(Malformed)?;
        let line = body.get(line_start..end).ok_or(Malformed)?;
        line_start = end + 2;
        if line.is_empty() {
            break;
        }
        headers += 1;
        if headers > MAX_PART_HEADERS || matches!(line.first(), Some(b' ' | b'\t')) {
            // Too many, or folded onto the previous line (obsolete, and parsers disagree).
            return Err(Malformed);
        }
        let colon = line.iter().position(|&b| b == b':').ok_or(Malformed)?;
        let (name, value) = (
            line.get(..colon).ok_or(Malformed)?,
            line.get(colon + 1..).ok_or(Malformed)?.trim_ascii(),
        );
        if name.eq_ignore_ascii_case(b"content-disposition") {
            if disposition.is_some() {
                return Err(Malformed);
            }
            disposition = Some(form_data(value)?);
        } else if name.eq_ignore_ascii_case(b"content-transfer-encoding") {
            // RFC 7578 deprecates it; a backend that decodes base64 would see other bytes.
            let identity = [&b"7bit"[..], b"8bit", b"binary"];
            if !identity.iter().any(|e| value.eq_ignore_ascii_case(e)) {
                return Err(Malformed);
            }
        } else if name.eq_ignore_ascii_case(b"content-type") {
            let nested = value
                .get(..10)
                .is_some_and(|t| t.eq_ignore_ascii_case(b"multipart/"));
            if nested {
                return Err(Malformed);
            }
        }
    }
    let (name, filename) = disposition.ok_or(Malformed)?;
    let end = find(body, delimiter, line_start).ok_or(Malformed)?;
    let content = body.get(line_start..end).ok_or(Malformed)?;
    let after = end + delimiter.len();
    Ok((
        Part {
            name,
            filename,
            content,
        },
        after,
    ))
}

type Disposition<'b> = (Cow<'b, [u8]>, Option<Cow<'b, [u8]>>);

/// `form-data; name="..."[; filename="..."]`: the name and the file name. Parameters other
/// than these are ignored; a repeated one is malformed.
fn form_data(value: &[u8]) -> Result<Disposition<'_>, Malformed> {
    let semi = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    if !value
        .get(..semi)
        .ok_or(Malformed)?
        .trim_ascii()
        .eq_ignore_ascii_case(b"form-data")
    {
        return Err(Malformed);
    }
    let mut rest = value.get(semi..).ok_or(Malformed)?;
    let (mut name, mut filename) = (None, None);
    while let Some(after_semi) = rest.strip_prefix(b";") {
        let after_semi = after_semi.trim_ascii_start();
        let eq = after_semi
            .iter()
            .position(|&b| b == b'=')
            .ok_or(Malformed)?;
        let key = after_semi.get(..eq).ok_or(Malformed)?.trim_ascii_end();
        let (v, next) = param_value(
            after_semi
                .get(eq + 1..)
                .ok_or(Malformed)?
                .trim_ascii_start(),
        )?;
        let slot = if key.eq_ignore_ascii_case(b"name") {
            &mut name
        } else if key.eq_ignore_ascii_case(b"filename") || key.eq_ignore_ascii_case(b"filename*") {
            &mut filename
        } else {
            rest = next.trim_ascii_start();
            continue;
        };
        if slot.replace(v).is_some() {
            return Err(Malformed);
        }
        rest = next.trim_ascii_start();
    }
    if !rest.is_empty() {
        return Err(Malformed);
    }
    Ok((name.ok_or(Malformed)?, filename))
}

/// A parameter value, quoted (backslash escapes undone) or a bare token; the value and what
/// follows it.
fn param_value(s: &[u8]) -> Result<(Cow<'_, [u8]>, &[u8]), Malformed> {
    let Some(quoted) = s.strip_prefix(b"\"") else {
        let end = s.iter().position(|&b| b == b';').unwrap_or(s.len());
        let token = s.get(..end).ok_or(Malformed)?.trim_ascii_end();
        return Ok((Cow::Borrowed(token), s.get(end..).ok_or(Malformed)?));
    };
    let mut owned: Option<Vec<u8>> = None;
    let mut i = 0;
    while let Some(&b) = quoted.get(i) {
        match b {
            b'"' => {
                let value = match owned {
                    Some(v) => Cow::Owned(v),
                    None => Cow::Borrowed(quoted.get(..i).ok_or(Malformed)?),
                };
                return Ok((value, quoted.get(i + 1..).ok_or(Malformed)?));
            }
            b'\\' => {
                let escaped = *quoted.get(i + 1).ok_or(Malformed)?;
                owned
                    .get_or_insert_with(|| quoted.get(..i).unwrap_or_default().to_vec())
                    .push(escaped);
                i += 2;
            }
            _ => {
                if let Some(v) = owned.as_mut() {
                    v.push(b);
                }
                i += 1;
            }
        }
    }
    Err(Malformed)
}

/// The first `needle` in `hay` at or after `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while let Some(rest) = hay.get(i..) {
        let p = rest.iter().position(|&b| b == first)?;
        if rest.get(p..p + needle.len()) == Some(needle) {
            return Some(i + p);
        }
        i += p + 1;
    }
    None
}

#[cfg(test)]
mod tests;
