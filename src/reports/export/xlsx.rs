//! XLSX through rust_xlsxwriter (docs/console.md, "Exports"): text as shared strings (never a
//! formula), integers as numbers, durations as numbers of days shown `[h]:mm:ss` (Excel's own
//! duration, which sums and sorts), times as date cells shown as ISO 8601 in UTC.

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};

use super::{Cell, SHEET_NAME, Sheet};
use crate::text::spreadsheet::defuse;

const SECONDS_PER_DAY: f64 = 86_400.0;

pub(super) fn write(sheet: &Sheet) -> Result<Vec<u8>, super::ExportError> {
    let mut book = Workbook::new();
    let page = book.add_worksheet();
    page.set_name(SHEET_NAME)?;
    let bold = Format::new().set_bold();
    let duration = Format::new().set_num_format("[h]:mm:ss");
    let date = Format::new().set_num_format("yyyy-mm-dd\"T\"hh:mm:ss\"Z\"");
    for (col, header) in (0u16..).zip(&sheet.headers) {
        page.write_string_with_format(0, col, defuse(header), &bold)?;
        // Wide enough for a date and a name; Excel has no "fit" in the file itself.
        page.set_column_width(col, 14)?;
    }
    page.set_freeze_panes(1, 0)?;
    for (row, cells) in (1u32..).zip(&sheet.rows) {
        for (col, cell) in (0u16..).zip(cells) {
            match cell {
                Cell::Text(text) => {
                    page.write_string(row, col, defuse(text))?;
                }
                // Ids, counts and unix times are far below 2^53, exact as a double.
                Cell::Number(n) => {
                    page.write_number(row, col, *n as f64)?;
                }
                Cell::Empty => {}
                Cell::Duration(seconds) => {
                    let days = (*seconds).max(0) as f64 / SECONDS_PER_DAY;
                    page.write_number_with_format(row, col, days, &duration)?;
                }
                Cell::Time(t) => match ExcelDateTime::from_timestamp(*t) {
                    Ok(at) => {
                        page.write_datetime_with_format(row, col, &at, &date)?;
                    }
                    // Its only error: outside Excel's dates (1900 to 9999). The number, as
                    // CSV gives it.
                    Err(_) => {
                        page.write_number(row, col, *t as f64)?;
                    }
                },
            }
        }
    }
    Ok(book.save_to_buffer()?)
}
