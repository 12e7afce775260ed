//! The top-level modules of src/ form layers: each uses only the layers below it, so there is no import
//! cycle and a reader can learn the crate bottom-up. The check reads every `crate::<module>` path
//! outside comments, as the project's cycle check does, at the granularity of top-level modules.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Bottom to top. A module may use the modules listed before it, never one after it. `bin` (the
/// `jwt-authn-wasm` command-line tool, a crate of its own on top of the library) comes last.
const LAYERS: [&str; 9] = [
    "metrics", "crypto", "jwks", "config", "verify", "request", "worker", "glue", "bin",
];

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            into.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/config/raw.rs` → `config`); `None` for lib.rs.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_string())
}

/// Every top-level module named by a `crate::` path in the file's code (comments left out).
fn uses(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut modules = BTreeSet::new();
    for file in &files {
        let Some(module) = top_module(&src, file) else {
            continue;
        };
        modules.insert(module.clone());
        let rank = LAYERS.iter().position(|layer| *layer == module);
        let text = fs::read_to_string(file).unwrap();
        for used in uses(&text) {
            if used == module {
                continue;
            }
            let used_rank = LAYERS.iter().position(|layer| *layer == used);
            match (rank, used_rank) {
                (Some(rank), Some(used_rank)) if used_rank < rank => {}
                _ => violations.push(format!(
                    "{} ({module}) uses crate::{used}",
                    file.strip_prefix(&src).unwrap().display()
                )),
            }
        }
    }
    assert!(
        violations.is_empty(),
        "uses of a layer that is not below (layers, bottom to top: {LAYERS:?}):\n{}",
        violations.join("\n")
    );
    // Every top-level module has a place in the list, so a new one cannot slip past the check.
    for module in &modules {
        assert!(
            LAYERS.contains(&module.as_str()),
            "src/{module} is not in LAYERS; give it a place"
        );
    }
    assert!(modules.len() >= 6, "found only {modules:?} under src/");
}
