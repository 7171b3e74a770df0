//! Dates and times as Malaysian receipts print them.
//!
//! Numeric dates are day-first (`30/04/2017`, `25-12-18`) unless they start with a four-digit
//! year (`2025-03-12`). Month names are read in English and Malay (`12 Mar 2025`, `12-MAC-25`,
//! `5 Ogos 2024`). A date that does not exist (`31/02/2025`) is rejected rather than swapped
//! or clamped: a wrong purchase date is worse than none.

use chrono::{NaiveDate, NaiveTime};

use super::text::{has_word, tokens, Line, Tok, TokKind};

/// Two-digit years are this century's; four-digit years outside this range are misreads.
const MIN_YEAR: i32 = 1990;
const MAX_YEAR: i32 = 2099;

/// The purchase date of a receipt: a date on a line labelled DATE/TARIKH wins, otherwise the
/// first date in the text. Dates on expiry/validity/birth lines are never the purchase date.
pub(crate) fn find_date(lines: &[Line<'_>]) -> Option<(NaiveDate, usize)> {
    let mut first = None;
    for (pos, line) in lines.iter().enumerate() {
        if is_excluded_date_line(&line.upper) {
            continue;
        }
        let Some(date) = dates_in(&line.upper).into_iter().next() else {
            continue;
        };
        if ["DATE", "TARIKH", "TRKH", "DT"]
            .iter()
            .any(|w| has_word(&line.upper, w))
        {
            return Some((date, pos));
        }
        first.get_or_insert((date, pos));
    }
    first
}

/// The time of purchase: on the date's line if there is one, else a TIME/MASA line, else the
/// first time in the text.
pub(crate) fn find_time(lines: &[Line<'_>], date_line: Option<usize>) -> Option<NaiveTime> {
    if let Some(t) = date_line
        .and_then(|i| lines.get(i))
        .and_then(|l| times_in(&l.upper).into_iter().next())
    {
        return Some(t);
    }
    let mut first = None;
    for line in lines {
        if is_excluded_date_line(&line.upper) {
            continue;
        }
        let Some(t) = times_in(&line.upper).into_iter().next() else {
            continue;
        };
        if has_word(&line.upper, "TIME") || has_word(&line.upper, "MASA") {
            return Some(t);
        }
        first.get_or_insert(t);
    }
    first
}

fn is_excluded_date_line(upper: &str) -> bool {
    [
        "EXP", "EXPIRY", "EXPIRES", "EXPIRE", "VALID", "LUPUT", "BIRTH", "LAHIR", "DOB", "BEFORE",
    ]
    .iter()
    .any(|w| has_word(upper, w))
}

/// All valid dates in an uppercased line, left to right.
pub(crate) fn dates_in(upper: &str) -> Vec<NaiveDate> {
    let toks: Vec<Tok<'_>> = tokens(upper);
    let mut out = Vec::new();
    for i in 0..toks.len() {
        if toks[i].kind == TokKind::Space || glued_to_number(&toks, i) {
            continue;
        }
        if let Some(d) = numeric_date(&toks, i)
            .or_else(|| day_month_name_year(&toks, i))
            .or_else(|| month_name_day_year(&toks, i))
        {
            out.push(d);
        }
    }
    out
}

/// Whether the token at `i` continues a number to its left (`1.12.03.2025`, an IC number):
/// a date must start a number group.
fn glued_to_number(toks: &[Tok<'_>], i: usize) -> bool {
    i >= 2
        && matches!(toks[i - 1].kind, TokKind::Sep('/' | '-' | '.'))
        && toks[i - 2].kind == TokKind::Num
}

/// Cursor over tokens that skips spaces around date separators (`12 / 03 / 2025`).
struct Cursor<'t, 'a> {
    toks: &'t [Tok<'a>],
    at: usize,
}

impl<'a> Cursor<'_, 'a> {
    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.at).copied()
    }

    fn num(&mut self, lens: &[usize]) -> Option<&'a str> {
        let t = self.peek()?;
        (t.kind == TokKind::Num && lens.contains(&t.text.len())).then(|| {
            self.at += 1;
            t.text
        })
    }

    fn word(&mut self) -> Option<&'a str> {
        let t = self.peek()?;
        (t.kind == TokKind::Word).then(|| {
            self.at += 1;
            t.text
        })
    }

    fn spaces(&mut self) -> bool {
        let before = self.at;
        while self.peek().is_some_and(|t| t.kind == TokKind::Space) {
            self.at += 1;
        }
        self.at > before
    }

    /// One of `seps`, with optional spaces either side.
    fn sep(&mut self, seps: &[char]) -> Option<char> {
        let save = self.at;
        self.spaces();
        match self.peek().map(|t| t.kind) {
            Some(TokKind::Sep(c)) if seps.contains(&c) => {
                self.at += 1;
                self.spaces();
                Some(c)
            }
            _ => {
                self.at = save;
                None
            }
        }
    }

    /// Whether the number just read is the end of the number group (no `.5`, `/7` after it).
    fn number_ends(&self) -> bool {
        match (self.toks.get(self.at), self.toks.get(self.at + 1)) {
            (Some(t), Some(n)) => {
                !(matches!(t.kind, TokKind::Sep('/' | '-' | '.' | ':' | ','))
                    && n.kind == TokKind::Num)
            }
            _ => true,
        }
    }
}

/// `dd/mm/yyyy`, `dd-mm-yy`, `dd.mm.yyyy`, `yyyy-mm-dd`, `yyyy/mm/dd`.
fn numeric_date(toks: &[Tok<'_>], i: usize) -> Option<NaiveDate> {
    let mut c = Cursor { toks, at: i };
    let first = c.num(&[1, 2, 4])?;
    let sep = c.sep(&['/', '-', '.'])?;
    let second = c.num(&[1, 2])?;
    c.sep(&[sep])?;
    if first.len() == 4 {
        let third = c.num(&[1, 2])?;
        c.number_ends().then_some(())?;
        return make_date(first.parse().ok()?, second, third);
    }
    let third = c.num(&[2, 4])?;
    c.number_ends().then_some(())?;
    let y = year(third)?;
    make_date(y, second, first).or_else(|| {
        // OCR reads a leading 0 as 9, 8 or 6 (`95/04/2025`); repaired only when the date
        // is otherwise impossible and the repaired one is valid.
        let day = zero_confused(first);
        let month = zero_confused(second);
        (day.is_some() || month.is_some()).then_some(())?;
        make_date(
            y,
            month.as_deref().unwrap_or(second),
            day.as_deref().unwrap_or(first),
        )
    })
}

/// `95` → `05`: a two-digit field whose leading 0 may have been read as 9, 8 or 6.
fn zero_confused(field: &str) -> Option<String> {
    match field.as_bytes() {
        [b'9' | b'8' | b'6', rest] => Some(format!("0{}", *rest as char)),
        _ => None,
    }
}

/// `12 Mar 2025`, `12-MAR-25`, `12MAR2025`, `5 Ogos, 2024`.
fn day_month_name_year(toks: &[Tok<'_>], i: usize) -> Option<NaiveDate> {
    let mut c = Cursor { toks, at: i };
    let day = c.num(&[1, 2])?;
    if c.sep(&['-', '/', '.']).is_none() {
        c.spaces();
    }
    let month = month_number(c.word()?)?;
    if c.sep(&['-', '/', '.', ',']).is_none() {
        c.spaces();
    }
    let y = c.num(&[2, 4])?;
    c.number_ends().then_some(())?;
    make_date_num(year(y)?, month, day.parse().ok()?)
}

/// `Mar 12, 2025`, `MAR 12 2025` (four-digit year only: `MAR 12 25` is too ambiguous).
fn month_name_day_year(toks: &[Tok<'_>], i: usize) -> Option<NaiveDate> {
    let mut c = Cursor { toks, at: i };
    let month = month_number(c.word()?)?;
    c.spaces().then_some(())?;
    let day = c.num(&[1, 2])?;
    if c.sep(&[',']).is_none() {
        c.spaces().then_some(())?;
    }
    let y = c.num(&[4])?;
    c.number_ends().then_some(())?;
    make_date_num(year(y)?, month, day.parse().ok()?)
}

fn year(text: &str) -> Option<i32> {
    let y: i32 = text.parse().ok()?;
    match text.len() {
        2 => Some(2000 + y),
        4 if (MIN_YEAR..=MAX_YEAR).contains(&y) => Some(y),
        _ => None,
    }
}

fn make_date(year: i32, month: &str, day: &str) -> Option<NaiveDate> {
    make_date_num(year, month.parse().ok()?, day.parse().ok()?)
}

fn make_date_num(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
        return None;
    }
    NaiveDate::from_ymd_opt(year, month, day)
}

/// English and Malay month names and their usual abbreviations.
fn month_number(word: &str) -> Option<u32> {
    let m = match word {
        "JAN" | "JANUARY" | "JANUARI" => 1,
        "FEB" | "FEBRUARY" | "FEBRUARI" => 2,
        "MAR" | "MARCH" | "MAC" => 3,
        "APR" | "APRIL" => 4,
        "MAY" | "MEI" => 5,
        "JUN" | "JUNE" => 6,
        "JUL" | "JULY" | "JULAI" => 7,
        "AUG" | "AUGUST" | "OGOS" | "OGO" => 8,
        "SEP" | "SEPT" | "SEPTEMBER" => 9,
        "OCT" | "OCTOBER" | "OKT" | "OKTOBER" => 10,
        "NOV" | "NOVEMBER" => 11,
        "DEC" | "DECEMBER" | "DIS" | "DISEMBER" => 12,
        _ => return None,
    };
    Some(m)
}

/// All valid times in an uppercased line: `14:32`, `14:32:05`, `2:32 PM`, `02:32PM`, `2:32 P.M.`
pub(crate) fn times_in(upper: &str) -> Vec<NaiveTime> {
    let toks = tokens(upper);
    let mut out = Vec::new();
    for i in 0..toks.len() {
        if toks[i].kind != TokKind::Num
            || (i >= 2 && toks[i - 1].kind == TokKind::Sep(':') && toks[i - 2].kind == TokKind::Num)
        {
            continue;
        }
        if let Some(t) = time_at(&toks, i) {
            out.push(t);
        }
    }
    out
}

fn time_at(toks: &[Tok<'_>], i: usize) -> Option<NaiveTime> {
    let mut c = Cursor { toks, at: i };
    let hour: u32 = c.num(&[1, 2])?.parse().ok()?;
    c.sep(&[':'])?;
    let minute: u32 = c.num(&[2])?.parse().ok()?;
    let second: u32 = match c.sep(&[':']) {
        Some(_) => c.num(&[2])?.parse().ok()?,
        None => 0,
    };
    if !c.number_ends() {
        return None;
    }
    c.spaces();
    let meridiem = match c.word() {
        Some("AM") => Some(false),
        Some("PM") => Some(true),
        Some(w @ ("A" | "P")) if c.sep(&['.']).is_some() && c.word() == Some("M") => Some(w == "P"),
        _ => None,
    };
    let hour = match meridiem {
        None => hour,
        Some(_) if !(1..=12).contains(&hour) => return None,
        Some(false) => hour % 12,
        Some(true) => hour % 12 + 12,
    };
    NaiveTime::from_hms_opt(hour, minute, second)
}

#[cfg(test)]
mod tests {
    use super::super::text::lines;
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn one(s: &str) -> Option<NaiveDate> {
        dates_in(&s.to_ascii_uppercase()).into_iter().next()
    }

    #[test]
    fn numeric_dates_are_day_first() {
        assert_eq!(one("30/04/2017"), Some(d(2017, 4, 30)));
        assert_eq!(one("03/04/2017"), Some(d(2017, 4, 3)));
        assert_eq!(one("25-12-2018"), Some(d(2018, 12, 25)));
        assert_eq!(one("25-12-18"), Some(d(2018, 12, 25)));
        assert_eq!(one("5.1.2016"), Some(d(2016, 1, 5)));
        assert_eq!(one("Date : 12 / 03 / 2025"), Some(d(2025, 3, 12)));
    }

    #[test]
    fn year_first_dates() {
        assert_eq!(one("2025-03-12 14:32"), Some(d(2025, 3, 12)));
        assert_eq!(one("2025/3/2"), Some(d(2025, 3, 2)));
    }

    #[test]
    fn month_name_dates_in_english_and_malay() {
        assert_eq!(one("12 Mar 2025"), Some(d(2025, 3, 12)));
        assert_eq!(one("12-MAR-25"), Some(d(2025, 3, 12)));
        assert_eq!(one("12MAR2025"), Some(d(2025, 3, 12)));
        assert_eq!(one("5 Ogos, 2024"), Some(d(2024, 8, 5)));
        assert_eq!(one("1 Mac 2024"), Some(d(2024, 3, 1)));
        assert_eq!(one("24 Disember 2019"), Some(d(2019, 12, 24)));
        assert_eq!(one("Mar 12, 2025"), Some(d(2025, 3, 12)));
    }

    #[test]
    fn invalid_dates_are_rejected() {
        assert_eq!(one("31/02/2025"), None);
        assert_eq!(one("29/02/2023"), None);
        assert_eq!(one("29/02/2024"), Some(d(2024, 2, 29)));
        assert_eq!(one("12/13/2025"), None); // no month 13, and never read month-first
        assert_eq!(one("00/01/2025"), None);
        assert_eq!(one("31 Apr 2025"), None);
        assert_eq!(one("12/03/1875"), None);
        assert_eq!(one("12/03/20255"), None);
    }

    #[test]
    fn non_dates_are_ignored() {
        assert_eq!(one("IC 900101-14-5678"), None);
        assert_eq!(one("TOTAL 12.50"), None);
        assert_eq!(one("1.12.03.2025"), None);
        assert_eq!(one("TEL 03-7865-1234"), None);
        assert_eq!(one("MAR 12 25"), None);
    }

    #[test]
    fn times_in_24_and_12_hour_forms() {
        let t = |h, m, s| NaiveTime::from_hms_opt(h, m, s).unwrap();
        let first = |s: &str| times_in(&s.to_ascii_uppercase()).into_iter().next();
        assert_eq!(first("14:32"), Some(t(14, 32, 0)));
        assert_eq!(first("14:32:05"), Some(t(14, 32, 5)));
        assert_eq!(first("2:32 PM"), Some(t(14, 32, 0)));
        assert_eq!(first("2:32pm"), Some(t(14, 32, 0)));
        assert_eq!(first("12:05 AM"), Some(t(0, 5, 0)));
        assert_eq!(first("12:05 PM"), Some(t(12, 5, 0)));
        assert_eq!(first("9:15 a.m."), Some(t(9, 15, 0)));
        assert_eq!(first("25:00"), None);
        assert_eq!(first("13:00 PM"), None);
        assert_eq!(first("14:3"), None);
    }

    #[test]
    fn labelled_date_wins_and_expiry_is_skipped() {
        let text = "POINTS EXPIRY 31/12/2025\nPrinted 01/01/2025\nDATE: 15/03/2025 10:02";
        let ls = lines(text);
        let (date, at) = find_date(&ls).unwrap();
        assert_eq!(date, d(2025, 3, 15));
        assert_eq!(at, 2);
        assert_eq!(find_time(&ls, Some(at)), NaiveTime::from_hms_opt(10, 2, 0));
        let ls = lines("VALID BEFORE 31/12/2025\n01/01/2025");
        assert_eq!(find_date(&ls).map(|x| x.0), Some(d(2025, 1, 1)));
    }

    #[test]
    fn a_leading_zero_read_as_nine_is_repaired_only_when_needed() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(dates_in("DATE: 95/04/2025 14:30"), vec![d(2025, 4, 5)]);
        assert_eq!(dates_in("DATE: 91/87/2025"), vec![d(2025, 7, 1)]);
        // Valid dates are never touched, and hopeless ones stay unread.
        assert_eq!(dates_in("DATE: 19/05/2025"), vec![d(2025, 5, 19)]);
        assert!(dates_in("DATE: 45/04/2025").is_empty());
    }
}
