//! Reading a file the way the user wrote it: JSON, or YAML with one or more documents.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

/// One document of a file.
pub struct Document {
    pub value: Value,
    /// The file's bytes when the file is a single JSON document: the filter configuration as a JSON
    /// file is parsed from exactly these bytes, as the filter would receive them.
    pub raw_json: Option<Vec<u8>>,
}

pub struct Input {
    pub name: String,
    pub format: Format,
    pub documents: Vec<Document>,
}

impl Input {
    /// The location prefix of document `index` (only said when the file has several).
    pub fn document_prefix(&self, index: usize) -> String {
        if self.documents.len() > 1 {
            format!("document {}: ", index + 1)
        } else {
            String::new()
        }
    }
}

/// Reads `path` (`-` is standard input). Errors say why the file cannot be used (exit code 2).
pub fn read(path: &str) -> Result<Input, String> {
    let bytes = if path == "-" {
        let mut buffer = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buffer)
            .map_err(|e| e.to_string())?;
        buffer
    } else {
        std::fs::read(path).map_err(|e| e.to_string())?
    };
    parse(path, bytes)
}

pub fn parse(name: &str, bytes: Vec<u8>) -> Result<Input, String> {
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let looks_like_json = text.trim_start().starts_with(['{', '[']);
    if looks_like_json {
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            return Ok(Input {
                name: name.to_string(),
                format: Format::Json,
                documents: vec![Document {
                    value,
                    raw_json: Some(text.into_bytes()),
                }],
            });
        }
    }
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(&text) {
        let value = Value::deserialize(document).map_err(|e| {
            if looks_like_json {
                format!("neither JSON nor YAML: {e}")
            } else {
                format!("not valid YAML: {e}")
            }
        })?;
        if !value.is_null() {
            documents.push(Document {
                value,
                raw_json: None,
            });
        }
    }
    if documents.is_empty() {
        return Err("the file is empty".to_string());
    }
    Ok(Input {
        name: name.to_string(),
        format: Format::Yaml,
        documents,
    })
}

/// Appends a key to a location path.
pub fn key_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub fn index_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}
