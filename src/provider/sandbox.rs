//! A provider that sends nothing: it validates like the real ones and keeps the last messages
//! in memory, so the embedded profile and the admin API can show what would have gone out.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::error::ProviderError;
use super::{check_phone_number_id, Accepted, OutboundContent, OutboundMessage, WhatsappProvider};
use crate::domain::phone::PhoneNumber;

/// Enough to look back over a campaign without growing without bound.
pub const DEFAULT_CAPACITY: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SandboxMessage {
    #[schema(value_type = String, example = "60123456789")]
    pub to: PhoneNumber,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Text body, caption or template name.
    pub body: Option<String>,
    pub time: DateTime<Utc>,
    pub wamid: String,
    pub phone_number_id: String,
    pub content: OutboundContent,
}

pub struct SandboxProvider {
    capacity: usize,
    messages: Mutex<VecDeque<SandboxMessage>>,
}

impl Default for SandboxProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl SandboxProvider {
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// Keeps the newest `capacity` messages (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        SandboxProvider {
            capacity: capacity.max(1),
            messages: Mutex::new(VecDeque::new()),
        }
    }

    /// Oldest first, newest last.
    pub fn messages(&self) -> Vec<SandboxMessage> {
        self.lock().iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<SandboxMessage>> {
        // A panic elsewhere while holding the lock leaves a consistent deque; keep using it.
        self.messages.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl WhatsappProvider for SandboxProvider {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn send(
        &self,
        phone_number_id: &str,
        message: &OutboundMessage,
    ) -> Result<Accepted, ProviderError> {
        check_phone_number_id(phone_number_id)?;
        message.validate()?;
        let wamid = format!("sandbox.{}", uuid::Uuid::new_v4());
        let record = SandboxMessage {
            to: message.to.clone(),
            kind: message.content.kind(),
            body: message.content.body_text().map(str::to_string),
            time: Utc::now(),
            wamid: wamid.clone(),
            phone_number_id: phone_number_id.to_string(),
            content: message.content.clone(),
        };
        let mut messages = self.lock();
        if messages.len() == self.capacity {
            messages.pop_front();
        }
        messages.push_back(record);
        Ok(Accepted { wamid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ValidationError;

    fn text(to: &str, body: &str) -> OutboundMessage {
        OutboundMessage {
            to: PhoneNumber::parse(to).unwrap(),
            content: OutboundContent::Text {
                body: body.into(),
                preview_url: false,
            },
        }
    }

    #[tokio::test]
    async fn records_in_order_and_keeps_the_newest() {
        let sandbox = SandboxProvider::with_capacity(2);
        let mut ids = Vec::new();
        for body in ["satu", "dua", "tiga"] {
            ids.push(
                sandbox
                    .send("555", &text("0123456789", body))
                    .await
                    .unwrap()
                    .wamid,
            );
        }
        let kept = sandbox.messages();
        let bodies: Vec<_> = kept.iter().map(|m| m.body.as_deref().unwrap()).collect();
        assert_eq!(bodies, ["dua", "tiga"]);
        assert_eq!(kept[1].wamid, ids[2]);
        assert!(ids[2].starts_with("sandbox."));
        assert_ne!(ids[1], ids[2]);
        assert_eq!(kept[1].phone_number_id, "555");
        assert_eq!(kept[1].kind, "text");
        assert!(kept[0].time <= kept[1].time);
        sandbox.clear();
        assert!(sandbox.messages().is_empty());
    }

    #[tokio::test]
    async fn refuses_what_the_api_would() {
        let sandbox = SandboxProvider::new();
        let too_long = text("0123456789", &"x".repeat(4097));
        assert!(matches!(
            sandbox.send("555", &too_long).await,
            Err(ProviderError::InvalidMessage(
                ValidationError::TextTooLong { .. }
            ))
        ));
        assert!(sandbox.messages().is_empty());
    }

    #[tokio::test]
    async fn serializes_for_the_admin_api() {
        let sandbox = SandboxProvider::new();
        sandbox
            .send("555", &text("0123456789", "Hai"))
            .await
            .unwrap();
        let value = serde_json::to_value(sandbox.messages()).unwrap();
        assert_eq!(value[0]["to"], "60123456789");
        assert_eq!(value[0]["type"], "text");
        assert_eq!(value[0]["body"], "Hai");
        assert_eq!(value[0]["content"]["type"], "text");
        assert!(value[0]["time"].as_str().unwrap().contains('T'));
    }
}
