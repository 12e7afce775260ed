//! Token verification for one provider: parse, claim checks, key choice and signature
//! (`token`, with its segments' JSON in `token_json`), a token's claims read as they are needed
//! (`claims`), and why a token is refused (`error`).

pub(crate) mod claims;
pub(crate) mod dpop_error;
pub(crate) mod error;
pub(crate) mod token;
mod token_json;

pub use claims::Claims;
pub use dpop_error::DpopError;
pub use error::AuthError;
pub use token::check_token;
