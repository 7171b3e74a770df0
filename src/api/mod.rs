//! The HTTP surfaces of a process: the public one (the webhooks, tracking-link redirects,
//! `/healthz`) and the private one (the admin API, `/metrics`, `/healthz`), on two listeners
//! or, on loopback, on one ([`surfaces`], [`router`]). The admin API is typed: every route is registered through utoipa-axum, so
//! the OpenAPI document ([`openapi`], served at `GET /api/openapi.json`, committed as
//! docs/openapi.json) is generated from the handlers themselves.
//!
//! Admin authentication and roles: [`auth`]. With no key configured, the admin API is open
//! only where the profile allows it (`admin.require_api_key = false`: the embedded default,
//! and only on a loopback listener: the config refuses it elsewhere).

pub mod analytics;
pub mod audit;
pub mod auth;
pub mod body;
pub mod campaigns;
pub mod contact_list;
pub mod contacts;
pub mod dead_letters;
pub mod erasure;
pub mod error;
pub mod export;
pub mod history;
pub mod ocr;
pub mod query;
pub mod reviews;
pub mod sandbox;
pub mod segments;
pub mod uploads;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::phone::PhoneNumber;
use crate::ingress::click::ClickState;
use crate::ingress::http::{routes as webhook_routes, WebhookState};
use crate::provider::SandboxProvider;
use crate::storage::sink::AnalyticsReader;
use crate::storage::store::ContactStore;

pub use auth::{ApiKeyError, ApiKeys, Role};
pub use error::ApiError;
pub use segments::SegmentsState;
pub use uploads::UploadState;

pub struct AdminState {
    pub store: Arc<dyn ContactStore>,
    /// Present when this process sends through the sandbox provider.
    pub sandbox: Option<Arc<SandboxProvider>>,
    pub keys: ApiKeys,
    pub require_key: bool,
    /// Present when this process takes photo uploads for the OCR role.
    pub uploads: Option<UploadState>,
    /// Present when this process indexes every crm.contacts partition (the api role).
    pub segments: Option<SegmentsState>,
    /// Where profile edits are queued.
    pub edits: Option<contacts::ProfileEdits>,
    /// Present with `segments` (the api role): campaign settings and test sends.
    pub campaigns: Option<campaigns::CampaignsState>,
    /// Present when this process reads photos for `POST /api/ocr/process/`.
    pub ocr: Option<ocr::OcrState>,
    /// Present when this process reads the bus: the dead-letter list and replay.
    pub dead_letters: Option<dead_letters::DeadLetters>,
    /// Present when requests for personal data are recorded (the PDPA audit trail).
    pub audit: Option<Arc<audit::AuditLog>>,
    /// Reads the analytics events (ClickHouse, or the embedded default's event files).
    pub analytics: Option<Arc<dyn AnalyticsReader>>,
}

/// The admin routes, each group behind the roles it admits. Every path is also served
/// without its trailing slash (undocumented), as clients write both. Uploads take bodies
/// up to `upload_limit` bytes (checked again, typed, in the handler).
fn admin_routes(upload_limit: usize) -> OpenApiRouter<Arc<AdminState>> {
    let guarded = |router: OpenApiRouter<Arc<AdminState>>, roles: auth::Admits| {
        router.route_layer(middleware::from_fn(move |request, next| {
            auth::admit(roles, request, next)
        }))
    };
    // Routes that read or change personal data: every request recorded, refused ones too.
    let audited = |router: OpenApiRouter<Arc<AdminState>>, roles: auth::Admits| {
        guarded(router, roles).route_layer(middleware::from_fn(audit::audited))
    };
    let read_contacts = OpenApiRouter::new()
        .routes(routes!(contacts::show))
        .route("/api/contacts/{phone}", get(contacts::show))
        .routes(routes!(history::messages))
        .route("/api/contacts/{phone}/messages", get(history::messages))
        .routes(routes!(history::purchases))
        .route("/api/customers/{id}/purchases", get(history::purchases))
        .routes(routes!(reviews::queue))
        .route("/api/purchases/review", get(reviews::queue))
        .routes(routes!(sandbox::messages))
        .route("/api/sandbox/messages", get(sandbox::messages));
    let list_contacts = OpenApiRouter::new()
        .routes(routes!(contact_list::list))
        .route("/api/contacts", get(contact_list::list));
    let write_contacts = OpenApiRouter::new()
        .routes(routes!(contacts::import))
        .route("/api/contacts/import/", post(contacts::import))
        .routes(routes!(contacts::edit))
        .route(
            "/api/contacts/{phone}",
            axum::routing::patch(contacts::edit),
        )
        .routes(routes!(uploads::upload))
        .routes(routes!(ocr::process))
        .routes(routes!(reviews::decide))
        .route(
            "/api/customers/{id}/purchases/{purchase_id}/review",
            post(reviews::decide),
        )
        .route("/api/ocr/process", post(ocr::process))
        .layer(DefaultBodyLimit::max(upload_limit));
    let read_segments = OpenApiRouter::new()
        .routes(routes!(segments::list))
        .route("/api/segments", get(segments::list))
        .routes(routes!(segments::show))
        .route("/api/segments/{id}", get(segments::show))
        .routes(routes!(segments::preview))
        .route("/api/segments/preview/", post(segments::preview))
        .routes(routes!(segments::breakdown))
        .route("/api/segments/{id}/breakdown/", get(segments::breakdown));
    let write_segments = OpenApiRouter::new()
        .routes(routes!(segments::create))
        .route("/api/segments", post(segments::create))
        .routes(routes!(segments::create_seed))
        .route("/api/segments/create", post(segments::create_seed))
        .routes(routes!(
            segments::replace,
            segments::patch,
            segments::delete
        ))
        .route(
            "/api/segments/{id}",
            put(segments::replace)
                .patch(segments::patch)
                .delete(segments::delete),
        );
    let export_segments = OpenApiRouter::new().routes(routes!(segments::export));
    let read_campaigns = OpenApiRouter::new()
        .routes(routes!(campaigns::list))
        .route("/api/campaigns", get(campaigns::list))
        .routes(routes!(campaigns::show))
        .route("/api/campaigns/{id}", get(campaigns::show))
        .routes(routes!(campaigns::audience))
        .route("/api/campaigns/{id}/audience/", get(campaigns::audience));
    let write_campaigns = OpenApiRouter::new()
        .routes(routes!(campaigns::create))
        .route("/api/campaigns", post(campaigns::create))
        .routes(routes!(campaigns::create_seed))
        .route("/api/campaigns/create", post(campaigns::create_seed))
        .routes(routes!(campaigns::replace))
        .route("/api/campaigns/{id}", put(campaigns::replace))
        .routes(routes!(campaigns::schedule))
        .route("/api/campaigns/{id}/schedule/", post(campaigns::schedule))
        .routes(routes!(campaigns::launch))
        .route("/api/campaigns/{id}/launch/", post(campaigns::launch))
        .routes(routes!(campaigns::pause))
        .route("/api/campaigns/{id}/pause/", post(campaigns::pause))
        .routes(routes!(campaigns::resume))
        .route("/api/campaigns/{id}/resume/", post(campaigns::resume))
        .routes(routes!(campaigns::cancel))
        .route("/api/campaigns/{id}/cancel/", post(campaigns::cancel))
        .routes(routes!(campaigns::retry_failed))
        .route(
            "/api/campaigns/{id}/retry-failed/",
            post(campaigns::retry_failed),
        )
        .routes(routes!(campaigns::test_send))
        .route("/api/campaigns/{id}/test/", post(campaigns::test_send));
    let export_person = OpenApiRouter::new()
        .routes(routes!(erasure::erase))
        .route(
            "/api/contacts/{phone}",
            axum::routing::delete(erasure::erase),
        )
        .routes(routes!(export::export))
        .route("/api/contacts/{phone}/export/", get(export::export));
    let read_analytics = OpenApiRouter::new()
        .routes(routes!(analytics::revenue))
        .route("/api/analytics/revenue", get(analytics::revenue))
        .routes(routes!(analytics::demographics))
        .route("/api/analytics/demographics", get(analytics::demographics))
        .routes(routes!(analytics::campaigns))
        .route("/api/analytics/campaigns", get(analytics::campaigns))
        .routes(routes!(analytics::customers))
        .route("/api/analytics/customers", get(analytics::customers))
        .routes(routes!(analytics::ocr))
        .route("/api/analytics/ocr", get(analytics::ocr));
    let operate = OpenApiRouter::new()
        .routes(routes!(dead_letters::list))
        .route("/api/dead-letters", get(dead_letters::list))
        .routes(routes!(dead_letters::replay))
        .route("/api/dead-letters/replay", post(dead_letters::replay));
    let campaign_recipients = OpenApiRouter::new()
        .routes(routes!(campaigns::recipients))
        .route("/api/campaigns/{id}/recipients", get(campaigns::recipients))
        .routes(routes!(campaigns::recipients_csv));
    audited(read_contacts, auth::READ_CONTACTS)
        .merge(audited(list_contacts, auth::LIST_CONTACTS))
        .merge(audited(write_contacts, auth::WRITE_CONTACTS))
        .merge(audited(read_segments, auth::READ_SEGMENTS))
        .merge(guarded(write_segments, auth::WRITE_SEGMENTS))
        .merge(audited(export_segments, auth::READ_CONTACTS))
        .merge(guarded(read_campaigns, auth::READ_CAMPAIGNS))
        .merge(guarded(write_campaigns, auth::WRITE_CAMPAIGNS))
        .merge(audited(campaign_recipients, auth::READ_CONTACTS))
        .merge(guarded(read_analytics, auth::READ_ANALYTICS))
        .merge(audited(export_person, auth::EXPORT_PERSONAL_DATA))
        .merge(audited(operate, auth::OPERATE))
}

/// The OpenAPI 3 document of the whole HTTP surface, webhook included.
pub fn openapi() -> OpenApi {
    let mut doc = admin_routes(0).into_openapi();
    doc.merge(webhook_routes().into_openapi());
    doc.merge(crate::ingress::click::routes().into_openapi());
    doc.merge(service_routes().into_openapi());
    doc.merge(health_routes().into_openapi());
    doc.info = InfoBuilder::new()
        .title("Sembang")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "WhatsApp CRM engine: the WhatsApp webhook, the admin API (API keys with roles admin, marketer, analyst, viewer) and the operator endpoints.",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "api_key",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
    );
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc
}

/// Routes for operators and tools, outside the admin keys.
fn service_routes() -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

/// The readiness probe, on both surfaces.
fn health_routes() -> OpenApiRouter<Readiness> {
    OpenApiRouter::new().routes(routes!(healthz))
}

/// How each role of the process stands, for the readiness probe.
pub type Readiness = Arc<dyn Fn() -> Vec<RoleReadiness> + Send + Sync>;

/// One role in the readiness probe's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoleReadiness {
    pub role: String,
    /// Running, and not failing over and over.
    pub ready: bool,
    /// Failures since the role last ran healthily.
    pub restarts_in_a_row: u32,
}

/// The readiness probe's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Every role is ready.
    pub ready: bool,
    pub roles: Vec<RoleReadiness>,
}

/// The public surface (webhooks, redirects) and the private one (admin API, /metrics),
/// each with the readiness probe, for two listeners.
pub struct Surfaces {
    pub public: Router,
    pub private: Router,
}

/// Both surfaces. `webhook` is absent when this process runs no ingress role; `clicks`
/// (tracking links) when it runs none or has no link key.
pub fn surfaces(
    webhook: Option<Arc<WebhookState>>,
    clicks: Option<Arc<ClickState>>,
    admin: Arc<AdminState>,
    readiness: Readiness,
    max_body_bytes: usize,
) -> Surfaces {
    let health = || {
        let (routes, _) = health_routes()
            .with_state(readiness.clone())
            .split_for_parts();
        routes
    };
    Surfaces {
        public: public_routes(webhook, clicks)
            .merge(health())
            .layer(DefaultBodyLimit::max(max_body_bytes)),
        private: private_routes(admin, max_body_bytes)
            .merge(health())
            .layer(DefaultBodyLimit::max(max_body_bytes)),
    }
}

/// Both surfaces on one listener (the embedded default, on loopback).
pub fn router(
    webhook: Option<Arc<WebhookState>>,
    clicks: Option<Arc<ClickState>>,
    admin: Arc<AdminState>,
    readiness: Readiness,
    max_body_bytes: usize,
) -> Router {
    let (health, _) = health_routes().with_state(readiness).split_for_parts();
    public_routes(webhook, clicks)
        .merge(private_routes(admin, max_body_bytes))
        .merge(health)
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

fn public_routes(webhook: Option<Arc<WebhookState>>, clicks: Option<Arc<ClickState>>) -> Router {
    let mut app = Router::new();
    if let Some(webhook) = webhook {
        let (webhook, _) = webhook_routes().with_state(webhook).split_for_parts();
        app = app.merge(webhook);
    }
    if let Some(clicks) = clicks {
        let (clicks, _) = crate::ingress::click::routes()
            .with_state(clicks)
            .split_for_parts();
        app = app.merge(clicks);
    }
    app
}

fn private_routes(admin: Arc<AdminState>, max_body_bytes: usize) -> Router {
    // Photos are far larger than webhook bodies: their own limit, checked again (typed)
    // in the handler.
    let upload_limit = admin
        .uploads
        .as_ref()
        .map_or(max_body_bytes, |u| u.limits.max_bytes as usize);
    let (api, _) = admin_routes(upload_limit)
        .route_layer(middleware::from_fn_with_state(
            admin.clone(),
            auth::authenticate,
        ))
        .with_state(admin)
        .split_for_parts();
    let (service, _) = service_routes().split_for_parts();
    service.merge(api)
}

/// The phone number of a path, as people write it (another country's with `+`), or the
/// 400 that says why it is not one. Bare digits are not taken for another country's:
/// a Malaysian number missing its 0 must not reach a stranger's contact.
fn parse_phone(raw: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw)
        .map_err(|e| ApiError::bad_request("invalid_phone_number", e.to_string()))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Metrics in the Prometheus text format", body = String, content_type = "text/plain"))
)]
async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
        .into_response()
}

/// Readiness: 200 while every role of the process runs, 503 while one waits for its restart
/// or keeps failing (a restart loop). Names the roles, never their errors (those are logged).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Every role is ready", body = Health),
        (status = 503, description = "A role is restarting or looping", body = Health),
    )
)]
async fn healthz(State(readiness): State<Readiness>) -> Response {
    let roles = readiness();
    let ready = !roles.is_empty() && roles.iter().all(|r| r.ready);
    let status = if ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Health { ready, roles })).into_response()
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document of this HTTP surface", content_type = "application/json"))
)]
async fn openapi_json() -> Json<OpenApi> {
    Json(openapi())
}
