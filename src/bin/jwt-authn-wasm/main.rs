//! `jwt-authn-wasm`: checks this filter's configuration where users keep it, and converts jwt_authn and
//! Istio RequestAuthentication configurations to it (docs/cli.md).
//!
//!   jwt-authn-wasm check [--format text|json] [--name NAME]… FILE…
//!   jwt-authn-wasm convert [--module PATH] [--url URL] [--sha256 DIGEST] FILE
//!
//! A host tool: built for wasm32 (as `cargo build --target wasm32-wasip1` does for every target of the
//! package) it is an empty stub, so the module's build needs none of its dependencies.

// The modules name each other with `super::`: `crate::` in this binary would read, to the layer check of
// src/ (tests/host/layers.rs), like a use of the library's modules.
#[cfg(not(target_arch = "wasm32"))]
mod check;
#[cfg(not(target_arch = "wasm32"))]
mod convert;
#[cfg(not(target_arch = "wasm32"))]
mod input;
#[cfg(not(target_arch = "wasm32"))]
mod locate;
#[cfg(not(target_arch = "wasm32"))]
mod report;

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.split_first() {
        Some((command, rest)) if command == "check" => cli::check(rest),
        Some((command, rest)) if command == "convert" => cli::convert(rest),
        Some((command, _)) if command == "--help" || command == "-h" || command == "help" => {
            print!("{}", cli::USAGE);
            0
        }
        _ => {
            eprint!("{}", cli::USAGE);
            2
        }
    };
    std::process::ExitCode::from(code)
}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use super::locate::Names;
    use super::report::{Diagnostic, Severity};
    use super::{check, convert, input};

    pub const USAGE: &str = "\
usage: jwt-authn-wasm check [--format text|json] [--name NAME]... FILE...
       jwt-authn-wasm convert [--module PATH] [--url URL] [--sha256 DIGEST] FILE

check    runs the filter's own configuration parser on every jwt-authn-wasm configuration in each FILE
         (our JSON; an Envoy bootstrap, listener or other resource in YAML or JSON; an Istio WasmPlugin;
         an Envoy Gateway EnvoyExtensionPolicy; multi-document YAML), and warns about likely mistakes.
         Exit 0: no errors (warnings allowed); 1: errors; 2: a FILE could not be read or parsed.
         --name NAME  also recognise filters whose root_id/vm_id/pluginName/module is NAME
convert  rewrites an Envoy configuration with jwt_authn to use this filter instead, or an Istio
         RequestAuthentication into a WasmPlugin with ServiceEntry and DestinationRule; the result goes
         to standard output, what could not carry over to standard error.
         --module PATH  the module on the Envoy host (default /etc/envoy/jwt_authn_wasm.wasm)
         --url URL      the WasmPlugin's url (default oci://registry.example.com/jwt-authn-wasm:0.1.0)
         --sha256 HEX   the WasmPlugin's sha256 (the image's manifest digest)
FILE may be - for standard input. Details: docs/cli.md.
";

    fn usage_error(message: &str) -> u8 {
        eprintln!("jwt-authn-wasm: {message}");
        eprint!("{USAGE}");
        2
    }

    pub fn check(args: &[String]) -> u8 {
        let mut json = false;
        let mut names = vec!["jwt_authn_wasm".to_string(), "jwt-authn-wasm".to_string()];
        let mut files = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "--format" => match iter.next().map(String::as_str) {
                    Some("json") => json = true,
                    Some("text") => json = false,
                    _ => return usage_error("--format takes text or json"),
                },
                "--name" => match iter.next() {
                    Some(name) => names.push(name.clone()),
                    None => return usage_error("--name takes a name"),
                },
                flag if flag.starts_with("--") => {
                    return usage_error(&format!("unknown option {flag}"))
                }
                file => files.push(file.to_string()),
            }
        }
        if files.is_empty() {
            return usage_error("check needs at least one FILE");
        }
        let names = Names(names);
        let mut diagnostics = Vec::new();
        for file in &files {
            match input::read(file) {
                Ok(input) => diagnostics.extend(check::check(&input, &names)),
                Err(reason) => diagnostics.push(Diagnostic {
                    file: file.clone(),
                    location: String::new(),
                    field: String::new(),
                    severity: Severity::Unreadable,
                    message: reason,
                }),
            }
        }
        if json {
            let array: Vec<serde_json::Value> = diagnostics.iter().map(Diagnostic::json).collect();
            println!("{}", serde_json::Value::Array(array));
        } else {
            for diagnostic in &diagnostics {
                println!("{}", diagnostic.text());
            }
        }
        let count = |severity| {
            diagnostics
                .iter()
                .filter(|d| d.severity == severity)
                .count()
        };
        let (unreadable, errors, warnings) = (
            count(Severity::Unreadable),
            count(Severity::Error),
            count(Severity::Warning),
        );
        if !json {
            eprintln!(
                "jwt-authn-wasm check: {} file(s), {errors} error(s), {warnings} warning(s){}",
                files.len(),
                if unreadable > 0 {
                    format!(", {unreadable} unreadable")
                } else {
                    String::new()
                }
            );
        }
        if unreadable > 0 {
            2
        } else if errors > 0 {
            1
        } else {
            0
        }
    }

    pub fn convert(args: &[String]) -> u8 {
        let mut options = convert::Options {
            module: "/etc/envoy/jwt_authn_wasm.wasm".to_string(),
            url: "oci://registry.example.com/jwt-authn-wasm:0.1.0".to_string(),
            sha256: None,
        };
        let mut file = None;
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let target = match arg.as_str() {
                "--module" => &mut options.module,
                "--url" => &mut options.url,
                "--sha256" => {
                    // Istio wants the manifest digest as 64 lowercase hex digits, without "sha256:".
                    match iter.next() {
                        Some(sha)
                            if sha.len() == 64
                                && sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
                        {
                            options.sha256 = Some(sha.clone())
                        }
                        _ => {
                            return usage_error(
                                "--sha256 takes the image's manifest digest: 64 lowercase hex digits, no \"sha256:\"",
                            )
                        }
                    }
                    continue;
                }
                flag if flag.starts_with("--") => {
                    return usage_error(&format!("unknown option {flag}"))
                }
                path => {
                    if file.replace(path.to_string()).is_some() {
                        return usage_error("convert takes one FILE");
                    }
                    continue;
                }
            };
            match iter.next() {
                Some(value) => *target = value.clone(),
                None => return usage_error(&format!("{arg} takes a value")),
            }
        }
        let Some(file) = file else {
            return usage_error("convert needs a FILE");
        };
        let input = match input::read(&file) {
            Ok(input) => input,
            Err(reason) => {
                eprintln!("{file}: cannot read: {reason}");
                return 2;
            }
        };
        match convert::convert(&input, &options) {
            Ok(converted) => {
                for note in &converted.notes {
                    eprintln!("{file}: {note}");
                }
                print!("{}", converted.text);
                0
            }
            Err(errors) => {
                for error in errors {
                    eprintln!("{file}: {error}");
                }
                1
            }
        }
    }
}
