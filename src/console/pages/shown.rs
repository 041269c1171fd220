//! How the pages write times, offsets and states: plain text, escaped by the templates.

use time::OffsetDateTime;

/// A Unix time as `2026-01-02 13:04Z`; `-` for 0 (never).
pub fn time(t: i64) -> String {
    if t == 0 {
        return "-".into();
    }
    match OffsetDateTime::from_unix_timestamp(t) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute()
        ),
        Err(_) => t.to_string(),
    }
}

/// An optional time; `none` when there is none.
pub fn maybe_time(t: Option<i64>, none: &str) -> String {
    t.filter(|t| *t != 0)
        .map(time)
        .unwrap_or_else(|| none.to_string())
}

/// A clock offset in seconds, signed; `-` when never measured.
pub fn offset(seconds: Option<i64>) -> String {
    seconds
        .map(|o| format!("{o:+} s"))
        .unwrap_or_else(|| "-".into())
}

/// Whole days from `now` to `t`, rounded down (negative once past).
pub fn days_until(t: i64, now: i64) -> i64 {
    (t - now).div_euclid(86_400)
}

/// A date typed in a form (`YYYY-MM-DD`, as `<input type="date">` sends it): the start of
/// that day, UTC.
pub fn parse_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.trim().split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return None;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y) && digits(m) && digits(d)) {
        return None;
    }
    let y: i32 = y.parse().ok().filter(|y| (1970..=9999).contains(y))?;
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(y, month, d.parse().ok()?).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_dates() {
        assert_eq!(time(0), "-");
        assert_eq!(time(86_400 + 3_600 + 60), "1970-01-02 01:01Z");
        assert_eq!(maybe_time(None, "never"), "never");
        assert_eq!(offset(Some(-3)), "-3 s");
        assert_eq!(offset(Some(4)), "+4 s");
        assert_eq!(days_until(86_400 * 2 - 1, 0), 1);
        assert_eq!(days_until(-1, 0), -1);
        assert_eq!(parse_date("1970-01-02"), Some(86_400));
        assert_eq!(parse_date(" 2026-02-30"), None);
        assert_eq!(parse_date("+2026-01-01"), None);
        assert_eq!(parse_date("yesterday"), None);
    }
}
