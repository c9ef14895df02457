//! Why a token was refused: the types live with the other core types in
//! `rejection/token.rs` (so `rejection` does not import `jwt`); this path is kept for the JWT
//! modules that name them here.

pub use crate::rejection::token::{JwksError, TokenProblem};
