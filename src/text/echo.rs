//! Caller input quoted back in an error (a web-service `debuginfo`, an MNET fault or
//! use_stats error) is cut: a caller may send megabytes, and an answer that repeats them
//! whole amplifies the request and fills the caller's logs. Enough is kept to recognise
//! the value.

/// Characters of one echoed value kept before the ellipsis.
pub const ECHO_CHARS: usize = 100;

/// Characters kept of a parser's error message, which may quote the input in places we do
/// not format ourselves (an element name, an entity, a number's text).
pub const ERROR_CHARS: usize = 2 * ECHO_CHARS;

/// `value` as it may appear in an answer: at most [`ECHO_CHARS`] characters, then `…` when
/// something was cut.
pub fn echo(value: &str) -> String {
    cut(value, ECHO_CHARS)
}

/// `text` cut to `max` characters, with `…` when something was cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// A parser's error message as it may appear in an answer.
pub fn error_text(error: &impl std::fmt::Display) -> String {
    cut(&error.to_string(), ERROR_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        assert_eq!(echo("short"), "short");
        let exact = "é".repeat(ECHO_CHARS);
        assert_eq!(echo(&exact), exact);
        let long = "é".repeat(ECHO_CHARS + 1);
        let cut = echo(&long);
        assert_eq!(cut.chars().count(), ECHO_CHARS + 1);
        assert!(cut.ends_with("é…"));
    }
}
