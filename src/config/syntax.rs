//! A syntax error in the configuration file, said on one line.

/// toml's own message draws the line with a caret under the place, over several lines; the
/// CLI prints errors on one line (escaping control characters), where that drawing became
/// literal `\n`s. The place is said as "line L, column C" and the line's text instead.
pub(super) fn one_line(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim_end().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            // The line itself, which names the key.
            let shown: String = text
                .lines()
                .nth(line - 1)
                .unwrap_or("")
                .trim()
                .chars()
                .take(80)
                .collect();
            format!("line {line}, column {column} (`{shown}`): {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;

    #[test]
    fn a_syntax_error_is_one_line_naming_its_place() {
        let err = parse("[site]\nwwwroot = \"https://x.org\"\n[engine\nfoo = 1\n").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("line 3, column 8"), "{text}");
        // A place past a multi-byte character is still found, and nothing panics.
        let err = parse("# é\n[site]\nwwwroot = \"https://x.org\"\nx = = 1\n").unwrap_err();
        assert!(err.to_string().contains("line 4"), "{err}");
    }
}
