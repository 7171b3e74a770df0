//! Query strings of the admin API: axum's `Query`, with a malformed string (a bad date, a
//! number out of range, an unknown status) answered as the API's own JSON error
//! (`invalid_query`, with axum's reason) instead of axum's plain-text 400.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}

/// A page length from the query: `default` when absent, the API's 400 `invalid_limit`
/// outside 1..=`max`.
pub(super) fn page_limit<T>(limit: Option<T>, default: T, max: T) -> Result<T, ApiError>
where
    T: Copy + PartialOrd + From<u8> + std::fmt::Display,
{
    let limit = limit.unwrap_or(default);
    if !(T::from(1)..=max).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be from 1 to {max}"),
        ));
    }
    Ok(limit)
}

/// A cursor from the query, decoded by `decode`, or the API's 400 `invalid_cursor` for
/// one this API did not give.
pub(super) fn page_cursor<T>(
    cursor: Option<&str>,
    decode: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    cursor
        .map(|text| decode(text).ok_or_else(invalid_cursor))
        .transpose()
}

pub(super) fn invalid_cursor() -> ApiError {
    ApiError::bad_request("invalid_cursor", "cursor is not one this API gave")
}
