//! A contact's history through the admin API: `GET /api/customers/<id>/purchases/` (the
//! seed's route; id = the phone number) and `GET /api/contacts/<phone>/messages/`, newest
//! first. Message bodies are stored with IC numbers already masked (at the webhook).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::contacts::{existing_contact, store_unavailable};
use super::error::{ApiError, ErrorBody};
use super::query::{page_limit, ApiQuery};
use super::{parse_phone, AdminState};
use crate::domain::purchase::Purchase;
use crate::storage::store::{Direction, MessageRecord};

/// Messages per page by default, and at most.
const DEFAULT_MESSAGES: u32 = 50;
const MAX_MESSAGES: u32 = 1_000;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PurchaseView {
    pub purchase_id: String,
    /// Ringgit.
    pub amount: String,
    #[schema(value_type = String, format = Date)]
    pub purchased_on: NaiveDate,
    pub merchant: Option<String>,
    pub receipt_no: Option<String>,
    pub item_count: u32,
    /// counted, pending_review or rejected.
    pub status: String,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub wamid: String,
    /// inbound (from the person) or outbound (to them).
    pub direction: String,
    pub kind: String,
    pub body: Option<String>,
    pub campaign_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
}

impl From<Purchase> for PurchaseView {
    fn from(p: Purchase) -> Self {
        PurchaseView {
            purchase_id: p.purchase_id,
            amount: p.amount.to_string(),
            purchased_on: p.purchased_on,
            merchant: p.merchant,
            receipt_no: p.receipt_no,
            item_count: p.item_count,
            status: p.status.as_str().to_string(),
            recorded_at: p.recorded_at,
        }
    }
}

impl From<MessageRecord> for MessageView {
    fn from(m: MessageRecord) -> Self {
        MessageView {
            direction: match m.direction {
                Direction::Inbound => "inbound",
                Direction::Outbound => "outbound",
            }
            .to_string(),
            wamid: m.wamid,
            kind: m.kind,
            body: m.body,
            campaign_id: m.campaign_id,
            created_at: m.created_at,
            delivered_at: m.timeline.delivered_at,
            read_at: m.timeline.read_at,
        }
    }
}

/// A customer's purchases (every status), as recorded from their receipts.
#[utoipa::path(
    get,
    path = "/api/customers/{id}/purchases/",
    tag = "contacts",
    params(("id" = String, Path, description = "The customer's phone number", example = "60123456789")),
    responses(
        (status = 200, description = "The customer's purchases", body = Vec<PurchaseView>),
        (status = 400, description = "Not a phone number", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not read contacts", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn purchases(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<PurchaseView>>, ApiError> {
    let phone = parse_phone(&id)?;
    existing_contact(&state, &phone).await?;
    let purchases = state
        .store
        .purchases(&phone)
        .await
        .map_err(store_unavailable)?;
    Ok(Json(
        purchases.into_iter().map(PurchaseView::from).collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// 1 to 1,000 (default 50): the newest this many.
    pub limit: Option<u32>,
}

/// A contact's most recent messages, both ways, newest first.
#[utoipa::path(
    get,
    path = "/api/contacts/{phone}/messages/",
    tag = "contacts",
    params(("phone" = String, Path, description = "The contact's phone number", example = "60123456789"), MessagesQuery),
    responses(
        (status = 200, description = "The newest messages", body = Vec<MessageView>),
        (status = 400, description = "Not a phone number, or a bad limit", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not read contacts", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn messages(
    State(state): State<Arc<AdminState>>,
    Path(phone): Path<String>,
    ApiQuery(query): ApiQuery<MessagesQuery>,
) -> Result<Json<Vec<MessageView>>, ApiError> {
    let phone = parse_phone(&phone)?;
    let limit = page_limit(query.limit, DEFAULT_MESSAGES, MAX_MESSAGES)?;
    let messages = state
        .store
        .messages(&phone, limit)
        .await
        .map_err(store_unavailable)?;
    Ok(Json(messages.into_iter().map(MessageView::from).collect()))
}
