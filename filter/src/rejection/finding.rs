//! What screening found, named by the rejection it causes ([`super::Rejection::Blocked`]) and by
//! the verdict that reports it: the attack class, the stable rule id and where, never the value;
//! and the body kinds screening reads. Here, below `screening`, which produces them.

/// Attack classes, with the stable names used in error codes, metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Sqli,
    Xss,
    Traversal,
    CommandInjection,
    Bot,
    /// Not an attack: a body the policy must screen but cannot read (malformed JSON or
    /// multipart, an ambiguous content type, a content coding). Refused in `block` mode as
    /// its payload problem; reported under this class in `detect` mode, so that shadow mode
    /// shows what `block` would refuse. The rule id is the problem's code.
    UnreadableBody,
}

impl Class {
    /// The attack classes (not [`Class::UnreadableBody`]).
    pub const ALL: [Class; 5] = [
        Class::Sqli,
        Class::Xss,
        Class::Traversal,
        Class::CommandInjection,
        Class::Bot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Sqli => "sqli",
            Class::Xss => "xss",
            Class::Traversal => "path_traversal",
            Class::CommandInjection => "command_injection",
            Class::Bot => "bad_bot",
            Class::UnreadableBody => "unreadable_body",
        }
    }
}

/// Where a detection was made. Names are sanitised (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Path,
    /// A query parameter's value.
    Query {
        name: String,
    },
    /// A query parameter's name.
    QueryName,
    Header {
        name: String,
    },
    Cookie {
        name: String,
    },
    /// A cookie's name.
    CookieName,
    /// A form field's value (`application/x-www-form-urlencoded`).
    Form {
        name: String,
    },
    /// A form field's name (urlencoded or multipart).
    FormName,
    /// The file name of the multipart file field `name`.
    Filename {
        name: String,
    },
    /// A JSON string value, by JSON pointer.
    Json {
        pointer: String,
    },
    /// A member name of the JSON object at `pointer` (the name itself is not repeated here).
    JsonName {
        pointer: String,
    },
    UserAgent,
    /// The request body as a whole (an unreadable one).
    Body,
    /// A `text/plain` body, or an unlabelled one that is not JSON, screened as one value.
    Text,
    /// A value of an XML body: the element path (`/order/item`), with `/@name` for an
    /// attribute and `/?` for a processing instruction.
    Xml {
        path: String,
    },
}

impl Location {
    /// The location as logs and skip lists write it: `path`, `query.q`, `query_name`,
    /// `header.referer`, `cookie.session`, `cookie_name`, `form.comment`, `form_name`, `json./a/0/b`,
    /// `json_name./a` (a member name of the object at `/a`), `user_agent`, `body`.
    pub fn key(&self) -> String {
        match self {
            Location::Path => "path".to_string(),
            Location::Query { name } => format!("query.{name}"),
            Location::QueryName => "query_name".to_string(),
            Location::Header { name } => format!("header.{name}"),
            Location::Cookie { name } => format!("cookie.{name}"),
            Location::CookieName => "cookie_name".to_string(),
            Location::Form { name } => format!("form.{name}"),
            Location::FormName => "form_name".to_string(),
            Location::Filename { name } => format!("filename.{name}"),
            Location::Json { pointer } => format!("json.{pointer}"),
            Location::JsonName { pointer } => format!("json_name.{pointer}"),
            Location::UserAgent => "user_agent".to_string(),
            Location::Body => "body".to_string(),
            Location::Text => "text".to_string(),
            Location::Xml { path } => format!("xml.{path}"),
        }
    }
}

/// One finding: what, which rule, where. Never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub class: Class,
    pub rule_id: &'static str,
    pub location: Location,
}

/// The kinds of request body screening reads, decided from `content-type` when the headers
/// arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreenedBody {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json` or `application/*+json`.
    Json,
    /// `multipart/form-data`, with the boundary from its `content-type`.
    Multipart { boundary: Vec<u8> },
    /// `text/plain`: one value.
    Text,
    /// Newline-delimited JSON (`application/x-ndjson`, `jsonl`, ...): each line one strict
    /// JSON text.
    NdJson,
    /// `application/xml`, `text/xml`, `application/*+xml` ([`xml`](crate::screening::xml)).
    Xml,
    /// No `content-type`: some frameworks read such a body as JSON (FastAPI), others as
    /// text. Screened as JSON when it is one strict JSON text, else as one text value.
    Unlabelled,
}
