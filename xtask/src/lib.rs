//! Build tasks that `build.sh` runs and the tests share: the wasm export stripping, and finding Envoy.
//!
//! The proxy-wasm SDK (0.2.5) exports every callback of the ABI, and Envoy enters the VM for each one a
//! module exports, up to about 1 µs per entry per request. The filter leaves [`UNUSED_EXPORTS`] at the
//! SDK's defaults (continue, done, no log), which are also what Envoy does when a module does not export
//! them, so the build removes them from the module's export section. `tests/envoy/module_exports.rs`
//! reads the same list and checks the built module and that `src/` implements none of them: a removed
//! export would never run.

/// The SDK's exports for callbacks this filter leaves at their defaults.
pub const UNUSED_EXPORTS: [&str; 5] = [
    "proxy_on_response_headers",
    "proxy_on_response_body",
    "proxy_on_response_trailers",
    "proxy_on_log",
    "proxy_on_done",
];

/// The command that runs Envoy, found the way users find it: `$ENVOY_BIN`, the project's `.venv`,
/// `envoy` on `PATH`, then `func-e run`. `build.sh` (through `cargo xtask envoy-command`) and the
/// tests both use this, so they can never pick different binaries.
pub fn envoy_command(repo_root: &std::path::Path) -> Option<Vec<String>> {
    if let Some(bin) = std::env::var_os("ENVOY_BIN").filter(|b| !b.is_empty()) {
        return Some(vec![bin.to_string_lossy().into_owned()]);
    }
    let venv = repo_root.join(".venv/bin/envoy");
    if venv.is_file() {
        return Some(vec![venv.display().to_string()]);
    }
    if let Some(envoy) = on_path("envoy") {
        return Some(vec![envoy.display().to_string()]);
    }
    on_path("func-e").map(|func_e| vec![func_e.display().to_string(), "run".to_string()])
}

fn on_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

const MAGIC_AND_VERSION: &[u8; 8] = b"\0asm\x01\0\0\0";
const EXPORT_SECTION: u8 = 7;

/// Why a module could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ModuleError {
    NotWasm,
    Truncated,
    BadName,
}

impl std::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModuleError::NotWasm => "not a wasm module (no \\0asm version 1 header)",
            ModuleError::Truncated => "truncated module",
            ModuleError::BadName => "an export name is not UTF-8",
        })
    }
}

impl std::error::Error for ModuleError {}

/// A cursor over a byte slice that reads wasm's LEB128 integers and refuses to run past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], at: usize) -> Reader<'a> {
        Reader { bytes, at }
    }

    fn byte(&mut self) -> Result<u8, ModuleError> {
        let byte = *self.bytes.get(self.at).ok_or(ModuleError::Truncated)?;
        self.at += 1;
        Ok(byte)
    }

    fn leb(&mut self) -> Result<usize, ModuleError> {
        let (mut value, mut shift) = (0usize, 0u32);
        loop {
            let byte = self.byte()?;
            if shift >= usize::BITS {
                return Err(ModuleError::Truncated);
            }
            value |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte < 0x80 {
                return Ok(value);
            }
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], ModuleError> {
        let end = self.at.checked_add(len).ok_or(ModuleError::Truncated)?;
        let slice = self.bytes.get(self.at..end).ok_or(ModuleError::Truncated)?;
        self.at = end;
        Ok(slice)
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

fn leb(mut value: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// One export entry: its name and its encoded bytes (name, kind, index).
struct Export<'a> {
    name: &'a str,
    encoded: &'a [u8],
}

fn exports_of(body: &[u8]) -> Result<Vec<Export<'_>>, ModuleError> {
    let mut reader = Reader::new(body, 0);
    let count = reader.leb()?;
    let mut exports = Vec::new();
    for _ in 0..count {
        let start = reader.at;
        let len = reader.leb()?;
        let name = std::str::from_utf8(reader.take(len)?).map_err(|_| ModuleError::BadName)?;
        reader.byte()?; // kind
        reader.leb()?; // index
        let encoded = body.get(start..reader.at).ok_or(ModuleError::Truncated)?;
        exports.push(Export { name, encoded });
    }
    Ok(exports)
}

/// Calls `each` with every section's id and body, in order.
fn for_each_section<'a>(
    module: &'a [u8],
    mut each: impl FnMut(u8, &'a [u8]) -> Result<(), ModuleError>,
) -> Result<(), ModuleError> {
    if module.get(..8) != Some(MAGIC_AND_VERSION.as_slice()) {
        return Err(ModuleError::NotWasm);
    }
    let mut reader = Reader::new(module, 8);
    while !reader.done() {
        let id = reader.byte()?;
        let size = reader.leb()?;
        each(id, reader.take(size)?)?;
    }
    Ok(())
}

/// The names in a module's export section, in order.
pub fn export_names(module: &[u8]) -> Result<Vec<String>, ModuleError> {
    let mut names = Vec::new();
    for_each_section(module, |id, body| {
        if id == EXPORT_SECTION {
            names.extend(exports_of(body)?.iter().map(|e| e.name.to_string()));
        }
        Ok(())
    })?;
    Ok(names)
}

/// The module with the named exports removed; every other byte is kept as it was.
pub fn strip_exports(module: &[u8], unused: &[&str]) -> Result<Vec<u8>, ModuleError> {
    let mut out = MAGIC_AND_VERSION.to_vec();
    for_each_section(module, |id, body| {
        let mut kept_body;
        let body = if id == EXPORT_SECTION {
            let kept: Vec<Export<'_>> = exports_of(body)?
                .into_iter()
                .filter(|e| !unused.contains(&e.name))
                .collect();
            kept_body = Vec::new();
            leb(kept.len(), &mut kept_body);
            for export in &kept {
                kept_body.extend_from_slice(export.encoded);
            }
            kept_body.as_slice()
        } else {
            body
        };
        out.push(id);
        leb(body.len(), &mut out);
        out.extend_from_slice(body);
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with a type section and an export section of three functions.
    fn module_with_exports(names: &[&str]) -> Vec<u8> {
        let mut module = MAGIC_AND_VERSION.to_vec();
        module.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]); // type section: one () -> ()
        let mut body = Vec::new();
        leb(names.len(), &mut body);
        for (index, name) in names.iter().enumerate() {
            leb(name.len(), &mut body);
            body.extend_from_slice(name.as_bytes());
            body.push(0); // function
            leb(index, &mut body);
        }
        module.push(EXPORT_SECTION);
        leb(body.len(), &mut module);
        module.extend_from_slice(&body);
        module
    }

    #[test]
    fn strips_only_the_named_exports_and_keeps_other_sections() {
        let module = module_with_exports(&["keep_a", "proxy_on_log", "keep_b"]);
        let stripped = strip_exports(&module, &UNUSED_EXPORTS).unwrap();
        assert_eq!(export_names(&stripped).unwrap(), ["keep_a", "keep_b"]);
        assert_eq!(stripped.get(8..14), module.get(8..14), "type section kept");
        assert_eq!(
            strip_exports(&stripped, &UNUSED_EXPORTS).unwrap(),
            stripped,
            "stripping twice changes nothing"
        );
    }

    #[test]
    fn refuses_what_is_not_a_whole_module() {
        assert_eq!(
            strip_exports(b"\0asn\x01\0\0\0", &[]),
            Err(ModuleError::NotWasm)
        );
        let module = module_with_exports(&["a"]);
        let cut = module.get(..module.len() - 1).unwrap();
        assert_eq!(export_names(cut), Err(ModuleError::Truncated));
    }
}
