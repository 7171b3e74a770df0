//! Receipt text parser: OCR text of a Malaysian receipt in, a purchase out.
//!
//! Pure and total: no I/O, no clock, never panics, whatever the input. Two entry points:
//!
//! - [`parse_receipt`] returns a [`Receipt`] (a total is guaranteed) or a typed
//!   [`ReceiptError`]: `Empty` for blank input, `NoTotal` carrying whatever was read.
//! - [`read_receipt`] always returns the [`ParsedReceipt`] view, `total` possibly `None`;
//!   this is what the CLI prints as JSON.
//!
//! Modules, one job each: `text` splits and tokenises lines, `amounts` finds ringgit
//! amounts, `dates` dates and times, `labels` classifies lines (English and Malay),
//! `items` reads item lines, `layout` walks the receipt's sections, `merchant` and
//! `receipt_no` read the header, `totals` chooses the total and scores confidence,
//! `quantity` holds the exact quantity and rate types, `model` the output types.
//!
//! # Header fields
//!
//! Merchant: the header line above the first amount that is not a title, address, phone
//! or registration line; a registered name ("… SDN BHD") beats a shop-type name
//! ("RESTORAN …", "… MART"), which beats a bare brand. Reported only when the text shows
//! some sign of being a receipt (an amount, a date or a receipt number). Date: day-first,
//! validated, a DATE/TARIKH line preferred, expiry/birth dates skipped. Receipt number:
//! the first value after INVOICE NO / RECEIPT NO / BILL NO / NO. RESIT / DOC NO and kin.
//!
//! # Which total
//!
//! The total is the amount payable after cash rounding. CASH/TUNAI, CHANGE/BAKI,
//! card/e-wallet lines, points, savings, TOTAL QTY/ITEMS and rows of a GST/SST summary
//! table are never taken as the total. Among lines that claim to be a total, each is scored:
//! payable-type label (TOTAL PAYABLE, GRAND TOTAL, JUMLAH BESAR, TOTAL INCL. GST, TOTAL
//! (ROUNDED)) above plain TOTAL above "before rounding"; +40 if tendered − change equals
//! it; +30 if subtotal − discount + tax + service charge ± rounding equals it; +20 if another
//! candidate 5-sen-rounds to it; −30 if it 5-sen-rounds to another candidate (it is the
//! unrounded one). Ties go to the later line. Without any total line, the amount paid
//! (cash − change, or card/e-wallet amounts) is used; a subtotal alone is never promoted.
//!
//! # Confidence (0–1)
//!
//! Points out of 100, clamped, then divided by 100. Start by where the total came from:
//! payable-type label 55, plain TOTAL 50, unrounded total + printed rounding 45, only a
//! "before rounding" total 40, derived from payment 35. Then each cross-check that could be
//! evaluated against the chosen total (listed in `checks`):
//!
//! | check                                                 | passes | fails |
//! |-------------------------------------------------------|-------:|------:|
//! | payment: tendered − change = total                    |    +15 |   −20 |
//! | sum: subtotal/items − discount + tax + s/c ± rounding |    +15 |   −15 |
//! | cash rounding: total = round_to_5_sen(total − adj.)   |    +10 |   −10 |
//! | items (less line discounts) = printed subtotal        |     +5 |    −5 |
//!
//! Another candidate with a different amount and an equal score (an unresolved choice)
//! costs 20; a missing date costs 5 (a purchase needs one). No total means confidence 0.
//! So a fully cross-checked, dated receipt scores 1.0, and a lone "TOTAL 12.50" 0.45.
//!
//! # JSON
//!
//! [`ParsedReceipt`] serialises with the keys the CLI prints: `merchant`, `date`
//! (`YYYY-MM-DD`), `time`, `receipt_no`, `items` (`name`, `quantity`, `unit_price`,
//! `amount`), `subtotal`, `discount`, `tax` (government taxes only), `taxes`,
//! `service_charge` (separate: it is the merchant's, not a tax), `rounding`, `total`,
//! `total_source`, `tendered`, `change`, `confidence`, `checks`. Money is a decimal string
//! (`"45.60"`), quantities too (`"1.25"`), absent values `null`.

mod amounts;
mod dates;
mod items;
mod labels;
mod layout;
mod merchant;
mod model;
mod quantity;
mod receipt_no;
mod text;
mod totals;

use serde::{Serialize, Serializer};
use thiserror::Error;

use crate::domain::money::Money;

pub use model::{CheckKind, CrossCheck, LineItem, ParsedReceipt, TaxKind, TaxLine, TotalSource};
pub use quantity::{Quantity, Rate};

/// Why a text did not yield a purchase.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum ReceiptError {
    /// Blank input (no letters or digits at all): nothing was sent to read.
    #[error("receipt text is empty")]
    Empty,
    /// Text was read but no total could be found; the fields that were read are kept so a
    /// caller can show them or ask the customer for a clearer photo.
    #[error("no total found on the receipt")]
    NoTotal { partial: Box<ParsedReceipt> },
}

impl ReceiptError {
    /// The fields read before giving up, if any text was read.
    pub fn partial(&self) -> Option<&ParsedReceipt> {
        match self {
            ReceiptError::Empty => None,
            ReceiptError::NoTotal { partial } => Some(partial),
        }
    }
}

/// A parsed receipt that has a total. Serialises exactly like its [`ParsedReceipt`].
#[derive(Clone, Debug, PartialEq)]
pub struct Receipt {
    total: Money,
    details: ParsedReceipt,
}

impl Receipt {
    /// The amount payable after rounding.
    pub fn total(&self) -> Money {
        self.total
    }

    pub fn details(&self) -> &ParsedReceipt {
        &self.details
    }

    pub fn into_details(self) -> ParsedReceipt {
        self.details
    }
}

impl Serialize for Receipt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.details.serialize(serializer)
    }
}

impl ParsedReceipt {
    /// Turns a missing total into the typed [`ReceiptError::NoTotal`].
    pub fn require_total(self) -> Result<Receipt, ReceiptError> {
        match self.total {
            Some(total) => Ok(Receipt {
                total,
                details: self,
            }),
            None => Err(ReceiptError::NoTotal {
                partial: Box::new(self),
            }),
        }
    }
}

/// Parses receipt text into a purchase with a total, or says why it could not.
pub fn parse_receipt(text: &str) -> Result<Receipt, ReceiptError> {
    if !text.chars().any(char::is_alphanumeric) {
        return Err(ReceiptError::Empty);
    }
    read_receipt(text).require_total()
}

/// Reads every field it can; `total` is `None` when none was found. Never fails.
pub fn read_receipt(text: &str) -> ParsedReceipt {
    let lines = text::lines(text);
    let facts = layout::read_layout(&lines);
    let date = dates::find_date(&lines);
    let time = dates::find_time(&lines, date.map(|d| d.1));
    let receipt_no = receipt_no::find_receipt_no(&lines);
    // A name read from text with no amount, date or receipt number (a MyKad, a chat
    // message) would only mislead, so the merchant needs some evidence of a receipt.
    let looks_like_receipt = facts.saw_money || date.is_some() || receipt_no.is_some();
    let merchant = looks_like_receipt
        .then(|| merchant::find_merchant(&lines))
        .flatten();
    let sums = totals::Sums::from_facts(&facts);
    let settled = totals::settle(&facts, &sums, date.is_some());
    ParsedReceipt {
        merchant,
        date: date.map(|d| d.0),
        time,
        receipt_no,
        subtotal: sums.subtotal,
        discount: sums.discount,
        tax: sums.tax,
        taxes: facts.taxes,
        service_charge: sums.service_charge,
        rounding: sums.rounding,
        total: settled.total,
        total_source: settled.source,
        tendered: sums.tendered,
        change: sums.change,
        confidence: settled.confidence,
        checks: settled.checks,
        items: facts.items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_input_is_empty_not_no_total() {
        assert_eq!(parse_receipt(""), Err(ReceiptError::Empty));
        assert_eq!(parse_receipt(" \n\t\r\n -- "), Err(ReceiptError::Empty));
    }

    #[test]
    fn no_total_keeps_partial_fields() {
        let err = parse_receipt("KEDAI RUNCIT AH SENG\n12/03/2025\nGULA 1KG 2.85\nSUBTOTAL 2.85")
            .unwrap_err();
        let partial = err.partial().expect("partial fields");
        assert_eq!(partial.merchant.as_deref(), Some("KEDAI RUNCIT AH SENG"));
        assert_eq!(partial.subtotal, Some(Money::from_sen(285)));
        assert_eq!(partial.items.len(), 1);
        assert_eq!(partial.total, None);
        assert_eq!(partial.confidence, 0.0);
        assert_eq!(err.to_string(), "no total found on the receipt");
    }

    #[test]
    fn receipt_serialises_like_its_details() {
        let r = parse_receipt("KEDAI A\nTOTAL 12.50").unwrap();
        assert_eq!(r.total(), Money::from_sen(1250));
        let a = serde_json::to_value(&r).unwrap();
        let b = serde_json::to_value(r.details()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a["total"], "12.50");
        assert_eq!(a["date"], serde_json::Value::Null);
    }

    #[test]
    fn lone_total_confidence_matches_documentation() {
        let r = read_receipt("TOTAL 12.50");
        assert_eq!(r.confidence, 0.45);
        assert_eq!(r.total_source, Some(TotalSource::PrintedTotal));
    }
}
