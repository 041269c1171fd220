//! Charts as SVG drawn on the server: readable without JavaScript (the console has none), and
//! styled by classes from `console.css` (the CSP allows no inline style).
//!
//! Hand-built rather than plotters' SVG backend, which issue 14 suggests "unless hand-built SVG
//! is clearly smaller": plotters draws a bar as an anonymous `<rect>` (or `<polygon>`) and has
//! no way to give one bar attributes or children of its own, while every bar here carries its
//! `data-key`, its exact `data-seconds` (what the browser test compares with `usestats stats`)
//! and a `<title>` (the label and the duration: a tooltip, and what a screen reader says).
//! Without those we would have to post-process plotters' output to find which `<rect>` is which
//! bar. What is drawn is a few rectangles and labels per item: this module is smaller than the
//! code it would take to bend plotters to it, and adds no dependency.
//!
//! Every text is escaped ([`crate::text::markup::xml`]), and characters XML does not allow
//! (controls) are replaced, so that the output is well-formed XML whatever the names hold.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::timefmt::{date, duration};

/// One bar: `key` identifies the item (a course id, a cmid, a user id) in `data-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub key: String,
    pub label: String,
    pub seconds: i64,
}

/// Width of every chart's coordinate system; the page scales it to its column.
const WIDTH: i64 = 760;
/// Bar charts: the label column, where the bars start, their longest length, one row's height.
const LABEL_RIGHT: i64 = 220;
const BAR_LEFT: i64 = 228;
const BAR_MAX: i64 = 420;
const ROW: i64 = 24;
const BAR_HEIGHT: i64 = 16;
/// Labels longer than this are cut on the chart (the bar's title keeps them whole).
const LABEL_CHARS: usize = 30;

/// A horizontal bar chart, one bar per item in the order given, each as long as its share of
/// the largest value, with its duration written after it.
pub fn bars(id: &str, title: &str, items: &[Bar]) -> String {
    let rows = i64::try_from(items.len()).unwrap_or(i64::MAX).max(1);
    let height = rows.saturating_mul(ROW).saturating_add(8);
    let max = items.iter().map(|b| b.seconds).max().unwrap_or(0).max(1);
    let mut out = open_svg(id, title, height);
    if items.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{BAR_LEFT}" y="18" class="empty">No time in this window</text>"#
        );
    }
    for (row, bar) in items.iter().enumerate() {
        let y = i64::try_from(row)
            .unwrap_or(i64::MAX)
            .saturating_mul(ROW)
            .saturating_add(4);
        let length = bar_length(bar.seconds, max);
        let shown = duration(bar.seconds);
        let _ = write!(
            out,
            concat!(
                r#"<g class="row">"#,
                r#"<text x="{lx}" y="{ty}" text-anchor="end" class="label">{label}</text>"#,
                r#"<rect class="bar" x="{bx}" y="{y}" width="{length}" height="{bh}" data-key="{key}" data-seconds="{seconds}">"#,
                r#"<title>{full}: {shown}</title></rect>"#,
                r#"<text x="{vx}" y="{ty}" class="value">{shown}</text></g>"#,
            ),
            lx = LABEL_RIGHT,
            ty = y + 13,
            label = esc(&crate::text::echo::cut(&bar.label, LABEL_CHARS)),
            bx = BAR_LEFT,
            bh = BAR_HEIGHT,
            key = esc(&bar.key),
            seconds = bar.seconds,
            full = esc(&bar.label),
            vx = BAR_LEFT + length + 6,
            y = y,
            length = length,
            shown = shown,
        );
    }
    out.push_str("</svg>");
    out
}

/// A bar's length in the chart's units: its share of `max`, at least 1 when it has any time
/// (so that a short bar is still seen), 0 for no time.
fn bar_length(seconds: i64, max: i64) -> i64 {
    if seconds <= 0 {
        return 0;
    }
    let share = i128::from(seconds) * i128::from(BAR_MAX) / i128::from(max.max(1));
    i64::try_from(share).unwrap_or(BAR_MAX).clamp(1, BAR_MAX)
}

/// The calendar's cells: side and gap, the weekday labels' column, the month labels' row.
const CELL: i64 = 14;
const STEP: i64 = 17;
const CAL_LEFT: i64 = 34;
const CAL_TOP: i64 = 18;
/// At most this many weeks are drawn (the latest); five years fit.
pub const MAX_WEEKS: i64 = 261;

/// A calendar heatmap of sessions: one column per week (Monday first), one cell per day, its
/// shade from the time of the sessions that started that day (UTC). `sessions` are (start,
/// elapsed seconds). Every cell of the span from the first session's day to the last one's is
/// drawn, with `data-day`, `data-seconds` and a `<title>`; at most [`MAX_WEEKS`] weeks, the
/// latest.
pub fn calendar(id: &str, title: &str, sessions: &[(i64, i64)]) -> String {
    let mut days: BTreeMap<i64, (i64, u64)> = BTreeMap::new();
    for &(start, elapsed) in sessions {
        let day = days.entry(start.div_euclid(86_400)).or_default();
        day.0 = day.0.saturating_add(elapsed);
        day.1 += 1;
    }
    let (Some((&first, _)), Some((&last, _))) = (days.first_key_value(), days.last_key_value())
    else {
        let mut out = open_svg(id, title, 30);
        out.push_str(r#"<text x="0" y="18" class="empty">No session in this window</text></svg>"#);
        return out;
    };
    // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday.
    let weekday = |day: i64| (day + 3).rem_euclid(7);
    let last_monday = last - weekday(last);
    let first_monday = (first - weekday(first)).max(last_monday - (MAX_WEEKS - 1) * 7);
    let first_drawn = first.max(first_monday);
    let weeks = (last_monday - first_monday) / 7 + 1;
    let max = days.values().map(|d| d.0).max().unwrap_or(0).max(1);
    let height = CAL_TOP + 7 * STEP + 24;
    let width = (CAL_LEFT + weeks * STEP + 8).max(200);
    let mut out = open_svg_sized(id, title, width, height);
    for (row, name) in [(0, "Mon"), (2, "Wed"), (4, "Fri")] {
        let _ = write!(
            out,
            r#"<text x="0" y="{}" class="axis-label">{name}</text>"#,
            CAL_TOP + row * STEP + 10
        );
    }
    for (x, anchor, text) in month_labels(first_drawn, last, |day| {
        (day - weekday(day) - first_monday) / 7
    }) {
        let _ = write!(
            out,
            r#"<text x="{x}" y="12" class="axis-label" text-anchor="{anchor}">{}</text>"#,
            esc(&text)
        );
    }
    for day in first_drawn..=last {
        let column = (day - weekday(day) - first_monday) / 7;
        let (x, y) = (CAL_LEFT + column * STEP, CAL_TOP + weekday(day) * STEP);
        let name = date(day * 86_400).unwrap_or_else(|| (day * 86_400).to_string());
        let (seconds, count) = days.get(&day).copied().unwrap_or((0, 0));
        let _ = write!(
            out,
            concat!(
                r#"<rect class="day heat-{level}" x="{x}" y="{y}" width="{c}" height="{c}" data-day="{name}" data-seconds="{seconds}">"#,
                r#"<title>{name}: {count} session{s}, {shown}</title></rect>"#,
            ),
            level = heat_level(seconds, max),
            x = x,
            y = y,
            name = esc(&name),
            seconds = seconds,
            count = count,
            c = CELL,
            s = if count == 1 { "" } else { "s" },
            shown = duration(seconds),
        );
    }
    let legend_y = CAL_TOP + 7 * STEP + 8;
    let _ = write!(
        out,
        r#"<text x="{CAL_LEFT}" y="{}" class="axis-label">less</text>"#,
        legend_y + 10
    );
    for level in 0..5 {
        let _ = write!(
            out,
            r#"<rect class="swatch heat-{level}" x="{}" y="{legend_y}" width="{CELL}" height="{CELL}"/>"#,
            CAL_LEFT + 30 + level * STEP
        );
    }
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" class="axis-label">more</text></svg>"#,
        CAL_LEFT + 30 + 5 * STEP + 4,
        legend_y + 10
    );
    out
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The calendar's month names: (x, text-anchor, text), one for every month drawn, above the
/// column holding its first day (the first month above the first column). Months start at
/// least four columns apart, so only the first, partial month can crowd the next: then it
/// ends at its column's right edge, or left of the grid, instead of starting there. Short
/// names ("Mar"; "Jan 2027" for a year's first) so that four columns always hold one.
fn month_labels(
    first: i64,
    last: i64,
    column: impl Fn(i64) -> i64,
) -> Vec<(i64, &'static str, String)> {
    let ymd = |day: i64| date(day * 86_400).unwrap_or_default();
    let mut starts: Vec<(i64, String)> = Vec::new();
    for day in first..=last {
        let name = ymd(day);
        if day == first || name.ends_with("-01") {
            starts.push((column(day), name));
        }
    }
    let text = |name: &str, room: bool| {
        let month: usize = name.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
        let short = MONTHS[month.clamp(1, 12) - 1];
        match name.get(..4) {
            Some(year) if room && month == 1 => format!("{short} {year}"),
            _ => short.to_string(),
        }
    };
    let mut labels = Vec::new();
    for (i, (col, name)) in starts.iter().enumerate() {
        let next = starts.get(i + 1).map(|(c, _)| *c);
        let left = CAL_LEFT + col * STEP;
        let label = match next {
            Some(n) if n - col < 2 && n == *col => (CAL_LEFT - 2, "end", text(name, false)),
            Some(n) if n - col < 2 => (left + CELL, "end", text(name, false)),
            Some(n) if n - col < 4 => (left, "start", text(name, false)),
            _ => (left, "start", text(name, true)),
        };
        labels.push(label);
    }
    labels
}

/// The calendar and, below it, its numbers as a table (in a `<details>`): the days with
/// sessions, their count and time, for whoever cannot see the shades.
pub fn calendar_with_table(id: &str, title: &str, sessions: &[(i64, i64)]) -> String {
    let mut out = calendar(id, title, sessions);
    let mut days: BTreeMap<i64, (i64, u64)> = BTreeMap::new();
    for &(start, elapsed) in sessions {
        let day = days.entry(start.div_euclid(86_400)).or_default();
        day.0 = day.0.saturating_add(elapsed);
        day.1 += 1;
    }
    if days.is_empty() {
        return out;
    }
    let id = esc(id);
    let _ = write!(
        out,
        concat!(
            r#"<details class="chart-numbers"><summary>The numbers: time per day</summary>"#,
            r#"<div class="table-scroll" tabindex="0" role="region" aria-label="Time per day">"#,
            r#"<table id="{id}-table"><thead><tr><th scope="col">Day (UTC)</th>"#,
            r#"<th scope="col" class="num">Sessions</th><th scope="col" class="num">Time</th></tr></thead><tbody>"#,
        ),
        id = id
    );
    for (day, (seconds, count)) in &days {
        let name = date(day * 86_400).unwrap_or_else(|| (day * 86_400).to_string());
        let _ = write!(
            out,
            r#"<tr data-day="{name}" data-seconds="{seconds}"><td>{name}</td><td class="num">{count}</td><td class="num">{shown}</td></tr>"#,
            name = esc(&name),
            shown = esc(&duration(*seconds)),
        );
    }
    out.push_str("</tbody></table></div></details>");
    out
}

/// 0 for no time, then 1 to 4 by quarters of the busiest day.
fn heat_level(seconds: i64, max: i64) -> i64 {
    if seconds <= 0 {
        return 0;
    }
    let quarter = i128::from(seconds) * 4 / i128::from(max.max(1));
    i64::try_from(quarter).unwrap_or(3).clamp(0, 3) + 1
}

fn open_svg(id: &str, title: &str, height: i64) -> String {
    open_svg_sized(id, title, WIDTH, height)
}

fn open_svg_sized(id: &str, title: &str, width: i64, height: i64) -> String {
    let id = esc(id);
    format!(
        concat!(
            r#"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" "#,
            r#"viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-labelledby="{id}-title">"#,
            r#"<title id="{id}-title">{title}</title>"#,
        ),
        id = id,
        w = width,
        h = height,
        title = esc(title),
    )
}

/// Text for an XML attribute or element: the five entities, and every character XML 1.0 does
/// not allow (C0 controls but tab and newlines, U+FFFE, U+FFFF) as U+FFFD.
fn esc(text: &str) -> String {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r')
            || ('\u{20}'..='\u{D7FF}').contains(&c)
            || ('\u{E000}'..='\u{FFFD}').contains(&c)
            || c >= '\u{10000}'
    };
    let clean: String = text
        .chars()
        .map(|c| if allowed(c) { c } else { '\u{FFFD}' })
        .collect();
    crate::text::markup::xml(&clean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use quick_xml::XmlVersion;
    use quick_xml::events::Event;

    /// An element as the parser saw it: name, attributes (unescaped), and the text of its
    /// `<title>` child when it has one.
    #[derive(Debug, Default)]
    struct Element {
        name: String,
        attributes: BTreeMap<String, String>,
        title: String,
    }

    /// Parses `svg` as XML: panics unless it is well-formed (one root, every element closed,
    /// every entity known), and gives its elements in document order.
    fn parse(svg: &str) -> Vec<Element> {
        let mut reader = quick_xml::Reader::from_str(svg);
        let mut elements: Vec<Element> = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        let mut roots = 0;
        let mut in_title: Option<usize> = None;
        loop {
            let event = reader.read_event().expect("well-formed XML");
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    if open.is_empty() {
                        roots += 1;
                    }
                    let mut element = Element {
                        name: e.name().as_ref().to_string(),
                        ..Default::default()
                    };
                    for attribute in e.attributes() {
                        let attribute = attribute.expect("well-formed attribute");
                        let value = attribute
                            .normalized_value(XmlVersion::Implicit1_0)
                            .expect("known entities");
                        let key = attribute.key.as_ref().to_string();
                        assert!(
                            element.attributes.insert(key, value.into_owned()).is_none(),
                            "an attribute twice"
                        );
                    }
                    let is_title = element.name == "title";
                    elements.push(element);
                    if matches!(event, Event::Start(_)) {
                        if is_title {
                            // A title describes its parent.
                            in_title = open.last().copied();
                        }
                        open.push(elements.len() - 1);
                    }
                }
                Event::End(_) => {
                    let closed = open.pop().expect("an end without a start");
                    if elements[closed].name == "title" {
                        in_title = None;
                    }
                }
                Event::Text(t) => {
                    if let Some(parent) = in_title {
                        let text = t.xml_content(XmlVersion::Implicit1_0);
                        elements[parent].title.push_str(&text);
                    }
                }
                Event::GeneralRef(r) => {
                    let resolved = match &*r {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        other => panic!("unknown entity {other:?}"),
                    };
                    if let Some(parent) = in_title {
                        elements[parent].title.push_str(resolved);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(open.is_empty(), "elements left open");
        assert_eq!(roots, 1, "one root element");
        elements
    }

    fn bar_elements(elements: &[Element]) -> Vec<&Element> {
        elements
            .iter()
            .filter(|e| {
                e.name == "rect" && e.attributes.get("class").map(String::as_str) == Some("bar")
            })
            .collect()
    }

    /// A label as an XML parser reads it back from our output: characters XML does not allow
    /// replaced, line ends normalised to `\n`.
    fn as_parsed(label: &str) -> String {
        label
            .chars()
            .map(|c| {
                if esc(&c.to_string()) == "\u{FFFD}" {
                    '\u{FFFD}'
                } else {
                    c
                }
            })
            .collect::<String>()
            .replace("\r\n", "\n")
            .replace('\r', "\n")
    }

    fn bar(key: &str, label: &str, seconds: i64) -> Bar {
        Bar {
            key: key.into(),
            label: label.into(),
            seconds,
        }
    }

    #[test]
    fn bars_carry_key_seconds_and_title() {
        let svg = bars(
            "course-chart",
            "Time per course",
            &[bar("2", "Maths", 3725), bar("5", "Art", 65)],
        );
        let elements = parse(&svg);
        assert_eq!(elements[0].name, "svg");
        assert_eq!(elements[0].attributes["id"], "course-chart");
        assert_eq!(elements[0].attributes["class"], "chart");
        let found = bar_elements(&elements);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].attributes["data-key"], "2");
        assert_eq!(found[0].attributes["data-seconds"], "3725");
        assert_eq!(found[0].title, "Maths: 1h 02m 05s");
        assert_eq!(found[1].attributes["data-seconds"], "65");
        // The largest bar is full length, the other its share, never less than 1.
        assert_eq!(found[0].attributes["width"], BAR_MAX.to_string());
        assert_eq!(found[1].attributes["width"], "7");
        assert_eq!(bar_length(1, 1_000_000), 1);
        assert_eq!(bar_length(0, 10), 0);
    }

    #[test]
    fn labels_are_escaped() {
        let label = "<script>alert('x')</script> & \"co\"";
        let svg = bars("c", "<b>title</b>", &[bar("<k>", label, 10)]);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(
            svg.contains("&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt; &amp; &quot;co&quot;")
        );
        let elements = parse(&svg);
        let found = bar_elements(&elements);
        assert_eq!(found[0].attributes["data-key"], "<k>");
        assert_eq!(found[0].title, format!("{label}: 10s"));
        // Not a `<script>` element anywhere.
        assert!(elements.iter().all(|e| e.name != "script"));
        // Controls XML does not allow are replaced, not passed through.
        let svg = bars("c", "t", &[bar("1", "a\u{1}b\u{FFFF}", 1)]);
        assert!(
            parse(&svg)
                .iter()
                .any(|e| e.title == "a\u{FFFD}b\u{FFFD}: 1s")
        );
    }

    #[test]
    fn no_bars_is_still_a_chart() {
        let elements = parse(&bars("c", "t", &[]));
        assert!(bar_elements(&elements).is_empty());
        assert_eq!(elements[0].name, "svg");
    }

    #[test]
    fn calendar_cells_hold_each_days_sessions() {
        // 2026-10-05 was a Monday; two sessions that day, one on Wednesday 2026-10-14.
        let monday = 1_791_158_400;
        let sessions = [
            (monday + 3600, 600),
            (monday + 7200, 1200),
            (monday + 9 * 86_400 + 60, 300),
        ];
        let svg = calendar("sessions", "Sessions", &sessions);
        let elements = parse(&svg);
        let days: Vec<&Element> = elements
            .iter()
            .filter(|e| e.attributes.contains_key("data-day"))
            .collect();
        // Every day from the first to the last: 10 cells.
        assert_eq!(days.len(), 10);
        assert_eq!(days[0].attributes["data-day"], "2026-10-05");
        assert_eq!(days[0].attributes["data-seconds"], "1800");
        assert_eq!(days[0].attributes["class"], "day heat-4");
        assert_eq!(days[0].title, "2026-10-05: 2 sessions, 30m 00s");
        assert_eq!(days[1].attributes["data-seconds"], "0");
        assert_eq!(days[1].attributes["class"], "day heat-0");
        assert_eq!(days[9].attributes["data-day"], "2026-10-14");
        assert_eq!(days[9].attributes["class"], "day heat-1");
        // Monday is the first row; the Wednesday of the next week is in the second column.
        assert_eq!(days[0].attributes["y"], CAL_TOP.to_string());
        assert_eq!(days[9].attributes["x"], (CAL_LEFT + STEP).to_string());
        assert_eq!(days[9].attributes["y"], (CAL_TOP + 2 * STEP).to_string());
        let empty = parse(&calendar("s", "t", &[]));
        assert!(empty.iter().all(|e| e.name != "rect"));
    }

    #[test]
    fn every_month_drawn_is_named() {
        // 2026-01-30 (a Friday) to 2026-06-10: the partial January, then February to June.
        let first = 1_769_731_200;
        let sessions = [(first, 60), (first + 131 * 86_400, 60)];
        let svg = calendar("s", "t", &sessions);
        parse(&svg);
        let named: Vec<&str> = svg
            .split(r#"y="12" class="axis-label""#)
            .skip(1)
            .filter_map(|rest| rest.split_once('>')?.1.split_once('<').map(|(t, _)| t))
            .collect();
        assert_eq!(named, ["Jan", "Feb", "Mar", "Apr", "May", "Jun"]);
        let table = calendar_with_table("s", "t", &sessions);
        assert!(
            table.contains(r#"<tr data-day="2026-01-30" data-seconds="60">"#),
            "{table}"
        );
        assert!(table.contains(r#"<table id="s-table">"#));
    }

    #[test]
    fn calendar_keeps_the_latest_weeks() {
        let sessions = [(0, 60), (4000 * 86_400, 60)];
        let elements = parse(&calendar("s", "t", &sessions));
        let days = elements
            .iter()
            .filter(|e| e.attributes.contains_key("data-day"))
            .count();
        assert!(days <= (MAX_WEEKS * 7) as usize && days > ((MAX_WEEKS - 1) * 7) as usize);
    }

    proptest! {
        /// Whatever the labels and values: well-formed XML, one bar per item in order, each
        /// carrying its key and its value, and its whole label in its title.
        #[test]
        fn any_bars_are_well_formed(
            items in proptest::collection::vec(
                (any::<String>(), "[0-9a-z<>&\"']{0,6}", 0i64..=10_000_000_000),
                0..12,
            )
        ) {
            let items: Vec<Bar> = items
                .into_iter()
                .map(|(label, key, seconds)| Bar { key, label, seconds })
                .collect();
            let elements = parse(&bars("chart", "a & b", &items));
            let found = bar_elements(&elements);
            prop_assert_eq!(found.len(), items.len());
            for (element, item) in found.iter().zip(&items) {
                prop_assert_eq!(&element.attributes["data-seconds"], &item.seconds.to_string());
                prop_assert_eq!(&element.attributes["data-key"], &item.key);
                let width: i64 = element.attributes["width"].parse().unwrap();
                prop_assert!((0..=BAR_MAX).contains(&width));
                prop_assert_eq!(
                    &element.title,
                    &format!("{}: {}", as_parsed(&item.label), duration(item.seconds))
                );
            }
        }

        /// The calendar's cells hold every session's time once: their sum is the sessions'.
        #[test]
        fn calendar_cells_add_up(
            sessions in proptest::collection::vec((0i64..400 * 86_400, 0i64..20_000), 0..40)
        ) {
            let elements = parse(&calendar("s", "t", &sessions));
            let sum: i64 = elements
                .iter()
                .filter_map(|e| e.attributes.get("data-seconds"))
                .map(|s| s.parse::<i64>().unwrap())
                .sum();
            prop_assert_eq!(sum, sessions.iter().map(|s| s.1).sum::<i64>());
        }
    }
}
