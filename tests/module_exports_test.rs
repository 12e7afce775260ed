//! The built module exports exactly the proxy-wasm callbacks the filter uses. `build.sh` removes the SDK's
//! exports for callbacks left at their defaults (Envoy then skips those VM entries per request); this
//! checks the module it built, and that no such callback has since been implemented in src/ — a removed
//! export would silently never run.

mod common;

use std::path::Path;

/// `UNUSED_EXPORTS` as build.sh declares it.
fn unused_exports() -> Vec<String> {
    let script = std::fs::read_to_string(common::envoy::repo_root().join("build.sh"))
        .expect("read build.sh");
    let line = script
        .lines()
        .find_map(|l| l.strip_prefix("UNUSED_EXPORTS=\""))
        .expect("build.sh declares UNUSED_EXPORTS");
    line.trim_end_matches('"')
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn read_leb(data: &[u8], at: &mut usize) -> usize {
    let (mut value, mut shift) = (0usize, 0);
    loop {
        let byte = data[*at];
        *at += 1;
        value |= usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte < 0x80 {
            return value;
        }
    }
}

/// The names in a module's export section.
fn export_names(module: &[u8]) -> Vec<String> {
    assert_eq!(&module[..8], b"\0asm\x01\0\0\0", "a wasm module");
    let mut at = 8;
    while at < module.len() {
        let id = module[at];
        at += 1;
        let size = read_leb(module, &mut at);
        let body = &module[at..at + size];
        at += size;
        if id == 7 {
            let mut k = 0;
            let count = read_leb(body, &mut k);
            return (0..count)
                .map(|_| {
                    let len = read_leb(body, &mut k);
                    let name = String::from_utf8(body[k..k + len].to_vec()).expect("UTF-8 name");
                    k += len + 1;
                    read_leb(body, &mut k);
                    name
                })
                .collect();
        }
    }
    Vec::new()
}

#[test]
fn the_module_exports_no_callback_left_at_its_default() {
    let module = std::fs::read(common::envoy::wasm_module()).expect("read module");
    let exports = export_names(&module);
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
                "{path} implements `{method}`, but build.sh removes {export} from the module: \
                 take {export} out of UNUSED_EXPORTS"
            );
        }
    }
}
