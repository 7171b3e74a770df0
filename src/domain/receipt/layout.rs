//! Walks the receipt top to bottom and collects every labelled amount and item line.
//!
//! Receipts have a shape: header, items, a totals block, payment, and (on GST-era and some
//! SST receipts) a tax summary table. Position decides meaning: an unlabelled amount is an
//! item only above the totals block; a negative one there is a line discount, below it a
//! bill discount; amounts inside a tax summary table are never totals.

use super::amounts::{scan_amounts, AmountTok};
use super::dates::dates_in;
use super::items::parse_item;
use super::labels::{classify, is_tax_code, Label, TenderKind, TotalKind};
use super::model::{LineItem, TaxLine};
use super::quantity::Rate;
use super::text::{label_words, Line};
use crate::domain::money::Money;

/// A line that claims to be a total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub amount: Money,
    pub kind: TotalKind,
    pub line: usize,
}

/// Everything the walk found, before any arithmetic.
#[derive(Clone, Debug, Default)]
pub(crate) struct Facts {
    pub items: Vec<LineItem>,
    /// Discounts inside the item list, positive.
    pub line_discounts: Vec<Money>,
    /// Discounts in the totals block, positive.
    pub bill_discounts: Vec<Money>,
    pub discount_totals: Vec<Money>,
    pub subtotals: Vec<Money>,
    pub taxes: Vec<TaxLine>,
    pub tax_totals: Vec<Money>,
    pub service_charges: Vec<Money>,
    /// Signed adjustments with their line.
    pub roundings: Vec<(Money, usize)>,
    pub candidates: Vec<Candidate>,
    pub tenders: Vec<(TenderKind, Money)>,
    pub changes: Vec<Money>,
    /// Whether any amount appeared at all: text without one is not a receipt.
    pub saw_money: bool,
    /// A part of the sum (subtotal, tax, discount, service charge, rounding) was labelled
    /// but its amount not read: the sum of what was read proves nothing against the total.
    pub unread_part: bool,
}

/// A rounding line's amount is below this many sen.
const MAX_ROUNDING_SEN: i64 = 5;

#[derive(Default)]
struct Walk {
    facts: Facts,
    in_totals: bool,
    in_summary: bool,
    /// A label whose amount OCR pushed onto the next line.
    pending_label: Option<Label>,
    /// A name-only line (often barcode + name) awaiting its `QTY x PRICE AMOUNT` line.
    pending_name: Option<String>,
}

pub(crate) fn read_layout(lines: &[Line<'_>]) -> Facts {
    let mut walk = Walk::default();
    for line in lines {
        if line.is_blank() {
            walk.in_summary = false;
            walk.drop_pending_label();
            walk.pending_name = None;
            continue;
        }
        let amounts = scan_amounts(line.raw);
        walk.facts.saw_money |= !amounts.is_empty();
        let has_date = !dates_in(&line.upper).is_empty();
        // Segments and amounts are both in line order: walk them together (linear even
        // for a hostile line with thousands of amounts).
        let mut next = 0;
        for (start, end) in segments(line.raw, &amounts) {
            let first = next;
            while next < amounts.len() && amounts[next].end <= end {
                next += 1;
            }
            let seg_amounts: Vec<AmountTok> = amounts[first..next]
                .iter()
                .filter(|a| a.start >= start)
                .map(|a| AmountTok {
                    value: a.value,
                    start: a.start - start,
                    end: a.end - start,
                })
                .collect();
            if let Some(raw) = line.raw.get(start..end) {
                walk.segment(raw, &seg_amounts, has_date, line.index);
            }
        }
    }
    walk.drop_pending_label();
    walk.facts
}

impl Walk {
    fn segment(&mut self, raw: &str, amounts: &[AmountTok], has_date: bool, line_no: usize) {
        let label_text = raw.get(..amounts.first().map_or(raw.len(), |a| a.start));
        let label_text = label_text.unwrap_or("");
        let words = label_words(label_text);
        let mut label = classify(&words);

        if label == Label::SummaryHeader || is_summary_row(&words, raw, amounts) {
            self.in_summary = true;
            return;
        }
        if self.in_summary {
            let text_line = amounts.is_empty() && raw.chars().any(char::is_alphabetic);
            if text_line && !matches!(label, Label::Ignored | Label::ItemHeader) {
                self.in_summary = false; // "THANK YOU", a new section
            } else if !matches!(label, Label::Tender(_) | Label::Change) {
                return;
            }
        }
        let Some(last) = amounts.last() else {
            self.no_amount(label, label_text, raw, has_date);
            return;
        };
        if label == Label::Unlabelled && words.is_empty() {
            if let Some(pending) = self.pending_label.take() {
                label = pending;
            }
        }
        self.drop_pending_label();
        let pending_name = self.pending_name.take();
        let value = last.value;
        let f = &mut self.facts;
        match label {
            Label::Total(kind) => {
                if value.sen() > 0 {
                    f.candidates.push(Candidate {
                        amount: value,
                        kind,
                        line: line_no,
                    });
                }
            }
            Label::Subtotal => f.subtotals.push(value.abs()),
            Label::Tax(kind) => f.taxes.push(TaxLine {
                kind,
                rate: rate_in(label_text),
                amount: value.abs(),
            }),
            Label::TaxTotal => f.tax_totals.push(value.abs()),
            Label::ServiceCharge => f.service_charges.push(value.abs()),
            Label::Discount if self.in_totals => f.bill_discounts.push(value.abs()),
            Label::Discount => f.line_discounts.push(value.abs()),
            Label::DiscountTotal => f.discount_totals.push(value.abs()),
            // An adjustment is under 5 sen (Bank Negara's rule moves a total by 2 sen at
            // most): a larger one is a misread (0.01 read as 9.01), not evidence.
            Label::Rounding if value.sen().abs() < MAX_ROUNDING_SEN => {
                f.roundings.push((value, line_no))
            }
            Label::Rounding => {}
            Label::Tender(kind) => f.tenders.push((kind, value.abs())),
            Label::Change => f.changes.push(value.abs()),
            Label::Unlabelled if !self.in_totals && !has_date => {
                if value.is_negative() {
                    f.line_discounts.push(value.abs());
                } else if let Some(item) = parse_item(raw, amounts, pending_name.as_deref()) {
                    f.items.push(item);
                }
            }
            Label::Unlabelled
            | Label::Ignored
            | Label::Info
            | Label::ItemHeader
            | Label::SummaryHeader => {}
        }
        if label.carries_amount() && label != Label::Discount {
            self.in_totals = true;
        }
    }

    fn no_amount(&mut self, label: Label, label_text: &str, raw: &str, has_date: bool) {
        let has_digits = label_text.bytes().any(|b| b.is_ascii_digit());
        if label.carries_amount() && !has_digits {
            self.drop_pending_label();
            self.pending_label = Some(label);
        } else if label.is_sum_part() {
            // `SST 6%` with its amount unreadable: the rate's digits are not an amount.
            self.facts.unread_part = true;
            self.drop_pending_label();
            self.pending_name = None;
        } else if label == Label::Unlabelled
            && !self.in_totals
            && !has_date
            && raw.chars().any(char::is_alphabetic)
        {
            self.drop_pending_label();
            self.pending_name = Some(raw.to_string());
        } else {
            self.drop_pending_label();
            self.pending_name = None;
        }
    }

    /// Forgets a label still waiting for its amount, noting a part of the sum left unread.
    fn drop_pending_label(&mut self) {
        if let Some(label) = self.pending_label.take() {
            self.facts.unread_part |= label.is_sum_part();
        }
    }
}

/// A row of a GST/SST summary table without a header: `SR @ 6%  42.45  2.55`, `ZR 5.00
/// 0.00`. One-letter codes (`S`, `Z`) also start item names, so they need the `%`.
fn is_summary_row(words: &[String], raw: &str, amounts: &[AmountTok]) -> bool {
    let Some(code) = words.first().filter(|w| is_tax_code(w)) else {
        return false;
    };
    amounts.len() >= 2 && (code.len() >= 2 || raw.contains('%'))
}

/// Splits a line where a second label starts after an amount: `CASH 50.00 CHANGE 4.40`.
/// Only known amount labels split, so item names after a price never do.
fn segments(raw: &str, amounts: &[AmountTok]) -> Vec<(usize, usize)> {
    let mut bounds = Vec::new();
    let mut start = 0;
    for pair in amounts.windows(2) {
        let (gap_start, gap_end) = (pair[0].end, pair[1].start);
        let Some(gap) = raw.get(gap_start..gap_end) else {
            continue;
        };
        let Some(label_at) = first_label_word(gap) else {
            continue;
        };
        let Some(rest) = gap.get(label_at..) else {
            continue;
        };
        if classify(&label_words(rest)).carries_amount() {
            bounds.push((start, gap_start + label_at));
            start = gap_start + label_at;
        }
    }
    bounds.push((start, raw.len()));
    bounds
}

/// Offset of the first word in `gap` that is not a tax code printed after an amount.
fn first_label_word(gap: &str) -> Option<usize> {
    let b = gap.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        // Both ends sit next to ASCII bytes, so they are char boundaries.
        if is_tax_code(&gap[start..i].to_ascii_uppercase()) {
            continue;
        }
        return b[start].is_ascii_alphabetic().then_some(start);
    }
    None
}

/// The rate printed in a label: the number in front of `%` (`SST 6%`, `GST @ 6.00 %`).
fn rate_in(label: &str) -> Option<Rate> {
    let percent = label.find('%')?;
    let before = label.get(..percent)?.trim_end();
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    Rate::parse(before.get(start..)?)
}

#[cfg(test)]
mod tests {
    use super::super::text::lines;
    use super::*;

    fn facts(text: &str) -> Facts {
        read_layout(&lines(text))
    }

    fn rm(s: &str) -> Money {
        Money::parse_ringgit(s).unwrap()
    }

    #[test]
    fn items_stop_at_the_totals_block() {
        let f = facts("NASI LEMAK 5.00\nTEH TARIK 2.50\nTOTAL 7.50\nFREE PARKING 1.00");
        assert_eq!(f.items.len(), 2);
        assert_eq!(f.candidates.len(), 1);
        assert_eq!(f.candidates[0].amount, rm("7.50"));
    }

    #[test]
    fn label_and_amount_split_over_two_lines() {
        let f = facts("TOTAL\nRM 12.30\nCASH :\n20.00");
        assert_eq!(f.candidates[0].amount, rm("12.30"));
        assert_eq!(f.tenders, vec![(TenderKind::Cash, rm("20.00"))]);
    }

    #[test]
    fn two_labels_on_one_line() {
        let f = facts("TOTAL 45.60\nCASH 50.00   CHANGE 4.40");
        assert_eq!(f.tenders, vec![(TenderKind::Cash, rm("50.00"))]);
        assert_eq!(f.changes, vec![rm("4.40")]);
    }

    #[test]
    fn summary_table_amounts_are_not_totals() {
        let f = facts(
            "TOTAL INCL GST 53.00\nCASH 60.00\n\nGST SUMMARY\nCODE  AMOUNT  TAX\nSR @6% 50.00 3.00\nTOTAL 50.00 3.00\n\nTHANK YOU",
        );
        assert_eq!(f.candidates.len(), 1);
        assert_eq!(f.candidates[0].amount, rm("53.00"));
        let f = facts("TOTAL 53.00\nSR @ 6% 50.00 3.00\nTotal 50.00 3.00");
        assert_eq!(
            f.candidates.len(),
            1,
            "a headerless summary row opens the table"
        );
    }

    #[test]
    fn discounts_by_position() {
        let f = facts("ROTI 5.00\n  DISC 10% -0.50\nKUIH 2.00\n  -0.20\nSUBTOTAL 6.30\nMEMBER DISC 0.63\nTOTAL 5.67");
        assert_eq!(f.line_discounts, vec![rm("0.50"), rm("0.20")]);
        assert_eq!(f.bill_discounts, vec![rm("0.63")]);
        assert_eq!(f.items.len(), 2);
    }

    #[test]
    fn rates_are_read_from_labels() {
        assert_eq!(rate_in("SST 6% "), Rate::parse("6"));
        assert_eq!(rate_in("GST @ 6.00 % "), Rate::parse("6.00"));
        assert_eq!(rate_in("Service Tax "), None);
        let f = facts("Service Tax 8%  3.60");
        assert_eq!(f.taxes[0].rate, Rate::parse("8"));
    }
}
