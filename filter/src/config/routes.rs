//! `routes`: the ordered matchers that give a policy to routes without `api_guard` metadata
//! (Istio and Envoy Gateway cannot set route metadata). Compiled into the indexes of
//! [`RouteMatchers`]; every condition is checked here so a request only compares.

use std::collections::HashMap;

use serde_json::Value;

use super::reader::{array, item, string, Fields};
use super::reader::{strings, ConfigErrors};
use crate::checks::method::MethodSet;
use crate::policy::PolicyId;
use crate::route::{HostMatch, PathMatch, PathRegex, RouteMatcher, RouteMatchers};

/// More than enough for a gateway's routes; bounds memory and configure time.
pub const MAX_ROUTE_MATCHERS: usize = 1000;
/// Longest route name, virtual host name, host or path in a matcher.
const MAX_TEXT: usize = 512;
const CONDITIONS: [&str; 7] = [
    "route_name",
    "virtual_host",
    "authority",
    "path",
    "path_prefix",
    "path_regex",
    "methods",
];

pub(super) fn compile(
    v: &Value,
    path: &str,
    policies: &HashMap<String, PolicyId>,
    errors: &mut ConfigErrors,
) -> RouteMatchers {
    let Some(items) = array(v, path, errors) else {
        return RouteMatchers::default();
    };
    if items.len() > MAX_ROUTE_MATCHERS {
        errors.add(path, format!("at most {MAX_ROUTE_MATCHERS} route matchers"));
        return RouteMatchers::default();
    }
    let matchers = items
        .iter()
        .enumerate()
        .filter_map(|(i, v)| compile_matcher(v, &item(path, i), policies, errors))
        .collect();
    RouteMatchers::new(matchers)
}

fn compile_matcher(
    v: &Value,
    path: &str,
    policies: &HashMap<String, PolicyId>,
    errors: &mut ConfigErrors,
) -> Option<RouteMatcher> {
    let mut fields = Fields::of(v, path, errors)?;
    // Presence, not validity: an invalid condition is reported by itself.
    let has_condition = CONDITIONS.iter().any(|c| fields.map_has(c));
    let policy = match fields.take("policy") {
        None => {
            errors.add(path, "a route matcher needs \"policy\"");
            None
        }
        Some((v, p)) => string(v, &p, errors).and_then(|name| match policies.get(name) {
            Some(id) => Some(*id),
            None => {
                errors.add(&p, format!("no policy named {name:?} in \"policies\""));
                None
            }
        }),
    };
    let name = |field: Option<(&Value, String)>, errors: &mut ConfigErrors| {
        let (v, p) = field?;
        let s = string(v, &p, errors)?;
        if s.is_empty() || s.len() > MAX_TEXT {
            errors.add(&p, format!("1-{MAX_TEXT} characters"));
            return None;
        }
        Some(s.to_string())
    };
    let route_name = name(fields.take("route_name"), errors);
    let virtual_host = name(fields.take("virtual_host"), errors);
    let authority = fields
        .take("authority")
        .and_then(|(v, p)| compile_authority(v, &p, errors));
    let exact = fields.take("path");
    let prefix = fields.take("path_prefix");
    let regex = fields.take("path_regex");
    let path_match = compile_path(exact, prefix, regex, errors);
    let methods = fields
        .take("methods")
        .map(|(v, p)| compile_methods(v, &p, errors));
    fields.finish(errors);
    if !has_condition {
        errors.add(
            path,
            format!("a route matcher needs a condition ({}); name the policy \"default\" to cover every route", CONDITIONS.join(", ")),
        );
        return None;
    }
    Some(RouteMatcher {
        policy: policy?,
        route_name,
        virtual_host,
        authority,
        path: path_match,
        methods,
    })
}

/// A host name (any case, compared lowercase) or `*.domain`; no port (the request's is ignored).
fn compile_authority(v: &Value, path: &str, errors: &mut ConfigErrors) -> Option<HostMatch> {
    let s = string(v, path, errors)?;
    let (wildcard, host) = match s.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        errors.add(
            path,
            "a host name (labels of [A-Za-z0-9_-] separated by dots) or \"*.\" and a domain, without port",
        );
        return None;
    }
    let host = host.to_ascii_lowercase();
    Some(if wildcard {
        HostMatch::Suffix(format!(".{host}"))
    } else {
        HostMatch::Exact(host)
    })
}

type Field<'a> = Option<(&'a Value, String)>;

fn compile_path(
    exact: Field<'_>,
    prefix: Field<'_>,
    regex: Field<'_>,
    errors: &mut ConfigErrors,
) -> Option<PathMatch> {
    let text = |field: Field<'_>, errors: &mut ConfigErrors| {
        let (v, p) = field?;
        let s = string(v, &p, errors)?;
        if !s.starts_with('/') || s.len() > MAX_TEXT {
            errors.add(
                &p,
                format!("a path starting with '/', at most {MAX_TEXT} characters"),
            );
            return None;
        }
        Some((s.to_string(), p))
    };
    if let (Some((_, p)), true) = (&exact, prefix.is_some() || regex.is_some()) {
        errors.add(
            p,
            "\"path\" is exact: it cannot be combined with \"path_prefix\" or \"path_regex\"",
        );
        return None;
    }
    let regex = regex.and_then(|(v, p)| {
        let s = string(v, &p, errors)?;
        match PathRegex::new(s) {
            Ok(r) => Some(r),
            Err(e) => {
                // regex-lite's message names the position, not secrets (the pattern is ours).
                errors.add(&p, format!("not a valid regex: {e}"));
                None
            }
        }
    });
    if let Some((e, _)) = text(exact, errors) {
        return Some(PathMatch::Exact(e));
    }
    match (text(prefix, errors), regex) {
        (Some((p, _)), regex) => Some(PathMatch::Prefix(p, regex)),
        (None, Some(r)) => Some(PathMatch::Regex(r)),
        (None, None) => None,
    }
}

pub(super) fn compile_methods(v: &Value, path: &str, errors: &mut ConfigErrors) -> MethodSet {
    let mut methods: Vec<String> = Vec::new();
    let items = strings(v, path, errors);
    if items.is_empty() && v.is_array() {
        errors.add(
            path,
            "list at least one method, or omit \"methods\" to allow every method",
        );
    }
    for (m, p) in items {
        let valid = !m.is_empty()
            && m.bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'-' || c == b'_');
        if !valid {
            errors.add(&p, format!("not an uppercase HTTP method: {m:?}"));
        } else if methods.iter().any(|x| x == m) {
            errors.add(&p, format!("duplicate method {m:?}"));
        } else {
            methods.push(m.to_string());
        }
    }
    MethodSet::new(methods)
}

#[cfg(test)]
mod tests {
    use crate::config::compile;

    fn errors_of(routes: &str) -> Vec<String> {
        let json = format!(r#"{{"policies":{{"api":{{}}}},"routes":{routes}}}"#);
        match compile(json.as_bytes()) {
            Ok(_) => panic!("accepted: {routes}"),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn every_error_is_reported_with_its_path() {
        let cases = [
            (r#"{}"#, "routes: expected an array, found an object"),
            (
                r#"[{"path":"/a"}]"#,
                "routes[0]: a route matcher needs \"policy\"",
            ),
            (
                r#"[{"path":"/a","policy":"ghost"}]"#,
                "routes[0].policy: no policy named \"ghost\"",
            ),
            (
                r#"[{"policy":"api"}]"#,
                "routes[0]: a route matcher needs a condition",
            ),
            (
                r#"[{"route_name":"","policy":"api"}]"#,
                "routes[0].route_name: 1-512 characters",
            ),
            (
                r#"[{"path":"a","policy":"api"}]"#,
                "routes[0].path: a path starting with '/'",
            ),
            (
                r#"[{"path":"/a","path_prefix":"/b","policy":"api"}]"#,
                "routes[0].path: \"path\" is exact",
            ),
            (
                r#"[{"path_regex":"/a(","policy":"api"}]"#,
                "routes[0].path_regex: not a valid regex",
            ),
            (
                r#"[{"authority":"a.com:80","policy":"api"}]"#,
                "routes[0].authority: a host name",
            ),
            (
                r#"[{"authority":"*","policy":"api"}]"#,
                "routes[0].authority: a host name",
            ),
            (
                r#"[{"authority":"a..com","policy":"api"}]"#,
                "routes[0].authority: a host name",
            ),
            (
                r#"[{"methods":["get"],"policy":"api"}]"#,
                "routes[0].methods[0]: not an uppercase HTTP method",
            ),
            (
                r#"[{"path":"/a","policy":"api","prefix":"/b"}]"#,
                "routes[0].prefix: unknown field",
            ),
            (r#"[1]"#, "routes[0]: expected an object, found a number"),
        ];
        for (routes, want) in cases {
            let errors = errors_of(routes);
            assert!(
                errors.iter().any(|e| e.starts_with(want)),
                "{routes}: {errors:?}"
            );
        }
    }

    #[test]
    fn too_many_matchers_are_refused_and_the_limit_is_accepted() {
        let one = r#"{"path":"/a","policy":"api"}"#;
        let list = |n: usize| format!("[{}]", vec![one; n].join(","));
        assert!(errors_of(&list(super::MAX_ROUTE_MATCHERS + 1))[0].contains("at most 1000"));
        let json = format!(
            r#"{{"policies":{{"api":{{}}}},"routes":{}}}"#,
            list(super::MAX_ROUTE_MATCHERS)
        );
        assert_eq!(compile(json.as_bytes()).unwrap().routes.len(), 1000);
    }

    #[test]
    fn errors_in_several_matchers_are_all_collected() {
        let errors =
            errors_of(r#"[{"path":"x","policy":"api"},{"authority":":","policy":"nope"}]"#);
        assert_eq!(errors.len(), 3, "{errors:?}");
    }
}
