//! Payload shape: body size limits (413), allowed content types (415), JSON well-formedness,
//! structural limits and JSON Schema (400), and query/header parameter rules (400).
//!
//! Everything here is compiled once from the policy JSON ([`compile_payload`],
//! [`compile_params`]) and is host-free. The host drives a request through three steps:
//!
//! 1. [`PayloadRule::on_headers`] decides from the headers alone: a `content-length` over the
//!    limit is 413 at once, a content type that is not allowed is 415; otherwise it returns a
//!    [`BodyPlan`] saying whether the body must be seen at all.
//! 2. While the body streams in, [`BodyPlan::accept_chunk`] with the running total answers 413
//!    as soon as the limit is passed, so the host never buffers more than the limit.
//! 3. [`PayloadRule::on_body`] with the whole (buffered) body runs the JSON checks: without a
//!    schema, the allocation-free scanner ([`scan`]) alone (well-formedness and structural
//!    limits); with one, a strict parse into a [`Document`] (duplicate member names are
//!    refused, see below) that applies the same limits as it goes, so a JSON bomb is stopped
//!    at the first limit passed, then the schema validation. Whichever way, a body breaking
//!    several rules gets the answer of the scan first (the first problem in the body), then
//!    of the parse.
//!
//! Duplicate member names: RFC 8259 only says names SHOULD be unique, and parsers disagree on
//! which duplicate wins. When a schema is attached, a body with a duplicate name is refused
//! (`duplicate_key`, 400): otherwise the schema could validate one value while the upstream
//! reads the other. Without a schema nothing reads the values and duplicates pass (screening
//! reads every one of them).
//!
//! Problems never carry request content: a JSON pointer (whose member names come from the
//! body, so it is capped in length and must be escaped by whoever prints it), a keyword, a
//! limit name or a configured parameter name.

pub mod doc;
pub mod params;
pub mod pattern;
pub mod scan;
pub mod schema;

pub use crate::rejection::payload::PayloadProblem;
pub use doc::{Document, Json};
pub use params::{compile_params, ParamKind, ParamRule};
pub use pattern::Pattern;
pub use scan::{JsonLimit, JsonLimits};
pub use schema::{Schema, SchemaFailure};

use crate::config::reader::{child, field, integer, kind, object, ConfigErrors};
use crate::request::{is_tchar, RequestView};
use doc::{Duplicates, ParseError};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// Default `max_body_bytes`: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 20;
/// Largest `max_body_bytes` a configuration may set: 64 MiB (the host buffers up to this).
pub const MAX_MAX_BODY_BYTES: u64 = 64 << 20;

// ---------------------------------------------------------------------------------------------
// Compiled rules
// ---------------------------------------------------------------------------------------------

/// A media range from the configuration: `type/subtype` or `type/*`, lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange {
    pub type_: String,
    /// `None` for `type/*`.
    pub subtype: Option<String>,
}

impl MediaRange {
    fn matches(&self, m: &MediaType<'_>) -> bool {
        self.type_.eq_ignore_ascii_case(m.type_)
            && self
                .subtype
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case(m.subtype))
    }
}

/// Which content types a body may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentTypes {
    /// No `content_types` and no schema.
    Any,
    /// No `content_types` but a schema: JSON media types only (`application/json`,
    /// `application/*+json`), so a schema cannot be bypassed by labelling JSON `text/plain`.
    JsonOnly,
    List(Vec<MediaRange>),
}

/// The JSON checks of one policy (and method).
#[derive(Debug)]
pub struct JsonCheck {
    pub limits: JsonLimits,
    pub schema: Option<Arc<Schema>>,
}

/// The effective payload settings for one method.
#[derive(Debug)]
pub struct PayloadSettings {
    pub max_body_bytes: u64,
    pub content_types: ContentTypes,
    pub require_content_type: bool,
    /// JSON checks, present when `json` or `schema` is configured.
    pub json: Option<JsonCheck>,
}

/// A compiled `payload` section.
#[derive(Debug)]
pub struct PayloadRule {
    pub base: PayloadSettings,
    /// Per-method settings (method names are case-sensitive, as in HTTP).
    pub methods: Vec<(String, PayloadSettings)>,
}

/// What the host must do with the body after the headers passed.
#[derive(Debug, Clone, Copy)]
pub enum BodyPlan<'r> {
    /// No body, or nothing to check: let it stream.
    None,
    /// Count the body (413 past `max_bytes`); if `json` is set, buffer it and call
    /// [`PayloadRule::on_body`] at end of stream.
    Inspect {
        max_bytes: u64,
        json: Option<&'r JsonCheck>,
    },
}

impl BodyPlan<'_> {
    /// Called with the running total of body bytes received so far: 413 once past the limit.
    pub fn accept_chunk(&self, total_so_far: u64) -> Result<(), PayloadProblem<'static>> {
        match self {
            BodyPlan::Inspect { max_bytes, .. } if total_so_far > *max_bytes => {
                Err(PayloadProblem::BodyTooLarge)
            }
            _ => Ok(()),
        }
    }

    /// Whether the whole body must be buffered and passed to [`PayloadRule::on_body`].
    pub fn needs_body(&self) -> bool {
        matches!(self, BodyPlan::Inspect { json: Some(_), .. })
    }
}

impl PayloadRule {
    /// The settings that apply to a request method.
    pub fn settings_for(&self, method: &[u8]) -> &PayloadSettings {
        self.methods
            .iter()
            .find(|(m, _)| m.as_bytes() == method)
            .map_or(&self.base, |(_, s)| s)
    }

    /// Decides from the headers. `end_of_stream` is the host's flag that the headers end the
    /// request: an HTTP/2 or HTTP/3 body may arrive without `content-length` or
    /// `transfer-encoding`, so their absence alone does not mean "no body".
    pub fn on_headers(
        &self,
        req: &RequestView<'_>,
        end_of_stream: bool,
    ) -> Result<BodyPlan<'_>, PayloadProblem<'static>> {
        let s = self.settings_for(req.method());
        let length = content_length(req);
        if length.is_some_and(|n| n > s.max_body_bytes) {
            return Err(PayloadProblem::BodyTooLarge);
        }
        if end_of_stream || length == Some(0) {
            return Ok(BodyPlan::None);
        }
        let mut values = req.header_values("content-type");
        let media = match (values.next(), values.next()) {
            (None, _) => None,
            (Some(v), None) => {
                Some(parse_media_type(v).ok_or(PayloadProblem::UnsupportedMediaType)?)
            }
            // Two content types: which one the upstream honours is anyone's guess.
            (Some(_), Some(_)) => return Err(PayloadProblem::UnsupportedMediaType),
        };
        let allowed = match (&media, &s.content_types) {
            (None, _) => !s.require_content_type,
            (Some(_), ContentTypes::Any) => true,
            (Some(m), ContentTypes::JsonOnly) => m.is_json(),
            (Some(m), ContentTypes::List(list)) => list.iter().any(|r| r.matches(m)),
        };
        if !allowed {
            return Err(PayloadProblem::UnsupportedMediaType);
        }
        // An unlabelled body allowed by the policy is checked as JSON when JSON checks are set:
        // fail closed rather than let an upstream sniff it as JSON unchecked.
        let json = s
            .json
            .as_ref()
            .filter(|_| media.as_ref().is_none_or(MediaType::is_json));
        if json.is_some() && content_encoded(req) {
            // The checks would read compressed bytes as (malformed) JSON, or worse, a body
            // that happens to scan while the upstream decompresses something else.
            return Err(PayloadProblem::UnsupportedContentEncoding);
        }
        if json.is_none() && length.is_some() {
            // Known length within the limit and nothing to read: the codec enforces the length.
            return Ok(BodyPlan::None);
        }
        Ok(BodyPlan::Inspect {
            max_bytes: s.max_body_bytes,
            json,
        })
    }

    /// Checks the whole body as planned by [`PayloadRule::on_headers`].
    pub fn on_body(&self, plan: &BodyPlan<'_>, body: &[u8]) -> Result<(), PayloadProblem<'static>> {
        let BodyPlan::Inspect { json, .. } = plan else {
            return Ok(());
        };
        plan.accept_chunk(u64::try_from(body.len()).unwrap_or(u64::MAX))?;
        match json {
            Some(check) => check_json(check, body),
            None => Ok(()),
        }
    }
}

/// Runs the JSON checks on a whole body.
pub fn check_json(check: &JsonCheck, body: &[u8]) -> Result<(), PayloadProblem<'static>> {
    check_json_keeping(check, body).map(|_| ())
}

/// [`check_json`], handing back the document it parsed for the schema (if any), so that
/// later stages (body screening) need not parse the body again.
pub fn check_json_keeping<'b>(
    check: &JsonCheck,
    body: &'b [u8],
) -> Result<Option<Document<'b>>, PayloadProblem<'static>> {
    let scan = || {
        scan::scan_counting(body, &check.limits).map_err(|e| match e {
            scan::ScanError::Malformed { .. } => PayloadProblem::MalformedJson,
            scan::ScanError::Limit(l) => PayloadProblem::JsonLimits(l),
        })
    };
    let Some(schema) = &check.schema else {
        return scan().map(|_| None);
    };
    // One pass for the common case: the parser applies the scan's limits itself, so a body it
    // accepts is one the scan accepts. Any problem is then answered as scan-then-parse does:
    // the first problem in the body the scan finds wins over a duplicate name or a number
    // beyond f64 (rare, so the body is simply read again).
    let doc = match Document::parse_within(body, Duplicates::Refuse, &check.limits) {
        Ok(doc) => doc,
        Err(_) => parse_strict(body, scan()?)?,
    };
    schema
        .validate_document(&doc)
        .map_err(|f| PayloadProblem::SchemaViolation {
            pointer: f.pointer,
            keyword: f.keyword,
        })?;
    Ok(Some(doc))
}

/// Whether the body carries a content coding other than `identity` (RFC 9110 §8.4): any
/// `content-encoding` value listing another coding, in any of the header's copies. A body a
/// policy must read is refused then (api-guard does not decompress): Envoy's decompressor
/// filter placed before api-guard decompresses it and removes the header, see docs/payload.md.
pub fn content_encoded(req: &RequestView<'_>) -> bool {
    req.header_values("content-encoding").any(|v| {
        v.split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity"))
    })
}

/// The declared body length; `None` when absent or not a plain decimal (Envoy's codecs have
/// already refused malformed or conflicting lengths, so this is a hint, never trusted alone:
/// the streamed total is counted too whenever the body is inspected).
fn content_length(req: &RequestView<'_>) -> Option<u64> {
    let v = req.header("content-length")?;
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // All digits but too many for a u64: certainly over any limit.
    Some(
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX),
    )
}

// ---------------------------------------------------------------------------------------------
// Media types (RFC 9110 §8.3.1)
// ---------------------------------------------------------------------------------------------

/// A parsed `content-type`: `type/subtype`, parameters ignored. Borrowed from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    pub type_: &'a str,
    pub subtype: &'a str,
}

/// `content-type` values clients send verbatim that [`parse_media_type`] reads as JSON (a test
/// checks it), so that the request path can know them by one comparison without parsing.
pub const VERBATIM_JSON: [&[u8]; 3] = [
    b"application/json",
    b"application/json; charset=utf-8",
    b"application/json;charset=utf-8",
];

/// Media types that backend frameworks parse as JSON besides `application/json` and
/// `application/*+json`: ASP.NET Core's JSON input formatter takes `text/json`, Rails registers
/// `text/x-json` and `application/jsonrequest`, and several clients send `application/x-json`.
/// A body so labelled is checked and screened as JSON, so it cannot slip past as "not JSON".
const JSON_ALIASES: [(&str, &str); 4] = [
    ("text", "json"),
    ("application", "x-json"),
    ("text", "x-json"),
    ("application", "jsonrequest"),
];

impl MediaType<'_> {
    /// A type backends read as JSON: `application/json`, any `application/*+json` (RFC 6839
    /// structured syntax suffix), and the aliases in [`JSON_ALIASES`]. Case-insensitive.
    pub fn is_json(&self) -> bool {
        let application = self.type_.eq_ignore_ascii_case("application");
        let suffixed = self
            .subtype
            .len()
            .checked_sub(5)
            .and_then(|at| self.subtype.get(at..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case("+json"));
        (application && (self.subtype.eq_ignore_ascii_case("json") || suffixed))
            || JSON_ALIASES.iter().any(|(t, sub)| {
                self.type_.eq_ignore_ascii_case(t) && self.subtype.eq_ignore_ascii_case(sub)
            })
    }
}

/// Parses `type "/" subtype *( OWS ";" OWS parameter )`; the parameters are skipped, not
/// validated (the upstream parses them; for matching only type and subtype count).
pub fn parse_media_type(v: &[u8]) -> Option<MediaType<'_>> {
    // A value that is not UTF-8 (parameters included) is refused; most are ASCII, checked a
    // word at a time, and only the essence is then read as a `str`.
    if !v.is_ascii() {
        std::str::from_utf8(v).ok()?;
    }
    let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
    let mut essence = v.get(..end)?;
    while let [b' ' | b'\t', rest @ ..] = essence {
        essence = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = essence {
        essence = rest;
    }
    let slash = essence.iter().position(|&b| b == b'/')?;
    let token = |x: &[u8]| !x.is_empty() && x.iter().copied().all(is_tchar);
    let (t, sub) = (essence.get(..slash)?, essence.get(slash + 1..)?);
    if !(token(t) && token(sub)) {
        return None;
    }
    // Token bytes are ASCII: one check of the essence, split at the `/` (a char boundary).
    let essence = std::str::from_utf8(essence).ok()?;
    Some(MediaType {
        type_: essence.get(..slash)?,
        subtype: essence.get(slash + 1..)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Strict parsing (duplicate member names refused)
// ---------------------------------------------------------------------------------------------

/// Parses a body that the scanner accepted into a document, refusing duplicate member names:
/// the answer of the scan-then-parse sequence when the one-pass parse found a problem.
/// `values` is the scanner's count of values. Depth is already bounded by the scan (≤ 100,
/// below the parser's limit of 127).
fn parse_strict(body: &[u8], values: u32) -> Result<Document<'_>, PayloadProblem<'static>> {
    match Document::parse_sized(body, Duplicates::Refuse, values as usize) {
        Ok(doc) => Ok(doc),
        Err(ParseError::DuplicateKey) => Err(PayloadProblem::DuplicateKey),
        // Parsed without limits (the scan applied them): cannot be `Limit`; fail closed.
        Err(ParseError::Malformed | ParseError::Limit) => Err(PayloadProblem::MalformedJson),
        // A number beyond f64: malformed, unless serde_json, which stops at the first problem
        // in document order, would have met a duplicate name first (the parser only sees
        // duplicates when an object closes). Rare enough to ask serde_json itself.
        Err(ParseError::NumberOutOfRange) => Err(serde_refusal(body)),
    }
}

/// Why a strict serde_json parse refuses `body`: a duplicate member name (a data error), or
/// anything else (malformed), whichever it meets first.
fn serde_refusal(body: &[u8]) -> PayloadProblem<'static> {
    let mut de = serde_json::Deserializer::from_slice(body);
    match Shape::deserialize(&mut de).and_then(|Shape| de.end()) {
        Err(e) if e.is_data() => PayloadProblem::DuplicateKey,
        // Accepted after all: cannot happen (serde_json refused the number); fail closed.
        _ => PayloadProblem::MalformedJson,
    }
}

/// A JSON value read only for its shape: duplicate member names are a data error.
struct Shape;

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape)
    }

    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape)
    }

    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<Shape>()?.is_some() {}
        Ok(Shape)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut names = BTreeSet::new();
        while let Some(name) = map.next_key::<String>()? {
            map.next_value::<Shape>()?;
            if !names.insert(name) {
                return Err(de::Error::custom("duplicate member name"));
            }
        }
        Ok(Shape)
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// One level of settings as written: every field optional, so methods can override.
#[derive(Default)]
struct Raw {
    max_body_bytes: Option<u64>,
    content_types: Option<Vec<MediaRange>>,
    require_content_type: Option<bool>,
    json: Option<JsonLimits>,
    schema: Option<Arc<Schema>>,
}

const LEVEL_FIELDS: &[&str] = &[
    "max_body_bytes",
    "content_types",
    "require_content_type",
    "json",
    "schema",
];

fn compile_level(map: &Map<String, Value>, path: &str, errs: &mut ConfigErrors) -> Raw {
    let mut raw = Raw::default();
    if let Some(v) = field(map, "max_body_bytes") {
        raw.max_body_bytes = integer(
            v,
            &child(path, "max_body_bytes"),
            0,
            MAX_MAX_BODY_BYTES,
            errs,
        );
    }
    if let Some(v) = field(map, "content_types") {
        raw.content_types = media_ranges(v, &child(path, "content_types"), errs);
    }
    if let Some(v) = field(map, "require_content_type") {
        match v {
            Value::Bool(b) => raw.require_content_type = Some(*b),
            other => errs.add(
                &child(path, "require_content_type"),
                format!("expected a boolean, found {}", kind(other)),
            ),
        }
    }
    if let Some(v) = field(map, "json") {
        raw.json = json_limits(v, &child(path, "json"), errs);
    }
    if let Some(v) = field(map, "schema") {
        raw.schema = schema::compile(v, &child(path, "schema"), errs).map(Arc::new);
    }
    raw
}

fn media_ranges(v: &Value, path: &str, errs: &mut ConfigErrors) -> Option<Vec<MediaRange>> {
    let Value::Array(items) = v else {
        errs.add(path, "expected an array of media types");
        return None;
    };
    let mut out: Vec<MediaRange> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(s) = item.as_str() else {
            errs.add(&p, "expected a string");
            continue;
        };
        if s.contains(';') {
            errs.add(
                &p,
                "list the bare media type: parameters such as charset are not matched",
            );
            continue;
        }
        let lower = s.trim().to_ascii_lowercase();
        let range = match lower.split_once('/') {
            Some((t, "*")) if t != "*" && !t.is_empty() && t.bytes().all(is_tchar) => MediaRange {
                type_: t.to_string(),
                subtype: None,
            },
            Some((t, sub))
                if !t.is_empty()
                    && !sub.is_empty()
                    && t.bytes().all(is_tchar)
                    && sub.bytes().all(is_tchar)
                    && t != "*"
                    && sub != "*" =>
            {
                MediaRange {
                    type_: t.to_string(),
                    subtype: Some(sub.to_string()),
                }
            }
            _ => {
                errs.add(&p, "expected a media type like application/json or text/*");
                continue;
            }
        };
        if out.contains(&range) {
            errs.add(&p, "duplicate media type");
        } else {
            out.push(range);
        }
    }
    if items.is_empty() {
        errs.add(
            path,
            "an empty list would refuse every body; omit it to allow any type",
        );
    }
    Some(out)
}

fn json_limits(v: &Value, path: &str, errs: &mut ConfigErrors) -> Option<JsonLimits> {
    let known = [
        "max_depth",
        "max_members",
        "max_array_items",
        "max_string_bytes",
        "max_total_values",
    ];
    let map = object(v, path, &known, errs)?;
    let mut l = JsonLimits::default();
    let cap = u64::from(u32::MAX);
    let set = |name: &str, max: u64, slot: &mut u32, errs: &mut ConfigErrors| {
        if let Some(v) = field(map, name) {
            if let Some(n) = integer(v, &child(path, name), 1, max, errs) {
                *slot = u32::try_from(n).unwrap_or(u32::MAX);
            }
        }
    };
    set(
        "max_depth",
        u64::from(scan::MAX_DEPTH_CAP),
        &mut l.max_depth,
        errs,
    );
    set("max_members", cap, &mut l.max_members, errs);
    set("max_array_items", cap, &mut l.max_array_items, errs);
    set("max_string_bytes", cap, &mut l.max_string_bytes, errs);
    set("max_total_values", cap, &mut l.max_total_values, errs);
    Some(l)
}

fn settle(raw: &Raw, base: Option<&Raw>) -> PayloadSettings {
    let pick = |f: fn(&Raw) -> bool| -> Option<&Raw> {
        if f(raw) {
            Some(raw)
        } else {
            base.filter(|b| f(b))
        }
    };
    let max_body_bytes = pick(|r| r.max_body_bytes.is_some())
        .and_then(|r| r.max_body_bytes)
        .unwrap_or(DEFAULT_MAX_BODY_BYTES);
    let listed = pick(|r| r.content_types.is_some()).and_then(|r| r.content_types.clone());
    let schema = pick(|r| r.schema.is_some()).and_then(|r| r.schema.clone());
    let limits = pick(|r| r.json.is_some()).and_then(|r| r.json);
    let require_content_type = pick(|r| r.require_content_type.is_some())
        .and_then(|r| r.require_content_type)
        .unwrap_or(listed.is_some() || schema.is_some());
    let content_types = match (listed, &schema) {
        (Some(list), _) => ContentTypes::List(list),
        (None, Some(_)) => ContentTypes::JsonOnly,
        (None, None) => ContentTypes::Any,
    };
    let json = (limits.is_some() || schema.is_some()).then(|| JsonCheck {
        limits: limits.unwrap_or_default(),
        schema,
    });
    PayloadSettings {
        max_body_bytes,
        content_types,
        require_content_type,
        json,
    }
}

/// Compiles a standalone JSON Schema (for tools such as the OpenAPI importer); `path` is its
/// config path.
pub fn compile_schema(v: &Value, path: &str) -> Result<Schema, ConfigErrors> {
    let mut errs = ConfigErrors::default();
    match schema::compile(v, path, &mut errs) {
        Some(s) if errs.is_empty() => Ok(s),
        _ => Err(errs),
    }
}

/// Compiles a policy's `payload` section; `path` is its config path (e.g. `payload`).
/// Every error is reported with its path.
pub fn compile_payload(v: &Value, path: &str) -> Result<PayloadRule, ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let mut known = LEVEL_FIELDS.to_vec();
    known.push("methods");
    let Some(map) = object(v, path, &known, &mut errs) else {
        return Err(errs);
    };
    let base = compile_level(map, path, &mut errs);
    let mut methods = Vec::new();
    if let Some(m) = field(map, "methods") {
        let mp = child(path, "methods");
        match m {
            Value::Object(entries) => {
                for (name, level) in entries {
                    let p = child(&mp, name);
                    if name.is_empty() || !name.bytes().all(is_tchar) {
                        errs.add(&p, "not an HTTP method name");
                        continue;
                    }
                    if name.bytes().any(|c| c.is_ascii_lowercase()) {
                        errs.add(
                            &p,
                            "method names are case-sensitive; standard methods are uppercase",
                        );
                        continue;
                    }
                    if let Some(level_map) = object(level, &p, LEVEL_FIELDS, &mut errs) {
                        let raw = compile_level(level_map, &p, &mut errs);
                        methods.push((name.clone(), settle(&raw, Some(&base))));
                    }
                }
            }
            _ => errs.add(&mp, "expected an object keyed by method"),
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(PayloadRule {
        base: settle(&base, None),
        methods,
    })
}

#[cfg(test)]
mod tests;
