//! ODS (OpenDocument spreadsheet, ODF 1.2), written here with the `zip` crate and quick-xml's
//! escaping: the one ODS crate that fits (spreadsheet-ods) brings a second zip, a second
//! quick-xml, chrono and nom for what is three small files (docs/console.md, "Exports").
//!
//! The archive is what ODF asks of a package: `mimetype` first, stored uncompressed, so that
//! a reader can tell the type from the first bytes; then `META-INF/manifest.xml` and
//! `content.xml`. Text cells are strings (`office:value-type="string"`), never formulas;
//! durations are `time` values (`PT1H02M05S`) shown `[h]:mm:ss`; times are `date` values
//! shown as ISO 8601. Each cell's `<text:p>` holds what CSV holds, for readers that show the
//! text rather than the value.

use std::io::{Cursor, Write};

use quick_xml::escape::escape;
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use super::{Cell, SHEET_NAME, Sheet};
use crate::text::spreadsheet::defuse;
use crate::timefmt;

pub(super) const MIMETYPE: &str = "application/vnd.oasis.opendocument.spreadsheet";

const MANIFEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">
 <manifest:file-entry manifest:full-path="/" manifest:version="1.2" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
</manifest:manifest>
"#;

/// The document up to the first row: namespaces, and the styles of headers, durations (hours
/// past 24 kept: `truncate-on-overflow="false"`) and ISO times.
const CONTENT_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0" xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" office:version="1.2">
<office:automatic-styles>
<number:time-style style:name="N-hms" number:truncate-on-overflow="false"><number:hours/><number:text>:</number:text><number:minutes number:style="long"/><number:text>:</number:text><number:seconds number:style="long"/></number:time-style>
<number:date-style style:name="N-iso"><number:year number:style="long"/><number:text>-</number:text><number:month number:style="long"/><number:text>-</number:text><number:day number:style="long"/><number:text>T</number:text><number:hours number:style="long"/><number:text>:</number:text><number:minutes number:style="long"/><number:text>:</number:text><number:seconds number:style="long"/><number:text>Z</number:text></number:date-style>
<style:style style:name="head" style:family="table-cell"><style:text-properties fo:font-weight="bold"/></style:style>
<style:style style:name="hms" style:family="table-cell" style:data-style-name="N-hms"/>
<style:style style:name="iso" style:family="table-cell" style:data-style-name="N-iso"/>
</office:automatic-styles>
<office:body><office:spreadsheet>
"#;

const CONTENT_TAIL: &str =
    "</table:table></office:spreadsheet></office:body></office:document-content>\n";

pub(super) fn write(sheet: &Sheet) -> Result<Vec<u8>, super::ExportError> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    zip.start_file("mimetype", stored)?;
    zip.write_all(MIMETYPE.as_bytes())?;
    zip.start_file("META-INF/manifest.xml", deflated)?;
    zip.write_all(MANIFEST.as_bytes())?;
    zip.start_file("content.xml", deflated)?;
    zip.write_all(content(sheet).as_bytes())?;
    Ok(zip.finish()?.into_inner())
}

fn content(sheet: &Sheet) -> String {
    let mut out = String::from(CONTENT_HEAD);
    out.push_str(&format!(r#"<table:table table:name="{SHEET_NAME}">"#));
    out.push_str(&format!(
        r#"<table:table-column table:number-columns-repeated="{}"/>"#,
        sheet.headers.len().max(1)
    ));
    out.push_str("<table:table-row>");
    for header in &sheet.headers {
        out.push_str(&format!(
            r#"<table:table-cell table:style-name="head" office:value-type="string"><text:p>{}</text:p></table:table-cell>"#,
            paragraph(&defuse(header))
        ));
    }
    out.push_str("</table:table-row>\n");
    for row in &sheet.rows {
        out.push_str("<table:table-row>");
        for c in row {
            out.push_str(&cell(c));
        }
        out.push_str("</table:table-row>\n");
    }
    out.push_str(CONTENT_TAIL);
    out
}

fn cell(value: &Cell) -> String {
    match value {
        Cell::Text(text) => format!(
            r#"<table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell>"#,
            paragraph(&defuse(text))
        ),
        Cell::Number(n) => format!(
            r#"<table:table-cell office:value-type="float" office:value="{n}"><text:p>{n}</text:p></table:table-cell>"#
        ),
        Cell::Empty => "<table:table-cell/>".to_string(),
        Cell::Duration(seconds) => {
            let s = (*seconds).max(0);
            format!(
                r#"<table:table-cell table:style-name="hms" office:value-type="time" office:time-value="PT{}H{:02}M{:02}S"><text:p>{}</text:p></table:table-cell>"#,
                s / 3600,
                (s / 60) % 60,
                s % 60,
                timefmt::hms(s)
            )
        }
        Cell::Time(t) => match timefmt::iso(*t) {
            // ODF's date values are xsd:dateTime without a zone: the Z goes in the style.
            Some(iso) => format!(
                r#"<table:table-cell table:style-name="iso" office:value-type="date" office:date-value="{}"><text:p>{iso}</text:p></table:table-cell>"#,
                iso.trim_end_matches('Z')
            ),
            None => cell(&Cell::Number(*t)),
        },
    }
}

/// Text as the content of a `<text:p>`: escaped; characters XML 1.0 cannot carry (most C0
/// controls) as U+FFFD; spaces a reader would collapse (leading, or after another space) as
/// `<text:s/>`, tabs and line breaks as their elements, so the cell holds the text as it is.
fn paragraph(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let mut after_space = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let element = match c {
            ' ' if after_space => Some("<text:s/>"),
            '\t' => Some("<text:tab/>"),
            '\r' if chars.peek() == Some(&'\n') => Some(""),
            '\n' | '\r' => Some("<text:line-break/>"),
            _ => None,
        };
        match element {
            Some(element) => {
                out.push_str(&escape(run.as_str()));
                run.clear();
                out.push_str(element);
            }
            None if is_xml_char(c) => run.push(c),
            None => run.push('\u{FFFD}'),
        }
        after_space = c == ' ' || matches!(element, Some(e) if !e.is_empty());
    }
    out.push_str(&escape(run.as_str()));
    out
}

/// XML 1.0's `Char`, less what Rust's `char` already rules out (surrogates).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_keep_spaces_and_lose_nothing_but_invalid_characters() {
        assert_eq!(paragraph("a b"), "a b");
        assert_eq!(paragraph("  a  b"), "<text:s/><text:s/>a <text:s/>b");
        assert_eq!(
            paragraph("a\tb\r\nc\rd"),
            "a<text:tab/>b<text:line-break/>c<text:line-break/>d"
        );
        assert_eq!(paragraph("<&>\"'"), "&lt;&amp;&gt;&quot;&apos;");
        assert_eq!(paragraph("a\u{1}b\u{FFFF}"), "a\u{FFFD}b\u{FFFD}");
    }
}
