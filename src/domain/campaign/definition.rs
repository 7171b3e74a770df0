//! What a campaign is: its audience, its message and its schedule, validated when saved.

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::contact::Contact;
use crate::domain::phone::PhoneNumber;

use super::eligibility::FrequencyCap;
use super::template::{render_checked, Template, TemplateError, MAX_CAPTION_CHARS, MAX_TEXT_CHARS};
use super::touch::MAX_ATTRIBUTION_DAYS;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_CUSTOM_RECIPIENTS: usize = 10_000;
pub const MAX_TEMPLATE_PARAMETERS: usize = 20;
pub const DEFAULT_ATTRIBUTION_DAYS: u16 = 7;

/// A picture or video: a public https link or a media id uploaded to the Cloud API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaRef {
    Link(String),
    Id(String),
}

impl MediaRef {
    /// A link when it looks like one, else an uploaded media id.
    pub fn from_seed(text: &str) -> MediaRef {
        let text = text.trim();
        if text.contains("://") {
            MediaRef::Link(text.to_string())
        } else {
            MediaRef::Id(text.to_string())
        }
    }

    fn validate(&self) -> Result<(), CampaignError> {
        match self {
            MediaRef::Link(link) => {
                let url = url::Url::parse(link).map_err(|_| CampaignError::Media {
                    reason: format!("{link:?} is not a URL"),
                })?;
                if url.scheme() != "https" || url.host_str().is_none() {
                    return Err(CampaignError::Media {
                        reason: "a media link must be an https URL".into(),
                    });
                }
            }
            MediaRef::Id(id) => {
                if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CampaignError::Media {
                        reason: "a media id is the Cloud API's numeric id".into(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CampaignMessage {
    /// Free-form text (only inside the customer's 24 h window).
    Text { text: String },
    Image {
        media: MediaRef,
        #[serde(default)]
        caption: Option<String>,
    },
    Video {
        media: MediaRef,
        #[serde(default)]
        caption: Option<String>,
    },
    /// An approved template; each body parameter is a text with variables, rendered per
    /// recipient (e.g. `["{{first_name|there}}", "{{tier}}"]`).
    Template {
        name: String,
        language: String,
        #[serde(default)]
        body_parameters: Vec<String>,
    },
}

/// The message as rendered for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenderedMessage {
    Text(String),
    Image {
        media: MediaRef,
        caption: Option<String>,
    },
    Video {
        media: MediaRef,
        caption: Option<String>,
    },
    Template {
        name: String,
        language: String,
        body_parameters: Vec<String>,
    },
}

impl CampaignMessage {
    /// The text whose links are tracked: a text message's body, a media caption.
    /// (A template's links are its approved URL buttons, not tracked here.)
    pub fn trackable_text(&self) -> Option<&str> {
        match self {
            CampaignMessage::Text { text } => Some(text),
            CampaignMessage::Image { caption, .. } | CampaignMessage::Video { caption, .. } => {
                caption.as_deref()
            }
            CampaignMessage::Template { .. } => None,
        }
    }

    /// The message with its trackable text replaced (by its tracked form), before it is
    /// personalised: links are numbered on the text as the marketer wrote it.
    pub fn with_trackable_text(&self, f: impl FnOnce(&str) -> String) -> CampaignMessage {
        let mut message = self.clone();
        match &mut message {
            CampaignMessage::Text { text } => *text = f(text),
            CampaignMessage::Image { caption, .. } | CampaignMessage::Video { caption, .. } => {
                if let Some(caption) = caption {
                    *caption = f(caption);
                }
            }
            CampaignMessage::Template { .. } => {}
        }
        message
    }

    /// Free-form messages need the customer's 24 h window; templates do not.
    pub fn is_free_form(&self) -> bool {
        !matches!(self, CampaignMessage::Template { .. })
    }

    /// Every text of the message with its length limit.
    fn texts(&self) -> Vec<(&'static str, &str, usize)> {
        match self {
            CampaignMessage::Text { text } => vec![("message_text", text, MAX_TEXT_CHARS)],
            CampaignMessage::Image { caption, .. } | CampaignMessage::Video { caption, .. } => {
                caption
                    .iter()
                    .map(|c| ("message_text", c.as_str(), MAX_CAPTION_CHARS))
                    .collect()
            }
            CampaignMessage::Template {
                body_parameters, ..
            } => body_parameters
                .iter()
                .map(|p| ("template.body_parameters", p.as_str(), 1024))
                .collect(),
        }
    }

    fn validate(&self) -> Result<(), CampaignError> {
        for (field, text, limit) in self.texts() {
            Template::parse(text, limit).map_err(|source| CampaignError::Text { field, source })?;
        }
        match self {
            CampaignMessage::Image { media, .. } | CampaignMessage::Video { media, .. } => {
                media.validate()
            }
            CampaignMessage::Template {
                name,
                language,
                body_parameters,
            } => {
                let name_ok = !name.is_empty()
                    && name.len() <= 512
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !name_ok {
                    return Err(CampaignError::Template {
                        reason: "a template name is lowercase letters, digits and _".into(),
                    });
                }
                let lang_ok = (2..=8).contains(&language.len())
                    && language
                        .bytes()
                        .all(|b| b.is_ascii_alphabetic() || b == b'_');
                if !lang_ok {
                    return Err(CampaignError::Template {
                        reason: format!("{language:?} is not a language code like en_US or ms"),
                    });
                }
                if body_parameters.len() > MAX_TEMPLATE_PARAMETERS {
                    return Err(CampaignError::Template {
                        reason: format!("at most {MAX_TEMPLATE_PARAMETERS} body parameters"),
                    });
                }
                Ok(())
            }
            CampaignMessage::Text { .. } => Ok(()),
        }
    }

    /// The message for `contact`.
    pub fn render(&self, contact: &Contact) -> Result<RenderedMessage, TemplateError> {
        let caption = |c: &Option<String>| {
            c.as_deref()
                .map(|c| render_checked(c, MAX_CAPTION_CHARS, contact))
                .transpose()
        };
        Ok(match self {
            CampaignMessage::Text { text } => {
                RenderedMessage::Text(render_checked(text, MAX_TEXT_CHARS, contact)?)
            }
            CampaignMessage::Image { media, caption: c } => RenderedMessage::Image {
                media: media.clone(),
                caption: caption(c)?,
            },
            CampaignMessage::Video { media, caption: c } => RenderedMessage::Video {
                media: media.clone(),
                caption: caption(c)?,
            },
            CampaignMessage::Template {
                name,
                language,
                body_parameters,
            } => RenderedMessage::Template {
                name: name.clone(),
                language: language.clone(),
                body_parameters: body_parameters
                    .iter()
                    .map(|p| {
                        // A Cloud API parameter may not be empty.
                        render_checked(p, 1024, contact).map(|v| {
                            if v.trim().is_empty() {
                                "-".to_string()
                            } else {
                                v
                            }
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
        })
    }
}

/// What starts a triggered campaign for one contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// On the contact's birthday (from the IC's date of birth), at this Malaysian time,
    /// once a year.
    Birthday {
        #[schema(value_type = String, example = "09:00:00")]
        local_time: NaiveTime,
    },
    /// When a receipt moves the contact up a tier.
    TierUpgrade,
    /// The contact's first counted purchase.
    FirstPurchase,
    /// `days` days after the contact's last purchase.
    WinBack { days: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CampaignDefinition {
    pub name: String,
    #[serde(default)]
    pub objective: Option<String>,
    /// Segment ids whose members receive it (a union, with `custom_recipients`).
    #[serde(default)]
    pub segments: Vec<String>,
    /// E.164 digits.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub custom_recipients: Vec<PhoneNumber>,
    pub message: CampaignMessage,
    #[serde(default)]
    pub scheduled_start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub scheduled_end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    /// Overrides the deployment's frequency cap for this campaign.
    #[serde(default)]
    pub frequency_cap: Option<FrequencyCap>,
    /// Days after delivery in which a purchase converts a recipient.
    #[serde(default = "default_attribution_days")]
    pub attribution_days: u16,
    /// Rewrite links in the text to tracking links.
    #[serde(default = "yes")]
    pub track_links: bool,
}

fn default_attribution_days() -> u16 {
    DEFAULT_ATTRIBUTION_DAYS
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CampaignError {
    #[error("name: {0}")]
    Name(&'static str),
    #[error("{field}: {source}")]
    Text {
        field: &'static str,
        source: TemplateError,
    },
    #[error("media: {reason}")]
    Media { reason: String },
    #[error("template: {reason}")]
    Template { reason: String },
    #[error("audience: {0}")]
    Audience(String),
    #[error("schedule: {0}")]
    Schedule(&'static str),
    #[error("attribution_days: between 1 and {MAX_ATTRIBUTION_DAYS}")]
    Attribution,
    #[error("frequency_cap: max and days must both be at least 1 (days at most 90)")]
    FrequencyCap,
}

impl CampaignDefinition {
    pub fn validate(&self) -> Result<(), CampaignError> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(CampaignError::Name("required"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(CampaignError::Name("at most 200 characters"));
        }
        self.message.validate()?;
        if self.trigger.is_none() && self.segments.is_empty() && self.custom_recipients.is_empty() {
            return Err(CampaignError::Audience(
                "give segments or custom_recipients (or a trigger)".into(),
            ));
        }
        if self.custom_recipients.len() > MAX_CUSTOM_RECIPIENTS {
            return Err(CampaignError::Audience(format!(
                "at most {MAX_CUSTOM_RECIPIENTS} custom recipients; use a segment"
            )));
        }
        if let (Some(start), Some(end)) = (self.scheduled_start, self.scheduled_end) {
            if end <= start {
                return Err(CampaignError::Schedule(
                    "scheduled_end must be after scheduled_start",
                ));
            }
        }
        if !(1..=MAX_ATTRIBUTION_DAYS).contains(&self.attribution_days) {
            return Err(CampaignError::Attribution);
        }
        if let Some(cap) = self.frequency_cap {
            if cap.max == 0 || cap.days == 0 || cap.days > 90 {
                return Err(CampaignError::FrequencyCap);
            }
        }
        if let Some(Trigger::WinBack { days }) = self.trigger {
            if !(1..=3650).contains(&days) {
                return Err(CampaignError::Audience(
                    "win_back days: between 1 and 3650".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> CampaignDefinition {
        CampaignDefinition {
            name: "Raya sale".into(),
            objective: None,
            segments: vec!["s1".into()],
            custom_recipients: vec![],
            message: CampaignMessage::Text { text: t.into() },
            scheduled_start: None,
            scheduled_end: None,
            trigger: None,
            frequency_cap: None,
            attribution_days: 7,
            track_links: true,
        }
    }

    #[test]
    fn validation_names_the_field_at_fault() {
        assert!(text("Hi {{first_name}}").validate().is_ok());
        assert_eq!(
            text("Hi {{frist_name}}")
                .validate()
                .unwrap_err()
                .to_string(),
            "message_text: unknown variable {{frist_name}} (known: name, first_name, tier, \
             total_spent, state, attributes.<key>)"
        );
        assert!(text(&"x".repeat(4097))
            .validate()
            .unwrap_err()
            .to_string()
            .contains("over the limit of 4096"));
        let mut no_audience = text("hi");
        no_audience.segments.clear();
        assert!(matches!(
            no_audience.validate(),
            Err(CampaignError::Audience(_))
        ));
        let mut image = text("hi");
        image.message = CampaignMessage::Image {
            media: MediaRef::from_seed("http://example.com/a.jpg"),
            caption: None,
        };
        assert!(matches!(image.validate(), Err(CampaignError::Media { .. })));
        image.message = CampaignMessage::Image {
            media: MediaRef::from_seed("1234567890"),
            caption: Some("x".repeat(1025)),
        };
        assert!(matches!(image.validate(), Err(CampaignError::Text { .. })));
        let mut backwards = text("hi");
        backwards.scheduled_start = Some("2026-01-02T00:00:00Z".parse().unwrap());
        backwards.scheduled_end = Some("2026-01-01T00:00:00Z".parse().unwrap());
        assert!(matches!(
            backwards.validate(),
            Err(CampaignError::Schedule(_))
        ));
    }
}
