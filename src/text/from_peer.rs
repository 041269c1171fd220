//! Text a peer (or whoever answers at its URL) chose: page titles, fault strings, error
//! lists. It reaches the state database, log lines and the operator's terminal, so it is
//! made plain and short before it is kept, and escaped again when printed: an ESC, CR or a
//! bidi override in it could otherwise clear the screen or forge table rows.

/// The longest peer name we store (Moodle's `mnet_host.name` shows about as much).
pub const NAME_MAX_CHARS: usize = 80;
/// The longest fault text or error entry we keep from a peer.
pub const FAULT_TEXT_MAX_CHARS: usize = 300;
/// The longest `last_error` stored for a peer.
pub const LAST_ERROR_MAX_CHARS: usize = 500;

/// Unicode controls that reorder or hide what a terminal shows.
fn is_format_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

fn is_unsafe(c: char) -> bool {
    c.is_control() || is_format_control(c)
}

/// Decode HTML character references: the few named ones a title uses and numeric ones.
/// Unknown references stay as they are.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        // A reference is short: look for its `;` in the next few bytes only, so a title of
        // a million `&` costs linear time, not quadratic.
        let decoded = rest.as_bytes()[1..]
            .iter()
            .take(11)
            .position(|b| *b == b';')
            .and_then(|end| entity(&rest[1..=end]).map(|c| (c, end + 2)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    let numeric = |digits: &str, radix| u32::from_str_radix(digits, radix).ok();
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let code = match name.strip_prefix('#')? {
                hex if hex.starts_with(['x', 'X']) => numeric(&hex[1..], 16),
                dec => numeric(dec, 10),
            }?;
            char::from_u32(code)
        }
    }
}

/// Unsafe characters as spaces, runs of whitespace as one space, trimmed, at most `max`
/// characters (an ellipsis marks a cut).
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for word in text
        .split(|c: char| c.is_whitespace() || is_unsafe(c))
        .filter(|w| !w.is_empty())
    {
        if count > 0 {
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count >= max {
                out.pop();
                out.push('…');
                return out;
            }
            out.push(c);
            count += 1;
        }
    }
    out
}

/// A peer-provided name as we store it: entities decoded, then no markup characters, no
/// controls, one line, at most [`NAME_MAX_CHARS`].
pub fn plain_name(raw: &str) -> String {
    let decoded = decode_entities(raw).replace(['<', '>'], "");
    one_line(&decoded, NAME_MAX_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_short() {
        assert_eq!(
            plain_name("  &lt;script&gt;alert(1)&lt;/script&gt; Site\u{1b}[2J\r\nX  "),
            "scriptalert(1)/script Site [2J X"
        );
        assert_eq!(
            plain_name("Fran&#231;ais &amp; &#xDC;bung"),
            "Français & Übung"
        );
        assert_eq!(plain_name("a\u{202E}b\u{0}c"), "a b c");
        assert_eq!(plain_name(&"x".repeat(500)).chars().count(), NAME_MAX_CHARS);
        assert_eq!(
            plain_name("R&D &unknown; &#xFFFFFFFF;"),
            "R&D &unknown; &#xFFFFFFFF;"
        );
    }

    #[test]
    fn one_line_cuts_with_an_ellipsis() {
        assert_eq!(one_line("a\n\n b\u{7}c", 10), "a b c");
        let cut = one_line(&"y".repeat(1000), 300);
        assert_eq!(cut.chars().count(), 300);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn terminal_escaping_shows_controls() {
        assert_eq!(crate::text::terminal("ok"), "ok");
        assert_eq!(crate::text::terminal("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\n");
        assert_eq!(crate::text::terminal("x\u{202e}y"), "x\\u{202e}y");
    }
}
