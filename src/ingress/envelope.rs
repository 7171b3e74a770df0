//! Serde shapes of the Cloud API webhook envelope, as received. Every field is optional here
//! and unknown fields are ignored: required-field checks (with their location) and the
//! conversion into events happen in [`super::parse`], so a missing field is reported as
//! `entry[0].changes[1].value.messages[2].id` rather than as a serde message.

use serde::Deserialize;
use serde_json::Value;

/// Entries stay raw so that one unreadable entry is set aside without the others.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub object: Option<String>,
    pub entry: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
pub struct Entry {
    pub id: Option<String>,
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// `value` stays raw until `field` says it is a `messages` change: other fields (account
/// updates, template status, ...) have other shapes and are skipped.
#[derive(Debug, Deserialize)]
pub struct Change {
    pub field: Option<String>,
    pub value: Option<Value>,
}

/// The lists stay raw: each item is read on its own, so one unreadable item is set aside
/// without the others, and a message of a type we do not know is kept whole.
#[derive(Debug, Deserialize)]
pub struct ChangeValue {
    pub messaging_product: Option<String>,
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub contacts: Vec<Value>,
    #[serde(default)]
    pub messages: Vec<Value>,
    #[serde(default)]
    pub statuses: Vec<Value>,
    #[serde(default)]
    pub errors: Vec<Value>,
    /// A `user_preferences` change: customers stopping or resuming marketing messages.
    #[serde(default)]
    pub user_preferences: Vec<Value>,
}

/// One item of a `user_preferences` change.
#[derive(Debug, Deserialize)]
pub struct UserPreference {
    pub wa_id: Option<String>,
    pub category: Option<String>,
    /// `stop` or `resume`.
    pub value: Option<String>,
    pub timestamp: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
pub struct Metadata {
    pub display_phone_number: Option<String>,
    pub phone_number_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Contact {
    pub profile: Option<Profile>,
    pub wa_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Profile {
    pub name: Option<String>,
}

/// Unix seconds; documented as a string, accepted as a number too.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    Text(String),
    Number(serde_json::Number),
}

impl Timestamp {
    pub fn as_text(&self) -> String {
        match self {
            Timestamp::Text(s) => s.clone(),
            Timestamp::Number(n) => n.to_string(),
        }
    }
}

/// The fields every message has. The type-specific object (`text`, `image`, ...) is read
/// separately, and only for the types we interpret, so an unknown type never fails on the
/// shape of its payload.
#[derive(Debug, Deserialize)]
pub struct MessageHead {
    pub from: Option<String>,
    pub id: Option<String>,
    pub timestamp: Option<Timestamp>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub context: Option<Context>,
}

#[derive(Debug, Deserialize)]
pub struct Context {
    pub from: Option<String>,
    pub id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Text {
    pub body: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Media {
    pub id: Option<String>,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
    pub caption: Option<String>,
    pub filename: Option<String>,
}

#[derive(Debug, Deserialize)]
/// Only the subtype; the subtype's object (`button_reply`, `list_reply`) is read on its own.
pub struct Interactive {
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Reply {
    pub id: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Button {
    pub payload: Option<String>,
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct System {
    pub body: Option<String>,
    pub wa_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Status {
    pub id: Option<String>,
    pub status: Option<String>,
    pub timestamp: Option<Timestamp>,
    pub recipient_id: Option<String>,
    #[serde(default)]
    pub errors: Vec<Error>,
    pub conversation: Option<Value>,
    pub pricing: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct Error {
    pub code: Option<i64>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub error_data: Option<ErrorData>,
}

#[derive(Debug, Deserialize)]
pub struct ErrorData {
    pub details: Option<String>,
}
