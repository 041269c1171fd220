//! Times as people read and write them: `2026-11-25 13:14:00Z`, `1h 02m 05s`, dates and unix
//! times typed on the command line or in the console's window picker, and the window they
//! make (E15). Shared by the command line and the console, so both read a window the same way.

use time::{Date, Month, OffsetDateTime};

/// `2026-11-25 13:14:00Z`; `-` for 0 (never). A time beyond the years ±999999, which no
/// log or certificate holds, is shown as its number of seconds.
pub fn time(t: i64) -> String {
    if t == 0 {
        return "-".into();
    }
    match OffsetDateTime::from_unix_timestamp(t) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        ),
        Err(_) => t.to_string(),
    }
}

/// The latest time the command line takes: 9999-12-31 23:59:59Z. Later values (and the
/// arithmetic on them) have no meaning for a log and would overflow.
pub const MAX_TIME: i64 = 253_402_300_799;

/// A time option the command line could not read.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a unix time or a date such as 2026-11-01 or 2026-03-01T08:15:00Z (1970 to 9999)"
)]
pub struct NotATime(String);

/// A time as typed: a whole day (a date without a clock), or an exact instant (a unix time,
/// or a date with a clock). Where the day ends matters only to the end of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    /// The day's first second (00:00:00 UTC).
    Day(i64),
    Instant(i64),
}

impl Typed {
    /// The first second it names: a day's midnight, or the instant.
    pub fn start(self) -> i64 {
        match self {
            Typed::Day(t) | Typed::Instant(t) => t,
        }
    }

    /// The last second it names, as the end of a window (both ends of which are inclusive,
    /// `stats::Window`): a day's 23:59:59, or the instant itself.
    pub fn end(self) -> i64 {
        match self {
            Typed::Day(t) => t + DAY - 1,
            Typed::Instant(t) => t,
        }
    }
}

/// Seconds in a (UTC) day.
pub const DAY: i64 = 86_400;

/// A unix time, a date `YYYY-MM-DD` (midnight UTC), or an instant `YYYY-MM-DDTHH:MM[:SS]`
/// (UTC, or RFC 3339 with `Z` or an offset such as `+02:00`, fractions of a second dropped),
/// between 1970 and 9999. A date that does not exist (2026-02-30, 25:00) is refused rather
/// than rolled over.
pub fn parse_time(text: &str) -> Result<i64, NotATime> {
    parse_typed(text).map(Typed::start)
}

/// What [`parse_time`] reads, telling a whole day from an instant.
pub fn parse_typed(text: &str) -> Result<Typed, NotATime> {
    let text = text.trim();
    let bad = || NotATime(crate::text::echo::echo(text));
    if let Ok(t) = text.parse::<i64>() {
        return if (0..=MAX_TIME).contains(&t) {
            Ok(Typed::Instant(t))
        } else {
            Err(bad())
        };
    }
    let (date, clock) = match text.split_once(['T', 't', ' ']) {
        Some((date, clock)) => (date, Some(clock)),
        None => (text, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if !(digits(y) && digits(m) && digits(d)) {
        return Err(bad());
    }
    let y: i32 = y.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    let d: u8 = d.parse().map_err(|_| bad())?;
    if !(1970..=9999).contains(&y) {
        return Err(bad());
    }
    let month = Month::try_from(m).map_err(|_| bad())?;
    let day = Date::from_calendar_date(y, month, d).map_err(|_| bad())?;
    let midnight = day.midnight().assume_utc().unix_timestamp();
    let Some(clock) = clock else {
        return Ok(Typed::Day(midnight));
    };
    let seconds = midnight + clock_seconds(clock).ok_or_else(bad)?;
    if !(0..=MAX_TIME).contains(&seconds) {
        return Err(bad());
    }
    Ok(Typed::Instant(seconds))
}

/// Digits only: `parse` alone would take a sign.
fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `HH:MM[:SS[.fraction]]` and its zone (`Z`, `±HH:MM`, or nothing for UTC) as seconds from
/// the day's midnight UTC (negative or past a day when the zone moves it); `None` when it is
/// not one.
fn clock_seconds(clock: &str) -> Option<i64> {
    let (clock, offset) = if let Some(c) = clock.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(at) = clock.rfind(['+', '-']) {
        let (c, zone) = clock.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (hh, mm) = zone[1..].split_once(':')?;
        if !(digits(hh) && digits(mm) && hh.len() == 2 && mm.len() == 2) {
            return None;
        }
        let (hh, mm): (i64, i64) = (hh.parse().ok()?, mm.parse().ok()?);
        if hh > 23 || mm > 59 {
            return None;
        }
        (c, sign * (hh * 3600 + mm * 60))
    } else {
        (clock, 0)
    };
    // Fractions of a second: digits, dropped.
    let clock = match clock.split_once('.') {
        Some((c, fraction)) if digits(fraction) && c.matches(':').count() == 2 => c,
        Some(_) => return None,
        None => clock,
    };
    let hms: Vec<&str> = clock.split(':').collect();
    if hms.len() > 3 {
        return None;
    }
    let mut seconds = 0;
    for (i, (part, max)) in hms.iter().zip([23, 59, 59]).enumerate() {
        if !digits(part) {
            return None;
        }
        let value: i64 = part.parse().ok()?;
        if value > max {
            return None;
        }
        seconds += value * [3600, 60, 1][i];
    }
    Some(seconds - offset)
}

/// `1h 02m 05s` style durations for people.
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    if s >= 3600 {
        format!("{}h {:02}m {:02}s", s / 3600, (s / 60) % 60, s % 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// `h:mm:ss` (hours not wrapped at 24, `123:04:05`) for exports: a spreadsheet reads it as a
/// duration, and it sorts as text within equal hour widths. Negative times, which no report
/// gives, show as `0:00:00` as [`duration`] shows them as `0s`: the raw seconds sit next to
/// it in every export.
pub fn hms(seconds: i64) -> String {
    let s = seconds.max(0);
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// ISO 8601 / RFC 3339 in UTC, `2026-06-01T10:00:00Z`; `None` outside 1970 to 9999 (as
/// [`date`]), where a reader could not take it back.
pub fn iso(t: i64) -> Option<String> {
    let day = date(t)?;
    let seconds = t.rem_euclid(86_400);
    Some(format!(
        "{day}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    ))
}

/// Why `from` and `to` do not make a window.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error(transparent)]
    NotATime(#[from] NotATime),
    /// E15: an explicit end earlier than the start.
    #[error("the end of the window is before its start")]
    Reversed,
}

/// A window as asked for: its first and last seconds (both included, as `stats::Window`
/// takes them), and how each end was given, to say it back in the words it was asked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: i64,
    pub to: i64,
    /// `from` was a date (its midnight), not an instant.
    pub from_day: bool,
    /// `to` was a date: the window runs through the end of that day.
    pub to_day: bool,
    /// `to` was given; without it the window ends now.
    pub to_given: bool,
}

/// `from` and `to` (each a unix time, a date or an instant, see [`parse_typed`]) as a window:
/// from the beginning of the log (0) to `now` by default. A date as `to` is inclusive: the
/// window runs through its last second (23:59:59 UTC), so `from 2026-06-01 to 2026-06-30` is
/// the whole of June; a unix time or an instant as `to` is that very second. E15: only an
/// explicit `to` can be before `from`, and it is refused; without one the window ends now,
/// and a `from` later than now is a window in which nothing has happened yet (an empty
/// report).
pub fn window(from: Option<&str>, to: Option<&str>, now: i64) -> Result<Span, WindowError> {
    let from = from.map(parse_typed).transpose()?;
    let to_given = to.map(parse_typed).transpose()?;
    let start = from.map(Typed::start).unwrap_or(0);
    if to_given.is_some_and(|to| to.end() < start) {
        return Err(WindowError::Reversed);
    }
    Ok(Span {
        from: start,
        to: to_given.map(Typed::end).unwrap_or(now),
        from_day: matches!(from, Some(Typed::Day(_))),
        to_day: matches!(to_given, Some(Typed::Day(_))),
        to_given: to_given.is_some(),
    })
}

impl Span {
    /// The window in the words it was asked in: `1 Jun 2026 – 30 Jun 2026 (inclusive, days
    /// in UTC)`, `the beginning of the log – now (2026-12-08 01:09:37Z)`.
    pub fn described(&self) -> String {
        let from = if self.from == 0 {
            "the beginning of the log".to_string()
        } else if self.from_day {
            long_date(self.from)
        } else {
            time(self.from)
        };
        let to = if !self.to_given {
            format!("now ({})", time(self.to))
        } else if self.to_day {
            long_date(self.to)
        } else {
            time(self.to)
        };
        let note = match (self.from_day, self.to_day) {
            (_, true) => " (inclusive, days in UTC)",
            (true, false) => " (days in UTC)",
            (false, false) => "",
        };
        format!("{from} – {to}{note}")
    }

    /// Its first and last seconds: `2026-06-01 00:00:00Z → 2026-06-30 23:59:59Z`.
    pub fn exact(&self) -> String {
        let from = if self.from == 0 {
            "the beginning of the log".to_string()
        } else {
            time(self.from)
        };
        format!("{from} → {}", time(self.to))
    }
}

/// `1 Jun 2026`: the (UTC) day of `t`, unmistakable in any locale.
pub fn long_date(t: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(t) {
        Ok(at) => {
            let month = at.month().to_string();
            format!("{} {} {}", at.day(), &month[..3], at.year())
        }
        Err(_) => t.to_string(),
    }
}

/// The day of `t` as an HTML date input holds it, `2026-11-25` (UTC); `None` outside the
/// years 1970 to 9999.
pub fn date(t: i64) -> Option<String> {
    if !(0..=MAX_TIME).contains(&t) {
        return None;
    }
    let at = OffsetDateTime::from_unix_timestamp(t).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        at.year(),
        u8::from(at.month()),
        at.day()
    ))
}

/// A window people ask for by name: whole days in UTC, relative to the daemon's clock, always
/// through today (the day of "now"), so that a preset never ends before its last row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The last N days, today included: today and the N − 1 days before it.
    LastDays(i64),
    /// From the 1st of this month through today.
    ThisMonth,
    /// The whole previous calendar month, 1st to last day.
    LastMonth,
    /// From 1 January of this year through today.
    ThisYear,
}

/// The most days `--last` takes: ten years, beyond any log retention.
pub const MAX_LAST_DAYS: i64 = 3_660;

/// A `--last` the command line could not read.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a number of days such as 30d (1 to 3660)")]
pub struct NotDays(String);

impl Preset {
    /// The presets the console offers, in the order it lists them.
    pub const OFFERED: [Preset; 6] = [
        Preset::LastDays(7),
        Preset::LastDays(30),
        Preset::LastDays(90),
        Preset::ThisMonth,
        Preset::LastMonth,
        Preset::ThisYear,
    ];

    pub fn label(self) -> String {
        match self {
            Preset::LastDays(n) => format!("Last {n} days"),
            Preset::ThisMonth => "This month".into(),
            Preset::LastMonth => "Last month".into(),
            Preset::ThisYear => "This year".into(),
        }
    }

    /// `--last 30d` (or `30`): the last 30 days, today included.
    pub fn parse_last(text: &str) -> Result<Preset, NotDays> {
        let text = text.trim();
        let number = text.strip_suffix(['d', 'D']).unwrap_or(text);
        match number.parse::<i64>() {
            Ok(n) if digits(number) && (1..=MAX_LAST_DAYS).contains(&n) => Ok(Preset::LastDays(n)),
            _ => Err(NotDays(crate::text::echo::echo(text))),
        }
    }

    /// Its first and last days as dates (`YYYY-MM-DD`) for a clock at `now`, as the window
    /// picker and `--from`/`--to` take them (the last day inclusive). `None` when `now` is
    /// outside the years the picker takes.
    pub fn days(self, now: i64) -> Option<(String, String)> {
        let today = OffsetDateTime::from_unix_timestamp(now).ok()?.date();
        let (first, last) = match self {
            Preset::LastDays(n) => (
                today.checked_sub(time::Duration::days(n.clamp(1, MAX_LAST_DAYS) - 1))?,
                today,
            ),
            Preset::ThisMonth => (today.replace_day(1).ok()?, today),
            Preset::LastMonth => {
                let last = today.replace_day(1).ok()?.previous_day()?;
                (last.replace_day(1).ok()?, last)
            }
            Preset::ThisYear => (
                Date::from_calendar_date(today.year(), Month::January, 1).ok()?,
                today,
            ),
        };
        let midnight = |d: Date| d.midnight().assume_utc().unix_timestamp();
        Some((date(midnight(first))?, date(midnight(last))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dates checked by hand.
    #[test]
    fn known_dates() {
        for (t, text) in [
            (1, "1970-01-01 00:00:01Z"),
            (-1, "1969-12-31 23:59:59Z"),
            (86_400, "1970-01-02 00:00:00Z"),
            (951_782_400, "2000-02-29 00:00:00Z"),
            (4_107_542_400, "2100-03-01 00:00:00Z"),
            (MAX_TIME, "9999-12-31 23:59:59Z"),
            (253_402_300_800, "10000-01-01 00:00:00Z"),
            (-62_167_219_200, "0000-01-01 00:00:00Z"),
            (-62_167_219_201, "-001-12-31 23:59:59Z"),
            (-377_705_116_800, "-9999-01-01 00:00:00Z"),
            (-31_619_087_596_800, "-999999-01-01 00:00:00Z"),
            (31_494_784_780_799, "999999-12-31 23:59:59Z"),
            (31_494_784_780_800, "31494784780800"),
        ] {
            assert_eq!(time(t), text, "{t}");
        }
    }

    proptest::proptest! {
        /// What `time` prints, `parse_time` reads back to the same second.
        #[test]
        fn printed_times_parse_back(t in 1i64..=MAX_TIME) {
            let text = time(t);
            proptest::prop_assert_eq!(parse_time(&text).ok(), Some(t), "{}", text);
            proptest::prop_assert_eq!(parse_time(&text.replace(' ', "T")).ok(), Some(t));
        }

        /// `h:mm:ss` reads back to the seconds, minutes and seconds always two digits below 60.
        #[test]
        fn hms_reads_back(seconds in 0i64..=10_000_000_000) {
            let text = hms(seconds);
            let parts: Vec<&str> = text.split(':').collect();
            proptest::prop_assert_eq!(parts.len(), 3, "{}", text);
            proptest::prop_assert!(parts[1].len() == 2 && parts[2].len() == 2, "{}", text);
            let (h, m, s): (i64, i64, i64) =
                (parts[0].parse().unwrap_or(-1), parts[1].parse().unwrap_or(-1), parts[2].parse().unwrap_or(-1));
            proptest::prop_assert!((0..60).contains(&m) && (0..60).contains(&s), "{}", text);
            proptest::prop_assert_eq!(h * 3600 + m * 60 + s, seconds);
            proptest::prop_assert!(!text.starts_with(['-', '+', '=', '@']));
        }

        /// Negative durations, which no report gives, never start a formula either.
        #[test]
        fn negative_hms_is_zero(seconds in i64::MIN..0) {
            proptest::prop_assert_eq!(hms(seconds), "0:00:00");
        }

        /// `iso` is `time` in ISO 8601 form, and reads back.
        #[test]
        fn iso_reads_back(t in 0i64..=MAX_TIME) {
            let text = iso(t).unwrap_or_default();
            proptest::prop_assert_eq!(parse_time(&text).ok(), Some(t), "{}", text);
            proptest::prop_assert_eq!(text.len(), 20);
        }

        /// From one midnight to the next the date moves by one day: the same month and the
        /// next day, or from a month's last day (28 to 31) to the 1st of the next month.
        #[test]
        fn days_follow_each_other(day in 1i64..2_932_896) {
            let (today, tomorrow) = (time(day * 86_400), time((day + 1) * 86_400));
            let field = |text: &str, range: std::ops::Range<usize>| -> u32 {
                text[range].parse().unwrap_or(0)
            };
            proptest::prop_assert!(today.ends_with(" 00:00:00Z"), "{}", today);
            let (d, next_d) = (field(&today, 8..10), field(&tomorrow, 8..10));
            if next_d == 1 {
                proptest::prop_assert!((28..=31).contains(&d), "{} {}", today, tomorrow);
                proptest::prop_assert_ne!(&today[..7], &tomorrow[..7]);
            } else {
                proptest::prop_assert_eq!(next_d, d + 1);
                proptest::prop_assert_eq!(&today[..7], &tomorrow[..7]);
            }
        }
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(time(1_700_000_000), "2023-11-14 22:13:20Z");
        assert_eq!(parse_time("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000);
        assert_eq!(parse_time("2026-11-01").unwrap(), 1_793_491_200);
        assert_eq!(parse_time("42").unwrap(), 42);
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_time("2024-02-29T23:59:59").unwrap(), 1_709_251_199);
        for wrong in [
            "2026-02-30",
            "2025-02-29",
            "2026-04-31",
            "2026-01-01T24:00",
            "2026-01-01T10:60",
            "2026-01-01T-1:00",
            "99999999999999-01-01",
            "1969-12-31",
            "-5",
            "253402300800",
            "2026-1-1-1",
            "+2026-01-01",
        ] {
            assert!(parse_time(wrong).is_err(), "{wrong} accepted");
        }
        assert_eq!(parse_time(&MAX_TIME.to_string()).unwrap(), MAX_TIME);
        assert_eq!(time(0), "-");
    }

    #[test]
    fn rfc3339_instants() {
        let t = 1_772_352_900; // 2026-03-01T08:15:00Z
        for text in [
            "2026-03-01T08:15:00Z",
            "2026-03-01t08:15:00z",
            "2026-03-01T08:15:00.999Z",
            "2026-03-01T10:15:00+02:00",
            "2026-03-01T05:45:00-02:30",
            "2026-03-01T08:15:00+00:00",
            "2026-03-01 08:15:00",
            "2026-03-01T08:15",
        ] {
            assert_eq!(parse_time(text).ok(), Some(t), "{text}");
        }
        for wrong in [
            "2026-03-01T08:15:00+2:00",
            "2026-03-01T08:15:00+02",
            "2026-03-01T08:15:00+24:00",
            "2026-03-01T08:15:00.Z",
            "2026-03-01T08:15.5Z",
            "1970-01-01T00:30:00+01:00",
            "9999-12-31T23:59:59-01:00",
        ] {
            assert!(parse_time(wrong).is_err(), "{wrong} accepted");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration(3725), "1h 02m 05s");
        assert_eq!(duration(65), "1m 05s");
        assert_eq!(duration(-3), "0s");
    }

    #[test]
    fn windows() {
        let ends = |from, to| window(from, to, 99).map(|s| (s.from, s.to)).unwrap();
        assert_eq!(ends(None, None), (0, 99));
        assert_eq!(ends(Some("10"), None), (10, 99));
        // From later than now, without an end: an empty window, not an error (E15).
        assert_eq!(ends(Some("200"), None), (200, 99));
        assert_eq!(ends(Some("10"), Some("10")), (10, 10));
        assert!(matches!(
            window(Some("2026-10-15"), Some("2026-10-01"), 99),
            Err(WindowError::Reversed)
        ));
        assert!(matches!(
            window(Some("soon"), None, 99),
            Err(WindowError::NotATime(_))
        ));
    }

    /// A date as `to` runs through the end of its day; an instant or a unix time is exact.
    #[test]
    fn a_dates_end_is_inclusive() {
        let june = window(Some("2026-06-01"), Some("2026-06-30"), 0).unwrap();
        let july = parse_time("2026-07-01").unwrap();
        assert_eq!(june.from, parse_time("2026-06-01").unwrap());
        assert_eq!(june.to, july - 1, "through 2026-06-30 23:59:59");
        assert!(june.from_day && june.to_day && june.to_given);
        assert_eq!(
            june.described(),
            "1 Jun 2026 – 30 Jun 2026 (inclusive, days in UTC)"
        );
        assert_eq!(june.exact(), "2026-06-01 00:00:00Z → 2026-06-30 23:59:59Z");
        // One day: from and to the same date is that whole day, not an empty window.
        let day = window(Some("2026-06-30"), Some("2026-06-30"), 0).unwrap();
        assert_eq!(day.to - day.from, DAY - 1);
        // The day before the start is reversed.
        assert!(window(Some("2026-06-30"), Some("2026-06-29"), 0).is_err());
        for exact in [
            "1782864000",
            "2026-07-01T00:00:00Z",
            "2026-07-01T02:00:00+02:00",
        ] {
            let span = window(None, Some(exact), 0).unwrap();
            assert_eq!(span.to, july, "{exact}");
            assert!(!span.to_day);
            assert_eq!(
                span.described(),
                "the beginning of the log – 2026-07-01 00:00:00Z"
            );
        }
        // The last day the picker takes ends on the last second it takes.
        assert_eq!(window(None, Some("9999-12-31"), 0).unwrap().to, MAX_TIME);
        let open = window(Some("2026-06-01"), None, july).unwrap();
        assert_eq!(
            open.described(),
            "1 Jun 2026 – now (2026-07-01 00:00:00Z) (days in UTC)"
        );
    }

    #[test]
    fn presets_are_whole_days_through_today() {
        // 2026-03-10 15:04:05Z.
        let now = parse_time("2026-03-10T15:04:05Z").unwrap();
        let days = |p: Preset| p.days(now).unwrap();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(days(Preset::LastDays(7)), pair("2026-03-04", "2026-03-10"));
        assert_eq!(days(Preset::LastDays(1)), pair("2026-03-10", "2026-03-10"));
        assert_eq!(days(Preset::LastDays(30)), pair("2026-02-09", "2026-03-10"));
        assert_eq!(days(Preset::ThisMonth), pair("2026-03-01", "2026-03-10"));
        assert_eq!(days(Preset::LastMonth), pair("2026-02-01", "2026-02-28"));
        assert_eq!(days(Preset::ThisYear), pair("2026-01-01", "2026-03-10"));
        // In January, last month is December of the year before.
        let january = parse_time("2028-01-05").unwrap();
        assert_eq!(
            Preset::LastMonth.days(january).unwrap(),
            pair("2027-12-01", "2027-12-31")
        );
        // Each preset is a window of whole days that holds now.
        for preset in Preset::OFFERED {
            let (from, to) = days(preset);
            let span = window(Some(&from), Some(&to), now).unwrap();
            assert_eq!((span.to + 1 - span.from) % DAY, 0, "{preset:?}");
            if preset != Preset::LastMonth {
                assert!(span.from <= now && now <= span.to, "{preset:?}");
            }
        }
        assert_eq!(Preset::parse_last("30d").unwrap(), Preset::LastDays(30));
        assert_eq!(Preset::parse_last("7").unwrap(), Preset::LastDays(7));
        for wrong in ["0d", "-3d", "+3", "3w", "", "3661d", "d"] {
            assert!(Preset::parse_last(wrong).is_err(), "{wrong} accepted");
        }
    }

    #[test]
    fn clocks_and_iso() {
        assert_eq!(hms(0), "0:00:00");
        assert_eq!(hms(245), "0:04:05");
        assert_eq!(hms(3725), "1:02:05");
        assert_eq!(hms(93_600), "26:00:00");
        assert_eq!(hms(-5), "0:00:00");
        assert_eq!(iso(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
        assert_eq!(iso(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_time(&iso(1_700_000_000).unwrap()).unwrap(),
            1_700_000_000
        );
        assert_eq!(long_date(1_700_000_000), "14 Nov 2023");
        assert_eq!(
            parse_typed("2026-11-01").unwrap(),
            Typed::Day(1_793_491_200)
        );
        assert_eq!(
            parse_typed("1793491200").unwrap(),
            Typed::Instant(1_793_491_200)
        );
    }

    #[test]
    fn dates() {
        assert_eq!(date(1_793_491_200).as_deref(), Some("2026-11-01"));
        assert_eq!(date(1_793_491_199).as_deref(), Some("2026-10-31"));
        assert_eq!(date(-1), None);
        assert_eq!(date(MAX_TIME).as_deref(), Some("9999-12-31"));
    }
}
