//! IC numbers in free text: the two maskers. Text a person wrote (messages, queries,
//! error reports) is masked where a valid IC number stands; text OCR read is masked
//! more widely, since a misread number need not be a valid one.

/// Masks every IC-shaped number in `text`: twelve digits grouped 6-2-4 (separated by `-`,
/// a space, or nothing), not part of a longer digit run, whose first six digits can be a
/// YYMMDD date. The result keeps the date only, as `MyKad::masked` does:
/// `900101-**-****`. Other text is unchanged.
pub fn mask_ic_numbers(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts_run = bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit());
        if starts_run {
            if let Some((end, digits)) = match_ic(bytes, i) {
                out.push_str(&text[copied..i]);
                out.push_str(&crate::domain::mykad::masked_digits(&digits));
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// Matches `\d{6}[- ]?\d{2}[- ]?\d{4}` at `start`, not followed by a digit, with a
/// plausible YYMMDD; returns the end and the twelve digits.
fn match_ic(bytes: &[u8], start: usize) -> Option<(usize, String)> {
    let mut digits = String::with_capacity(12);
    let mut i = start;
    for (group, len) in [6usize, 2, 4].into_iter().enumerate() {
        if group > 0 && i < bytes.len() && (bytes[i] == b'-' || bytes[i] == b' ') {
            i += 1;
        }
        for _ in 0..len {
            let b = *bytes.get(i)?;
            if !b.is_ascii_digit() {
                return None;
            }
            digits.push(char::from(b));
            i += 1;
        }
    }
    if bytes.get(i).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let month: u32 = digits[2..4].parse().ok()?;
    let day: u32 = digits[4..6].parse().ok()?;
    ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some((i, digits))
}

/// Every run of twelve or more digits (spaces and dashes between them allowed, as cards
/// print and OCR splits them) keeps its first six digits, the birth date the masked form
/// shows anyway, and hides the rest. Over-masks a long receipt number, never under-masks
/// a misread IC number.
pub fn mask_digit_runs(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The run: digits with single spaces or dashes between them.
        let mut end = i;
        let mut digits = 0;
        let mut j = i;
        while j < chars.len() {
            if chars[j].is_ascii_digit() {
                digits += 1;
                end = j + 1;
                j += 1;
            } else if matches!(chars[j], ' ' | '-')
                && chars.get(j + 1).is_some_and(|c| c.is_ascii_digit())
            {
                j += 1;
            } else {
                break;
            }
        }
        let mut seen = 0;
        for &c in &chars[i..end] {
            if c.is_ascii_digit() {
                seen += 1;
                out.push(if digits >= 12 && seen > 6 { '*' } else { c });
            } else {
                out.push(c);
            }
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_ic_shaped_numbers_only() {
        assert_eq!(
            mask_ic_numbers("IC saya 900101-14-5678 ya"),
            "IC saya 900101-**-**** ya"
        );
        assert_eq!(mask_ic_numbers("900101145678"), "900101-**-****");
        assert_eq!(
            mask_ic_numbers("ic: 900101 14 5678."),
            "ic: 900101-**-****."
        );
        // Not IC-shaped: a phone number, a longer run, an impossible date, already masked.
        assert_eq!(mask_ic_numbers("call 60123456789"), "call 60123456789");
        assert_eq!(mask_ic_numbers("9001011456781"), "9001011456781");
        assert_eq!(mask_ic_numbers("901301145678"), "901301145678");
        assert_eq!(mask_ic_numbers("900101-**-****"), "900101-**-****");
        assert_eq!(mask_ic_numbers("harga RM 12.50 🙂"), "harga RM 12.50 🙂");
    }

    #[test]
    fn digit_runs_hide_all_but_the_birth_date() {
        assert_eq!(
            mask_digit_runs("KAD PENGENALAN\n900101-14-5678\nSITI"),
            "KAD PENGENALAN\n900101-**-****\nSITI"
        );
        assert_eq!(mask_digit_runs("no 900101145678."), "no 900101******.");
        assert_eq!(mask_digit_runs("900101 14 5678"), "900101 ** ****");
    }

    #[test]
    fn digit_runs_leave_amounts_dates_and_phone_numbers() {
        let text = "TOTAL 148.60\n12/03/2025 10:15\nTEL 03-7955 1234\nINV 12345678901";
        assert_eq!(mask_digit_runs(text), text);
    }
}
