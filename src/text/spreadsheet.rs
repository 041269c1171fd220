//! Text bound for a spreadsheet: every text cell of a CSV, XLSX or ODS export goes through
//! [`defuse`] (`reports::export`), and a CSV cell through [`csv_cell`] too.
//!
//! A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (and some also one that
//! starts with a tab or a carriage return) as a formula. Which characters split a line into
//! cells depends on the locale and on what the person picks when opening the file: a comma, a
//! semicolon or a tab. A cell that this file quotes as one cell is several cells to a
//! spreadsheet splitting on another separator, and its quotes then mean nothing. So a text is
//! defused at every place where a cell could begin under any of those separators (its start,
//! and after each separator or line break), not only at its start (docs/console.md,
//! "Exports"). XLSX and ODS cells are written as strings, never formulas, and are defused all
//! the same: a cell copied out of them, or the sheet saved again as CSV, carries the text as
//! it is. The names come from a Moodle site's users, who set their own.

/// Characters that may split a line into cells, in some locale or by choice.
const SEPARATORS: [char; 3] = [',', ';', '\t'];

/// What makes a spreadsheet read a cell as a formula when the cell starts with it.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One CSV cell holding `text`: defused (a `'` before every place a formula could start) and
/// quoted when it holds a separator of any locale, a quote or a line break.
pub fn csv_cell(text: &str) -> String {
    let defused = defuse(text);
    if defused.contains(|c: char| SEPARATORS.contains(&c) || matches!(c, '"' | '\r' | '\n')) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// `text` with a `'` inserted where a cell may begin and a formula character follows (quotes
/// and spaces a spreadsheet may drop in between are skipped over when looking). Text with no
/// such place is returned unchanged.
pub fn defuse(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    let mut at_cell_start = true;
    for (i, c) in text.char_indices() {
        if at_cell_start && starts_formula(&text[i..]) {
            out.push('\'');
        }
        out.push(c);
        at_cell_start = SEPARATORS.contains(&c) || matches!(c, '\r' | '\n');
    }
    out
}

/// Whether a cell beginning with `rest` would be a formula: its first character other than
/// a quote or a space is one of [`FORMULA_STARTS`].
fn starts_formula(rest: &str) -> bool {
    rest.trim_start_matches(['"', ' '])
        .starts_with(FORMULA_STARTS)
}

/// A CSV line of cells already encoded (numbers as they are, text through [`csv_cell`]):
/// comma-separated and ended with CRLF (RFC 4180).
pub fn csv_line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = cells
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_left_alone() {
        for text in [
            "",
            "Katrin",
            "Jean-Luc",
            "O'Brien",
            "a=b",
            "x@y.org",
            "Müller 1+1",
        ] {
            assert_eq!(csv_cell(text), text);
        }
    }

    #[test]
    fn a_formula_at_the_start_is_defused() {
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "\"'\tx\"");
        assert_eq!(csv_cell("\rx"), "\"'\rx\"");
        assert_eq!(
            csv_cell(" =1"),
            "' =1",
            "a leading space a spreadsheet may trim"
        );
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    }

    #[test]
    fn a_formula_after_any_separator_is_defused_and_the_cell_quoted() {
        // The attack of issue 22, N4: split on `;`, the second cell is `=1+1`.
        assert_eq!(csv_cell("a;=1+1"), "\"a;'=1+1\"");
        assert_eq!(csv_cell("a,=1+1"), "\"a,'=1+1\"");
        assert_eq!(csv_cell("a\t=1+1"), "\"a\t'=1+1\"");
        assert_eq!(csv_cell("a\n@x"), "\"a\n'@x\"");
        assert_eq!(csv_cell("a;\"=1\""), "\"a;'\"\"=1\"\"\"");
        assert_eq!(csv_cell("a; -1"), "\"a;' -1\"");
        assert_eq!(csv_cell(";;=1"), "\";;'=1\"");
        // A separator alone only needs quoting.
        assert_eq!(csv_cell("a;b"), "\"a;b\"");
        assert_eq!(csv_cell("A, \"B\""), "\"A, \"\"B\"\"\"");
    }

    #[test]
    fn no_cell_of_the_result_starts_a_formula_under_any_separator() {
        let hostile = [
            "a;=1+1",
            "x,+cmd|' /C calc'!A0",
            "\"=1\";\"=2\"",
            "-2;@3\t=4\r\n+5",
            "; ;\"\" =x",
        ];
        for text in hostile {
            let cell = csv_cell(text);
            for separator in [',', ';', '\t', '\n', '\r'] {
                for part in cell.split(separator) {
                    let bare = part.trim_start_matches(['"', ' ']);
                    assert!(
                        !bare.starts_with(['=', '+', '-', '@']),
                        "{text:?} → {cell:?}: {part:?} split on {separator:?}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        /// Under any separator, no cell of a defused text starts a formula: every place a
        /// cell may begin (the start, after a separator or a line break), skipping the quotes
        /// and spaces a spreadsheet may drop, is not a formula character.
        #[test]
        fn defused_text_starts_no_formula(text in "[=+@\\-\t\r\n,; \"a1]{0,24}") {
            let defused = defuse(&text);
            let mut at_start = true;
            for (i, c) in defused.char_indices() {
                if at_start {
                    let rest = defused[i..].trim_start_matches(['"', ' ']);
                    proptest::prop_assert!(
                        !rest.starts_with(FORMULA_STARTS),
                        "{:?} → {:?} at {}", text, defused, i
                    );
                }
                at_start = SEPARATORS.contains(&c) || matches!(c, '\r' | '\n');
            }
        }

        /// Defusing only inserts `'`, one at most per formula character, and leaves text
        /// without any formula character as it is.
        #[test]
        fn defusing_only_adds_quotes(text in "\\PC{0,30}") {
            let defused = defuse(&text);
            proptest::prop_assert_eq!(defused.replace('\'', ""), text.replace('\'', ""));
            let added = defused.matches('\'').count() - text.matches('\'').count();
            proptest::prop_assert!(added <= text.matches(FORMULA_STARTS).count());
            if !text.contains(FORMULA_STARTS) {
                proptest::prop_assert_eq!(&defused, &text);
            }
        }
    }

    #[test]
    fn lines_are_comma_separated_and_end_with_crlf() {
        assert_eq!(csv_line(&["1", &csv_cell("a;b"), ""]), "1,\"a;b\",\r\n");
    }
}
