//! The date of birth in a MyKad number carries no century. The rule used here:
//!
//! The birth year is the latest year ending in `YY` such that the birth date `YYYY-MM-DD`
//! is not after the reference date. So a holder is never born in the future and is less than
//! 100 years old on the reference date (someone exactly 100 on that day reads as born on it:
//! the number cannot tell them apart, and newborns are far more common among new registrations
//! than centenarians). The century is chosen by comparing month and day first, and only then is
//! the date validated, so `000229` is 2000-02-29 (a leap year) against a reference in 2025, but
//! is rejected against a reference of 2000-02-28, where it would mean 1900-02-29 (1900 was not
//! a leap year).

use chrono::{Datelike, NaiveDate};
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BirthDateError {
    #[error("month {month:02} does not exist")]
    InvalidMonth { month: u32 },
    #[error("day {day:02} does not exist in {} {year}", month_name(*.month))]
    InvalidDay { day: u32, month: u32, year: i32 },
}

pub fn infer_birth_date(
    yy: u32,
    month: u32,
    day: u32,
    reference: NaiveDate,
) -> Result<NaiveDate, BirthDateError> {
    let reference_year = reference.year();
    let years_back = (reference_year - yy as i32).rem_euclid(100);
    let mut year = reference_year - years_back;
    if year == reference_year && (month, day) > (reference.month(), reference.day()) {
        year -= 100;
    }
    if !(1..=12).contains(&month) {
        return Err(BirthDateError::InvalidMonth { month });
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or(BirthDateError::InvalidDay { day, month, year })
}

fn month_name(month: u32) -> &'static str {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    NAMES
        .get(month.wrapping_sub(1) as usize)
        .copied()
        .unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn century_boundary_around_reference_date() {
        let reference = day(2025, 6, 15);
        assert_eq!(infer_birth_date(25, 6, 15, reference), Ok(day(2025, 6, 15)));
        assert_eq!(infer_birth_date(25, 6, 16, reference), Ok(day(1925, 6, 16)));
        assert_eq!(infer_birth_date(0, 1, 1, reference), Ok(day(2000, 1, 1)));
        assert_eq!(
            infer_birth_date(99, 12, 31, reference),
            Ok(day(1999, 12, 31))
        );
        assert_eq!(infer_birth_date(26, 1, 1, reference), Ok(day(1926, 1, 1)));
        assert_eq!(
            infer_birth_date(24, 12, 31, reference),
            Ok(day(2024, 12, 31))
        );
    }

    #[test]
    fn leap_day_validated_after_century() {
        assert_eq!(
            infer_birth_date(0, 2, 29, day(2025, 1, 1)),
            Ok(day(2000, 2, 29))
        );
        assert_eq!(
            infer_birth_date(0, 2, 29, day(2000, 2, 28)),
            Err(BirthDateError::InvalidDay {
                day: 29,
                month: 2,
                year: 1900
            })
        );
        assert_eq!(
            infer_birth_date(0, 2, 29, day(2000, 2, 29)),
            Ok(day(2000, 2, 29))
        );
    }

    #[test]
    fn error_messages_name_the_problem() {
        let err = infer_birth_date(90, 2, 30, day(2025, 1, 1)).unwrap_err();
        assert_eq!(err.to_string(), "day 30 does not exist in February 1990");
        let err = infer_birth_date(90, 13, 1, day(2025, 1, 1)).unwrap_err();
        assert_eq!(err.to_string(), "month 13 does not exist");
        let err = infer_birth_date(90, 0, 1, day(2025, 1, 1)).unwrap_err();
        assert_eq!(err.to_string(), "month 00 does not exist");
    }
}
