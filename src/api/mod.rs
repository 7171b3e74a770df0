//! The HTTP surface of a process: the webhook, the admin API and `/metrics`, on one
//! listener. The admin API is thin: it reads the store and the sandbox provider.
//!
//! Admin authentication: API keys (`SEMBANG_ADMIN_API_KEYS`, `role:key` pairs) sent as
//! `Authorization: Bearer <key>` or `X-Api-Key: <key>`. With no key configured, the admin
//! API is open only where the profile allows it (`admin.require_api_key = false`: the
//! embedded default, and only on a loopback listener: the config refuses it elsewhere);
//! everywhere else it refuses every request without a key.

mod contacts;
mod uploads;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::config::Secret;
use crate::domain::phone::PhoneNumber;
use crate::ingress::http::{refuse, routes as webhook_routes, WebhookState};
use crate::ingress::verification::tokens_equal;
use crate::provider::SandboxProvider;
use crate::storage::store::ContactStore;

pub use uploads::UploadState;

pub struct AdminState {
    pub store: Arc<dyn ContactStore>,
    /// Present when this process sends through the sandbox provider.
    pub sandbox: Option<Arc<SandboxProvider>>,
    pub keys: Vec<ApiKey>,
    pub require_key: bool,
    /// Present when this process takes photo uploads for the OCR role.
    pub uploads: Option<UploadState>,
}

#[derive(Clone)]
pub struct ApiKey {
    pub role: String,
    key: Secret,
}

impl ApiKey {
    /// Parses `role:key`.
    pub fn parse(pair: &Secret) -> Option<ApiKey> {
        let (role, key) = pair.expose().split_once(':')?;
        (!role.trim().is_empty() && !key.trim().is_empty()).then(|| ApiKey {
            role: role.trim().to_string(),
            key: Secret::new(key.trim()),
        })
    }
}

/// The whole HTTP surface. `webhook` is absent when this process runs no ingress role.
pub fn router(
    webhook: Option<Arc<WebhookState>>,
    admin: Arc<AdminState>,
    max_body_bytes: usize,
) -> Router {
    // Photos are far larger than webhook bodies: their own limit, checked again (typed)
    // in the handler.
    let upload_limit = admin
        .uploads
        .as_ref()
        .map_or(max_body_bytes, |u| u.limits.max_bytes as usize);
    let uploads = Router::new()
        .route("/api/contacts/{phone}/media", post(uploads::upload))
        .layer(DefaultBodyLimit::max(upload_limit));
    let api = Router::new()
        .route("/api/contacts/{phone}", get(contacts::show))
        .route("/api/contacts/{phone}/", get(contacts::show))
        .route("/api/sandbox/messages", get(sandbox_messages))
        .route("/api/sandbox/messages/", get(sandbox_messages))
        .merge(uploads)
        .route_layer(middleware::from_fn_with_state(admin.clone(), authenticate))
        .with_state(admin);
    let mut app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .merge(api);
    if let Some(webhook) = webhook {
        app = app.merge(webhook_routes(webhook));
    }
    app.layer(DefaultBodyLimit::max(max_body_bytes))
}

/// The phone number of a path, as people write it (another country's with `+`), or the
/// 400 that says why it is not one. Bare digits are not taken for another country's:
/// a Malaysian number missing its 0 must not reach a stranger's contact.
fn parse_phone(raw: &str) -> Result<PhoneNumber, Box<Response>> {
    PhoneNumber::parse(raw).map_err(|e| {
        Box::new(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_phone_number",
            &e.to_string(),
        ))
    })
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
        .into_response()
}

async fn sandbox_messages(State(state): State<Arc<AdminState>>) -> Response {
    match &state.sandbox {
        Some(sandbox) => Json(sandbox.messages()).into_response(),
        None => refuse(
            StatusCode::NOT_FOUND,
            "no_sandbox",
            "this process does not send through the sandbox provider",
        ),
    }
}

async fn authenticate(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if state.keys.is_empty() && !state.require_key {
        return next.run(request).await;
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    let Some(presented) = presented else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "an API key is required",
        );
    };
    if state
        .keys
        .iter()
        .any(|k| tokens_equal(presented.trim(), k.key.expose()))
    {
        next.run(request).await
    } else {
        refuse(StatusCode::UNAUTHORIZED, "unauthorized", "unknown API key")
    }
}
