//! The documentation's configuration examples must load: every ```json block that holds "providers" in
//! README.md and docs/*.md is parsed with the filter's own parser, so the documentation cannot drift
//! from the code.

use jwt_authn_wasm::config::FilterConfig;

/// Counts the configuration examples in one Markdown file, failing on the first that does not parse.
fn configuration_examples_in(path: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let mut examples = 0;
    for block in text.split("```json").skip(1) {
        let json = block.split("```").next().unwrap();
        if !json.contains("\"providers\"") {
            continue;
        }
        examples += 1;
        if let Err(error) = FilterConfig::parse(json.as_bytes()) {
            panic!("{} example does not parse: {error}\n{json}", path.display());
        }
    }
    examples
}

#[test]
fn every_readme_configuration_example_parses() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        configuration_examples_in(&root.join("README.md")) >= 1,
        "the README has a configuration example"
    );
}

#[test]
fn every_docs_configuration_example_parses() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut per_file = Vec::new();
    for entry in std::fs::read_dir(&docs).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            per_file.push((path.clone(), configuration_examples_in(&path)));
        }
    }
    let reference = per_file
        .iter()
        .find(|(path, _)| path.ends_with("configuration.md"))
        .map(|(_, n)| *n);
    assert!(
        reference >= Some(2),
        "docs/configuration.md holds the reference examples: {per_file:?}"
    );
}

#[test]
fn shipped_envoy_yaml_configuration_parses() {
    let yaml =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/envoy.yaml")).unwrap();
    let start = yaml.find("value: |").expect("configuration block") + "value: |".len();
    let json: String = yaml[start..]
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with("                    "))
        .collect::<Vec<_>>()
        .join("\n");
    let config = FilterConfig::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{json}"));
    assert_eq!(config.providers[0].name, "demo");
}
