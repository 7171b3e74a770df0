//! JSON request bodies of the admin API: axum's `Json`, but every malformed body (not
//! JSON, the wrong shape, an unknown field) is answered with the API's own JSON error
//! (`invalid_body`, 400, with the parser's reason) instead of axum's plain-text 400, 415 or
//! 422. The body is read as JSON whatever its declared content type: clients that forget
//! the header get the same answer as those that send it.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                ApiError::new(rejection.status(), "unreadable_body", rejection.body_text())
            })?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(
        body: &'static [u8],
        content_type: Option<&str>,
    ) -> Result<serde_json::Value, ApiError> {
        let mut request = Request::builder().method("POST").uri("/");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let request = request.body(axum::body::Body::from(body)).unwrap();
        ApiJson::<serde_json::Value>::from_request(request, &())
            .await
            .map(|ApiJson(v)| v)
    }

    #[tokio::test]
    async fn bodies_are_json_whatever_their_header_and_errors_are_the_apis() {
        assert_eq!(parse(b"{\"a\": 1}", None).await.unwrap()["a"], 1);
        assert_eq!(parse(b"[1]", Some("text/plain")).await.unwrap()[0], 1);
        let error = parse(b"\x00", Some("application/json")).await.unwrap_err();
        assert_eq!(
            (error.status.as_u16(), error.body.error.kind.as_str()),
            (400, "invalid_body")
        );
    }
}
