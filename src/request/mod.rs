//! The per-request steps, free of any host call: read the headers (`headers`), pick the rule
//! (`rule_match`), find the tokens (`extract`), check them and walk the requirement tree
//! (`authenticator`, with `candidates`, `evaluation` and `conclusion`), remember verified tokens (`token_cache`), authorize (`authorization`),
//! forward claims (`claims`) and refuse (`reply`); certificate-bound tokens are checked in
//! `cert_binding`.

pub(crate) mod authenticator;
pub(crate) mod authorization;
mod candidates;
pub(crate) mod cert_binding;
pub(crate) mod claims;
mod conclusion;
pub(crate) mod dpop;
mod evaluation;
pub(crate) mod extract;
pub(crate) mod headers;
pub(crate) mod reply;
pub(crate) mod rule_match;
pub(crate) mod token_cache;

// The request layer's surface: the entry points the glue calls and what tests and the fuzz targets
// drive. The steps themselves stay inside the crate.
pub use authenticator::start_on_connection;
pub use authenticator::{start, start_on_route, PendingAuth, RequestMutations, Start, Verdict};
pub use cert_binding::{
    check_binding, presented_thumbprint, thumbprint_from_hex, xfcc_elements, xfcc_hash, XfccElement,
};
pub use claims::claim_header_value;
pub use dpop::{
    check_proof, normalize_htu, request_htu, thumbprint, CheckedProof, ProofContext, ProofRecord,
};
pub use extract::{extract_tokens, path_without_param, ExtractedTokens, TokenSource};
pub use headers::{
    borrow_header_pairs, parse_header_pairs, rewrite_in_one_call, rewritten_header_map,
    serialize_header_pairs, HeaderPair, HeaderPairs, ONE_CALL_FROM_CHANGES,
};
pub use reply::LocalReply;
pub use token_cache::{TokenCaches, WorkCounts};
