//! JSON Web Tokens: the second credential api-guard checks (after API keys).
//!
//! The flow for one token, in module order:
//! `source` finds the token in the request (header, cookie, query); `compact` parses the
//! compact serialization strictly and decodes the JOSE header; `jwe` unwraps a nested JWT
//! (an encrypted token carrying a signed one); `keys` holds the compiled verification keys
//! (from a JWKS) and verifies the signature with jwt-simple; `claims` checks issuer, audience,
//! times, scopes and claim rules; `revocation` and `cache` hold the per-VM state that makes a
//! token revocable without redeploys and a repeated token cheap. When a remote JWKS is
//! fetched, by which VM, and how stale a key set may get is `remote::document`'s.
//!
//! Everything here is host-free; `host/` drives the fetches and hands the results in.

pub mod alg;
pub mod cache;
pub mod claims;
pub mod compact;
pub mod ec_p256;
pub mod ed25519;
mod edwards25519;
pub mod jwe;
pub mod keys;
pub mod problem;
pub mod provider;
pub mod revocation;
pub mod rsa_pkcs1;
pub mod runtime;
pub mod source;
pub mod verify;

pub use alg::Algorithm;
pub use problem::{JwksError, TokenProblem};
