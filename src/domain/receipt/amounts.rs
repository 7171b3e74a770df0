//! Finding ringgit amounts in a line of OCR text.
//!
//! Receipts print money with exactly two decimals, so a bare number counts as money only in
//! that form (`29.70`, `1,234.50`, OCR's decimal comma `29,70`). With an `RM`/`MYR` prefix
//! any ringgit form counts (`RM 30`). This one rule keeps quantities (`1.250`), dates
//! (`12.03.2025`), times, phone numbers and rates (`6.00%`) out of the amounts.

use crate::domain::money::Money;

/// Amounts beyond RM 100 million are misreads (barcodes, card numbers), not purchases.
/// Capping them also keeps every later sum far from i64 overflow.
pub(crate) const MAX_AMOUNT_SEN: i64 = 10_000_000_000;

/// An amount found in a line, with the byte span it occupies (sign and currency included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AmountTok {
    pub value: Money,
    pub start: usize,
    pub end: usize,
}

/// All amounts in `line`, left to right. `line` may be in any case.
pub(crate) fn scan_amounts(line: &str) -> Vec<AmountTok> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i + 1;
        while end < b.len() && in_run(b, end) {
            end += 1;
        }
        // Sentence punctuation after a number ("TOTAL 12.50.") is not part of it.
        while end > start + 1 && matches!(b[end - 1], b'.' | b',') {
            end -= 1;
        }
        i = end.max(start + 1);
        if let Some(tok) = read_amount(line, start, end) {
            out.push(tok);
        }
    }
    out
}

/// Whether byte `at` continues the numeric run that reaches it. `O` counts as a zero inside
/// a number (`2O.50`), a cheap fix for the commonest OCR confusion.
fn in_run(b: &[u8], at: usize) -> bool {
    match b[at] {
        b'0'..=b'9' | b'.' | b',' => true,
        b'O' | b'o' => {
            let prev_ok = matches!(b[at - 1], b'0'..=b'9' | b'.' | b'O' | b'o');
            let next_ok = match b.get(at + 1) {
                None => true,
                Some(n) => !n.is_ascii_alphabetic() || matches!(n, b'O' | b'o'),
            };
            prev_ok && next_ok
        }
        _ => false,
    }
}

fn read_amount(line: &str, start: usize, end: usize) -> Option<AmountTok> {
    let b = line.as_bytes();
    // A run glued to a preceding fraction (".50") or punctuation-joined number is a fragment.
    if start > 0 && matches!(b[start - 1], b'.' | b',') {
        return None;
    }
    let run: String = line
        .get(start..end)?
        .chars()
        .map(|c| if c == 'O' || c == 'o' { '0' } else { c })
        .collect();
    let after = skip_spaces(b, end);
    if b.get(after) == Some(&b'%') {
        return None; // a rate, not an amount
    }
    if b.get(end) == Some(&b':') && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
        return None; // a time
    }

    let (currency_start, has_currency) = currency_before(b, start);
    if !has_currency && start > 0 && b[start - 1].is_ascii_alphabetic() && !is_times_sign(b, start)
    {
        return None; // glued to a word: an item code like "A12.50"
    }
    let normalised = normalise_number(&run, has_currency)?;
    let mut value = Money::parse_ringgit(&normalised).ok()?;
    if value.sen() > MAX_AMOUNT_SEN {
        return None;
    }

    let mut span_start = currency_start;
    let mut span_end = end;
    let mut negative = false;
    if span_start > 0 && b[span_start - 1] == b'-' {
        negative = true;
        span_start -= 1;
    } else if has_currency {
        // "- RM 2.00" and "RM-2.00"
        let before_rm = skip_spaces_back(b, currency_start);
        if before_rm > 0 && b[before_rm - 1] == b'-' && before_rm < currency_start {
            negative = true;
            span_start = before_rm - 1;
        } else if b[start - 1] == b'-' {
            negative = true;
        }
    }
    if span_start > 0 && b[span_start - 1] == b'(' && b.get(end) == Some(&b')') {
        negative = true;
        span_start -= 1;
        span_end += 1;
    } else if b.get(end) == Some(&b'-')
        && !matches!(b.get(end + 1), Some(n) if !n.is_ascii_whitespace())
    {
        negative = true; // "2.00-" as some POS print deductions
        span_end += 1;
    }
    if negative {
        value = -value;
    }
    Some(AmountTok {
        value,
        start: span_start,
        end: span_end,
    })
}

/// Returns where a currency prefix in front of `start` begins, and whether there is one.
/// Accepts `RM29.70`, `RM 29.70`, `MYR 29.70`, `RM-2.00`.
fn currency_before(b: &[u8], start: usize) -> (usize, bool) {
    let mut j = start;
    if j > 0 && b[j - 1] == b'-' {
        j -= 1;
    }
    let j = skip_spaces_back(b, j);
    for prefix in [&b"RM"[..], b"MYR"] {
        if j >= prefix.len() && b[j - prefix.len()..j].eq_ignore_ascii_case(prefix) {
            let at = j - prefix.len();
            if at == 0 || !b[at - 1].is_ascii_alphabetic() {
                return (at, true);
            }
        }
    }
    (start, false)
}

/// `2x4.50` or `X4.50`: an `x` used as a multiplication sign.
fn is_times_sign(b: &[u8], start: usize) -> bool {
    matches!(b[start - 1], b'x' | b'X') && (start < 2 || !b[start - 2].is_ascii_alphabetic())
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    i
}

fn skip_spaces_back(b: &[u8], mut j: usize) -> usize {
    while j > 0 && b[j - 1] == b' ' {
        j -= 1;
    }
    j
}

/// Accepts the shapes described in the module doc and returns text `Money` can parse.
fn normalise_number(run: &str, has_currency: bool) -> Option<String> {
    let dots = run.matches('.').count();
    let commas = run.matches(',').count();
    match (dots, commas) {
        (0, 0) if has_currency && run.len() <= 9 => Some(run.to_string()),
        (0, 1) => {
            // Decimal comma: "29,70". A thousands comma ("1,234") without decimals is not money.
            let (whole, fraction) = run.split_once(',')?;
            (fraction.len() == 2 && !whole.is_empty()).then(|| format!("{whole}.{fraction}"))
        }
        (1, _) => {
            let (_, fraction) = run.split_once('.')?;
            let decimals_ok = fraction.len() == 2 || (has_currency && fraction.len() == 1);
            decimals_ok.then(|| run.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(line: &str) -> Vec<i64> {
        scan_amounts(line).iter().map(|t| t.value.sen()).collect()
    }

    #[test]
    fn reads_plain_and_currency_amounts() {
        assert_eq!(values("TOTAL 29.70"), vec![2970]);
        assert_eq!(values("TOTAL RM29.70"), vec![2970]);
        assert_eq!(values("Total: RM 29.70"), vec![2970]);
        assert_eq!(values("TOTAL MYR 1,234.50"), vec![123_450]);
        assert_eq!(values("Cash RM 50"), vec![5000]);
        assert_eq!(values("TOTAL:29.70"), vec![2970]);
    }

    #[test]
    fn reads_tax_codes_and_multiplication() {
        assert_eq!(values("NASI LEMAK 29.70 SR"), vec![2970]);
        assert_eq!(values("ROTI 12.00S"), vec![1200]);
        assert_eq!(values("MILO 2 x 4.50  9.00 ZR"), vec![450, 900]);
        assert_eq!(values("MILO 2x4.50 9.00"), vec![450, 900]);
        assert_eq!(values("MILO @4.50 9.00"), vec![450, 900]);
    }

    #[test]
    fn reads_negative_forms() {
        assert_eq!(values("ROUNDING -0.02"), vec![-2]);
        assert_eq!(values("DISC (2.00)"), vec![-200]);
        assert_eq!(values("DISC 2.00-"), vec![-200]);
        assert_eq!(values("DISC -RM2.00"), vec![-200]);
        assert_eq!(values("DISC - RM 2.00"), vec![-200]);
        assert_eq!(values("DISC RM-2.00"), vec![-200]);
        // A spaced dash is a separator, not a sign.
        assert_eq!(values("ITEM - 2.00"), vec![200]);
    }

    #[test]
    fn ignores_non_money_numbers() {
        assert!(values("1.250 KG").is_empty());
        assert!(values("DATE 12.03.2025 14:32").is_empty());
        assert!(values("SST 6.00%").is_empty());
        assert!(values("SST 6 %").is_empty());
        assert!(values("TEL 03-7865 1234").is_empty());
        assert!(values("TOTAL QTY 12").is_empty());
        assert!(values("CODE A12.50").is_empty());
        assert!(values("1,234").is_empty());
        assert!(values("12:30").is_empty());
        assert!(values("9556001234567").is_empty());
    }

    #[test]
    fn reads_ocr_decimal_comma_and_letter_o() {
        assert_eq!(values("TOTAL 29,70"), vec![2970]);
        assert_eq!(values("TOTAL 2O.5O"), vec![2050]);
        assert_eq!(values("TOTAL 12.50."), vec![1250]);
    }

    #[test]
    fn spans_cover_sign_and_currency() {
        let line = "DISC -RM2.00 X";
        let tok = scan_amounts(line)[0];
        assert_eq!(&line[tok.start..tok.end], "-RM2.00");
        let line = "DISC (2.00)";
        let tok = scan_amounts(line)[0];
        assert_eq!(&line[tok.start..tok.end], "(2.00)");
    }

    #[test]
    fn rejects_absurd_amounts() {
        assert!(values("TOTAL 999999999999.00").is_empty());
    }
}
