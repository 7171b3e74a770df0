//! The webhook over HTTP (axum): the GET subscription handshake and the POST that turns a
//! signed Cloud API envelope into events on wa.inbound. The POST answers 200 only after the
//! bus has made every event durable, so WhatsApp retries whatever we could not take.
//!
//! Answers: 200 stored; 400 not a webhook envelope (with the reason); 401 bad or missing
//! signature when an app secret is configured; 413 body over the limit (axum's body limit);
//! 503 the bus cannot take the events now (WhatsApp retries later). An unreadable item in a
//! readable envelope (a message without its body, a bad timestamp) goes to the dead-letter
//! topic with its reason and the rest is taken: 200, with the count in `dead_lettered`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::{ApiError, ErrorBody};
use crate::config::Secret;
use crate::storage::bus::dead_letter::rejected_input;
use crate::storage::bus::refused::send_or_dead_letter;
use crate::storage::bus::{BusError, Producer, Record};

use super::verification::tokens_equal;
use super::wabot::parse_wabot;
use super::{parse_webhook, verify_signature, verify_subscription, RejectedItem};
use crate::metrics::catalog;
use crate::pii::mask::mask_ic_numbers;
use crate::topics::inbound::InboundEvent;

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// What became of a webhook post, as counted in `sembang_ingress_requests_total`.
#[derive(Clone, Copy, Debug, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "snake_case")]
enum Outcome {
    Accepted,
    BadSignature,
    BadToken,
    Malformed,
    Unavailable,
}

fn count_post(outcome: Outcome) {
    let label: &'static str = outcome.into();
    catalog::INGRESS_REQUESTS
        .counter(&[label.into()])
        .increment(1);
}

/// Every outcome's count exists from the start, at 0: a ratio or `increase()` in an alert
/// then sees the first 503 too.
pub fn register_metrics() {
    for outcome in <Outcome as strum::IntoEnumIterator>::iter() {
        let label: &'static str = outcome.into();
        catalog::INGRESS_REQUESTS
            .counter(&[label.into()])
            .increment(0);
    }
}
/// The dead-letter source of unreadable webhook items.
pub const WEBHOOK_SOURCE: &str = "webhook:whatsapp";
/// The dead-letter kind of an unreadable webhook item.
pub const KIND_MALFORMED_ITEM: &str = "malformed_webhook_item";

pub struct WebhookState {
    pub producer: Arc<dyn Producer>,
    /// wa.inbound under the deployment's namespace.
    pub inbound_topic: String,
    /// Where unreadable items, and events the bus refuses for what they are (too large),
    /// go with the reason.
    pub dead_letter_topic: String,
    pub app_secret: Option<Secret>,
    pub verify_token: Option<Secret>,
    /// The wabot.my gateway's access token; `/webhook/wabot` answers 404 without one.
    pub wabot_token: Option<Secret>,
    /// How long a post waits for the bus before it is answered 503
    /// (`http.webhook_store_timeout_ms`): during a broker outage the producer would hold
    /// it for its whole message timeout, and the sender's connection with it.
    pub store_timeout: Duration,
}

/// The webhook routes, documented (state is given by the caller).
pub fn routes() -> OpenApiRouter<Arc<WebhookState>> {
    OpenApiRouter::new()
        .routes(routes!(handshake, receive))
        .routes(routes!(receive_wabot))
}

/// What the webhook took.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookAccepted {
    /// Events now durable on wa.inbound.
    pub accepted: usize,
    /// Unreadable items sent to crm.dlq with their reason.
    pub dead_lettered: usize,
    /// Changes of fields other than `messages`, ignored.
    pub skipped_changes: usize,
}

/// What the wabot.my webhook took.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WabotAccepted {
    pub accepted: usize,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// The Cloud API's subscription handshake: echoes `hub.challenge` for the right token.
#[utoipa::path(
    get,
    path = "/webhook/whatsapp",
    tag = "webhook",
    params(Handshake),
    responses(
        (status = 200, description = "The challenge, as plain text", body = String, content_type = "text/plain"),
        (status = 403, description = "Wrong mode or token", body = ErrorBody),
    )
)]
pub async fn handshake(
    State(state): State<Arc<WebhookState>>,
    Query(q): Query<Handshake>,
) -> Response {
    let configured = state.verify_token.as_ref().map_or("", |t| t.expose());
    match verify_subscription(
        q.mode.as_deref(),
        q.verify_token.as_deref(),
        q.challenge.as_deref(),
        configured,
    ) {
        Ok(challenge) => (StatusCode::OK, challenge).into_response(),
        Err(reason) => refuse(StatusCode::FORBIDDEN, "forbidden", &reason.to_string()),
    }
}

/// A Cloud API webhook POST: a signed envelope of messages, statuses and errors.
#[utoipa::path(
    post,
    path = "/webhook/whatsapp",
    tag = "webhook",
    params(("X-Hub-Signature-256" = Option<String>, Header, description = "sha256=<HMAC-SHA256 of the body with the app secret>; required when an app secret is configured")),
    request_body(content = Object, description = "The Cloud API's webhook envelope (`object`: whatsapp_business_account, `entry[].changes[].value`)", content_type = "application/json"),
    responses(
        (status = 200, description = "Every event is durable on wa.inbound", body = WebhookAccepted),
        (status = 400, description = "Not a webhook envelope", body = ErrorBody),
        (status = 401, description = "Bad or missing signature", body = ErrorBody),
        (status = 413, description = "Body over http.max_body_bytes"),
        (status = 503, description = "The bus cannot take the events now; WhatsApp retries", body = ErrorBody),
    )
)]
pub async fn receive(
    State(state): State<Arc<WebhookState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(secret) = &state.app_secret {
        let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        if let Err(reason) = verify_signature(secret.expose().as_bytes(), header, &body) {
            count_post(Outcome::BadSignature);
            return refuse(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                &reason.to_string(),
            );
        }
    }
    let received_at = chrono::Utc::now();
    let parsed = match parse_webhook(&body) {
        Ok(mut parsed) => {
            for event in &mut parsed.events {
                event.clamp_to(received_at);
                event.mask_ic_numbers();
            }
            parsed
        }
        Err(reason) => {
            count_post(Outcome::Malformed);
            return refuse(StatusCode::BAD_REQUEST, "malformed", &reason.to_string());
        }
    };
    match store(&state, &parsed.events, &parsed.rejected).await {
        Ok(count) => (
            StatusCode::OK,
            Json(WebhookAccepted {
                accepted: count,
                dead_lettered: parsed.rejected.len(),
                skipped_changes: parsed.skipped.len(),
            }),
        )
            .into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WabotQuery {
    /// Refused: a token in the query string ends up in proxies' access logs.
    token: Option<String>,
}

/// The header carrying the wabot.my gateway's secret.
pub const WABOT_TOKEN_HEADER: &str = "x-wabot-token";
/// The header carrying `sha256=<HMAC-SHA256 of the body with the gateway's secret>`.
pub const WABOT_SIGNATURE_HEADER: &str = "x-wabot-signature";

/// The wabot.my gateway's webhook: one message per POST. The gateway signs nothing, so the
/// caller proves it holds the configured secret: as `X-Wabot-Token` (compared in constant
/// time) or, better, as `X-Wabot-Signature`, an HMAC of the body that a replayed or edited
/// body fails. Never in the query string, where proxies log it.
#[utoipa::path(
    post,
    path = "/webhook/wabot",
    tag = "webhook",
    params(
        WabotQuery,
        ("X-Wabot-Token" = Option<String>, Header, description = "The gateway's secret"),
        ("X-Wabot-Signature" = Option<String>, Header, description = "sha256=<HMAC-SHA256 of the body with the gateway's secret>"),
    ),
    request_body(content = Object, description = "One wabot.my message (see src/ingress/wabot.rs)", content_type = "application/json"),
    responses(
        (status = 200, description = "The event is durable on wa.inbound", body = WabotAccepted),
        (status = 400, description = "Not a wabot.my message", body = ErrorBody),
        (status = 401, description = "Missing or wrong secret or signature, or a token in the query string", body = ErrorBody),
        (status = 404, description = "No wabot.my gateway is configured", body = ErrorBody),
        (status = 503, description = "The bus cannot take the event now", body = ErrorBody),
    )
)]
pub async fn receive_wabot(
    State(state): State<Arc<WebhookState>>,
    Query(query): Query<WabotQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(expected) = &state.wabot_token else {
        return refuse(
            StatusCode::NOT_FOUND,
            "not_configured",
            "no wabot.my gateway is configured",
        );
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let refusal = if query.token.is_some() {
        Some("send the gateway's secret in X-Wabot-Token or sign the body (X-Wabot-Signature), never in the query string")
    } else if let Some(signature) = header(WABOT_SIGNATURE_HEADER) {
        verify_signature(expected.expose().as_bytes(), Some(signature), &body)
            .err()
            .map(|_| "wrong X-Wabot-Signature")
    } else if header(WABOT_TOKEN_HEADER).is_some_and(|t| tokens_equal(t, expected.expose())) {
        None
    } else {
        Some("missing or wrong gateway secret")
    };
    if let Some(reason) = refusal {
        count_post(Outcome::BadToken);
        return refuse(StatusCode::UNAUTHORIZED, "bad_token", reason);
    }
    let event = match parse_wabot(&body) {
        Ok(mut event) => {
            event.clamp_to(chrono::Utc::now());
            event.mask_ic_numbers();
            event
        }
        Err(reason) => {
            count_post(Outcome::Malformed);
            return refuse(StatusCode::BAD_REQUEST, "malformed", &reason.to_string());
        }
    };
    match store(&state, std::slice::from_ref(&event), &[]).await {
        Ok(count) => (StatusCode::OK, Json(WabotAccepted { accepted: count })).into_response(),
        Err(response) => response,
    }
}

/// Produces the events to wa.inbound, and the items that could not be read to the
/// dead-letter topic, and waits until the bus has them all; a bus that cannot take them
/// gets the caller a 503, so the sender retries later. An unreadable item would be
/// unreadable on every retry, and so would an event the bus refuses for what it is: both
/// go to the dead-letter topic with the reason, and the rest of the body is taken.
async fn store(
    state: &WebhookState,
    events: &[InboundEvent],
    rejected: &[RejectedItem],
) -> Result<usize, Response> {
    let mut records = Vec::with_capacity(events.len() + rejected.len());
    for event in events {
        let payload = serde_json::to_vec(event)
            .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, "encode", &e.to_string()))?;
        records.push(Record::new(
            state.inbound_topic.clone(),
            event.partition_key().as_bytes().to_vec(),
            payload,
        ));
    }
    let count = records.len();
    records.extend(dead_letters(&state.dead_letter_topic, rejected));
    // A post answered 503 after the timeout may still reach the bus later: the sender's
    // retry is then a duplicate, which the engine drops by the message's id.
    let sent = tokio::time::timeout(
        state.store_timeout,
        send_or_dead_letter(&*state.producer, &records, &state.dead_letter_topic),
    )
    .await
    .unwrap_or(Err(BusError::Timeout {
        service: "event bus",
        operation: "the webhook's events",
        after: state.store_timeout,
    }));
    if let Err(error) = sent {
        tracing::warn!(%error, "webhook events not stored; answering 503 so the sender retries");
        count_post(Outcome::Unavailable);
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the events could not be stored now; retry later",
        ));
    }
    count_post(Outcome::Accepted);
    catalog::INGRESS_EVENTS.counter(&[]).increment(count as u64);
    if !rejected.is_empty() {
        catalog::DLQ
            .counter(&[KIND_MALFORMED_ITEM.into()])
            .increment(rejected.len() as u64);
    }
    Ok(count)
}

/// Unreadable items kept one record each up to this many per body; the rest of a body
/// travel together in one record, so a crafted body of a million bad items costs a bounded
/// number of records and one log line, and loses none of them.
pub const MAX_DEAD_LETTERS_PER_BODY: usize = 20;

/// The dead-letter records of a body's unreadable items.
fn dead_letters(topic: &str, rejected: &[RejectedItem]) -> Vec<Record> {
    let Some(first) = rejected.first() else {
        return Vec::new();
    };
    tracing::warn!(
        items = rejected.len(),
        first_error = %first.error,
        "unreadable webhook items sent to the dead-letter topic"
    );
    let one = |item: &RejectedItem| {
        rejected_input(
            topic,
            WEBHOOK_SOURCE,
            item.wa_id().unwrap_or(WEBHOOK_SOURCE).as_bytes(),
            mask_ic_numbers(&item.raw.to_string()).into_bytes(),
            KIND_MALFORMED_ITEM,
            &mask_ic_numbers(&item.error.to_string()),
        )
    };
    let (each, rest) = rejected.split_at(rejected.len().min(MAX_DEAD_LETTERS_PER_BODY));
    let mut records: Vec<Record> = each.iter().map(one).collect();
    if let Some(first_of_rest) = rest.first() {
        let items: Vec<serde_json::Value> = rest.iter().map(|item| item.raw.clone()).collect();
        records.push(rejected_input(
            topic,
            WEBHOOK_SOURCE,
            WEBHOOK_SOURCE.as_bytes(),
            mask_ic_numbers(&serde_json::Value::from(items).to_string()).into_bytes(),
            KIND_MALFORMED_ITEM,
            &format!(
                "{} more unreadable items of the same body (a JSON array); the first: {}",
                rest.len(),
                first_of_rest.error
            ),
        ));
    }
    records
}

fn refuse(status: StatusCode, kind: &str, message: &str) -> Response {
    ApiError::new(status, kind, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::ParseError;

    fn unreadable(n: usize) -> Vec<RejectedItem> {
        (0..n)
            .map(|i| RejectedItem {
                error: ParseError::MissingField {
                    location: format!("messages[{i}].text.body"),
                },
                raw: serde_json::json!({"from": "60123456789", "id": format!("wamid.{i}")}),
            })
            .collect()
    }

    #[test]
    fn a_body_of_many_unreadable_items_costs_a_bounded_number_of_records() {
        assert!(dead_letters("crm.dlq", &[]).is_empty());
        let few = dead_letters("crm.dlq", &unreadable(3));
        assert_eq!(few.len(), 3, "each its own record up to the cap");
        assert_eq!(few[0].key, b"60123456789", "keyed by the customer");

        let many = dead_letters("crm.dlq", &unreadable(10_000));
        assert_eq!(many.len(), MAX_DEAD_LETTERS_PER_BODY + 1);
        let rest: Vec<serde_json::Value> =
            serde_json::from_slice(&many.last().unwrap().payload).unwrap();
        assert_eq!(rest.len(), 10_000 - MAX_DEAD_LETTERS_PER_BODY, "none lost");
        assert_eq!(rest[0]["id"], format!("wamid.{MAX_DEAD_LETTERS_PER_BODY}"));
        assert_eq!(rest.last().unwrap()["id"], "wamid.9999");
    }
}
