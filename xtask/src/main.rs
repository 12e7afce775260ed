//! `cargo xtask strip-exports MODULE`: removes the SDK exports the filter leaves at their defaults
//! (see the library's docs), rewriting MODULE in place.
//! `cargo xtask envoy-command`: prints the command that runs Envoy (words separated by spaces); exits 1 when
//! there is none.

use std::process::ExitCode;

/// Sizes before and after; `None` when the module had none of the exports (then it is not rewritten).
fn strip_in_place(path: &str) -> Result<Option<(usize, usize)>, String> {
    let module = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let stripped = xtask::strip_exports(&module, &xtask::UNUSED_EXPORTS)
        .map_err(|e| format!("{path}: {e}"))?;
    // A build that finds the module up to date leaves it stripped: it is then not written again, so an Envoy
    // test loading it meanwhile (tests/envoy/oci_image.rs runs `./build.sh image` beside other tests) never
    // reads a half-written file. The write stays in place: the file is cargo's hard link to its deps/
    // output, and cargo re-links (removes and links again) a path that is no longer that file.
    if stripped == module {
        return Ok(None);
    }
    std::fs::write(path, &stripped).map_err(|e| format!("{path}: {e}"))?;
    Ok(Some((module.len(), stripped.len())))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [task, path] if task == "strip-exports" => match strip_in_place(path) {
            Ok(Some((before, after))) => {
                eprintln!(
                    "{path}: removed {} unused exports ({before} -> {after} bytes)",
                    xtask::UNUSED_EXPORTS.len()
                );
                ExitCode::SUCCESS
            }
            Ok(None) => {
                eprintln!("{path}: already without the unused exports");
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
