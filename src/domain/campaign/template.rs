//! Personalised text: `{{name}}`, `{{first_name}}`, `{{tier}}`, `{{total_spent}}`,
//! `{{state}}`, `{{attributes.<key>}}`, each with an optional default after a bar
//! (`{{first_name|Pelanggan}}`). Parsed and checked when a campaign is saved, rendered per
//! recipient when it is sent; a variable with no value and no default renders as nothing.
//!
//! Written by hand: a general template engine (Tera, Handlebars) would accept loops, filters
//! and function calls that a marketer's message has no use for and a send must not run.

use thiserror::Error;

use crate::domain::contact::Contact;

/// The Cloud API's limit on a text body, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;
/// A caption's limit (image, video).
pub const MAX_CAPTION_CHARS: usize = 1024;
const MAX_DEFAULT_CHARS: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Variable {
    Name,
    FirstName,
    Tier,
    TotalSpent,
    State,
    Attribute(String),
}

impl Variable {
    pub const NAMES: &'static str = "name, first_name, tier, total_spent, state, attributes.<key>";

    fn parse(text: &str) -> Option<Variable> {
        Some(match text {
            "name" => Variable::Name,
            "first_name" => Variable::FirstName,
            "tier" => Variable::Tier,
            "total_spent" => Variable::TotalSpent,
            "state" => Variable::State,
            other => {
                let key = other.strip_prefix("attributes.")?;
                let valid = !key.is_empty()
                    && key.len() <= 64
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid {
                    return None;
                }
                Variable::Attribute(key.to_string())
            }
        })
    }

    /// The contact's value, `None` when it has none.
    fn value(&self, contact: &Contact) -> Option<String> {
        let name = || {
            contact
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
        };
        match self {
            Variable::Name => name().map(str::to_string),
            Variable::FirstName => name()
                .and_then(|n| n.split_whitespace().next())
                .map(str::to_string),
            Variable::Tier => Some(contact.customer_tier.as_str().to_string()),
            Variable::TotalSpent => Some(format!("RM{}", contact.spending().total_spent)),
            Variable::State => contact.state.clone(),
            Variable::Attribute(key) => match contact.attributes.get(key)? {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) if s.trim().is_empty() => None,
                serde_json::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Slot {
        variable: Variable,
        default: Option<String>,
    },
}

/// A parsed text with variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    #[error("unknown variable {{{{{name}}}}} (known: {known})", known = Variable::NAMES)]
    UnknownVariable { name: String },
    #[error("a `{{{{` at character {at} is not closed by `}}}}`")]
    Unclosed { at: usize },
    #[error("the text is {chars} characters, over the limit of {limit}")]
    TooLong { chars: usize, limit: usize },
    #[error("the default of {{{{{name}}}}} is over {MAX_DEFAULT_CHARS} characters")]
    DefaultTooLong { name: String },
    #[error("the text is empty")]
    Empty,
}

impl Template {
    /// Parses `text`; `limit` is the rendered length it must fit (text or caption).
    pub fn parse(text: &str, limit: usize) -> Result<Template, TemplateError> {
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let chars = text.chars().count();
        if chars > limit {
            return Err(TemplateError::TooLong { chars, limit });
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unclosed {
                at: text[..offset + open].chars().count(),
            })?;
            let inner = &after[..close];
            let (name, default) = match inner.split_once('|') {
                Some((name, default)) => (name.trim(), Some(default.trim().to_string())),
                None => (inner.trim(), None),
            };
            let variable = Variable::parse(name).ok_or_else(|| TemplateError::UnknownVariable {
                name: name.to_string(),
            })?;
            if default
                .as_ref()
                .is_some_and(|d| d.chars().count() > MAX_DEFAULT_CHARS)
            {
                return Err(TemplateError::DefaultTooLong {
                    name: name.to_string(),
                });
            }
            pieces.push(Piece::Slot { variable, default });
            let consumed = open + 2 + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_string()));
        }
        Ok(Template { pieces })
    }

    /// The text for `contact`.
    pub fn render(&self, contact: &Contact) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Slot { variable, default } => {
                    if let Some(value) = variable.value(contact).or_else(|| default.clone()) {
                        out.push_str(&value);
                    }
                }
            }
        }
        out
    }

    pub fn has_variables(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Slot { .. }))
    }
}

/// Renders `text` for `contact`, checked against `limit` after rendering (a long name can
/// push a text near the limit over it).
pub fn render_checked(
    text: &str,
    limit: usize,
    contact: &Contact,
) -> Result<String, TemplateError> {
    let rendered = Template::parse(text, limit)?.render(contact);
    let chars = rendered.chars().count();
    if chars > limit {
        return Err(TemplateError::TooLong { chars, limit });
    }
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::PhoneNumber;
    use chrono::Utc;

    fn contact(name: Option<&str>) -> Contact {
        let mut c = Contact::new(PhoneNumber::parse("0123456789").unwrap(), Utc::now());
        c.name = name.map(str::to_string);
        c.state = Some("Selangor".into());
        c.attributes
            .insert("outlet".into(), serde_json::json!("Mid Valley"));
        c.attributes.insert("points".into(), serde_json::json!(120));
        c
    }

    #[test]
    fn renders_every_variable_with_defaults_for_missing_values() {
        let t = Template::parse(
            "Hi {{first_name|Pelanggan}} ({{name}}), {{tier}} at {{ attributes.outlet }}, \
             {{attributes.points}} pts, {{total_spent}} in {{state}}{{attributes.none|!}}",
            MAX_TEXT_CHARS,
        )
        .unwrap();
        assert!(t.has_variables());
        assert_eq!(
            t.render(&contact(Some("Siti Aminah"))),
            "Hi Siti (Siti Aminah), Bronze at Mid Valley, 120 pts, RM0.00 in Selangor!"
        );
        assert_eq!(
            t.render(&contact(None)),
            "Hi Pelanggan (), Bronze at Mid Valley, 120 pts, RM0.00 in Selangor!"
        );
    }

    #[test]
    fn refuses_unknown_variables_unclosed_braces_and_long_text() {
        assert_eq!(
            Template::parse("Hi {{nmae}}", 100),
            Err(TemplateError::UnknownVariable {
                name: "nmae".into()
            })
        );
        assert!(matches!(
            Template::parse("Hi {{attributes.}}", 100),
            Err(TemplateError::UnknownVariable { .. })
        ));
        assert_eq!(
            Template::parse("ab {{name", 100),
            Err(TemplateError::Unclosed { at: 3 })
        );
        assert_eq!(
            Template::parse(&"x".repeat(4097), MAX_TEXT_CHARS),
            Err(TemplateError::TooLong {
                chars: 4097,
                limit: 4096
            })
        );
        assert_eq!(Template::parse("  ", 100), Err(TemplateError::Empty));
        // Plain text without variables is a template too.
        let plain = Template::parse("50% off {today}", 100).unwrap();
        assert!(!plain.has_variables());
        assert_eq!(plain.render(&contact(None)), "50% off {today}");
    }

    #[test]
    fn a_rendered_text_over_the_limit_is_refused() {
        let long_name = "N".repeat(30);
        let text = format!("{}{{{{name}}}}", "x".repeat(80));
        assert!(render_checked(&text, 100, &contact(Some("Ali"))).is_ok());
        assert_eq!(
            render_checked(&text, 100, &contact(Some(&long_name))),
            Err(TemplateError::TooLong {
                chars: 110,
                limit: 100
            })
        );
    }
}
