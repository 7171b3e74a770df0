//! The PDPA audit trail of the admin API: every request to a route that reads or changes
//! personal data is recorded (the key's id, never the key; the method and route template;
//! the contact the path names; the query, IC numbers masked; the status) as an analytics
//! event, which the analytics role writes to ClickHouse (`personal_data_access`) or the
//! embedded event files.
//!
//! No record, no data: when the event cannot be queued, the answer is replaced by a 503
//! and the data is not released.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use percent_encoding::percent_decode_str;

use crate::domain::phone::PhoneNumber;
use crate::pii::mask::mask_ic_numbers;
use crate::storage::bus::{Producer, Record};
use crate::topics::events::{AnalyticsEvent, PersonalDataAccessEvent};

use super::auth::Caller;
use super::error::ApiError;

/// Where audit events go: the analytics events topic.
pub struct AuditLog {
    pub producer: Arc<dyn Producer>,
    pub events_topic: String,
}

impl AuditLog {
    async fn write(&self, event: PersonalDataAccessEvent) -> Result<(), String> {
        let key = event.key_id.as_bytes().to_vec();
        let event = AnalyticsEvent::PersonalDataAccess(event);
        let payload = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
        self.producer
            .send(Record::new(self.events_topic.clone(), key, payload))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The middleware of the audited route groups (inside `authenticate`, which puts the
/// caller and the log in the request).
pub async fn audited(request: Request, next: Next) -> Response {
    let log = request.extensions().get::<Arc<AuditLog>>().cloned();
    let caller = request.extensions().get::<Caller>().cloned();
    let (Some(log), Some(caller)) = (log, caller) else {
        return next.run(request).await;
    };
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_string(),
        |m| m.as_str().to_string(),
    );
    let contact = named_contact(&route, request.uri().path());
    let method = request.method().as_str().to_string();
    let query = request.uri().query().map(|q| {
        let decoded = percent_decode_str(&q.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        mask_ic_numbers(&decoded)
    });
    let response = next.run(request).await;
    let event = PersonalDataAccessEvent {
        event_id: uuid::Uuid::new_v4(),
        occurred_at: Utc::now(),
        key_id: caller.key_id.to_string(),
        role: <&'static str>::from(caller.role).to_string(),
        method,
        route,
        query,
        contact_phone: contact,
        status: response.status().as_u16(),
    };
    match log.write(event).await {
        Ok(()) => response,
        Err(error) => ApiError::unavailable(
            "audit_unavailable",
            format!("the audit trail could not record the request: {error}"),
        )
        .into_response(),
    }
}

/// The contact a route's path names: its `{phone}` parameter, or the `{id}` of
/// `/api/customers/{id}/...` (a phone number there).
fn named_contact(template: &str, path: &str) -> Option<PhoneNumber> {
    let customers = template.starts_with("/api/customers/{id}");
    template
        .split('/')
        .zip(path.split('/'))
        .find(|(t, _)| *t == "{phone}" || (customers && *t == "{id}"))
        .and_then(|(_, value)| {
            let value = percent_decode_str(value).decode_utf8_lossy();
            PhoneNumber::parse(&value).ok()
        })
}

#[cfg(test)]
mod tests {
    use super::named_contact;

    #[test]
    fn the_contact_comes_from_the_phone_or_customer_parameter_only() {
        let siti = named_contact("/api/contacts/{phone}/", "/api/contacts/012-345%206789/");
        assert_eq!(siti.unwrap().as_str(), "60123456789");
        let abroad = named_contact("/api/contacts/{phone}/", "/api/contacts/%2B6591234567/");
        assert_eq!(abroad.unwrap().as_str(), "6591234567");
        let customer = named_contact(
            "/api/customers/{id}/purchases/",
            "/api/customers/60123456789/purchases/",
        );
        assert!(customer.is_some());
        assert!(named_contact(
            "/api/campaigns/{id}/recipients/",
            "/api/campaigns/60123456789/recipients/"
        )
        .is_none());
        assert!(named_contact("/api/contacts/", "/api/contacts/").is_none());
    }
}
