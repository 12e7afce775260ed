//! Envoy's `type.matcher.v3.StringMatcher` (exact, prefix, suffix, contains, safe_regex; ignore_case),
//! used by `subjects`, rule header matchers and query parameter matchers.

use regex_lite::Regex;
use serde::Deserialize;

/// A compiled string matcher.
#[derive(Debug, Clone)]
pub struct StringMatcher {
    pattern: Pattern,
    ignore_case: bool,
}

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// Anchored at both ends: RE2's full match, as Envoy uses it.
    Regex(Regex),
}

/// The JSON shape Envoy takes.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawStringMatcher {
    #[serde(default)]
    exact: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    contains: Option<String>,
    #[serde(default)]
    safe_regex: Option<RawRegex>,
    #[serde(default)]
    ignore_case: bool,
}

/// Envoy's RegexMatcher: `{"regex": "..."}` (the google_re2 engine field is accepted and ignored).
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawRegex {
    regex: String,
    #[serde(default)]
    #[allow(dead_code)]
    google_re2: Option<serde_json::Value>,
}

impl RawRegex {
    /// Compiles for a full match; the error names what is wrong with the pattern.
    pub fn compile(&self) -> Result<Regex, String> {
        compile_full_match(&self.regex)
    }
}

/// A regex that must match the whole input, as RE2's FullMatch.
pub fn compile_full_match(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("\"{}\" is not a valid regex: {e}", pattern.escape_debug()))
}

impl StringMatcher {
    /// Compiles Envoy's JSON form; exactly one pattern kind must be given.
    pub fn compile(raw: &RawStringMatcher) -> Result<StringMatcher, String> {
        let mut patterns = Vec::new();
        if let Some(v) = &raw.exact {
            patterns.push(Pattern::Exact(v.clone()));
        }
        if let Some(v) = &raw.prefix {
            patterns.push(Pattern::Prefix(v.clone()));
        }
        if let Some(v) = &raw.suffix {
            patterns.push(Pattern::Suffix(v.clone()));
        }
        if let Some(v) = &raw.contains {
            patterns.push(Pattern::Contains(v.clone()));
        }
        if let Some(v) = &raw.safe_regex {
            if raw.ignore_case {
                return Err("ignore_case has no effect for safe_regex".to_string());
            }
            patterns.push(Pattern::Regex(v.compile()?));
        }
        let (Some(pattern), 1) = (patterns.pop(), patterns.len() + 1) else {
            return Err(
                "give exactly one of exact, prefix, suffix, contains or safe_regex".to_string(),
            );
        };
        let pattern = match pattern {
            Pattern::Exact(v) if raw.ignore_case => Pattern::Exact(v.to_ascii_lowercase()),
            Pattern::Prefix(v) if raw.ignore_case => Pattern::Prefix(v.to_ascii_lowercase()),
            Pattern::Suffix(v) if raw.ignore_case => Pattern::Suffix(v.to_ascii_lowercase()),
            Pattern::Contains(v) if raw.ignore_case => Pattern::Contains(v.to_ascii_lowercase()),
            other => other,
        };
        Ok(StringMatcher {
            pattern,
            ignore_case: raw.ignore_case,
        })
    }

    /// Case-sensitive matchers of one kind (Envoy's header `exact_match`, `prefix_match`, ...).
    pub fn exact(value: &str) -> StringMatcher {
        StringMatcher::case_sensitive(Pattern::Exact(value.to_string()))
    }

    pub fn prefix(value: &str) -> StringMatcher {
        StringMatcher::case_sensitive(Pattern::Prefix(value.to_string()))
    }

    pub fn suffix(value: &str) -> StringMatcher {
        StringMatcher::case_sensitive(Pattern::Suffix(value.to_string()))
    }

    pub fn contains(value: &str) -> StringMatcher {
        StringMatcher::case_sensitive(Pattern::Contains(value.to_string()))
    }

    fn case_sensitive(pattern: Pattern) -> StringMatcher {
        StringMatcher {
            pattern,
            ignore_case: false,
        }
    }

    /// A full-match regex matcher (Envoy's header `safe_regex_match`).
    pub fn regex(regex: Regex) -> StringMatcher {
        StringMatcher::case_sensitive(Pattern::Regex(regex))
    }

    pub fn matches(&self, value: &str) -> bool {
        let lowered;
        let value = if self.ignore_case {
            lowered = value.to_ascii_lowercase();
            lowered.as_str()
        } else {
            value
        };
        match &self.pattern {
            Pattern::Exact(p) => value == p,
            Pattern::Prefix(p) => value.starts_with(p.as_str()),
            Pattern::Suffix(p) => value.ends_with(p.as_str()),
            Pattern::Contains(p) => value.contains(p.as_str()),
            Pattern::Regex(r) => r.is_match(value),
        }
    }

    /// Matches raw header bytes: values that are not UTF-8 never match (a regex or a text pattern cannot
    /// say anything sound about them).
    pub fn matches_bytes(&self, value: &[u8]) -> bool {
        std::str::from_utf8(value).is_ok_and(|v| self.matches(v))
    }
}
