//! The one error body of the HTTP surface: `{"error": {"kind", "message"}}`, where `kind`
//! is stable and machine-readable and `message` is for people.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable reason, e.g. `not_found`, `invalid_phone_number`, `forbidden`.
    #[schema(example = "not_found")]
    pub kind: String,
    #[schema(example = "no such contact")]
    pub message: String,
}

/// A refused request: its status and body.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Seconds to send as `Retry-After` (a busy, not a broken, service).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: ErrorDetail {
                    kind: kind.to_string(),
                    message: message.into(),
                },
            },
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn not_found(kind: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, kind, message)
    }

    pub fn bad_request(kind: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, kind, message)
    }

    pub fn unavailable(kind: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, kind, message)
    }
}

impl IntoResponse for ApiError {
    /// A server-side failure's message names hosts, ports and driver errors: it goes to the
    /// log, and the caller gets the kind with a message that says only what to do.
    fn into_response(self) -> Response {
        let mut body = self.body;
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), kind = %body.error.kind, message = %body.error.message, "request failed");
            body.error.message = if self.status == StatusCode::SERVICE_UNAVAILABLE {
                "the service cannot take this now; try again later".into()
            } else {
                "the server failed to answer; the error is in its log".into()
            };
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(error: ApiError) -> ErrorBody {
        let response = error.into_response();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn server_errors_keep_their_detail_out_of_the_answer() {
        let down = ApiError::unavailable("bus_unavailable", "kafka 10.0.3.7:9092: broker down");
        let body = body_of(down).await;
        assert_eq!(body.error.kind, "bus_unavailable");
        assert!(!body.error.message.contains("10.0.3.7"), "{body:?}");
        let refused = ApiError::bad_request("invalid_phone_number", "too short: 6012");
        assert_eq!(body_of(refused).await.error.message, "too short: 6012");
    }
}
