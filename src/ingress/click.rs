//! Tracking-link clicks: `GET /r/<token>` answers 302 to the campaign's link at once and
//! records the click through the contact's shard (wa.inbound), asynchronously.
//!
//! The redirect never waits for Kafka: the click goes to a bounded in-memory buffer that
//! a task drains to the bus with retries. What can be lost: the clicks in the buffer when
//! the process dies, and clicks refused while the buffer is full (the bus down for long;
//! counted in `sembang_campaign_clicks_total{outcome="dropped"}`). The customer always
//! reaches the link. Campaign definitions are cached, so a click needs the store once per
//! campaign and process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use tokio::sync::mpsc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::campaigns::definition_of;
use crate::campaigns::links::{nth_link, LinkSealer};
use crate::domain::campaign::CampaignMessage;
use crate::metrics::catalog;
use crate::storage::bus::refused::send_outputs;
use crate::storage::bus::{Producer, Record};
use crate::storage::store::ContactStore;
use crate::topics::inbound::{Business, EventPayload, InboundEvent, LinkClick};

/// Clicks waiting for the bus, at most.
pub const CLICK_BUFFER: usize = 10_000;
/// Campaign messages cached, at most (then the cache starts over).
const CACHED_CAMPAIGNS: usize = 1_000;

pub struct ClickState {
    sealer: Arc<LinkSealer>,
    store: Arc<dyn ContactStore>,
    buffer: mpsc::Sender<Record>,
    inbound_topic: String,
    business: Business,
    messages: Mutex<HashMap<String, Arc<CampaignMessage>>>,
}

impl ClickState {
    /// The state, and the task that drains clicks to the bus (until the state is dropped).
    pub fn start(
        sealer: Arc<LinkSealer>,
        store: Arc<dyn ContactStore>,
        producer: Arc<dyn Producer>,
        inbound_topic: String,
        dead_letter_topic: String,
        business: Business,
    ) -> Arc<ClickState> {
        let (buffer, mut clicks) = mpsc::channel::<Record>(CLICK_BUFFER);
        tokio::spawn(async move {
            while let Some(first) = clicks.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = clicks.try_recv() {
                    batch.push(more);
                    if batch.len() >= 500 {
                        break;
                    }
                }
                if let Err(e) = send_outputs(&*producer, batch, &dead_letter_topic).await {
                    tracing::error!(error = %e, "clicks lost: the bus refused them after retries");
                }
            }
        });
        Arc::new(ClickState {
            sealer,
            store,
            buffer,
            inbound_topic,
            business,
            messages: Mutex::new(HashMap::new()),
        })
    }

    async fn message(&self, campaign_id: &str) -> Option<Arc<CampaignMessage>> {
        if let Some(found) = lock(&self.messages).get(campaign_id) {
            return Some(found.clone());
        }
        let record = self.store.campaign(campaign_id).await.ok()??;
        let message = Arc::new(definition_of(&record).ok()?.message);
        let mut cache = lock(&self.messages);
        if cache.len() >= CACHED_CAMPAIGNS {
            cache.clear();
        }
        cache.insert(campaign_id.to_string(), message.clone());
        Some(message)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn routes() -> OpenApiRouter<Arc<ClickState>> {
    OpenApiRouter::new().routes(routes!(redirect))
}

fn not_a_link() -> Response {
    catalog::CAMPAIGN_CLICKS
        .counter(&["invalid".into()])
        .increment(1);
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        "This link is not valid.",
    )
        .into_response()
}

/// A campaign's tracking link: redirects to the link it stands for and records the click.
#[utoipa::path(
    get,
    path = "/r/{token}",
    tag = "webhook",
    params(("token" = String, Path, description = "The sealed (campaign, recipient, link)")),
    responses(
        (status = 302, description = "To the campaign's link"),
        (status = 404, description = "Not a tracking link of this deployment (a line for the customer's browser)", body = String, content_type = "text/plain"),
    )
)]
pub async fn redirect(State(state): State<Arc<ClickState>>, Path(token): Path<String>) -> Response {
    let Ok(link) = state.sealer.open(&token) else {
        return not_a_link();
    };
    let Some(message) = state.message(&link.campaign_id).await else {
        return not_a_link();
    };
    let Some(url) = message
        .trackable_text()
        .and_then(|text| nth_link(text, link.link))
        .map(str::to_string)
    else {
        return not_a_link();
    };
    let event = InboundEvent {
        business: state.business.clone(),
        payload: EventPayload::Click(LinkClick {
            click_id: uuid::Uuid::new_v4().to_string(),
            campaign_id: link.campaign_id,
            wa_id: link.recipient.as_str().to_string(),
            link: link.link,
            url: url.clone(),
            at: Utc::now(),
        }),
    };
    let record = Record::new(
        state.inbound_topic.clone(),
        link.recipient.as_str().as_bytes().to_vec(),
        serde_json::to_vec(&event).expect("an event serializes"),
    );
    let outcome = match state.buffer.try_send(record) {
        Ok(()) => "redirected",
        Err(_) => "dropped",
    };
    catalog::CAMPAIGN_CLICKS
        .counter(&[outcome.into()])
        .increment(1);
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, url),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (header::REFERRER_POLICY, "no-referrer".to_string()),
        ],
    )
        .into_response()
}
