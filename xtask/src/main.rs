//! `cargo xtask strip-exports MODULE`: removes the SDK exports the filter leaves at their defaults
//! (see the library's docs), rewriting MODULE in place.
//! `cargo xtask envoy-command`: prints the command that runs Envoy (words separated by spaces); exits 1 when
//! there is none.

use std::process::ExitCode;

fn strip_in_place(path: &str) -> Result<(usize, usize), String> {
    let module = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let stripped = xtask::strip_exports(&module, &xtask::UNUSED_EXPORTS)
        .map_err(|e| format!("{path}: {e}"))?;
    std::fs::write(path, &stripped).map_err(|e| format!("{path}: {e}"))?;
    Ok((module.len(), stripped.len()))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [task, path] if task == "strip-exports" => match strip_in_place(path) {
            Ok((before, after)) => {
                eprintln!(
                    "{path}: removed {} unused exports ({before} -> {after} bytes)",
                    xtask::UNUSED_EXPORTS.len()
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("xtask: {error}");
                ExitCode::FAILURE
            }
        },
        [task] if task == "envoy-command" => {
            let manifest_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            let root = manifest_dir.parent().unwrap_or(manifest_dir);
            match xtask::envoy_command(root) {
                Some(command) => {
                    println!("{}", command.join(" "));
                    ExitCode::SUCCESS
                }
                None => ExitCode::FAILURE,
            }
        }
        _ => {
            eprintln!("usage: cargo xtask strip-exports MODULE | cargo xtask envoy-command");
            ExitCode::from(2)
        }
    }
}
