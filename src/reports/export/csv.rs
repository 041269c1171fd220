//! CSV (RFC 4180: comma, CRLF, UTF-8): integers as they are, durations as `h:mm:ss` and times
//! as ISO 8601 text, every text cell defused and quoted as `text::spreadsheet` does it.

use super::{Cell, Sheet};
use crate::text::spreadsheet::{csv_cell, csv_line};
use crate::timefmt;

pub(super) fn write(sheet: &Sheet) -> Vec<u8> {
    let headers: Vec<String> = sheet.headers.iter().map(|h| csv_cell(h)).collect();
    let mut out = csv_line(&headers);
    for row in &sheet.rows {
        let cells: Vec<String> = row.iter().map(cell).collect();
        out.push_str(&csv_line(&cells));
    }
    out.into_bytes()
}

fn cell(cell: &Cell) -> String {
    match cell {
        Cell::Text(text) => csv_cell(text),
        Cell::Number(n) => n.to_string(),
        Cell::Empty => String::new(),
        Cell::Duration(seconds) => timefmt::hms(*seconds),
        // A time no date can show (before 1970, after 9999) keeps its number.
        Cell::Time(t) => timefmt::iso(*t).unwrap_or_else(|| t.to_string()),
    }
}
