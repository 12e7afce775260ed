//! The built module exports exactly the proxy-wasm callbacks the filter uses. The build (`cargo xtask
//! strip-exports`, run by `./build.sh`) removes the SDK's exports for callbacks left at their defaults
//! (Envoy then skips those VM entries per request); this checks the module it built, and that no such
//! callback has since been implemented in src/: a removed export would silently never run.

use crate::common;

use std::path::Path;

/// The exports the build removes (xtask/, which `./build.sh` runs).
fn unused_exports() -> Vec<String> {
    xtask::UNUSED_EXPORTS
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn the_module_exports_no_callback_left_at_its_default() {
    let module = std::fs::read(common::envoy::wasm_module()).expect("read module");
    let exports = xtask::export_names(&module).expect("a wasm module");
    let unused = unused_exports();
    assert_eq!(unused.len(), 5, "{unused:?}");
    for name in &unused {
        assert!(
            !exports.contains(name),
            "the module still exports {name}: build it with ./build.sh, which removes it"
        );
    }
    for needed in [
        "memory",
        "_initialize",
        "proxy_abi_version_0_2_1",
        "proxy_on_memory_allocate",
        "proxy_on_vm_start",
        "proxy_on_configure",
        "proxy_on_context_create",
        "proxy_on_tick",
        "proxy_on_http_call_response",
        "proxy_on_request_headers",
        "proxy_on_request_body",
        "proxy_on_request_trailers",
        "proxy_on_delete",
    ] {
        assert!(
            exports.iter().any(|e| e == needed),
            "{needed} missing from {exports:?}"
        );
    }
}

/// The SDK trait method each removed export would call.
fn sdk_method(export: &str) -> &'static str {
    match export {
        "proxy_on_response_headers" => "on_http_response_headers",
        "proxy_on_response_body" => "on_http_response_body",
        "proxy_on_response_trailers" => "on_http_response_trailers",
        "proxy_on_log" => "on_log",
        "proxy_on_done" => "on_done",
        other => panic!("no SDK method known for {other}: add it here"),
    }
}

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            out.push((path.display().to_string(), text));
        }
    }
}

#[test]
fn no_callback_whose_export_is_removed_is_implemented() {
    let mut files = Vec::new();
    sources(&common::envoy::repo_root().join("src"), &mut files);
    assert!(files.len() > 10, "found the sources");
    for export in unused_exports() {
        let method = format!("fn {}(", sdk_method(&export));
        for (path, text) in &files {
            assert!(
                !text.contains(&method),
                "{path} implements `{method}`, but the build removes {export} from the module: \
                 take {export} out of xtask::UNUSED_EXPORTS"
            );
        }
    }
}
