//! Which configured limit counts a descriptor, and under which counter: the pure part of a
//! request, with no storage and no gRPC types.

use std::collections::HashMap;

use crate::config::{LimitSpec, MAX_DESCRIPTORS, MAX_ENTRIES, MAX_KEY_BYTES, MAX_VALUE_BYTES};

/// A descriptor as Envoy sent it: (key, value) entries in order, and its cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub entries: Vec<(String, String)>,
    pub hits: u64,
}

/// What the service will ask the engine for one descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// No limit has this descriptor's pattern: not counted, answered OK (like every RLS).
    Unmatched,
    /// Count `hits` on limit `limit`, in the counter named by `variables` (one per entry of
    /// the pattern without a fixed value: `e<index>` -> the descriptor's value).
    Count {
        limit: usize,
        variables: HashMap<String, String>,
        hits: u64,
    },
}

/// Why a request is refused before anything is counted (gRPC INVALID_ARGUMENT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    TooManyDescriptors,
    EmptyDescriptor,
    TooManyEntries,
    KeyTooLong,
    ValueTooLong,
}

impl Invalid {
    /// A fixed message: nothing the caller sent is echoed.
    pub fn message(&self) -> &'static str {
        match self {
            Invalid::TooManyDescriptors => "more than 16 descriptors",
            Invalid::EmptyDescriptor => "a descriptor without entries",
            Invalid::TooManyEntries => "a descriptor with more than 8 entries",
            Invalid::KeyTooLong => "a descriptor key over 128 bytes",
            Invalid::ValueTooLong => "a descriptor value over 512 bytes",
        }
    }
}

/// The variable name of entry `index` of a pattern (a CEL identifier, as Limitador requires).
pub fn variable(index: usize) -> String {
    format!("e{index}")
}

/// The limits, searched by descriptor.
#[derive(Debug, Clone)]
pub struct Matcher {
    limits: Vec<LimitSpec>,
}

impl Matcher {
    pub fn new(limits: &[LimitSpec]) -> Matcher {
        Matcher {
            limits: limits.to_vec(),
        }
    }

    /// The limit whose pattern has exactly the descriptor's keys, in order, and the same value
    /// wherever the pattern fixes one. When several do, the most specific wins, entry by entry
    /// from the first (a fixed value beats any value), as in envoyproxy/ratelimit.
    pub fn find(&self, entries: &[(String, String)]) -> Option<usize> {
        let mut best: Option<(usize, Vec<bool>)> = None;
        for (index, limit) in self.limits.iter().enumerate() {
            if limit.descriptor.len() != entries.len() {
                continue;
            }
            let matches =
                limit.descriptor.iter().zip(entries).all(|(p, (k, v))| {
                    p.key == *k && p.value.as_ref().is_none_or(|fixed| fixed == v)
                });
            if !matches {
                continue;
            }
            let specificity: Vec<bool> =
                limit.descriptor.iter().map(|p| p.value.is_some()).collect();
            if best.as_ref().is_none_or(|(_, s)| specificity > *s) {
                best = Some((index, specificity));
            }
        }
        best.map(|(index, _)| index)
    }

    /// Checks a request's bounds and plans each descriptor, in order.
    pub fn plan(&self, descriptors: &[Descriptor]) -> Result<Vec<Plan>, Invalid> {
        if descriptors.len() > MAX_DESCRIPTORS {
            return Err(Invalid::TooManyDescriptors);
        }
        descriptors.iter().map(|d| self.plan_one(d)).collect()
    }

    fn plan_one(&self, descriptor: &Descriptor) -> Result<Plan, Invalid> {
        let entries = &descriptor.entries;
        if entries.is_empty() {
            return Err(Invalid::EmptyDescriptor);
        }
        if entries.len() > MAX_ENTRIES {
            return Err(Invalid::TooManyEntries);
        }
        for (key, value) in entries {
            if key.len() > MAX_KEY_BYTES {
                return Err(Invalid::KeyTooLong);
            }
            if value.len() > MAX_VALUE_BYTES {
                return Err(Invalid::ValueTooLong);
            }
        }
        let Some(limit) = self.find(entries) else {
            return Ok(Plan::Unmatched);
        };
        let variables = self.limits[limit]
            .descriptor
            .iter()
            .zip(entries)
            .enumerate()
            .filter(|(_, (pattern, _))| pattern.value.is_none())
            .map(|(index, (_, (_, value)))| (variable(index), value.clone()))
            .collect();
        Ok(Plan::Count {
            limit,
            variables,
            hits: descriptor.hits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use proptest::prelude::*;

    fn matcher() -> Matcher {
        let config = Config::from_yaml(
            "
domain: d
limits:
  - {name: client, descriptor: [{key: client_id}], rate: 1, per: hour}
  - {name: acme, descriptor: [{key: client_id, value: acme}], rate: 1, per: hour}
  - {name: tier_any, descriptor: [{key: tier}, {key: subject}], rate: 1, per: hour}
  - {name: tier_gold, descriptor: [{key: tier, value: gold}, {key: subject}], rate: 1, per: hour}
  - {name: fixed, descriptor: [{key: route, value: a}, {key: method, value: GET}], rate: 1, per: hour}
",
        )
        .unwrap();
        Matcher::new(&config.limits)
    }

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn finds_the_most_specific_limit_with_the_same_keys() {
        let m = matcher();
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<usize>, &'a str);
        let cases: &[Case] = &[
            (&[("client_id", "bravo")], Some(0), "any value"),
            (
                &[("client_id", "acme")],
                Some(1),
                "fixed value beats any value",
            ),
            (
                &[("tier", "silver"), ("subject", "u")],
                Some(2),
                "two entries",
            ),
            (
                &[("tier", "gold"), ("subject", "u")],
                Some(3),
                "fixed first entry",
            ),
            (&[("route", "a"), ("method", "GET")], Some(4), "all fixed"),
            (
                &[("route", "a"), ("method", "POST")],
                None,
                "a fixed value differs",
            ),
            (
                &[("subject", "u"), ("tier", "gold")],
                None,
                "keys out of order",
            ),
            (&[("tier", "gold")], None, "a prefix is not a match"),
            (
                &[("client_id", "a"), ("extra", "x")],
                None,
                "an extra entry",
            ),
            (&[("CLIENT_ID", "a")], None, "keys are case-sensitive"),
        ];
        for (pairs, want, why) in cases {
            assert_eq!(m.find(&entries(pairs)), *want, "{why}");
        }
    }

    #[test]
    fn plans_counters_from_the_values_the_pattern_leaves_open() {
        let m = matcher();
        let plan = m
            .plan(&[
                Descriptor {
                    entries: entries(&[("tier", "gold"), ("subject", "u1")]),
                    hits: 3,
                },
                Descriptor {
                    entries: entries(&[("route", "a"), ("method", "GET")]),
                    hits: 1,
                },
                Descriptor {
                    entries: entries(&[("nothing", "x")]),
                    hits: 1,
                },
            ])
            .unwrap();
        assert_eq!(
            plan,
            vec![
                Plan::Count {
                    limit: 3,
                    variables: HashMap::from([("e1".to_string(), "u1".to_string())]),
                    hits: 3
                },
                Plan::Count {
                    limit: 4,
                    variables: HashMap::new(),
                    hits: 1
                },
                Plan::Unmatched,
            ]
        );
    }

    #[test]
    fn refuses_requests_over_the_bounds() {
        let m = matcher();
        let one = |pairs: Vec<(String, String)>| {
            vec![Descriptor {
                entries: pairs,
                hits: 1,
            }]
        };
        let long = "x".repeat(MAX_VALUE_BYTES + 1);
        let cases = [
            (
                vec![
                    Descriptor {
                        entries: entries(&[("client_id", "a")]),
                        hits: 1
                    };
                    17
                ],
                Invalid::TooManyDescriptors,
            ),
            (one(vec![]), Invalid::EmptyDescriptor),
            (one(entries(&[("k", "v"); 9])), Invalid::TooManyEntries),
            (
                one(vec![("k".repeat(129), "v".into())]),
                Invalid::KeyTooLong,
            ),
            (one(vec![("client_id".into(), long)]), Invalid::ValueTooLong),
        ];
        for (request, want) in cases {
            assert_eq!(m.plan(&request), Err(want));
        }
        // At the bounds: accepted.
        let at = vec![
            Descriptor {
                entries: entries(&[("client_id", "a")]),
                hits: 1
            };
            16
        ];
        assert!(m.plan(&at).is_ok());
        let value = "v".repeat(MAX_VALUE_BYTES);
        assert!(m.plan(&one(vec![("client_id".into(), value)])).is_ok());
    }

    proptest! {
        // Distinct values of an open entry never share a counter; a fixed-value limit is
        // never chosen for another value.
        #[test]
        fn distinct_values_get_distinct_counters(a in "[a-z0-9]{1,12}", b in "[a-z0-9]{1,12}") {
            prop_assume!(a != b && a != "acme" && b != "acme");
            let m = matcher();
            let plan = |v: &str| m.plan(&[Descriptor { entries: entries(&[("client_id", v)]), hits: 1 }]).unwrap();
            let (pa, pb) = (plan(&a), plan(&b));
            prop_assert_ne!(&pa, &pb);
            match (&pa[0], &pb[0]) {
                (Plan::Count { limit: la, .. }, Plan::Count { limit: lb, .. }) => {
                    prop_assert_eq!(*la, 0);
                    prop_assert_eq!(*lb, 0);
                }
                _ => prop_assert!(false, "both must be counted"),
            }
        }
    }
}
