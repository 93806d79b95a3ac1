//! HumanEval's visible tests: the `>>>` examples of a prompt's docstring,
//! turned into `assert call == expected` statements.
//!
//! HumanEval has no field of visible tests; its prompts show examples in
//! doctest form. We parse them ourselves from the (MIT) prompt rather than
//! use anyone's machine-made file (docs/method.md, V4). Doctest's own quirks are
//! handled the way a reader of the docstring understands them:
//!
//! * an example with no output line means the call returns `None`
//!   (`assert f(x) is None`);
//! * an example that already is a comparison (`>>> f(x) == 3`, no output) is
//!   asserted as written;
//! * a call followed by whitespace and a literal on the same line
//!   (`>>> f(x) [1, 2]`, HumanEval/116) means `f(x) == [1, 2]`;
//! * `...` continuation lines and outputs wrapped over several lines are
//!   joined; trailing `#` comments are dropped;
//! * examples that do not call the entry point, or whose text is not
//!   balanced Python (unterminated strings, unbalanced brackets), are skipped
//!   and reported rather than turned into broken tests (docs/method.md, D1).

/// The examples of one prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocExamples {
    /// One `assert` statement per usable example, in docstring order.
    pub asserts: Vec<String>,
    /// The source of every example that was skipped, with the reason.
    pub skipped: Vec<(String, &'static str)>,
}

/// Extracts the `>>>` examples of `prompt` that call `entry_point`.
pub fn parse_examples(prompt: &str, entry_point: &str) -> DocExamples {
    let lines: Vec<&str> = prompt.lines().collect();
    let mut out = DocExamples::default();
    let mut i = 0;
    while i < lines.len() {
        let Some(first) = strip_marker(lines[i], ">>>") else {
            i += 1;
            continue;
        };
        let mut source = vec![first];
        i += 1;
        while let Some(more) = lines.get(i).and_then(|l| strip_marker(l, "...")) {
            source.push(more);
            i += 1;
        }
        let mut expected = Vec::new();
        while let Some(line) = lines.get(i) {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with(">>>") {
                break;
            }
            match docstring_end(trimmed) {
                Some(before) => {
                    if !before.trim().is_empty() {
                        expected.push(before.trim());
                    }
                    break;
                }
                None => expected.push(trimmed),
            }
            i += 1;
        }
        let source = source.join("\n");
        match example_to_assert(&source, &expected.join(" "), entry_point) {
            Ok(assert) => out.asserts.push(assert),
            Err(reason) => out.skipped.push((source, reason)),
        }
    }
    out
}

/// The text after a doctest marker (`>>>` or `...`) and its one space.
fn strip_marker<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = line.trim_start().strip_prefix(marker)?;
    Some(rest.strip_prefix(' ').unwrap_or(rest).trim_end())
}

/// If `line` closes the docstring, the text before the closing quotes.
fn docstring_end(line: &str) -> Option<&str> {
    ["\"\"\"", "'''"]
        .iter()
        .filter_map(|q| line.find(q).map(|at| &line[..at]))
        .next()
}

fn example_to_assert(
    source: &str,
    expected: &str,
    entry_point: &str,
) -> Result<String, &'static str> {
    let source = strip_comment(source).ok_or("unbalanced source")?.trim();
    if !mentions(source, entry_point) {
        return Err("does not call the entry point");
    }
    let multiline = source.contains('\n');
    let (call, expected) = if !expected.is_empty() {
        (source, expected.to_string())
    } else if let Some((call, literal)) = split_call_and_literal(source) {
        (call, literal.to_string())
    } else if has_top_level_comparison(source) {
        return Ok(format!("assert {}", parenthesise(source, multiline)));
    } else if starts_with_call(source) {
        return Ok(format!(
            "assert {} is None",
            parenthesise(source, multiline)
        ));
    } else {
        return Err("a statement without output");
    };
    let expected = strip_comment(&expected)
        .ok_or("unbalanced expected output")?
        .trim()
        .to_string();
    if expected.is_empty() {
        return Err("empty expected output");
    }
    Ok(format!(
        "assert {} == {}",
        parenthesise(call, multiline),
        expected
    ))
}

fn parenthesise(source: &str, multiline: bool) -> String {
    if multiline {
        format!("({source})")
    } else {
        source.to_string()
    }
}

fn mentions(source: &str, name: &str) -> bool {
    source.match_indices(name).any(|(at, _)| {
        let before = source[..at].chars().next_back();
        let after = source[at + name.len()..].trim_start().chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && after == Some('(')
    })
}

/// What one pass over Python source found outside string literals.
struct Scan {
    /// Byte offset of a `#` comment, if any.
    comment: Option<usize>,
    /// Byte offsets (and bracket depth) of every character outside strings.
    code: Vec<(usize, usize)>,
}

/// Scans Python source for strings, brackets and comments. `None` when a
/// string is unterminated or the brackets do not balance.
fn scan(source: &str) -> Option<Scan> {
    let bytes = source.as_bytes();
    let mut depth: Vec<u8> = Vec::new();
    let mut code = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'#' => {
                return depth.is_empty().then_some(Scan {
                    comment: Some(i),
                    code,
                });
            }
            b'\'' | b'"' => {
                let triple = bytes[i..].starts_with(&[c, c, c]);
                let quote_len = if triple { 3 } else { 1 };
                let mut j = i + quote_len;
                loop {
                    if j >= bytes.len() {
                        return None;
                    }
                    if bytes[j] == b'\\' {
                        j += 2;
                        continue;
                    }
                    if !triple && bytes[j] == b'\n' {
                        return None;
                    }
                    if bytes[j] == c && (!triple || bytes[j..].starts_with(&[c, c, c])) {
                        break;
                    }
                    j += 1;
                }
                i = j + quote_len;
                continue;
            }
            b'(' | b'[' | b'{' => depth.push(c),
            b')' | b']' | b'}' => {
                let open = match c {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                if depth.pop() != Some(open) {
                    return None;
                }
            }
            _ => {}
        }
        code.push((i, depth.len()));
        i += 1;
    }
    depth.is_empty().then_some(Scan {
        comment: None,
        code,
    })
}

fn strip_comment(source: &str) -> Option<&str> {
    let scan = scan(source)?;
    Some(&source[..scan.comment.unwrap_or(source.len())])
}

fn has_top_level_comparison(source: &str) -> bool {
    let Some(scan) = scan(source) else {
        return false;
    };
    scan.code
        .iter()
        .any(|&(at, depth)| depth == 0 && source[at..].starts_with("=="))
}

/// The byte length of a leading `name(...)` (dotted names allowed).
fn leading_call_len(source: &str) -> Option<usize> {
    let name_end = source
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(source.len());
    if name_end == 0 || !source[name_end..].starts_with('(') {
        return None;
    }
    let scan = scan(source)?;
    scan.code
        .iter()
        .find(|&&(at, depth)| at > name_end && depth == 0 && source.as_bytes()[at] == b')')
        .map(|&(at, _)| at + 1)
}

fn starts_with_call(source: &str) -> bool {
    leading_call_len(source) == Some(source.len())
}

/// `f(x) [1, 2]` → (`f(x)`, `[1, 2]`): a call, whitespace, then a literal.
fn split_call_and_literal(source: &str) -> Option<(&str, &str)> {
    let end = leading_call_len(source)?;
    let rest = &source[end..];
    let literal = rest.trim_start();
    let separated = rest.len() > literal.len();
    let literal_start = literal
        .chars()
        .next()
        .is_some_and(|c| "[({'\"-".contains(c) || c.is_ascii_digit());
    (separated && literal_start && scan(literal).is_some()).then(|| (&source[..end], literal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asserts(prompt: &str, entry: &str) -> Vec<String> {
        parse_examples(prompt, entry).asserts
    }

    #[test]
    fn plain_examples() {
        let p = "def f(x):\n    \"\"\" Doc.\n    >>> f([1.0, 2.0], 0.5)\n    False\n    >>> f('a#b')\n    'a#b'\n    \"\"\"\n";
        assert_eq!(
            asserts(p, "f"),
            vec![
                "assert f([1.0, 2.0], 0.5) == False",
                "assert f('a#b') == 'a#b'"
            ]
        );
    }

    #[test]
    fn no_output_means_none_and_comparisons_stand() {
        let p = "    >>> longest([])\n\n    >>> g(1) == 3\n    >>> g(2) == 4\n    \"\"\"";
        assert_eq!(asserts(p, "longest"), vec!["assert longest([]) is None"]);
        assert_eq!(
            asserts(p, "g"),
            vec!["assert g(1) == 3", "assert g(2) == 4"]
        );
    }

    #[test]
    fn comments_continuations_and_wrapped_output() {
        let p = ">>> round(find_zero([1, 2]), 2) # f(x) = 1 + 2x\n-0.5\n>>> h(['3',\n... \"1\"])\n[\"a\",\n\"b\"]\n";
        assert_eq!(
            asserts(p, "find_zero"),
            vec!["assert round(find_zero([1, 2]), 2) == -0.5"]
        );
        assert_eq!(
            asserts(p, "h"),
            vec!["assert (h(['3',\n\"1\"])) == [\"a\", \"b\"]"]
        );
    }

    #[test]
    fn missing_operator_before_a_literal() {
        let p = ">>> sort_array([1, 0, 2]) [0, 1, 2]\n\"\"\"";
        assert_eq!(
            asserts(p, "sort_array"),
            vec!["assert sort_array([1, 0, 2]) == [0, 1, 2]"]
        );
    }

    #[test]
    fn malformed_and_foreign_examples_are_skipped() {
        let p = ">>> f('unterminated)\n1\n>>> other(1)\n2\n>>> x = f(1)\n>>> f(2)\n    3\"\"\"";
        let ex = parse_examples(p, "f");
        assert_eq!(ex.asserts, vec!["assert f(2) == 3"]);
        let reasons: Vec<_> = ex.skipped.iter().map(|s| s.1).collect();
        assert_eq!(
            reasons,
            vec![
                "unbalanced source",
                "does not call the entry point",
                "a statement without output"
            ]
        );
    }
}
