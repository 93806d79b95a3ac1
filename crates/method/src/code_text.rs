//! Reading a model's reply as code: fences, lines and the target function.
//!
//! The decoder only ever looks at the text of the reply so far (the forced
//! response prefix, if any, plus the decoded generated tokens). Everything
//! here is a pure function of that text, which keeps the refresh schedule and
//! the guidance switch easy to test by hand.

/// The Markdown fence that opens and closes code blocks.
pub const FENCE: &str = "```";

/// The code written so far: the text after the last *opening* fence line of
/// the reply, or the whole reply when it has no fence at all.
///
/// An opening fence only counts once its line is complete (ends with a
/// newline); a fence line that closes a block starts no code.
pub fn code_after_last_opening_fence(reply: &str) -> &str {
    let mut inside = false;
    let mut start = None;
    let mut offset = 0;
    for line in reply.split_inclusive('\n') {
        if line.starts_with(FENCE) {
            if !inside && line.ends_with('\n') {
                start = Some(offset + line.len());
            }
            inside = !inside;
        }
        offset += line.len();
    }
    match start {
        Some(s) => &reply[s..],
        None if reply.contains(FENCE) => "",
        None => reply,
    }
}

/// True when the reply's last line closes an open code block, the decoder's
/// signal to stop.
pub fn ends_with_closing_fence(reply: &str) -> bool {
    let mut inside = false;
    let mut closed_last = false;
    for line in reply.split_inclusive('\n') {
        closed_last = false;
        if line.starts_with(FENCE) {
            closed_last = inside;
            inside = !inside;
        }
    }
    closed_last
}

/// The last line of `text` (everything after the last newline).
pub fn last_line(text: &str) -> &str {
    text.rsplit_once('\n').map_or(text, |(_, tail)| tail)
}

/// True when `line` starts the definition of `name`: `def`, whitespace,
/// `name`, optional whitespace, `(` (docs/method.md §3).
pub fn starts_target_def(line: &str, name: &str) -> bool {
    let Some(rest) = line.strip_prefix("def") else {
        return false;
    };
    let trimmed = rest.trim_start();
    if trimmed.len() == rest.len() {
        return false;
    }
    trimmed
        .strip_prefix(name)
        .is_some_and(|after| after.trim_start().starts_with('('))
}

/// The Python code of the reply's last code block: the last closed block, or
/// the open block being written, or the whole reply when it has no fence.
pub fn last_code_block(reply: &str) -> String {
    let mut blocks: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in reply.split_inclusive('\n') {
        if line.starts_with(FENCE) {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some(String::new()),
            }
        } else if let Some(block) = current.as_mut() {
            block.push_str(line);
        }
    }
    if let Some(open) = current {
        blocks.push(open);
    }
    match blocks.pop() {
        Some(block) => block.trim_end().to_string(),
        None => reply.trim_end().to_string(),
    }
}

/// Number of newline characters in `text`.
pub fn count_newlines(text: &str) -> usize {
    egcfg_engine::newlines(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_after_fence() {
        assert_eq!(code_after_last_opening_fence("```python\ndef f("), "def f(");
        assert_eq!(
            code_after_last_opening_fence("no fence\nx = 1"),
            "no fence\nx = 1"
        );
        assert_eq!(code_after_last_opening_fence("text\n```py"), "");
        let two = "```python\na = 1\n```\nmore\n```python\nb = 2\n";
        assert_eq!(code_after_last_opening_fence(two), "b = 2\n");
    }

    #[test]
    fn closing_fence() {
        assert!(!ends_with_closing_fence("```python\nx = 1\n"));
        assert!(ends_with_closing_fence("```python\nx = 1\n```"));
        assert!(!ends_with_closing_fence("```python\nx = 1\n``"));
        assert!(!ends_with_closing_fence("intro\n```"));
    }

    #[test]
    fn target_def() {
        assert!(starts_target_def("def remove_Occ(", "remove_Occ"));
        assert!(starts_target_def("def  f (x", "f"));
        assert!(!starts_target_def("def f", "f"));
        assert!(!starts_target_def("def fx(", "f"));
        assert!(!starts_target_def("    def f(", "f"));
        assert!(!starts_target_def("deff(", "f"));
    }

    #[test]
    fn last_block() {
        assert_eq!(last_code_block("hi\n```python\na = 1\n```\nbye"), "a = 1");
        assert_eq!(
            last_code_block("```python\na = 1\n```\n```python\nb = 2\n"),
            "b = 2"
        );
        assert_eq!(last_code_block("x = 3\n"), "x = 3");
    }

    #[test]
    fn newlines() {
        assert_eq!(count_newlines(")\n\n\n"), 3);
        assert_eq!(last_line("a\nbc"), "bc");
        assert_eq!(last_line("abc"), "abc");
    }
}
