//! A cheap sanity check of a model file before llama.cpp sees it.
//!
//! llama.cpp reports most broken files as a null model, but a file that is
//! not GGUF at all gives only a generic failure, and some malformed inputs
//! trip assertions that abort the process. Checking the fixed-size header
//! ourselves turns the common mistakes (wrong file, HTML error page saved as
//! a model, empty or cut-off download) into a clear message.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// `"GGUF"` as the first four bytes of the file.
const MAGIC: [u8; 4] = *b"GGUF";
/// Magic, version (u32), tensor count (u64), metadata count (u64).
const HEADER_LEN: usize = 4 + 4 + 8 + 8;
/// GGUF versions llama.cpp reads.
const SUPPORTED_VERSIONS: [u32; 2] = [2, 3];

/// Check that `path` starts with a plausible GGUF header; the error text says
/// what was found instead.
pub(crate) fn check(path: &Path) -> Result<(), String> {
    let mut file = File::open(path).map_err(|err| format!("cannot open the file: {err}"))?;
    let size = file
        .metadata()
        .map_err(|err| format!("cannot read the file's size: {err}"))?
        .len();
    let mut header = Vec::with_capacity(HEADER_LEN);
    file.by_ref()
        .take(HEADER_LEN as u64)
        .read_to_end(&mut header)
        .map_err(|err| format!("cannot read the file: {err}"))?;
    check_header(&header, size)
}

fn check_header(header: &[u8], size: u64) -> Result<(), String> {
    if size == 0 {
        return Err("the file is empty".to_owned());
    }
    if header.len() < MAGIC.len() || header[..4] != MAGIC {
        let shown = header
            .iter()
            .take(4)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>();
        return Err(format!(
            "not a GGUF file: it starts with bytes [{}], a GGUF model starts with \"GGUF\"",
            shown.join(" ")
        ));
    }
    if header.len() < HEADER_LEN {
        return Err(format!(
            "the file is cut off: {size} bytes is shorter than a GGUF header"
        ));
    }
    let version = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(format!(
            "unsupported GGUF version {version} (llama.cpp reads versions 2 and 3)"
        ));
    }
    let n_tensors = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    if n_tensors == 0 {
        return Err(
            "the GGUF file holds no tensors (a vocabulary-only file is not a model)".to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u32, n_tensors: u64) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(version.to_le_bytes());
        bytes.extend(n_tensors.to_le_bytes());
        bytes.extend(7u64.to_le_bytes());
        bytes
    }

    #[test]
    fn accepts_a_plausible_header() {
        assert_eq!(check_header(&header(3, 12), 1000), Ok(()));
    }

    #[test]
    fn names_what_is_wrong() {
        let html = b"<!DOCTYPE html><html>";
        assert!(check_header(html, html.len() as u64)
            .unwrap_err()
            .contains("3c 21 44 4f"));
        assert!(check_header(&[], 0).unwrap_err().contains("empty"));
        assert!(check_header(b"GGUF\x03\0", 6)
            .unwrap_err()
            .contains("cut off"));
        assert!(check_header(&header(9, 1), 100)
            .unwrap_err()
            .contains("version 9"));
        assert!(check_header(&header(3, 0), 100)
            .unwrap_err()
            .contains("no tensors"));
    }
}
