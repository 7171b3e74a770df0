//! `GET /api/contacts/<phone>/`: a contact with the seed's field names. The IC number is
//! only ever shown masked.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::clock::malaysia_today;
use crate::domain::contact::Contact;
use crate::domain::contact_import::{parse_contacts_csv, ImportRow, RowError};
use crate::domain::phone::PhoneNumber;
use crate::domain::profile::ProfilePatch;
use crate::storage::bus::{Producer, Record};
use crate::storage::store::StoreError;
use crate::topics::inbound::{Business, EditSource, EventPayload, InboundEvent, ProfileEdit};

use super::body::ApiJson;
use super::error::{ApiError, ErrorBody};
use super::{parse_phone, AdminState};

/// A contact as the admin API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContactView {
    pub name: Option<String>,
    /// A form the API's paths take back: another country's number with its +.
    #[schema(example = "60123456789")]
    pub phone_number: String,
    /// Masked: the last four digits are never shown.
    #[schema(example = "900101-**-****")]
    pub ic_number: Option<String>,
    pub age: Option<u32>,
    /// male or female
    pub gender: Option<String>,
    pub state: Option<String>,
    /// single, married, divorced or widowed
    pub marital_status: Option<String>,
    pub date_of_birth: Option<String>,
    /// Ringgit, a decimal string.
    #[schema(example = "1250.00")]
    pub total_spent: String,
    pub average_spend: String,
    pub purchase_count: u64,
    /// bronze, silver, gold or platinum
    pub customer_tier: String,
    /// active, blocked or unsubscribed
    pub whatsapp_status: String,
    pub marketing_opt_in: bool,
    pub consent_changed_at: Option<String>,
    pub consent_source: Option<String>,
    pub last_whatsapp_interaction: Option<String>,
    pub message_count: u64,
    pub response_rate: f64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Contact> for ContactView {
    fn from(contact: &Contact) -> Self {
        let spending = contact.spending();
        let stats = &contact.interactions;
        ContactView {
            name: contact.name.clone(),
            phone_number: contact.phone_number.written(),
            ic_number: contact.ic.as_ref().map(|ic| ic.masked.clone()),
            age: contact.age_on(malaysia_today()),
            gender: contact.gender.map(|g| g.as_str().to_string()),
            state: contact.state.clone(),
            marital_status: contact.marital_status.map(|m| m.as_str().to_string()),
            date_of_birth: contact.date_of_birth.map(|d| d.to_string()),
            total_spent: spending.total_spent.to_string(),
            average_spend: spending.average_spend.to_string(),
            purchase_count: spending.purchase_count,
            customer_tier: contact.customer_tier.as_str().to_string(),
            whatsapp_status: contact.whatsapp_status.as_str().to_string(),
            marketing_opt_in: contact.marketing_opt_in,
            consent_changed_at: contact.consent_change.as_ref().map(|c| c.at.to_rfc3339()),
            consent_source: contact.consent_change.as_ref().map(|c| c.source.clone()),
            last_whatsapp_interaction: stats.last_interaction.map(|t| t.to_rfc3339()),
            message_count: stats.message_count,
            response_rate: stats.response_rate(),
            created_at: contact.created_at.to_rfc3339(),
            updated_at: contact.updated_at.to_rfc3339(),
        }
    }
}

/// A contact by phone number.
#[utoipa::path(
    get,
    path = "/api/contacts/{phone}/",
    tag = "contacts",
    params(("phone" = String, Path, description = "Malaysian form (012-345 6789, 60123456789) or + and a country code", example = "60123456789")),
    responses(
        (status = 200, description = "The contact", body = ContactView),
        (status = 400, description = "Not a phone number", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not read contacts", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn show(
    State(state): State<Arc<AdminState>>,
    Path(phone): Path<String>,
) -> Result<Json<ContactView>, ApiError> {
    let phone = parse_phone(&phone)?;
    let contact = existing_contact(&state, &phone).await?;
    Ok(Json(ContactView::from(&contact)))
}

/// The stored contact, or the API's 404 (no such contact) or 503 (the store failed).
pub(super) async fn existing_contact(
    state: &AdminState,
    phone: &PhoneNumber,
) -> Result<Contact, ApiError> {
    state
        .store
        .load_contact(phone)
        .await
        .map_err(store_unavailable)?
        .ok_or_else(|| ApiError::not_found("not_found", "no such contact"))
}

/// A failed store read as the API's 503 (the error's detail goes to the log, not the caller:
/// see `ApiError`'s response).
pub(super) fn store_unavailable(error: StoreError) -> ApiError {
    ApiError::unavailable("store_unavailable", error.to_string())
}

/// Where profile edits go: wa.inbound, keyed by the contact, so its shard applies them in
/// order with its messages (never a write to the store behind the shard's back).
pub struct ProfileEdits {
    pub producer: Arc<dyn Producer>,
    pub inbound_topic: String,
    pub business: Business,
}

impl ProfileEdits {
    /// Edits queued on `inbound_topic`, carried as events of the business number
    /// `phone_number_id` (the admin API and the CSV import have no other business data).
    pub fn new(producer: Arc<dyn Producer>, inbound_topic: String, phone_number_id: &str) -> Self {
        ProfileEdits {
            producer,
            inbound_topic,
            business: Business {
                waba_id: String::new(),
                phone_number_id: phone_number_id.to_string(),
                display_phone_number: String::new(),
            },
        }
    }

    /// Queues an edit of `phone`'s profile; resolves once the bus has it.
    pub async fn submit(
        &self,
        phone: &crate::domain::phone::PhoneNumber,
        edit_id: String,
        source: EditSource,
        patch: ProfilePatch,
    ) -> Result<(), crate::storage::bus::BusError> {
        let edit = ProfileEdit {
            edit_id,
            wa_id: phone.as_str().to_string(),
            at: chrono::Utc::now(),
            source,
            patch,
        };
        self.queue(phone, EventPayload::ProfileEdit(edit), None)
            .await
    }

    /// Queues an event of the admin API for `phone`'s shard (an edit, a review decision),
    /// carried as an event of the business number `phone_number_id` (default: the one
    /// configured), which answers the customer if the event does; resolves once the bus
    /// has it.
    pub async fn queue(
        &self,
        phone: &crate::domain::phone::PhoneNumber,
        payload: EventPayload,
        phone_number_id: Option<String>,
    ) -> Result<(), crate::storage::bus::BusError> {
        let mut business = self.business.clone();
        if let Some(id) = phone_number_id {
            business.phone_number_id = id;
        }
        let event = InboundEvent { business, payload };
        let payload = serde_json::to_vec(&event).expect("an inbound event serializes");
        self.producer
            .send(Record::new(&self.inbound_topic, phone.as_str(), payload))
            .await
            .map(|_| ())
    }
}

/// What an import took and what it left out.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ImportReport {
    /// Rows queued as profile edits.
    pub accepted: u64,
    /// Rows left out, with their line and why.
    pub rejected: Vec<RowError>,
}

impl ProfileEdits {
    /// Queues every row of an import (a few at a time); returns how many the bus took.
    pub async fn submit_rows(
        &self,
        rows: Vec<ImportRow>,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, crate::storage::bus::BusError> {
        use futures::{StreamExt, TryStreamExt};
        let mut sent = futures::stream::iter(rows)
            .map(|row| async move {
                self.submit(&row.phone, row.edit_id, EditSource::CsvImport, row.patch)
                    .await
            })
            .buffered(64);
        let mut count = 0;
        while let Some(()) = sent.try_next().await? {
            count += 1;
            progress(count);
        }
        Ok(count)
    }
}

/// Imports contacts and their attributes from CSV (see docs/segments.md, *Importing
/// contacts*): each row a profile edit through the contact's shard, so importing the same
/// file again changes nothing. Bad rows are reported with their line; the others are taken.
#[utoipa::path(
    post,
    path = "/api/contacts/import",
    tag = "contacts",
    request_body(content = String, content_type = "text/csv", description = "A header row with phone_number, then name, marital_status, tags (';'-separated) and any attribute columns"),
    responses(
        (status = 200, description = "Rows queued and rows left out", body = ImportReport),
        (status = 400, description = "The file is unusable (no header, no phone_number column)", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not change contacts", body = ErrorBody),
        (status = 503, description = "The bus is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn import(
    State(state): State<Arc<AdminState>>,
    body: axum::body::Bytes,
) -> Result<Json<ImportReport>, ApiError> {
    let parsed = parse_contacts_csv(&body[..])
        .map_err(|e| ApiError::bad_request("invalid_csv", e.to_string()))?;
    let edits = state.edits.as_ref().ok_or_else(|| {
        ApiError::unavailable("no_edits", "this process has no bus to queue edits on")
    })?;
    let accepted = edits
        .submit_rows(parsed.rows, |_| {})
        .await
        .map_err(|e| ApiError::unavailable("bus_unavailable", e.to_string()))?;
    Ok(Json(ImportReport {
        accepted,
        rejected: parsed.errors,
    }))
}

/// An accepted edit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EditAccepted {
    pub edit_id: String,
}

/// Changes a contact's name, marital status, attributes or tags. Applied by the contact's
/// shard in order with its messages; a contact not yet known is created.
#[utoipa::path(
    patch,
    path = "/api/contacts/{phone}/",
    tag = "contacts",
    params(("phone" = String, Path, description = "Malaysian form (012-345 6789, 60123456789) or + and a country code", example = "60123456789")),
    request_body = ProfilePatch,
    responses(
        (status = 202, description = "Queued for the contact's shard", body = EditAccepted),
        (status = 400, description = "Not a phone number, or an invalid edit", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not change contacts", body = ErrorBody),
        (status = 503, description = "The bus is unavailable, or this process takes no edits", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn edit(
    State(state): State<Arc<AdminState>>,
    Path(phone): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<(StatusCode, Json<EditAccepted>), ApiError> {
    let phone = parse_phone(&phone)?;
    let patch: ProfilePatch = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request("invalid_profile", e.to_string()))?;
    patch
        .validate()
        .map_err(|e| ApiError::bad_request("invalid_profile", e.to_string()))?;
    let edits = state.edits.as_ref().ok_or_else(|| {
        ApiError::unavailable("no_edits", "this process has no bus to queue edits on")
    })?;
    let edit_id = uuid::Uuid::now_v7().to_string();
    edits
        .submit(&phone, edit_id.clone(), EditSource::AdminApi, patch)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "queueing a profile edit failed");
            ApiError::unavailable("bus_unavailable", e.to_string())
        })?;
    Ok((StatusCode::ACCEPTED, Json(EditAccepted { edit_id })))
}
