//! The providers indexed once at load, so a request's cost does not grow with their number: each
//! distinct token location (header and prefix, query parameter, cookie) once, the locations each
//! provider reads in jwt_authn's extraction order, and the providers by issuer.
//!
//! jwt_authn's extractor keeps its locations in ordered maps (headers keyed by name + value prefix,
//! then parameters, then cookies, each by name), extracts in that order and checks a requirement's
//! tokens from the last extracted one. The index keeps the same order, so the failure reported when
//! several tokens fail is jwt_authn's.

use std::collections::HashMap;

use crate::config::{HeaderLocation, IssuerMatch, Provider, ProviderId, TokenLocations};

/// Index of a distinct token location in [`ProviderIndex::locations`].
pub type LocationId = usize;

/// The compiled lookups over [`crate::config::FilterConfig::providers`].
#[derive(Debug, Default)]
pub struct ProviderIndex {
    /// Each distinct location, as a one-location [`TokenLocations`] (what the extractor reads).
    locations: Vec<TokenLocations>,
    /// Per provider: its locations, deduplicated, in jwt_authn's extraction order.
    provider_locations: Vec<Vec<LocationId>>,
    /// Every provider's locations merged, in jwt_authn's extraction order (what `allow_missing` and
    /// `allow_missing_or_failed` read).
    all_locations: Vec<LocationId>,
    /// Per location: the providers reading it, in configuration order.
    location_readers: Vec<Vec<ProviderId>>,
    /// Exact `issuer` → the providers naming it, in configuration order.
    by_issuer: HashMap<String, Vec<ProviderId>>,
    /// Providers whose issuer is not one exact string (a tenant template, or none: any `iss`), in
    /// configuration order; always consulted, after the exact ones.
    fallback: Vec<ProviderId>,
}

/// jwt_authn's ordering of locations: headers (by name + prefix), then parameters, then cookies (by
/// name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocationKey {
    Header(String),
    Param(String),
    Cookie(String),
}

impl ProviderIndex {
    /// Indexes `providers` (each with its locations already defaulted).
    pub fn compile(providers: &[Provider]) -> ProviderIndex {
        let mut keys: Vec<(LocationKey, TokenLocations)> = Vec::new();
        let mut per_provider_keys: Vec<Vec<LocationKey>> = Vec::with_capacity(providers.len());
        for provider in providers {
            let mut own = Vec::new();
            for (key, single) in single_locations(&provider.locations) {
                if !keys.iter().any(|(k, _)| *k == key) {
                    keys.push((key.clone(), single));
                }
                if !own.contains(&key) {
                    own.push(key);
                }
            }
            own.sort();
            per_provider_keys.push(own);
        }
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        let id_of = |key: &LocationKey| keys.iter().position(|(k, _)| k == key).unwrap_or(0);
        let provider_locations: Vec<Vec<LocationId>> = per_provider_keys
            .iter()
            .map(|own| own.iter().map(id_of).collect())
            .collect();
        let mut location_readers = vec![Vec::new(); keys.len()];
        for (provider, own) in provider_locations.iter().enumerate() {
            for &location in own {
                if let Some(readers) = location_readers.get_mut(location) {
                    readers.push(provider);
                }
            }
        }
        let mut by_issuer: HashMap<String, Vec<ProviderId>> = HashMap::new();
        let mut fallback = Vec::new();
        for (id, provider) in providers.iter().enumerate() {
            match exact_issuer(provider) {
                Some(issuer) => by_issuer.entry(issuer.to_string()).or_default().push(id),
                None => fallback.push(id),
            }
        }
        ProviderIndex {
            all_locations: (0..keys.len()).collect(),
            locations: keys.into_iter().map(|(_, single)| single).collect(),
            provider_locations,
            location_readers,
            by_issuer,
            fallback,
        }
    }

    /// The one-location [`TokenLocations`] of `location`.
    pub fn location(&self, location: LocationId) -> Option<&TokenLocations> {
        self.locations.get(location)
    }

    /// The number of distinct locations.
    pub fn location_count(&self) -> usize {
        self.locations.len()
    }

    /// The locations `provider` reads, in jwt_authn's extraction order.
    pub fn provider_locations(&self, provider: ProviderId) -> &[LocationId] {
        self.provider_locations
            .get(provider)
            .map_or(&[], Vec::as_slice)
    }

    /// Every location any provider reads, in jwt_authn's extraction order.
    pub fn all_locations(&self) -> &[LocationId] {
        &self.all_locations
    }

    /// The providers naming `issuer` exactly, in configuration order.
    pub fn named(&self, issuer: &str) -> &[ProviderId] {
        self.by_issuer.get(issuer).map_or(&[], Vec::as_slice)
    }

    /// The provider that judges a token found at `location` naming `issuer`, for `allow_missing` and
    /// `allow_missing_or_failed`: among the location's readers, the first naming that issuer exactly,
    /// else the first naming it by a tenant template, else the first accepting any issuer.
    pub fn judge(
        &self,
        providers: &[Provider],
        issuer: Option<&str>,
        location: LocationId,
    ) -> Option<ProviderId> {
        let readers = self.location_readers.get(location)?;
        let exact = issuer
            .and_then(|issuer| self.by_issuer.get(issuer))
            .and_then(|named| named.iter().find(|p| readers.contains(p)));
        let fallback_with = |fits: &dyn Fn(IssuerMatch<'_>) -> bool| {
            self.fallback.iter().find(|&&p| {
                readers.contains(&p)
                    && providers
                        .get(p)
                        .and_then(|provider| provider.matches_issuer(issuer))
                        .is_some_and(fits)
            })
        };
        exact
            .or_else(|| fallback_with(&|m| m.is_specific()))
            .or_else(|| fallback_with(&|m| m == IssuerMatch::Any))
            .copied()
    }
}

/// The provider's issuer when it is one exact string (the map key); `None` for a provider with a
/// tenant template or accepting any `iss` (those are in the fallback list and judge by
/// [`Provider::matches_issuer`]).
pub fn exact_issuer(provider: &Provider) -> Option<&str> {
    provider.issuer.as_deref()
}

/// Each location of `locations` on its own, with its ordering key.
fn single_locations(locations: &TokenLocations) -> Vec<(LocationKey, TokenLocations)> {
    let empty = TokenLocations {
        headers: Vec::new(),
        params: Vec::new(),
        cookies: Vec::new(),
    };
    let headers = locations.headers.iter().map(|header| {
        (
            LocationKey::Header(format!("{}{}", header.name, header.value_prefix)),
            TokenLocations {
                headers: vec![HeaderLocation::clone(header)],
                ..empty.clone()
            },
        )
    });
    let params = locations.params.iter().map(|param| {
        (
            LocationKey::Param(param.to_string()),
            TokenLocations {
                params: vec![param.clone()],
                ..empty.clone()
            },
        )
    });
    let cookies = locations.cookies.iter().map(|cookie| {
        (
            LocationKey::Cookie(cookie.to_string()),
            TokenLocations {
                cookies: vec![cookie.clone()],
                ..empty.clone()
            },
        )
    });
    headers.chain(params).chain(cookies).collect()
}
