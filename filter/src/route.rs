//! Route policy selection: which policy a request runs, from the route's `api_guard` metadata.

use crate::policy::{Guard, PolicyId, UnmatchedRoutes};

/// The outcome of selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    Policy(PolicyId),
    /// No policy applies and the configuration explicitly lets such routes through.
    PassThrough,
    /// No policy applies and unmatched routes are denied (the default).
    NoPolicy,
    /// The route names a policy the configuration does not define: deny (fail closed).
    UnknownPolicy,
}

/// Selects by the route's metadata name; routes without one get `default`, if defined.
pub fn select(guard: &Guard, route_policy: Option<&str>) -> Selection {
    match route_policy {
        Some(name) => match guard.by_name.get(name) {
            Some(id) => Selection::Policy(*id),
            None => Selection::UnknownPolicy,
        },
        None => match (guard.default_policy, guard.unmatched_routes) {
            (Some(id), _) => Selection::Policy(id),
            (None, UnmatchedRoutes::Allow) => Selection::PassThrough,
            (None, UnmatchedRoutes::Deny) => Selection::NoPolicy,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::compile;

    #[test]
    fn selection_table() {
        let with_default = compile(br#"{"policies":{"default":{},"api":{}}}"#).unwrap();
        let deny = compile(br#"{"policies":{"api":{}}}"#).unwrap();
        let allow = compile(br#"{"unmatched_routes":"allow","policies":{"api":{}}}"#).unwrap();
        let id = |g: &Guard, n: &str| Selection::Policy(g.by_name[n]);
        let cases = [
            (&with_default, Some("api"), id(&with_default, "api")),
            (&with_default, None, id(&with_default, "default")),
            (&with_default, Some("payments"), Selection::UnknownPolicy),
            (&deny, None, Selection::NoPolicy),
            (&deny, Some("API"), Selection::UnknownPolicy),
            (&allow, None, Selection::PassThrough),
            // An explicit but unknown name is never passed through, even when unmatched is allowed.
            (&allow, Some("ghost"), Selection::UnknownPolicy),
            (&allow, Some(""), Selection::UnknownPolicy),
        ];
        for (guard, name, want) in cases {
            assert_eq!(select(guard, name), want, "{name:?}");
        }
    }
}
