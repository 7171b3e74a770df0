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
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::error::{ApiError, ErrorBody};
use crate::config::Secret;
use crate::storage::bus::dead_letter::rejected_input;
use crate::storage::bus::refused::send_or_dead_letter;
use crate::storage::bus::{Producer, Record};

use super::verification::tokens_equal;
use super::wabot::parse_wabot;
use super::{parse_webhook, verify_signature, verify_subscription, RejectedItem};
use crate::metrics::catalog;
use crate::topics::inbound::InboundEvent;

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
            catalog::INGRESS_REQUESTS
                .counter(&["bad_signature".into()])
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
            catalog::INGRESS_REQUESTS
                .counter(&["malformed".into()])
                .increment(1);
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
pub struct WabotAuth {
    /// The gateway's access token (or send it as `X-Wabot-Token`).
    token: Option<String>,
}

/// The wabot.my gateway's webhook: one message per POST, authenticated by the gateway's
/// access token (`?token=` or `X-Wabot-Token`), since the gateway signs nothing.
#[utoipa::path(
    post,
    path = "/webhook/wabot",
    tag = "webhook",
    params(WabotAuth, ("X-Wabot-Token" = Option<String>, Header, description = "The gateway's access token")),
    request_body(content = Object, description = "One wabot.my message (see src/ingress/wabot.rs)", content_type = "application/json"),
    responses(
        (status = 200, description = "The event is durable on wa.inbound", body = WabotAccepted),
        (status = 400, description = "Not a wabot.my message", body = ErrorBody),
        (status = 401, description = "Missing or wrong gateway token", body = ErrorBody),
        (status = 404, description = "No wabot.my gateway is configured", body = ErrorBody),
        (status = 503, description = "The bus cannot take the event now", body = ErrorBody),
    )
)]
pub async fn receive_wabot(
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
        catalog::INGRESS_REQUESTS
            .counter(&["bad_token".into()])
            .increment(1);
        return refuse(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "missing or wrong gateway token",
        );
    }
    let event = match parse_wabot(&body) {
        Ok(event) => event,
        Err(reason) => {
            catalog::INGRESS_REQUESTS
                .counter(&["malformed".into()])
                .increment(1);
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
        catalog::INGRESS_REQUESTS
            .counter(&["unavailable".into()])
            .increment(1);
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &error.to_string(),
        ));
    }
    catalog::INGRESS_REQUESTS
        .counter(&["accepted".into()])
        .increment(1);
    catalog::INGRESS_EVENTS.counter(&[]).increment(count as u64);
    if !rejected.is_empty() {
        catalog::DLQ
            .counter(&[KIND_MALFORMED_ITEM.into()])
            .increment(rejected.len() as u64);
    }
    Ok(count)
}

fn refuse(status: StatusCode, kind: &str, message: &str) -> Response {
    ApiError::new(status, kind, message).into_response()
}
