//! Keyword auto-replies: a rule table (from config) matched against inbound text, in
//! English, Malay and Chinese. Consent keywords (STOP / BERHENTI / 停止, START / MULA) match
//! only the whole message, so "don't stop the promos" never unsubscribes anyone; other
//! rules match a word of the message (or, for keywords in a script without spaces, a
//! substring).

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyAction {
    /// Just answer.
    Reply,
    /// Unsubscribe the contact (PDPA s.43): immediate and permanent until an opt-in.
    OptOut,
    /// Subscribe the contact to business-initiated messages.
    OptIn,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRule {
    /// Short name for metrics and events: help, register, opt_out, ...
    pub name: String,
    pub keywords: Vec<String>,
    pub action: ReplyAction,
    /// The answer, sent as free-form text (inside the 24 h window: it answers a message).
    pub reply: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RuleError {
    #[error("rule {index} ({name:?}): {message}")]
    Invalid {
        index: usize,
        name: String,
        message: String,
    },
}

/// The opt-out keywords every table answers, whatever its rules say (PDPA s.43: a customer's
/// STOP must always work).
pub const OPT_OUT_KEYWORDS: [&str; 4] = ["stop", "berhenti", "停止", "unsubscribe"];

/// A validated rule table; the first matching rule wins, except that opt-out comes first:
/// the table's opt-out rules and [`OPT_OUT_KEYWORDS`] are matched before any other rule, so
/// no table can omit or shadow them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoReplies {
    rules: Vec<ReplyRule>,
    /// The table's first opt-out rule with the built-in keywords added, or the default one.
    opt_out: ReplyRule,
}

impl AutoReplies {
    pub fn new(rules: Vec<ReplyRule>) -> Result<Self, RuleError> {
        for (index, rule) in rules.iter().enumerate() {
            let invalid = |message: &str| RuleError::Invalid {
                index,
                name: rule.name.clone(),
                message: message.to_string(),
            };
            if rule.name.trim().is_empty() {
                return Err(invalid("name must not be empty"));
            }
            if rule.keywords.is_empty() || rule.keywords.iter().any(|k| normalize(k).is_empty()) {
                return Err(invalid("needs at least one non-empty keyword"));
            }
            let length = rule.reply.chars().count();
            if length == 0 || length > 4096 {
                return Err(invalid("reply must be 1 to 4096 characters"));
            }
        }
        let mut opt_out = rules
            .iter()
            .find(|rule| rule.action == ReplyAction::OptOut)
            .cloned()
            .unwrap_or_else(|| {
                AutoReplies::default_rules()
                    .into_iter()
                    .find(|rule| rule.action == ReplyAction::OptOut)
                    .expect("the default table has an opt-out rule")
            });
        opt_out
            .keywords
            .extend(OPT_OUT_KEYWORDS.iter().map(|k| k.to_string()));
        Ok(AutoReplies { rules, opt_out })
    }

    pub fn rules(&self) -> &[ReplyRule] {
        &self.rules
    }

    /// The rule that answers `text`, if any: an opt-out before anything else.
    pub fn find(&self, text: &str) -> Option<&ReplyRule> {
        let message = normalize(text);
        if message.is_empty() {
            return None;
        }
        let opt_outs = std::iter::once(&self.opt_out).chain(
            self.rules
                .iter()
                .filter(|r| r.action == ReplyAction::OptOut),
        );
        let others = self
            .rules
            .iter()
            .filter(|r| r.action != ReplyAction::OptOut);
        opt_outs.chain(others).find(|rule| {
            rule.keywords.iter().any(|keyword| {
                let keyword = normalize(keyword);
                match rule.action {
                    ReplyAction::OptOut | ReplyAction::OptIn => message == keyword,
                    ReplyAction::Reply => {
                        message == keyword
                            || message.split(' ').any(|word| word == keyword)
                            || (!keyword.is_ascii() && message.contains(&keyword))
                    }
                }
            })
        })
    }

    /// English, Malay and Chinese rules for help, registration, opt-out and opt-in.
    pub fn default_rules() -> Vec<ReplyRule> {
        let rule = |name: &str, keywords: &[&str], action, reply: &str| ReplyRule {
            name: name.into(),
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            action,
            reply: reply.into(),
        };
        vec![
            rule(
                "opt_out",
                &["stop", "berhenti", "停止", "unsubscribe"],
                ReplyAction::OptOut,
                "You have been unsubscribed and will get no more messages from us. Reply START to subscribe again.\nAnda telah berhenti melanggan. Balas MULA untuk melanggan semula.",
            ),
            rule(
                "opt_in",
                &["start", "mula", "开始", "subscribe"],
                ReplyAction::OptIn,
                "You are subscribed to our updates. Reply STOP at any time to unsubscribe.\nAnda telah melanggan. Balas BERHENTI untuk berhenti.",
            ),
            rule(
                "register",
                &["register", "daftar", "注册"],
                ReplyAction::Reply,
                "To register, send a clear photo of the front of your MyKad.\nUntuk mendaftar, hantar gambar jelas bahagian depan MyKad anda.",
            ),
            rule(
                "help",
                &["help", "bantuan", "tolong", "帮助", "menu"],
                ReplyAction::Reply,
                "Send a photo of your MyKad to register, a photo of your receipt to record a purchase, or STOP to unsubscribe.\nHantar gambar MyKad untuk mendaftar, gambar resit untuk merekod pembelian, atau BERHENTI untuk berhenti melanggan.",
            ),
        ]
    }
}

/// Lowercase, whitespace collapsed, surrounding punctuation dropped: "  Stop! " → "stop".
fn normalize(text: &str) -> String {
    let lowered = text.to_lowercase();
    let words: Vec<&str> = lowered
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> AutoReplies {
        AutoReplies::new(AutoReplies::default_rules()).unwrap()
    }

    fn rule_for(text: &str) -> Option<String> {
        defaults().find(text).map(|r| r.name.clone())
    }

    #[test]
    fn no_table_can_omit_or_shadow_the_opt_out() {
        let rule = |name: &str, keywords: &[&str], action| ReplyRule {
            name: name.into(),
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            action,
            reply: "ok".into(),
        };
        // A table without any opt-out rule, and a reply rule that claims "stop" first.
        let table = AutoReplies::new(vec![
            rule("promo", &["stop", "promo"], ReplyAction::Reply),
            rule("help", &["help"], ReplyAction::Reply),
        ])
        .unwrap();
        for keyword in ["STOP", "Berhenti", "停止", "unsubscribe"] {
            let found = table.find(keyword).unwrap();
            assert_eq!(found.action, ReplyAction::OptOut, "{keyword}");
        }
        assert_eq!(table.find("promo").unwrap().name, "promo");
        assert_eq!(table.find("help").unwrap().name, "help");
        // A table's own opt-out rule keeps its reply and its extra keywords, and still
        // answers the built-in keywords before the rules listed above it.
        let own = AutoReplies::new(vec![
            rule("promo", &["stop"], ReplyAction::Reply),
            rule("leave", &["keluar"], ReplyAction::OptOut),
        ])
        .unwrap();
        assert_eq!(own.find("stop").unwrap().name, "leave");
        assert_eq!(own.find("keluar").unwrap().name, "leave");
    }

    #[test]
    fn consent_keywords_in_three_languages_match_the_whole_message() {
        for text in ["STOP", " stop! ", "Berhenti", "停止", "停止。"] {
            assert_eq!(rule_for(text).as_deref(), Some("opt_out"), "{text}");
        }
        for text in ["START", "mula", "Mula."] {
            assert_eq!(rule_for(text).as_deref(), Some("opt_in"), "{text}");
        }
        assert_eq!(rule_for("please don't stop the promos"), None);
        assert_eq!(rule_for("start when?"), None);
    }

    #[test]
    fn other_rules_match_a_word_or_a_cjk_substring() {
        assert_eq!(rule_for("I need help please").as_deref(), Some("help"));
        assert_eq!(rule_for("Saya nak DAFTAR").as_deref(), Some("register"));
        assert_eq!(rule_for("我想注册会员").as_deref(), Some("register"));
        assert_eq!(rule_for("helpful staff, thanks"), None);
        assert_eq!(rule_for(""), None);
        assert_eq!(rule_for("   ?! "), None);
    }

    #[test]
    fn invalid_rules_are_rejected_with_their_index() {
        let mut rules = AutoReplies::default_rules();
        rules[2].keywords = vec!["  ".into()];
        let err = AutoReplies::new(rules).unwrap_err();
        assert!(
            err.to_string().starts_with("rule 2 (\"register\")"),
            "{err}"
        );
        let mut rules = AutoReplies::default_rules();
        rules[0].reply = "x".repeat(4097);
        assert!(AutoReplies::new(rules).is_err());
    }
}
