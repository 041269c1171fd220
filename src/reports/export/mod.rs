//! Exports: a report as one sheet of typed cells, written as CSV, XLSX or ODS, one writer per
//! format. `usestats report --format csv|xlsx|ods` and the console's downloads both build
//! the sheet here and call [`write()`], so a file has the same columns and cells whichever asked
//! (docs/console.md, "Exports").
//!
//! Every raw column (seconds, unix times) keeps its place; the human columns (`…_hms`,
//! `…_iso`) come after them, so a reader of the older files, by name or by position, still
//! finds what it read. Every text cell is defused for every spreadsheet
//! ([`crate::text::spreadsheet::defuse`]).

mod csv;
mod ods;
mod xlsx;

use crate::stats::Window;
use crate::timefmt;

/// The formats a report is exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
    Ods,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Ods => "ods",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Ods => ods::MIMETYPE,
        }
    }

    /// A zip archive, not text: never written to a terminal.
    pub fn is_binary(self) -> bool {
        self != Format::Csv
    }
}

/// One cell, typed so that each format writes it as its own kind of value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Text from anywhere (names come from the site's users): always defused, always a string.
    Text(String),
    /// A count, an id, a number of seconds or a unix time as a plain integer.
    Number(i64),
    Empty,
    /// Seconds shown as `h:mm:ss`: text in CSV, a real duration in XLSX and ODS.
    Duration(i64),
    /// A unix time shown as ISO 8601 in UTC: text in CSV, a real date and time in XLSX and ODS.
    Time(i64),
}

impl Cell {
    /// The raw column of a time that may be missing: its unix time, or nothing.
    pub fn unix(t: Option<i64>) -> Cell {
        t.map_or(Cell::Empty, Cell::Number)
    }

    /// The human column of a time that may be missing.
    pub fn iso(t: Option<i64>) -> Cell {
        t.map_or(Cell::Empty, Cell::Time)
    }
}

/// A table: a row of headers, then rows of cells (each as long as the headers).
#[derive(Debug, Clone, Default)]
pub struct Sheet {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// The sheet's name inside an XLSX or ODS file.
const SHEET_NAME: &str = "learners";

/// Why an export could not be written (only a writer's own failure: no input is refused).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing the XLSX file: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("writing the ODS file: {0}")]
    Ods(#[from] zip::result::ZipError),
    #[error("writing the ODS file: {0}")]
    Io(#[from] std::io::Error),
}

/// The sheet's bytes in `format`.
pub fn write(sheet: &Sheet, format: Format) -> Result<Vec<u8>, ExportError> {
    match format {
        Format::Csv => Ok(write_csv(sheet)),
        Format::Xlsx => xlsx::write(sheet),
        Format::Ods => ods::write(sheet),
    }
}

/// The sheet as CSV, which cannot fail: it only appends to a string.
pub fn write_csv(sheet: &Sheet) -> Vec<u8> {
    csv::write(sheet)
}

/// A file name that says what the file holds and over which days:
/// `course-BIO101-2026-06-01_2026-06-30.xlsx`. The days are inclusive: the second is the day
/// of the window's end, which the window includes (a date given as "to" runs through its last
/// second, 23:59:59 UTC); a window from the beginning of the log says `start`. `name` keeps its letters and digits (any script) and `-`, `_`, `.`; anything
/// else, a path separator included, becomes `_`. The HTTP layer adds the ASCII-only form.
pub fn file_name(kind: &str, name: &str, window: &Window, format: Format) -> String {
    let day = |t: i64| timefmt::date(t).unwrap_or_else(|| t.to_string());
    let first = if window.from == 0 {
        "start".to_string()
    } else {
        day(window.from)
    };
    let last = day(window.to.max(window.from));
    format!(
        "{kind}-{}-{first}_{last}.{}",
        file_part(name),
        format.extension()
    )
}

/// Longest part a name gives a file name, in characters: file systems allow 255 bytes.
const NAME_PART_CHARS: usize = 60;

/// `name` as part of a file name: runs of other characters as one `_`, no `_` or `.` at
/// either end (so never `..` or a hidden file), `unnamed` when nothing is left.
fn file_part(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
            c
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let cut: String = out.chars().take(NAME_PART_CHARS).collect();
    let trimmed = cut.trim_matches(['_', '.']);
    if trimmed.is_empty() {
        "unnamed".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(from: &str, to: &str) -> Window {
        let t = |s: &str| timefmt::parse_time(s).unwrap();
        Window {
            from: if from.is_empty() { 0 } else { t(from) },
            to: t(to),
            now: t(to),
        }
    }

    #[test]
    fn the_window_is_in_the_file_name_with_inclusive_days() {
        let june = window("2026-06-01", "2026-06-30T23:59:59Z");
        assert_eq!(
            file_name("course", "BIO101", &june, Format::Xlsx),
            "course-BIO101-2026-06-01_2026-06-30.xlsx"
        );
        let to_noon = window("2026-06-01", "2026-06-15T12:00:00Z");
        assert_eq!(
            file_name("course", "B", &to_noon, Format::Ods),
            "course-B-2026-06-01_2026-06-15.ods"
        );
        let all = window("", "2026-06-15T12:00:00Z");
        assert_eq!(
            file_name("course", "B", &all, Format::Csv),
            "course-B-start_2026-06-15.csv"
        );
        let empty = window("2026-06-01", "2026-06-01");
        assert_eq!(
            file_name("course", "B", &empty, Format::Csv),
            "course-B-2026-06-01_2026-06-01.csv"
        );
    }

    #[test]
    fn names_are_cleaned_for_a_file_system() {
        let w = window("2026-06-01", "2026-06-01T23:59:59Z");
        for (name, part) in [
            ("../../etc/passwd", "etc_passwd"),
            ("Économie 1ère année", "Économie_1ère_année"),
            ("a/b\\c:d*e?f\"g<h>i|j", "a_b_c_d_e_f_g_h_i_j"),
            ("=HYPERLINK(\"x\")", "HYPERLINK_x"),
            ("\u{202e}\n\t", "unnamed"),
            ("", "unnamed"),
            ("...", "unnamed"),
        ] {
            assert_eq!(
                file_name("course", name, &w, Format::Csv),
                format!("course-{part}-2026-06-01_2026-06-01.csv"),
                "{name:?}"
            );
        }
        let long = "x".repeat(500);
        assert!(file_name("course", &long, &w, Format::Csv).len() < 100);
    }
}
