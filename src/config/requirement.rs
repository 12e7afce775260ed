//! Requirement trees: jwt_authn's JwtRequirement (`provider_name`, `provider_and_audiences`,
//! `requires_any`, `requires_all`, `allow_missing`, `allow_missing_or_failed`), compiled with a leaf id
//! per place that looks for tokens. Evaluating a tree is `request/evaluation.rs`'s.

use crate::config::raw::{RawRequirement, RawRequirementList};
use crate::config::{error, normalize_audience, ConfigError, Provider, ProviderId};

/// Identifies a requirement leaf, so the tokens it extracted and checked are found again when keys
/// arrive.
pub type LeafId = usize;

/// What a matched request must carry: jwt_authn's JwtRequirement.
#[derive(Debug, Clone)]
pub enum Requirement {
    /// Valid tokens from this provider (all tokens it finds must be valid). `audiences`, when set,
    /// replaces the provider's own (`provider_and_audiences`).
    Provider {
        leaf: LeafId,
        provider: ProviderId,
        audiences: Option<Vec<String>>,
    },
    /// At least one child passes. `allow_missing` / `allow_missing_or_failed` children are flags here, as
    /// in jwt_authn: missing tokens (or, with the latter, any failure) then pass.
    Any {
        children: Vec<Requirement>,
        allow_missing: bool,
        allow_missing_or_failed: bool,
    },
    /// Every child passes.
    All(Vec<Requirement>),
    /// No token passes; any token found (in any provider's locations) must be valid for the provider
    /// whose issuer it names.
    AllowMissing { leaf: LeafId },
    /// Always passes; valid tokens still have their claims forwarded.
    AllowMissingOrFailed { leaf: LeafId },
    /// `requires: {}`: nothing is required.
    AllowAll,
}

pub(super) fn compile_requirement(
    field: &str,
    raw: &RawRequirement,
    providers: &[Provider],
    leaves: &mut usize,
) -> Result<Requirement, ConfigError> {
    let mut next_leaf = || {
        *leaves += 1;
        *leaves - 1
    };
    let provider_id = |field: String, name: &str| {
        providers
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| {
                error(
                    field,
                    format!("no provider named \"{}\" in providers", name.escape_debug()),
                )
            })
    };
    let given = [
        raw.provider_name.is_some(),
        raw.provider_and_audiences.is_some(),
        raw.requires_any.is_some(),
        raw.requires_all.is_some(),
        raw.allow_missing.is_some(),
        raw.allow_missing_or_failed.is_some(),
    ]
    .iter()
    .filter(|&&g| g)
    .count();
    if given > 1 {
        return Err(error(
            field,
            "give one of provider_name, provider_and_audiences, requires_any, requires_all, allow_missing, allow_missing_or_failed",
        ));
    }
    if let Some(name) = &raw.provider_name {
        let provider = provider_id(format!("{field}.provider_name"), name)?;
        return Ok(Requirement::Provider {
            leaf: next_leaf(),
            provider,
            audiences: None,
        });
    }
    if let Some(pa) = &raw.provider_and_audiences {
        let provider = provider_id(
            format!("{field}.provider_and_audiences.provider_name"),
            &pa.provider_name,
        )?;
        // As in jwt_authn, an empty list keeps the provider's own audiences.
        let audiences = (!pa.audiences.is_empty()).then(|| {
            pa.audiences
                .iter()
                .map(|a| normalize_audience(a).to_string())
                .collect()
        });
        return Ok(Requirement::Provider {
            leaf: next_leaf(),
            provider,
            audiences,
        });
    }
    if raw.allow_missing.is_some() {
        return Ok(Requirement::AllowMissing { leaf: next_leaf() });
    }
    if raw.allow_missing_or_failed.is_some() {
        return Ok(Requirement::AllowMissingOrFailed { leaf: next_leaf() });
    }
    if let Some(list) = &raw.requires_any {
        return compile_list(field, "requires_any", list, providers, leaves);
    }
    if let Some(list) = &raw.requires_all {
        return compile_list(field, "requires_all", list, providers, leaves);
    }
    Ok(Requirement::AllowAll)
}

/// `requires_any` / `requires_all` (`kind`): at least two children. In `requires_any`, allow_missing and
/// allow_missing_or_failed children become flags of the node.
fn compile_list(
    field: &str,
    kind: &str,
    list: &RawRequirementList,
    providers: &[Provider],
    leaves: &mut usize,
) -> Result<Requirement, ConfigError> {
    let list_field = format!("{field}.{kind}.requirements");
    if list.requirements.len() < 2 {
        return Err(error(list_field, "needs at least 2 requirements"));
    }
    let mut children = Vec::new();
    let (mut allow_missing, mut allow_missing_or_failed) = (false, false);
    for (index, child) in list.requirements.iter().enumerate() {
        let child_field = format!("{list_field}[{index}]");
        if kind == "requires_any" && child.allow_missing.is_some() {
            allow_missing = true;
        } else if kind == "requires_any" && child.allow_missing_or_failed.is_some() {
            allow_missing_or_failed = true;
        } else {
            children.push(compile_requirement(&child_field, child, providers, leaves)?);
        }
    }
    if kind == "requires_all" {
        return Ok(Requirement::All(children));
    }
    // jwt_authn: with only allow_* children, the node is that allowance itself.
    if children.is_empty() {
        let leaf = {
            *leaves += 1;
            *leaves - 1
        };
        return Ok(if allow_missing_or_failed {
            Requirement::AllowMissingOrFailed { leaf }
        } else {
            Requirement::AllowMissing { leaf }
        });
    }
    Ok(Requirement::Any {
        children,
        allow_missing,
        allow_missing_or_failed,
    })
}
