//! `GET /api/contacts/<phone>/export`: everything Sembang holds on one person, as JSON, for
//! a PDPA access or portability request (FACTS.md). Admins only (the data-protection
//! officer's key): it is the one answer that gathers a whole person in one place.
//!
//! What it holds: the profile (the IC number masked: the full number stays in the vault),
//! the retailer's attributes, consent (the latest change with its source and wording),
//! purchases, messages (newest first, up to [`MAX_MESSAGES`]) and every campaign that
//! planned the person as a recipient, with its steps.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::campaigns::{recipient_view, RecipientView};
use super::contacts::{existing_contact, store_unavailable, ContactView};
use super::error::{ApiError, ErrorBody};
use super::history::{MessageView, PurchaseView};
use super::{parse_phone, AdminState};
use crate::domain::contact::Contact;
use crate::domain::phone::PhoneNumber;
use crate::domain::purchase::Purchase;
use crate::storage::store::{ContactStore, MessageRecord, StoreError};

/// Messages in one export; a longer history says so (`messages_truncated`).
pub const MAX_MESSAGES: u32 = 10_000;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConsentView {
    pub marketing_opt_in: bool,
    pub changed_at: Option<DateTime<Utc>>,
    /// e.g. keyword:STOP, question:consent, csv:<source>, admin, provider:131050.
    pub source: Option<String>,
    /// The wording the person was shown when they consented, when there was one.
    pub wording: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CampaignReceived {
    pub campaign_id: String,
    pub name: String,
    pub steps: RecipientView,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PersonalDataExport {
    pub generated_at: DateTime<Utc>,
    /// The person's number in full: the export is their own data.
    #[schema(example = "60123456789")]
    pub phone_number: String,
    pub profile: ContactView,
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    pub consent: ConsentView,
    pub purchases: Vec<PurchaseView>,
    pub messages: Vec<MessageView>,
    /// More messages are held than the export carries.
    pub messages_truncated: bool,
    pub campaigns: Vec<CampaignReceived>,
}

/// Everything held on a person, for an access or portability request.
#[utoipa::path(
    get,
    path = "/api/contacts/{phone}/export",
    tag = "contacts",
    params(("phone" = String, Path, description = "The person's phone number", example = "60123456789")),
    responses(
        (status = 200, description = "Everything held on the person", body = PersonalDataExport),
        (status = 400, description = "Not a phone number", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Only admins may export a person's data", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn export(
    State(state): State<Arc<AdminState>>,
    Path(phone): Path<String>,
) -> Result<Json<PersonalDataExport>, ApiError> {
    let phone = parse_phone(&phone)?;
    let store = &*state.store;
    let contact = existing_contact(&state, &phone).await?;
    let purchases = store.purchases(&phone).await.map_err(store_unavailable)?;
    let messages = store
        .messages(&phone, MAX_MESSAGES + 1)
        .await
        .map_err(store_unavailable)?;
    let campaigns = campaigns_received(store, &phone)
        .await
        .map_err(store_unavailable)?;
    Ok(Json(assemble(contact, purchases, messages, campaigns)))
}

/// Every campaign that planned `phone` as a recipient, with its steps.
async fn campaigns_received(
    store: &dyn ContactStore,
    phone: &PhoneNumber,
) -> Result<Vec<CampaignReceived>, StoreError> {
    let mut received = Vec::new();
    for campaign in store.campaigns().await? {
        if let Some(steps) = store.recipient(&campaign.campaign_id, phone).await? {
            received.push(CampaignReceived {
                steps: recipient_view(phone, &steps, None),
                campaign_id: campaign.campaign_id,
                name: campaign.name,
            });
        }
    }
    Ok(received)
}

fn assemble(
    contact: Contact,
    purchases: Vec<Purchase>,
    mut messages: Vec<MessageRecord>,
    campaigns: Vec<CampaignReceived>,
) -> PersonalDataExport {
    let messages_truncated = messages.len() > MAX_MESSAGES as usize;
    messages.truncate(MAX_MESSAGES as usize);
    let consent = ConsentView {
        marketing_opt_in: contact.marketing_opt_in,
        changed_at: contact.consent_change.as_ref().map(|c| c.at),
        source: contact.consent_change.as_ref().map(|c| c.source.clone()),
        wording: contact
            .consent_change
            .as_ref()
            .and_then(|c| c.wording.clone()),
    };
    PersonalDataExport {
        generated_at: Utc::now(),
        phone_number: contact.phone_number.as_str().to_string(),
        profile: ContactView::from(&contact),
        attributes: contact.attributes.clone(),
        consent,
        purchases: purchases.into_iter().map(PurchaseView::from).collect(),
        messages: messages.into_iter().map(MessageView::from).collect(),
        messages_truncated,
        campaigns,
    }
}
