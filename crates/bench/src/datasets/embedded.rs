//! The vendored data files, compiled into the binary.
//!
//! Every file under the repository's `data/` directory that egcfg supports is
//! embedded here byte for byte (gzip-compressed JSON Lines, as listed in
//! `data/MANIFEST.md`), so a built `egcfg` needs no data directory at run
//! time. The sha256 of each compressed file is recorded next to it; it names
//! the dataset version in the database and in the expected-output cache.

use std::io::Read;

use flate2::read::GzDecoder;

/// One embedded data file.
#[derive(Debug, Clone, Copy)]
pub struct DataFile {
    /// Path below `data/`, as in the MANIFEST.
    pub path: &'static str,
    /// The gzip-compressed content.
    pub gz: &'static [u8],
    /// sha256 of `gz`, from the MANIFEST's checksum table.
    pub sha256: &'static str,
}

macro_rules! data_file {
    ($path:literal, $sha:literal) => {
        DataFile {
            path: $path,
            gz: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/", $path)),
            sha256: $sha,
        }
    };
}

/// HumanEval (OpenAI), MIT.
pub const HUMANEVAL: DataFile = data_file!(
    "humaneval/HumanEval.jsonl.gz",
    "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef"
);
/// HumanEval-ET (CodeScore extended tests).
pub const HUMANEVAL_ET: DataFile = data_file!(
    "humaneval-et/HumanEval_ET.jsonl.gz",
    "ac86412fc8507609aa1eb30eaf7431b40f54295bea98b6e71e35664a91234b59"
);
/// MBPP, all 974 tasks.
pub const MBPP: DataFile = data_file!(
    "mbpp/mbpp.jsonl.gz",
    "5da714a90c1b388857026ac955de6a98b42b311e570cee3d27683f98e1699923"
);
/// Sanitized MBPP, 427 tasks.
pub const MBPP_SANITIZED: DataFile = data_file!(
    "mbpp-sanitized/sanitized-mbpp.jsonl.gz",
    "46e972f937796d4dfaaa945570ccc368c9b44bf2adc77062981c54b2e0fe588f"
);
/// MBPP-ET, the 397-task partial file.
pub const MBPP_ET_PARTIAL: DataFile = data_file!(
    "mbpp-et-partial/MBPP_ET-partial-397.jsonl.gz",
    "e99ebc3fd210b940a0040f25be6040c6d62029c478df9e2ce527850077ef459c"
);
/// HumanEval+ v0.1.10, full.
pub const HUMANEVAL_PLUS: DataFile = data_file!(
    "humaneval-plus/HumanEvalPlus-v0.1.10.jsonl.gz",
    "272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101"
);
/// HumanEval+ v0.1.10, Mini.
pub const HUMANEVAL_PLUS_MINI: DataFile = data_file!(
    "humaneval-plus/HumanEvalPlus-Mini-v0.1.10.jsonl.gz",
    "91486741f1627101021fbe50523df08eebb5b0bf5e804b633dcd5ca3c14dbd2f"
);
/// HumanEval+ v0.1.10, NoExtreme.
pub const HUMANEVAL_PLUS_NOEXTREME: DataFile = data_file!(
    "humaneval-plus/HumanEvalPlus-NoExtreme-v0.1.10.jsonl.gz",
    "298f79977b2663b8b8ab6b5fa50b17d6f23a92603d24f39e26203fe58c37eeda"
);
/// MBPP+ v0.2.0, full.
pub const MBPP_PLUS: DataFile = data_file!(
    "mbpp-plus/MbppPlus-v0.2.0.jsonl.gz",
    "af43697e8791c4c149bdfd6b489d8b5412507551ac20e28a439f650b8225db63"
);
/// MBPP+ v0.2.0, NoExtreme.
pub const MBPP_PLUS_NOEXTREME: DataFile = data_file!(
    "mbpp-plus/MbppPlus-NoExtreme-v0.2.0.jsonl.gz",
    "72d32acaea73d5606cb97041b30d45bbda9435a675369d3e31965513ee94e564"
);
/// LPW's function-form CodeContests, 150 problems.
pub const CODECONTESTS_LPW: DataFile = data_file!(
    "codecontests-lpw/CodeContests-lpw-150.jsonl.gz",
    "bbeebf6a140af5f92f077e48bf6b26213bcaff7809d88766a7b54f1724210295"
);
/// LPW's 140-problem LiveCodeBench subset.
pub const LIVECODE_LPW: DataFile = data_file!(
    "livecode-lpw/LiveCode-lpw-140.jsonl.gz",
    "1fcf7f2c2af1860fd05383eab50e0c635e813c91d59268e18a6a92d8a212e7b5"
);

impl DataFile {
    /// The decompressed JSON Lines text.
    pub fn text(&self) -> std::io::Result<String> {
        let mut text = String::new();
        GzDecoder::new(self.gz).read_to_string(&mut text)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// Every file with its record count from the MANIFEST.
    const ALL: [(DataFile, usize); 12] = [
        (HUMANEVAL, 164),
        (HUMANEVAL_ET, 164),
        (MBPP, 974),
        (MBPP_SANITIZED, 427),
        (MBPP_ET_PARTIAL, 397),
        (HUMANEVAL_PLUS, 164),
        (HUMANEVAL_PLUS_MINI, 164),
        (HUMANEVAL_PLUS_NOEXTREME, 164),
        (MBPP_PLUS, 378),
        (MBPP_PLUS_NOEXTREME, 378),
        (CODECONTESTS_LPW, 150),
        (LIVECODE_LPW, 140),
    ];

    #[test]
    fn embedded_files_match_their_manifest_checksums_and_counts() {
        for (file, records_wanted) in ALL {
            assert_eq!(
                hex::encode(Sha256::digest(file.gz)),
                file.sha256,
                "{}",
                file.path
            );
            let text = file.text().unwrap();
            let records = text.lines().filter(|l| !l.trim().is_empty()).count();
            assert_eq!(records, records_wanted, "{}", file.path);
        }
    }
}
