//! `GET /api/contacts/<phone>/`: a contact with the seed's field names. The IC number is
//! only ever shown masked.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::domain::contact::Contact;
use crate::engine::malaysia_today;
use crate::ingress::http::refuse;

use super::{parse_phone, AdminState};

pub async fn show(State(state): State<Arc<AdminState>>, Path(phone): Path<String>) -> Response {
    let phone = match parse_phone(&phone) {
        Ok(phone) => phone,
        Err(refusal) => return *refusal,
    };
    match state.store.load_contact(&phone).await {
        Ok(Some(contact)) => Json(view(&contact)).into_response(),
        Ok(None) => refuse(StatusCode::NOT_FOUND, "not_found", "no such contact"),
        Err(e) => {
            tracing::warn!(error = %e, "contact look-up failed");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                &e.to_string(),
            )
        }
    }
}

/// The admin view of a contact.
pub fn view(contact: &Contact) -> serde_json::Value {
    let spending = contact.spending();
    let stats = &contact.interactions;
    json!({
        "name": contact.name,
        // A form the API's paths take back: another country's number with its +.
        "phone_number": contact.phone_number.written(),
        "ic_number": contact.ic.as_ref().map(|ic| ic.masked.clone()),
        "age": contact.age_on(malaysia_today()),
        "gender": contact.gender.map(|g| g.as_str()),
        "state": contact.state,
        "marital_status": contact.marital_status.map(|m| m.as_str()),
        "date_of_birth": contact.date_of_birth.map(|d| d.to_string()),
        "total_spent": spending.total_spent.to_string(),
        "average_spend": spending.average_spend.to_string(),
        "purchase_count": spending.purchase_count,
        "customer_tier": contact.customer_tier.as_str(),
        "whatsapp_status": contact.whatsapp_status.as_str(),
        "marketing_opt_in": contact.marketing_opt_in,
        "consent_changed_at": contact.consent_change.as_ref().map(|c| c.at.to_rfc3339()),
        "consent_source": contact.consent_change.as_ref().map(|c| c.source.clone()),
        "last_whatsapp_interaction": stats.last_interaction.map(|t| t.to_rfc3339()),
        "message_count": stats.message_count,
        "response_rate": stats.response_rate(),
        "created_at": contact.created_at.to_rfc3339(),
        "updated_at": contact.updated_at.to_rfc3339(),
    })
}
