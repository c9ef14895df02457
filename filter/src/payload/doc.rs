//! A JSON document parsed from a request body, built once and read by both the schema check
//! and the body screening.
//!
//! `serde_json::Value` costs an allocation per string, array and object and a B-tree per
//! object, for a document that lives for one request. A [`Document`] costs a handful: every
//! value is an entry in one arena where the children of a container are contiguous, strings
//! without escapes are ranges of the body, and strings with escapes are decoded into one
//! shared buffer.
//!
//! It reads exactly what `serde_json::from_slice::<Value>` reads, which the schema keywords
//! and the screening walk were written against (property tests compare the two):
//! - well-formedness as serde_json judges it: UTF-8, escapes, surrogate pairs, and nesting up
//!   to [`MAX_NESTING`] levels;
//! - numbers as the same `serde_json::Number`: plain integers are read here, every other
//!   number is handed to serde_json itself, so floats round the same way and a magnitude
//!   beyond `f64` is refused the same way ([`ParseError::NumberOutOfRange`]);
//! - members in name order (bytewise), as `serde_json::Map` iterates them, so the schema and
//!   the screening meet members in the same order and report the same one first;
//! - duplicate member names either refused ([`Duplicates::Refuse`]) or resolved as serde_json
//!   does, the last one wins ([`Duplicates::KeepLast`]), or all kept for screening
//!   ([`Duplicates::KeepAll`]).

use super::scan::{JsonLimits, MAX_DEPTH_CAP};
use serde_json::{Number, Value};
use std::cmp::Ordering;
use std::fmt;

/// Deepest nesting parsed: serde_json's limit (127 levels parse, the 128th is refused).
pub const MAX_NESTING: usize = 127;

/// Most entries reserved before parsing when the number of values is not known (96 KiB).
const INITIAL_ENTRIES_MAX: usize = 4096;

/// What to do with a member name that appears twice in one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    Refuse,
    /// As `serde_json::Value`: the last member with the name is kept.
    KeepLast,
    /// Every member is kept, repeated names next to each other in document order: for
    /// screening, which must read every value whichever one the upstream's parser takes.
    KeepAll,
}

/// Why a body was not parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not one well-formed UTF-8 JSON text (or nested deeper than [`MAX_NESTING`]).
    Malformed,
    /// A number whose magnitude overflows an `f64` (serde_json refuses those).
    NumberOutOfRange,
    /// A member name appears twice in one object, under [`Duplicates::Refuse`].
    DuplicateKey,
    /// A structural limit of [`Document::parse_within`] was passed.
    Limit,
}

/// The structural limits as the parser applies them (`usize::MAX`: none).
#[derive(Debug, Clone, Copy)]
struct Bounds {
    depth: usize,
    members: usize,
    items: usize,
    string_bytes: usize,
    values: usize,
}

impl Bounds {
    const NONE: Bounds = Bounds {
        depth: MAX_NESTING,
        members: usize::MAX,
        items: usize::MAX,
        string_bytes: usize::MAX,
        values: usize::MAX,
    };
}

/// A string: a range of the body (no escapes) or, when `at` has [`DECODED`] set, of the
/// decoded buffer. Eight bytes, so that an entry is 24 and moves cheaply while parsing.
#[derive(Debug, Clone, Copy)]
struct Text {
    at: u32,
    len: u32,
}

/// The flag in [`Text::at`] for the decoded buffer; offsets stay below it (bodies are at
/// most 64 MiB, and longer ones are refused).
const DECODED: u32 = 1 << 31;

impl Text {
    /// The (absent) name of an array item.
    const NONE: Text = Text { at: 0, len: 0 };
}

/// A container's children: `len` entries from `at` in the arena.
#[derive(Debug, Clone, Copy)]
struct Span {
    at: u32,
    len: u32,
}

#[derive(Debug, Clone)]
enum Val {
    Null,
    Bool(bool),
    Number(Number),
    String(Text),
    Array(Span),
    Object(Span),
}

/// One value with its member name (unused for array items).
#[derive(Debug, Clone)]
struct Entry {
    name: Text,
    val: Val,
}

/// A parsed JSON document; `'a` is the body it borrows its strings from.
#[derive(Debug, Clone)]
pub struct Document<'a> {
    body: &'a str,
    decoded: String,
    /// Every value but the root, each container's children contiguous.
    arena: Vec<Entry>,
    root: Val,
}

/// A value of a [`Document`], to match on like a `serde_json::Value`.
#[derive(Debug, Clone, Copy)]
pub enum Json<'d> {
    Null,
    Bool(bool),
    Number(&'d Number),
    String(&'d str),
    Array(Items<'d>),
    Object(Members<'d>),
}

/// The items of an array.
#[derive(Clone, Copy)]
pub struct Items<'d> {
    doc: &'d Document<'d>,
    entries: &'d [Entry],
}

/// The members of an object, in name order, names unique.
#[derive(Clone, Copy)]
pub struct Members<'d> {
    doc: &'d Document<'d>,
    entries: &'d [Entry],
}

/// The order of member names: bytewise, as `str`'s `Ord` (and so `serde_json::Map`) orders
/// them. Written out because names usually differ in their first bytes, where an inline loop
/// beats a call to `memcmp`.
pub fn cmp_names(a: &str, b: &str) -> Ordering {
    cmp_bytes(a.as_bytes(), b.as_bytes())
}

fn cmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// A stable sort: insertion sort on runs of 32 (most objects fit one: no allocation), then
/// merges through one scratch copy, so O(n log n) whatever the input (an object's members come
/// from the request). Hand-written because each instance of the standard library's sort adds
/// several kilobytes to the wasm module, and members, property names and array items each
/// need one.
pub(crate) fn sort_stable<T: Clone>(v: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    const RUN: usize = 32;
    for run in v.chunks_mut(RUN) {
        for i in 1..run.len() {
            let mut j = i;
            while j > 0 {
                let out_of_order = match (run.get(j - 1), run.get(j)) {
                    (Some(a), Some(b)) => cmp(a, b) == Ordering::Greater,
                    _ => false,
                };
                if !out_of_order {
                    break;
                }
                run.swap(j - 1, j);
                j -= 1;
            }
        }
    }
    if v.len() <= RUN {
        return;
    }
    let mut scratch = v.to_vec();
    let mut in_scratch = false;
    let mut width = RUN;
    while width < v.len() {
        let (from, to): (&[T], &mut [T]) = if in_scratch {
            (&scratch, v)
        } else {
            (v, &mut scratch)
        };
        for (src, dst) in from.chunks(2 * width).zip(to.chunks_mut(2 * width)) {
            let (left, right) = src.split_at(width.min(src.len()));
            let (mut left, mut right) = (left.iter().peekable(), right.iter().peekable());
            for slot in dst.iter_mut() {
                // Ties take the left run: that keeps equal elements in their order.
                let take_right = match (left.peek(), right.peek()) {
                    (Some(a), Some(b)) => cmp(b, a) == Ordering::Less,
                    (None, _) => true,
                    (Some(_), None) => false,
                };
                let next = if take_right {
                    right.next()
                } else {
                    left.next()
                };
                if let Some(x) = next {
                    *slot = x.clone();
                }
            }
        }
        in_scratch = !in_scratch;
        width *= 2;
    }
    if in_scratch {
        v.clone_from_slice(&scratch);
    }
}

/// Whether two names are the same; [`cmp_names`]' inline loop, for the same reason.
pub fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && cmp_names(a, b) == Ordering::Equal
}

/// A string's bytes, for comparing names while parsing (no character-boundary checks).
fn bytes_of<'s>(body: &'s str, decoded: &'s str, t: Text) -> &'s [u8] {
    let (src, at) = if t.at & DECODED != 0 {
        (decoded, t.at & !DECODED)
    } else {
        (body, t.at)
    };
    let at = at as usize;
    src.as_bytes()
        .get(at..at.saturating_add(t.len as usize))
        .unwrap_or_default()
}

fn text_of<'s>(body: &'s str, decoded: &'s str, t: Text) -> &'s str {
    let (src, at) = if t.at & DECODED != 0 {
        (decoded, t.at & !DECODED)
    } else {
        (body, t.at)
    };
    let at = at as usize;
    src.get(at..at.saturating_add(t.len as usize))
        .unwrap_or_default()
}

impl<'a> Document<'a> {
    /// Parses a whole body.
    pub fn parse(body: &'a [u8], duplicates: Duplicates) -> Result<Document<'a>, ParseError> {
        Self::build(body, duplicates, Bounds::NONE, 0)
    }

    /// [`Document::parse`], with the number of values when the caller knows it (the
    /// structure scan counts them), so that the arena is allocated once.
    pub fn parse_sized(
        body: &'a [u8],
        duplicates: Duplicates,
        values: usize,
    ) -> Result<Document<'a>, ParseError> {
        Self::build(body, duplicates, Bounds::NONE, values)
    }

    /// [`Document::parse`] within structural limits defined as [`super::scan`] defines them,
    /// so that a body within them needs no separate scan: a body this accepts, the scan
    /// accepts too. On [`ParseError::Limit`] (or any error) the scan says which problem comes
    /// first; the parse stops at a passed limit, so a JSON bomb costs no more than the limits
    /// allow.
    pub fn parse_within(
        body: &'a [u8],
        duplicates: Duplicates,
        limits: &JsonLimits,
    ) -> Result<Document<'a>, ParseError> {
        let wide = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        let bounds = Bounds {
            depth: wide(limits.max_depth.min(MAX_DEPTH_CAP)),
            members: wide(limits.max_members),
            items: wide(limits.max_array_items),
            string_bytes: wide(limits.max_string_bytes),
            values: wide(limits.max_total_values),
        };
        Self::build(body, duplicates, bounds, 0)
    }

    fn build(
        body: &'a [u8],
        duplicates: Duplicates,
        bounds: Bounds,
        values: usize,
    ) -> Result<Document<'a>, ParseError> {
        // Offsets are 31 bits: far above any body limit (64 MiB), checked all the same.
        offset(body.len())?;
        // serde_json refuses any body that is not UTF-8 (outside strings only ASCII is
        // JSON), so checking the whole body at once changes nothing and lets strings borrow.
        let text = std::str::from_utf8(body).map_err(|_| ParseError::Malformed)?;
        let capacity = if values > 0 {
            values
        } else {
            // A guess for a typical body, a value per 8 bytes, capped so that a large body
            // (one long string, say) does not reserve what it will not use; the arena grows
            // as needed.
            (body.len() / 8 + 1)
                .min(bounds.values)
                .min(INITIAL_ENTRIES_MAX)
        };
        let mut b = Builder {
            body: text,
            bytes: body,
            pos: 0,
            decoded: String::new(),
            arena: Vec::with_capacity(capacity),
            open: Vec::with_capacity(capacity.min(64)),
            duplicates,
            bounds,
            values: 0,
        };
        b.ws();
        b.value(0, Text::NONE)?;
        b.ws();
        let root = match b.open.pop() {
            Some(entry) if b.pos == body.len() && b.open.is_empty() => entry.val,
            _ => return Err(ParseError::Malformed),
        };
        Ok(Document {
            body: text,
            decoded: b.decoded,
            arena: b.arena,
            root,
        })
    }

    /// The document's top-level value.
    pub fn root(&self) -> Json<'_> {
        self.json(&self.root)
    }

    fn json<'d>(&'d self, val: &'d Val) -> Json<'d> {
        match val {
            Val::Null => Json::Null,
            Val::Bool(b) => Json::Bool(*b),
            Val::Number(n) => Json::Number(n),
            Val::String(t) => Json::String(self.text(*t)),
            Val::Array(span) => Json::Array(Items {
                doc: self,
                entries: self.children(*span),
            }),
            Val::Object(span) => Json::Object(Members {
                doc: self,
                entries: self.children(*span),
            }),
        }
    }

    fn text(&self, t: Text) -> &str {
        text_of(self.body, &self.decoded, t)
    }

    fn bytes(&self, t: Text) -> &[u8] {
        bytes_of(self.body, &self.decoded, t)
    }

    fn children(&self, span: Span) -> &[Entry] {
        let at = span.at as usize;
        self.arena
            .get(at..at.saturating_add(span.len as usize))
            .unwrap_or_default()
    }
}

impl Document<'static> {
    /// A document holding a copy of `v` (configuration values such as `enum`, and callers
    /// that already have a `Value`). `None` only for a value too large for the arena's
    /// offsets (2 GiB of text).
    pub fn from_value(v: &Value) -> Option<Document<'static>> {
        let mut b = Builder {
            body: "",
            bytes: b"",
            pos: 0,
            decoded: String::new(),
            arena: Vec::new(),
            open: Vec::new(),
            duplicates: Duplicates::KeepLast,
            bounds: Bounds::NONE,
            values: 0,
        };
        let root = b.convert(v)?;
        Some(Document {
            body: "",
            decoded: b.decoded,
            arena: b.arena,
            root,
        })
    }
}

impl fmt::Debug for Items<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Debug for Members<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'d> Items<'d> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Json<'d>> + 'd {
        let doc = self.doc;
        self.entries.iter().map(move |e| doc.json(&e.val))
    }
}

impl<'d> Members<'d> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `(name, value)` in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'d str, Json<'d>)> + 'd {
        let doc = self.doc;
        self.entries
            .iter()
            .map(move |e| (doc.text(e.name), doc.json(&e.val)))
    }

    /// How the name of the `i`-th member compares with `name` (`None` past the end): the
    /// merges of the schema check, without building a `&str` per step.
    pub fn cmp_name(&self, i: usize, name: &str) -> Option<Ordering> {
        let doc = self.doc;
        self.entries
            .get(i)
            .map(|e| cmp_bytes(doc.bytes(e.name), name.as_bytes()))
    }

    /// The value of the `i`-th member (in name order).
    pub fn value(&self, i: usize) -> Option<Json<'d>> {
        let doc = self.doc;
        self.entries.get(i).map(|e| doc.json(&e.val))
    }

    pub fn get(&self, name: &str) -> Option<Json<'d>> {
        let doc = self.doc;
        self.entries
            .binary_search_by(|e| cmp_bytes(doc.bytes(e.name), name.as_bytes()))
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|e| doc.json(&e.val))
    }

    pub fn contains_key(&self, name: &str) -> bool {
        let doc = self.doc;
        self.entries
            .binary_search_by(|e| cmp_bytes(doc.bytes(e.name), name.as_bytes()))
            .is_ok()
    }
}

/// A recursive-descent parser; recursion is bounded by [`MAX_NESTING`].
struct Builder<'a> {
    body: &'a str,
    bytes: &'a [u8],
    pos: usize,
    decoded: String,
    arena: Vec<Entry>,
    /// The children parsed so far of every container still open, innermost last.
    open: Vec<Entry>,
    duplicates: Duplicates,
    bounds: Bounds,
    /// Values parsed so far.
    values: usize,
}

impl Builder<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// RFC 8259 whitespace: space, tab, LF, CR.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Takes the next byte (no whitespace skipped).
    fn take(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// A value starting at `pos` (whitespace already skipped), `depth` containers deep,
    /// pushed with its member name onto `open` (built in place rather than returned: entries
    /// are copied around enough as it is).
    fn value(&mut self, depth: usize, name: Text) -> Result<(), ParseError> {
        self.values += 1;
        if self.values > self.bounds.values {
            return Err(ParseError::Limit);
        }
        let val = match self.peek() {
            Some(b'{') => return self.object(depth + 1, name),
            Some(b'[') => return self.array(depth + 1, name),
            Some(b'"') => Val::String(self.string()?),
            Some(b't') => self.word(b"true", Val::Bool(true))?,
            Some(b'f') => self.word(b"false", Val::Bool(false))?,
            Some(b'n') => self.word(b"null", Val::Null)?,
            Some(b'-' | b'0'..=b'9') => Val::Number(self.number()?),
            _ => return Err(ParseError::Malformed),
        };
        self.open.push(Entry { name, val });
        Ok(())
    }

    fn word(&mut self, word: &[u8], val: Val) -> Result<Val, ParseError> {
        let end = self.pos + word.len();
        // Byte by byte: a `memcmp` call costs more than these four or five bytes.
        let found = self
            .bytes
            .get(self.pos..end)
            .is_some_and(|w| w.iter().zip(word).all(|(a, b)| a == b));
        if !found {
            return Err(ParseError::Malformed);
        }
        self.pos = end;
        Ok(val)
    }

    /// Steps into an array or object at `depth` (past its opening bracket): refused past the
    /// nesting serde_json allows or the configured depth. Returns where its children start in
    /// `open`.
    fn enter(&mut self, depth: usize) -> Result<usize, ParseError> {
        if depth > MAX_NESTING {
            return Err(ParseError::Malformed);
        }
        if depth > self.bounds.depth {
            return Err(ParseError::Limit);
        }
        self.pos += 1;
        self.ws();
        Ok(self.open.len())
    }

    fn array(&mut self, depth: usize, name: Text) -> Result<(), ParseError> {
        let mark = self.enter(depth)?;
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                self.value(depth, Text::NONE)?;
                if self.open.len().saturating_sub(mark) > self.bounds.items {
                    return Err(ParseError::Limit);
                }
                self.ws();
                match self.take() {
                    Some(b',') => self.ws(),
                    Some(b']') => break,
                    _ => return Err(ParseError::Malformed),
                }
            }
        }
        let val = Val::Array(self.close(mark)?);
        self.open.push(Entry { name, val });
        Ok(())
    }

    fn object(&mut self, depth: usize, name: Text) -> Result<(), ParseError> {
        let mark = self.enter(depth)?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                if self.peek() != Some(b'"') {
                    return Err(ParseError::Malformed);
                }
                let member = self.string()?;
                self.ws();
                if self.take() != Some(b':') {
                    return Err(ParseError::Malformed);
                }
                self.ws();
                self.value(depth, member)?;
                if self.open.len().saturating_sub(mark) > self.bounds.members {
                    return Err(ParseError::Limit);
                }
                self.ws();
                match self.take() {
                    Some(b',') => self.ws(),
                    Some(b'}') => break,
                    _ => return Err(ParseError::Malformed),
                }
            }
            self.order_members(mark)?;
        }
        let val = Val::Object(self.close(mark)?);
        self.open.push(Entry { name, val });
        Ok(())
    }

    /// Sorts the members of the object being closed by name and resolves duplicates.
    fn order_members(&mut self, mark: usize) -> Result<(), ParseError> {
        let Builder {
            body,
            decoded,
            open,
            duplicates,
            ..
        } = self;
        let name = |t: Text| bytes_of(body, decoded, t);
        let Some(members) = open.get_mut(mark..) else {
            return Err(ParseError::Malformed);
        };
        // Bodies are often already in order (serialised from a sorted map): one pass.
        let ordered = members.windows(2).all(
            |w| matches!(w, [a, b] if cmp_bytes(name(a.name), name(b.name)) == Ordering::Less),
        );
        if ordered {
            return Ok(());
        }
        // Stable: duplicates stay in document order, so the last one is the last of its run.
        sort_stable(members, |a, b| cmp_bytes(name(a.name), name(b.name)));
        let duplicated = members.windows(2).any(
            |w| matches!(w, [a, b] if cmp_bytes(name(a.name), name(b.name)) == Ordering::Equal),
        );
        if !duplicated {
            return Ok(());
        }
        match *duplicates {
            Duplicates::Refuse => return Err(ParseError::DuplicateKey),
            Duplicates::KeepAll => return Ok(()),
            Duplicates::KeepLast => {}
        }
        let all = open.split_off(mark);
        let mut members = all.into_iter().peekable();
        while let Some(e) = members.next() {
            let superseded = members
                .peek()
                .is_some_and(|next| cmp_bytes(name(next.name), name(e.name)) == Ordering::Equal);
            if !superseded {
                open.push(e);
            }
        }
        Ok(())
    }

    /// Moves the children of the container being closed (from `mark` on) into the arena.
    fn close(&mut self, mark: usize) -> Result<Span, ParseError> {
        if mark > self.open.len() {
            return Err(ParseError::Malformed);
        }
        let at = self.arena.len();
        self.arena.extend(self.open.drain(mark..));
        let span = u32::try_from(at)
            .ok()
            .zip(u32::try_from(self.arena.len() - at).ok());
        match span {
            Some((at, len)) => Ok(Span { at, len }),
            None => Err(ParseError::Malformed),
        }
    }

    /// A string starting at its opening quote.
    fn string(&mut self) -> Result<Text, ParseError> {
        let start = self.pos + 1;
        // Only as far as `max_string_bytes` allows: a closing quote must come before `stop`.
        let stop = start
            .saturating_add(self.bounds.string_bytes)
            .saturating_add(1)
            .min(self.bytes.len());
        let window = self.bytes.get(..stop).unwrap_or_default();
        let cut = if stop < self.bytes.len() {
            Err(ParseError::Limit)
        } else {
            Err(ParseError::Malformed)
        };
        let mut i = start;
        // Most strings have no escapes: borrow them.
        loop {
            match window.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(Text {
                        at: offset(start)?,
                        len: offset(i - start)?,
                    });
                }
                Some(b'\\') => break,
                Some(0x00..=0x1f) => return Err(ParseError::Malformed),
                Some(_) => i += 1,
                None => return cut,
            }
        }
        let at = self.decoded.len();
        // Runs end at ASCII bytes, so every run is on character boundaries.
        self.decoded
            .push_str(self.body.get(start..i).ok_or(ParseError::Malformed)?);
        loop {
            match window.get(i) {
                Some(b'"') => break,
                Some(b'\\') => i = self.escape(i)?,
                Some(0x00..=0x1f) => return Err(ParseError::Malformed),
                Some(_) => {
                    let run = i;
                    while let Some(c) = window.get(i) {
                        if matches!(c, b'"' | b'\\' | 0x00..=0x1f) {
                            break;
                        }
                        i += 1;
                    }
                    self.decoded
                        .push_str(self.body.get(run..i).ok_or(ParseError::Malformed)?);
                }
                None => return cut,
            }
        }
        self.pos = i + 1;
        Ok(Text {
            at: offset(at)? | DECODED,
            len: offset(self.decoded.len() - at)?,
        })
    }

    /// Decodes the escape at `i` (a backslash) into the buffer; the index after it.
    fn escape(&mut self, i: usize) -> Result<usize, ParseError> {
        let bad = Err(ParseError::Malformed);
        let c = match self.bytes.get(i + 1) {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\x08',
            Some(b'f') => '\x0c',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let Some(unit) = hex4(self.bytes, i + 2) else {
                    return bad;
                };
                let (code, end) = match unit {
                    // A lone low surrogate cannot be a character: serde_json refuses it.
                    0xDC00..=0xDFFF => return bad,
                    0xD800..=0xDBFF => {
                        let low = if self.bytes.get(i + 6..i + 8) == Some(b"\\u") {
                            hex4(self.bytes, i + 8)
                        } else {
                            None
                        };
                        match low {
                            Some(low @ 0xDC00..=0xDFFF) => (
                                0x10000
                                    + ((u32::from(unit) - 0xD800) << 10)
                                    + (u32::from(low) - 0xDC00),
                                i + 12,
                            ),
                            _ => return bad,
                        }
                    }
                    _ => (u32::from(unit), i + 6),
                };
                let Some(c) = char::from_u32(code) else {
                    return bad;
                };
                self.decoded.push(c);
                return Ok(end);
            }
            _ => return bad,
        };
        self.decoded.push(c);
        Ok(i + 2)
    }

    fn number(&mut self) -> Result<Number, ParseError> {
        let start = self.pos;
        let end = super::scan::number(self.bytes, start).map_err(|_| ParseError::Malformed)?;
        self.pos = end;
        let token = self.bytes.get(start..end).ok_or(ParseError::Malformed)?;
        number_value(token)
    }

    /// A copy of a configuration value (`None` past u32 offsets).
    fn convert(&mut self, v: &Value) -> Option<Val> {
        Some(match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => Val::Number(n.clone()),
            Value::String(s) => Val::String(self.copy_text(s)?),
            Value::Array(items) => {
                let mark = self.open.len();
                for item in items {
                    let val = self.convert(item)?;
                    self.open.push(Entry {
                        name: Text::NONE,
                        val,
                    });
                }
                Val::Array(self.close(mark).ok()?)
            }
            Value::Object(map) => {
                let mark = self.open.len();
                for (name, item) in map {
                    let val = self.convert(item)?;
                    let name = self.copy_text(name)?;
                    self.open.push(Entry { name, val });
                }
                // A Map's names are unique; it iterates them in order unless serde_json's
                // `preserve_order` is on, so order them anyway.
                self.order_members(mark).ok()?;
                Val::Object(self.close(mark).ok()?)
            }
        })
    }

    fn copy_text(&mut self, s: &str) -> Option<Text> {
        let at = offset(self.decoded.len()).ok()?;
        self.decoded.push_str(s);
        Some(Text {
            at: at | DECODED,
            len: offset(s.len()).ok()?,
        })
    }
}

/// An offset or length as stored in a [`Text`] or [`Span`]: below [`DECODED`].
fn offset(n: usize) -> Result<u32, ParseError> {
    u32::try_from(n)
        .ok()
        .filter(|n| n & DECODED == 0)
        .ok_or(ParseError::Malformed)
}

fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = bytes.get(at..at + 4)?;
    digits.iter().try_fold(0u16, |n, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        Some((n << 4) | u16::from(d))
    })
}

/// The `Number` serde_json makes of a number token (already checked against the grammar).
fn number_value(token: &[u8]) -> Result<Number, ParseError> {
    let (negative, digits) = match token.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, token),
    };
    // Plain integers that certainly fit: what serde_json makes of them is plain too (u64,
    // or i64 when negative; `-0` is a float there, so it is left to serde_json).
    if digits.iter().all(u8::is_ascii_digit) {
        let value = || {
            digits
                .iter()
                .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'))
        };
        if !negative && digits.len() <= 19 {
            return Ok(Number::from(value()));
        }
        if negative && digits.len() <= 18 {
            let n = value();
            if n != 0 {
                // n < 10^18, so it fits an i64.
                return Ok(Number::from(-(n as i64)));
            }
        }
    }
    serde_json::from_slice::<Number>(token).map_err(|_| ParseError::NumberOutOfRange)
}

#[cfg(test)]
mod tests;
