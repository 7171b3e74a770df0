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

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::config::Secret;
use crate::storage::bus::dead_letter::rejected_input;
use crate::storage::bus::refused::send_or_dead_letter;
use crate::storage::bus::{Producer, Record};

use super::verification::tokens_equal;
use super::wabot::parse_wabot;
use super::{parse_webhook, verify_signature, verify_subscription, InboundEvent, RejectedItem};

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
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
}

pub fn routes(state: Arc<WebhookState>) -> Router {
    Router::new()
        .route("/webhook/whatsapp", get(handshake).post(receive))
        .route("/webhook/wabot", post(receive_wabot))
        .with_state(state)
}

#[derive(Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

async fn handshake(State(state): State<Arc<WebhookState>>, Query(q): Query<Handshake>) -> Response {
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

async fn receive(
    State(state): State<Arc<WebhookState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(secret) = &state.app_secret {
        let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        if let Err(reason) = verify_signature(secret.expose().as_bytes(), header, &body) {
            metrics::counter!("sembang_ingress_requests_total", "outcome" => "bad_signature")
                .increment(1);
            return refuse(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                &reason.to_string(),
            );
        }
    }
    let parsed = match parse_webhook(&body) {
        Ok(parsed) => parsed,
        Err(reason) => {
            metrics::counter!("sembang_ingress_requests_total", "outcome" => "malformed")
                .increment(1);
            return refuse(StatusCode::BAD_REQUEST, "malformed", &reason.to_string());
        }
    };
    match store(&state, &parsed.events, &parsed.rejected).await {
        Ok(count) => (
            StatusCode::OK,
            Json(json!({
                "accepted": count,
                "dead_lettered": parsed.rejected.len(),
                "skipped_changes": parsed.skipped.len(),
            })),
        )
            .into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct WabotAuth {
    token: Option<String>,
}

/// The wabot.my gateway's webhook: one message per POST, authenticated by the gateway's
/// access token (`?token=` or `X-Wabot-Token`), since the gateway signs nothing.
async fn receive_wabot(
    State(state): State<Arc<WebhookState>>,
    Query(auth): Query<WabotAuth>,
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
    let presented = auth.token.or_else(|| {
        headers
            .get("x-wabot-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    if !presented.is_some_and(|p| tokens_equal(&p, expected.expose())) {
        metrics::counter!("sembang_ingress_requests_total", "outcome" => "bad_token").increment(1);
        return refuse(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "missing or wrong gateway token",
        );
    }
    let event = match parse_wabot(&body) {
        Ok(event) => event,
        Err(reason) => {
            metrics::counter!("sembang_ingress_requests_total", "outcome" => "malformed")
                .increment(1);
            return refuse(StatusCode::BAD_REQUEST, "malformed", &reason.to_string());
        }
    };
    match store(&state, std::slice::from_ref(&event), &[]).await {
        Ok(count) => (StatusCode::OK, Json(json!({ "accepted": count }))).into_response(),
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
    for item in rejected {
        tracing::warn!(error = %item.error, "unreadable webhook item sent to the dead-letter topic");
        records.push(rejected_input(
            &state.dead_letter_topic,
            WEBHOOK_SOURCE,
            item.wa_id().unwrap_or(WEBHOOK_SOURCE).as_bytes(),
            item.raw.to_string().into_bytes(),
            KIND_MALFORMED_ITEM,
            &item.error.to_string(),
        ));
    }
    if let Err(error) =
        send_or_dead_letter(&*state.producer, &records, &state.dead_letter_topic).await
    {
        tracing::warn!(%error, "webhook events not stored; answering 503 so the sender retries");
        metrics::counter!("sembang_ingress_requests_total", "outcome" => "unavailable")
            .increment(1);
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &error.to_string(),
        ));
    }
    metrics::counter!("sembang_ingress_requests_total", "outcome" => "accepted").increment(1);
    metrics::counter!("sembang_ingress_events_total").increment(count as u64);
    if !rejected.is_empty() {
        metrics::counter!("sembang_dlq_total", "reason" => KIND_MALFORMED_ITEM)
            .increment(rejected.len() as u64);
    }
    Ok(count)
}

/// A JSON error body: `{"error": {"kind", "message"}}`.
pub fn refuse(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "kind": kind, "message": message } })),
    )
        .into_response()
}
