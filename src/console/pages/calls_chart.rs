//! The overview's chart of calls per hour, by peer and outcome, from the audit log: bars
//! stacked per hour, drawn as SVG by the template `console/calls_chart.html` from the
//! geometry computed here. Every bar carries a `<title>` with its numbers, and the same
//! numbers follow as a table, so the chart reads without JavaScript and without sight.
//!
//! Apart from `console::charts` (one bar per item, written out as SVG text) because this one
//! stacks several series per hour and hands its geometry to a template; the two share only
//! the idea of a scale.

use crate::store::state::HourlyCalls;

const HOUR: i64 = 3600;
/// Left margin (the y labels), top, bottom (the x labels); the plot's height; one hour's
/// slot and its bar's width.
const LEFT: f64 = 44.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 34.0;
const PLOT_HEIGHT: f64 = 200.0;
const SLOT: f64 = 10.0;
const BAR: f64 = 8.0;
/// Distinct colours before they repeat (`series-0` … in console.css).
const PALETTE: usize = 8;

pub struct CallsChart {
    pub title: String,
    pub summary: String,
    pub width: f64,
    pub height: f64,
    pub plot_left: f64,
    pub plot_right: f64,
    pub baseline: f64,
    pub segments: Vec<Segment>,
    pub y_ticks: Vec<Tick>,
    pub x_labels: Vec<Tick>,
    pub legend: Vec<LegendEntry>,
    pub rows: Vec<NumbersRow>,
    pub total: i64,
    /// The database gave as many groups as asked for: there may be more.
    pub truncated: bool,
}

/// One series' calls in one hour: a rectangle.
pub struct Segment {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub class: String,
    pub title: String,
}

/// A label on an axis at `at` (y for the vertical axis, x for the horizontal one).
pub struct Tick {
    pub at: f64,
    pub label: String,
}

pub struct LegendEntry {
    pub class: String,
    pub label: String,
    pub calls: i64,
}

pub struct NumbersRow {
    pub hour: String,
    pub source: String,
    pub status: String,
    pub calls: i64,
}

/// Who made calls, as the chart names them: a verified peer by its wwwroot, the others by
/// their door.
fn source_of(row: &HourlyCalls) -> String {
    match (row.channel.as_str(), row.verified) {
        ("mnet", true) if !row.peer.is_empty() => row.peer.clone(),
        ("mnet", _) => "MNET, peer not verified".into(),
        ("ws", _) => "web services".into(),
        (other, _) => other.to_string(),
    }
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The smallest 1, 2 or 5 × 10^k step that covers `max` in at most four steps.
fn step_for(max: i64) -> i64 {
    let mut magnitude = 1i64;
    loop {
        for s in [1, 2, 5] {
            let step = s * magnitude;
            if step * 4 >= max {
                return step;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// A series is (source, failed); sorted by source, successes first.
type SeriesKey = (String, bool);

/// The series' CSS class: one colour per source, failures hatched.
fn class_of(sources: &[String], key: &SeriesKey) -> String {
    let colour = sources.iter().position(|s| *s == key.0).unwrap_or(0) % PALETTE;
    if key.1 {
        format!("series-{colour} failed")
    } else {
        format!("series-{colour}")
    }
}

/// The chart of `rows` (from `audit_calls_per_hour`) over the `hours` hours that end with
/// the hour holding `now`.
pub fn build(rows: &[HourlyCalls], now: i64, hours: i64, truncated: bool) -> CallsChart {
    let end = (now.div_euclid(HOUR) + 1) * HOUR;
    let start = end - hours * HOUR;
    let mut sources: Vec<String> = rows.iter().map(source_of).collect();
    sources.sort();
    sources.dedup();
    let mut series: Vec<SeriesKey> = Vec::new();
    for row in rows {
        let key = (source_of(row), row.status != "ok");
        if !series.contains(&key) {
            series.push(key);
        }
    }
    series.sort();
    let counts = hourly_counts(rows, &series, start, hours);
    let per_hour: Vec<i64> = counts.iter().map(|c| c.iter().sum()).collect();
    let total: i64 = per_hour.iter().sum();
    let busiest = per_hour.iter().copied().max().unwrap_or(0);
    let step = step_for(busiest.max(1));
    let top = step * ((busiest.max(1) + step - 1) / step);
    let scale = PLOT_HEIGHT / top as f64;
    let baseline = TOP + PLOT_HEIGHT;
    let segments = stacked_bars(&counts, &series, &sources, start, scale);
    let y_ticks = (0..=top / step)
        .map(|k| Tick {
            at: round(baseline - (k * step) as f64 * scale),
            label: (k * step).to_string(),
        })
        .collect();
    let legend = series
        .iter()
        .enumerate()
        .map(|(i, key)| LegendEntry {
            class: class_of(&sources, key),
            label: format!("{}, {}", key.0, if key.1 { "failed" } else { "ok" }),
            calls: counts.iter().map(|c| c[i]).sum(),
        })
        .collect();
    let mut numbers: Vec<NumbersRow> = rows
        .iter()
        .filter(|r| r.hour >= start && r.hour < end)
        .map(|r| NumbersRow {
            hour: super::shown::time(r.hour),
            source: source_of(r),
            status: r.status.clone(),
            calls: r.calls,
        })
        .collect();
    // Newest hour first: what an operator looks for.
    numbers.reverse();
    let plot_right = LEFT + hours as f64 * SLOT;
    CallsChart {
        title: format!("Calls per hour over the last {hours} hours, by peer and outcome"),
        summary: format!(
            "{total} call{} from {} to {} (UTC); the busiest hour had {busiest}.",
            if total == 1 { "" } else { "s" },
            super::shown::time(start),
            super::shown::time(end)
        ),
        width: plot_right + 10.0,
        height: TOP + PLOT_HEIGHT + BOTTOM,
        plot_left: LEFT,
        plot_right,
        baseline,
        segments,
        y_ticks,
        x_labels: hour_labels(start, hours),
        legend,
        rows: numbers,
        total,
        truncated,
    }
}

/// `counts[hour][series]` over the `hours` hours from `start`.
fn hourly_counts(
    rows: &[HourlyCalls],
    series: &[SeriesKey],
    start: i64,
    hours: i64,
) -> Vec<Vec<i64>> {
    let mut counts = vec![vec![0i64; series.len()]; hours.max(0) as usize];
    for row in rows {
        let slot = (row.hour - start).div_euclid(HOUR);
        if slot < 0 || slot >= hours {
            continue;
        }
        let key = (source_of(row), row.status != "ok");
        if let Some(i) = series.iter().position(|s| *s == key) {
            counts[slot as usize][i] += row.calls;
        }
    }
    counts
}

/// One bar per hour, its series stacked from the baseline up, each segment titled with its
/// hour, source, outcome and count.
fn stacked_bars(
    counts: &[Vec<i64>],
    series: &[SeriesKey],
    sources: &[String],
    start: i64,
    scale: f64,
) -> Vec<Segment> {
    let baseline = TOP + PLOT_HEIGHT;
    let mut segments = Vec::new();
    for (slot, hour_counts) in counts.iter().enumerate() {
        let hour = start + slot as i64 * HOUR;
        let x = LEFT + slot as f64 * SLOT + (SLOT - BAR) / 2.0;
        let mut below = 0i64;
        for (i, &n) in hour_counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let (source, failed) = &series[i];
            segments.push(Segment {
                x: round(x),
                y: round(baseline - (below + n) as f64 * scale),
                w: BAR,
                h: round(n as f64 * scale),
                class: class_of(sources, &series[i]),
                title: format!(
                    "{}: {source}, {}: {n} call{}",
                    super::shown::time(hour),
                    if *failed { "failed" } else { "ok" },
                    if n == 1 { "" } else { "s" }
                ),
            });
            below += n;
        }
    }
    segments
}

/// The x axis: each day's date (MM-DD) at midnight, and every sixth hour.
fn hour_labels(start: i64, hours: i64) -> Vec<Tick> {
    let mut x_labels = Vec::new();
    for slot in 0..hours {
        let hour = start + slot * HOUR;
        let label = if hour.rem_euclid(86_400) == 0 {
            super::shown::time(hour)
                .get(5..10)
                .unwrap_or_default()
                .to_string()
        } else if hour.rem_euclid(6 * HOUR) == 0 {
            format!("{:02}h", hour.rem_euclid(86_400) / HOUR)
        } else {
            continue;
        };
        x_labels.push(Tick {
            at: round(LEFT + slot as f64 * SLOT + SLOT / 2.0),
            label,
        });
    }
    x_labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(hour: i64, peer: &str, status: &str, calls: i64) -> HourlyCalls {
        HourlyCalls {
            hour,
            channel: if peer.is_empty() { "ws" } else { "mnet" }.into(),
            peer: peer.into(),
            verified: true,
            status: status.into(),
            calls,
        }
    }

    #[test]
    fn bars_stack_per_hour_and_carry_their_numbers() {
        let now = 100 * HOUR + 5;
        let rows = vec![
            row(99 * HOUR, "http://a", "ok", 3),
            row(99 * HOUR, "http://a", "fault 7025", 1),
            row(100 * HOUR, "", "ok", 2),
            // Outside the window: left out.
            row(10 * HOUR, "http://a", "ok", 50),
        ];
        let chart = build(&rows, now, 3, false);
        assert_eq!(chart.total, 6);
        assert_eq!(chart.segments.len(), 3);
        let titles: Vec<&str> = chart.segments.iter().map(|s| s.title.as_str()).collect();
        assert!(
            titles.iter().any(|t| t.ends_with("http://a, ok: 3 calls")),
            "{titles:?}"
        );
        assert!(
            titles
                .iter()
                .any(|t| t.ends_with("http://a, failed: 1 call")),
            "{titles:?}"
        );
        assert!(
            titles
                .iter()
                .any(|t| t.ends_with("web services, ok: 2 calls")),
            "{titles:?}"
        );
        // The two segments of hour 99 stack: the upper one starts where the lower ends.
        let (ok, failed) = (&chart.segments[0], &chart.segments[1]);
        assert!(
            (ok.y - (failed.y + failed.h)).abs() < 0.2,
            "{} {} {}",
            ok.y,
            failed.y,
            failed.h
        );
        assert!(failed.class.contains("failed"));
        // Midnight is labelled with the day, every sixth hour with the hour.
        let day = build(&rows, 48 * HOUR, 24, false);
        let labels: Vec<&str> = day.x_labels.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["06h", "12h", "18h", "01-03"]);
        // The tallest bar reaches the top tick.
        assert_eq!(chart.y_ticks.last().unwrap().label, "4");
        assert_eq!(chart.rows.len(), 3);
        assert_eq!(chart.rows[0].source, "web services");
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(step_for(1), 1);
        assert_eq!(step_for(4), 1);
        assert_eq!(step_for(5), 2);
        assert_eq!(step_for(9), 5);
        assert_eq!(step_for(1234), 500);
    }
}
