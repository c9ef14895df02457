//! Fetching remote documents (a provider's JWKS, the revocation list) through an Envoy
//! cluster, and installing the answer: the pure rules (who fetches, when, what is published)
//! are in `remote::document`; this file only makes the calls.

use std::time::Duration;

use super::abi::{self, HostStore};
use super::shared::{FetchTarget, Shared};
use crate::introspect::{parse_answer, request_body, Event, TokenDigest, Transition};
use crate::jwt::keys::{parse_jwks_bytes, JwksMode};
use crate::jwt::provider::{ProviderId, ProviderKeys};
use crate::jwt::revocation::RevocationList;
use crate::remote::document::{publish, release_lease, RemoteSource};
use crate::time::UnixTime;

/// JWKS documents are small; revocation lists are bounded by their own parser.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Every remote document of the configuration.
pub fn remote_sources(shared: &Shared) -> Vec<(FetchTarget, &RemoteSource)> {
    let guard = &shared.guard;
    let mut out: Vec<(FetchTarget, &RemoteSource)> = guard
        .jwt_providers
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match &p.keys {
            ProviderKeys::Remote(source) => Some((FetchTarget::Keys(ProviderId(i)), source)),
            ProviderKeys::Inline(_) => None,
        })
        .collect();
    if let Some(source) = &guard.revocation.remote {
        out.push((FetchTarget::Revocations, source));
    }
    if let Some(source) = &guard.remote_clients {
        out.push((FetchTarget::Clients, source));
    }
    out
}

pub fn source_of(shared: &Shared, target: FetchTarget) -> Option<&RemoteSource> {
    match target {
        FetchTarget::Keys(id) => match &shared.guard.provider(id)?.keys {
            ProviderKeys::Remote(source) => Some(source),
            ProviderKeys::Inline(_) => None,
        },
        FetchTarget::Revocations => shared.guard.revocation.remote.as_ref(),
        FetchTarget::Clients => shared.guard.remote_clients.as_ref(),
    }
}

fn label(shared: &Shared, target: FetchTarget) -> String {
    match target {
        FetchTarget::Keys(id) => format!(
            "jwks of provider {}",
            shared.guard.provider(id).map_or("?", |p| p.name.as_str())
        ),
        FetchTarget::Revocations => "revocation list".to_string(),
        FetchTarget::Clients => "remote key list".to_string(),
    }
}

/// Starts the callout; the response arrives in the calling context's `on_http_call_response`.
pub fn dispatch(shared: &Shared, target: FetchTarget) -> Option<u32> {
    let source = source_of(shared, target)?;
    let mut headers = vec![
        (":method", "GET"),
        (":path", source.path.as_str()),
        (":authority", source.authority.as_str()),
        ("accept", "application/json"),
    ];
    if let Some(auth) = &source.client_auth {
        headers.push(("authorization", auth.header_value()));
    }
    match proxy_wasm::hostcalls::dispatch_http_call(
        &source.cluster,
        headers,
        None,
        vec![],
        Duration::from_millis(source.timeout_ms),
    ) {
        Ok(token) => Some(token),
        Err(status) => {
            // Unknown cluster or bad arguments: a configuration problem an operator must see.
            log::warn!(
                "cannot fetch the {} through cluster {:?} (host status {status:?})",
                label(shared, target),
                source.cluster
            );
            shared.metrics_fetch(target, false);
            None
        }
    }
}

/// Handles a callout response: a 200 whose body parses is published for every VM and installed
/// here; anything else is counted and logged, and the last good document stays in use.
pub fn complete(shared: &Shared, target: FetchTarget, body_size: usize, now: UnixTime) -> bool {
    let Some(source) = source_of(shared, target) else {
        return false;
    };
    let what = label(shared, target);
    let status = abi::http_call_status();
    if status != Some(200) {
        // 503: cluster unreachable; 504: timeout (Envoy synthesizes both).
        log::warn!(
            "fetching the {what} failed: status {}; keeping the last good copy",
            status.map_or("none".to_string(), |s| s.to_string())
        );
        shared.metrics_fetch(target, false);
        return false;
    }
    let max = match target {
        FetchTarget::Keys(_) => MAX_JWKS_BYTES,
        FetchTarget::Revocations | FetchTarget::Clients => {
            crate::jwt::revocation::MAX_DOCUMENT_BYTES
        }
    };
    let Some(body) = abi::http_call_body(body_size, max) else {
        log::warn!("fetching the {what} failed: body larger than {max} bytes or unreadable");
        shared.metrics_fetch(target, false);
        return false;
    };
    let installed = match target {
        FetchTarget::Keys(id) => {
            let (allowed, mode) = shared.guard.provider(id).map_or(
                (crate::jwt::alg::AlgorithmSet::EMPTY, JwksMode::REMOTE),
                |p| (p.rules.algorithms, p.remote_jwks_mode()),
            );
            match parse_jwks_bytes(&body, mode, allowed) {
                Ok(keys) => {
                    log::info!("fetched the {what}: {} usable keys", keys.len());
                    shared.runtime.borrow_mut().install_keys(id, keys, now);
                    Ok(())
                }
                Err(problems) => Err(problems),
            }
        }
        FetchTarget::Clients => match crate::config::compile_remote_clients(&body) {
            Ok(keys) => {
                log::info!("fetched the {what}: {} keys", keys.len());
                shared
                    .runtime
                    .borrow_mut()
                    .install_clients(&shared.guard, keys, now);
                Ok(())
            }
            Err(problems) => Err(problems),
        },
        FetchTarget::Revocations => match RevocationList::parse_bytes(&body) {
            Ok(list) => {
                log::info!("fetched the {what}: {} entries", list.len());
                shared
                    .runtime
                    .borrow_mut()
                    .install_revocations(&shared.guard, list, now);
                Ok(())
            }
            Err(problems) => Err(problems),
        },
    };
    match installed {
        Ok(()) => {
            if let Err(e) = publish(&HostStore, source, now, &body) {
                log::warn!("cannot publish the {what} to other workers ({e:?})");
            }
            let _ = release_lease(&HostStore, source);
            shared.metrics_fetch(target, true);
            true
        }
        Err(problems) => {
            // Paths and messages only: JWKS error messages never carry key material.
            let first = problems.first().map_or(String::new(), |e| {
                if e.path.is_empty() {
                    format!(": {}", e.message)
                } else {
                    format!(": {}: {}", e.path, e.message)
                }
            });
            log::warn!(
                "fetched the {what} but it is not usable ({} problem(s){first}); keeping the last good copy",
                problems.len()
            );
            shared.metrics_fetch(target, false);
            false
        }
    }
}

/// Starts an introspection callout (RFC 7662: POST, form body) for a credential whose cache
/// slot this worker claimed. `None`: the call could not be made (counted as a failure; the
/// claim is released and the breaker told).
pub fn dispatch_introspection(
    shared: &Shared,
    credential: &str,
    digest: &TokenDigest,
) -> Option<u32> {
    let service = shared.guard.introspection.as_ref()?;
    let body = request_body(credential);
    match proxy_wasm::hostcalls::dispatch_http_call(
        &service.cluster,
        service.request_headers(),
        Some(&body),
        vec![],
        Duration::from_millis(service.timeout_ms),
    ) {
        Ok(token) => Some(token),
        Err(status) => {
            log::warn!(
                "cannot call the introspection service through cluster {:?} (host status {status:?})",
                service.cluster
            );
            introspection_failed(shared, digest);
            None
        }
    }
}

fn introspection_failed(shared: &Shared, digest: &TokenDigest) {
    let Some(service) = shared.guard.introspection.as_ref() else {
        return;
    };
    let now_ms = abi::now_unix_nanos().map(|ns| ns / 1_000_000).unwrap_or(0);
    let _ = service.cache().release(&HostStore, digest, now_ms);
    if let Ok(Transition::Opened) = service.breaker().record(&HostStore, false, now_ms) {
        log::warn!("introspection service failing: circuit breaker open");
    }
    shared.count_introspection(Event::CalloutFailed);
}

/// Handles an introspection answer: a 200 whose body parses is cached for every worker (and
/// closes the breaker); anything else releases the claim and counts a failure. `true`: success.
pub fn complete_introspection(
    shared: &Shared,
    digest: &TokenDigest,
    body_size: usize,
    started_ms: u64,
) -> bool {
    let Some(service) = shared.guard.introspection.as_ref() else {
        return false;
    };
    let now_ms = abi::now_unix_nanos().map(|ns| ns / 1_000_000).unwrap_or(0);
    shared.record_callout_ms(now_ms.saturating_sub(started_ms));
    let status = abi::http_call_status();
    let answer = if status == Some(200) {
        abi::http_call_body(body_size, 64 * 1024).and_then(|b| {
            parse_answer(&b, UnixTime(i64::try_from(now_ms / 1000).unwrap_or(0))).ok()
        })
    } else {
        None
    };
    let Some(answer) = answer else {
        log::warn!(
            "introspection failed: status {}",
            status.map_or("none".to_string(), |s| s.to_string())
        );
        introspection_failed(shared, digest);
        return false;
    };
    match service
        .cache()
        .store_answer(&HostStore, digest, &answer, now_ms)
    {
        Ok(stored) if stored.evicted => shared.count_introspection(Event::Evicted),
        Ok(_) => {}
        Err(e) => log::warn!("cannot cache the introspection answer ({e:?})"),
    }
    if let Ok(Transition::Closed) = service.breaker().record(&HostStore, true, now_ms) {
        log::info!("introspection service answering again: circuit breaker closed");
    }
    shared.count_introspection(Event::CalloutOk);
    true
}
