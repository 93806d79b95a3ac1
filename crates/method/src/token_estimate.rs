//! Token counts of texts guessed from one tokenization of a text made of the
//! same lines. The signal builder asks "does the block still fit under the
//! cap with this entry?" once per entry; on a served model every exact
//! answer is a `/tokenize` request, so it tokenizes the whole block once,
//! guesses the rest from it, and asks exactly only where a guess is too
//! close to the cap to trust.
//!
//! A byte-level BPE splits text into pre-tokens that rarely cross a line
//! break, so a line costs about the same number of tokens wherever it
//! stands. The guess for a text is the sum, over its lines, of what that
//! line cost in the measured text; lines the measured text did not hold
//! cost its average tokens per byte.

use std::collections::HashMap;

/// How far a guess from per-line costs may be off: a token that crosses a
/// line break (a fence and the blank lines after it) is counted on one side
/// only, and the blocks differ in such joins by a few per entry.
const LINE_GUESS_SLACK: usize = 16;
/// How far a guess from bytes alone may be off, as a fraction of the guess:
/// code, traces and prose differ in tokens per byte by about this much.
const BYTE_GUESS_SLACK: f64 = 0.15;

/// What one tokenization says about the token cost of lines.
#[derive(Debug)]
pub(crate) struct TokenEstimate<'t> {
    /// Each distinct line of the measured text (with its newline): the
    /// tokens that start in it, summed over its occurrences, and the
    /// number of occurrences. Empty when the tokens' bytes were not known.
    per_line: HashMap<&'t str, (usize, usize)>,
    /// Tokens per byte of the whole measured text.
    per_byte: f64,
}

impl<'t> TokenEstimate<'t> {
    /// Measures `text`, which tokenized into `n_tokens` tokens whose bytes
    /// (in order) are `token_bytes` where known. Bytes that do not spell
    /// `text` are ignored, leaving the per-byte rate alone.
    pub(crate) fn measure(text: &'t str, n_tokens: usize, token_bytes: Option<&[Vec<u8>]>) -> Self {
        let per_byte = n_tokens as f64 / text.len().max(1) as f64;
        let mut per_line: HashMap<&str, (usize, usize)> = HashMap::new();
        let spelled = token_bytes.filter(|pieces| pieces.concat() == text.as_bytes());
        if let Some(pieces) = spelled {
            // Where each token starts, walked alongside where each line ends.
            let mut starts = pieces.iter().scan(0usize, |offset, piece| {
                let start = *offset;
                *offset += piece.len();
                Some(start)
            });
            let mut next_start = starts.next();
            let mut line_start = 0;
            for line in text.split_inclusive('\n') {
                let line_end = line_start + line.len();
                let mut tokens = 0;
                while next_start.is_some_and(|s| s < line_end) {
                    tokens += 1;
                    next_start = starts.next();
                }
                let cost = per_line.entry(line).or_default();
                cost.0 += tokens;
                cost.1 += 1;
                line_start = line_end;
            }
        }
        TokenEstimate { per_line, per_byte }
    }

    /// The guessed token count of `text`.
    pub(crate) fn guess(&self, text: &str) -> usize {
        let tokens: f64 = text
            .split_inclusive('\n')
            .map(|line| match self.per_line.get(line) {
                Some(&(tokens, occurrences)) => tokens as f64 / occurrences as f64,
                None => line.len() as f64 * self.per_byte,
            })
            .sum();
        tokens.round() as usize
    }

    /// How far from the true count a guess of `guess` tokens may be.
    pub(crate) fn slack(&self, guess: usize) -> usize {
        if self.per_line.is_empty() {
            (guess as f64 * BYTE_GUESS_SLACK).ceil() as usize
        } else {
            LINE_GUESS_SLACK
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that split `text` into the given pieces.
    fn pieces(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    #[test]
    fn a_text_of_measured_lines_is_guessed_by_their_costs() {
        let text = "ab\ncd\nab\n";
        let measured = pieces(&["a", "b\n", "cd", "\n", "ab\n"]);
        let estimate = TokenEstimate::measure(text, measured.len(), Some(&measured));
        // "ab\n" cost 2 and then 1 (average 1.5), "cd\n" cost 2.
        assert_eq!(estimate.guess("cd\n"), 2);
        assert_eq!(estimate.guess("cd\ncd\n"), 4);
        assert_eq!(estimate.guess("ab\nab\ncd\n"), 5);
        assert_eq!(estimate.slack(5), LINE_GUESS_SLACK);
        // An unknown line costs the text's average: 5 tokens in 9 bytes.
        assert_eq!(estimate.guess("wxyz\n"), 3);
    }

    #[test]
    fn without_the_tokens_bytes_a_guess_goes_by_length_with_more_slack() {
        let text = "ab\ncd\n";
        for bytes in [None, Some(pieces(&["ab", "\ncd"]))] {
            let estimate = TokenEstimate::measure(text, 3, bytes.as_deref());
            assert_eq!(estimate.guess("ab\ncd\nab\ncd\n"), 6);
            assert_eq!(estimate.slack(100), 15);
        }
    }
}
