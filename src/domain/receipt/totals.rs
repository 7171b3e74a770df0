//! Choosing the total and scoring confidence with the receipt's own arithmetic.
//!
//! A receipt often prints several "totals" (before and after rounding, a card slip repeat,
//! a GST summary row). Each candidate is scored by its label and by the cross-checks it
//! satisfies; the best wins, later lines breaking ties (the payable figure comes last).
//! When no total line exists, what was paid (cash − change, or a card amount) stands in.

use std::collections::BTreeSet;

use super::labels::{TenderKind, TotalKind};
use super::layout::Facts;
use super::model::{CheckKind, CrossCheck, TotalSource};
use crate::domain::money::Money;

/// The amounts the cross-checks combine, summed once.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sums {
    pub subtotal: Option<Money>,
    pub items: Option<Money>,
    pub line_discount: Money,
    pub bill_discount: Money,
    /// Line + bill discounts, `None` when the receipt shows no discount at all.
    pub discount: Option<Money>,
    pub tax: Option<Money>,
    pub service_charge: Option<Money>,
    pub rounding: Option<Money>,
    pub tendered: Option<Money>,
    pub change: Option<Money>,
}

impl Sums {
    pub fn from_facts(f: &Facts) -> Sums {
        let line_discount = total(&f.line_discounts);
        let mut bill_discount = total(&f.bill_discounts);
        let any_discount_line = !f.line_discounts.is_empty() || !f.bill_discounts.is_empty();
        if !any_discount_line {
            // "TOTAL DISCOUNT" only counts when it does not summarise lines already read.
            bill_discount = f.discount_totals.first().copied().unwrap_or_default();
        }
        let discount = (any_discount_line || !f.discount_totals.is_empty())
            .then(|| add(line_discount, bill_discount));
        let tax = if f.taxes.is_empty() {
            f.tax_totals.first().copied()
        } else {
            Some(f.taxes.iter().map(|t| t.amount).fold(Money::ZERO, add))
        };
        let roundings: Vec<Money> = f.roundings.iter().map(|r| r.0).collect();
        let tenders: Vec<Money> = f.tenders.iter().map(|t| t.1).collect();
        Sums {
            subtotal: f.subtotals.first().copied(),
            items: (!f.items.is_empty())
                .then(|| f.items.iter().map(|i| i.amount).fold(Money::ZERO, add)),
            line_discount,
            bill_discount,
            discount,
            tax,
            service_charge: (!f.service_charges.is_empty()).then(|| total(&f.service_charges)),
            rounding: (!roundings.is_empty()).then(|| total(&roundings)),
            tendered: (!tenders.is_empty()).then(|| total(&tenders)),
            change: (!f.changes.is_empty()).then(|| total(&f.changes)),
        }
    }

    /// Totals the printed figures imply before rounding: every combination of base
    /// (subtotal or items), discount reading (bill only, or line + bill) and tax reading
    /// (added on top, or already included in prices as GST-era and some SST receipts do).
    fn implied_raw_totals(&self) -> Vec<Money> {
        let mut out = Vec::new();
        let sc = self.service_charge.unwrap_or_default();
        let taxes = [self.tax.unwrap_or_default(), Money::ZERO];
        let discounts = [
            self.bill_discount,
            add(self.bill_discount, self.line_discount),
        ];
        for base in [self.subtotal, self.items].into_iter().flatten() {
            for d in discounts {
                for t in taxes {
                    out.push(add(sub(add(base, t), d), sc));
                }
            }
        }
        out
    }
}

/// What the arithmetic decided.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Settled {
    pub total: Option<Money>,
    pub source: Option<TotalSource>,
    pub confidence: f64,
    pub checks: Vec<CrossCheck>,
}

/// Picks the total and scores it (see the module doc of `receipt` for the scoring).
pub(crate) fn settle(f: &Facts, s: &Sums, has_date: bool) -> Settled {
    let candidates = contenders(f, s.rounding);
    let amounts: BTreeSet<Money> = candidates.iter().map(|c| c.amount).collect();
    // Amounts some other candidate rounds to: the rounded, payable figures.
    let rounded_targets: BTreeSet<Money> = amounts
        .iter()
        .map(|&a| (a, round5(a)))
        .filter(|(a, r)| a != r)
        .map(|(_, r)| r)
        .collect();
    let raw = s.implied_raw_totals();

    let scored: Vec<(i32, &Contender)> = candidates
        .iter()
        .map(|c| (selection_score(c, s, &raw, &amounts, &rounded_targets), c))
        .collect();
    let best = scored
        .iter()
        .copied()
        .max_by_key(|(score, c)| (*score, c.line));

    let (total, source, ambiguous, payment_is_source) = match best {
        Some((score, c)) => {
            let ambiguous = scored
                .iter()
                .any(|(other, o)| *other == score && o.amount != c.amount);
            (Some(c.amount), Some(c.source), ambiguous, false)
        }
        None => match paid_amount(f, s) {
            Some(paid) => (Some(paid), Some(TotalSource::Payment), false, true),
            None => (None, None, false, false),
        },
    };
    let Some(total) = total else {
        return Settled {
            total: None,
            source: None,
            confidence: 0.0,
            checks: items_check(s).into_iter().collect(),
        };
    };

    let mut checks = Vec::new();
    checks.extend(items_check(s));
    // With a part of the sum unread, a sum that misses the total is inconclusive: it costs
    // less than a contradiction, and is not reported as a failed check.
    let mut inconclusive = false;
    if !raw.is_empty() {
        let matches = sum_matches(total, &raw, s);
        if matches || !f.unread_part {
            checks.push(check(CheckKind::SumMatchesTotal, matches));
        } else {
            inconclusive = true;
        }
    }
    if !payment_is_source {
        if let Some(passed) = payment_matches(total, s) {
            checks.push(check(CheckKind::PaymentMatchesTotal, passed));
        }
    }
    if let Some(passed) = rounding_rule(total, s, &amounts) {
        checks.push(check(CheckKind::CashRounding, passed));
    }

    let mut points = match source {
        Some(TotalSource::PrintedPayable) => 55,
        Some(TotalSource::PrintedTotal) => 50,
        Some(TotalSource::PrintedPlusRounding) => 45,
        Some(TotalSource::PrintedUnrounded) => 40,
        Some(TotalSource::Payment) | None => 35,
    };
    for c in &checks {
        points += match (c.check, c.passed) {
            (CheckKind::PaymentMatchesTotal, true) => 15,
            (CheckKind::PaymentMatchesTotal, false) => -20,
            (CheckKind::SumMatchesTotal, true) => 15,
            (CheckKind::SumMatchesTotal, false) => -15,
            (CheckKind::CashRounding, true) => 10,
            (CheckKind::CashRounding, false) => -10,
            (CheckKind::ItemsMatchSubtotal, true) => 5,
            (CheckKind::ItemsMatchSubtotal, false) => -5,
        };
    }
    if ambiguous {
        points -= 20;
    }
    if inconclusive {
        points -= 10;
    }
    if !has_date {
        points -= 5;
    }
    Settled {
        total: Some(total),
        source,
        confidence: f64::from(points.clamp(0, 100)) / 100.0,
        checks,
    }
}

/// A candidate total with where it came from.
#[derive(Clone, Copy, Debug)]
struct Contender {
    amount: Money,
    kind: TotalKind,
    source: TotalSource,
    line: usize,
}

/// Printed candidates, plus "printed + rounding" when only the unrounded total is printed
/// next to a ROUNDING line (`TOTAL 45.63`, `ROUNDING 0.02`, then straight to CASH).
fn contenders(f: &Facts, rounding: Option<Money>) -> Vec<Contender> {
    let printed = &f.candidates;
    let mut out: Vec<Contender> = printed
        .iter()
        .map(|c| Contender {
            amount: c.amount,
            kind: c.kind,
            source: match c.kind {
                TotalKind::Payable | TotalKind::Rounded => TotalSource::PrintedPayable,
                TotalKind::Plain => TotalSource::PrintedTotal,
                TotalKind::Unrounded => TotalSource::PrintedUnrounded,
            },
            line: c.line,
        })
        .collect();
    let Some(r) = rounding.filter(|r| *r != Money::ZERO) else {
        return out;
    };
    let rounding_line = f.roundings.iter().map(|x| x.1).max().unwrap_or(0);
    let printed_amounts: BTreeSet<Money> = printed.iter().map(|c| c.amount).collect();
    let mut added = BTreeSet::new();
    for c in printed {
        let adjusted = add(c.amount, r);
        if round5(c.amount) == adjusted
            && adjusted.sen() > 0
            && !printed_amounts.contains(&adjusted)
            && added.insert(adjusted)
        {
            out.push(Contender {
                amount: adjusted,
                kind: TotalKind::Plain,
                source: TotalSource::PrintedPlusRounding,
                line: c.line.max(rounding_line),
            });
        }
    }
    out
}

/// Ranks candidates: label strength, then agreement with payment, with the sum of the
/// parts, and with the 5-sen rule (a total that another rounds to is the payable one; one
/// that rounds to another is the unrounded one).
fn selection_score(
    c: &Contender,
    s: &Sums,
    raw: &[Money],
    amounts: &BTreeSet<Money>,
    rounded_targets: &BTreeSet<Money>,
) -> i32 {
    let mut score = match (c.source, c.kind) {
        (TotalSource::PrintedPayable, _) => 30,
        (_, TotalKind::Unrounded) => 0,
        _ => 20,
    };
    if payment_matches(c.amount, s) == Some(true) {
        score += 40;
    }
    if !raw.is_empty() && sum_matches(c.amount, raw, s) {
        score += 30;
    }
    let rounds_to_other = round5(c.amount) != c.amount && amounts.contains(&round5(c.amount));
    if rounded_targets.contains(&c.amount) && !rounds_to_other {
        score += 20;
    }
    if rounds_to_other {
        score -= 30;
    }
    score
}

/// Whether `total` equals an implied raw total, that plus the printed rounding, or its
/// 5-sen rounding (cash receipts that round without printing the adjustment).
fn sum_matches(total: Money, raw: &[Money], s: &Sums) -> bool {
    let r = s.rounding.unwrap_or_default();
    raw.iter()
        .any(|&x| x == total || add(x, r) == total || round5(x) == total)
}

/// Tendered − change = total. With no change line, a tender equal to the total passes and
/// a larger cash tender proves nothing (the change line may simply be cut off).
fn payment_matches(total: Money, s: &Sums) -> Option<bool> {
    let tendered = s.tendered?;
    match s.change {
        Some(change) => Some(sub(tendered, change) == total),
        None if tendered == total => Some(true),
        None if tendered > total => None,
        None => Some(false),
    }
}

fn rounding_rule(total: Money, s: &Sums, amounts: &BTreeSet<Money>) -> Option<bool> {
    if let Some(r) = s.rounding.filter(|r| *r != Money::ZERO) {
        let unrounded = sub(total, r);
        return Some(round5(unrounded) == total);
    }
    // Both totals printed without an adjustment line: the payable one is the rounded other.
    amounts
        .iter()
        .find(|&&u| u != total && sub(u, total).abs() < Money::from_sen(5))
        .map(|&u| round5(u) == total)
}

fn items_check(s: &Sums) -> Option<CrossCheck> {
    let (items, subtotal) = (s.items?, s.subtotal?);
    let passed = items == subtotal || sub(items, s.line_discount) == subtotal;
    Some(check(CheckKind::ItemsMatchSubtotal, passed))
}

/// The total from payment lines when no total line was printed: cash − change, or the sum
/// of card/e-wallet payments. A cash tender without a change line is not a total.
fn paid_amount(f: &Facts, s: &Sums) -> Option<Money> {
    let tendered = s.tendered?;
    let paid = match s.change {
        Some(change) => sub(tendered, change),
        None if f.tenders.iter().all(|t| t.0 == TenderKind::NonCash) => tendered,
        None => return None,
    };
    (paid.sen() > 0).then_some(paid)
}

fn check(check: CheckKind, passed: bool) -> CrossCheck {
    CrossCheck { check, passed }
}

/// Saturating arithmetic: amounts are capped when read, so saturation never changes a real
/// receipt's figures; it only keeps adversarial input from overflowing.
pub(crate) fn add(a: Money, b: Money) -> Money {
    Money::from_sen(a.sen().saturating_add(b.sen()))
}

pub(crate) fn sub(a: Money, b: Money) -> Money {
    Money::from_sen(a.sen().saturating_sub(b.sen()))
}

fn total(amounts: &[Money]) -> Money {
    amounts.iter().copied().fold(Money::ZERO, add)
}

/// Bank Negara 5-sen rounding, guarded against the extremes where `Money::round_to_5_sen`
/// could overflow.
pub(crate) fn round5(m: Money) -> Money {
    if m.sen().unsigned_abs() > 1 << 60 {
        m
    } else {
        m.round_to_5_sen()
    }
}
