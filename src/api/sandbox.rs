//! `GET /api/sandbox/messages/`: what the sandbox provider "sent", newest last, for trying
//! Sembang without WhatsApp.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;

use crate::provider::SandboxMessage;

use super::error::{ApiError, ErrorBody};
use super::AdminState;

/// Messages the sandbox provider recorded instead of sending.
#[utoipa::path(
    get,
    path = "/api/sandbox/messages/",
    tag = "sandbox",
    responses(
        (status = 200, description = "Recorded messages, oldest first", body = Vec<SandboxMessage>),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not read messages", body = ErrorBody),
        (status = 404, description = "This process does not send through the sandbox provider", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn messages(
    State(state): State<Arc<AdminState>>,
) -> Result<Json<Vec<SandboxMessage>>, ApiError> {
    match &state.sandbox {
        Some(sandbox) => Ok(Json(sandbox.messages())),
        None => Err(ApiError::not_found(
            "no_sandbox",
            "this process does not send through the sandbox provider",
        )),
    }
}
