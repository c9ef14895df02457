//! api-guard's own client authentication to the endpoints it calls (RFC 7662 section 2.1 for
//! introspection; the same `client_auth` object for JWKS, revocation and key lists).

use jwt_simple::reexports::ct_codecs::{Base64, Encoder};

/// api-guard's own credentials for a remote endpoint (introspection, JWKS, revocation and key
/// lists): the `authorization` header of every callout, built once at configure time from a
/// secret read from the VM's environment (never from the configuration text). Its `Debug`
/// never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientAuth {
    method: ClientAuthMethod,
    header: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// `client_secret_basic` (RFC 6749 section 2.3.1): id and secret form-urlencoded, joined
    /// by `:`, base64.
    Basic,
    /// A bearer token (RFC 6750), e.g. a long-lived token the service issued to api-guard.
    Bearer,
}

impl ClientAuth {
    /// `client_secret_basic`: id and secret form-urlencoded, joined by `:`, base64. `None` only
    /// if encoding fails (past `isize::MAX` bytes): the caller fails closed with an error.
    pub fn basic(client_id: &str, secret: &str) -> Option<ClientAuth> {
        let pair = format!("{}:{}", form_urlencode(client_id), form_urlencode(secret));
        let encoded = Base64::encode_to_string(pair).ok()?;
        Some(ClientAuth {
            method: ClientAuthMethod::Basic,
            header: format!("Basic {encoded}"),
        })
    }

    /// A bearer token (the caller checked it has no spaces).
    pub fn bearer(token: &str) -> ClientAuth {
        ClientAuth {
            method: ClientAuthMethod::Bearer,
            header: format!("Bearer {token}"),
        }
    }

    pub fn method(&self) -> ClientAuthMethod {
        self.method
    }

    /// The `authorization` header value (a secret: never log it).
    pub fn header_value(&self) -> &str {
        &self.header
    }
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("method", &self.method)
            .field("header", &"<redacted>")
            .finish()
    }
}

/// RFC 6749 appendix B: `application/x-www-form-urlencoded` encoding of a client id or secret
/// before they are joined for HTTP Basic.
fn form_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
