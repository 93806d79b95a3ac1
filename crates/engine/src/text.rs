//! Token ids back to text, including characters split across tokens.
//!
//! Byte-level BPE vocabularies map tokens to *bytes*, and a multi-byte UTF-8
//! character (`é`, `✓`, an emoji) is often spread over two or more tokens.
//! Printing each token's bytes on its own would show replacement characters;
//! [`TokenDecoder`] holds back an incomplete character until the tokens that
//! finish it arrive, and [`detokenize`] decodes a whole sequence at once.

use crate::{Engine, EngineError, Token};

/// Incremental UTF-8 decoding of a byte stream that may split characters.
///
/// Complete characters are returned as soon as their last byte arrives;
/// bytes that can never form a valid character become U+FFFD.
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append `bytes` and return the text they complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(err) => {
                    let (valid, after) = rest.split_at(err.valid_up_to());
                    text.push_str(std::str::from_utf8(valid).expect("checked prefix"));
                    match err.error_len() {
                        // Invalid bytes: replace them and go on.
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        // An incomplete character at the end: wait for more.
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        text
    }

    /// Whether an incomplete character is being held back.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// End the stream: an incomplete trailing character becomes U+FFFD.
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }
}

/// Streams text out of generated tokens, one token at a time.
pub struct TokenDecoder<'e> {
    engine: &'e dyn Engine,
    stream: Utf8Stream,
}

impl<'e> TokenDecoder<'e> {
    /// A decoder using `engine`'s vocabulary.
    pub fn new(engine: &'e dyn Engine) -> Self {
        Self {
            engine,
            stream: Utf8Stream::new(),
        }
    }

    /// Add one token; returns the text it completes (possibly empty while a
    /// split character is pending).
    pub fn push(&mut self, token: Token) -> Result<String, EngineError> {
        let bytes = self.engine.token_bytes(token)?;
        Ok(self.stream.push(&bytes))
    }

    /// Flush what is left (an incomplete character becomes U+FFFD).
    pub fn finish(self) -> String {
        self.stream.finish()
    }
}

/// The text of `tokens`, decoded as one byte string (special tokens are
/// rendered as their text, e.g. `<|im_end|>`).
pub fn detokenize(engine: &dyn Engine, tokens: &[Token]) -> Result<String, EngineError> {
    let mut bytes = Vec::new();
    for &token in tokens {
        bytes.extend(engine.token_bytes(token)?);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_split_characters() {
        let text = "a é ✓ 🦀!";
        let bytes = text.as_bytes();
        // Feed one byte at a time: every piece is valid text, and together
        // they are the original.
        let mut stream = Utf8Stream::new();
        let pieces: Vec<String> = bytes.iter().map(|&b| stream.push(&[b])).collect();
        assert!(!stream.has_pending());
        assert_eq!(pieces.concat(), text);
        assert!(pieces
            .iter()
            .all(|p| !p.contains(char::REPLACEMENT_CHARACTER)));
        // The crab's four bytes come out together, on the last one.
        let crab_end = text.find('🦀').unwrap() + 3;
        assert_eq!(pieces[crab_end], "🦀");
        assert_eq!(pieces[crab_end - 1], "");
    }

    #[test]
    fn replaces_invalid_bytes_without_stalling() {
        let mut stream = Utf8Stream::new();
        assert_eq!(stream.push(b"ok\xff then"), "ok\u{FFFD} then");
        assert_eq!(stream.push(b"\xe2\x9c"), "");
        assert!(stream.has_pending());
        assert_eq!(stream.finish(), "\u{FFFD}");
    }
}
