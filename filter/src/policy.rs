//! The compiled configuration: named route policies and the tables they share. Built once by
//! `config::compile`; immutable afterwards, shared by every request of the VM.

use std::collections::HashMap;

use crate::checks::api_key::{ApiKeyRule, ApiKeys};
use crate::checks::ip::IpRule;
use crate::checks::method::MethodSet;
use crate::checks::preflight::Preflight;
use crate::checks::request_limits::RequestLimits;
use crate::introspect::{IntrospectionRule, IntrospectionService};
use crate::jwt::cache::CacheSettings;
use crate::jwt::provider::{AuthMode, JwtProvider, JwtRule, ProviderId};
use crate::jwt::revocation::RevocationConfig;
use crate::payload::{ParamRule, PayloadRule};
use crate::request::RequestView;
use crate::route::Selection;
use crate::screening::ScreeningRule;
pub use crate::verdict::PolicyId;

/// What happens on a route that names no policy when there is no `default` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmatchedRoutes {
    Deny,
    /// Pass requests through unchecked (identity headers are still removed).
    Allow,
}

/// The upstream headers that carry the identity api-guard established. Client-sent copies are
/// removed from every request so they can only ever come from api-guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub client_id: String,
    pub key_id: String,
    /// The rate-limit tier the caller matched (`rate_limits[].overrides`), so that Envoy's
    /// global rate limit descriptors and the upstream can use it.
    pub tier: String,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        IdentityHeaders {
            client_id: "x-api-guard-client-id".into(),
            key_id: "x-api-guard-key-id".into(),
            tier: "x-api-guard-tier".into(),
        }
    }
}

/// One named policy: the checks a route that selects it runs, in pipeline order.
#[derive(Debug)]
pub struct RoutePolicy {
    pub name: String,
    pub request_limits: RequestLimits,
    /// `None` admits every method.
    pub methods: Option<MethodSet>,
    pub ip: Option<IpRule>,
    pub api_key: Option<ApiKeyRule>,
    pub jwt: Option<JwtRule>,
    /// How `api_key` and `jwt` combine (all / any / optional).
    pub auth: AuthMode,
    /// Query parameter and header rules (400).
    pub query: Option<ParamRule>,
    pub headers: Option<ParamRule>,
    /// Body size, content type, JSON limits and schema (413 / 415 / 400).
    pub payload: Option<PayloadRule>,
    /// Opaque tokens / unknown API keys judged by the shared auth service.
    pub introspection: Option<IntrospectionRule>,
    /// Injection and bad-bot screening (403), or detection only.
    pub screening: Option<ScreeningRule>,
    /// Checked last, only for requests every other check admitted; in order.
    pub rate_limits: Vec<crate::ratelimit::RateLimit>,
    /// The client certificate identities this policy requires (`None`: no certificate check).
    pub mtls: Option<crate::checks::mtls::MtlsRule>,
    /// Whether a CORS preflight skips the credential checks.
    pub preflight: crate::checks::preflight::Preflight,
}

impl RoutePolicy {
    /// Whether a decision under this policy reads the client address (IP rules, IP-keyed rate
    /// limits). The adapter skips the host call otherwise: host calls are most of a wasm
    /// filter's per-request cost.
    pub fn needs_client_ip(&self) -> bool {
        self.ip.is_some()
            || self
                .rate_limits
                .iter()
                .any(|l| matches!(l.key, crate::ratelimit::KeySource::Ip { .. }))
    }

    /// Whether a decision under this policy reads the connection's client certificate.
    pub fn needs_peer_certificate(&self) -> bool {
        self.mtls.is_some()
    }

    /// The method a CORS preflight asks for, when this policy lets preflights pass and
    /// `request` is one: the request then skips the credential checks.
    pub fn passing_preflight<'a>(&self, request: &RequestView<'a>) -> Option<&'a [u8]> {
        match self.preflight {
            Preflight::Pass => crate::checks::preflight::requested_method(request),
            Preflight::Check => None,
        }
    }

    /// The largest request body a request under this policy has Envoy buffer before the filter
    /// sees it whole (JSON checks, body screening); `None` when bodies only stream through.
    /// Envoy answers 413 itself once a buffered body passes its own buffer limit, so that
    /// limit must be at least this (`api-guard audit` compares the two).
    pub fn buffered_body_bytes(&self) -> Option<u64> {
        let settings = || {
            self.payload
                .iter()
                .flat_map(|p| std::iter::once(&p.base).chain(p.methods.iter().map(|(_, s)| s)))
        };
        let json = settings()
            .filter(|s| s.json.is_some())
            .map(|s| s.max_body_bytes)
            .max();
        // Screened bodies are buffered up to the payload limit of their method, or the
        // default limit when the policy has no payload section.
        let screened = self
            .screening
            .as_ref()
            .filter(|s| s.screens_bodies())
            .map(|_| {
                settings()
                    .map(|s| s.max_body_bytes)
                    .max()
                    .unwrap_or(crate::payload::DEFAULT_MAX_BODY_BYTES)
            });
        json.max(screened)
    }
}

/// Selects the policy of a request: route metadata, then the matchers, then `default`.
pub fn select(guard: &Guard, request: &RequestView<'_>) -> Selection {
    match request.route_policy {
        Some(name) => match guard.by_name.get(name) {
            Some(id) => Selection::Policy(*id),
            None => Selection::UnknownPolicy,
        },
        None => match guard.routes.select(request) {
            Some(id) => Selection::Policy(id),
            None => match (guard.default_policy, guard.unmatched_routes) {
                (Some(id), _) => Selection::Policy(id),
                (None, UnmatchedRoutes::Allow) => Selection::PassThrough,
                (None, UnmatchedRoutes::Deny) => Selection::NoPolicy,
            },
        },
    }
}

#[derive(Debug)]
pub struct Guard {
    pub policies: Vec<RoutePolicy>,
    pub by_name: HashMap<String, PolicyId>,
    pub default_policy: Option<PolicyId>,
    pub unmatched_routes: UnmatchedRoutes,
    pub identity_headers: IdentityHeaders,
    pub api_keys: ApiKeys,
    pub jwt_providers: Vec<JwtProvider>,
    pub revocation: RevocationConfig,
    pub jwt_cache: CacheSettings,
    pub introspection: Option<IntrospectionService>,
    /// A key list pulled from the central service (`remote_clients`), merged with `clients`.
    pub remote_clients: Option<crate::remote::RemoteSource>,
    /// The gate's own defences: negative cache, budget of expensive operations.
    pub abuse: crate::abuse::AbuseSettings,
    /// `routes`: the policy of a route without `api_guard` metadata, by name, host or path.
    pub routes: crate::route::RouteMatchers,
}

impl Guard {
    pub fn policy(&self, id: PolicyId) -> Option<&RoutePolicy> {
        self.policies.get(id.0)
    }

    /// Whether the selected policy needs the client address (IP rules, IP-keyed rate limits,
    /// the per-address budget of expensive operations).
    pub fn needs_client_ip(&self, selection: Selection) -> bool {
        match selection {
            Selection::Policy(id) => self.policy(id).is_some_and(|p| {
                p.needs_client_ip()
                    || (self.abuse.expensive_per_address.is_some()
                        && (p.jwt.is_some() || p.introspection.is_some()))
            }),
            _ => false,
        }
    }

    /// Whether the selected policy needs the client certificate facts.
    pub fn needs_peer_certificate(&self, selection: Selection) -> bool {
        match selection {
            Selection::Policy(id) => self
                .policy(id)
                .is_some_and(RoutePolicy::needs_peer_certificate),
            _ => false,
        }
    }

    pub fn provider(&self, id: ProviderId) -> Option<&JwtProvider> {
        self.jwt_providers.get(id.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::compile;
    use serde_json::json;

    fn policy_body(policy: serde_json::Value) -> Option<u64> {
        let config = json!({"policies": {"p": policy}});
        let guard = compile(config.to_string().as_bytes()).unwrap();
        guard.policies[0].buffered_body_bytes()
    }

    #[test]
    fn buffered_body_bytes_table() {
        let mib = crate::payload::DEFAULT_MAX_BODY_BYTES;
        let cases = [
            // Nothing buffered: no payload, or a size limit alone (bodies stream, counted).
            (json!({}), None),
            (json!({"payload": {"max_body_bytes": 1000}}), None),
            (json!({"methods": ["POST"]}), None),
            // JSON checks buffer up to the limit of their method; the largest one counts.
            (json!({"payload": {"json": {}}}), Some(mib)),
            (
                json!({"payload": {"max_body_bytes": 4096, "json": {}}}),
                Some(4096),
            ),
            (
                json!({"payload": {"max_body_bytes": 4096, "json": {},
                                   "methods": {"PUT": {"max_body_bytes": 9000}}}}),
                Some(9000),
            ),
            // Body screening buffers up to the payload limit, or the default without one.
            (json!({"screening": {}}), Some(mib)),
            (
                json!({"screening": {}, "payload": {"max_body_bytes": 2048}}),
                Some(2048),
            ),
            // Screening that screens no body buffers nothing.
            (json!({"screening": {"bodies": []}}), None),
        ];
        for (policy, want) in cases {
            assert_eq!(policy_body(policy.clone()), want, "{policy}");
        }
    }
}
