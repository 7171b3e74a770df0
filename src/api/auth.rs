//! Admin API keys and their roles. Keys come from `SEMBANG_ADMIN_API_KEYS` as `role:key`
//! pairs and are sent as `Authorization: Bearer <key>` or `X-Api-Key: <key>`. A malformed
//! entry or an unknown role is a start-up error, never a silently open API.
//!
//! Each route names the roles it admits ([`admit`]): a request without a known key gets
//! 401, one whose key's role is not admitted 403.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use thiserror::Error;
use utoipa::ToSchema;

use crate::config::Secret;
use crate::ingress::verification::tokens_equal;

use super::error::ApiError;
use super::AdminState;

/// What a key may do.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    ToSchema,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Segments, campaigns and contacts.
    Marketer,
    /// Aggregates only: no personal data.
    Analyst,
    /// Read-only.
    Viewer,
}

/// The roles a route admits.
pub type Admits = &'static [Role];

/// Reading contacts (personal data): not analysts.
pub const READ_CONTACTS: Admits = &[Role::Admin, Role::Marketer, Role::Viewer];
/// Browsing the contact list: every role, with names masked for those that may not read
/// contacts (see `contact_list`).
pub const LIST_CONTACTS: Admits = &[Role::Admin, Role::Marketer, Role::Analyst, Role::Viewer];
/// Changing contacts or sending on their behalf.
pub const WRITE_CONTACTS: Admits = &[Role::Admin, Role::Marketer];
/// Segment definitions, counts and breakdowns (aggregates; member lists only for roles
/// that may read contacts).
pub const READ_SEGMENTS: Admits = &[Role::Admin, Role::Marketer, Role::Analyst, Role::Viewer];
/// Creating, changing and deleting segments.
pub const WRITE_SEGMENTS: Admits = &[Role::Admin, Role::Marketer];
/// Campaigns with their tracking metrics and audiences (aggregates).
pub const READ_CAMPAIGNS: Admits = &[Role::Admin, Role::Marketer, Role::Analyst, Role::Viewer];
/// Creating campaigns, launching, pausing, cancelling them, test sends.
pub const WRITE_CAMPAIGNS: Admits = &[Role::Admin, Role::Marketer];
/// Analytics reports (aggregates over the event store): analysts and admins.
pub const READ_ANALYTICS: Admits = &[Role::Admin, Role::Analyst];
/// Operating the pipeline (dead letters: reading their reasons, replaying them): admins.
pub const OPERATE: Admits = &[Role::Admin];
/// A whole person's data in one answer (PDPA access and portability): admins only.
pub const EXPORT_PERSONAL_DATA: Admits = &[Role::Admin];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ApiKeyError {
    /// The entry's text is never repeated: it holds a key.
    #[error("SEMBANG_ADMIN_API_KEYS entry {index}: expected role:key with both parts non-empty")]
    Malformed { index: usize },
    #[error("SEMBANG_ADMIN_API_KEYS entry {index}: unknown role {role:?}; expected admin, marketer, analyst or viewer")]
    UnknownRole { index: usize, role: String },
    #[error("SEMBANG_ADMIN_API_KEYS entry {index}: the same key is listed before")]
    Duplicate { index: usize },
}

struct ApiKey {
    role: Role,
    key: Secret,
    /// What the audit trail names the key by.
    id: Arc<str>,
}

/// `key-` and the first 12 hex digits of the key's SHA-256: stable, tells keys apart in
/// the audit trail, and gives nothing to guess a key from.
fn key_id(key: &str) -> Arc<str> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    format!("key-{}", &hex::encode(digest)[..12]).into()
}

/// The configured keys.
#[derive(Default)]
pub struct ApiKeys(Vec<ApiKey>);

impl ApiKeys {
    /// Parses `role:key` entries (1-based `index` in errors).
    pub fn parse(entries: &[Secret]) -> Result<ApiKeys, ApiKeyError> {
        let mut keys: Vec<ApiKey> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let index = i + 1;
            let (role, key) = entry
                .expose()
                .split_once(':')
                .map(|(r, k)| (r.trim(), k.trim()))
                .filter(|(r, k)| !r.is_empty() && !k.is_empty())
                .ok_or(ApiKeyError::Malformed { index })?;
            let role = role.parse::<Role>().map_err(|_| ApiKeyError::UnknownRole {
                index,
                role: role.to_string(),
            })?;
            if keys.iter().any(|k| tokens_equal(k.key.expose(), key)) {
                return Err(ApiKeyError::Duplicate { index });
            }
            keys.push(ApiKey {
                role,
                id: key_id(key),
                key: Secret::new(key),
            });
        }
        Ok(ApiKeys(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The role of a presented key. Every key is compared in constant time, so the answer's
    /// timing tells nothing about which key came close.
    pub fn role_of(&self, presented: &str) -> Option<Role> {
        self.caller_of(presented).map(|c| c.role)
    }

    /// The caller a presented key identifies, in constant time over the keys.
    pub fn caller_of(&self, presented: &str) -> Option<Caller> {
        self.0.iter().fold(None, |found, k| {
            let equal = tokens_equal(presented, k.key.expose());
            found.or(equal.then(|| Caller {
                role: k.role,
                key_id: k.id.clone(),
            }))
        })
    }
}

/// Who is calling, for the handlers, the route guards and the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// `key-<hash prefix>`, or `open` where no key is required.
    pub key_id: Arc<str>,
}

/// Finds the caller's role or answers 401. With no key configured and none required (the
/// embedded default on loopback), every caller is an admin.
pub async fn authenticate(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = if state.keys.is_empty() && !state.require_key {
        Caller {
            role: Role::Admin,
            key_id: "open".into(),
        }
    } else {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
        let Some(presented) = presented else {
            return unauthorized("an API key is required");
        };
        match state.keys.caller_of(presented.trim()) {
            Some(caller) => caller,
            None => return unauthorized("unknown API key"),
        }
    };
    request.extensions_mut().insert(caller);
    if let Some(log) = &state.audit {
        request.extensions_mut().insert(log.clone());
    }
    next.run(request).await
}

fn unauthorized(message: &str) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response()
}

/// A guard for routes that admit `roles` (placed inside [`authenticate`]).
pub async fn admit(roles: Admits, request: Request, next: Next) -> Response {
    match request.extensions().get::<Caller>() {
        Some(caller) if roles.contains(&caller.role) => next.run(request).await,
        Some(caller) => {
            let role: &'static str = caller.role.into();
            ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("the {role} role may not use this route"),
            )
            .into_response()
        }
        None => unauthorized("an API key is required"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[&str]) -> Vec<Secret> {
        list.iter().map(|s| Secret::new(*s)).collect()
    }

    #[test]
    fn keys_parse_with_their_roles_and_bad_entries_are_errors_without_the_key() {
        let keys =
            ApiKeys::parse(&entries(&["admin:a-1", " marketer : m-1 ", "viewer:v:1"])).unwrap();
        assert_eq!(keys.role_of("a-1"), Some(Role::Admin));
        assert_eq!(keys.role_of("m-1"), Some(Role::Marketer));
        assert_eq!(
            keys.role_of("v:1"),
            Some(Role::Viewer),
            "a key may hold colons"
        );
        assert_eq!(keys.role_of("a-"), None);
        assert_eq!(keys.role_of("a-12"), None);

        assert_eq!(
            ApiKeys::parse(&entries(&["admin:a", "nokey"])).err(),
            Some(ApiKeyError::Malformed { index: 2 })
        );
        assert_eq!(
            ApiKeys::parse(&entries(&["admin:"])).err(),
            Some(ApiKeyError::Malformed { index: 1 })
        );
        let error = ApiKeys::parse(&entries(&["root:s3cret"])).err().unwrap();
        assert_eq!(
            error,
            ApiKeyError::UnknownRole {
                index: 1,
                role: "root".into()
            }
        );
        assert!(!error.to_string().contains("s3cret"));
        assert_eq!(
            ApiKeys::parse(&entries(&["admin:k", "viewer:k"])).err(),
            Some(ApiKeyError::Duplicate { index: 2 })
        );
        assert!(ApiKeys::parse(&[]).unwrap().is_empty());
    }
}
