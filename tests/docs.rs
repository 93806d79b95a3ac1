//! Every reference to a design note resolves: `docs/method.md §6.1` in a
//! comment names a file in `docs/` and a section heading in it.

use std::path::{Path, PathBuf};

/// The repository's own text files that may cite the notes.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "fuzz" {
                sources(&path, out);
            }
        } else if [".rs", ".py", ".md", ".toml", ".sh"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            out.push(path);
        }
    }
}

/// `(note, section)` for each `NOTE.md §N` (or `§N.M`) in `text`, where
/// NOTE is method, sandbox or engine.
fn citations(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for note in ["method", "sandbox", "engine"] {
        let cite = format!("{note}.md §");
        for (at, _) in text.match_indices(&cite) {
            let section: String = text[at + cite.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let section = section.trim_end_matches('.').to_string();
            if !section.is_empty() {
                out.push((note.to_string(), section));
            }
        }
    }
    out
}

fn has_section(note: &str, section: &str) -> bool {
    let heading = if section.contains('.') {
        format!("### {section} ")
    } else {
        format!("## {section}. ")
    };
    note.lines().any(|line| line.starts_with(&heading))
}

#[test]
fn every_cited_section_of_a_design_note_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(root, &mut files);
    let mut cited = 0;
    let mut broken = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (note, section) in citations(&text) {
            cited += 1;
            let found = std::fs::read_to_string(root.join("docs").join(format!("{note}.md")))
                .is_ok_and(|text| has_section(&text, &section));
            if !found {
                broken.push(format!(
                    "{}: {note}.md §{section}",
                    file.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    assert!(cited > 20, "the sources cite the notes ({cited} found)");
    assert!(broken.is_empty(), "unresolved: {broken:#?}");
}
