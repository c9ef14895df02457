//! API keys: clients hold one or more keys, stored as SHA-256 digests with optional validity
//! windows, so a client can carry an old and a new key while it rotates.

use std::collections::HashMap;

use crate::digest::KeyDigest;
use crate::rejection::{KeyProblem, Rejection};
use crate::request::{query_values, RequestView};
pub use crate::verdict::CredentialLocation;
// The credential-stripping helper lives with the other query code in `request`; re-exported
// for the callers that still name it here (edits.rs).
use crate::request::path_without_param;
use crate::time::UnixTime;

/// Presented keys longer than this are refused without hashing; real keys are far shorter.
pub const MAX_API_KEY_BYTES: usize = 1024;

/// Index of a client in [`ApiKeys`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientIndex(pub usize);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub not_before: Option<UnixTime>,
    /// The first second at which the key no longer works.
    pub expires: Option<UnixTime>,
    pub disabled: bool,
}

impl ApiKey {
    fn problem_at(&self, now: UnixTime) -> Option<KeyProblem> {
        if self.disabled {
            Some(KeyProblem::Disabled)
        } else if self.not_before.is_some_and(|t| now < t) {
            Some(KeyProblem::NotYetValid)
        } else if self.expires.is_some_and(|t| now >= t) {
            Some(KeyProblem::Expired)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub keys: Vec<ApiKey>,
}

/// Every client and key of the configuration, indexed by key digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeys {
    clients: Vec<Client>,
    by_digest: HashMap<KeyDigest, (ClientIndex, usize)>,
}

impl ApiKeys {
    /// Builds the index. Digests must be unique (the config compiler rejects duplicates first).
    pub fn new(clients: Vec<(Client, Vec<KeyDigest>)>) -> ApiKeys {
        let mut keys = ApiKeys::default();
        for (ci, (client, digests)) in clients.into_iter().enumerate() {
            for (ki, digest) in digests.into_iter().enumerate() {
                keys.by_digest.insert(digest, (ClientIndex(ci), ki));
            }
            keys.clients.push(client);
        }
        keys
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The configuration's keys plus a remote key list: remote keys of a configured client are
    /// added to it, remote-only clients are appended (so the client indices that policies'
    /// `clients` lists refer to stay valid). A digest already configured keeps its configured
    /// key: the remote list can add keys, never take one over. Runs once per fetched list.
    pub fn merged(&self, remote: &ApiKeys) -> ApiKeys {
        let mut clients: Vec<(Client, Vec<KeyDigest>)> = Vec::new();
        for (keys, is_remote) in [(self, false), (remote, true)] {
            let digest_at: HashMap<(usize, usize), KeyDigest> = keys
                .by_digest
                .iter()
                .map(|(d, (c, k))| ((c.0, *k), *d))
                .collect();
            for (ci, client) in keys.clients.iter().enumerate() {
                let slot = match clients.iter().position(|(c, _)| c.id == client.id) {
                    Some(i) => i,
                    None => {
                        let empty = Client {
                            id: client.id.clone(),
                            keys: Vec::new(),
                        };
                        clients.push((empty, Vec::new()));
                        clients.len() - 1
                    }
                };
                for (ki, key) in client.keys.iter().enumerate() {
                    let Some(digest) = digest_at.get(&(ci, ki)) else {
                        continue;
                    };
                    if is_remote && self.by_digest.contains_key(digest) {
                        continue;
                    }
                    if let Some((c, ds)) = clients.get_mut(slot) {
                        c.keys.push(key.clone());
                        ds.push(*digest);
                    }
                }
            }
        }
        ApiKeys::new(clients)
    }

    pub fn client_index(&self, id: &str) -> Option<ClientIndex> {
        self.clients
            .iter()
            .position(|c| c.id == id)
            .map(ClientIndex)
    }

    fn lookup(&self, digest: &KeyDigest) -> Option<(&Client, &ApiKey)> {
        let (ci, ki) = self.by_digest.get(digest)?;
        let client = self.clients.get(ci.0)?;
        Some((client, client.keys.get(*ki)?))
    }
}

/// Where a policy looks for the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRule {
    /// Lowercase header name.
    pub header: Option<String>,
    /// Query parameter name.
    pub query: Option<String>,
    /// Clients this policy admits; `None` admits every configured client.
    pub admitted: Option<Vec<ClientIndex>>,
    /// Remove the credential before the request goes upstream.
    pub strip_credential: bool,
}

/// A successful key check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated<'g> {
    pub client_id: &'g str,
    pub key_id: &'g str,
    /// `Some` when the credential must be removed before forwarding.
    pub strip: Option<CredentialLocation<'g>>,
}

impl ApiKeyRule {
    pub fn check<'g>(
        &'g self,
        keys: &'g ApiKeys,
        request: &RequestView<'_>,
        now: UnixTime,
    ) -> Result<Authenticated<'g>, Rejection<'g>> {
        let mut found: Option<(Vec<u8>, CredentialSource)> = None;
        let mut count = 0usize;
        if let Some(name) = &self.header {
            for value in request.header_values(name) {
                count += 1;
                found = Some((value.to_vec(), CredentialSource::Header));
            }
        }
        if let Some(name) = &self.query {
            for value in query_values(request.path(), name) {
                count += 1;
                found = Some((value, CredentialSource::Query));
            }
        }
        // Two credentials (repeated header, repeated parameter, or header and parameter) are
        // refused rather than guessed at: proxies and apps disagree on which one wins.
        if count > 1 {
            return Err(Rejection::ApiKeyAmbiguous);
        }
        let Some((secret, source)) = found else {
            return Err(Rejection::ApiKeyMissing);
        };
        if secret.is_empty() {
            return Err(Rejection::ApiKeyMissing);
        }
        if secret.len() > MAX_API_KEY_BYTES {
            return Err(Rejection::ApiKeyInvalid {
                problem: KeyProblem::Unknown,
                key_id: None,
            });
        }
        let Some((client, key)) = keys.lookup(&KeyDigest::of(&secret)) else {
            return Err(Rejection::ApiKeyInvalid {
                problem: KeyProblem::Unknown,
                key_id: None,
            });
        };
        if let Some(problem) = key.problem_at(now) {
            return Err(Rejection::ApiKeyInvalid {
                problem,
                key_id: Some(&key.id),
            });
        }
        if let Some(admitted) = &self.admitted {
            let admitted = keys
                .client_index(&client.id)
                .is_some_and(|ci| admitted.contains(&ci));
            if !admitted {
                return Err(Rejection::ClientNotAllowed {
                    client_id: &client.id,
                    key_id: &key.id,
                });
            }
        }
        let strip = match (self.strip_credential, source) {
            (false, _) => None,
            (true, CredentialSource::Header) => {
                self.header.as_deref().map(CredentialLocation::Header)
            }
            (true, CredentialSource::Query) => {
                self.query.as_deref().map(|name| CredentialLocation::Query {
                    path_without_key: path_without_param(request.path(), name),
                })
            }
        };
        Ok(Authenticated {
            client_id: &client.id,
            key_id: &key.id,
            strip,
        })
    }
}

impl ApiKeyRule {
    /// Where the key of an accepted request is to be stripped from (the header when the
    /// request carries it, else the query parameter), independent of which key table
    /// accepted it.
    pub fn strip_location<'g>(
        &'g self,
        request: &RequestView<'_>,
    ) -> Option<CredentialLocation<'g>> {
        if !self.strip_credential {
            return None;
        }
        if let Some(name) = &self.header {
            if request.header(name).is_some() {
                return Some(CredentialLocation::Header(name));
            }
        }
        self.query.as_deref().map(|name| CredentialLocation::Query {
            path_without_key: path_without_param(request.path(), name),
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum CredentialSource {
    Header,
    Query,
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = UnixTime(1_800_000_000);

    fn keys() -> ApiKeys {
        let key = |id: &str, nb: Option<i64>, exp: Option<i64>, disabled: bool| ApiKey {
            id: id.into(),
            not_before: nb.map(UnixTime),
            expires: exp.map(UnixTime),
            disabled,
        };
        ApiKeys::new(vec![
            (
                Client {
                    id: "alice".into(),
                    keys: vec![
                        key("a-old", None, Some(NOW.0), false),
                        key("a-new", Some(NOW.0), None, false),
                        key("a-future", Some(NOW.0 + 1), None, false),
                    ],
                },
                vec![
                    KeyDigest::of(b"old"),
                    KeyDigest::of(b"new"),
                    KeyDigest::of(b"future"),
                ],
            ),
            (
                Client {
                    id: "bob".into(),
                    keys: vec![key("b-1", None, None, true), key("b-2", None, None, false)],
                },
                vec![KeyDigest::of(b"disabled"), KeyDigest::of(b"bob")],
            ),
        ])
    }

    fn rule(admitted: Option<Vec<usize>>) -> ApiKeyRule {
        ApiKeyRule {
            header: Some("x-api-key".into()),
            query: Some("api_key".into()),
            admitted: admitted.map(|v| v.into_iter().map(ClientIndex).collect()),
            strip_credential: true,
        }
    }

    fn run(
        rule: &ApiKeyRule,
        path: &str,
        headers: &[(&str, &[u8])],
    ) -> Result<(String, String, Option<String>), Rejection<'static>> {
        let keys = keys();
        let mut h = vec![(":path".to_string(), path.as_bytes().to_vec())];
        h.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_vec())));
        let view = RequestView {
            headers: crate::request::leaked_headers(&h),
            client_ip: None,
            route_policy: None,
            route_name: None,
            virtual_host: None,
        };
        match rule.check(&keys, &view, NOW) {
            Ok(a) => Ok((
                a.client_id.to_string(),
                a.key_id.to_string(),
                match a.strip {
                    Some(CredentialLocation::Header(h)) => Some(format!("header {h}")),
                    Some(CredentialLocation::Query { path_without_key }) => Some(path_without_key),
                    None => None,
                },
            )),
            // Rejections borrow the local key table; compare by their owned description.
            Err(r) => Err(match r {
                Rejection::ApiKeyInvalid { problem, .. } => Rejection::ApiKeyInvalid {
                    problem,
                    key_id: None,
                },
                Rejection::ClientNotAllowed { .. } => Rejection::ClientNotAllowed {
                    client_id: "",
                    key_id: "",
                },
                Rejection::ApiKeyMissing => Rejection::ApiKeyMissing,
                Rejection::ApiKeyAmbiguous => Rejection::ApiKeyAmbiguous,
                other => panic!("unexpected {other:?}"),
            }),
        }
    }

    fn invalid(problem: KeyProblem) -> Rejection<'static> {
        Rejection::ApiKeyInvalid {
            problem,
            key_id: None,
        }
    }

    #[test]
    fn key_check_table() {
        let any = rule(None);
        let only_bob = rule(Some(vec![1]));
        let ok =
            |c: &str, k: &str, s: &str| Ok((c.to_string(), k.to_string(), Some(s.to_string())));
        type Case<'a> = (
            &'a ApiKeyRule,
            &'a str,
            Vec<(&'a str, &'a [u8])>,
            Result<(String, String, Option<String>), Rejection<'static>>,
        );
        let cases: Vec<Case> = vec![
            (
                &any,
                "/",
                vec![("x-api-key", b"new")],
                ok("alice", "a-new", "header x-api-key"),
            ),
            (&any, "/", vec![], Err(Rejection::ApiKeyMissing)),
            (
                &any,
                "/",
                vec![("x-api-key", b"")],
                Err(Rejection::ApiKeyMissing),
            ),
            (
                &any,
                "/",
                vec![("x-api-key", b"nope")],
                Err(invalid(KeyProblem::Unknown)),
            ),
            // Rotation window: the old key stops at its expiry second, the new starts at not_before.
            (
                &any,
                "/",
                vec![("x-api-key", b"old")],
                Err(invalid(KeyProblem::Expired)),
            ),
            (
                &any,
                "/",
                vec![("x-api-key", b"future")],
                Err(invalid(KeyProblem::NotYetValid)),
            ),
            (
                &any,
                "/",
                vec![("x-api-key", b"disabled")],
                Err(invalid(KeyProblem::Disabled)),
            ),
            (
                &any,
                "/",
                vec![("x-api-key", &[0xff, 0xfe, 0x00])],
                Err(invalid(KeyProblem::Unknown)),
            ),
            (
                &any,
                "/",
                vec![("x-api-key", &[b'k'; MAX_API_KEY_BYTES + 1])],
                Err(invalid(KeyProblem::Unknown)),
            ),
            (
                &any,
                "/",
                vec![("x-api-key", b"new"), ("x-api-key", b"new")],
                Err(Rejection::ApiKeyAmbiguous),
            ),
            (
                &any,
                "/?api_key=new",
                vec![("x-api-key", b"new")],
                Err(Rejection::ApiKeyAmbiguous),
            ),
            (
                &any,
                "/?api_key=new&api_key=new",
                vec![],
                Err(Rejection::ApiKeyAmbiguous),
            ),
            (
                &any,
                "/items?a=1&api_key=new&b=2",
                vec![],
                ok("alice", "a-new", "/items?a=1&b=2"),
            ),
            (
                &any,
                "/items?api_key=new",
                vec![],
                ok("alice", "a-new", "/items"),
            ),
            (
                &any,
                "/items?api%5Fkey=n%65w",
                vec![],
                ok("alice", "a-new", "/items"),
            ),
            (
                &any,
                "/items?api_key=new#frag",
                vec![],
                ok("alice", "a-new", "/items#frag"),
            ),
            (
                &any,
                "/items?api_key",
                vec![],
                Err(Rejection::ApiKeyMissing),
            ),
            (
                &any,
                "/items?xapi_key=new",
                vec![],
                Err(Rejection::ApiKeyMissing),
            ),
            (
                &only_bob,
                "/",
                vec![("x-api-key", b"new")],
                Err(Rejection::ClientNotAllowed {
                    client_id: "",
                    key_id: "",
                }),
            ),
            (
                &only_bob,
                "/",
                vec![("x-api-key", b"bob")],
                ok("bob", "b-2", "header x-api-key"),
            ),
        ];
        for (i, (rule, path, headers, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                run(rule, path, &headers),
                want,
                "case {i}: {path} {headers:?}"
            );
        }
    }

    #[test]
    fn strip_off_keeps_credential() {
        let mut r = rule(None);
        r.strip_credential = false;
        assert_eq!(
            run(&r, "/?api_key=new", &[]),
            Ok(("alice".into(), "a-new".into(), None))
        );
    }

    #[test]
    fn header_only_rule_ignores_query() {
        let mut r = rule(None);
        r.query = None;
        assert_eq!(run(&r, "/?api_key=new", &[]), Err(Rejection::ApiKeyMissing));
    }
}
