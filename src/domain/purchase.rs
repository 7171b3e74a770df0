//! A purchase as recorded from a receipt, with the review state that decides whether it
//! counts toward spending and tiers.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::money::Money;
use super::spending::PurchaseEvent;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStatus {
    /// Read with enough confidence: counts toward spend and tier.
    Counted,
    /// Low OCR confidence: kept for a person to check, not counted.
    PendingReview,
    /// A person rejected it.
    Rejected,
}

impl PurchaseStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            PurchaseStatus::Counted => "counted",
            PurchaseStatus::PendingReview => "pending_review",
            PurchaseStatus::Rejected => "rejected",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Purchase {
    pub purchase_id: String,
    pub amount: Money,
    pub purchased_on: NaiveDate,
    pub merchant: Option<String>,
    pub receipt_no: Option<String>,
    pub item_count: u32,
    /// sha256 of the receipt image, hex; the object store key.
    pub image_sha256: Option<String>,
    pub ocr_confidence: Option<f64>,
    pub status: PurchaseStatus,
    pub recorded_at: DateTime<Utc>,
}

impl Purchase {
    /// The event that feeds the ledger, for purchases that count.
    pub fn counted_event(&self) -> Option<PurchaseEvent> {
        (self.status == PurchaseStatus::Counted).then(|| PurchaseEvent {
            purchase_id: self.purchase_id.clone(),
            amount: self.amount,
            purchased_on: self.purchased_on,
        })
    }
}
