//! Token verification for one provider: parse, claim checks, key choice and signature
//! ([`token`]), and why a token is refused ([`error`]).

pub mod dpop_error;
pub mod error;
pub mod token;
