//! Injection and bad-bot screening: SQL injection, cross-site scripting, path traversal / local
//! file inclusion and OS command injection in the path, query, cookies, selected headers, form
//! bodies and JSON string values, plus scanner user agents.
//!
//! Everything is compiled once from the policy's `screening` object into a [`ScreeningRule`];
//! per request the rule only scans. Each value goes through:
//! 1. [`decode::scan`], one pass setting a bit per interesting byte class; a value with none
//!    (ids, numbers, names, e-mail addresses, dates, UUIDs) leaves here, without a copy;
//! 2. [`decode::decode`] when it holds `%`, `&`, `+` (query and form) or overlong/fullwidth
//!    lead bytes: at most [`decode::ROUNDS`] shrinking passes;
//! 3. the detectors of the enabled classes, each a hand-written linear scanner (no regex, no
//!    backtracking) that only runs when the value holds the bytes its attacks need.
//!
//! A [`Detection`] names the class, a stable rule id (documented in each detector module) and
//! where it was found; never the value. Names taken from the request (query parameter, cookie,
//! form field, JSON member) are cut to 64 bytes and reduced to `[A-Za-z0-9_.-]` before they are
//! put in a [`Location`], so a log line cannot carry the payload either.

pub mod bots;
mod cmdi;
pub mod decode;
pub mod inert;
pub mod multipart;
mod sensitivity;
mod sqli;
mod text;
mod traversal;
pub mod vocab;
pub mod xml;
mod xss;

// What a finding is (class, rule, location) and which bodies are screened are named by the
// rejections and the verdict, below this module: they live in `rejection::finding`.
pub use crate::rejection::finding::{Class, Detection, Location, ScreenedBody};
pub use sensitivity::Sensitivity;

use crate::config::reader::{self, child, kind, ConfigErrors};
use crate::payload::doc::{Document, Duplicates, Json};
use crate::request::RequestView;
use serde_json::Value;

/// `block`: a detection rejects the request (403). `detect`: shadow mode, a detection is only
/// counted and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Block,
    Detect,
}

/// How a value reached us, which decides its decoding: `+` is a space only in query strings
/// and form bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Path,
    Query,
    Header,
    Cookie,
    Form,
    Json,
    /// A `multipart/form-data` field name, value or file name (no `+` decoding).
    Multipart,
}

/// What body screening makes of a request, decided from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyScreening {
    /// No body screening for this request (no body kind it screens, or nothing enabled).
    Skip,
    /// Buffer the body and screen it whole as this kind ([`ScreeningRule::judge_body`]).
    Screen(ScreenedBody),
    /// `block` mode: the body cannot be read as the backend would (two content types, or one
    /// that does not parse; a content coding): refused before it is buffered.
    Refuse(crate::payload::PayloadProblem<'static>),
    /// `detect` mode, same cases: passed unread and reported.
    Report(Detection),
}

/// Which body kinds a policy screens (`bodies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyKinds {
    pub form: bool,
    pub json: bool,
    pub multipart: bool,
    /// `text/plain`, and unlabelled bodies.
    pub text: bool,
    pub ndjson: bool,
    pub xml: bool,
}

/// Bad-bot settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotRule {
    pub block_scanners: bool,
    pub require_user_agent: bool,
    /// Case-insensitive user-agent prefixes that are never treated as bots.
    pub allow: Vec<String>,
}

/// Locations not screened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Skip {
    path: bool,
    query: Vec<String>,
    header: Vec<String>,
    cookie: Vec<String>,
    form: Vec<String>,
    /// JSON pointers as unescaped segments; `*` matches any one segment; a pointer also skips
    /// everything below it.
    json: Vec<Vec<String>>,
}

/// Which request headers are screened for injection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderSet {
    /// Every header except [`NEVER_SCREENED`] ones, pseudo-headers and `skip`ped ones.
    All,
    /// Only these (lowercase).
    Listed(Vec<String>),
}

/// Headers never screened for injection when all are: credentials (opaque tokens that match
/// anything, and must not be logged), `cookie` (screened cookie by cookie), and headers whose
/// syntax is not a free value that a backend interprets. Pseudo-headers (`:path` is screened
/// as the path and query) are left out too.
pub const NEVER_SCREENED: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// Silences one rule id, on one location or everywhere (`exclude`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    pub rule_id: String,
    /// A location key as logs write it (`query.filter`, `json./items/*/html`); `None` is
    /// every location. A key ending in `*` matches every key with that prefix.
    pub location: Option<String>,
}

/// A compiled `screening` policy section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreeningRule {
    pub mode: Mode,
    pub sensitivity: Sensitivity,
    pub sqli: bool,
    pub xss: bool,
    pub traversal: bool,
    pub command_injection: bool,
    /// Headers screened besides the path, query and cookies.
    pub headers: HeaderSet,
    /// The policy's `extra` vocabulary entries, beside the built-in ones.
    pub extra: vocab::Vocabularies,
    /// Rules silenced per location (`exclude`).
    pub exclude: Vec<Exclusion>,
    pub bots: BotRule,
    /// Which request bodies are buffered and screened.
    pub bodies: BodyKinds,
    skip: Skip,
}

/// Nesting below this depth in a JSON body is not walked (the parser stops at 128 levels).
pub const MAX_JSON_DEPTH: usize = 128;

/// Longest name kept in a [`Location`].
const MAX_NAME: usize = 64;

impl Default for ScreeningRule {
    fn default() -> Self {
        ScreeningRule {
            mode: Mode::Block,
            sensitivity: Sensitivity::Medium,
            sqli: true,
            xss: true,
            traversal: true,
            command_injection: true,
            headers: HeaderSet::All,
            extra: vocab::Vocabularies::default(),
            exclude: Vec::new(),
            bots: BotRule {
                block_scanners: true,
                require_user_agent: false,
                allow: Vec::new(),
            },
            bodies: BodyKinds {
                form: true,
                json: true,
                multipart: true,
                text: true,
                ndjson: true,
                xml: true,
            },
            skip: Skip::default(),
        }
    }
}

/// A name from the request, safe for logs and metrics.
fn sanitize(name: &[u8]) -> String {
    name.iter()
        .take(MAX_NAME)
        .map(|&b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
                char::from(b)
            } else {
                '_'
            }
        })
        .collect()
}

/// `name=value` pairs of a query string or form body, raw.
fn pairs(s: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    s.split(|&b| b == b'&').filter(|p| !p.is_empty()).map(|p| {
        match p.iter().position(|&b| b == b'=') {
            Some(eq) => (
                p.get(..eq).unwrap_or_default(),
                p.get(eq + 1..).unwrap_or_default(),
            ),
            None => (p, &b""[..]),
        }
    })
}

/// Whether the (decoded) `name` is in `list`.
fn listed(list: &[String], raw: &[u8], plus: bool) -> bool {
    if list.is_empty() {
        return false;
    }
    let name = decode::decode(raw, plus);
    list.iter().any(|l| l.as_bytes() == &*name)
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn seg_matches(pattern: &str, seg: &Seg<'_>) -> bool {
    pattern == "*"
        || match seg {
            Seg::Key(k) => pattern == *k,
            Seg::Index(i) => pattern.parse::<usize>().ok() == Some(*i),
        }
}

fn pointer(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        out.push('/');
        match seg {
            Seg::Key(k) => out.push_str(&sanitize(k.as_bytes())),
            Seg::Index(i) => out.push_str(&i.to_string()),
        }
        if out.len() > 256 {
            out.push_str("/...");
            break;
        }
    }
    out
}

impl ScreeningRule {
    /// Whether a detection rejects the request (`mode: block`).
    pub fn blocks(&self) -> bool {
        self.mode == Mode::Block
    }

    /// Screens one value for the enabled injection classes; the first finding's class and
    /// rule id. Public so that the corpus evaluation and other checks can reuse it.
    pub fn screen_value(&self, raw: &[u8], kind: ValueKind) -> Option<(Class, &'static str)> {
        self.screen_value_except(raw, kind, [false; 4])
    }

    /// [`ScreeningRule::screen_value`] without the inert fast path: every detector runs.
    /// What the fast path's soundness is checked against (tests, `screening-eval`).
    pub fn screen_value_by_detectors(
        &self,
        raw: &[u8],
        kind: ValueKind,
    ) -> Option<(Class, &'static str)> {
        self.screen_value_with(raw, kind, [false; 4], false)
    }

    /// Whether the inert fast path would accept this value (decoded as its kind decodes it),
    /// so that the detectors would not run on it.
    pub fn inert_value(&self, raw: &[u8], kind: ValueKind) -> bool {
        let plus = matches!(kind, ValueKind::Query | ValueKind::Form);
        self.inert_applies() && inert::inert(&decode::decode(raw, plus), triggers())
    }

    /// Whether the header fast path would accept this header value.
    pub fn inert_header(&self, name: &str, value: &[u8]) -> bool {
        self.inert_applies() && inert::header_inert(name.as_bytes(), value, triggers())
    }

    /// [`ScreeningRule::screen_value`] with some classes (`sqli`, `xss`, `traversal`,
    /// `command_injection`, in that order) left out: what an exclusion leaves to find.
    fn screen_value_except(
        &self,
        raw: &[u8],
        kind: ValueKind,
        off: [bool; 4],
    ) -> Option<(Class, &'static str)> {
        self.screen_value_with(raw, kind, off, true)
    }

    fn screen_value_with(
        &self,
        raw: &[u8],
        kind: ValueKind,
        off: [bool; 4],
        fast: bool,
    ) -> Option<(Class, &'static str)> {
        match decode::scan(raw) {
            0 => None,
            mask => self.screen_scanned(raw, mask, kind, off, fast),
        }
    }

    /// [`ScreeningRule::screen_value_with`] of a value whose [`decode::scan`] is `mask`
    /// (not 0).
    fn screen_scanned(
        &self,
        raw: &[u8],
        mask: u32,
        kind: ValueKind,
        off: [bool; 4],
        fast: bool,
    ) -> Option<(Class, &'static str)> {
        let plus = matches!(kind, ValueKind::Query | ValueKind::Form);
        let decoded;
        let mut short;
        let (s, mask) = if mask & decode::decode_bits(plus) != 0 {
            // A short value with one plain round of `%hh` (`ada%20lovelace`) is decoded on
            // the stack: the same bytes, without an allocation.
            short = [0u8; decode::SHORT];
            match decode::decode_short(raw, plus, mask, &mut short) {
                Some(done) => done,
                None => {
                    decoded = decode::decode_scanned(raw, plus, mask);
                    (&*decoded, decode::scan(&decoded))
                }
            }
        } else {
            (raw, mask)
        };
        // Most values of ordinary traffic (user agents, URLs, accept lists, names, prose
        // without quotes) end here, in one pass: nothing in them is what a detector needs.
        if fast && self.inert_applies() && inert::inert_scanned(s, mask, triggers()) {
            return None;
        }
        let sens = self.sensitivity;
        let v = vocab::Vocab {
            base: vocab::builtin(),
            extra: &self.extra,
        };
        if self.sqli && !off[0] {
            if let Some(r) = sqli::detect(s, mask, sens, v) {
                return Some((Class::Sqli, r));
            }
        }
        if self.xss && !off[1] {
            if let Some(r) = xss::detect(s, mask, sens) {
                return Some((Class::Xss, r));
            }
        }
        if self.traversal && !off[2] {
            if let Some(r) = traversal::detect(s, mask, sens, v) {
                return Some((Class::Traversal, r));
            }
        }
        if self.command_injection && !off[3] {
            if let Some(r) = cmdi::detect(s, mask, sens, v) {
                return Some((Class::CommandInjection, r));
            }
        }
        None
    }

    /// Whether values go through the inert fast path ([`inert`]): at `low` and `medium`, and
    /// without `extra` vocabularies the trigger index does not hold (scanners aside).
    fn inert_applies(&self) -> bool {
        let e = &self.extra;
        self.sensitivity <= Sensitivity::Medium
            && e.files.is_empty()
            && e.commands.is_empty()
            && e.cmdlets.is_empty()
            && e.sql_functions.is_empty()
    }

    /// Whether bodies are screened at all: some injection class is on and `bodies` names some
    /// kind of body.
    pub fn screens_bodies(&self) -> bool {
        let b = self.bodies;
        self.any_injection() && (b.form || b.json || b.multipart || b.text || b.ndjson || b.xml)
    }

    /// The kind of body this rule screens for a request with this `content-type` value, if
    /// any. A `multipart/form-data` type without a valid boundary is still screened: its body
    /// cannot be read, which [`ScreeningRule::screen_body_of`] answers as malformed.
    pub fn body_kind(&self, content_type: &[u8]) -> Option<ScreenedBody> {
        if !self.any_injection() {
            return None;
        }
        // The JSON types clients send verbatim, known without parsing (a test checks that the
        // parse answers the same for each).
        if crate::payload::VERBATIM_JSON.contains(&content_type) {
            return self.bodies.json.then_some(ScreenedBody::Json);
        }
        let media = crate::payload::parse_media_type(content_type)?;
        if media.is_json() {
            return self.bodies.json.then_some(ScreenedBody::Json);
        }
        let is = |t: &str, sub: &str| {
            media.type_.eq_ignore_ascii_case(t) && media.subtype.eq_ignore_ascii_case(sub)
        };
        if is("application", "x-www-form-urlencoded") {
            return self.bodies.form.then_some(ScreenedBody::Form);
        }
        if is("multipart", "form-data") && self.bodies.multipart {
            let boundary = multipart::boundary(content_type).unwrap_or_default();
            return Some(ScreenedBody::Multipart {
                boundary: boundary.to_vec(),
            });
        }
        if is("text", "plain") {
            return self.bodies.text.then_some(ScreenedBody::Text);
        }
        let sub = media.subtype.to_ascii_lowercase();
        if media.type_.eq_ignore_ascii_case("application")
            && matches!(
                sub.as_str(),
                "x-ndjson" | "ndjson" | "jsonl" | "x-jsonl" | "jsonlines" | "x-jsonlines"
            )
        {
            return self.bodies.ndjson.then_some(ScreenedBody::NdJson);
        }
        if is("application", "xml") || is("text", "xml") || sub.ends_with("+xml") {
            return self.bodies.xml.then_some(ScreenedBody::Xml);
        }
        None
    }

    /// Decides from the headers whether and how this request's body is screened. A body that
    /// cannot be read the way a backend would read it is never let through unscreened in
    /// `block` mode: a repeated or unparsable `content-type` (the backend may read the body as
    /// a kind screened here), or a `content-encoding` on a screened kind (api-guard does not
    /// decompress; Envoy's decompressor before api-guard does, and removes the header).
    pub fn plan_body(&self, req: &RequestView<'_>) -> BodyScreening {
        if !self.screens_bodies() {
            return BodyScreening::Skip;
        }
        // One pass over the raw map: the first content type, whether there is another, and
        // whether any content coding is named (read further only then).
        let (mut content_type, mut repeated, mut coded) = (None, false, false);
        for (name, value) in req.headers.iter_raw() {
            match name {
                b"content-type" if content_type.is_none() => content_type = Some(value),
                b"content-type" => repeated = true,
                b"content-encoding" => coded = true,
                _ => {}
            }
        }
        let kind = match content_type {
            Some(ct) => self.body_kind(ct),
            None => (self.any_injection() && (self.bodies.json || self.bodies.text))
                .then_some(ScreenedBody::Unlabelled),
        };
        // Parsed again only when it is not a screened kind (rare on routes that screen).
        let ambiguous = repeated
            || (kind.is_none()
                && content_type.is_some_and(|ct| crate::payload::parse_media_type(ct).is_none()));
        use crate::payload::PayloadProblem;
        let problem = if ambiguous {
            PayloadProblem::UnsupportedMediaType
        } else if kind.is_some() && coded && crate::payload::content_encoded(req) {
            PayloadProblem::UnsupportedContentEncoding
        } else {
            return kind.map_or(BodyScreening::Skip, BodyScreening::Screen);
        };
        if self.blocks() {
            BodyScreening::Refuse(problem)
        } else {
            BodyScreening::Report(unreadable(&problem))
        }
    }

    /// Screens a whole body of `kind`, as planned by [`ScreeningRule::plan_body`]; `parsed` is
    /// the payload check's document of this body, if it made one (one parse per body). A body
    /// that cannot be read is refused in `block` mode as its payload problem (400
    /// `malformed_json`, `malformed_multipart`): a more lenient backend parser would read
    /// what was not screened. In `detect` mode it passes, reported as [`Class::UnreadableBody`].
    /// `Ok(Some(d))`: a finding of a `detect` policy (count and log it).
    pub fn judge_body(
        &self,
        kind: &ScreenedBody,
        body: &[u8],
        parsed: Option<&Document<'_>>,
    ) -> Result<Option<Detection>, crate::rejection::Rejection<'static>> {
        let finding = match (parsed, kind) {
            (Some(doc), ScreenedBody::Json) => Ok(self.screen_document(doc)),
            _ => self.screen_body_of(kind, body),
        };
        match finding {
            Ok(Some(d)) if self.blocks() => Err(crate::rejection::Rejection::Blocked(d)),
            Ok(finding) => Ok(finding),
            Err(problem) if self.blocks() => Err(crate::rejection::Rejection::Payload(problem)),
            Err(problem) => Ok(Some(unreadable(&problem))),
        }
    }

    /// Screens a whole body of `kind`. `Err` when it cannot be read (a JSON body that is not
    /// one strict UTF-8 JSON text, a multipart body the strict reader refuses): not screened.
    /// An empty body is nothing to screen, of any kind.
    pub fn screen_body_of(
        &self,
        kind: &ScreenedBody,
        body: &[u8],
    ) -> Result<Option<Detection>, crate::payload::PayloadProblem<'static>> {
        use crate::payload::PayloadProblem;
        match kind {
            ScreenedBody::Form => Ok(self.screen_body("application/x-www-form-urlencoded", body)),
            ScreenedBody::Json if !self.any_injection() || body.is_empty() => Ok(None),
            // Every member, repeated names included: parsers disagree on which duplicate wins
            // (serde_json and Go take the last, others the first), so every value is screened.
            ScreenedBody::Json => match Document::parse(body, Duplicates::KeepAll) {
                Ok(doc) => Ok(self.screen_document(&doc)),
                Err(_) => Err(PayloadProblem::MalformedJson),
            },
            ScreenedBody::Multipart { boundary } => self
                .screen_multipart(boundary, body)
                .map_err(|multipart::Malformed| PayloadProblem::MalformedMultipart),
            _ if !self.any_injection() || body.is_empty() => Ok(None),
            ScreenedBody::Text => Ok(self.found(body, ValueKind::Json, || Location::Text)),
            ScreenedBody::Unlabelled => match Document::parse(body, Duplicates::KeepAll) {
                Ok(doc) if self.bodies.json => Ok(self.screen_document(&doc)),
                _ => Ok(self.found(body, ValueKind::Json, || Location::Text)),
            },
            ScreenedBody::NdJson => self.screen_ndjson(body),
            ScreenedBody::Xml => self.screen_xml(body),
        }
    }

    /// Each non-blank line of a newline-delimited JSON body as one strict JSON text, located
    /// as if the lines were an array (`json./0/name`). A line that is not JSON makes the whole
    /// body unreadable (a streaming backend would read the lines before it).
    fn screen_ndjson(
        &self,
        body: &[u8],
    ) -> Result<Option<Detection>, crate::payload::PayloadProblem<'static>> {
        for (n, line) in body
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.trim_ascii().is_empty())
            .enumerate()
        {
            let doc = Document::parse(line, Duplicates::KeepAll)
                .map_err(|_| crate::payload::PayloadProblem::MalformedJson)?;
            let mut path = vec![Seg::Index(n)];
            if let Some(d) = self.walk(doc.root(), &mut path) {
                return Ok(Some(d));
            }
        }
        Ok(None)
    }

    /// Every text node, CDATA section, attribute value and processing instruction of an XML
    /// body ([`xml::read`]); a body the reader refuses is `malformed_xml`.
    fn screen_xml(
        &self,
        body: &[u8],
    ) -> Result<Option<Detection>, crate::payload::PayloadProblem<'static>> {
        xml::read(body, |path, node, value| {
            self.found(value, ValueKind::Json, || {
                let mut key = String::new();
                for name in path {
                    key.push('/');
                    key.push_str(&sanitize(name));
                    if key.len() > 256 {
                        key.push_str("/...");
                        break;
                    }
                }
                match node {
                    xml::Node::Text => {}
                    xml::Node::Attribute(a) => {
                        key.push_str("/@");
                        key.push_str(&sanitize(a));
                    }
                    xml::Node::Instruction => key.push_str("/?"),
                }
                Location::Xml { path: key }
            })
        })
        .map_err(|xml::Malformed| crate::payload::PayloadProblem::MalformedXml)
    }

    /// Each part's field name, then its file name (file parts) or its value (other parts).
    /// File contents are data, not screened.
    fn screen_multipart(
        &self,
        boundary: &[u8],
        body: &[u8],
    ) -> Result<Option<Detection>, multipart::Malformed> {
        if boundary.is_empty() {
            return Err(multipart::Malformed);
        }
        for part in multipart::parse(body, boundary)? {
            let kind = ValueKind::Multipart;
            if let Some(d) = self.found(&part.name, kind, || Location::FormName) {
                return Ok(Some(d));
            }
            let d = match &part.filename {
                Some(file) => self.found(file, kind, || Location::Filename {
                    name: sanitize(&part.name),
                }),
                // Names compared as sent: multipart field names are not percent-decoded.
                None if self.skip.form.iter().any(|l| l.as_bytes() == &*part.name) => None,
                None => self.found(part.content, kind, || Location::Form {
                    name: sanitize(&part.name),
                }),
            };
            if d.is_some() {
                return Ok(d);
            }
        }
        Ok(None)
    }

    fn any_injection(&self) -> bool {
        self.sqli || self.xss || self.traversal || self.command_injection
    }

    fn found(
        &self,
        raw: &[u8],
        kind: ValueKind,
        at: impl FnOnce() -> Location,
    ) -> Option<Detection> {
        match decode::scan(raw) {
            0 => None,
            mask => self.found_scanned(raw, mask, kind, at),
        }
    }

    /// [`ScreeningRule::found`] of a value whose [`decode::scan`] is `mask` (not 0).
    fn found_scanned(
        &self,
        raw: &[u8],
        mask: u32,
        kind: ValueKind,
        at: impl FnOnce() -> Location,
    ) -> Option<Detection> {
        let (class, rule_id) = self.screen_scanned(raw, mask, kind, [false; 4], true)?;
        let location = at();
        if self.exclude.is_empty() {
            return Some(Detection {
                class,
                rule_id,
                location,
            });
        }
        // An excluded finding leaves the value to the other classes (the rest of the same
        // class is not tried again: a detector reports its first rule only).
        let mut off = [false; 4];
        let mut found = (class, rule_id);
        loop {
            if !self.excluded(found.1, &location) {
                return Some(Detection {
                    class: found.0,
                    rule_id: found.1,
                    location,
                });
            }
            match found.0 {
                Class::Sqli => off[0] = true,
                Class::Xss => off[1] = true,
                Class::Traversal => off[2] = true,
                Class::CommandInjection | Class::Bot | Class::UnreadableBody => off[3] = true,
            }
            found = self.screen_value_except(raw, kind, off)?;
        }
    }

    /// Whether `exclude` silences `rule_id` at `location`.
    fn excluded(&self, rule_id: &str, location: &Location) -> bool {
        let mut key = None;
        self.exclude.iter().any(|e| {
            e.rule_id == rule_id
                && match &e.location {
                    None => true,
                    Some(l) => {
                        let k = key.get_or_insert_with(|| location.key());
                        match l.strip_suffix('*') {
                            Some(prefix) => k.starts_with(prefix),
                            None => k == l,
                        }
                    }
                }
        })
    }

    fn screen_pairs(&self, s: &[u8], form: bool) -> Option<Detection> {
        let (kind, skip) = if form {
            (ValueKind::Form, &self.skip.form)
        } else {
            (ValueKind::Query, &self.skip.query)
        };
        for (name, value) in pairs(s) {
            let d = self.found(name, kind, || {
                if form {
                    Location::FormName
                } else {
                    Location::QueryName
                }
            });
            if d.is_some() {
                return d;
            }
            if value.is_empty() || listed(skip, name, true) {
                continue;
            }
            let d = self.found(value, kind, || {
                let name = sanitize(&decode::decode(name, true));
                if form {
                    Location::Form { name }
                } else {
                    Location::Query { name }
                }
            });
            if d.is_some() {
                return d;
            }
        }
        None
    }

    /// Screens the request head: bots (user agent), then the path, the query parameters
    /// (names and values), the cookies and the configured headers. The first finding.
    pub fn screen_request(&self, req: &RequestView<'_>) -> Option<Detection> {
        // One pass over the map (names compared as bytes): the first user agent, the first
        // request target, whether any cookie header is there and, when every header is
        // screened, the first finding in a screened header (in map order, as a walk of its
        // own would find it). It is answered only after the bots, path, query and cookies,
        // which come first; headers after it are not screened.
        let scan_all = matches!(self.headers, HeaderSet::All) && self.any_injection();
        let (mut ua, mut target, mut cookies) = (None, None, false);
        let mut header_finding = None;
        for (name, value) in req.headers.iter_raw() {
            match name {
                b"user-agent" if ua.is_none() => ua = Some(value),
                b":path" if target.is_none() => target = Some(value),
                b"cookie" => cookies = true,
                _ => {}
            }
            if scan_all && header_finding.is_none() && self.screens_header(name) {
                header_finding = self.screen_header(name, value);
            }
        }
        if let Some(rule_id) = bots::check(
            ua,
            self.bots.block_scanners,
            self.bots.require_user_agent,
            &self.bots.allow,
            vocab::Vocab {
                base: vocab::builtin(),
                extra: &self.extra,
            },
        ) {
            let location = Location::UserAgent;
            if !self.excluded(rule_id, &location) {
                return Some(Detection {
                    class: Class::Bot,
                    rule_id,
                    location,
                });
            }
        }
        if !self.any_injection() {
            return None;
        }
        let target = target.unwrap_or_default();
        let target = target.split(|&b| b == b'#').next().unwrap_or_default();
        let (path, query) = match target.iter().position(|&b| b == b'?') {
            Some(q) => (
                target.get(..q).unwrap_or_default(),
                target.get(q + 1..).unwrap_or_default(),
            ),
            None => (target, &b""[..]),
        };
        if !self.skip.path {
            if let Some(d) = self.found(path, ValueKind::Path, || Location::Path) {
                return Some(d);
            }
        }
        if let Some(d) = self.screen_pairs(query, false) {
            return Some(d);
        }
        // Walked again only when the pass above saw a cookie header.
        let cookie_headers = cookies
            .then(|| req.header_values("cookie"))
            .into_iter()
            .flatten();
        for cookies in cookie_headers {
            for pair in cookies.split(|&b| b == b';') {
                let pair = pair.trim_ascii();
                // A pair without `=` is a value with an empty name (RFC 6265bis 5.6), which
                // some frameworks hand to the application.
                let (name, value) = match pair.iter().position(|&b| b == b'=') {
                    Some(eq) => (
                        pair.get(..eq).unwrap_or_default(),
                        pair.get(eq + 1..).unwrap_or_default(),
                    ),
                    None => (&b""[..], pair),
                };
                if let Some(d) = self.found(name, ValueKind::Cookie, || Location::CookieName) {
                    return Some(d);
                }
                if listed(&self.skip.cookie, name, false) {
                    continue;
                }
                if let Some(d) = self.found(value, ValueKind::Cookie, || Location::Cookie {
                    name: sanitize(name),
                }) {
                    return Some(d);
                }
            }
        }
        match &self.headers {
            HeaderSet::Listed(names) => {
                for header in names {
                    if self.skip.header.iter().any(|h| h == header) {
                        continue;
                    }
                    for value in req.header_values(header) {
                        if let Some(d) = self.screen_header(header.as_bytes(), value) {
                            return Some(d);
                        }
                    }
                }
            }
            HeaderSet::All => return header_finding,
        }
        None
    }

    /// Whether [`HeaderSet::All`] screens the header `name`: not a pseudo-header, not one of
    /// [`NEVER_SCREENED`], not skipped by the policy.
    #[inline]
    fn screens_header(&self, name: &[u8]) -> bool {
        // `NEVER_SCREENED`, matched by length first (a test checks the two agree).
        !(name.first() == Some(&b':')
            || matches!(name, b"authorization" | b"proxy-authorization" | b"cookie")
            || (!self.skip.header.is_empty()
                && self.skip.header.iter().any(|h| h.as_bytes() == name)))
    }

    /// One header value; `name` as sent (a name that is not UTF-8 is located as
    /// [`crate::request::NON_UTF8_NAME`], as [`crate::request::Headers::iter`] reads it).
    fn screen_header(&self, name: &[u8], value: &[u8]) -> Option<Detection> {
        // Most header values (ids, tokens, numbers) hold no byte of interest: done after the
        // scan, before any header syntax is read.
        let mask = decode::scan(value);
        if mask == 0 {
            return None;
        }
        // Headers whose syntax the fast path reads (accept lists, client hints, entity tags).
        if self.inert_applies() && inert::header_inert(name, value, triggers()) {
            return None;
        }
        self.found_scanned(value, mask, ValueKind::Header, || {
            if name == b"user-agent" {
                Location::UserAgent
            } else {
                let name = std::str::from_utf8(name).unwrap_or(crate::request::NON_UTF8_NAME);
                Location::Header {
                    name: sanitize(name.as_bytes()),
                }
            }
        })
    }

    /// Screens a request body of `media_type` (lowercase `type/subtype`, no parameters):
    /// form fields (names and values) and JSON string values. Other types, and JSON that does
    /// not parse, are not screened: the request path uses [`ScreeningRule::judge_body`], which
    /// refuses such JSON; this is for tools that screen a known-good body.
    pub fn screen_body(&self, media_type: &str, body: &[u8]) -> Option<Detection> {
        if !self.any_injection() || body.is_empty() {
            return None;
        }
        if media_type == "application/x-www-form-urlencoded" {
            return self.screen_pairs(body, true);
        }
        let json = media_type == "application/json"
            || (media_type.starts_with("application/") && media_type.ends_with("+json"));
        if !json {
            return None;
        }
        // Every member, repeated names included: parsers disagree on which duplicate wins
        // (serde_json and Go take the last, others the first), so every value is screened.
        let doc = Document::parse(body, Duplicates::KeepAll).ok()?;
        self.screen_document(&doc)
    }

    /// Screens the string values of a JSON value (tests: trees deeper than any parse allows).
    #[cfg(test)]
    pub fn screen_json(&self, value: &Value) -> Option<Detection> {
        self.screen_document(&Document::from_value(value)?)
    }

    /// Screens the member names and string values of an already parsed JSON document.
    pub fn screen_document(&self, doc: &Document<'_>) -> Option<Detection> {
        let mut path = Vec::new();
        self.walk(doc.root(), &mut path)
    }

    fn skipped(&self, path: &[Seg<'_>]) -> bool {
        self.skip.json.iter().any(|p| {
            p.len() <= path.len() && p.iter().zip(path).all(|(pat, seg)| seg_matches(pat, seg))
        })
    }

    fn walk<'a>(&self, v: Json<'a>, path: &mut Vec<Seg<'a>>) -> Option<Detection> {
        if path.len() > MAX_JSON_DEPTH || (!self.skip.json.is_empty() && self.skipped(path)) {
            return None;
        }
        match v {
            Json::String(s) => self.found(s.as_bytes(), ValueKind::Json, || Location::Json {
                pointer: pointer(path),
            }),
            Json::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let d = self.child(item, Seg::Index(i), path);
                    if d.is_some() {
                        return d;
                    }
                }
                None
            }
            Json::Object(members) => {
                for (k, item) in members.iter() {
                    // Names too, as with query and form fields: backends build sort keys,
                    // column lists and file names from member names. Skipping a member's
                    // value never skips its name.
                    let d = self.found(k.as_bytes(), ValueKind::Json, || Location::JsonName {
                        pointer: pointer(path),
                    });
                    if d.is_some() {
                        return d;
                    }
                    let d = self.child(item, Seg::Key(k), path);
                    if d.is_some() {
                        return d;
                    }
                }
                None
            }
            _ => None,
        }
    }

    /// [`ScreeningRule::walk`] of `item` at `path` and `seg`, answering as it does with less
    /// work per member: numbers, booleans and `null` hold nothing to screen (no push, no call),
    /// and a string, when no `skip` pattern reads the path, is screened in place (its segment
    /// is pushed only to name a finding).
    #[inline]
    fn child<'a>(
        &self,
        item: Json<'a>,
        seg: Seg<'a>,
        path: &mut Vec<Seg<'a>>,
    ) -> Option<Detection> {
        match item {
            Json::Null | Json::Bool(_) | Json::Number(_) => None,
            // `walk` would refuse the pushed path when it is longer than `MAX_JSON_DEPTH`.
            Json::String(_) if self.skip.json.is_empty() && path.len() >= MAX_JSON_DEPTH => None,
            Json::String(s) if self.skip.json.is_empty() => {
                self.found(s.as_bytes(), ValueKind::Json, || {
                    path.push(seg);
                    let pointer = pointer(path);
                    path.pop();
                    Location::Json { pointer }
                })
            }
            _ => {
                path.push(seg);
                let d = self.walk(item, path);
                path.pop();
                d
            }
        }
    }
}

/// The report of a body that cannot be read, for `detect` mode: no value, only the problem.
fn unreadable(problem: &crate::payload::PayloadProblem<'_>) -> Detection {
    Detection {
        class: Class::UnreadableBody,
        rule_id: problem.code(),
        location: Location::Body,
    }
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses a JSON pointer (`/a/0/b`, `~1` for `/`, `~0` for `~`) into segments.
fn pointer_segments(p: &str) -> Option<Vec<String>> {
    if p.is_empty() {
        return Some(Vec::new());
    }
    let rest = p.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

fn compile_skip(entry: &str, path: &str, skip: &mut Skip, errors: &mut ConfigErrors) {
    if entry == "path" {
        skip.path = true;
        return;
    }
    let Some((scope, name)) = entry.split_once('.') else {
        errors.add(path, "expected \"path\" or one of query.<name>, header.<name>, cookie.<name>, form.<name>, json.<pointer>");
        return;
    };
    match scope {
        "json" => match pointer_segments(name) {
            Some(segs) => skip.json.push(segs),
            None => errors.add(path, "a JSON pointer must be empty or start with \"/\""),
        },
        _ if name.is_empty() => errors.add(path, "the name is empty"),
        "query" => skip.query.push(name.to_string()),
        "cookie" => skip.cookie.push(name.to_string()),
        "form" => skip.form.push(name.to_string()),
        "header" if is_header_name(name) => skip.header.push(name.to_ascii_lowercase()),
        "header" => errors.add(path, "not a valid header name"),
        _ => errors.add(path, "expected \"path\" or one of query.<name>, header.<name>, cookie.<name>, form.<name>, json.<pointer>"),
    }
}

/// The inert fast path's trigger index, built once (at configure time, from
/// `compile_screening`) from every detector's word lists and the built-in vocabularies.
pub fn triggers() -> &'static inert::Triggers {
    static TRIGGERS: std::sync::OnceLock<inert::Triggers> = std::sync::OnceLock::new();
    TRIGGERS.get_or_init(|| {
        let base = vocab::builtin();
        let mut words: Vec<&[u8]> = Vec::new();
        for list in cmdi::trigger_words()
            .into_iter()
            .chain(sqli::trigger_words())
            .chain(xss::trigger_words())
            .chain(traversal::trigger_words())
        {
            words.extend(list.iter().copied());
        }
        for set in [&base.files, &base.commands, &base.cmdlets] {
            words.extend(set.entries());
        }
        let calls: Vec<&[u8]> = base
            .sql_functions
            .entries()
            .chain(sqli::call_words().iter().copied())
            .collect();
        let substrings: Vec<&[u8]> = sqli::substring_triggers()
            .iter()
            .chain(xss::substring_triggers().iter().flat_map(|l| l.iter()))
            .chain(traversal::substring_triggers().iter())
            .copied()
            .collect();
        inert::Triggers::build(&words, &calls, &substrings)
    })
}

/// Every rule id a detector reports (what `exclude` accepts).
pub const RULE_IDS: &[&str] = &[
    "sqli.tautology",
    "sqli.union",
    "sqli.stacked",
    "sqli.time_based",
    "sqli.schema_probe",
    "sqli.comment_truncation",
    "sqli.function",
    "sqli.function_call",
    "sqli.case_when",
    "sqli.subquery",
    "sqli.clause",
    "sqli.quote_breakout",
    "sqli.nosql_operator",
    "xss.script_tag",
    "xss.event_handler",
    "xss.js_url",
    "xss.dangerous_tag",
    "xss.data_html",
    "xss.css_expression",
    "xss.js_breakout",
    "xss.template",
    "xss.html_tag",
    "xss.dom_sink",
    "xss.utf7",
    "traversal.dotdot",
    "traversal.sensitive_file",
    "traversal.file_scheme",
    "traversal.null_byte",
    "cmdi.chained_command",
    "cmdi.ifs",
    "cmdi.brace_expansion",
    "cmdi.reverse_shell",
    "cmdi.command_line",
    "cmdi.powershell",
    "cmdi.shellshock",
    "cmdi.glob_path",
    "cmdi.windows_variable",
    "cmdi.php_code",
    "cmdi.ssi",
    "bot.scanner",
    "bot.missing_user_agent",
];

/// Longest entry of an `extra` list, and most entries per list.
const MAX_EXTRA_LEN: usize = 128;
const MAX_EXTRA_ENTRIES: usize = 1000;

fn compile_extra(
    v: &Value,
    path: &str,
    extra: &mut vocab::Vocabularies,
    errors: &mut ConfigErrors,
) {
    let Some(map) = reader::named(v, path, errors) else {
        return;
    };
    for (key, list) in map {
        let p = child(path, key);
        if list.is_null() {
            continue;
        }
        let entries = reader::strings(list, &p, errors);
        if entries.len() > MAX_EXTRA_ENTRIES {
            errors.add(&p, format!("at most {MAX_EXTRA_ENTRIES} entries"));
            continue;
        }
        let mut ok = Vec::new();
        for (e, ep) in entries {
            if e.trim().len() < 2 {
                errors.add(
                    &ep,
                    "an entry needs at least 2 characters (a shorter one matches almost anything)",
                );
            } else if e.len() > MAX_EXTRA_LEN {
                errors.add(&ep, format!("longer than {MAX_EXTRA_LEN} bytes"));
            } else {
                ok.push(e);
            }
        }
        let set = vocab::PatternSet::build("", ok);
        match key.as_str() {
            "files" => extra.files = set,
            "commands" => extra.commands = set,
            "cmdlets" => extra.cmdlets = set,
            "sql_functions" => extra.sql_functions = set,
            "scanners" => extra.scanners = set,
            _ => errors.add(
                &p,
                "unknown list (expected files, commands, cmdlets, sql_functions or scanners)",
            ),
        }
    }
}

fn compile_exclusion(v: &Value, path: &str, errors: &mut ConfigErrors) -> Option<Exclusion> {
    let map = reader::named(v, path, errors)?;
    let mut rule_id = None;
    let mut location = None;
    for (k, item) in map {
        let p = child(path, k);
        match (k.as_str(), item) {
            ("rule", Value::String(r)) if RULE_IDS.contains(&r.as_str()) => {
                rule_id = Some(r.clone())
            }
            ("rule", Value::String(_)) => errors.add(&p, "unknown rule id (see docs/screening.md)"),
            ("location", Value::String(l)) if !l.is_empty() => location = Some(l.clone()),
            ("location", Value::Null) => {}
            ("rule" | "location", other) => errors.add(
                &p,
                format!("expected a non-empty string, found {}", kind(other)),
            ),
            _ => errors.add(&p, "unknown field"),
        }
    }
    match rule_id {
        Some(rule_id) => Some(Exclusion { rule_id, location }),
        None => {
            errors.add(path, "missing \"rule\"");
            None
        }
    }
}

/// Compiles the `screening` object at `path`. Every error is collected with its JSON path.
pub fn compile_screening(v: &Value, path: &str) -> Result<ScreeningRule, ConfigErrors> {
    // The built-in vocabularies are indexed here, at configure time, not by the first request.
    let _ = vocab::builtin();
    let _ = triggers();
    let mut errors = ConfigErrors::default();
    let mut rule = ScreeningRule::default();
    let Some(map) = reader::named(v, path, &mut errors) else {
        return Err(errors);
    };
    for (key, value) in map {
        let p = child(path, key);
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "sqli" => rule.sqli = reader::boolean(value, &p, &mut errors).unwrap_or(rule.sqli),
            "xss" => rule.xss = reader::boolean(value, &p, &mut errors).unwrap_or(rule.xss),
            "traversal" => {
                rule.traversal = reader::boolean(value, &p, &mut errors).unwrap_or(rule.traversal)
            }
            "command_injection" => {
                rule.command_injection =
                    reader::boolean(value, &p, &mut errors).unwrap_or(rule.command_injection)
            }
            "sensitivity" => {
                rule.sensitivity = reader::choice(
                    Some((value, p)),
                    &[
                        ("low", Sensitivity::Low),
                        ("medium", Sensitivity::Medium),
                        ("high", Sensitivity::High),
                    ],
                    Sensitivity::Medium,
                    &mut errors,
                )
            }
            "mode" => {
                rule.mode = reader::choice(
                    Some((value, p)),
                    &[("block", Mode::Block), ("detect", Mode::Detect)],
                    Mode::Block,
                    &mut errors,
                )
            }
            "bodies" => {
                rule.bodies = BodyKinds {
                    form: false,
                    json: false,
                    multipart: false,
                    text: false,
                    ndjson: false,
                    xml: false,
                };
                for (kind, kp) in reader::strings(value, &p, &mut errors) {
                    match kind {
                        "form" => rule.bodies.form = true,
                        "json" => rule.bodies.json = true,
                        "multipart" => rule.bodies.multipart = true,
                        "text" => rule.bodies.text = true,
                        "ndjson" => rule.bodies.ndjson = true,
                        "xml" => rule.bodies.xml = true,
                        _ => errors.add(
                            &kp,
                            "expected \"form\", \"json\", \"multipart\", \"text\", \"ndjson\" or \"xml\"",
                        ),
                    }
                }
            }
            "skip" => {
                for (entry, ep) in reader::strings(value, &p, &mut errors) {
                    compile_skip(entry, &ep, &mut rule.skip, &mut errors);
                }
            }
            "headers" if value.as_str() == Some("all") => rule.headers = HeaderSet::All,
            "headers" => {
                let mut listed = Vec::new();
                if !value.is_array() {
                    errors.add(&p, "expected \"all\" or an array of header names");
                    continue;
                }
                for (name, hp) in reader::strings(value, &p, &mut errors) {
                    if !is_header_name(name) {
                        errors.add(&hp, "not a valid header name");
                    } else if name.eq_ignore_ascii_case("cookie") {
                        errors.add(
                            &hp,
                            "cookies are always screened one by one; do not list the header",
                        );
                    } else {
                        let lower = name.to_ascii_lowercase();
                        if !listed.contains(&lower) {
                            listed.push(lower);
                        }
                    }
                }
                rule.headers = HeaderSet::Listed(listed);
            }
            "extra" => compile_extra(value, &p, &mut rule.extra, &mut errors),
            "exclude" => {
                let Value::Array(items) = value else {
                    errors.add(&p, format!("expected an array, found {}", kind(value)));
                    continue;
                };
                for (i, item) in items.iter().enumerate() {
                    let ip = reader::item(&p, i);
                    if let Some(e) = compile_exclusion(item, &ip, &mut errors) {
                        rule.exclude.push(e);
                    }
                }
            }
            "bots" => {
                let Some(bots) = reader::named(value, &p, &mut errors) else {
                    continue;
                };
                for (bk, bv) in bots {
                    let bp = child(&p, bk);
                    if bv.is_null() {
                        continue;
                    }
                    match bk.as_str() {
                        "block_scanners" => {
                            rule.bots.block_scanners =
                                reader::boolean(bv, &bp, &mut errors).unwrap_or(true)
                        }
                        "require_user_agent" => {
                            rule.bots.require_user_agent =
                                reader::boolean(bv, &bp, &mut errors).unwrap_or(false)
                        }
                        "allow" => {
                            for (prefix, ap) in reader::strings(bv, &bp, &mut errors) {
                                if prefix.trim().is_empty() {
                                    errors.add(&ap, "an empty prefix would allow every client");
                                } else {
                                    rule.bots.allow.push(prefix.to_string());
                                }
                            }
                        }
                        _ => errors.add(&bp, "unknown field"),
                    }
                }
            }
            _ => errors.add(&p, "unknown field"),
        }
    }
    if errors.is_empty() {
        Ok(rule)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests;
