//! The gate protecting itself: defences against attackers who aim at the gate's own work
//! (signature verification, introspection callouts, key lookups) rather than at the upstream.
//!
//! - [`negative`]: a bounded cache, shared by every worker, of credentials that were refused
//!   (bad signature, unknown key, inactive token), by digest, for a short time: a refused
//!   credential sent again is refused before any expensive step.
//! - [`budget`]: a per-address budget of expensive operations (cold signature verifications,
//!   introspection callouts): past it, a request is answered 429 before the expensive step.
//! - [`shape`]: what an opaque token of the introspection service can look like; anything else
//!   is refused without a callout.
//! - [`lockout`]: limits that count only failed authentications (brute force), consulted
//!   before anything is verified.
//!
//! Everything here is pure: shared data through [`crate::ratelimit::store::SharedStore`], the
//! clock passed in.

pub mod budget;
pub mod lockout;
pub mod negative;
pub mod shape;
