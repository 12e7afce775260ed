//! The README's configuration examples must load: every ```json block that holds "providers" is parsed
//! with the filter's own parser, so the documentation cannot drift from the code.

use jwt_authn_wasm::config::FilterConfig;

#[test]
fn every_readme_configuration_example_parses() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut examples = 0;
    for block in readme.split("```json").skip(1) {
        let json = block.split("```").next().unwrap();
        if !json.contains("\"providers\"") {
            continue;
        }
        examples += 1;
        if let Err(error) = FilterConfig::parse(json.as_bytes()) {
            panic!("README example does not parse: {error}\n{json}");
        }
    }
    assert!(examples >= 1, "the README has a configuration example");
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
