//! The parsed receipt as callers and the CLI see it. Field names are the JSON keys.

use chrono::{NaiveDate, NaiveTime};
use serde::Serialize;

use super::quantity::{Quantity, Rate};
use crate::domain::money::Money;

/// One purchased line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineItem {
    pub name: String,
    /// `1` when the receipt prints no quantity.
    pub quantity: Quantity,
    /// Printed, or derived exactly from amount ÷ quantity; `None` when neither is possible.
    pub unit_price: Option<Money>,
    /// The line amount as printed (before any line discount printed under it).
    pub amount: Money,
}

/// Which tax a tax line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxKind {
    /// "SST" without saying sales or service (restaurants mostly mean service tax).
    Sst,
    /// Sales tax, 5% or 10% on goods.
    SalesTax,
    /// Service tax, 6%, or 8% for most services from 1 March 2024.
    ServiceTax,
    /// Goods and services tax, 6%, April 2015 to May 2018.
    Gst,
    /// "TAX", "CUKAI" without a kind.
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TaxLine {
    pub kind: TaxKind,
    /// The printed rate, when there is one.
    pub rate: Option<Rate>,
    pub amount: Money,
}

/// Where the reported total came from, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TotalSource {
    /// TOTAL PAYABLE, GRAND TOTAL, JUMLAH BESAR, TOTAL INCL. GST, TOTAL (ROUNDED) …
    PrintedPayable,
    /// A plain TOTAL / JUMLAH line.
    PrintedTotal,
    /// Only a "total before rounding" line was printed.
    PrintedUnrounded,
    /// A printed unrounded total plus the printed rounding adjustment.
    PrintedPlusRounding,
    /// No total line: what was paid (cash − change, or a card/e-wallet amount).
    Payment,
}

/// An arithmetic relation a receipt offers for checking what was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Line items (less line discounts) add up to the printed subtotal.
    ItemsMatchSubtotal,
    /// Subtotal − discount + tax + service charge ± rounding = total.
    SumMatchesTotal,
    /// Tendered − change = total (or a card/e-wallet amount equals it).
    PaymentMatchesTotal,
    /// Total = Bank Negara 5-sen rounding of the unrounded total.
    CashRounding,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CrossCheck {
    pub check: CheckKind,
    pub passed: bool,
}

/// Everything read from a receipt. `total` is `None` when no total could be found; use
/// [`ParsedReceipt::require_total`] (or [`parse_receipt`](super::parse_receipt)) to get
/// that as a typed error.
///
/// Money fields serialise as decimal strings (`"45.60"`), absent ones as `null`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ParsedReceipt {
    pub merchant: Option<String>,
    /// `YYYY-MM-DD`.
    pub date: Option<NaiveDate>,
    /// `HH:MM:SS`.
    pub time: Option<NaiveTime>,
    pub receipt_no: Option<String>,
    pub items: Vec<LineItem>,
    /// The first printed subtotal (SUBTOTAL, JUMLAH KECIL, TOTAL EXCL. GST); never computed.
    pub subtotal: Option<Money>,
    /// All discounts, line and bill-level, as a positive amount.
    pub discount: Option<Money>,
    /// Sum of government taxes (SST, sales tax, service tax, GST), or the printed "TOTAL
    /// GST" when there are no tax lines. Service charge is not a tax (it goes to the
    /// merchant), so it is reported separately in `service_charge`. On tax-inclusive
    /// receipts ("GST @6% (included)") it is the tax contained in the total, not added to it.
    pub tax: Option<Money>,
    /// The tax lines `tax` sums.
    pub taxes: Vec<TaxLine>,
    pub service_charge: Option<Money>,
    /// Signed cash-rounding adjustment as printed (`-0.02`, `0.03`).
    pub rounding: Option<Money>,
    /// The amount payable after rounding.
    pub total: Option<Money>,
    pub total_source: Option<TotalSource>,
    /// Sum of payment lines (cash, card, e-wallet).
    pub tendered: Option<Money>,
    pub change: Option<Money>,
    /// 0–1: how far the total (and date) can be trusted; 0 when there is no total.
    /// See the module documentation for how it is computed.
    pub confidence: f64,
    /// The cross-checks that could be evaluated against the chosen total.
    pub checks: Vec<CrossCheck>,
}
