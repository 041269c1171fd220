//! How the pages write times, offsets and states: plain text, escaped by the templates.
//! (Reading a typed date is `timefmt::parse_time`'s, shared with the command line.)

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
    }
}
