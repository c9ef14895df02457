//! The JWT check of a policy: find the token, verify it (or find it in the verified-token
//! cache), refuse it if revoked, then check the policy's scopes and claim rules and work out
//! which claims to forward upstream.

use crate::jwt::cache::TokenCache;
use crate::jwt::claims::{claim_header_value, has_scopes};
use crate::jwt::jwe::{decrypt_nested, is_jwe};
use crate::jwt::keysource::Availability;
use crate::jwt::provider::{JwtProvider, JwtRule, ProviderId, ProviderKeys};
use crate::jwt::revocation::RevocationList;
use crate::jwt::runtime::TokenRuntime;
use crate::jwt::source::{find_token, location, TokenLocation};
use crate::jwt::verify::{verify_jws, VerifiedToken};
use crate::jwt::TokenProblem;
use crate::policy::Guard;
use crate::rejection::Rejection;
use crate::request::RequestView;
use crate::time::UnixTime;

/// An accepted token: who it names and what to do to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAdmission<'g> {
    pub provider: ProviderId,
    pub subject: Option<String>,
    /// (upstream header, value) for each forwarded claim the token has.
    pub forward: Vec<(&'g str, String)>,
    /// Where the token was, when the provider strips it.
    pub strip: Option<TokenLocation<'g>>,
}

/// Runs a policy's JWT rule. Providers are tried in order; the first that accepts the token
/// wins. If none does, the first real problem is reported (a provider that found no token at
/// all only matters when every provider found none).
pub fn check<'g>(
    guard: &'g Guard,
    rule: &'g JwtRule,
    runtime: &mut TokenRuntime,
    request: &RequestView<'_>,
    now: UnixTime,
) -> Result<TokenAdmission<'g>, Rejection<'g>> {
    let mut first_problem: Option<Rejection<'g>> = None;
    for &id in &rule.providers {
        let Some(provider) = guard.provider(id) else {
            continue;
        };
        match check_provider(id, provider, rule, runtime, request, now) {
            Ok(admission) => return Ok(admission),
            Err(Rejection::Token {
                problem: TokenProblem::Missing,
                ..
            }) => {}
            Err(other) => {
                first_problem.get_or_insert(other);
            }
        }
    }
    Err(first_problem.unwrap_or(Rejection::Token {
        problem: TokenProblem::Missing,
        provider: None,
    }))
}

fn check_provider<'g>(
    id: ProviderId,
    provider: &'g JwtProvider,
    rule: &'g JwtRule,
    runtime: &mut TokenRuntime,
    request: &RequestView<'_>,
    now: UnixTime,
) -> Result<TokenAdmission<'g>, Rejection<'g>> {
    let name = provider.name.as_str();
    let reject = |problem| Rejection::Token {
        problem,
        provider: Some(name),
    };
    let (token, source) = find_token(&provider.sources, request).map_err(reject)?;
    // Checked before hashing or decoding anything: an oversized token costs nothing more.
    if token.len() > provider.rules.max_token_bytes {
        return Err(reject(TokenProblem::TooLarge));
    }
    let TokenRuntime {
        remote_keys,
        revocations,
        cache,
        ..
    } = runtime;
    let keys = match &provider.keys {
        ProviderKeys::Inline(keys) => keys,
        ProviderKeys::Remote(remote) => {
            let synced = remote_keys.get(id.0);
            let fetched_at = synced.and_then(|s| s.fetched_at);
            match (
                remote.availability(fetched_at, now),
                synced.and_then(|s| s.value.as_ref()),
            ) {
                (Availability::Fresh, Some(keys)) => keys,
                (Availability::Stale, _) => return Err(Rejection::KeysStale { provider: name }),
                _ => return Err(Rejection::KeysUnavailable { provider: name }),
            }
        }
    };
    // After the key-set check: a stale key set fails closed for cached tokens too.
    let key = TokenCache::<VerifiedToken>::key(id.0, &token);
    if let Some(verified) = cache.get(&key, now) {
        return admit(
            id,
            provider,
            rule,
            verified,
            revocations,
            request,
            source,
            now,
        );
    }
    let verified = if is_jwe(&token) {
        let Some(decryption) = &provider.decryption else {
            // An encrypted token for a provider without decryption keys.
            return Err(reject(TokenProblem::AlgorithmNotAllowed));
        };
        let inner =
            decrypt_nested(&token, decryption, provider.rules.max_token_bytes).map_err(reject)?;
        verify_jws(&inner, &provider.rules, keys, now)
    } else {
        verify_jws(&token, &provider.rules, keys, now)
    }
    .map_err(reject)?;
    let result = admit(
        id,
        provider,
        rule,
        &verified,
        revocations,
        request,
        source,
        now,
    );
    // Cache what verified, even if this policy's scopes refuse it: another route may accept it.
    // A revoked token is still checked against the list on every hit.
    let exp = verified.expires_at;
    cache.insert(key, verified, exp, now);
    result
}

#[allow(clippy::too_many_arguments)]
fn admit<'g>(
    id: ProviderId,
    provider: &'g JwtProvider,
    rule: &'g JwtRule,
    token: &VerifiedToken,
    revocations: &RevocationList,
    request: &RequestView<'_>,
    source: &'g crate::jwt::source::TokenSource,
    now: UnixTime,
) -> Result<TokenAdmission<'g>, Rejection<'g>> {
    let reject = |problem| Rejection::Token {
        problem,
        provider: Some(provider.name.as_str()),
    };
    // The cache stores verification, never revocation: every request consults the list.
    if revocations.revokes_token(token.jti.as_deref(), token.subject.as_deref(), now) {
        return Err(reject(TokenProblem::Revoked));
    }
    // An expired token cannot come from the cache (entries end at `exp`), but a token cached
    // with skew must not outlive `exp + skew` either: re-check cheaply.
    if let Some(exp) = token.expires_at {
        let skew = i64::try_from(provider.rules.clock_skew_seconds).unwrap_or(0);
        if now.0 > exp.saturating_add(skew) {
            return Err(reject(TokenProblem::Expired));
        }
    }
    if !has_scopes(token, &rule.required_scopes) {
        return Err(reject(TokenProblem::InsufficientScope));
    }
    if !rule.claims.iter().all(|c| c.holds(token)) {
        return Err(reject(TokenProblem::ClaimMismatch));
    }
    let forward = provider
        .forward_claims
        .iter()
        .filter_map(|(claim, header)| {
            claim_header_value(token, claim).map(|v| (header.as_str(), v))
        })
        .collect();
    Ok(TokenAdmission {
        provider: id,
        subject: token.subject.clone(),
        forward,
        strip: provider.strip_token.then(|| location(source, request)),
    })
}
