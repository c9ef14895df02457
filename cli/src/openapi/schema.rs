//! OpenAPI schema objects -> the JSON Schema subset api-guard's filter validates.
//!
//! Every request-body schema becomes self-contained: local references to
//! `#/components/schemas/X` are rewritten to `#/$defs/X` and every component reached (cycles
//! included) is copied, converted, into a `$defs` section of the emitted schema. Whatever
//! cannot be expressed is skipped with a warning naming its JSON pointer in the OpenAPI
//! document, never silently; annotations (title, description, examples, ...) carry no
//! validation and are dropped without a word.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::pointer::{decode_fragment, escape, push};

/// The schema dialect of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAPI 3.0: an extended subset of JSON Schema draft 4 (`nullable`, boolean
    /// `exclusiveMinimum`, `$ref` siblings ignored).
    V30,
    /// OpenAPI 3.1: JSON Schema 2020-12.
    V31,
}

/// Deeper schemas than this are cut (with a warning): a hand-written schema is never this deep,
/// and the converter must not overflow its stack on a generated one.
const MAX_DEPTH: usize = 64;

const COMPONENTS_PREFIX: &str = "#/components/schemas/";

/// Formats the filter checks; any other is dropped with a warning.
const FORMATS: &[&str] = &["email", "uuid", "date-time"];

/// Keywords that only annotate: dropped without a warning.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "example",
    "$comment",
    "xml",
    "externalDocs",
    "discriminator",
    "readOnly",
    "writeOnly",
    "deprecated",
    "contentMediaType",
    "contentEncoding",
    "contentSchema",
];

/// Converts schemas of one document, caching converted components (so a component's warnings
/// are reported once, however many bodies use it).
pub struct SchemaConverter<'a> {
    doc: &'a Value,
    dialect: Dialect,
    components: BTreeMap<String, (Value, BTreeSet<String>)>,
    pub warnings: Vec<String>,
}

impl<'a> SchemaConverter<'a> {
    pub fn new(doc: &'a Value, dialect: Dialect) -> Self {
        SchemaConverter {
            doc,
            dialect,
            components: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, pointer: &str, message: impl AsRef<str>) {
        let pointer = if pointer.is_empty() { "/" } else { pointer };
        self.warnings
            .push(format!("#{pointer}: {}", message.as_ref()));
    }

    /// A self-contained request-body schema: the converted schema, plus a `$defs` section with
    /// every component it reaches.
    pub fn body_schema(&mut self, schema: &Value, pointer: &str) -> Value {
        let mut refs = BTreeSet::new();
        let mut root = self.convert(schema, pointer, 0, &mut refs);
        let mut defs = Map::new();
        let mut queue: Vec<String> = refs.into_iter().collect();
        while let Some(name) = queue.pop() {
            if defs.contains_key(&name) {
                continue;
            }
            let (converted, reached) = self.component(&name);
            defs.insert(name, converted);
            queue.extend(reached.into_iter().filter(|n| !defs.contains_key(n)));
        }
        if !defs.is_empty() {
            // `true`/`false` cannot hold `$defs`, but they reference nothing anyway.
            if let Value::Object(map) = &mut root {
                map.insert("$defs".to_string(), Value::Object(defs));
            }
        }
        root
    }

    /// The converted component `name` and the components it references.
    fn component(&mut self, name: &str) -> (Value, BTreeSet<String>) {
        if let Some(done) = self.components.get(name) {
            return done.clone();
        }
        // Insert a placeholder first: a cycle reaching this component again must not recurse.
        self.components
            .insert(name.to_string(), (Value::Bool(true), BTreeSet::new()));
        let doc = self.doc;
        let pointer = push("/components/schemas", name);
        let result = match doc
            .get("components")
            .and_then(|c| c.get("schemas"))
            .and_then(|s| s.get(name))
        {
            Some(schema) => {
                let mut refs = BTreeSet::new();
                let converted = self.convert(schema, &pointer, 0, &mut refs);
                (converted, refs)
            }
            None => (Value::Bool(true), BTreeSet::new()),
        };
        self.components.insert(name.to_string(), result.clone());
        result
    }

    /// Converts one schema; `refs` collects the component names it references.
    fn convert(
        &mut self,
        schema: &Value,
        pointer: &str,
        depth: usize,
        refs: &mut BTreeSet<String>,
    ) -> Value {
        if depth > MAX_DEPTH {
            self.warn(
                pointer,
                format!("schema nested deeper than {MAX_DEPTH} levels: cut here (not checked)"),
            );
            return Value::Bool(true);
        }
        let obj = match schema {
            Value::Object(o) => o,
            Value::Bool(b) => return Value::Bool(*b),
            _ => {
                self.warn(pointer, "not a schema object: skipped (not checked)");
                return Value::Bool(true);
            }
        };

        if let Some(reference) = obj.get("$ref") {
            return self.convert_ref(obj, reference, pointer, depth, refs);
        }

        let mut out = Map::new();
        for (key, value) in obj {
            let here = push(pointer, key);
            match key.as_str() {
                "type" => match value {
                    Value::String(_) => {
                        out.insert(key.clone(), value.clone());
                    }
                    Value::Array(items)
                        if self.dialect == Dialect::V31 && items.iter().all(Value::is_string) =>
                    {
                        out.insert(key.clone(), value.clone());
                    }
                    _ => self.warn(&here, "type must be a type name here: skipped"),
                },
                "properties" => match value {
                    Value::Object(props) => {
                        let mut converted = Map::new();
                        for (name, prop) in props {
                            let p = push(&here, name);
                            converted.insert(name.clone(), self.convert(prop, &p, depth + 1, refs));
                        }
                        out.insert(key.clone(), Value::Object(converted));
                    }
                    _ => self.warn(&here, "properties must be an object: skipped"),
                },
                "additionalProperties" | "items" => match value {
                    Value::Array(_) => self.warn(
                        &here,
                        format!("{key} as an array is not supported: skipped (not checked)"),
                    ),
                    _ => {
                        let c = self.convert(value, &here, depth + 1, refs);
                        out.insert(key.clone(), c);
                    }
                },
                "not" => {
                    let c = self.convert(value, &here, depth + 1, refs);
                    out.insert(key.clone(), c);
                }
                "prefixItems" if self.dialect == Dialect::V31 => match value {
                    Value::Array(items) => {
                        let converted = items
                            .iter()
                            .enumerate()
                            .map(|(i, s)| {
                                self.convert(s, &push(&here, &i.to_string()), depth + 1, refs)
                            })
                            .collect();
                        out.insert(key.clone(), Value::Array(converted));
                    }
                    _ => self.warn(&here, "prefixItems must be an array: skipped"),
                },
                "allOf" | "anyOf" | "oneOf" => match value {
                    Value::Array(items) if !items.is_empty() => {
                        let converted = items
                            .iter()
                            .enumerate()
                            .map(|(i, s)| {
                                self.convert(s, &push(&here, &i.to_string()), depth + 1, refs)
                            })
                            .collect();
                        out.insert(key.clone(), Value::Array(converted));
                    }
                    _ => self.warn(&here, format!("{key} must be a non-empty array: skipped")),
                },
                "required" => match value {
                    Value::Array(items) if items.iter().all(Value::is_string) => {
                        // readOnly properties are sent by the server only: 3.0 says their
                        // `required` applies to responses, so a request need not carry them.
                        let read_only: BTreeSet<&str> = obj
                            .get("properties")
                            .and_then(Value::as_object)
                            .map(|props| {
                                props
                                    .iter()
                                    .filter(|(_, p)| {
                                        p.get("readOnly").and_then(Value::as_bool) == Some(true)
                                    })
                                    .map(|(n, _)| n.as_str())
                                    .collect()
                            })
                            .unwrap_or_default();
                        let kept: Vec<Value> = items
                            .iter()
                            .filter(|n| !n.as_str().is_some_and(|n| read_only.contains(n)))
                            .cloned()
                            .collect();
                        if !kept.is_empty() {
                            out.insert(key.clone(), Value::Array(kept));
                        }
                    }
                    _ => self.warn(&here, "required must be an array of names: skipped"),
                },
                "enum" => match value {
                    Value::Array(items) if !items.is_empty() => {
                        out.insert(key.clone(), value.clone());
                    }
                    _ => self.warn(&here, "enum must be a non-empty array: skipped"),
                },
                "const" => {
                    out.insert(key.clone(), value.clone());
                }
                "minimum" | "maximum" => match value {
                    Value::Number(_) => {
                        out.insert(key.clone(), value.clone());
                    }
                    _ => self.warn(&here, format!("{key} must be a number: skipped")),
                },
                "exclusiveMinimum" | "exclusiveMaximum" => match value {
                    Value::Number(_) => {
                        out.insert(key.clone(), value.clone());
                    }
                    // The 3.0 (draft 4) boolean form: handled after the loop, with its bound.
                    Value::Bool(_) if self.dialect == Dialect::V30 => {}
                    _ => self.warn(&here, format!("{key} must be a number: skipped")),
                },
                "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties"
                | "maxProperties" => match value.as_u64() {
                    Some(_) => {
                        out.insert(key.clone(), value.clone());
                    }
                    None => self.warn(
                        &here,
                        format!("{key} must be a non-negative integer: skipped"),
                    ),
                },
                "uniqueItems" => match value {
                    Value::Bool(true) => {
                        out.insert(key.clone(), value.clone());
                    }
                    Value::Bool(false) => {}
                    _ => self.warn(&here, "uniqueItems must be a boolean: skipped"),
                },
                "pattern" => match value {
                    Value::String(_) => {
                        out.insert(key.clone(), value.clone());
                    }
                    _ => self.warn(&here, "pattern must be a string: skipped"),
                },
                "format" => match value.as_str() {
                    Some(f) if FORMATS.contains(&f) => {
                        out.insert(key.clone(), value.clone());
                    }
                    Some(f) => self.warn(
                        &here,
                        format!(
                            "format {f:?} is not checked by api-guard (only {}): skipped",
                            FORMATS.join(", ")
                        ),
                    ),
                    None => self.warn(&here, "format must be a string: skipped"),
                },
                "nullable" => match (self.dialect, value) {
                    (Dialect::V30, Value::Bool(_)) => {} // after the loop
                    (Dialect::V30, _) => self.warn(&here, "nullable must be a boolean: skipped"),
                    (Dialect::V31, _) => self.warn(
                        &here,
                        "nullable is not part of OpenAPI 3.1 (use type: [T, \"null\"]): skipped",
                    ),
                },
                k if ANNOTATIONS.contains(&k) || k.starts_with("x-") => {}
                _ => self.warn(
                    &here,
                    format!("keyword {key:?} is not supported by api-guard: skipped (not checked)"),
                ),
            }
        }

        if self.dialect == Dialect::V30 {
            self.exclusive_bound(obj, &mut out, pointer, "exclusiveMinimum", "minimum");
            self.exclusive_bound(obj, &mut out, pointer, "exclusiveMaximum", "maximum");
            if obj.get("nullable") == Some(&Value::Bool(true)) {
                return nullable(out);
            }
        }
        Value::Object(out)
    }

    /// OpenAPI 3.0's `exclusiveMinimum: true` + `minimum: m` is JSON Schema's
    /// `exclusiveMinimum: m`.
    fn exclusive_bound(
        &mut self,
        obj: &Map<String, Value>,
        out: &mut Map<String, Value>,
        pointer: &str,
        exclusive: &str,
        bound: &str,
    ) {
        if obj.get(exclusive) != Some(&Value::Bool(true)) {
            return;
        }
        match out.remove(bound) {
            Some(limit) => {
                out.insert(exclusive.to_string(), limit);
            }
            None => self.warn(
                &push(pointer, exclusive),
                format!("{exclusive}: true without {bound}: skipped"),
            ),
        }
    }

    fn convert_ref(
        &mut self,
        obj: &Map<String, Value>,
        reference: &Value,
        pointer: &str,
        depth: usize,
        refs: &mut BTreeSet<String>,
    ) -> Value {
        let here = push(pointer, "$ref");
        let target = reference.as_str().and_then(|r| self.component_ref(r));
        let rewritten = match target {
            Some((name, rest)) => {
                refs.insert(name.clone());
                Some(Value::String(format!("#/$defs/{}{rest}", escape(&name))))
            }
            None => {
                self.warn(
                    &here,
                    "only local references to existing #/components/schemas/... are supported: \
                     skipped (not checked)",
                );
                None
            }
        };
        let siblings: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| k.as_str() != "$ref")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match self.dialect {
            Dialect::V30 => {
                // 3.0: "properties adjacent to a $ref are ignored". Say so when they would have
                // meant something (people write `nullable: true` next to a $ref).
                for key in siblings.keys() {
                    if !ANNOTATIONS.contains(&key.as_str()) && !key.starts_with("x-") {
                        self.warn(
                            &push(pointer, key),
                            "OpenAPI 3.0 ignores keywords next to $ref: skipped \
                             (wrap the $ref in allOf to combine them)",
                        );
                    }
                }
                match rewritten {
                    Some(r) => Value::Object(Map::from_iter([("$ref".to_string(), r)])),
                    None => Value::Bool(true),
                }
            }
            Dialect::V31 => {
                // 3.1 (2020-12): a $ref applies together with its siblings. Convert the
                // siblings and move the $ref into allOf, which every validator reads alike.
                let converted = self.convert(&Value::Object(siblings), pointer, depth, refs);
                let mut out = match converted {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                let Some(r) = rewritten else {
                    return Value::Object(out);
                };
                let only_ref = Value::Object(Map::from_iter([("$ref".to_string(), r)]));
                if out.is_empty() {
                    return only_ref;
                }
                match out.get_mut("allOf") {
                    Some(Value::Array(all)) => all.push(only_ref),
                    _ => {
                        out.insert("allOf".to_string(), Value::Array(vec![only_ref]));
                    }
                }
                Value::Object(out)
            }
        }
    }

    /// `#/components/schemas/Name/rest` -> (Name, "/rest") when the target exists.
    fn component_ref(&self, reference: &str) -> Option<(String, String)> {
        let fragment = decode_fragment(reference.strip_prefix(COMPONENTS_PREFIX)?)?;
        let (first, rest) = match fragment.find('/') {
            Some(i) => (fragment.get(..i)?, fragment.get(i..)?),
            None => (fragment.as_str(), ""),
        };
        let name = first.replace("~1", "/").replace("~0", "~");
        let component = self.doc.pointer(&push("/components/schemas", &name))?;
        if !rest.is_empty() {
            component.pointer(rest)?;
        }
        Some((name, rest.to_string()))
    }
}

/// OpenAPI 3.0 `nullable: true`: `null` becomes valid too.
fn nullable(mut out: Map<String, Value>) -> Value {
    match out.get("type").cloned() {
        Some(Value::String(t)) => {
            out.insert(
                "type".to_string(),
                Value::Array(vec![Value::String(t), Value::String("null".to_string())]),
            );
            // An enum lists every valid value: 3.0.3 says a nullable enum must list null to
            // accept it; most documents forget, and the intent is clear.
            if let Some(Value::Array(values)) = out.get_mut("enum") {
                if !values.contains(&Value::Null) {
                    values.push(Value::Null);
                }
            }
            Value::Object(out)
        }
        // No type (a composition, say): any value already passes the type, but the other
        // keywords may refuse null, so accept null explicitly.
        _ if out.is_empty() => Value::Object(out),
        _ => Value::Object(Map::from_iter([(
            "anyOf".to_string(),
            Value::Array(vec![
                Value::Object(out),
                Value::Object(Map::from_iter([(
                    "type".to_string(),
                    Value::String("null".to_string()),
                )])),
            ]),
        )])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convert(dialect: Dialect, doc: Value, schema: Value) -> (Value, Vec<String>) {
        let mut c = SchemaConverter::new(&doc, dialect);
        let out = c.body_schema(&schema, "/s");
        (out, c.warnings)
    }

    #[test]
    fn keyword_table() {
        // (dialect, schema, expected, number of warnings)
        let cases = [
            (
                Dialect::V30,
                json!({"type": "string", "nullable": true}),
                json!({"type": ["string", "null"]}),
                0,
            ),
            (
                Dialect::V30,
                json!({"type": "string", "enum": ["a"], "nullable": true}),
                json!({"type": ["string", "null"], "enum": ["a", null]}),
                0,
            ),
            (
                Dialect::V30,
                json!({"nullable": false, "type": "integer"}),
                json!({"type": "integer"}),
                0,
            ),
            (
                Dialect::V30,
                json!({"type": "number", "minimum": 0, "exclusiveMinimum": true,
                       "maximum": 9, "exclusiveMaximum": false}),
                json!({"type": "number", "exclusiveMinimum": 0, "maximum": 9}),
                0,
            ),
            // Failing edge: the boolean form without its bound cannot be converted.
            (
                Dialect::V30,
                json!({"type": "number", "exclusiveMinimum": true}),
                json!({"type": "number"}),
                1,
            ),
            (
                Dialect::V30,
                json!({"type": "string", "example": "x", "xml": {}, "deprecated": true,
                       "externalDocs": {}, "writeOnly": true, "x-foo": 1, "description": "d"}),
                json!({"type": "string"}),
                0,
            ),
            (
                Dialect::V30,
                json!({"type": "integer", "multipleOf": 2, "format": "int32"}),
                json!({"type": "integer"}),
                2,
            ),
            (
                Dialect::V30,
                json!({"type": "object", "required": ["id", "name"],
                       "properties": {"id": {"type": "integer", "readOnly": true},
                                      "name": {"type": "string", "format": "email"}}}),
                json!({"type": "object", "required": ["name"],
                       "properties": {"id": {"type": "integer"},
                                      "name": {"type": "string", "format": "email"}}}),
                0,
            ),
            (
                Dialect::V31,
                json!({"type": ["string", "null"], "examples": ["a"], "const": "a"}),
                json!({"type": ["string", "null"], "const": "a"}),
                0,
            ),
            (
                Dialect::V31,
                json!({"type": "integer", "nullable": true}),
                json!({"type": "integer"}),
                1,
            ),
            (
                Dialect::V30,
                json!({"type": ["string", "null"]}),
                json!({}),
                1,
            ),
            (
                Dialect::V30,
                json!({"nullable": true, "allOf": [{"type": "string"}]}),
                json!({"anyOf": [{"allOf": [{"type": "string"}]}, {"type": "null"}]}),
                0,
            ),
            (Dialect::V31, json!(false), json!(false), 0),
            (Dialect::V30, json!(3), json!(true), 1),
        ];
        for (dialect, schema, expected, warnings) in cases {
            let (out, w) = convert(dialect, json!({}), schema.clone());
            assert_eq!(out, expected, "{schema}");
            assert_eq!(w.len(), warnings, "{schema}: {w:?}");
        }
    }

    #[test]
    fn refs_become_defs_and_cycles_terminate() {
        let doc = json!({"components": {"schemas": {
            "Node": {"type": "object", "properties": {
                "next": {"$ref": "#/components/schemas/Node"},
                "leaf": {"$ref": "#/components/schemas/Leaf"}}},
            "Leaf": {"type": "string"},
            "Unused": {"type": "integer"}
        }}});
        let (out, w) = convert(
            Dialect::V30,
            doc,
            json!({"$ref": "#/components/schemas/Node"}),
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            out,
            json!({"$ref": "#/$defs/Node", "$defs": {
                "Node": {"type": "object", "properties": {
                    "next": {"$ref": "#/$defs/Node"},
                    "leaf": {"$ref": "#/$defs/Leaf"}}},
                "Leaf": {"type": "string"}}})
        );
    }

    #[test]
    fn unresolvable_and_external_refs_are_warnings() {
        let doc = json!({"components": {"schemas": {"A": {"type": "string"}}}});
        for reference in [
            "#/components/schemas/Missing",
            "other.yaml#/components/schemas/A",
            "#/components/schemas/A/properties/nope",
            "#/definitions/A",
        ] {
            let (out, w) = convert(Dialect::V30, doc.clone(), json!({"$ref": reference}));
            assert_eq!(out, json!(true), "{reference}");
            assert_eq!(w.len(), 1, "{reference}");
            assert!(w[0].starts_with("#/s/$ref: "), "{w:?}");
        }
    }

    #[test]
    fn ref_siblings_per_dialect() {
        let doc = json!({"components": {"schemas": {"A~b/c": {"type": "string"}}}});
        let schema = json!({"$ref": "#/components/schemas/A~0b~1c", "maxLength": 3});
        let (out30, w30) = convert(Dialect::V30, doc.clone(), schema.clone());
        assert_eq!(
            out30,
            json!({"$ref": "#/$defs/A~0b~1c", "$defs": {"A~b/c": {"type": "string"}}})
        );
        assert_eq!(w30.len(), 1);
        let (out31, w31) = convert(Dialect::V31, doc, schema);
        assert_eq!(
            out31,
            json!({"maxLength": 3, "allOf": [{"$ref": "#/$defs/A~0b~1c"}],
                   "$defs": {"A~b/c": {"type": "string"}}})
        );
        assert!(w31.is_empty());
    }

    #[test]
    fn depth_is_bounded() {
        let mut schema = json!({"type": "string"});
        for _ in 0..200 {
            schema = json!({"type": "array", "items": schema});
        }
        let (_, w) = convert(Dialect::V31, json!({}), schema);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("deeper than"));
    }
}
