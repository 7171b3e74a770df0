//! Malaysian days. Malaysia keeps one time zone, UTC+8, all year (no daylight saving), so
//! a fixed offset is exact: ages, analysts' days and campaign calendars use these.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

/// Malaysia Time, UTC+8.
pub fn malaysia() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// The Malaysian day of an instant.
pub fn malaysian_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&malaysia()).date_naive()
}

/// Today in Malaysia, for ages.
pub fn malaysia_today() -> NaiveDate {
    malaysian_day(Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_malaysian_day_starts_at_16_00_utc() {
        let day = |s: &str| malaysian_day(s.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(day("2025-01-01T15:59:59Z").to_string(), "2025-01-01");
        assert_eq!(day("2025-01-01T16:00:00Z").to_string(), "2025-01-02");
    }
}
