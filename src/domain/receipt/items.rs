//! Reading one item line: name, quantity, unit price, amount.
//!
//! Receipts print items in many layouts (`NAME AMOUNT`, `NAME QTY x PRICE AMOUNT`,
//! `QTY NAME AMOUNT`, `NAME PRICE QTY AMOUNT`, a barcode+name line followed by
//! `QTY x PRICE AMOUNT`). A number is only taken as the quantity when the arithmetic agrees
//! (quantity × unit price = amount to the sen, or amount ÷ quantity is exact), so "100 PLUS"
//! or "COKE 330 ML" keep their numbers in the name.

use super::amounts::AmountTok;
use super::model::LineItem;
use super::quantity::Quantity;
use super::text::collapse_spaces;
use crate::domain::money::Money;

const UNIT_WORDS: &[&str] = &[
    "KG", "L", "LTR", "LITRE", "LITER", "PCS", "PC", "UNIT", "UNITS", "EA", "NOS", "PKT", "BTL",
];

/// A barcode (EAN-8/13, UPC) printed before an item name: not part of the name.
const MIN_BARCODE_DIGITS: usize = 8;

/// Reads an item from `raw` (one line or segment) whose amounts are `amounts` (non-empty,
/// offsets into `raw`). `pending_name` is the previous line when it held only a name.
pub(crate) fn parse_item(
    raw: &str,
    amounts: &[AmountTok],
    pending_name: Option<&str>,
) -> Option<LineItem> {
    let last = *amounts.last()?;
    let amount = last.value;
    if amount.sen() <= 0 {
        return None;
    }
    let unit = (amounts.len() >= 2).then(|| amounts[amounts.len() - 2]);
    let head = raw.get(..amounts[0].start)?;
    let mid = unit.and_then(|u| raw.get(u.end..last.start)).unwrap_or("");
    let mut unit_price = unit.map(|u| u.value).filter(|u| u.sen() > 0);

    let mut words: Vec<String> = head.split_whitespace().map(str::to_string).collect();
    if unit_price.is_none() {
        unit_price = wide_unit_price(&mut words);
    }
    let found = leading_quantity(&mut words, true)
        .or_else(|| trailing_quantity(&mut words))
        .or_else(|| mid_quantity(mid))
        .or_else(|| leading_quantity(&mut words, false));

    let (quantity, unit_price) = settle(found, unit_price, amount, &mut words);
    let name = clean_name(words.iter().map(String::as_str))
        .or_else(|| pending_name.and_then(|p| clean_name(p.split_whitespace())))?;
    Some(LineItem {
        name,
        quantity,
        unit_price,
        amount,
    })
}

/// POS systems that print unit prices to four decimals (`1 X 3.3000   3.30`): the amount
/// scanner rightly skips `3.3000`, so it is read here, after an `x`/`@`, when the extra
/// decimals are zeros (sen are exact).
fn wide_unit_price(words: &mut Vec<String>) -> Option<Money> {
    let n = words.len();
    if n < 2 || !matches!(words[n - 2].as_str(), "x" | "X" | "@") {
        return None;
    }
    let (whole, fraction) = words[n - 1].split_once('.')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) || !(3..=4).contains(&fraction.len()) {
        return None;
    }
    if fraction[2..].bytes().any(|b| b != b'0') {
        return None;
    }
    let price = Money::parse_ringgit(&format!("{whole}.{}", &fraction[..2])).ok()?;
    words.pop();
    Some(price)
}

/// A quantity candidate and how it was found.
#[derive(Clone, Debug)]
struct Found {
    quantity: Quantity,
    /// Marked with `x`, `@` or a unit (`2 x`, `1.250 KG`): trusted even if the sums disagree.
    explicit: bool,
    /// The token and where to put it back if the quantity is rejected.
    restore: Option<(String, Restore)>,
}

#[derive(Clone, Copy, Debug)]
enum Restore {
    End,
    Start,
}

/// `NAME 2 x`, `NAME 2x`, `NAME x2`, `NAME 1.250 KG @`, `NAME 23.456L @`, `NAME 2`.
fn trailing_quantity(words: &mut Vec<String>) -> Option<Found> {
    let mut explicit = false;
    let mut popped = Vec::new();
    while let Some(w) = words.last() {
        if !matches!(w.as_str(), "x" | "X" | "@" | "*" | "=" | ":" | "-" | "/") {
            break;
        }
        explicit |= matches!(w.as_str(), "x" | "X" | "@" | "*");
        popped.extend(words.pop());
    }
    if words.len() >= 2 {
        let unit_word = words[words.len() - 1].to_ascii_uppercase();
        if UNIT_WORDS.contains(&unit_word.as_str())
            && Quantity::parse(&words[words.len() - 2]).is_some()
        {
            explicit = true;
            popped.extend(words.pop());
        }
    }
    if let Some((quantity, marked)) = words.last().and_then(|w| quantity_token(w, explicit)) {
        let token = words.pop()?;
        // "NAME x 10": the sign sits in front of the count.
        if words.len() >= 2 && matches!(words.last().map(String::as_str), Some("x" | "X")) {
            words.pop();
        }
        return Some(Found {
            quantity,
            explicit: explicit || marked,
            restore: Some((token, Restore::End)),
        });
    }
    // Nothing found: the separators were part of the name after all.
    while let Some(w) = popped.pop() {
        words.push(w);
    }
    None
}

/// `2`, `2x`, `2@`, `x2`, and with `allow_unit` also `1.250KG`: the quantity and whether a
/// trailing multiplication marker made it explicit. A glued unit (`1L`) is only a quantity
/// next to an explicit `x`/`@`, because otherwise it is usually part of the name
/// (`DUTCH LADY UHT 1L`).
fn quantity_token(token: &str, allow_unit: bool) -> Option<(Quantity, bool)> {
    if let Some(q) = Quantity::parse(token) {
        return Some((q, false));
    }
    let upper = token.to_ascii_uppercase();
    let (core, marked) = match upper.strip_suffix(['X', '@', '*']) {
        Some(core) => (core, true),
        None => (upper.strip_prefix('X').unwrap_or(&upper), false),
    };
    if let Some(q) = Quantity::parse(core) {
        return Some((q, marked));
    }
    if !allow_unit {
        return None;
    }
    let core = UNIT_WORDS.iter().find_map(|u| core.strip_suffix(u))?;
    Quantity::parse(core).map(|q| (q, true))
}

/// The table layout `NAME PRICE QTY AMOUNT`.
fn mid_quantity(mid: &str) -> Option<Found> {
    let mut parts = mid.split_whitespace();
    let token = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let (quantity, _) = quantity_token(token, false)?;
    Some(Found {
        quantity,
        explicit: true,
        restore: None,
    })
}

/// The layouts `QTY x NAME AMOUNT` (`marked_only`: needs the `x`, tried first because the
/// name may end in a number) and `QTY NAME AMOUNT` (whole counts below 1000 only).
fn leading_quantity(words: &mut Vec<String>, marked_only: bool) -> Option<Found> {
    if words.len() < 2 {
        return None;
    }
    let (quantity, glued_marker) = quantity_token(&words[0], false)?;
    let separate_marker = matches!(words[1].as_str(), "x" | "X" | "@" | "*");
    let marked = glued_marker || separate_marker;
    if (marked_only && !marked) || !quantity.is_whole() || quantity.thousandths() >= 1_000_000 {
        return None;
    }
    if separate_marker && words.len() < 3 {
        return None;
    }
    let token = words.remove(0);
    if separate_marker {
        words.remove(0);
    }
    Some(Found {
        quantity,
        explicit: marked,
        restore: Some((token, Restore::Start)),
    })
}

/// Decides quantity and unit price so that they agree with the amount where possible.
fn settle(
    found: Option<Found>,
    unit_price: Option<Money>,
    amount: Money,
    words: &mut Vec<String>,
) -> (Quantity, Option<Money>) {
    if let Some(f) = found {
        let agrees = match unit_price {
            Some(u) => product_matches(f.quantity, u, amount),
            None => exact_unit_price(amount, f.quantity).is_some(),
        };
        if agrees || f.explicit {
            let unit = unit_price.or_else(|| exact_unit_price(amount, f.quantity));
            return (f.quantity, unit);
        }
        // Not a quantity after all: give the token back to the name.
        match f.restore {
            Some((token, Restore::End)) => words.push(token),
            Some((token, Restore::Start)) => words.insert(0, token),
            None => {}
        }
    }
    match unit_price {
        Some(u) if u == amount => (Quantity::ONE, Some(u)),
        Some(u) => match whole_multiple(amount, u) {
            Some(q) => (q, Some(u)),
            // Two amounts that do not multiply out (was/now prices): keep the amount only.
            None => (Quantity::ONE, None),
        },
        None => (Quantity::ONE, Some(amount)),
    }
}

/// quantity × unit = amount, to within one sen (weighed goods are rounded either way).
fn product_matches(quantity: Quantity, unit: Money, amount: Money) -> bool {
    let exact = i128::from(quantity.thousandths()) * i128::from(unit.sen());
    let rounded = (exact + 500).div_euclid(1000);
    (rounded - i128::from(amount.sen())).abs() <= 1
}

fn exact_unit_price(amount: Money, quantity: Quantity) -> Option<Money> {
    let scaled = i128::from(amount.sen()) * 1000;
    let q = i128::from(quantity.thousandths());
    if q <= 0 || scaled % q != 0 {
        return None;
    }
    i64::try_from(scaled / q).ok().map(Money::from_sen)
}

fn whole_multiple(amount: Money, unit: Money) -> Option<Quantity> {
    let (a, u) = (amount.sen(), unit.sen());
    (u > 0 && a % u == 0 && a / u <= 999).then(|| Quantity::from_thousandths(a / u * 1000))
}

fn clean_name<'a>(words: impl Iterator<Item = &'a str>) -> Option<String> {
    let kept: Vec<&str> = words
        .filter(|w| !(w.len() >= MIN_BARCODE_DIGITS && w.bytes().all(|b| b.is_ascii_digit())))
        .collect();
    let joined = collapse_spaces(&kept.join(" "));
    let name = joined
        .trim_matches(|c: char| matches!(c, ':' | '-' | '*' | '.' | ',' | '@' | '='))
        .trim();
    name.chars()
        .any(char::is_alphabetic)
        .then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::amounts::scan_amounts;
    use super::*;

    fn item(line: &str) -> Option<LineItem> {
        parse_item(line, &scan_amounts(line), None)
    }

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    fn rm(s: &str) -> Money {
        Money::parse_ringgit(s).unwrap()
    }

    #[test]
    fn name_and_amount() {
        let it = item("NASI LEMAK AYAM      12.50 SR").unwrap();
        assert_eq!(it.name, "NASI LEMAK AYAM");
        assert_eq!(it.quantity, Quantity::ONE);
        assert_eq!(it.unit_price, Some(rm("12.50")));
        assert_eq!(it.amount, rm("12.50"));
    }

    #[test]
    fn quantity_times_price() {
        let it = item("MILO AIS  2 x 4.50   9.00").unwrap();
        assert_eq!(it.name, "MILO AIS");
        assert_eq!(it.quantity, q("2"));
        assert_eq!(it.unit_price, Some(rm("4.50")));
        let it = item("TEH TARIK 3X2.80 8.40").unwrap();
        assert_eq!((it.name.as_str(), it.quantity), ("TEH TARIK", q("3")));
        let it = item("ROTI CANAI x2 3.00").unwrap();
        assert_eq!(it.quantity, q("2"));
        assert_eq!(it.unit_price, Some(rm("1.50")));
    }

    #[test]
    fn weighed_and_fuel_quantities_are_exact() {
        let it = item("PISANG 1.250 KG x 5.90   7.38").unwrap();
        assert_eq!(it.name, "PISANG");
        assert_eq!(it.quantity.thousandths(), 1250);
        let it = item("RON95 23.456L @ 2.05 48.08").unwrap();
        assert_eq!(it.name, "RON95");
        assert_eq!(it.quantity.thousandths(), 23_456);
        assert_eq!(it.unit_price, Some(rm("2.05")));
    }

    #[test]
    fn table_layouts() {
        let it = item("Nasi Goreng   2   8.00   16.00").unwrap();
        assert_eq!((it.name.as_str(), it.quantity), ("Nasi Goreng", q("2")));
        let it = item("Nasi Goreng   8.00   2   16.00").unwrap();
        assert_eq!((it.name.as_str(), it.quantity), ("Nasi Goreng", q("2")));
        let it = item("2 Nasi Goreng 16.00").unwrap();
        assert_eq!((it.name.as_str(), it.quantity), ("Nasi Goreng", q("2")));
        assert_eq!(it.unit_price, Some(rm("8.00")));
    }

    #[test]
    fn counts_written_before_the_name_or_after_an_x() {
        let it = item("1 x LED BULB 12W PACK OF 3   24.00").unwrap();
        assert_eq!(it.name, "LED BULB 12W PACK OF 3");
        assert_eq!(it.quantity, Quantity::ONE);
        let it = item("2x AA BATTERY 4S 19.80").unwrap();
        assert_eq!((it.name.as_str(), it.quantity), ("AA BATTERY 4S", q("2")));
        let it = item("Paracetamol 500mg x 20   4.00").unwrap();
        assert_eq!(
            (it.name.as_str(), it.quantity),
            ("Paracetamol 500mg", q("20"))
        );
        assert_eq!(it.unit_price, Some(rm("0.20")));
        let it = item("Cili Kering 0.250kg x 18.90  4.73").unwrap();
        assert_eq!((it.name.as_str(), it.quantity), ("Cili Kering", q("0.25")));
    }

    #[test]
    fn four_decimal_unit_prices() {
        let it = item("JOURNAL BOOK 80PGS A4 70G    1 X 3.3000    3.30 SR").unwrap();
        assert_eq!(it.name, "JOURNAL BOOK 80PGS A4 70G");
        assert_eq!(it.quantity, Quantity::ONE);
        assert_eq!(it.unit_price, Some(rm("3.30")));
        let it = item("PEN 3 X 1.2000   3.60").unwrap();
        assert_eq!((it.name.as_str(), it.quantity), ("PEN", q("3")));
        // Sub-sen unit prices are not money: the number stays in the name.
        let it = item("BOLT 3 X 0.3333  1.00").unwrap();
        assert_eq!(it.name, "BOLT 3 X 0.3333");
        assert_eq!(it.quantity, Quantity::ONE);
    }

    #[test]
    fn numbers_that_are_names_stay_names() {
        let it = item("100 PLUS 2.45").unwrap();
        assert_eq!((it.name.as_str(), it.quantity), ("100 PLUS", Quantity::ONE));
        let it = item("COKE 330 ML 2.50").unwrap();
        assert_eq!(it.name, "COKE 330 ML");
        let it = item("BISKUT 15.00 12.90").unwrap();
        assert_eq!(it.quantity, Quantity::ONE);
        assert_eq!(it.unit_price, None);
        assert_eq!(it.amount, rm("12.90"));
    }

    #[test]
    fn barcode_line_then_quantity_line() {
        let line = "2 x 6.99     13.98 SR";
        let it = parse_item(
            line,
            &scan_amounts(line),
            Some("9556001234567 DUTCH LADY UHT 1L"),
        )
        .unwrap();
        assert_eq!(it.name, "DUTCH LADY UHT 1L");
        assert_eq!(it.quantity, q("2"));
        assert_eq!(it.amount, rm("13.98"));
    }

    #[test]
    fn lines_without_a_name_or_positive_amount_are_not_items() {
        assert_eq!(item("12.50"), None);
        assert_eq!(item("1234 12.50"), None);
        assert_eq!(item("DISC -1.00"), None);
    }
}
