//! The rules for key text, written once.
//!
//! The runtime checks free `String` keys with them ([`check_key_text`]);
//! `#[derive(Kv)]` checks each declared key with them at compile time, by
//! calling [`key_problem`] in a constant of the generated code (the macro
//! crate cannot depend on this one). Change a rule here and both follow.
//!
//! [`check_key_text`]: crate::schema::check_key_text

/// The longest key text accepted, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 256;

// Const panics format only `&str`, so the messages are literals; a test
// keeps the length in `TOO_LONG` equal to `MAX_KEY_BYTES`.
const EMPTY: &str = "a key must not be empty; give it at least one character";
const TOO_LONG: &str = "a key is at most 256 bytes of UTF-8; shorten it";
const CONTROL: &str = "a key must not contain control characters (U+0000 to U+001F, \
     U+007F to U+009F); remove them from the key";

/// The rule `text` breaks, as a message saying what is wrong and what to
/// do, or `None` when `text` is a valid key: non-empty, at most
/// [`MAX_KEY_BYTES`] bytes of UTF-8, no control characters (general
/// category Cc, as [`char::is_control`]).
///
/// A `const fn` so that generated code can call it in a constant: a
/// declared key that breaks a rule is a compile error.
pub const fn key_problem(text: &str) -> Option<&'static str> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Some(EMPTY);
    }
    if bytes.len() > MAX_KEY_BYTES {
        return Some(TOO_LONG);
    }
    // Cc is U+0000..=U+001F and U+007F, one byte each in UTF-8, and
    // U+0080..=U+009F, the byte 0xC2 followed by 0x80..=0x9F. In UTF-8 the
    // bytes 0x00..=0x7F and 0xC2 only start a character, so matching them
    // byte by byte finds exactly these characters.
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let c1 = b == 0xC2 && i + 1 < bytes.len() && matches!(bytes[i + 1], 0x80..=0x9F);
        if b < 0x20 || b == 0x7F || c1 {
            return Some(CONTROL);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // Callable in a constant, as generated code calls it.
    const _: () = assert!(key_problem("banner").is_none());
    const _: () = assert!(key_problem("").is_some());

    /// The same rules written with `str` and `char` methods, in the order
    /// `key_problem` checks them.
    fn reference(text: &str) -> Option<&'static str> {
        if text.is_empty() {
            Some(EMPTY)
        } else if text.len() > MAX_KEY_BYTES {
            Some(TOO_LONG)
        } else if text.chars().any(char::is_control) {
            Some(CONTROL)
        } else {
            None
        }
    }

    fn agree(text: &str) {
        assert_eq!(key_problem(text), reference(text), "{text:?}");
    }

    #[test]
    fn agrees_with_char_is_control_on_every_char() {
        let mut buf = [0; 4];
        for c in char::MIN..=char::MAX {
            agree(c.encode_utf8(&mut buf));
        }
    }

    #[test]
    fn agrees_with_char_is_control_next_to_other_chars() {
        let multi_byte = [
            '\u{100}',   // C4 80: a continuation byte in 0x80..=0x9F
            '\u{7FF}',   // the last two-byte character
            '\u{800}',   // the first three-byte character
            '\u{2028}',  // line separator: not Cc
            '\u{200B}',  // zero-width space: not Cc
            '\u{2080}',  // E2 82 80
            '\u{D7FF}',  // before the surrogates
            '\u{E000}',  // after them
            '\u{FEFF}',  // byte order mark: Cf, not Cc
            '\u{FFFD}',  // replacement character
            '\u{FFFF}',  // the last three-byte character
            '\u{10000}', // the first four-byte character
            '\u{1F600}', // an emoji
            '\u{10FFFF}',
        ];
        let latin1 = (0u32..=0xFF).map(|n| char::from_u32(n).expect("U+0000..=U+00FF are chars"));
        let mut controls = 0;
        for c in latin1.chain(multi_byte) {
            controls += usize::from(c.is_control());
            for text in [
                c.to_string(),
                format!("a{c}"),
                format!("{c}b"),
                format!("a{c}b"),
                format!("é{c}\u{100}"),
            ] {
                agree(&text);
            }
        }
        // U+0000..=U+001F, U+007F, U+0080..=U+009F.
        assert_eq!(controls, 32 + 1 + 32);
    }

    #[test]
    fn agrees_on_lengths() {
        for len in [0, 1, 255, 256, 257] {
            agree(&"x".repeat(len));
        }
        // Two-byte characters: 256 and 258 bytes.
        agree(&"é".repeat(128));
        agree(&"é".repeat(129));
        // 257 bytes: long wins over a control character, as in `reference`.
        agree(&format!("{}\u{7}", "x".repeat(256)));
        assert!(key_problem(&"x".repeat(MAX_KEY_BYTES)).is_none());
        assert!(key_problem(&"x".repeat(MAX_KEY_BYTES + 1)).is_some());
    }

    #[test]
    fn the_length_message_names_max_key_bytes() {
        assert!(TOO_LONG.contains(&format!("at most {MAX_KEY_BYTES} bytes")));
    }
}
