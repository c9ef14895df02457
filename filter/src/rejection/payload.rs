//! Why a request's payload or parameters were refused: the payload module's reasons, kept
//! with the other core types so that `rejection` (the bottom layer) does not import the payload
//! checks that produce them.

/// Which part of the request the rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamKind {
    Query,
    Header,
}

/// The structural limit that was passed (its config field name is [`JsonLimit::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonLimit {
    Depth,
    Members,
    ArrayItems,
    StringBytes,
    TotalValues,
}

impl JsonLimit {
    pub fn name(self) -> &'static str {
        match self {
            JsonLimit::Depth => "max_depth",
            JsonLimit::Members => "max_members",
            JsonLimit::ArrayItems => "max_array_items",
            JsonLimit::StringBytes => "max_string_bytes",
            JsonLimit::TotalValues => "max_total_values",
        }
    }
}

/// Why a request's payload or parameters were refused. `'r` borrows configured names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadProblem<'r> {
    /// 413: `content-length` or the streamed body passed `max_body_bytes`.
    BodyTooLarge,
    /// 415: content type missing (when required), unparsable, repeated, or not allowed.
    UnsupportedMediaType,
    /// 415: a `content-encoding` other than `identity` on a body the policy must read (JSON
    /// checks, body screening): api-guard does not decompress (RFC 7694 answers 415).
    UnsupportedContentEncoding,
    /// 400: the body is not one well-formed UTF-8 JSON text.
    MalformedJson,
    /// 400: a `multipart/form-data` body that screening cannot read (strict RFC 7578).
    MalformedMultipart,
    /// 400: an XML body that screening cannot read (its strict reader, `screening::xml`).
    MalformedXml,
    /// 400: a member name appears twice in one object (only checked when a schema is set).
    DuplicateKey,
    /// 400: a structural limit was passed.
    JsonLimits(JsonLimit),
    /// 400: the body does not satisfy the schema.
    SchemaViolation {
        pointer: String,
        keyword: &'static str,
    },
    /// 400: a required query parameter or header is absent (or empty).
    MissingParameter { kind: ParamKind, name: &'r str },
    /// 400: a forbidden query parameter or header is present.
    ForbiddenParameter { kind: ParamKind, name: &'r str },
    /// 400: a value breaks its rule (`rule` is `pattern`, `max_length` or `one_of`).
    InvalidParameter {
        kind: ParamKind,
        name: &'r str,
        rule: &'static str,
    },
}

impl PayloadProblem<'_> {
    /// The stable code for responses, metrics and logs.
    pub fn code(&self) -> &'static str {
        use ParamKind::{Header, Query};
        match self {
            PayloadProblem::BodyTooLarge => "body_too_large",
            PayloadProblem::UnsupportedMediaType => "unsupported_media_type",
            PayloadProblem::UnsupportedContentEncoding => "unsupported_content_encoding",
            PayloadProblem::MalformedJson => "malformed_json",
            PayloadProblem::MalformedMultipart => "malformed_multipart",
            PayloadProblem::MalformedXml => "malformed_xml",
            PayloadProblem::DuplicateKey => "duplicate_key",
            PayloadProblem::JsonLimits(_) => "json_limits",
            PayloadProblem::SchemaViolation { .. } => "schema_violation",
            PayloadProblem::MissingParameter { kind: Query, .. } => "missing_parameter",
            PayloadProblem::MissingParameter { kind: Header, .. } => "missing_header",
            PayloadProblem::ForbiddenParameter { kind: Query, .. } => "forbidden_parameter",
            PayloadProblem::ForbiddenParameter { kind: Header, .. } => "forbidden_header",
            PayloadProblem::InvalidParameter { kind: Query, .. } => "invalid_parameter",
            PayloadProblem::InvalidParameter { kind: Header, .. } => "invalid_header",
        }
    }

    /// The HTTP status: 413, 415 or 400.
    pub fn status(&self) -> u16 {
        match self {
            PayloadProblem::BodyTooLarge => 413,
            PayloadProblem::UnsupportedMediaType | PayloadProblem::UnsupportedContentEncoding => {
                415
            }
            _ => 400,
        }
    }

    /// For schema violations: the RFC 6901 pointer of the failing instance location.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            PayloadProblem::SchemaViolation { pointer, .. } => Some(pointer),
            _ => None,
        }
    }

    /// For schema violations the failing keyword; for JSON limits the limit's config name;
    /// for invalid parameters the rule.
    pub fn keyword(&self) -> Option<&'static str> {
        match self {
            PayloadProblem::SchemaViolation { keyword, .. } => Some(keyword),
            PayloadProblem::JsonLimits(limit) => Some(limit.name()),
            PayloadProblem::InvalidParameter { rule, .. } => Some(rule),
            _ => None,
        }
    }

    /// For parameter problems: the configured name of the parameter or header.
    pub fn parameter(&self) -> Option<&str> {
        match self {
            PayloadProblem::MissingParameter { name, .. }
            | PayloadProblem::ForbiddenParameter { name, .. }
            | PayloadProblem::InvalidParameter { name, .. } => Some(name),
            _ => None,
        }
    }
}
