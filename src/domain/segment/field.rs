//! The field catalog: every filterable field, its name in JSON, its type, whether a contact
//! can lack it, and how to read it from a [`Contact`].
//!
//! Derived fields take their reference time from the [`EvalContext`], never from the clock:
//! - `age`: whole years on `ctx.today` (missing without a date of birth, or one after today);
//! - `days_since_last_purchase`: calendar days from the latest purchase date to `ctx.today`
//!   (0 on the day of the purchase; negative for a purchase dated after today);
//! - `days_since_last_interaction`: whole 24-hour periods from the last message to `ctx.now`,
//!   rounded down (23 hours ago is 0, 25 hours ago is 1; in the future is negative);
//! - `purchase_count_in_last_days` / `spend_in_last_days` with `days: N`: purchases dated on
//!   or after `ctx.today − (N − 1)` days, so `days: 1` is today's purchases and `days: 30` is
//!   today and the 29 days before. Like [`PurchaseLedger::stats_since`], purchases dated after
//!   today are included. Hence `days_since_last_purchase lte N − 1` holds exactly when
//!   `purchase_count_in_last_days(N) gte 1`.
//!
//! The IC number is deliberately not a field: it is identity-fraud material (see FACTS.md).
//!
//! [`PurchaseLedger::stats_since`]: crate::domain::spending::PurchaseLedger::stats_since

use std::cell::OnceCell;
use std::fmt;

use chrono::{DateTime, Days, NaiveDate, Utc};

use super::error::ErrorKind;
use super::eval::EvalContext;
use super::value::ValueType;
use crate::domain::contact::{Contact, InteractionStats, WhatsappStatus};
use crate::domain::money::Money;
use crate::domain::person::{age_on, Gender, MaritalStatus};
use crate::domain::phone::PhoneNumber;
use crate::domain::spending::SpendingStats;
use crate::domain::state::MalaysianState;
use crate::domain::tier::Tier;

/// Longest purchase window, in days (100 years).
pub const MAX_WINDOW_DAYS: u32 = 36_500;

/// The prefix of retailer-defined fields: `attributes.<key>`.
pub const ATTRIBUTE_PREFIX: &str = "attributes.";

/// A filterable field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Age,
    Gender,
    MaritalStatus,
    State,
    CustomerTier,
    TotalSpent,
    AverageSpend,
    PurchaseCount,
    FirstPurchaseDate,
    LastPurchaseDate,
    DaysSinceLastPurchase,
    /// Purchases in the last `days` days (1 to [`MAX_WINDOW_DAYS`]).
    PurchaseCountInLastDays {
        days: u32,
    },
    /// Spend in the last `days` days (1 to [`MAX_WINDOW_DAYS`]).
    SpendInLastDays {
        days: u32,
    },
    WhatsappStatus,
    MarketingOptIn,
    MessageCount,
    OutboundCount,
    RepliedCount,
    ResponseRate,
    LastInteraction,
    DaysSinceLastInteraction,
    DateOfBirth,
    CreatedAt,
    Name,
    PhoneNumber,
    /// A retailer-defined field, `attributes.<key>`, typed by its JSON value per contact.
    Attribute(String),
}

/// A catalog entry: what the documentation and an admin UI show about a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: &'static str,
    pub value_type: ValueType,
    /// Whether some contacts have no value (then only `exists` tells).
    pub optional: bool,
    /// Whether the field takes a `days` window.
    pub windowed: bool,
    pub description: &'static str,
}

const fn info(
    name: &'static str,
    value_type: ValueType,
    optional: bool,
    description: &'static str,
) -> FieldInfo {
    FieldInfo {
        name,
        value_type,
        optional,
        windowed: false,
        description,
    }
}

/// Every built-in field (attributes are open-ended and not listed).
pub const CATALOG: &[FieldInfo] = &[
    info(
        "age",
        ValueType::Integer,
        true,
        "whole years on the evaluation date",
    ),
    info("gender", ValueType::Gender, true, "male or female"),
    info(
        "marital_status",
        ValueType::MaritalStatus,
        true,
        "single, married, divorced, widowed",
    ),
    info(
        "state",
        ValueType::State,
        true,
        "Malaysian state or federal territory",
    ),
    info(
        "customer_tier",
        ValueType::Tier,
        false,
        "Bronze < Silver < Gold < Platinum",
    ),
    info(
        "total_spent",
        ValueType::Money,
        false,
        "lifetime spend; 0.00 without purchases",
    ),
    info(
        "average_spend",
        ValueType::Money,
        true,
        "mean purchase, to the sen; missing without purchases",
    ),
    info(
        "purchase_count",
        ValueType::Integer,
        false,
        "lifetime purchases",
    ),
    info(
        "first_purchase_date",
        ValueType::Date,
        true,
        "date of the earliest purchase",
    ),
    info(
        "last_purchase_date",
        ValueType::Date,
        true,
        "date of the latest purchase",
    ),
    info(
        "days_since_last_purchase",
        ValueType::Integer,
        true,
        "days from the latest purchase date to today",
    ),
    FieldInfo {
        windowed: true,
        ..info(
            "purchase_count_in_last_days",
            ValueType::Integer,
            false,
            "purchases dated on or after today - (days - 1)",
        )
    },
    FieldInfo {
        windowed: true,
        ..info(
            "spend_in_last_days",
            ValueType::Money,
            false,
            "spend dated on or after today - (days - 1)",
        )
    },
    info(
        "whatsapp_status",
        ValueType::WhatsappStatus,
        false,
        "active, blocked, unsubscribed",
    ),
    info(
        "marketing_opt_in",
        ValueType::Bool,
        false,
        "consent to marketing messages",
    ),
    info(
        "message_count",
        ValueType::Integer,
        false,
        "messages received from the contact",
    ),
    info(
        "outbound_count",
        ValueType::Integer,
        false,
        "business messages sent to the contact",
    ),
    info(
        "replied_count",
        ValueType::Integer,
        false,
        "business messages the contact answered",
    ),
    info(
        "response_rate",
        ValueType::Ratio,
        true,
        "replied / outbound, 0 to 1; missing when nothing was sent",
    ),
    info(
        "last_interaction",
        ValueType::DateTime,
        true,
        "when the contact last messaged",
    ),
    info(
        "days_since_last_interaction",
        ValueType::Integer,
        true,
        "whole 24 h periods since the last message",
    ),
    info("date_of_birth", ValueType::Date, true, "date of birth"),
    info(
        "created_at",
        ValueType::DateTime,
        false,
        "when the contact was created",
    ),
    info("name", ValueType::Text, true, "the contact's name"),
    info(
        "phone_number",
        ValueType::Phone,
        false,
        "E.164 digits, e.g. 60123456789",
    ),
];

/// Names that look like the IC number: rejected with a clear message instead of "unknown".
const FORBIDDEN: &[&str] = &[
    "ic",
    "ic_number",
    "ic_no",
    "nric",
    "mykad",
    "identity_card",
    "identity_number",
];

impl Field {
    /// Resolves a JSON field name and its optional `days` window.
    pub fn lookup(name: &str, days: Option<u32>) -> Result<Field, ErrorKind> {
        let field = if let Some(key) = name.strip_prefix(ATTRIBUTE_PREFIX) {
            Field::Attribute(key.to_string())
        } else {
            match name {
                "age" => Field::Age,
                "gender" => Field::Gender,
                "marital_status" => Field::MaritalStatus,
                "state" => Field::State,
                "customer_tier" => Field::CustomerTier,
                "total_spent" => Field::TotalSpent,
                "average_spend" => Field::AverageSpend,
                "purchase_count" => Field::PurchaseCount,
                "first_purchase_date" => Field::FirstPurchaseDate,
                "last_purchase_date" => Field::LastPurchaseDate,
                "days_since_last_purchase" => Field::DaysSinceLastPurchase,
                "purchase_count_in_last_days" => match days {
                    Some(days) => Field::PurchaseCountInLastDays { days },
                    None => return Err(ErrorKind::DaysRequired(name.to_string())),
                },
                "spend_in_last_days" => match days {
                    Some(days) => Field::SpendInLastDays { days },
                    None => return Err(ErrorKind::DaysRequired(name.to_string())),
                },
                "whatsapp_status" => Field::WhatsappStatus,
                "marketing_opt_in" => Field::MarketingOptIn,
                "message_count" => Field::MessageCount,
                "outbound_count" => Field::OutboundCount,
                "replied_count" => Field::RepliedCount,
                "response_rate" => Field::ResponseRate,
                "last_interaction" => Field::LastInteraction,
                "days_since_last_interaction" => Field::DaysSinceLastInteraction,
                "date_of_birth" => Field::DateOfBirth,
                "created_at" => Field::CreatedAt,
                "name" => Field::Name,
                "phone_number" => Field::PhoneNumber,
                _ if FORBIDDEN.contains(&name.to_ascii_lowercase().as_str()) => {
                    return Err(ErrorKind::ForbiddenField(name.to_string()))
                }
                _ => return Err(ErrorKind::UnknownField(name.to_string())),
            }
        };
        if days.is_some() && field.days().is_none() {
            return Err(ErrorKind::DaysNotAllowed(name.to_string()));
        }
        field.validate()?;
        Ok(field)
    }

    /// Checks the parts a caller can set: a non-empty attribute key, a window in range.
    pub fn validate(&self) -> Result<(), ErrorKind> {
        match self {
            Field::Attribute(key) if key.is_empty() => Err(ErrorKind::EmptyAttributeKey),
            Field::PurchaseCountInLastDays { days } | Field::SpendInLastDays { days }
                if *days == 0 || *days > MAX_WINDOW_DAYS =>
            {
                Err(ErrorKind::InvalidDays {
                    max: MAX_WINDOW_DAYS,
                    got: days.to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The JSON name without the window: `age`, `spend_in_last_days`, `attributes.outlet`.
    pub fn name(&self) -> String {
        match self {
            Field::Attribute(key) => format!("{ATTRIBUTE_PREFIX}{key}"),
            other => other.catalog_name().to_string(),
        }
    }

    fn catalog_name(&self) -> &'static str {
        match self {
            Field::Age => "age",
            Field::Gender => "gender",
            Field::MaritalStatus => "marital_status",
            Field::State => "state",
            Field::CustomerTier => "customer_tier",
            Field::TotalSpent => "total_spent",
            Field::AverageSpend => "average_spend",
            Field::PurchaseCount => "purchase_count",
            Field::FirstPurchaseDate => "first_purchase_date",
            Field::LastPurchaseDate => "last_purchase_date",
            Field::DaysSinceLastPurchase => "days_since_last_purchase",
            Field::PurchaseCountInLastDays { .. } => "purchase_count_in_last_days",
            Field::SpendInLastDays { .. } => "spend_in_last_days",
            Field::WhatsappStatus => "whatsapp_status",
            Field::MarketingOptIn => "marketing_opt_in",
            Field::MessageCount => "message_count",
            Field::OutboundCount => "outbound_count",
            Field::RepliedCount => "replied_count",
            Field::ResponseRate => "response_rate",
            Field::LastInteraction => "last_interaction",
            Field::DaysSinceLastInteraction => "days_since_last_interaction",
            Field::DateOfBirth => "date_of_birth",
            Field::CreatedAt => "created_at",
            Field::Name => "name",
            Field::PhoneNumber => "phone_number",
            Field::Attribute(_) => "attributes",
        }
    }

    /// The window of a windowed field.
    pub fn days(&self) -> Option<u32> {
        match self {
            Field::PurchaseCountInLastDays { days } | Field::SpendInLastDays { days } => {
                Some(*days)
            }
            _ => None,
        }
    }

    pub fn value_type(&self) -> ValueType {
        match self {
            Field::Attribute(_) => ValueType::Dynamic,
            other => other.info().map_or(ValueType::Dynamic, |i| i.value_type),
        }
    }

    /// The catalog entry; `None` for attributes.
    pub fn info(&self) -> Option<&'static FieldInfo> {
        let name = self.catalog_name();
        CATALOG.iter().find(|i| i.name == name)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Attribute(key) => write!(f, "{ATTRIBUTE_PREFIX}{key}"),
            other => f.write_str(other.catalog_name()),
        }
    }
}

/// A contact's value for a field, borrowed where possible.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Actual<'c> {
    Integer(i128),
    Money(Money),
    /// `numerator / denominator`, `denominator > 0`.
    Ratio {
        numerator: u64,
        denominator: u64,
    },
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Text(&'c str),
    Phone(&'c PhoneNumber),
    Gender(Gender),
    MaritalStatus(MaritalStatus),
    /// `None`: the contact has a state text that names no Malaysian state.
    State(Option<MalaysianState>),
    Tier(Tier),
    WhatsappStatus(WhatsappStatus),
    Bool(bool),
    /// A retailer attribute (never JSON `null`: null reads as missing).
    Json(&'c serde_json::Value),
}

/// What the reference evaluator reads of a contact. [`Contact`] has it; so does the segment
/// index's compact row, so the index decides its edge cases with this very evaluator instead
/// of a second copy of the rules.
pub trait ContactFacts {
    fn phone_number(&self) -> &PhoneNumber;
    fn name(&self) -> Option<&str>;
    fn gender(&self) -> Option<Gender>;
    fn marital_status(&self) -> Option<MaritalStatus>;
    /// `None`: no state; `Some(None)`: a state text that names no Malaysian state.
    fn state(&self) -> Option<Option<MalaysianState>>;
    fn date_of_birth(&self) -> Option<NaiveDate>;
    fn customer_tier(&self) -> Tier;
    fn whatsapp_status(&self) -> WhatsappStatus;
    fn marketing_opt_in(&self) -> bool;
    fn interactions(&self) -> &InteractionStats;
    fn created_at(&self) -> DateTime<Utc>;
    fn attribute(&self, key: &str) -> Option<&serde_json::Value>;
    /// Lifetime spending.
    fn spending(&self) -> SpendingStats;
    /// Spending over purchases dated on or after `since`.
    fn spending_since(&self, since: NaiveDate) -> SpendingStats;
}

impl ContactFacts for Contact {
    fn phone_number(&self) -> &PhoneNumber {
        &self.phone_number
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn gender(&self) -> Option<Gender> {
        self.gender
    }
    fn marital_status(&self) -> Option<MaritalStatus> {
        self.marital_status
    }
    fn state(&self) -> Option<Option<MalaysianState>> {
        self.state.as_deref().map(MalaysianState::from_name)
    }
    fn date_of_birth(&self) -> Option<NaiveDate> {
        self.date_of_birth
    }
    fn customer_tier(&self) -> Tier {
        self.customer_tier
    }
    fn whatsapp_status(&self) -> WhatsappStatus {
        self.whatsapp_status
    }
    fn marketing_opt_in(&self) -> bool {
        self.marketing_opt_in
    }
    fn interactions(&self) -> &InteractionStats {
        &self.interactions
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn attribute(&self, key: &str) -> Option<&serde_json::Value> {
        self.attributes.get(key)
    }
    fn spending(&self) -> SpendingStats {
        self.purchases.stats()
    }
    fn spending_since(&self, since: NaiveDate) -> SpendingStats {
        self.purchases.stats_since(since)
    }
}

/// Reads fields of one contact at one reference time. Lifetime spending stats are computed
/// once, on first use, so a tree with many spending comparisons costs one ledger pass.
pub struct FieldReader<'c> {
    contact: &'c dyn ContactFacts,
    ctx: &'c EvalContext,
    stats: OnceCell<SpendingStats>,
}

impl<'c> FieldReader<'c> {
    pub fn new(contact: &'c dyn ContactFacts, ctx: &'c EvalContext) -> Self {
        FieldReader {
            contact,
            ctx,
            stats: OnceCell::new(),
        }
    }

    pub fn contact(&self) -> &'c dyn ContactFacts {
        self.contact
    }

    /// Lifetime spending stats (computed on first use).
    pub fn stats(&self) -> &SpendingStats {
        self.stats.get_or_init(|| self.contact.spending())
    }

    /// The contact's value, or `None` when missing.
    pub fn read(&self, field: &Field) -> Option<Actual<'c>> {
        let contact = self.contact;
        let ctx = self.ctx;
        let value = match field {
            Field::Age => Actual::Integer(age_on(contact.date_of_birth()?, ctx.today)?.into()),
            Field::Gender => Actual::Gender(contact.gender()?),
            Field::MaritalStatus => Actual::MaritalStatus(contact.marital_status()?),
            Field::State => Actual::State(contact.state()?),
            Field::CustomerTier => Actual::Tier(contact.customer_tier()),
            Field::TotalSpent => Actual::Money(self.stats().total_spent),
            Field::AverageSpend => {
                let stats = self.stats();
                if stats.purchase_count == 0 {
                    return None;
                }
                Actual::Money(stats.average_spend)
            }
            Field::PurchaseCount => Actual::Integer(self.stats().purchase_count.into()),
            Field::FirstPurchaseDate => Actual::Date(self.stats().first_purchase_on?),
            Field::LastPurchaseDate => Actual::Date(self.stats().last_purchase_on?),
            Field::DaysSinceLastPurchase => {
                let last = self.stats().last_purchase_on?;
                Actual::Integer(ctx.today.signed_duration_since(last).num_days().into())
            }
            Field::PurchaseCountInLastDays { days } => {
                let since = window_start(ctx.today, *days);
                Actual::Integer(contact.spending_since(since).purchase_count.into())
            }
            Field::SpendInLastDays { days } => {
                let since = window_start(ctx.today, *days);
                Actual::Money(contact.spending_since(since).total_spent)
            }
            Field::WhatsappStatus => Actual::WhatsappStatus(contact.whatsapp_status()),
            Field::MarketingOptIn => Actual::Bool(contact.marketing_opt_in()),
            Field::MessageCount => Actual::Integer(contact.interactions().message_count.into()),
            Field::OutboundCount => Actual::Integer(contact.interactions().outbound_count.into()),
            Field::RepliedCount => Actual::Integer(contact.interactions().replied_count.into()),
            Field::ResponseRate => {
                let stats = contact.interactions();
                if stats.outbound_count == 0 {
                    return None;
                }
                // Same clamp as InteractionStats::response_rate: a rate never exceeds 1.
                Actual::Ratio {
                    numerator: stats.replied_count.min(stats.outbound_count),
                    denominator: stats.outbound_count,
                }
            }
            Field::LastInteraction => Actual::DateTime(contact.interactions().last_interaction?),
            Field::DaysSinceLastInteraction => {
                let last = contact.interactions().last_interaction?;
                let seconds = ctx.now.signed_duration_since(last).num_seconds();
                Actual::Integer(seconds.div_euclid(86_400).into())
            }
            Field::DateOfBirth => Actual::Date(contact.date_of_birth()?),
            Field::CreatedAt => Actual::DateTime(contact.created_at()),
            Field::Name => Actual::Text(contact.name()?),
            Field::PhoneNumber => Actual::Phone(contact.phone_number()),
            Field::Attribute(key) => match contact.attribute(key)? {
                serde_json::Value::Null => return None,
                value => Actual::Json(value),
            },
        };
        Some(value)
    }
}

/// First day of a window of `days` days ending today (`days` ≥ 1; 0 is treated as 1).
pub fn window_start(today: NaiveDate, days: u32) -> NaiveDate {
    let back = u64::from(days.saturating_sub(1));
    today
        .checked_sub_days(Days::new(back))
        .unwrap_or(NaiveDate::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn every_catalog_name_resolves_to_itself() {
        for info in CATALOG {
            let days = info.windowed.then_some(7);
            let field = Field::lookup(info.name, days).unwrap();
            assert_eq!(field.name(), info.name);
            assert_eq!(field.value_type(), info.value_type);
            assert_eq!(field.info(), Some(info));
            assert_eq!(field.days(), days);
        }
    }

    #[test]
    fn lookup_errors() {
        assert_eq!(
            Field::lookup("agee", None),
            Err(ErrorKind::UnknownField("agee".into()))
        );
        assert_eq!(
            Field::lookup("ic_number", None),
            Err(ErrorKind::ForbiddenField("ic_number".into()))
        );
        assert_eq!(
            Field::lookup("NRIC", None),
            Err(ErrorKind::ForbiddenField("NRIC".into()))
        );
        assert_eq!(
            Field::lookup("attributes.", None),
            Err(ErrorKind::EmptyAttributeKey)
        );
        assert_eq!(
            Field::lookup("spend_in_last_days", None),
            Err(ErrorKind::DaysRequired("spend_in_last_days".into()))
        );
        assert_eq!(
            Field::lookup("age", Some(3)),
            Err(ErrorKind::DaysNotAllowed("age".into()))
        );
        assert!(matches!(
            Field::lookup("spend_in_last_days", Some(MAX_WINDOW_DAYS + 1)),
            Err(ErrorKind::InvalidDays { .. })
        ));
        assert_eq!(
            Field::lookup("attributes.loyalty.level", None),
            Ok(Field::Attribute("loyalty.level".into()))
        );
    }

    #[test]
    fn window_counts_today_as_day_one() {
        let today = day(2025, 3, 31);
        assert_eq!(window_start(today, 1), today);
        assert_eq!(window_start(today, 30), day(2025, 3, 2));
        let near_min = NaiveDate::MIN.checked_add_days(Days::new(5)).unwrap();
        assert_eq!(window_start(near_min, MAX_WINDOW_DAYS), NaiveDate::MIN);
    }
}
