//! `api-guard openapi`: an OpenAPI 3.0/3.1 document -> api-guard policies (one per path) and the
//! Envoy routes that select them.
//!
//! Conversion is conservative: what api-guard cannot express is reported as a warning with its
//! JSON pointer and left out, so the emitted policies never reject a request the document
//! allows because of a guess (a warning means "not checked", never "checked differently").

mod pointer;
mod schema;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use pointer::push;
use schema::{Dialect, SchemaConverter};

pub const DEFAULT_CLUSTER: &str = "upstream";

/// OpenAPI's operations, in the specification's order (also the order of `methods`).
const OPERATIONS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Path item fields that are not operations.
const PATH_ITEM_FIELDS: &[&str] = &["summary", "description", "servers", "parameters", "$ref"];

/// Header parameters OpenAPI says to ignore (they are described elsewhere in the document).
const IGNORED_HEADERS: &[&str] = &["accept", "content-type", "authorization"];

/// `$ref` chains (parameters, request bodies, path items) longer than this are refused.
const MAX_REF_CHAIN: usize = 32;

const MAX_POLICY_NAME: usize = 64;

pub struct Options {
    pub cluster: String,
    pub prefix: Option<String>,
    pub base_path: String,
    pub max_body_bytes: Option<u64>,
}

/// One Envoy route: how it matches, and the policy it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub template: String,
    pub matcher: Matcher,
    pub policy: String,
    cluster: String,
    specificity: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Exact path (no template).
    Path(String),
    /// Anchored RE2 regex (templated path).
    Regex(String),
}

pub struct Output {
    /// `{"policies": {...}}`: a complete plugin configuration.
    pub config: Value,
    /// Most specific first.
    pub routes: Vec<Route>,
    pub warnings: Vec<String>,
}

/// Parses a JSON or YAML document into a JSON value.
pub fn load(bytes: &[u8]) -> Result<Value, String> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"));
    }
    let mut yaml: serde_yaml::Value =
        serde_yaml::from_slice(bytes).map_err(|e| format!("not valid YAML: {e}"))?;
    yaml.apply_merge()
        .map_err(|e| format!("YAML merge keys: {e}"))?;
    yaml_to_json(yaml, 0)
}

/// YAML -> JSON. YAML allows non-string keys (`200:` in `responses` is an integer): they become
/// their string form, as OpenAPI means them.
fn yaml_to_json(value: serde_yaml::Value, depth: usize) -> Result<Value, String> {
    use serde_yaml::Value as Y;
    if depth > 256 {
        return Err("document nested deeper than 256 levels".to_string());
    }
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| format!("number {n} has no JSON form"))?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(|v| yaml_to_json(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_string(),
                    _ => return Err("a mapping key is not a scalar".to_string()),
                };
                out.insert(key, yaml_to_json(v, depth + 1)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value, depth + 1)?,
    })
}

fn dialect(doc: &Value) -> Result<Dialect, String> {
    if doc.get("swagger").is_some() {
        return Err("Swagger 2.0 documents are not supported (convert to OpenAPI 3 first)".into());
    }
    let version = match doc.get("openapi") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("not an OpenAPI document (no `openapi` version field)".into()),
    };
    if version == "3.0" || version.starts_with("3.0.") {
        Ok(Dialect::V30)
    } else if version == "3.1" || version.starts_with("3.1.") {
        Ok(Dialect::V31)
    } else {
        Err(format!(
            "OpenAPI version {version:?} is not supported (3.0.x and 3.1.x are)"
        ))
    }
}

/// Follows local `$ref`s from `value` (at `pointer`) to the object they name.
fn resolve<'a>(
    doc: &'a Value,
    mut value: &'a Value,
    mut pointer: String,
    warnings: &mut Vec<String>,
) -> Option<(&'a Value, String)> {
    for _ in 0..MAX_REF_CHAIN {
        let Some(reference) = value.get("$ref") else {
            return Some((value, pointer));
        };
        let target = reference
            .as_str()
            .and_then(|r| r.strip_prefix('#'))
            .and_then(pointer::decode_fragment)
            .and_then(|p| doc.pointer(&p).map(|v| (v, p)));
        match target {
            Some((v, p)) => {
                value = v;
                pointer = p;
            }
            None => {
                warnings.push(format!(
                    "#{}: only local references to existing objects are supported: skipped",
                    push(&pointer, "$ref")
                ));
                return None;
            }
        }
    }
    warnings.push(format!(
        "#{pointer}: $ref chain longer than {MAX_REF_CHAIN} (a cycle?): skipped"
    ));
    None
}

/// A required parameter, as the policy needs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Required {
    Query(String),
    Header(String),
}

/// What one operation asks of a request.
struct Operation {
    method: String,
    required: BTreeSet<Required>,
    body: Option<Body>,
}

struct Body {
    /// `None`: any content type (a `*/*` or `type/*` range was listed).
    content_types: Option<Vec<String>>,
    schema: Option<Value>,
}

pub fn convert(bytes: &[u8], options: &Options) -> Result<Output, String> {
    let doc = load(bytes)?;
    let dialect = dialect(&doc)?;
    let mut schemas = SchemaConverter::new(&doc, dialect);
    let mut warnings = Vec::new();

    if let Some(prefix) = &options.prefix {
        if sanitize(prefix).as_deref() != Some(prefix.as_str()) {
            return Err(format!(
                "--prefix-policy-name {prefix:?}: use 1-64 characters of [A-Za-z0-9_-], \
                 starting with a letter or digit"
            ));
        }
    }
    if !options.base_path.is_empty()
        && (!options.base_path.starts_with('/') || options.base_path.ends_with('/'))
    {
        return Err("--base-path must start with / and not end with / (e.g. /v2)".to_string());
    }
    notes(&doc, options, &mut warnings);

    let empty = Map::new();
    let paths = match doc.get("paths") {
        Some(Value::Object(p)) => p,
        None => &empty,
        Some(_) => return Err("`paths` is not an object".to_string()),
    };
    if paths.is_empty() {
        warnings.push("#/paths: no paths: nothing to convert".to_string());
    }

    let mut policies = Map::new();
    let mut used_names = BTreeSet::new();
    let mut routes = Vec::new();
    for (path, item) in paths {
        let item_pointer = push("/paths", path);
        let Some((item, item_pointer)) = resolve(&doc, item, item_pointer, &mut warnings) else {
            continue;
        };
        let Some(template) = Template::parse(path) else {
            warnings.push(format!(
                "#{item_pointer}: not a path template (must start with / and balance {{}}): skipped"
            ));
            continue;
        };
        let Some(obj) = item.as_object() else {
            warnings.push(format!("#{item_pointer}: not a path item object: skipped"));
            continue;
        };
        for key in obj.keys() {
            if !OPERATIONS.contains(&key.as_str())
                && !PATH_ITEM_FIELDS.contains(&key.as_str())
                && !key.starts_with("x-")
            {
                warnings.push(format!(
                    "#{}: unknown path item field: skipped",
                    push(&item_pointer, key)
                ));
            }
        }
        let common = obj.get("parameters");
        let mut operations = Vec::new();
        let mut operation_ids = Vec::new();
        for method in OPERATIONS {
            let Some(op) = obj.get(*method) else {
                continue;
            };
            let op_pointer = push(&item_pointer, method);
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                operation_ids.push(id.to_string());
            }
            operations.push(operation(
                &doc,
                method,
                op,
                common,
                &item_pointer,
                &op_pointer,
                &mut schemas,
                &mut warnings,
            ));
        }
        if operations.is_empty() {
            warnings.push(format!(
                "#{item_pointer}: no operations: no policy and no route"
            ));
            continue;
        }

        let name = policy_name(
            obj.get("x-api-guard-policy").and_then(Value::as_str),
            &operation_ids,
            path,
            options.prefix.as_deref(),
            &mut used_names,
        );
        let policy = policy(&operations, options, &item_pointer, &mut warnings);
        policies.insert(name.clone(), policy);
        routes.push(template.route(&options.base_path, &name, &options.cluster));
    }
    routes.sort_by(compare_routes);

    warnings.append(&mut schemas.warnings);
    // A shared component (a `$ref`'d parameter) is met once per use: say it once.
    let mut seen = BTreeSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    Ok(Output {
        config: json!({ "policies": policies }),
        routes,
        warnings,
    })
}

/// Document-level things the policies do not carry, said once.
fn notes(doc: &Value, options: &Options, warnings: &mut Vec<String>) {
    if options.base_path.is_empty() {
        let base = doc
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .and_then(url_path)
            .filter(|p| !p.is_empty() && *p != "/");
        if let Some(base) = base {
            warnings.push(format!(
                "#/servers/0/url: the API is served under {base}; routes match the paths without \
                 it (add --base-path {base} if Envoy sees the full path)"
            ));
        }
    }
    if doc.get("security").is_some()
        || doc
            .pointer("/components/securitySchemes")
            .is_some_and(|s| s.as_object().is_some_and(|m| !m.is_empty()))
    {
        warnings.push(
            "#/components/securitySchemes: security requirements are not converted: add \
             api_key / jwt rules to the policies by hand"
                .to_string(),
        );
    }
}

/// The path of a server URL (`https://h/v2` -> `/v2`, `/v1` -> `/v1`); `None` if templated.
fn url_path(url: &str) -> Option<&str> {
    let rest = match url.find("://") {
        Some(i) => {
            let after = url.get(i + 3..)?;
            after.get(after.find('/').unwrap_or(after.len())..)?
        }
        None => url,
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('{') {
        None
    } else {
        Some(rest)
    }
}

#[allow(clippy::too_many_arguments)]
fn operation(
    doc: &Value,
    method: &str,
    op: &Value,
    common: Option<&Value>,
    item_pointer: &str,
    op_pointer: &str,
    schemas: &mut SchemaConverter<'_>,
    warnings: &mut Vec<String>,
) -> Operation {
    // Operation parameters override path item parameters with the same name and location.
    let mut params: BTreeMap<(String, String), (Value, String)> = BTreeMap::new();
    let lists = [
        (common, push(item_pointer, "parameters")),
        (op.get("parameters"), push(op_pointer, "parameters")),
    ];
    for (list, list_pointer) in lists {
        let Some(list) = list else { continue };
        let Some(items) = list.as_array() else {
            warnings.push(format!("#{list_pointer}: not an array: skipped"));
            continue;
        };
        for (i, p) in items.iter().enumerate() {
            let p_pointer = push(&list_pointer, &i.to_string());
            let Some((p, p_pointer)) = resolve(doc, p, p_pointer, warnings) else {
                continue;
            };
            let name = p.get("name").and_then(Value::as_str);
            let location = p.get("in").and_then(Value::as_str);
            let (Some(name), Some(location)) = (name, location) else {
                warnings.push(format!(
                    "#{p_pointer}: parameter without name or in: skipped"
                ));
                continue;
            };
            params.insert(
                (name.to_string(), location.to_string()),
                (p.clone(), p_pointer),
            );
        }
    }

    let mut required = BTreeSet::new();
    for ((name, location), (p, p_pointer)) in &params {
        let is_required = p.get("required").and_then(Value::as_bool) == Some(true);
        match location.as_str() {
            "query" if is_required => {
                required.insert(Required::Query(name.clone()));
            }
            "header" if IGNORED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) => continue,
            "header" if is_required => {
                required.insert(Required::Header(name.to_ascii_lowercase()));
            }
            "query" | "header" | "path" => {}
            "cookie" => {
                warnings.push(format!(
                    "#{p_pointer}: cookie parameters are not checked by api-guard: skipped"
                ));
                continue;
            }
            other => {
                warnings.push(format!(
                    "#{p_pointer}: unknown parameter location {other:?}: skipped"
                ));
                continue;
            }
        }
        // api-guard checks a parameter's presence, not its value.
        if p.get("schema").is_some() || p.get("content").is_some() {
            let checked = if location == "path" {
                "only that the path segment is not empty"
            } else if is_required {
                "only its presence"
            } else {
                "nothing (it is optional)"
            };
            warnings.push(format!(
                "#{p_pointer}: the value rules (schema) of {location} parameter {name:?} are not \
                 checked; api-guard checks {checked}"
            ));
        }
    }

    let body = op.get("requestBody").and_then(|b| {
        let pointer = push(op_pointer, "requestBody");
        let (b, pointer) = resolve(doc, b, pointer, warnings)?;
        Some(request_body(b, &pointer, schemas, warnings))
    });

    Operation {
        method: method.to_ascii_uppercase(),
        required,
        body,
    }
}

fn request_body(
    body: &Value,
    pointer: &str,
    schemas: &mut SchemaConverter<'_>,
    warnings: &mut Vec<String>,
) -> Body {
    let content_pointer = push(pointer, "content");
    let Some(content) = body.get("content").and_then(Value::as_object) else {
        warnings.push(format!(
            "#{content_pointer}: request body without content: no content-type or schema check"
        ));
        return Body {
            content_types: None,
            schema: None,
        };
    };
    let mut types = BTreeSet::new();
    let mut any_type = false;
    let mut schema = None;
    // application/json first, then other JSON types (`application/problem+json`).
    let mut json_types: Vec<(&String, &Value)> = content
        .iter()
        .filter(|(media, _)| is_json(&media_type(media)))
        .collect();
    json_types.sort_by_key(|(media, _)| media_type(media) != "application/json");
    for (i, (media, m)) in json_types.iter().enumerate() {
        let Some(s) = m.get("schema") else { continue };
        let here = push(&push(&content_pointer, media), "schema");
        if i == 0 {
            schema = Some(schemas.body_schema(s, &here));
        } else {
            warnings.push(format!(
                "#{here}: only one JSON schema per method is checked (the {}'s): skipped",
                json_types
                    .first()
                    .map_or(String::new(), |(m, _)| media_type(m))
            ));
        }
    }
    for (media, m) in content {
        let mt = media_type(media);
        if mt == "*/*" || mt.ends_with("/*") {
            any_type = true;
            warnings.push(format!(
                "#{}: media type range {mt:?}: the method's content type is not restricted",
                push(&content_pointer, media)
            ));
        } else {
            types.insert(mt.clone());
        }
        if !is_json(&mt) && m.get("schema").is_some() {
            warnings.push(format!(
                "#{}: only JSON bodies are checked against a schema: {mt:?} schema skipped",
                push(&push(&content_pointer, media), "schema")
            ));
        }
    }
    Body {
        content_types: if any_type || types.is_empty() {
            None
        } else {
            Some(types.into_iter().collect())
        },
        schema,
    }
}

/// `Application/JSON; charset=utf-8` -> `application/json`.
fn media_type(media: &str) -> String {
    media
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

fn policy(
    operations: &[Operation],
    options: &Options,
    item_pointer: &str,
    warnings: &mut Vec<String>,
) -> Value {
    let mut policy = Map::new();
    let methods: Vec<Value> = operations
        .iter()
        .map(|o| Value::String(o.method.clone()))
        .collect();
    policy.insert("methods".to_string(), Value::Array(methods));

    let with_body: Vec<(&Operation, &Body)> = operations
        .iter()
        .filter_map(|o| o.body.as_ref().map(|b| (o, b)))
        .collect();
    if !with_body.is_empty() {
        let mut payload = Map::new();
        if let Some(max) = options.max_body_bytes {
            payload.insert("max_body_bytes".to_string(), Value::from(max));
        }
        // The policy-wide list is the union; a method accepting any type lifts it.
        let mut union = BTreeSet::new();
        let mut any = false;
        let mut methods = Map::new();
        for (op, body) in &with_body {
            let mut m = Map::new();
            match &body.content_types {
                Some(types) => {
                    union.extend(types.iter().cloned());
                    m.insert("content_types".to_string(), json!(types));
                }
                None => any = true,
            }
            if let Some(schema) = &body.schema {
                m.insert("schema".to_string(), schema.clone());
            }
            if !m.is_empty() {
                methods.insert(op.method.clone(), Value::Object(m));
            }
        }
        if !any && !union.is_empty() {
            payload.insert(
                "content_types".to_string(),
                Value::Array(union.into_iter().map(Value::String).collect()),
            );
        }
        if !methods.is_empty() {
            payload.insert("methods".to_string(), Value::Object(methods));
        }
        if !payload.is_empty() {
            policy.insert("payload".to_string(), Value::Object(payload));
        }
    }

    // One policy serves every method of the path, so only what every operation requires can be
    // required; the rest would refuse valid requests of the other operations.
    let mut all: Option<BTreeSet<Required>> = None;
    for op in operations {
        all = Some(match all {
            None => op.required.clone(),
            Some(acc) => acc.intersection(&op.required).cloned().collect(),
        });
    }
    let all = all.unwrap_or_default();
    for op in operations {
        for r in op.required.difference(&all) {
            let (kind, name) = match r {
                Required::Query(n) => ("query parameter", n),
                Required::Header(n) => ("header", n),
            };
            warnings.push(format!(
                "#{}: {kind} {name:?} is required by {} only, not by every method of the path: \
                 not required by the policy",
                push(item_pointer, &op.method.to_ascii_lowercase()),
                op.method
            ));
        }
    }
    let query: Vec<&str> = all
        .iter()
        .filter_map(|r| match r {
            Required::Query(n) => Some(n.as_str()),
            Required::Header(_) => None,
        })
        .collect();
    let headers: Vec<&str> = all
        .iter()
        .filter_map(|r| match r {
            Required::Header(n) => Some(n.as_str()),
            Required::Query(_) => None,
        })
        .collect();
    if !query.is_empty() {
        policy.insert("query".to_string(), json!({ "required": query }));
    }
    if !headers.is_empty() {
        policy.insert("headers".to_string(), json!({ "required": headers }));
    }
    Value::Object(policy)
}

/// `[A-Za-z0-9_-]`, runs of anything else become one `-`, starting with a letter or digit,
/// at most 64 characters; `None` if nothing is left.
fn sanitize(raw: &str) -> Option<String> {
    let mut out = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out
        .trim_start_matches(['-', '_'])
        .trim_end_matches('-')
        .chars()
        .take(MAX_POLICY_NAME)
        .collect::<String>();
    let trimmed = trimmed.trim_end_matches('-').to_string();
    if trimmed.is_empty() {
        None
    } else {
        Some(trimmed)
    }
}

/// The policy's name: `x-api-guard-policy` on the path item if present, else the operationId
/// when the path has exactly one operation, else the path (`/pets/{id}` -> `pets-id`);
/// prefixed, sanitised, and made unique with `-2`, `-3`, ...
fn policy_name(
    explicit: Option<&str>,
    operation_ids: &[String],
    path: &str,
    prefix: Option<&str>,
    used: &mut BTreeSet<String>,
) -> String {
    let raw = match (explicit, operation_ids) {
        (Some(name), _) => name.to_string(),
        (None, [only]) => only.clone(),
        _ => path.to_string(),
    };
    let raw = sanitize(&raw).unwrap_or_else(|| "root".to_string());
    let raw = match prefix {
        Some(p) => format!("{p}-{raw}"),
        None => raw,
    };
    let base = sanitize(&raw).unwrap_or_else(|| "root".to_string());
    let mut name = base.clone();
    let mut n = 2;
    while used.contains(&name) {
        let suffix = format!("-{n}");
        let keep = MAX_POLICY_NAME.saturating_sub(suffix.len());
        let stem: String = base.chars().take(keep).collect();
        name = format!("{}{suffix}", stem.trim_end_matches('-'));
        n += 1;
    }
    used.insert(name.clone());
    name
}

/// A path template, split into segments.
struct Template {
    raw: String,
    segments: Vec<Segment>,
}

enum Segment {
    Literal(String),
    /// Literal pieces and parameters mixed (`{name}.json`, or just `{id}`).
    Templated(Vec<Piece>),
}

enum Piece {
    Literal(String),
    Param,
}

impl Template {
    fn parse(path: &str) -> Option<Template> {
        let rest = path.strip_prefix('/')?;
        let mut segments = Vec::new();
        for seg in rest.split('/') {
            if !seg.contains(['{', '}']) {
                segments.push(Segment::Literal(seg.to_string()));
                continue;
            }
            let mut pieces = Vec::new();
            let mut rest = seg;
            while !rest.is_empty() {
                match rest.find('{') {
                    Some(0) => {
                        let close = rest.find('}')?;
                        let name = rest.get(1..close)?;
                        if name.is_empty() || name.contains('{') {
                            return None;
                        }
                        pieces.push(Piece::Param);
                        rest = rest.get(close + 1..)?;
                    }
                    Some(i) => {
                        let lit = rest.get(..i)?;
                        if lit.contains('}') {
                            return None;
                        }
                        pieces.push(Piece::Literal(lit.to_string()));
                        rest = rest.get(i..)?;
                    }
                    None => {
                        if rest.contains('}') {
                            return None;
                        }
                        pieces.push(Piece::Literal(rest.to_string()));
                        rest = "";
                    }
                }
            }
            segments.push(Segment::Templated(pieces));
        }
        Some(Template {
            raw: path.to_string(),
            segments,
        })
    }

    fn route(&self, base_path: &str, policy: &str, cluster: &str) -> Route {
        let templated = self
            .segments
            .iter()
            .any(|s| matches!(s, Segment::Templated(_)));
        let matcher = if templated {
            let mut re = format!("^{}", regex_escape(base_path));
            for seg in &self.segments {
                re.push('/');
                match seg {
                    Segment::Literal(l) => re.push_str(&regex_escape(l)),
                    Segment::Templated(pieces) => {
                        for p in pieces {
                            match p {
                                Piece::Literal(l) => re.push_str(&regex_escape(l)),
                                Piece::Param => re.push_str("[^/]+"),
                            }
                        }
                    }
                }
            }
            re.push('$');
            Matcher::Regex(re)
        } else {
            Matcher::Path(format!("{base_path}{}", self.raw))
        };
        // Per segment: 0 literal, 1 literal and parameters mixed, 2 parameter only.
        let specificity = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 0,
                Segment::Templated(p) if p.len() == 1 => 2,
                Segment::Templated(_) => 1,
            })
            .collect();
        Route {
            template: self.raw.clone(),
            matcher,
            policy: policy.to_string(),
            cluster: cluster.to_string(),
            specificity,
        }
    }
}

/// Most specific first: Envoy takes the first matching route. Exact paths never overlap each
/// other; a literal segment beats a mixed one, which beats a bare parameter, segment by
/// segment from the left (`/pets/mine` before `/pets/{id}` before `/{kind}/{id}`). Templates
/// with different segment counts never overlap (`[^/]+` stops at `/`).
fn compare_routes(a: &Route, b: &Route) -> Ordering {
    a.specificity
        .cmp(&b.specificity)
        .then_with(|| a.template.cmp(&b.template))
}

/// Escapes RE2 metacharacters.
fn regex_escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn route_value(route: &Route) -> Value {
    let matcher = match &route.matcher {
        Matcher::Path(p) => json!({ "path": p }),
        Matcher::Regex(r) => json!({ "safe_regex": { "regex": r } }),
    };
    json!({
        "match": matcher,
        "metadata": { "filter_metadata": { "api_guard": { "policy": route.policy } } },
        "route": { "cluster": route.cluster },
    })
}

/// The routes as a YAML list, for a virtual host's `routes:`.
pub fn routes_yaml(routes: &[Route], source: &str) -> Result<String, String> {
    let list = Value::Array(routes.iter().map(route_value).collect());
    let body = serde_yaml::to_string(&list).map_err(|e| format!("cannot write YAML: {e}"))?;
    Ok(format!(
        "# Envoy routes generated by `api-guard openapi` from {source}: one per OpenAPI path, most\n\
         # specific first, each naming its api-guard policy. Put them under a virtual host's\n\
         # `routes:`, before any catch-all route.\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_table() {
        let cases = [
            ("findPets", Some("findPets")),
            ("find pet by id", Some("find-pet-by-id")),
            ("/pets/{id}", Some("pets-id")),
            ("/users/{userId}/orders/", Some("users-userId-orders")),
            ("__x", Some("x")),
            ("café.au-lait", Some("caf-au-lait")),
            ("a_b-c", Some("a_b-c")),
            // Failing edges: nothing usable.
            ("/", None),
            ("{}/_-", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(sanitize(raw).as_deref(), expected, "{raw}");
        }
        let long = "x".repeat(100);
        assert_eq!(sanitize(&long).map(|s| s.len()), Some(64));
    }

    #[test]
    fn policy_names_are_unique_and_bounded() {
        let mut used = BTreeSet::new();
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            policy_name(None, &ids(&["a", "b"]), "/pets", None, &mut used),
            "pets"
        );
        assert_eq!(policy_name(None, &[], "/pets/", None, &mut used), "pets-2");
        assert_eq!(
            policy_name(None, &ids(&["getPet"]), "/x", None, &mut used),
            "getPet"
        );
        assert_eq!(
            policy_name(Some("mine"), &ids(&["getPet"]), "/y", None, &mut used),
            "mine"
        );
        assert_eq!(
            policy_name(None, &[], "/", Some("shop"), &mut used),
            "shop-root"
        );
        assert_eq!(policy_name(None, &[], "/", None, &mut used), "root");
        let long = format!("/{}", "y".repeat(80));
        let first = policy_name(None, &[], &long, None, &mut used);
        let second = policy_name(None, &[], &long, None, &mut used);
        assert_eq!(first.len(), 64);
        assert_eq!(second.len(), 64);
        assert!(second.ends_with("-2"));
    }

    #[test]
    fn templates_to_matchers() {
        let cases = [
            ("/pets", "", Some(Matcher::Path("/pets".into()))),
            ("/pets", "/v2", Some(Matcher::Path("/v2/pets".into()))),
            (
                "/pets/{petId}",
                "",
                Some(Matcher::Regex("^/pets/[^/]+$".into())),
            ),
            (
                "/files/{name}.json",
                "/v1.0",
                Some(Matcher::Regex("^/v1\\.0/files/[^/]+\\.json$".into())),
            ),
            (
                "/a/{x}-{y}/b",
                "",
                Some(Matcher::Regex("^/a/[^/]+-[^/]+/b$".into())),
            ),
            // Failing edges: not templates.
            ("pets", "", None),
            ("/pets/{id", "", None),
            ("/pets/id}", "", None),
            ("/pets/{}", "", None),
        ];
        for (path, base, expected) in cases {
            let got = Template::parse(path).map(|t| t.route(base, "p", "c").matcher);
            assert_eq!(got, expected, "{path}");
        }
    }

    #[test]
    fn routes_sort_most_specific_first() {
        let mut routes: Vec<Route> = [
            "/{kind}/{id}",
            "/pets/{id}",
            "/pets/mine",
            "/pets/{id}.json",
            "/pets",
        ]
        .iter()
        .filter_map(|p| Template::parse(p))
        .map(|t| t.route("", "p", "c"))
        .collect();
        routes.sort_by(compare_routes);
        let order: Vec<&str> = routes.iter().map(|r| r.template.as_str()).collect();
        assert_eq!(
            order,
            [
                "/pets",
                "/pets/mine",
                "/pets/{id}.json",
                "/pets/{id}",
                "/{kind}/{id}"
            ]
        );
    }

    #[test]
    fn versions() {
        let cases = [
            (json!({"openapi": "3.0.3"}), Ok(Dialect::V30)),
            (json!({"openapi": "3.1.0"}), Ok(Dialect::V31)),
            (json!({"openapi": 3.1}), Ok(Dialect::V31)),
            (json!({"openapi": "3.2.0"}), Err(())),
            (json!({"swagger": "2.0"}), Err(())),
            (json!({}), Err(())),
        ];
        for (doc, expected) in cases {
            assert_eq!(dialect(&doc).map_err(|_| ()), expected, "{doc}");
        }
    }

    #[test]
    fn url_paths() {
        let cases = [
            ("https://petstore.swagger.io/v2", Some("/v2")),
            ("http://h", Some("")),
            ("/api/", Some("/api")),
            ("https://{host}/x", Some("/x")),
            ("https://h/{version}", None),
        ];
        for (url, expected) in cases {
            assert_eq!(url_path(url), expected, "{url}");
        }
    }

    #[test]
    fn yaml_keys_become_strings() {
        let doc =
            load(b"openapi: 3.0.0\nresponses:\n  200: {description: ok}\n  true: x\n").unwrap();
        assert_eq!(doc["responses"]["200"]["description"], "ok");
        assert_eq!(doc["responses"]["true"], "x");
        assert!(load(b"{not json").is_err());
        assert!(load(b"a: [").is_err());
    }
}
