//! What `check` found, one line per finding: as text for people, as a stable JSON array for machines.

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The filter refuses this configuration.
    Error,
    /// The filter loads it, but it is likely a mistake.
    Warning,
    /// The file could not be read or parsed as JSON or YAML (exit code 2).
    Unreadable,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Unreadable => "unreadable",
        }
    }
}

/// One finding: `file: location → field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// Where in the file the filter configuration is (a path such as `spec.pluginConfig`), with the
    /// document number in a multi-document YAML file.
    pub location: String,
    /// The field of the filter configuration (`rules[1].requires.provider_name`); empty for the whole of it.
    pub field: String,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn text(&self) -> String {
        let field = if self.field.is_empty() {
            "(configuration)"
        } else {
            &self.field
        };
        match self.severity {
            Severity::Error => format!(
                "{}: {} → {}: {}",
                self.file, self.location, field, self.message
            ),
            Severity::Warning => format!(
                "{}: {} → {}: warning: {}",
                self.file, self.location, field, self.message
            ),
            Severity::Unreadable => format!("{}: cannot read: {}", self.file, self.message),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "file": self.file,
            "location": self.location,
            "field": self.field,
            "severity": self.severity.as_str(),
            "message": self.message,
        })
    }
}
