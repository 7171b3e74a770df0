//! Profile edits: what a retailer (admin API, CSV import) or the customer (the marital
//! status question) may set on a contact, with the limits that keep a profile small enough
//! to index. An edit sets absolute values, so applying it twice changes nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use super::contact::Contact;
use super::person::MaritalStatus;

/// The attribute that holds a contact's tags (a list of texts).
pub const TAGS: &str = "tags";
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_ATTRIBUTES: usize = 50;
pub const MAX_KEY_CHARS: usize = 64;
/// Serialized bytes of one attribute value.
pub const MAX_VALUE_BYTES: usize = 1_024;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 64;

/// What an edit changes; absent fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Siti Aminah", "marital_status": "married", "attributes": {"preferred_outlet": "Mid Valley", "visits": 7}, "tags": ["vip", "kids"]}))]
pub struct ProfilePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// single, married, divorced or widowed
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub marital_status: Option<MaritalStatus>,
    /// Retailer attributes to set; `null` removes one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, Value>,
    /// Replaces the contact's tags (`attributes.tags`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Marketing consent given or withdrawn outside WhatsApp (a form, the till), with
    /// where and in what words. A withdrawal always applies; a grant never re-subscribes a
    /// customer who withdrew (only the customer can, with START).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketing_consent: Option<ConsentGrant>,
}

/// Marketing consent as a retailer records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentGrant {
    pub opt_in: bool,
    /// Where it was given, e.g. "membership form, Mid Valley".
    pub source: String,
    /// The notice the customer agreed to, word for word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wording: Option<String>,
}

pub const MAX_CONSENT_SOURCE_CHARS: usize = 200;
pub const MAX_CONSENT_WORDING_CHARS: usize = 2_000;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PatchError {
    #[error("name: blank, or longer than {MAX_NAME_CHARS} characters")]
    Name,
    #[error("attributes: more than {MAX_ATTRIBUTES} keys")]
    TooManyAttributes,
    #[error("attributes.{0}: a key is 1 to {MAX_KEY_CHARS} letters, digits, '_' or '-'")]
    Key(String),
    #[error("attributes.{0}: set tags with \"tags\", not as an attribute")]
    TagsAsAttribute(String),
    #[error("attributes.{0}: the value is over {MAX_VALUE_BYTES} bytes")]
    ValueTooLarge(String),
    #[error("tags: at most {MAX_TAGS} tags of 1 to {MAX_TAG_CHARS} characters")]
    Tags,
    #[error("marketing_consent: a source of 1 to {MAX_CONSENT_SOURCE_CHARS} characters, and a wording of at most {MAX_CONSENT_WORDING_CHARS}")]
    Consent,
    #[error("the edit changes nothing")]
    Empty,
}

impl ProfilePatch {
    /// Checks the limits. The API and the CSV import reject an edit that fails; the shard
    /// checks again and ignores one (nothing should get there unchecked).
    pub fn validate(&self) -> Result<(), PatchError> {
        if self.name.is_none()
            && self.marital_status.is_none()
            && self.attributes.is_empty()
            && self.tags.is_none()
            && self.marketing_consent.is_none()
        {
            return Err(PatchError::Empty);
        }
        if let Some(consent) = &self.marketing_consent {
            let source = consent.source.trim();
            if source.is_empty()
                || source.chars().count() > MAX_CONSENT_SOURCE_CHARS
                || consent
                    .wording
                    .as_ref()
                    .is_some_and(|w| w.chars().count() > MAX_CONSENT_WORDING_CHARS)
            {
                return Err(PatchError::Consent);
            }
        }
        if let Some(name) = &self.name {
            if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS {
                return Err(PatchError::Name);
            }
        }
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(PatchError::TooManyAttributes);
        }
        for (key, value) in &self.attributes {
            let valid_key = !key.is_empty()
                && key.chars().count() <= MAX_KEY_CHARS
                && key
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
            if !valid_key {
                return Err(PatchError::Key(key.clone()));
            }
            if key == TAGS {
                return Err(PatchError::TagsAsAttribute(key.clone()));
            }
            if value.to_string().len() > MAX_VALUE_BYTES {
                return Err(PatchError::ValueTooLarge(key.clone()));
            }
        }
        if let Some(tags) = &self.tags {
            let bad = |t: &String| t.trim().is_empty() || t.chars().count() > MAX_TAG_CHARS;
            if tags.len() > MAX_TAGS || tags.iter().any(bad) {
                return Err(PatchError::Tags);
            }
        }
        Ok(())
    }

    /// Sets the patched fields on `contact`. Returns whether anything changed.
    pub fn apply_to(&self, contact: &mut Contact) -> bool {
        let before = (
            contact.name.clone(),
            contact.marital_status,
            contact.attributes.clone(),
        );
        if let Some(name) = &self.name {
            contact.name = Some(name.trim().to_string());
        }
        if let Some(status) = self.marital_status {
            contact.marital_status = Some(status);
        }
        for (key, value) in &self.attributes {
            if value.is_null() {
                contact.attributes.remove(key);
            } else {
                contact.attributes.insert(key.clone(), value.clone());
            }
        }
        if let Some(tags) = &self.tags {
            let mut tags: Vec<String> = tags.iter().map(|t| t.trim().to_string()).collect();
            tags.dedup();
            if tags.is_empty() {
                contact.attributes.remove(TAGS);
            } else {
                contact
                    .attributes
                    .insert(TAGS.to_string(), Value::from(tags));
            }
        }
        before
            != (
                contact.name.clone(),
                contact.marital_status,
                contact.attributes.clone(),
            )
    }
}

/// The marketing-consent question asked after a registration (when configured): reply
/// buttons whose ids carry the answer. Its wording is configured
/// (`campaigns.consent_question`) and recorded with each answer.
pub mod consent_question {
    pub const YES: &str = "consent:yes";
    pub const NO: &str = "consent:no";
    /// (button id, title) of each answer; titles fit the Cloud API's 20 characters.
    pub const BUTTONS: [(&str, &str); 2] = [(YES, "Ya / Yes"), (NO, "Tidak / No")];
    pub const THANKS_YES: &str = "Terima kasih! Kami akan hantar promosi kepada anda. Balas STOP bila-bila masa untuk berhenti.\nThank you! We will send you offers. Reply STOP at any time to stop.";
    pub const THANKS_NO: &str =
        "Baik, kami tidak akan hantar promosi.\nNoted, we will not send you offers.";

    /// The answer a button reply gives, `None` when it is not one of the question's.
    pub fn answer(button_id: &str) -> Option<bool> {
        match button_id {
            YES => Some(true),
            NO => Some(false),
            _ => None,
        }
    }
}

/// The marital-status question asked after a registration (when configured): an
/// interactive list whose row ids carry the answer.
pub mod marital_question {
    use super::MaritalStatus;

    pub const BODY: &str = "One more question, if you don't mind: what is your marital status?\nSatu soalan lagi: apakah status perkahwinan anda?";
    pub const BUTTON: &str = "Pilih / Choose";
    pub const THANKS: &str = "Thank you! / Terima kasih!";
    const PREFIX: &str = "marital:";
    const PREFER_NOT_TO_SAY: &str = "marital:none";

    /// (row id, title) of each choice; titles fit the Cloud API's 24 characters.
    pub const CHOICES: [(&str, &str); 5] = [
        ("marital:single", "Single / Bujang"),
        ("marital:married", "Married / Berkahwin"),
        ("marital:divorced", "Divorced / Bercerai"),
        ("marital:widowed", "Widowed / Balu / Duda"),
        (PREFER_NOT_TO_SAY, "Prefer not to say"),
    ];

    /// The answer a list reply gives: `None` when the row is not one of the question's,
    /// `Some(None)` for "prefer not to say".
    pub fn answer(row_id: &str) -> Option<Option<MaritalStatus>> {
        if row_id == PREFER_NOT_TO_SAY {
            return Some(None);
        }
        let status = row_id.strip_prefix(PREFIX)?.parse().ok()?;
        Some(Some(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::PhoneNumber;
    use chrono::Utc;
    use serde_json::json;

    #[test]
    fn a_patch_sets_absolute_values_so_twice_is_once() {
        let mut c = Contact::new(PhoneNumber::parse("0123456789").unwrap(), Utc::now());
        c.attributes.insert("outlet".into(), json!("KLCC"));
        let patch = ProfilePatch {
            name: Some(" Siti ".into()),
            marital_status: Some(MaritalStatus::Married),
            attributes: BTreeMap::from([
                ("outlet".into(), Value::Null),
                ("visits".into(), json!(3)),
            ]),
            tags: Some(vec!["vip".into(), "kids".into()]),
            marketing_consent: None,
        };
        patch.validate().unwrap();
        assert!(patch.apply_to(&mut c));
        assert_eq!(c.name.as_deref(), Some("Siti"));
        assert_eq!(c.marital_status, Some(MaritalStatus::Married));
        assert_eq!(c.attributes.get("outlet"), None);
        assert_eq!(c.attributes["visits"], json!(3));
        assert_eq!(c.attributes[TAGS], json!(["vip", "kids"]));
        assert!(!patch.apply_to(&mut c), "applying again changes nothing");
    }

    #[test]
    fn every_choice_of_the_marital_question_answers_it() {
        use marital_question::{answer, CHOICES};
        let answers: Vec<_> = CHOICES.iter().map(|(id, _)| answer(id)).collect();
        assert_eq!(
            answers,
            vec![
                Some(Some(MaritalStatus::Single)),
                Some(Some(MaritalStatus::Married)),
                Some(Some(MaritalStatus::Divorced)),
                Some(Some(MaritalStatus::Widowed)),
                Some(None),
            ]
        );
        assert!(CHOICES.iter().all(|(_, title)| title.chars().count() <= 24));
        assert_eq!(answer("menu:help"), None);
        assert_eq!(answer("marital:complicated"), None);
    }

    #[test]
    fn limits_are_typed_errors() {
        let with = |f: fn(&mut ProfilePatch)| {
            let mut p = ProfilePatch {
                name: Some("A".into()),
                ..Default::default()
            };
            f(&mut p);
            p.validate()
        };
        assert_eq!(ProfilePatch::default().validate(), Err(PatchError::Empty));
        assert_eq!(with(|p| p.name = Some(" ".into())), Err(PatchError::Name));
        assert_eq!(
            with(|p| {
                p.attributes.insert("a b".into(), json!(1));
            }),
            Err(PatchError::Key("a b".into()))
        );
        assert_eq!(
            with(|p| {
                p.attributes.insert("tags".into(), json!(["x"]));
            }),
            Err(PatchError::TagsAsAttribute("tags".into()))
        );
        assert_eq!(
            with(|p| {
                p.attributes.insert("blob".into(), json!("x".repeat(2_000)));
            }),
            Err(PatchError::ValueTooLarge("blob".into()))
        );
        assert_eq!(
            with(|p| p.tags = Some(vec!["".into()])),
            Err(PatchError::Tags)
        );
        assert_eq!(
            with(|p| {
                for i in 0..=MAX_ATTRIBUTES {
                    p.attributes.insert(format!("k{i}"), json!(i));
                }
            }),
            Err(PatchError::TooManyAttributes)
        );
    }
}
