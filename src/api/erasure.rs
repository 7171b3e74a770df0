//! `DELETE /api/contacts/<phone>/`: erasure of a person (PDPA), for admins. The contact's
//! receipt photos are deleted here (the object store is this process's); everything else
//! goes through the contact's shard, in order with its messages: it stores what came
//! before, then removes the store's rows (the contact with its encrypted IC, the IC link,
//! purchases, messages, campaign rows, send claims), writes a changelog tombstone (every
//! segment index drops the contact) and a marker after the contact's events, on which the
//! analytics role removes its rows from ClickHouse or the event files. A later message from
//! the same number starts a new contact.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::topics::inbound::{Erasure, EventPayload};

use super::contacts::{existing_contact, store_unavailable};
use super::error::{ApiError, ErrorBody};
use super::{parse_phone, AdminState};

/// An erasure queued.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErasureAccepted {
    pub erasure_id: String,
    /// Receipt photos deleted from the object store now.
    pub photos_deleted: usize,
}

/// Erases a person: every copy of their data, everywhere.
#[utoipa::path(
    delete,
    path = "/api/contacts/{phone}/",
    tag = "contacts",
    params(("phone" = String, Path, description = "The contact's phone number", example = "60123456789")),
    responses(
        (status = 202, description = "Queued for the contact's shard; done within seconds", body = ErasureAccepted),
        (status = 400, description = "Not a phone number", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Only admins erase", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 503, description = "The store, the object store or the bus is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn erase(
    State(state): State<Arc<AdminState>>,
    Path(phone): Path<String>,
) -> Result<(StatusCode, Json<ErasureAccepted>), ApiError> {
    let phone = parse_phone(&phone)?;
    existing_contact(&state, &phone).await?;
    let edits = state
        .edits
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("no_edits", "this process queues no edits"))?;
    let purchases = state
        .store
        .purchases(&phone)
        .await
        .map_err(store_unavailable)?;
    let mut photos_deleted = 0;
    if let Some(uploads) = &state.uploads {
        for sha256 in purchases.iter().filter_map(|p| p.image_sha256.as_deref()) {
            // The key's extension is the photo's real format, not recorded with the
            // purchase: each is tried (deleting what is not there is a no-op).
            for extension in ["jpg", "png", "webp"] {
                uploads
                    .objects
                    .delete(&format!("{sha256}.{extension}"))
                    .await
                    .map_err(|e| ApiError::unavailable("objects_unavailable", e.to_string()))?;
            }
            photos_deleted += 1;
        }
    }
    let erasure_id = uuid::Uuid::new_v4().simple().to_string();
    let erasure = Erasure {
        erasure_id: erasure_id.clone(),
        wa_id: phone.as_str().to_string(),
        at: Utc::now(),
    };
    edits
        .queue(&phone, EventPayload::Erasure(erasure), None)
        .await
        .map_err(|e| ApiError::unavailable("bus_unavailable", e.to_string()))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ErasureAccepted {
            erasure_id,
            photos_deleted,
        }),
    ))
}
