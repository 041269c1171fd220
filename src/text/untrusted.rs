//! Text that came from the network before (or without) authentication: a method name, a
//! claimed wwwroot, a username. Written raw, a newline in it forges a log line or an audit
//! row, and an escape sequence reaches the operator's terminal; unbounded, it fills the log.
//! Everything such text passes through on its way to a log, the audit or a terminal goes
//! through [`escape`].

/// Longest field kept in a log line or an audit column, in characters, before the cut mark.
pub const MAX_FIELD_CHARS: usize = 200;

/// `text` with every character that could start a new line or steer a terminal written as
/// a visible escape (`\n`, `\u{1b}`), backslashes doubled so an escape cannot be faked, and
/// cut to `max` characters with a trailing `…` when longer.
pub fn escape(text: &str, max: usize) -> String {
    escape_with(text, max, true)
}

/// Controls made visible without doubling backslashes (the text may have been escaped
/// already when stored) and without a cut: [`super::terminal`].
pub(super) fn escape_visible(text: &str) -> String {
    escape_with(text, usize::MAX, false)
}

fn escape_with(text: &str, max: usize, double_backslashes: bool) -> String {
    let mut out = String::with_capacity(text.len().min(max.saturating_mul(2)));
    for (count, c) in text.chars().enumerate() {
        if count >= max {
            out.push('…');
            break;
        }
        match c {
            '\\' if double_backslashes => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_dangerous(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// [`escape`] with the usual bound of a log or audit field.
pub fn field(text: &str) -> String {
    escape(text, MAX_FIELD_CHARS)
}

/// Controls (C0, DEL, C1: ESC, CSI, OSC, BEL…), line and paragraph separators, and the
/// bidirectional overrides that make a terminal show text in another order than stored.
fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(
            escape("a\nb\r\u{1b}[2J\u{7}\\n\u{9b}\u{202e}", 100),
            "a\\nb\\r\\u{1b}[2J\\u{7}\\\\n\\u{9b}\\u{202e}"
        );
        assert_eq!(escape("plain/text.php", 100), "plain/text.php");
        assert_eq!(escape("héllo", 100), "héllo");
        assert_eq!(
            escape("a\u{61c}b", 100),
            "a\\u{61c}b",
            "the Arabic letter mark reorders text"
        );
        assert_eq!(super::super::terminal("a\\nb\u{1b}"), "a\\nb\\u{1b}");
    }

    #[test]
    fn long_text_is_cut_with_a_mark() {
        assert_eq!(escape("abcdef", 3), "abc…");
        assert_eq!(escape("abc", 3), "abc");
        assert!(field(&"x".repeat(10_000)).chars().count() <= MAX_FIELD_CHARS + 1);
    }
}
