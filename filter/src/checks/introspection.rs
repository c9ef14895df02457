//! The introspection check of a policy: an opaque token (or an API key the configuration does
//! not hold) judged by the shared auth service's cached answer. Pure over the shared store: it
//! reads the cache, asks the breaker, claims the single callout, and tells the adapter what to
//! do (see `introspect/mod.rs` for the flow). The adapter makes the callout and decides again.

use crate::abuse::budget::Spend;
use crate::introspect::{
    acceptable_token, serves_stale, Answer, Claim, Event, Gate, IntrospectionRule,
    IntrospectionService, Judgement, Lookup, OnFailure, TokenDigest,
};
use crate::jwt::source::find_token;
use crate::jwt::TokenProblem;
use crate::rejection::Rejection;
use crate::request::RequestView;
use crate::store::SharedStore;
pub use crate::verdict::{Introspected, IntrospectionWait as Pending, Refresh};

/// Facts and outputs of one evaluation.
pub struct IntroFacts<'s> {
    pub store: &'s dyn SharedStore,
    pub now_ms: u64,
    /// This request's callout failed (or timed out): the policy's `on_failure` applies.
    pub service_failed: bool,
    /// What happened, for metrics.
    pub events: Vec<Event>,
    /// The client's budget of expensive operations (a callout spends one), if configured.
    pub budget: Option<(
        &'s crate::abuse::budget::ExpensiveBudget,
        Option<std::net::IpAddr>,
    )>,
}

#[derive(Debug)]
pub enum IntroOutcome<'g> {
    Admit(Introspected, Option<Refresh>),
    Missing,
    Refuse(Rejection<'g>),
    Pending(Pending),
}

pub fn check<'g>(
    service: &'g IntrospectionService,
    rule: &'g IntrospectionRule,
    request: &RequestView<'_>,
    facts: &mut IntroFacts<'_>,
) -> IntroOutcome<'g> {
    let credential = match find_token(&service.sources, request) {
        Ok((c, _)) => c,
        Err(TokenProblem::Missing) => return IntroOutcome::Missing,
        Err(problem) => {
            return IntroOutcome::Refuse(Rejection::Token {
                problem,
                provider: None,
            })
        }
    };
    // A token that cannot be one of the service's is refused without a callout.
    if !acceptable_token(&credential) || !service.token_shape.admits(&credential) {
        facts.events.push(Event::ShapeRefused);
        return IntroOutcome::Refuse(Rejection::IntrospectionInactive);
    }
    let digest = TokenDigest::of(credential.as_bytes());
    let cache = service.cache();
    let breaker = service.breaker();
    let now = facts.now_ms;
    if facts.service_failed {
        return fail_per_policy(service, rule, &digest, facts, 0);
    }
    let lookup = match cache.lookup(facts.store, &digest, now) {
        Ok(l) => l,
        Err(_) => return fail_per_policy(service, rule, &digest, facts, 0),
    };
    match lookup {
        Lookup::Fresh(answer) => {
            facts.events.push(Event::Hit);
            judge(rule, &answer, now, None)
        }
        Lookup::Stale(answer) => {
            let gate = breaker
                .allow(facts.store, now)
                .unwrap_or(Gate::Open { retry_after_ms: 0 });
            if !serves_stale(rule.on_failure, gate) {
                facts.events.push(Event::BreakerOpen);
                return fail_per_policy(service, rule, &digest, facts, retry_ms(gate));
            }
            facts.events.push(Event::StaleHit);
            let refresh = match gate {
                Gate::Call | Gate::Probe => {
                    match cache.try_claim(facts.store, &digest, now, service.timeout_ms) {
                        Ok(Claim::Won { evicted }) => {
                            if evicted {
                                facts.events.push(Event::Evicted);
                            }
                            Some(Refresh {
                                credential: credential.clone(),
                                digest,
                            })
                        }
                        _ => None,
                    }
                }
                Gate::Open { .. } => None,
            };
            judge(rule, &answer, now, refresh)
        }
        Lookup::Pending { until_ms } => {
            facts.events.push(Event::PendingWait);
            IntroOutcome::Pending(Pending::Wait { digest, until_ms })
        }
        Lookup::Miss => {
            let gate = match breaker.allow(facts.store, now) {
                Ok(g) => g,
                Err(_) => return fail_per_policy(service, rule, &digest, facts, 0),
            };
            if let Gate::Open { retry_after_ms } = gate {
                facts.events.push(Event::BreakerOpen);
                return fail_per_policy(service, rule, &digest, facts, retry_after_ms);
            }
            // A callout is the expensive step: spent from the client's budget before the claim
            // (a refused request claims nothing, so it makes no one else wait).
            if let Some((budget, ip)) = facts.budget {
                match budget.spend(facts.store, ip, now.saturating_mul(1_000_000)) {
                    Spend::Granted => {}
                    Spend::Exhausted(limited) => {
                        facts.events.push(Event::BudgetExhausted);
                        return IntroOutcome::Refuse(Rejection::RateLimited(limited));
                    }
                    Spend::Unavailable => {
                        return IntroOutcome::Refuse(Rejection::RateLimitUnavailable)
                    }
                }
            }
            match cache.try_claim(facts.store, &digest, now, service.timeout_ms) {
                Ok(Claim::Won { evicted }) => {
                    if evicted {
                        facts.events.push(Event::Evicted);
                    }
                    facts.events.push(Event::Miss);
                    IntroOutcome::Pending(Pending::Callout { credential, digest })
                }
                Ok(Claim::Busy) => {
                    facts.events.push(Event::PendingWait);
                    IntroOutcome::Pending(Pending::Wait {
                        digest,
                        until_ms: now.saturating_add(service.timeout_ms).saturating_add(250),
                    })
                }
                Err(_) => fail_per_policy(service, rule, &digest, facts, 0),
            }
        }
    }
}

fn retry_ms(gate: Gate) -> u64 {
    match gate {
        Gate::Open { retry_after_ms } => retry_after_ms,
        _ => 0,
    }
}

fn judge<'g>(
    rule: &IntrospectionRule,
    answer: &Answer,
    now_ms: u64,
    refresh: Option<Refresh>,
) -> IntroOutcome<'g> {
    match rule.judge(answer, now_ms) {
        Judgement::Allow => IntroOutcome::Admit(
            Introspected {
                subject: answer.subject.clone(),
                client_id: answer.client_id.clone(),
                key_id: None,
            },
            refresh,
        ),
        Judgement::Inactive => IntroOutcome::Refuse(Rejection::IntrospectionInactive),
        Judgement::InsufficientScope => IntroOutcome::Refuse(Rejection::Token {
            problem: TokenProblem::InsufficientScope,
            provider: None,
        }),
    }
}

/// The service cannot answer for this request: `deny` refuses with 503; `cache_only` serves any
/// cached answer (until its `stale_until`), else 503.
fn fail_per_policy<'g>(
    service: &IntrospectionService,
    rule: &IntrospectionRule,
    digest: &TokenDigest,
    facts: &mut IntroFacts<'_>,
    retry_after_ms: u64,
) -> IntroOutcome<'g> {
    let retry_after = u32::try_from(retry_after_ms.div_ceil(1000))
        .unwrap_or(u32::MAX)
        .clamp(1, 3600);
    if rule.on_failure == OnFailure::CacheOnly {
        if let Ok(Some(answer)) = service
            .cache()
            .cache_only(facts.store, digest, facts.now_ms)
        {
            facts.events.push(Event::CacheOnlyServe);
            return judge(rule, &answer, facts.now_ms, None);
        }
    }
    IntroOutcome::Refuse(Rejection::AuthServiceUnavailable { retry_after })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::introspect::{compile_rule, compile_service};
    use crate::store::MemoryStore;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000_000;

    fn service() -> IntrospectionService {
        compile_service(
            &json!({"cluster": "auth", "authority": "a", "path": "/i", "timeout_ms": 500,
                    "positive_ttl_seconds": 60, "stale_while_revalidate_seconds": 10,
                    "breaker": {"failures": 2, "open_seconds": 10}}),
            "introspection",
        )
        .unwrap()
    }

    fn rule(on_failure: &str) -> IntrospectionRule {
        compile_rule(
            &json!({"required_scopes": ["read"], "on_failure": on_failure}),
            "p",
        )
        .unwrap()
    }

    fn view(headers: &[(String, Vec<u8>)]) -> RequestView<'_> {
        RequestView {
            headers: crate::request::leaked_headers(headers),
            client_ip: None,
            route_policy: None,
            route_name: None,
            virtual_host: None,
        }
    }

    fn bearer(t: &str) -> Vec<(String, Vec<u8>)> {
        vec![("authorization".into(), format!("Bearer {t}").into_bytes())]
    }

    fn active(scope: &str) -> Answer {
        Answer {
            active: true,
            subject: Some("alice".into()),
            client_id: Some("app".into()),
            scopes: scope.split(' ').map(str::to_string).collect(),
            ..Answer::default()
        }
    }

    fn run<'g>(
        s: &'g IntrospectionService,
        r: &'g IntrospectionRule,
        store: &MemoryStore,
        h: &[(String, Vec<u8>)],
        now: u64,
        failed: bool,
    ) -> (String, Vec<Event>) {
        let mut facts = IntroFacts {
            store,
            now_ms: now,
            service_failed: failed,
            events: Vec::new(),
            budget: None,
        };
        let out = match check(s, r, &view(h), &mut facts) {
            IntroOutcome::Admit(who, refresh) => {
                format!("admit {:?} refresh={}", who.subject, refresh.is_some())
            }
            IntroOutcome::Missing => "missing".into(),
            IntroOutcome::Refuse(r) => format!("refuse {}", r.reason().as_str()),
            IntroOutcome::Pending(Pending::Callout { .. }) => "callout".into(),
            IntroOutcome::Pending(Pending::Wait { .. }) => "wait".into(),
        };
        (out, facts.events)
    }

    #[test]
    fn the_flow_from_miss_to_fresh_to_stale() {
        let (s, r, store) = (service(), rule("deny"), MemoryStore::new());
        let h = bearer("opaque-1");
        assert_eq!(run(&s, &r, &store, &[], NOW, false).0, "missing");
        // First request claims the callout; a concurrent one waits (single flight).
        assert_eq!(
            run(&s, &r, &store, &h, NOW, false),
            ("callout".into(), vec![Event::Miss])
        );
        assert_eq!(
            run(&s, &r, &store, &h, NOW + 1, false),
            ("wait".into(), vec![Event::PendingWait])
        );
        // The answer arrives.
        let d = TokenDigest::of(b"opaque-1");
        s.cache()
            .store_answer(&store, &d, &active("read write"), NOW + 5)
            .unwrap();
        assert_eq!(
            run(&s, &r, &store, &h, NOW + 10, false).0,
            "admit Some(\"alice\") refresh=false"
        );
        // Past the TTL, within stale-while-revalidate: served, and one refresh is claimed.
        let stale = NOW + 5 + 60_000 + 1;
        assert_eq!(
            run(&s, &r, &store, &h, stale, false).0,
            "admit Some(\"alice\") refresh=true"
        );
        assert_eq!(
            run(&s, &r, &store, &h, stale + 1, false).0,
            "admit Some(\"alice\") refresh=false"
        );
        // Past stale_until: a miss again.
        assert_eq!(
            run(&s, &r, &store, &h, NOW + 5 + 70_001, false).0,
            "callout"
        );
    }

    #[test]
    fn judgements_and_failures_per_policy() {
        let (s, store) = (service(), MemoryStore::new());
        let (deny, cache_only) = (rule("deny"), rule("cache_only"));
        let d = TokenDigest::of(b"t");
        let h = bearer("t");
        s.cache()
            .store_answer(&store, &d, &active("write"), NOW)
            .unwrap();
        assert_eq!(
            run(&s, &deny, &store, &h, NOW, false).0,
            "refuse jwt_insufficient_scope"
        );
        let d2 = TokenDigest::of(b"gone");
        s.cache()
            .store_answer(&store, &d2, &Answer::inactive(), NOW)
            .unwrap();
        assert_eq!(
            run(&s, &deny, &store, &bearer("gone"), NOW, false).0,
            "refuse introspection_inactive"
        );
        // A failed callout: deny -> 503; cache_only serves a cached (even stale) answer.
        let d3 = TokenDigest::of(b"ok");
        s.cache()
            .store_answer(&store, &d3, &active("read"), NOW)
            .unwrap();
        let later = NOW + 65_000;
        assert_eq!(
            run(&s, &deny, &store, &bearer("ok"), later, true).0,
            "refuse auth_service_unavailable"
        );
        assert_eq!(
            run(&s, &cache_only, &store, &bearer("ok"), later, true),
            (
                "admit Some(\"alice\") refresh=false".into(),
                vec![Event::CacheOnlyServe]
            )
        );
        assert_eq!(
            run(&s, &cache_only, &store, &bearer("never"), later, true).0,
            "refuse auth_service_unavailable"
        );
        // Unacceptable credentials never reach the service.
        let huge = "x".repeat(5000);
        assert_eq!(
            run(&s, &deny, &store, &bearer(&huge), NOW, false).0,
            "refuse introspection_inactive"
        );
    }

    #[test]
    fn an_open_breaker_stops_callouts() {
        let (s, r, store) = (service(), rule("deny"), MemoryStore::new());
        let b = s.breaker();
        b.record(&store, false, NOW).unwrap();
        b.record(&store, false, NOW).unwrap();
        let (out, events) = run(&s, &r, &store, &bearer("new"), NOW + 1, false);
        assert_eq!(out, "refuse auth_service_unavailable");
        assert_eq!(events, vec![Event::BreakerOpen]);
        // After open_seconds one probe goes out.
        assert_eq!(
            run(&s, &r, &store, &bearer("new"), NOW + 10_001, false).0,
            "callout"
        );
    }
}
