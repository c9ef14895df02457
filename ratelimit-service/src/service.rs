//! The gRPC method `ShouldRateLimit`: plan each descriptor ([`Matcher`]), count it in Redis
//! through Limitador, answer OK or OVER_LIMIT per descriptor and overall.
//!
//! A storage failure or timeout is a gRPC error (UNAVAILABLE), never a guess: Envoy's
//! `failure_mode_deny` then decides, in one place, whether traffic passes or is refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::rate_limit::Unit;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitService;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use limitador::counter::Counter;
use limitador::limit::{Context, Expression, Limit, Namespace};
use limitador::AsyncRateLimiter;

use crate::config::{Admission, Config, LimitSpec, Per};
use crate::descriptors::{variable, Descriptor, Matcher, Plan};
use crate::metrics::{Metrics, RequestResult};

/// How often an `exact` refusal caused only by holds of requests in flight is asked again, and
/// the pause before each time.
const HOLD_RETRIES: u32 = 3;
const HOLD_RETRY_PAUSE: Duration = Duration::from_millis(2);

/// How long an `exact` reservation holds its hits if the service dies before committing them
/// (they count against the limit until then: a crash never over-admits).
const RESERVATION_TTL: Duration = Duration::from_secs(5);

/// The answer for one descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Unmatched,
    Counted {
        limit: usize,
        over_limit: bool,
        remaining: u64,
        reset: Option<Duration>,
    },
}

pub struct RateLimiter {
    domain: String,
    limits: Vec<LimitSpec>,
    namespaces: Vec<Namespace>,
    matcher: Matcher,
    admission: Admission,
    storage_timeout: Duration,
    engine: AsyncRateLimiter,
    metrics: Arc<Metrics>,
}

/// Limitador's limit for a configured one: its own namespace (`<domain>/<name>`), so a
/// descriptor is only ever counted by the limit the matcher chose; one variable per open entry.
pub fn engine_limit(domain: &str, spec: &LimitSpec) -> Result<Limit, String> {
    let variables = spec
        .descriptor
        .iter()
        .enumerate()
        .filter(|(_, p)| p.value.is_none())
        .map(|(i, _)| Expression::parse(variable(i)).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut limit = Limit::new(
        namespace(domain, spec),
        u64::from(spec.rate),
        spec.per.seconds(),
        Vec::new(),
        variables,
    );
    limit.set_name(spec.name.clone());
    Ok(limit)
}

fn namespace(domain: &str, spec: &LimitSpec) -> Namespace {
    Namespace::from(format!("{domain}/{}", spec.name))
}

impl RateLimiter {
    pub fn new(
        config: &Config,
        engine: AsyncRateLimiter,
        metrics: Arc<Metrics>,
    ) -> Result<RateLimiter, String> {
        for spec in &config.limits {
            engine.add_limit(engine_limit(&config.domain, spec)?);
        }
        Ok(RateLimiter {
            domain: config.domain.clone(),
            namespaces: config
                .limits
                .iter()
                .map(|s| namespace(&config.domain, s))
                .collect(),
            limits: config.limits.clone(),
            matcher: Matcher::new(&config.limits),
            admission: config.admission,
            storage_timeout: config.storage_timeout(),
            engine,
            metrics,
        })
    }

    /// Counts `hits` on the counter of `limit` named by `variables`.
    async fn count(
        &self,
        limit: usize,
        variables: HashMap<String, String>,
        hits: u64,
    ) -> Result<Outcome, limitador::errors::LimitadorError> {
        let namespace = &self.namespaces[limit];
        let ctx: Context = variables.into();
        let (over_limit, counters) = match self.admission {
            Admission::Exact => {
                let mut refusals = 0;
                loop {
                    let reserved = self
                        .engine
                        .reserve(namespace, &ctx, hits, Some(RESERVATION_TTL))
                        .await?;
                    if !reserved.limited {
                        self.engine
                            .commit_reservation(
                                namespace,
                                &ctx,
                                reserved.reservation_id.as_ref(),
                                hits,
                            )
                            .await?;
                        let mut counters = reserved.counters;
                        for c in &mut counters {
                            if let Some(r) = c.remaining() {
                                c.set_remaining(r.saturating_sub(hits));
                            }
                        }
                        break (false, counters);
                    }
                    // Refused by the count, or by holds of requests still in flight: a commit
                    // increments the count before it releases its hold, so for that moment its
                    // hits count twice. If the count alone has room, wait for them and ask again
                    // (a bounded number of times; refusing is the safe side).
                    refusals += 1;
                    if refusals > HOLD_RETRIES
                        || self
                            .engine
                            .is_rate_limited(namespace, &ctx, hits)
                            .await?
                            .limited
                    {
                        break (true, reserved.counters);
                    }
                    tokio::time::sleep(HOLD_RETRY_PAUSE).await;
                }
            }
            Admission::Fast => {
                let checked = self
                    .engine
                    .check_rate_limited_and_update(namespace, &ctx, hits)
                    .await?;
                (checked.limited, checked.counters)
            }
        };
        let (remaining, reset) = counter_state(&counters, self.limits[limit].rate);
        Ok(Outcome::Counted {
            limit,
            over_limit,
            remaining,
            reset,
        })
    }

    async fn decide(&self, request: RateLimitRequest) -> Result<Vec<Outcome>, RequestResult> {
        if request.domain != self.domain || asks_unsupported(&request) {
            return Err(RequestResult::Invalid);
        }
        let plans = self
            .matcher
            .plan(&descriptors(&request))
            .map_err(|_| RequestResult::Invalid)?;
        let mut outcomes = Vec::with_capacity(plans.len());
        for plan in plans {
            let outcome = match plan {
                Plan::Unmatched => Outcome::Unmatched,
                Plan::Count {
                    limit,
                    variables,
                    hits,
                } => self
                    .count(limit, variables, hits)
                    .await
                    .map_err(|_| RequestResult::StorageError)?,
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }
}

/// A descriptor with a limit override or negative hits (refunds): not supported, so refused
/// rather than counted in a way the Envoy configuration did not ask for.
pub fn asks_unsupported(request: &RateLimitRequest) -> bool {
    request
        .descriptors
        .iter()
        .any(|d| d.limit.is_some() || d.is_negative_hits)
}

/// The descriptors of a request with their cost: the descriptor's own `hits_addend`, else the
/// request's, and 0 means 1 (Envoy's rule).
pub fn descriptors(request: &RateLimitRequest) -> Vec<Descriptor> {
    request
        .descriptors
        .iter()
        .map(|d| {
            let hits = d
                .hits_addend
                .as_ref()
                .map_or(u64::from(request.hits_addend), |h| h.value);
            Descriptor {
                entries: d
                    .entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.clone()))
                    .collect(),
                hits: hits.max(1),
            }
        })
        .collect()
}

fn counter_state(counters: &[Counter], rate: u32) -> (u64, Option<Duration>) {
    let remaining = counters
        .iter()
        .filter_map(Counter::remaining)
        .min()
        .unwrap_or(u64::from(rate));
    let reset = counters.iter().filter_map(Counter::expires_in).min();
    (remaining, reset)
}

fn unit(per: Per) -> Unit {
    match per {
        Per::Second => Unit::Second,
        Per::Minute => Unit::Minute,
        Per::Hour => Unit::Hour,
        Per::Day => Unit::Day,
    }
}

/// The RLS answer for the outcomes, in descriptor order.
pub fn response(limits: &[LimitSpec], outcomes: &[Outcome]) -> RateLimitResponse {
    let mut overall = Code::Ok;
    let statuses = outcomes
        .iter()
        .map(|outcome| match outcome {
            Outcome::Unmatched => DescriptorStatus {
                code: Code::Ok as i32,
                ..Default::default()
            },
            Outcome::Counted {
                limit,
                over_limit,
                remaining,
                reset,
            } => {
                let spec = &limits[*limit];
                if *over_limit {
                    overall = Code::OverLimit;
                }
                DescriptorStatus {
                    code: if *over_limit {
                        Code::OverLimit
                    } else {
                        Code::Ok
                    } as i32,
                    current_limit: Some(RateLimit {
                        name: spec.name.clone(),
                        requests_per_unit: spec.rate,
                        unit: unit(spec.per) as i32,
                    }),
                    limit_remaining: u32::try_from(*remaining).unwrap_or(u32::MAX),
                    duration_until_reset: reset.map(|d| {
                        envoy_types::pb::google::protobuf::Duration {
                            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                            nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
                        }
                    }),
                    ..Default::default()
                }
            }
        })
        .collect();
    RateLimitResponse {
        overall_code: overall as i32,
        statuses,
        ..Default::default()
    }
}

#[tonic::async_trait]
impl RateLimitService for RateLimiter {
    async fn should_rate_limit(
        &self,
        request: tonic::Request<RateLimitRequest>,
    ) -> Result<tonic::Response<RateLimitResponse>, tonic::Status> {
        let started = Instant::now();
        let decided = tokio::time::timeout(self.storage_timeout, self.decide(request.into_inner()))
            .await
            .unwrap_or(Err(RequestResult::StorageError));
        match decided {
            Ok(outcomes) => {
                for outcome in &outcomes {
                    match outcome {
                        Outcome::Unmatched => self.metrics.unmatched(),
                        Outcome::Counted {
                            limit, over_limit, ..
                        } => self.metrics.descriptor(*limit, *over_limit),
                    }
                }
                let answer = response(&self.limits, &outcomes);
                let result = if answer.overall_code == Code::OverLimit as i32 {
                    RequestResult::OverLimit
                } else {
                    RequestResult::Ok
                };
                self.metrics.request(result, started.elapsed());
                Ok(tonic::Response::new(answer))
            }
            Err(result) => {
                self.metrics.request(result, started.elapsed());
                // Fixed messages: nothing from the request or the storage error is echoed.
                Err(match result {
                    RequestResult::Invalid => tonic::Status::invalid_argument(
                        "unknown domain or descriptor out of bounds",
                    ),
                    _ => tonic::Status::unavailable("rate limit storage unavailable"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
    use envoy_types::pb::google::protobuf::UInt64Value;

    fn limits() -> Vec<LimitSpec> {
        Config::from_yaml(
            "domain: d\nlimits:\n  - {name: a, descriptor: [{key: k}], rate: 5, per: minute}\n  - {name: b, descriptor: [{key: t, value: x}, {key: k}], rate: 7, per: day}\n",
        )
        .unwrap()
        .limits
    }

    #[test]
    fn the_overall_code_is_over_limit_if_any_descriptor_is() {
        let limits = limits();
        let ok = Outcome::Counted {
            limit: 0,
            over_limit: false,
            remaining: 4,
            reset: Some(Duration::from_millis(1500)),
        };
        let over = Outcome::Counted {
            limit: 1,
            over_limit: true,
            remaining: 0,
            reset: None,
        };
        let r = response(&limits, &[ok.clone(), Outcome::Unmatched]);
        assert_eq!(r.overall_code, Code::Ok as i32);
        assert_eq!(r.statuses.len(), 2);
        let s = &r.statuses[0];
        assert_eq!(s.limit_remaining, 4);
        assert_eq!(s.current_limit.as_ref().unwrap().requests_per_unit, 5);
        assert_eq!(s.current_limit.as_ref().unwrap().unit, Unit::Minute as i32);
        let reset = s.duration_until_reset.as_ref().unwrap();
        assert_eq!((reset.seconds, reset.nanos), (1, 500_000_000));
        assert_eq!(r.statuses[1].code, Code::Ok as i32);
        assert!(r.statuses[1].current_limit.is_none());

        let r = response(&limits, &[ok, over]);
        assert_eq!(r.overall_code, Code::OverLimit as i32);
        assert_eq!(r.statuses[1].code, Code::OverLimit as i32);
        assert_eq!(
            r.statuses[1].current_limit.as_ref().unwrap().unit,
            Unit::Day as i32
        );
        assert_eq!(response(&limits, &[]).overall_code, Code::Ok as i32);
    }

    #[test]
    fn hits_come_from_the_descriptor_then_the_request_and_zero_is_one() {
        let d = |hits: Option<u64>| RateLimitDescriptor {
            entries: vec![Entry {
                key: "k".into(),
                value: "v".into(),
            }],
            hits_addend: hits.map(|value| UInt64Value { value }),
            ..Default::default()
        };
        let request = |addend: u32, ds: Vec<RateLimitDescriptor>| RateLimitRequest {
            domain: "d".into(),
            descriptors: ds,
            hits_addend: addend,
        };
        let hits = |r: &RateLimitRequest| descriptors(r).iter().map(|d| d.hits).collect::<Vec<_>>();
        assert_eq!(hits(&request(0, vec![d(None)])), vec![1]);
        assert_eq!(
            hits(&request(4, vec![d(None), d(Some(9)), d(Some(0))])),
            vec![4, 9, 1]
        );
        let r = request(1, vec![d(None)]);
        assert_eq!(
            descriptors(&r)[0].entries,
            vec![("k".to_string(), "v".to_string())]
        );
    }

    #[test]
    fn overrides_and_refunds_are_refused() {
        use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::RateLimitOverride;
        let d = |limit: bool, negative: bool| RateLimitDescriptor {
            entries: vec![Entry {
                key: "k".into(),
                value: "v".into(),
            }],
            limit: limit.then(RateLimitOverride::default),
            is_negative_hits: negative,
            ..Default::default()
        };
        let request = |ds: Vec<RateLimitDescriptor>| RateLimitRequest {
            domain: "d".into(),
            descriptors: ds,
            hits_addend: 1,
        };
        assert!(!asks_unsupported(&request(vec![d(false, false)])));
        assert!(asks_unsupported(&request(vec![
            d(false, false),
            d(true, false)
        ])));
        assert!(asks_unsupported(&request(vec![d(false, true)])));
    }

    #[test]
    fn each_limit_gets_its_own_namespace_and_variables_for_open_entries() {
        let limits = limits();
        let a = engine_limit("d", &limits[0]).unwrap();
        assert_eq!(a.namespace().as_ref(), "d/a");
        assert_eq!(a.max_value(), 5);
        assert_eq!(a.seconds(), 60);
        assert_eq!(a.variables(), ["e0".to_string()].into());
        let b = engine_limit("d", &limits[1]).unwrap();
        assert_eq!(b.namespace().as_ref(), "d/b");
        assert_eq!(b.seconds(), 86_400);
        assert_eq!(b.variables(), ["e1".to_string()].into());
        assert!(b.conditions().is_empty());
    }
}
