//! JSON Schema (a draft 2020-12 / draft-07 subset), compiled once at configure time into an
//! arena of nodes, then used to validate request bodies.
//!
//! Compilation is strict: an unsupported keyword is a configuration error (a typo such as
//! `"minimun"` must not silently switch a check off); annotation-only keywords are ignored.
//! `$ref` takes local JSON pointers only (`#`, `#/$defs/x`, `#/definitions/x`, any `#/...`), and
//! is resolved at compile time into an arena index, so cycles are just edges in the graph.
//! `$ref` is an applicator like any other: its siblings apply too (2020-12 semantics).
//!
//! Validation stops at the first failure and reports the instance location as an RFC 6901 JSON
//! pointer plus the keyword, never the value. Its depth and total work are bounded (see
//! [`MAX_EVAL_DEPTH`] and [`MAX_EVAL_STEPS`]), so a cyclic or exponential schema fails closed
//! instead of exhausting the stack or the CPU.

use super::doc::{cmp_names, same_name, sort_stable, Document, Items, Json};
use super::pattern::Pattern;
use crate::config::reader::{child, item, ConfigErrors};
use serde_json::{Number, Value};
use std::cmp::Ordering;
use std::collections::HashMap;

/// Nested evaluations (instance descent plus `$ref`/`allOf`/... chains) before failing closed.
pub const MAX_EVAL_DEPTH: u32 = 256;
/// Schema nodes visited in one validation before failing closed (exponential schemas).
pub const MAX_EVAL_STEPS: u32 = 4_000_000;
/// Largest compiled schema, in nodes.
const MAX_NODES: usize = 10_000;
/// Deepest inline nesting of a schema document (the configuration is trusted, but bounded).
const MAX_SCHEMA_NESTING: u32 = 64;
/// Longest JSON pointer reported; longer ones are cut at a token boundary and end in `/…`.
const MAX_POINTER_BYTES: usize = 256;

/// Keywords that carry no assertion: accepted and ignored.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "examples",
    "default",
    "$schema",
    "$id",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$anchor",
    "contentMediaType",
    "contentEncoding",
];

/// A compiled schema.
#[derive(Debug)]
pub struct Schema {
    nodes: Vec<Node>,
}

/// Where validation failed: the instance location and the keyword that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFailure {
    /// RFC 6901 pointer into the body (`""` is the whole document).
    pub pointer: String,
    /// The failing keyword (`"type"`, `"required"`, ...), or `"$evaluation_limit"` when the
    /// schema needed more work than [`MAX_EVAL_STEPS`]/[`MAX_EVAL_DEPTH`] allow.
    pub keyword: &'static str,
}

#[derive(Debug)]
enum Node {
    Bool(bool),
    Keywords(Vec<Kw>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Email,
    Uuid,
    DateTime,
}

/// JSON types as bits; `integer` is a subset of `number`.
const T_NULL: u8 = 1;
const T_BOOL: u8 = 2;
const T_OBJECT: u8 = 4;
const T_ARRAY: u8 = 8;
const T_NUMBER: u8 = 16;
const T_STRING: u8 = 32;
const T_INTEGER: u8 = 64;

#[derive(Debug)]
enum Kw {
    Type(u8),
    /// Sorted by name, as the members of an instance are.
    Properties(Vec<(String, usize)>),
    Required(Vec<String>),
    /// Applies to members not named in `properties` of the same schema (`known`, sorted).
    AdditionalProperties {
        node: usize,
        known: Vec<String>,
    },
    /// Positional schemas (`prefixItems`, or draft-07 array-form `items`).
    PrefixItems(Vec<usize>),
    /// Items after the prefix (`items`, or draft-07 `additionalItems`).
    Items {
        node: usize,
        skip: usize,
    },
    /// The options, as one array document.
    Enum(Document<'static>),
    Const(Document<'static>),
    Minimum(Number),
    Maximum(Number),
    ExclusiveMinimum(Number),
    ExclusiveMaximum(Number),
    MinLength(u64),
    MaxLength(u64),
    Pattern(Box<Pattern>),
    MinItems(u64),
    MaxItems(u64),
    UniqueItems,
    MinProperties(u64),
    MaxProperties(u64),
    Format(Format),
    AllOf(Vec<usize>),
    AnyOf(Vec<usize>),
    OneOf(Vec<usize>),
    Not(usize),
    Ref(usize),
}

impl Kw {
    fn name(&self) -> &'static str {
        match self {
            Kw::Type(_) => "type",
            Kw::Properties(_) => "properties",
            Kw::Required(_) => "required",
            Kw::AdditionalProperties { .. } => "additionalProperties",
            Kw::PrefixItems(_) => "prefixItems",
            Kw::Items { .. } => "items",
            Kw::Enum(_) => "enum",
            Kw::Const(_) => "const",
            Kw::Minimum(_) => "minimum",
            Kw::Maximum(_) => "maximum",
            Kw::ExclusiveMinimum(_) => "exclusiveMinimum",
            Kw::ExclusiveMaximum(_) => "exclusiveMaximum",
            Kw::MinLength(_) => "minLength",
            Kw::MaxLength(_) => "maxLength",
            Kw::Pattern(_) => "pattern",
            Kw::MinItems(_) => "minItems",
            Kw::MaxItems(_) => "maxItems",
            Kw::UniqueItems => "uniqueItems",
            Kw::MinProperties(_) => "minProperties",
            Kw::MaxProperties(_) => "maxProperties",
            Kw::Format(_) => "format",
            Kw::AllOf(_) => "allOf",
            Kw::AnyOf(_) => "anyOf",
            Kw::OneOf(_) => "oneOf",
            Kw::Not(_) => "not",
            Kw::Ref(_) => "$ref",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------

struct Compiler<'a> {
    root: &'a Value,
    base_path: String,
    nodes: Vec<Node>,
    /// `$ref` targets already given a node, by canonical pointer (`#/$defs/x`).
    by_pointer: HashMap<String, usize>,
    /// Reserved nodes still to compile: (node, value, config path, pointer).
    pending: Vec<(usize, &'a Value, String, String)>,
    too_many: bool,
}

/// Compiles `v` (the schema document) whose config path is `path`.
pub(crate) fn compile(v: &Value, path: &str, errs: &mut ConfigErrors) -> Option<Schema> {
    let before = errs.len();
    let mut c = Compiler {
        root: v,
        base_path: path.to_string(),
        nodes: Vec::new(),
        by_pointer: HashMap::new(),
        pending: Vec::new(),
        too_many: false,
    };
    let root = c.reserve();
    c.by_pointer.insert("#".to_string(), root);
    c.pending.push((root, v, path.to_string(), "#".to_string()));
    while let Some((index, value, p, pointer)) = c.pending.pop() {
        let node = c.node(value, &p, &pointer, 0, errs);
        if let Some(slot) = c.nodes.get_mut(index) {
            *slot = node;
        }
    }
    if c.too_many {
        errs.add(
            path,
            format!("schema is too large (more than {MAX_NODES} subschemas)"),
        );
    }
    (errs.len() == before).then_some(Schema { nodes: c.nodes })
}

fn escape_token(t: &str) -> String {
    t.replace('~', "~0").replace('/', "~1")
}

impl<'a> Compiler<'a> {
    fn reserve(&mut self) -> usize {
        if self.nodes.len() >= MAX_NODES {
            self.too_many = true;
            return 0;
        }
        self.nodes.push(Node::Bool(true));
        self.nodes.len() - 1
    }

    /// Resolves a local `$ref` to a node index, scheduling its compilation the first time.
    fn reference(&mut self, target: &str, path: &str, errs: &mut ConfigErrors) -> Option<usize> {
        let Some(fragment) = target.strip_prefix('#') else {
            errs.add(
                path,
                "only local references (starting with '#') are supported",
            );
            return None;
        };
        if !fragment.is_empty() && !fragment.starts_with('/') {
            errs.add(
                path,
                "only JSON-pointer references ('#/...') are supported, not anchors",
            );
            return None;
        }
        // Resolve the pointer and build both its canonical form and its config path.
        let mut value = self.root;
        let mut config_path = self.base_path.clone();
        let mut canonical = String::from("#");
        for raw in fragment.split('/').skip(1) {
            let token = match percent_decode_str(raw) {
                Some(t) => t.replace("~1", "/").replace("~0", "~"),
                None => {
                    errs.add(path, "reference is not a valid JSON pointer");
                    return None;
                }
            };
            canonical.push('/');
            canonical.push_str(&escape_token(&token));
            let next = match value {
                Value::Object(m) => m.get(&token),
                Value::Array(a) => token.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            };
            let Some(next) = next else {
                errs.add(path, format!("reference target {target:?} does not exist"));
                return None;
            };
            config_path = match value {
                Value::Array(_) => format!("{config_path}[{token}]"),
                _ => child(&config_path, &token),
            };
            value = next;
        }
        if let Some(&index) = self.by_pointer.get(&canonical) {
            return Some(index);
        }
        let index = self.reserve();
        self.by_pointer.insert(canonical.clone(), index);
        self.pending.push((index, value, config_path, canonical));
        Some(index)
    }

    /// Compiles an inline subschema into a new node.
    fn sub(
        &mut self,
        v: &'a Value,
        path: &str,
        pointer: &str,
        nesting: u32,
        errs: &mut ConfigErrors,
    ) -> usize {
        let index = self.reserve();
        let node = self.node(v, path, pointer, nesting + 1, errs);
        if let Some(slot) = self.nodes.get_mut(index) {
            *slot = node;
        }
        index
    }

    fn subs(
        &mut self,
        v: &'a Value,
        path: &str,
        pointer: &str,
        nesting: u32,
        errs: &mut ConfigErrors,
    ) -> Vec<usize> {
        match v {
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, s)| self.sub(s, &item(path, i), &format!("{pointer}/{i}"), nesting, errs))
                .collect(),
            _ => {
                errs.add(path, "expected a non-empty array of schemas");
                Vec::new()
            }
        }
    }

    fn node(
        &mut self,
        v: &'a Value,
        path: &str,
        pointer: &str,
        nesting: u32,
        errs: &mut ConfigErrors,
    ) -> Node {
        if nesting > MAX_SCHEMA_NESTING {
            errs.add(
                path,
                format!("schema nested deeper than {MAX_SCHEMA_NESTING} levels"),
            );
            return Node::Bool(false);
        }
        let map = match v {
            Value::Bool(b) => return Node::Bool(*b),
            Value::Object(m) => m,
            _ => {
                errs.add(path, "a schema must be an object or a boolean");
                return Node::Bool(false);
            }
        };
        let mut kws = Vec::new();
        // Draft-07 array-form `items` turns `additionalItems` into the rest schema.
        let tuple_items = matches!(map.get("items"), Some(Value::Array(_)));
        let mut prefix_len = 0usize;
        if let Some(Value::Array(a)) = map.get("prefixItems") {
            prefix_len = a.len();
        } else if let Some(Value::Array(a)) = map.get("items") {
            prefix_len = a.len();
        }
        for (key, value) in map {
            let p = child(path, key);
            let ptr = format!("{pointer}/{}", escape_token(key));
            let kw = match key.as_str() {
                k if ANNOTATIONS.contains(&k) => None,
                "$defs" | "definitions" => {
                    // Compiled through references so each definition is one node, but every
                    // definition is compiled (and checked) even if nothing refers to it.
                    match value {
                        Value::Object(defs) => {
                            for name in defs.keys() {
                                let target = format!("{ptr}/{}", escape_token(name));
                                self.reference(&target, &child(&p, name), errs);
                            }
                        }
                        _ => errs.add(&p, "expected an object of schemas"),
                    }
                    None
                }
                "type" => type_set(value, &p, errs).map(Kw::Type),
                "properties" => match value {
                    Value::Object(props) => {
                        let mut compiled: Vec<(String, usize)> = props
                            .iter()
                            .map(|(name, s)| {
                                let n = self.sub(
                                    s,
                                    &child(&p, name),
                                    &format!("{ptr}/{}", escape_token(name)),
                                    nesting,
                                    errs,
                                );
                                (name.clone(), n)
                            })
                            .collect();
                        // Already in order (a Map iterates so), unless serde_json's
                        // preserve_order is ever switched on.
                        sort_stable(&mut compiled, |a, b| cmp_names(&a.0, &b.0));
                        Some(Kw::Properties(compiled))
                    }
                    _ => {
                        errs.add(&p, "expected an object of schemas");
                        None
                    }
                },
                "required" => string_set(value, &p, errs).map(Kw::Required),
                "additionalProperties" => {
                    let node = self.sub(value, &p, &ptr, nesting, errs);
                    let mut known: Vec<String> = match map.get("properties") {
                        Some(Value::Object(props)) => props.keys().cloned().collect(),
                        _ => Vec::new(),
                    };
                    sort_stable(&mut known, |a, b| cmp_names(a, b));
                    Some(Kw::AdditionalProperties { node, known })
                }
                "prefixItems" => {
                    if tuple_items {
                        errs.add(&p, "use either prefixItems or array-form items, not both");
                    }
                    Some(Kw::PrefixItems(self.subs(value, &p, &ptr, nesting, errs)))
                }
                "items" if tuple_items => {
                    Some(Kw::PrefixItems(self.subs(value, &p, &ptr, nesting, errs)))
                }
                "items" => Some(Kw::Items {
                    node: self.sub(value, &p, &ptr, nesting, errs),
                    skip: prefix_len,
                }),
                "additionalItems" => {
                    if tuple_items {
                        Some(Kw::Items {
                            node: self.sub(value, &p, &ptr, nesting, errs),
                            skip: prefix_len,
                        })
                    } else {
                        // Without array-form items it has no effect (draft-07); still check it.
                        self.sub(value, &p, &ptr, nesting, errs);
                        None
                    }
                }
                "enum" => match value {
                    Value::Array(items) if !items.is_empty() => {
                        document(value, &p, errs).map(Kw::Enum)
                    }
                    _ => {
                        errs.add(&p, "expected a non-empty array");
                        None
                    }
                },
                "const" => document(value, &p, errs).map(Kw::Const),
                "minimum" => number(value, &p, errs).map(Kw::Minimum),
                "maximum" => number(value, &p, errs).map(Kw::Maximum),
                "exclusiveMinimum" | "exclusiveMaximum" => {
                    let min = key == "exclusiveMinimum";
                    match value {
                        // Draft-4 form: a boolean that makes minimum/maximum exclusive.
                        Value::Bool(flag) => {
                            let bound = if min { "minimum" } else { "maximum" };
                            match map.get(bound) {
                                Some(Value::Number(n)) if *flag => Some(if min {
                                    Kw::ExclusiveMinimum(n.clone())
                                } else {
                                    Kw::ExclusiveMaximum(n.clone())
                                }),
                                Some(_) => None,
                                None => {
                                    errs.add(&p, format!("boolean form needs {bound}"));
                                    None
                                }
                            }
                        }
                        _ => number(value, &p, errs).map(|n| {
                            if min {
                                Kw::ExclusiveMinimum(n)
                            } else {
                                Kw::ExclusiveMaximum(n)
                            }
                        }),
                    }
                }
                "minLength" => count(value, &p, errs).map(Kw::MinLength),
                "maxLength" => count(value, &p, errs).map(Kw::MaxLength),
                "minItems" => count(value, &p, errs).map(Kw::MinItems),
                "maxItems" => count(value, &p, errs).map(Kw::MaxItems),
                "minProperties" => count(value, &p, errs).map(Kw::MinProperties),
                "maxProperties" => count(value, &p, errs).map(Kw::MaxProperties),
                "uniqueItems" => match value {
                    Value::Bool(true) => Some(Kw::UniqueItems),
                    Value::Bool(false) => None,
                    _ => {
                        errs.add(&p, "expected a boolean");
                        None
                    }
                },
                "pattern" => match value {
                    Value::String(s) => match Pattern::new(s) {
                        Ok(re) => Some(Kw::Pattern(Box::new(re))),
                        Err(e) => {
                            errs.add(&p, format!("invalid pattern: {e}"));
                            None
                        }
                    },
                    _ => {
                        errs.add(&p, "expected a string");
                        None
                    }
                },
                "format" => match value {
                    Value::String(s) => match s.as_str() {
                        "email" => Some(Kw::Format(Format::Email)),
                        "uuid" => Some(Kw::Format(Format::Uuid)),
                        "date-time" => Some(Kw::Format(Format::DateTime)),
                        // Other formats are annotations (the 2020-12 default).
                        _ => None,
                    },
                    _ => {
                        errs.add(&p, "expected a string");
                        None
                    }
                },
                "allOf" => Some(Kw::AllOf(self.subs(value, &p, &ptr, nesting, errs))),
                "anyOf" => Some(Kw::AnyOf(self.subs(value, &p, &ptr, nesting, errs))),
                "oneOf" => Some(Kw::OneOf(self.subs(value, &p, &ptr, nesting, errs))),
                "not" => Some(Kw::Not(self.sub(value, &p, &ptr, nesting, errs))),
                "$ref" => match value {
                    Value::String(target) => self.reference(target, &p, errs).map(Kw::Ref),
                    _ => {
                        errs.add(&p, "expected a string");
                        None
                    }
                },
                _ => {
                    errs.add(&p, "unsupported schema keyword");
                    None
                }
            };
            kws.extend(kw);
        }
        Node::Keywords(kws)
    }
}

/// An `enum` or `const` value, kept in the form instances are compared in.
fn document(v: &Value, path: &str, errs: &mut ConfigErrors) -> Option<Document<'static>> {
    let doc = Document::from_value(v);
    if doc.is_none() {
        errs.add(path, "value is too large");
    }
    doc
}

fn percent_decode_str(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = crate::request::percent_decode(s.as_bytes(), false);
    String::from_utf8(bytes.into_owned()).ok()
}

fn type_set(v: &Value, path: &str, errs: &mut ConfigErrors) -> Option<u8> {
    let one = |s: &str| -> Option<u8> {
        Some(match s {
            "null" => T_NULL,
            "boolean" => T_BOOL,
            "object" => T_OBJECT,
            "array" => T_ARRAY,
            "number" => T_NUMBER,
            "string" => T_STRING,
            "integer" => T_INTEGER,
            _ => return None,
        })
    };
    match v {
        Value::String(s) => {
            let t = one(s);
            if t.is_none() {
                errs.add(path, "unknown type name");
            }
            t
        }
        Value::Array(items) if !items.is_empty() => {
            let mut set = 0u8;
            for (i, t) in items.iter().enumerate() {
                match t.as_str().and_then(one) {
                    Some(bit) => set |= bit,
                    None => errs.add(&item(path, i), "unknown type name"),
                }
            }
            Some(set)
        }
        _ => {
            errs.add(
                path,
                "expected a type name or a non-empty array of type names",
            );
            None
        }
    }
}

fn string_set(v: &Value, path: &str, errs: &mut ConfigErrors) -> Option<Vec<String>> {
    let Value::Array(items) = v else {
        errs.add(path, "expected an array of strings");
        return None;
    };
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (i, s) in items.iter().enumerate() {
        match s {
            Value::String(s) if out.contains(s) => errs.add(&item(path, i), "duplicate name"),
            Value::String(s) => out.push(s.clone()),
            _ => errs.add(&item(path, i), "expected a string"),
        }
    }
    Some(out)
}

fn number(v: &Value, path: &str, errs: &mut ConfigErrors) -> Option<Number> {
    match v {
        Value::Number(n) => Some(n.clone()),
        _ => {
            errs.add(path, "expected a number");
            None
        }
    }
}

fn count(v: &Value, path: &str, errs: &mut ConfigErrors) -> Option<u64> {
    let n = v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19)
            .map(|f| f as u64)
    });
    if n.is_none() {
        errs.add(path, "expected a non-negative whole number");
    }
    n
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Seg<'v> {
    Key(&'v str),
    Index(usize),
}

struct Ctx<'v> {
    /// Instance location of the value being validated.
    path: Vec<Seg<'v>>,
    depth: u32,
    steps: u32,
    /// Inside anyOf/oneOf/not: failures are expected, so do not render pointers.
    quiet: u32,
}

/// A failure; the pointer is only rendered outside speculative branches.
struct Fail {
    keyword: &'static str,
    pointer: Option<String>,
}

const LIMIT: &str = "$evaluation_limit";

impl Schema {
    /// Validates `instance`; the first failure names its pointer and keyword. (Request bodies
    /// go through [`Schema::validate_document`]; this copies the value into a document.)
    pub fn validate(&self, instance: &Value) -> Result<(), SchemaFailure> {
        match Document::from_value(instance) {
            Some(doc) => self.validate_document(&doc),
            None => Err(SchemaFailure {
                pointer: String::new(),
                keyword: LIMIT,
            }),
        }
    }

    /// Validates a parsed body; the first failure names its pointer and keyword.
    pub fn validate_document(&self, doc: &Document<'_>) -> Result<(), SchemaFailure> {
        let mut ctx = Ctx {
            path: Vec::new(),
            depth: 0,
            steps: 0,
            quiet: 0,
        };
        self.check(0, doc.root(), &mut ctx)
            .map_err(|f| SchemaFailure {
                pointer: f.pointer.unwrap_or_default(),
                keyword: f.keyword,
            })
    }

    fn fail(&self, keyword: &'static str, ctx: &Ctx<'_>) -> Fail {
        let pointer = (ctx.quiet == 0).then(|| render(&ctx.path));
        Fail { keyword, pointer }
    }

    /// Validates `v` against node `n`, then `child` locations pushed on `ctx.path`.
    fn at<'v>(
        &'v self,
        n: usize,
        v: Json<'v>,
        seg: Seg<'v>,
        ctx: &mut Ctx<'v>,
    ) -> Result<(), Fail> {
        ctx.path.push(seg);
        let r = self.check(n, v, ctx);
        ctx.path.pop();
        r
    }

    /// Speculative evaluation (anyOf/oneOf/not branches): failures are cheap and quiet, but the
    /// evaluation limit still propagates (fail closed).
    fn probe<'v>(&'v self, n: usize, v: Json<'v>, ctx: &mut Ctx<'v>) -> Result<bool, Fail> {
        ctx.quiet += 1;
        let r = self.check(n, v, ctx);
        ctx.quiet -= 1;
        match r {
            Ok(()) => Ok(true),
            Err(f) if f.keyword == LIMIT => Err(self.fail(LIMIT, ctx)),
            Err(_) => Ok(false),
        }
    }

    fn check<'v>(&'v self, n: usize, v: Json<'v>, ctx: &mut Ctx<'v>) -> Result<(), Fail> {
        ctx.steps = ctx.steps.saturating_add(1);
        if ctx.steps > MAX_EVAL_STEPS || ctx.depth >= MAX_EVAL_DEPTH {
            return Err(self.fail(LIMIT, ctx));
        }
        let kws = match self.nodes.get(n) {
            Some(Node::Bool(true)) => return Ok(()),
            Some(Node::Keywords(kws)) => kws,
            // `false`, or an index that cannot exist: fail closed.
            Some(Node::Bool(false)) | None => return Err(self.fail("false", ctx)),
        };
        ctx.depth += 1;
        let r = kws.iter().try_for_each(|kw| self.keyword(kw, v, ctx));
        ctx.depth -= 1;
        r
    }

    fn keyword<'v>(&'v self, kw: &'v Kw, v: Json<'v>, ctx: &mut Ctx<'v>) -> Result<(), Fail> {
        let ok = match (kw, v) {
            (Kw::Type(set), _) => type_matches(*set, v),
            (Kw::Properties(props), Json::Object(m)) => {
                // Both lists are in name order: one merge instead of a lookup per name.
                let mut at = 0;
                for (name, node) in props {
                    while m.cmp_name(at, name) == Some(Ordering::Less) {
                        at += 1;
                    }
                    if m.cmp_name(at, name) == Some(Ordering::Equal) {
                        if let Some(value) = m.value(at) {
                            self.at(*node, value, Seg::Key(name), ctx)
                                .map_err(|f| self.rename(f, "properties"))?;
                        }
                        at += 1;
                    }
                }
                true
            }
            (Kw::Required(names), Json::Object(m)) => {
                if let Some(missing) = names.iter().find(|n| !m.contains_key(n)) {
                    // Point at the missing member: it is a name from the schema, not the body.
                    ctx.path.push(Seg::Key(missing));
                    let f = self.fail("required", ctx);
                    ctx.path.pop();
                    return Err(f);
                }
                true
            }
            (Kw::AdditionalProperties { node, known }, Json::Object(m)) => {
                // Both lists are in name order: one merge instead of a lookup per member.
                let mut known = known.iter().peekable();
                for (name, value) in m.iter() {
                    while known
                        .next_if(|k| cmp_names(k, name) == Ordering::Less)
                        .is_some()
                    {}
                    if known.peek().is_none_or(|k| !same_name(k, name)) {
                        self.at(*node, value, Seg::Key(name), ctx)
                            .map_err(|f| self.rename(f, "additionalProperties"))?;
                    }
                }
                true
            }
            (Kw::PrefixItems(nodes), Json::Array(a)) => {
                for (i, (node, value)) in nodes.iter().zip(a.iter()).enumerate() {
                    self.at(*node, value, Seg::Index(i), ctx)
                        .map_err(|f| self.rename(f, "prefixItems"))?;
                }
                true
            }
            (Kw::Items { node, skip }, Json::Array(a)) => {
                for (i, value) in a.iter().enumerate().skip(*skip) {
                    self.at(*node, value, Seg::Index(i), ctx)
                        .map_err(|f| self.rename(f, "items"))?;
                }
                true
            }
            (Kw::Enum(options), _) => match options.root() {
                Json::Array(options) => options.iter().any(|o| json_eq(o, v)),
                _ => false,
            },
            (Kw::Const(c), _) => json_eq(c.root(), v),
            (Kw::Minimum(b), Json::Number(x)) => num_cmp(x, b) != Ordering::Less,
            (Kw::Maximum(b), Json::Number(x)) => num_cmp(x, b) != Ordering::Greater,
            (Kw::ExclusiveMinimum(b), Json::Number(x)) => num_cmp(x, b) == Ordering::Greater,
            (Kw::ExclusiveMaximum(b), Json::Number(x)) => num_cmp(x, b) == Ordering::Less,
            (Kw::MinLength(n), Json::String(s)) => s.chars().count() as u64 >= *n,
            (Kw::MaxLength(n), Json::String(s)) => {
                // Bytes bound chars from above: skip the count when it cannot fail.
                s.len() as u64 <= *n || s.chars().count() as u64 <= *n
            }
            (Kw::Pattern(re), Json::String(s)) => re.is_match(s),
            (Kw::MinItems(n), Json::Array(a)) => a.len() as u64 >= *n,
            (Kw::MaxItems(n), Json::Array(a)) => a.len() as u64 <= *n,
            (Kw::UniqueItems, Json::Array(a)) => all_unique(a),
            (Kw::MinProperties(n), Json::Object(m)) => m.len() as u64 >= *n,
            (Kw::MaxProperties(n), Json::Object(m)) => m.len() as u64 <= *n,
            (Kw::Format(f), Json::String(s)) => format_ok(*f, s),
            (Kw::AllOf(nodes), _) => {
                for node in nodes {
                    self.check(*node, v, ctx)?;
                }
                true
            }
            (Kw::AnyOf(nodes), _) => {
                let mut any = false;
                for node in nodes {
                    if self.probe(*node, v, ctx)? {
                        any = true;
                        break;
                    }
                }
                any
            }
            (Kw::OneOf(nodes), _) => {
                let mut matched = 0;
                for node in nodes {
                    if self.probe(*node, v, ctx)? {
                        matched += 1;
                        if matched > 1 {
                            break;
                        }
                    }
                }
                matched == 1
            }
            (Kw::Not(node), _) => !self.probe(*node, v, ctx)?,
            (Kw::Ref(node), _) => {
                self.check(*node, v, ctx)?;
                true
            }
            // Type-specific keywords ignore other types.
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(self.fail(kw.name(), ctx))
        }
    }

    /// A `false` subschema (`"items": false`, `"additionalProperties": false`) is reported as
    /// the keyword that holds it, which says more than `false`.
    fn rename(&self, f: Fail, keyword: &'static str) -> Fail {
        if f.keyword == "false" {
            Fail { keyword, ..f }
        } else {
            f
        }
    }
}

fn render(path: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        let before = out.len();
        out.push('/');
        match seg {
            Seg::Key(k) => {
                for c in k.chars() {
                    match c {
                        '~' => out.push_str("~0"),
                        '/' => out.push_str("~1"),
                        c => out.push(c),
                    }
                }
            }
            Seg::Index(i) => out.push_str(&i.to_string()),
        }
        if out.len() > MAX_POINTER_BYTES {
            out.truncate(before);
            out.push_str("/…");
            break;
        }
    }
    out
}

fn type_matches(set: u8, v: Json<'_>) -> bool {
    let bit = match v {
        Json::Null => T_NULL,
        Json::Bool(_) => T_BOOL,
        Json::Object(_) => T_OBJECT,
        Json::Array(_) => T_ARRAY,
        Json::String(_) => T_STRING,
        Json::Number(n) => {
            if set & T_NUMBER != 0 {
                return true;
            }
            return set & T_INTEGER != 0 && is_integer(n);
        }
    };
    set & bit != 0
}

/// 2020-12: any number with a zero fractional part is an integer (`1.0` included).
fn is_integer(n: &Number) -> bool {
    n.is_i64()
        || n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

fn as_i128(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// Numeric order: exact for integers, `f64` otherwise. JSON has no NaN, so it is total.
fn num_cmp(a: &Number, b: &Number) -> Ordering {
    match (as_i128(a), as_i128(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let x = a.as_f64().unwrap_or(0.0);
            let y = b.as_f64().unwrap_or(0.0);
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
    }
}

/// JSON Schema equality: numbers by value (`1 == 1.0`), objects regardless of member order
/// (members are in name order in a document). Agrees with `json_cmp(a, b) == Equal`.
fn json_eq(a: Json<'_>, b: Json<'_>) -> bool {
    match (a, b) {
        (Json::Null, Json::Null) => true,
        (Json::Bool(x), Json::Bool(y)) => x == y,
        (Json::Number(x), Json::Number(y)) => num_cmp(x, y) == Ordering::Equal,
        (Json::String(x), Json::String(y)) => same_name(x, y),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| json_eq(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((kp, p), (kq, q))| same_name(kp, kq) && json_eq(p, q))
        }
        _ => false,
    }
}

fn rank(v: Json<'_>) -> u8 {
    match v {
        Json::Null => 0,
        Json::Bool(_) => 1,
        Json::Number(_) => 2,
        Json::String(_) => 3,
        Json::Array(_) => 4,
        Json::Object(_) => 5,
    }
}

/// A total order consistent with [`json_eq`], so uniqueItems can sort instead of comparing
/// every pair (n² on a 10k-item array is a CPU bomb). Recursion follows the instance's
/// depth, which the parser bounds (`max_depth`, at most 100). Members are in name order in a
/// document, so objects compare name by name, then value by value.
fn json_cmp(a: Json<'_>, b: Json<'_>) -> Ordering {
    match (a, b) {
        (Json::Bool(x), Json::Bool(y)) => x.cmp(&y),
        (Json::Number(x), Json::Number(y)) => num_cmp(x, y),
        (Json::String(x), Json::String(y)) => cmp_names(x, y),
        (Json::Array(x), Json::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let o = json_cmp(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Json::Object(x), Json::Object(y)) => {
            let o = x.len().cmp(&y.len());
            if o != Ordering::Equal {
                return o;
            }
            for ((p, _), (q, _)) in x.iter().zip(y.iter()) {
                let o = cmp_names(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            for ((_, p), (_, q)) in x.iter().zip(y.iter()) {
                let o = json_cmp(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Arrays up to this length are checked pair by pair, without allocating.
const PAIRWISE_UNIQUE_MAX: usize = 16;

fn all_unique(a: Items<'_>) -> bool {
    if a.len() <= PAIRWISE_UNIQUE_MAX {
        return a
            .iter()
            .enumerate()
            .all(|(i, x)| a.iter().skip(i + 1).all(|y| !json_eq(x, y)));
    }
    let mut items: Vec<Json<'_>> = a.iter().collect();
    sort_stable(&mut items, |x, y| json_cmp(*x, *y));
    items
        .windows(2)
        .all(|w| matches!(w, [x, y] if json_cmp(*x, *y) != Ordering::Equal))
}

// ---------------------------------------------------------------------------------------------
// Formats (hand-written, linear)
// ---------------------------------------------------------------------------------------------

fn format_ok(f: Format, s: &str) -> bool {
    match f {
        Format::Email => email(s),
        Format::Uuid => uuid(s),
        Format::DateTime => date_time(s),
    }
}

/// RFC 5321 mailbox, dot-atom form only (no quoted local parts, no address literals): the
/// forms API clients send. Local part ≤ 64 bytes, domain ≤ 253 bytes of LDH labels.
fn email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let atext = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c);
    let local_ok = (1..=64).contains(&local.len())
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(atext));
    let domain_ok = (1..=253).contains(&domain.len())
        && domain.split('.').all(|label| {
            let b = label.as_bytes();
            (1..=63).contains(&b.len())
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b.first() != Some(&b'-')
                && b.last() != Some(&b'-')
        });
    local_ok && domain_ok
}

/// RFC 9562 textual form: 8-4-4-4-12 hex digits, either case.
fn uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, `T`/`Z` in either case, real
/// calendar days, seconds up to 60 (leap second).
fn date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return false;
    };
    if !(at(4, b'-')
        && at(7, b'-')
        && (at(10, b'T') || at(10, b't'))
        && at(13, b':')
        && at(16, b':'))
    {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            let (Some(h), Some(m)) = (num(i + 1, 2), num(i + 4, 2)) else {
                return false;
            };
            at(i + 3, b':') && h <= 23 && m <= 59 && i + 6 == b.len()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
