//! The receipt review queue: receipts recorded as pending review (the OCR could not
//! confirm them) listed oldest first, and a person's decision on each: approve (optionally
//! correcting the amount, date or merchant) or reject. A decision is an event on
//! wa.inbound keyed by the contact, so the contact's shard applies it in order with its
//! messages and counts an approval toward spend and tier like any receipt; it can tell the
//! customer (inside the 24 h window).
//!
//! The queue is read from the analytics events (each purchase's latest event), so a
//! decision leaves it once its event reaches them (seconds), and it is the same on both
//! backends.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::clock::malaysia_today;
use crate::domain::money::Money;
use crate::domain::purchase::PurchaseStatus;
use crate::storage::sink::PendingReviewRow;
use crate::topics::event_id;
use crate::topics::inbound::{EventPayload, PurchaseReview};

use super::analytics::{reader as analytics_reader, sink_error as analytics_unavailable};
use super::body::ApiJson;
use super::contacts::{existing_contact, store_unavailable};
use super::error::{ApiError, ErrorBody};
use super::query::{page_limit, ApiQuery};
use super::{parse_phone, AdminState};

const DEFAULT_QUEUE: u32 = 100;
const MAX_QUEUE: u32 = 1_000;
/// An amount above this is a misread or a typo, not a retail receipt.
const MAX_AMOUNT_SEN: i64 = 100_000_000;
const MAX_MERCHANT_CHARS: usize = 200;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// Receipts to list, 1 to 1,000 (default 100).
    pub limit: Option<u32>,
}

/// A receipt waiting for a person.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PendingReceipt {
    pub purchase_id: String,
    /// The customer (the path of the decision route takes it back).
    #[schema(example = "60123456789")]
    pub phone_number: String,
    pub recorded_at: DateTime<Utc>,
    /// As read from the receipt.
    #[schema(value_type = String, format = Date)]
    pub purchase_date: NaiveDate,
    pub merchant: Option<String>,
    pub receipt_no: Option<String>,
    /// Ringgit, as read.
    #[schema(example = "148.60")]
    pub total: String,
    pub item_count: u32,
    /// Tesseract's confidence, 0 to 100.
    pub ocr_confidence: Option<f32>,
}

impl From<PendingReviewRow> for PendingReceipt {
    fn from(row: PendingReviewRow) -> Self {
        PendingReceipt {
            purchase_id: row.purchase_id,
            phone_number: row.contact_phone.written(),
            recorded_at: row.recorded_at,
            purchase_date: row.purchase_date,
            merchant: row.merchant,
            receipt_no: row.receipt_no,
            total: row.total.to_string(),
            item_count: row.item_count,
            ocr_confidence: row.ocr_confidence,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

/// A reviewer's decision; corrections only with an approval.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"decision": "approve", "amount": "148.60", "notify": true}))]
pub struct ReviewRequest {
    pub decision: Decision,
    /// The right total, in ringgit, when the OCR misread it.
    #[schema(value_type = Option<String>, example = "148.60")]
    pub amount: Option<Money>,
    /// The right date on the receipt (not after today).
    #[schema(value_type = Option<String>, format = Date)]
    pub purchase_date: Option<NaiveDate>,
    pub merchant: Option<String>,
    /// Tell the customer (default true; only inside the 24 h customer-service window).
    pub notify: Option<bool>,
    /// The business number that tells them (default: whatsapp.phone_number_id).
    pub phone_number_id: Option<String>,
}

/// A decision queued for the contact's shard.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewAccepted {
    /// The same decision sent again has the same id and is applied once.
    pub review_id: String,
    /// counted or rejected, once applied.
    pub status: String,
}

/// Receipts waiting for review, oldest first.
#[utoipa::path(
    get,
    path = "/api/purchases/review/",
    tag = "contacts",
    params(QueueQuery),
    responses(
        (status = 200, description = "Receipts pending review", body = Vec<PendingReceipt>),
        (status = 400, description = "A bad limit", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not read contacts", body = ErrorBody),
        (status = 404, description = "This process has no analytics reader", body = ErrorBody),
        (status = 503, description = "The analytics store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn queue(
    State(state): State<Arc<AdminState>>,
    ApiQuery(query): ApiQuery<QueueQuery>,
) -> Result<Json<Vec<PendingReceipt>>, ApiError> {
    let limit = page_limit(query.limit, DEFAULT_QUEUE, MAX_QUEUE)?;
    let rows = analytics_reader(&state)?
        .pending_reviews(limit)
        .await
        .map_err(analytics_unavailable)?;
    Ok(Json(rows.into_iter().map(PendingReceipt::from).collect()))
}

/// Approves (optionally corrected) or rejects a receipt pending review.
#[utoipa::path(
    post,
    path = "/api/customers/{id}/purchases/{purchase_id}/review/",
    tag = "contacts",
    params(
        ("id" = String, Path, description = "The customer's phone number", example = "60123456789"),
        ("purchase_id" = String, Path, description = "From the review queue"),
    ),
    request_body = ReviewRequest,
    responses(
        (status = 202, description = "Queued for the contact's shard", body = ReviewAccepted),
        (status = 400, description = "Not a phone number, a bad body, corrections with a rejection, an amount or date out of range", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not change contacts", body = ErrorBody),
        (status = 404, description = "No such contact or purchase", body = ErrorBody),
        (status = 409, description = "The purchase is not pending review (already counted or rejected)", body = ErrorBody),
        (status = 503, description = "The store or the bus is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn decide(
    State(state): State<Arc<AdminState>>,
    Path((id, purchase_id)): Path<(String, String)>,
    ApiJson(request): ApiJson<ReviewRequest>,
) -> Result<(StatusCode, Json<ReviewAccepted>), ApiError> {
    let phone = parse_phone(&id)?;
    let merchant = validate(&request)?;
    let edits = state
        .edits
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("no_edits", "this process queues no edits"))?;
    existing_contact(&state, &phone).await?;
    let mut purchase = state
        .store
        .purchases(&phone)
        .await
        .map_err(store_unavailable)?
        .into_iter()
        .find(|p| p.purchase_id == purchase_id)
        .ok_or_else(|| ApiError::not_found("no_such_purchase", "no such purchase"))?;
    if purchase.status != PurchaseStatus::PendingReview {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_reviewed",
            format!(
                "the purchase is {}, not pending review",
                purchase.status.as_str()
            ),
        ));
    }
    purchase.status = match request.decision {
        Decision::Approve => PurchaseStatus::Counted,
        Decision::Reject => PurchaseStatus::Rejected,
    };
    if let Some(amount) = request.amount {
        purchase.amount = amount;
    }
    if let Some(date) = request.purchase_date {
        purchase.purchased_on = date;
    }
    if merchant.is_some() {
        purchase.merchant = merchant;
    }
    // A retry of the same decision is the same event; the shard applies it once.
    let review_id = event_id(&format!(
        "review:{}:{}:{}:{}:{}",
        purchase.purchase_id,
        purchase.status.as_str(),
        purchase.amount,
        purchase.purchased_on,
        purchase.merchant.as_deref().unwrap_or("")
    ))
    .simple()
    .to_string();
    let status = purchase.status.as_str().to_string();
    let review = PurchaseReview {
        review_id: review_id.clone(),
        wa_id: phone.as_str().to_string(),
        at: Utc::now(),
        purchase,
        notify: request.notify.unwrap_or(true),
    };
    edits
        .queue(
            &phone,
            EventPayload::PurchaseReview(review),
            request.phone_number_id.clone(),
        )
        .await
        .map_err(|e| ApiError::unavailable("bus_unavailable", e.to_string()))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ReviewAccepted { review_id, status }),
    ))
}

/// Checks a decision's corrections; returns the merchant, trimmed.
fn validate(request: &ReviewRequest) -> Result<Option<String>, ApiError> {
    let invalid = |message: String| ApiError::bad_request("invalid_review", message);
    let corrects =
        request.amount.is_some() || request.purchase_date.is_some() || request.merchant.is_some();
    if request.decision == Decision::Reject && corrects {
        return Err(invalid("a rejection takes no corrections".into()));
    }
    if let Some(amount) = request.amount {
        if amount <= Money::ZERO || amount > Money::from_sen(MAX_AMOUNT_SEN) {
            return Err(invalid(format!(
                "amount must be above 0.00 and at most {}",
                Money::from_sen(MAX_AMOUNT_SEN)
            )));
        }
    }
    if let Some(date) = request.purchase_date {
        let today = malaysia_today();
        if date > today {
            return Err(invalid(format!(
                "purchase_date {date} is after today ({today})"
            )));
        }
    }
    let merchant = request.merchant.as_deref().map(str::trim);
    if let Some(m) = merchant {
        if m.is_empty() || m.chars().count() > MAX_MERCHANT_CHARS {
            return Err(invalid(format!(
                "merchant must be 1 to {MAX_MERCHANT_CHARS} characters"
            )));
        }
    }
    Ok(merchant.map(String::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(decision: Decision) -> ReviewRequest {
        ReviewRequest {
            decision,
            amount: None,
            purchase_date: None,
            merchant: None,
            notify: None,
            phone_number_id: None,
        }
    }

    #[test]
    fn corrections_are_checked() {
        let mut approve = request(Decision::Approve);
        approve.merchant = Some("  99 Speedmart ".into());
        assert_eq!(validate(&approve).unwrap().as_deref(), Some("99 Speedmart"));
        approve.amount = Some(Money::ZERO);
        assert!(validate(&approve).is_err());
        approve.amount = Some(Money::from_sen(14_860));
        approve.purchase_date = Some(malaysia_today() + chrono::Days::new(1));
        assert!(validate(&approve).is_err(), "a date from the future");
        let mut reject = request(Decision::Reject);
        reject.amount = Some(Money::from_sen(100));
        assert!(validate(&reject).is_err());
        assert_eq!(validate(&request(Decision::Reject)).unwrap(), None);
    }
}
