//! One module per check, in the order the pipeline runs them: cheap shape checks first, so that
//! oversized or malformed requests are refused before any per-key work.

pub mod api_key;
pub mod introspection;
pub mod ip;
pub mod jwt;
pub mod method;
pub mod mtls;
pub mod preflight;
pub mod request_limits;
