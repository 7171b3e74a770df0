//! wa.outbound: messages to send, keyed by the business number (Cloud API
//! phone_number_id), so one sender owns each number's rate limiter.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::phone::PhoneNumber;

pub const TOPIC: &str = "wa.outbound";

/// What produced an outbound message.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Origin {
    /// A keyword rule answering the customer.
    AutoReply,
    /// The OCR role's answer to a photo (registered, purchase counted, clearer photo).
    Ocr,
    Campaign,
    /// Sent by staff through the admin API.
    Operator,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboundRequest {
    /// Dedupe key: the sender claims it once (`reply:<inbound wamid>`, later
    /// `campaign:<id>`).
    pub request_id: String,
    /// The business number that sends (Cloud API phone_number_id).
    pub phone_number_id: String,
    /// The business number's display digits, for analytics.
    pub business_number: String,
    pub to: PhoneNumber,
    pub content: OutboundContent,
    pub origin: Origin,
    /// The auto-reply rule or campaign that produced it.
    pub rule: Option<String>,
    pub campaign_id: Option<String>,
    /// The inbound message this answers.
    pub in_reply_to: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The Cloud API's limit on a text body, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// What a message says. Media is either a public `link` or an uploaded `media_id`, not both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundContent {
    Text {
        body: String,
        #[serde(default)]
        preview_url: bool,
    },
    Image {
        #[serde(default)]
        link: Option<String>,
        #[serde(default)]
        media_id: Option<String>,
        #[serde(default)]
        caption: Option<String>,
    },
    Video {
        #[serde(default)]
        link: Option<String>,
        #[serde(default)]
        media_id: Option<String>,
        #[serde(default)]
        caption: Option<String>,
    },
    /// An approved template; `components` is passed through as the Cloud API's JSON array
    /// (`null` for a template without parameters).
    Template {
        name: String,
        language: String,
        #[serde(default)]
        components: serde_json::Value,
    },
    /// An interactive list message: a body, a button that opens the list, and rows the
    /// customer picks one of (the answer comes back as a `list_reply` with the row's id).
    List {
        body: String,
        button: String,
        rows: Vec<ListRow>,
    },
    /// An interactive message with up to three reply buttons (the answer comes back as a
    /// `button_reply` with the button's id).
    Buttons { body: String, buttons: Vec<ListRow> },
}

/// One choice of a list message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListRow {
    /// Returned in the customer's answer; at most 200 characters.
    pub id: String,
    /// At most 24 characters.
    pub title: String,
}

/// The Cloud API's limits on list messages.
pub const MAX_LIST_ROWS: usize = 10;
pub const MAX_LIST_BODY_CHARS: usize = 1_024;
pub const MAX_LIST_BUTTON_CHARS: usize = 20;
pub const MAX_ROW_TITLE_CHARS: usize = 24;
pub const MAX_ROW_ID_CHARS: usize = 200;
/// The Cloud API's limits on reply buttons.
pub const MAX_BUTTONS: usize = 3;
pub const MAX_BUTTON_TITLE_CHARS: usize = 20;
pub const MAX_BUTTON_ID_CHARS: usize = 256;

impl OutboundContent {
    pub fn kind(&self) -> &'static str {
        match self {
            OutboundContent::Text { .. } => "text",
            OutboundContent::Image { .. } => "image",
            OutboundContent::Video { .. } => "video",
            OutboundContent::Template { .. } => "template",
            OutboundContent::List { .. } | OutboundContent::Buttons { .. } => "interactive",
        }
    }

    /// The human-readable part, for logs and the sandbox: the text body, the media caption,
    /// or the template's name.
    pub fn body_text(&self) -> Option<&str> {
        match self {
            OutboundContent::Text { body, .. } => Some(body),
            OutboundContent::Image { caption, .. } | OutboundContent::Video { caption, .. } => {
                caption.as_deref()
            }
            OutboundContent::Template { name, .. } => Some(name),
            OutboundContent::List { body, .. } | OutboundContent::Buttons { body, .. } => {
                Some(body)
            }
        }
    }

    /// Checks what the Cloud API would refuse anyway, so a bad message fails before any HTTP
    /// call (and is never retried).
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            OutboundContent::Text { body, .. } => {
                if body.trim().is_empty() {
                    return Err(ValidationError::EmptyText);
                }
                let chars = body.chars().count();
                if chars > MAX_TEXT_CHARS {
                    return Err(ValidationError::TextTooLong {
                        chars,
                        max: MAX_TEXT_CHARS,
                    });
                }
                Ok(())
            }
            OutboundContent::Image { link, media_id, .. }
            | OutboundContent::Video { link, media_id, .. } => {
                let present =
                    |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
                match (present(link), present(media_id)) {
                    (true, false) | (false, true) => Ok(()),
                    (false, false) => Err(ValidationError::MissingMedia { kind: self.kind() }),
                    (true, true) => Err(ValidationError::LinkAndMediaId { kind: self.kind() }),
                }
            }
            OutboundContent::Template {
                name,
                language,
                components,
            } => {
                if name.trim().is_empty() {
                    return Err(ValidationError::EmptyTemplateName);
                }
                if language.trim().is_empty() {
                    return Err(ValidationError::EmptyTemplateLanguage);
                }
                if !(components.is_array() || components.is_null()) {
                    return Err(ValidationError::ComponentsNotArray);
                }
                Ok(())
            }
            OutboundContent::List { body, button, rows } => {
                let chars = |s: &str| s.chars().count();
                let bad_row = |r: &ListRow| {
                    r.id.is_empty()
                        || chars(&r.id) > MAX_ROW_ID_CHARS
                        || r.title.trim().is_empty()
                        || chars(&r.title) > MAX_ROW_TITLE_CHARS
                };
                if body.trim().is_empty()
                    || chars(body) > MAX_LIST_BODY_CHARS
                    || button.trim().is_empty()
                    || chars(button) > MAX_LIST_BUTTON_CHARS
                    || rows.is_empty()
                    || rows.len() > MAX_LIST_ROWS
                    || rows.iter().any(bad_row)
                {
                    return Err(ValidationError::BadList);
                }
                Ok(())
            }
            OutboundContent::Buttons { body, buttons } => {
                let chars = |s: &str| s.chars().count();
                let bad_button = |b: &ListRow| {
                    b.id.is_empty()
                        || chars(&b.id) > MAX_BUTTON_ID_CHARS
                        || b.title.trim().is_empty()
                        || chars(&b.title) > MAX_BUTTON_TITLE_CHARS
                };
                if body.trim().is_empty()
                    || chars(body) > MAX_LIST_BODY_CHARS
                    || buttons.is_empty()
                    || buttons.len() > MAX_BUTTONS
                    || buttons.iter().any(bad_button)
                {
                    return Err(ValidationError::BadButtons);
                }
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    #[error("text body is empty")]
    EmptyText,
    #[error("text body has {chars} characters; at most {max} are allowed")]
    TextTooLong { chars: usize, max: usize },
    #[error("{kind} needs a link or a media id")]
    MissingMedia { kind: &'static str },
    #[error("{kind} has both a link and a media id; give one")]
    LinkAndMediaId { kind: &'static str },
    #[error("template name is empty")]
    EmptyTemplateName,
    #[error("template language is empty")]
    EmptyTemplateLanguage,
    #[error("template components must be a JSON array")]
    ComponentsNotArray,
    #[error("phone number id must be non-empty letters and digits")]
    BadPhoneNumberId,
    #[error("a list needs a body (at most 1,024 characters), a button (20) and 1 to 10 rows with an id (200) and a title (24)")]
    BadList,
    #[error("reply buttons need a body (at most 1,024 characters) and 1 to 3 buttons with an id (256) and a title (20)")]
    BadButtons,
}
