//! Opening the spreadsheets usestats exports, as a reader would: unzip, parse the XML, and
//! give every cell's type, value, shown text and whether it is a formula. Shared by
//! tests/exports.rs and the browser task in exports.rs; no usestats code is used to read.

use std::collections::BTreeMap;
use std::io::Read as _;

use quick_xml::XmlVersion;
use quick_xml::events::Event;

/// One cell as the file holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    /// XLSX: the `t` attribute (`s` shared string, `n` number, `str` formula text…);
    /// ODS: `office:value-type` (`string`, `float`, `time`, `date`). Empty for an empty cell.
    pub kind: String,
    /// XLSX: `<v>`; ODS: `office:value`, `office:time-value` or `office:date-value`.
    pub value: String,
    /// The text: the shared string (XLSX) or the `<text:p>` (ODS).
    pub text: String,
    pub formula: bool,
    /// XLSX: the style index (`s`), ODS: `table:style-name`.
    pub style: String,
}

/// A parsed XML element: name, attributes, and its children in order.
#[derive(Debug, Default)]
pub struct Node {
    pub name: String,
    pub attrs: BTreeMap<String, String>,
    pub children: Vec<Child>,
}

#[derive(Debug)]
pub enum Child {
    Node(Node),
    Text(String),
}

impl Node {
    pub fn nodes(&self, name: &str) -> impl Iterator<Item = &Node> {
        self.children.iter().filter_map(move |c| match c {
            Child::Node(n) if n.name == name => Some(n),
            _ => None,
        })
    }

    /// The first element named `name` anywhere below.
    pub fn find(&self, name: &str) -> Option<&Node> {
        self.children.iter().find_map(|c| match c {
            Child::Node(n) if n.name == name => Some(n),
            Child::Node(n) => n.find(name),
            Child::Text(_) => None,
        })
    }

    pub fn attr(&self, name: &str) -> String {
        self.attrs.get(name).cloned().unwrap_or_default()
    }

    /// The text below, ODF's space, tab and line-break elements read as what they stand for.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for child in &self.children {
            match child {
                Child::Text(t) => out.push_str(t),
                Child::Node(n) if n.name == "text:s" => {
                    let count = n.attrs.get("text:c").map_or(1, |c| c.parse().unwrap());
                    out.push_str(&" ".repeat(count));
                }
                Child::Node(n) if n.name == "text:tab" => out.push('\t'),
                Child::Node(n) if n.name == "text:line-break" => out.push('\n'),
                Child::Node(n) => out.push_str(&n.text()),
            }
        }
        out
    }
}

/// Parses a whole XML document; panics unless it is well-formed.
pub fn parse(xml: &str) -> Node {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack = vec![Node::default()];
    loop {
        let event = reader.read_event().expect("well-formed XML");
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let mut node = Node {
                    name: e.name().as_ref().to_string(),
                    ..Default::default()
                };
                for a in e.attributes() {
                    let a = a.expect("a well-formed attribute");
                    let value = a.normalized_value(XmlVersion::Implicit1_0).unwrap();
                    let key = a.key.as_ref().to_string();
                    node.attrs.insert(key, value.into_owned());
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(node);
                } else {
                    stack.last_mut().unwrap().children.push(Child::Node(node));
                }
            }
            Event::End(_) => {
                let node = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(Child::Node(node));
            }
            Event::Text(t) => {
                let text = t.xml_content(XmlVersion::Implicit1_0).into_owned();
                stack.last_mut().unwrap().children.push(Child::Text(text));
            }
            Event::GeneralRef(r) => {
                let name = r.to_string();
                let resolved = match name.as_str() {
                    "amp" => "&".to_string(),
                    "lt" => "<".to_string(),
                    "gt" => ">".to_string(),
                    "quot" => "\"".to_string(),
                    "apos" => "'".to_string(),
                    n if n.starts_with("#x") => {
                        char::from_u32(u32::from_str_radix(&n[2..], 16).unwrap())
                            .unwrap()
                            .to_string()
                    }
                    n if n.starts_with('#') => {
                        char::from_u32(n[1..].parse().unwrap()).unwrap().to_string()
                    }
                    other => panic!("unknown entity {other:?}"),
                };
                stack
                    .last_mut()
                    .unwrap()
                    .children
                    .push(Child::Text(resolved));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "elements left open");
    stack.pop().unwrap()
}

/// A zip archive's entries: name, compression method (0 stored, 8 deflated), bytes.
pub fn unzip(bytes: &[u8]) -> Vec<(String, u16, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip archive");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut data = Vec::new();
            file.read_to_end(&mut data).unwrap();
            let method = match file.compression() {
                zip::CompressionMethod::Stored => 0,
                zip::CompressionMethod::Deflated => 8,
                other => panic!("unexpected compression {other:?}"),
            };
            (file.name().unwrap().to_string(), method, data)
        })
        .collect()
}

fn entry(entries: &[(String, u16, Vec<u8>)], name: &str) -> String {
    let (_, _, data) = entries
        .iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in the archive"));
    String::from_utf8(data.clone()).unwrap()
}

/// The first sheet of an XLSX workbook, row by row, and its styles.xml.
pub fn xlsx(bytes: &[u8]) -> (Vec<Vec<Cell>>, String) {
    let entries = unzip(bytes);
    let shared: Vec<String> = parse(&entry(&entries, "xl/sharedStrings.xml"))
        .find("sst")
        .expect("a shared string table")
        .nodes("si")
        .map(Node::text)
        .collect();
    let sheet = parse(&entry(&entries, "xl/worksheets/sheet1.xml"));
    let data = sheet.find("sheetData").expect("sheet data");
    let rows = data
        .nodes("row")
        .map(|row| {
            let mut cells: Vec<Cell> = Vec::new();
            for c in row.nodes("c") {
                let column = column_of(&c.attr("r"));
                let value = c.nodes("v").next().map(Node::text).unwrap_or_default();
                let kind = match c.attr("t") {
                    t if t.is_empty() => "n".to_string(),
                    t => t,
                };
                let text = if kind == "s" {
                    shared[value.parse::<usize>().unwrap()].clone()
                } else {
                    value.clone()
                };
                cells.resize(column + 1, Cell::default());
                cells[column] = Cell {
                    kind,
                    value,
                    text,
                    formula: c.nodes("f").next().is_some(),
                    style: c.attr("s"),
                };
            }
            cells
        })
        .collect();
    (rows, entry(&entries, "xl/styles.xml"))
}

/// `R12` → 17 (columns from 0).
fn column_of(reference: &str) -> usize {
    reference
        .chars()
        .take_while(char::is_ascii_uppercase)
        .fold(0, |n, c| n * 26 + (c as usize - 'A' as usize + 1))
        - 1
}

/// The ODS package's checks a reader makes (`mimetype` first, stored, with the type), then
/// the first table, row by row, and content.xml.
pub fn ods(bytes: &[u8]) -> (Vec<Vec<Cell>>, String) {
    const MIMETYPE: &str = "application/vnd.oasis.opendocument.spreadsheet";
    // A reader looks at the raw bytes: the first local header names `mimetype`, without
    // extra fields, and its stored content follows.
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    assert_eq!(&bytes[30..38], b"mimetype", "mimetype is the first entry");
    assert_eq!(&bytes[38..38 + MIMETYPE.len()], MIMETYPE.as_bytes());
    let entries = unzip(bytes);
    assert_eq!(entries[0].0, "mimetype");
    assert_eq!(entries[0].1, 0, "mimetype is stored, not compressed");
    assert_eq!(entries[0].2, MIMETYPE.as_bytes());
    let manifest = parse(&entry(&entries, "META-INF/manifest.xml"));
    assert!(
        manifest
            .find("manifest:manifest")
            .unwrap()
            .nodes("manifest:file-entry")
            .any(|e| e.attr("manifest:full-path") == "content.xml"),
        "the manifest lists content.xml"
    );
    let content = entry(&entries, "content.xml");
    let document = parse(&content);
    let table = document.find("table:table").expect("a table");
    let rows = table
        .nodes("table:table-row")
        .map(|row| {
            row.nodes("table:table-cell")
                .map(|c| Cell {
                    kind: c.attr("office:value-type"),
                    value: ["office:value", "office:time-value", "office:date-value"]
                        .iter()
                        .map(|a| c.attr(a))
                        .find(|v| !v.is_empty())
                        .unwrap_or_default(),
                    text: c
                        .nodes("text:p")
                        .map(Node::text)
                        .collect::<Vec<_>>()
                        .join("\n"),
                    formula: c.attrs.contains_key("table:formula"),
                    style: c.attr("table:style-name"),
                })
                .collect()
        })
        .collect();
    (rows, content)
}

/// `PT4H21M09S` → 15669.
pub fn iso_duration_seconds(value: &str) -> i64 {
    let rest = value.strip_prefix("PT").expect("a PT duration");
    let (h, rest) = rest.split_once('H').unwrap();
    let (m, rest) = rest.split_once('M').unwrap();
    let s = rest.strip_suffix('S').unwrap();
    h.parse::<i64>().unwrap() * 3600 + m.parse::<i64>().unwrap() * 60 + s.parse::<i64>().unwrap()
}

/// `h:mm:ss`, computed here rather than by usestats.
pub fn hms(seconds: i64) -> String {
    format!(
        "{}:{:02}:{:02}",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    )
}

/// ISO 8601 in UTC, computed with the `time` crate rather than by usestats.
pub fn iso(t: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(t).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// An Excel serial date (days since 1899-12-30) as a unix time, to the nearest second.
pub fn excel_serial_to_unix(serial: f64) -> i64 {
    ((serial - 25_569.0) * 86_400.0).round() as i64
}
