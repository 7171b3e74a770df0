//! Spending tiers. A tier is a pure function of the purchase ledger, the policy and the
//! reference date, so recalculating it anywhere (a replay, another engine process) agrees.

use std::fmt;
use std::str::FromStr;

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::money::Money;
use super::person::UnknownVariant;
use super::spending::PurchaseLedger;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tier {
    Bronze,
    Silver,
    Gold,
    Platinum,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Bronze, Tier::Silver, Tier::Gold, Tier::Platinum];

    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::Bronze => "Bronze",
            Tier::Silver => "Silver",
            Tier::Gold => "Gold",
            Tier::Platinum => "Platinum",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownVariant {
                what: "tier",
                value: s.to_string(),
                expected: "Bronze, Silver, Gold, Platinum",
            })
    }
}

/// Which purchases count toward the tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TierWindow {
    Lifetime,
    /// Purchases made on or after the reference date minus this many calendar months.
    RollingMonths {
        months: u32,
    },
}

/// Minimum spend (inclusive) to reach each tier above Bronze.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierPolicy {
    pub silver_from: Money,
    pub gold_from: Money,
    pub platinum_from: Money,
    pub window: TierWindow,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TierPolicyError {
    #[error("tier thresholds must be positive and strictly increasing: silver {silver} < gold {gold} < platinum {platinum}")]
    NotIncreasing {
        silver: Money,
        gold: Money,
        platinum: Money,
    },
    #[error("a rolling tier window needs at least one month")]
    EmptyWindow,
}

impl Default for TierPolicy {
    /// RM 500 / RM 2,000 / RM 5,000 lifetime: a starting point retailers override in config.
    fn default() -> Self {
        TierPolicy {
            silver_from: Money::from_ringgit(500),
            gold_from: Money::from_ringgit(2_000),
            platinum_from: Money::from_ringgit(5_000),
            window: TierWindow::Lifetime,
        }
    }
}

impl TierPolicy {
    pub fn validate(&self) -> Result<(), TierPolicyError> {
        let increasing = Money::ZERO < self.silver_from
            && self.silver_from < self.gold_from
            && self.gold_from < self.platinum_from;
        if !increasing {
            return Err(TierPolicyError::NotIncreasing {
                silver: self.silver_from,
                gold: self.gold_from,
                platinum: self.platinum_from,
            });
        }
        if self.window == (TierWindow::RollingMonths { months: 0 }) {
            return Err(TierPolicyError::EmptyWindow);
        }
        Ok(())
    }

    pub fn tier_for_spend(&self, spend: Money) -> Tier {
        if spend >= self.platinum_from {
            Tier::Platinum
        } else if spend >= self.gold_from {
            Tier::Gold
        } else if spend >= self.silver_from {
            Tier::Silver
        } else {
            Tier::Bronze
        }
    }

    /// The spend that counts toward the tier on `today`.
    pub fn qualifying_spend(&self, ledger: &PurchaseLedger, today: NaiveDate) -> Money {
        match self.window {
            TierWindow::Lifetime => ledger.stats().total_spent,
            TierWindow::RollingMonths { months } => {
                let since = today
                    .checked_sub_months(Months::new(months))
                    .unwrap_or(NaiveDate::MIN);
                ledger.stats_since(since).total_spent
            }
        }
    }

    pub fn tier_for(&self, ledger: &PurchaseLedger, today: NaiveDate) -> Tier {
        self.tier_for_spend(self.qualifying_spend(ledger, today))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::spending::PurchaseEvent;

    fn ledger(purchases: &[(&str, i64, NaiveDate)]) -> PurchaseLedger {
        let mut ledger = PurchaseLedger::default();
        for (id, ringgit, date) in purchases {
            ledger.apply(&PurchaseEvent {
                purchase_id: id.to_string(),
                amount: Money::from_ringgit(*ringgit),
                purchased_on: *date,
            });
        }
        ledger
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn thresholds_are_inclusive() {
        let policy = TierPolicy::default();
        assert_eq!(policy.tier_for_spend(Money::ZERO), Tier::Bronze);
        assert_eq!(policy.tier_for_spend(Money::from_sen(49_999)), Tier::Bronze);
        assert_eq!(
            policy.tier_for_spend(Money::from_ringgit(500)),
            Tier::Silver
        );
        assert_eq!(
            policy.tier_for_spend(Money::from_ringgit(2_000)),
            Tier::Gold
        );
        assert_eq!(
            policy.tier_for_spend(Money::from_ringgit(5_000)),
            Tier::Platinum
        );
        assert_eq!(
            policy.tier_for_spend(Money::from_ringgit(1_000_000)),
            Tier::Platinum
        );
    }

    #[test]
    fn rolling_window_drops_old_purchases() {
        let policy = TierPolicy {
            window: TierWindow::RollingMonths { months: 12 },
            ..TierPolicy::default()
        };
        let purchases = ledger(&[
            ("old", 4_000, day(2023, 1, 10)),
            ("new", 600, day(2024, 6, 1)),
        ]);
        assert_eq!(policy.tier_for(&purchases, day(2024, 12, 31)), Tier::Silver);
        assert_eq!(
            TierPolicy::default().tier_for(&purchases, day(2024, 12, 31)),
            Tier::Gold
        );
        // The window's first day counts: 2024-06-01 is exactly 12 months before 2025-06-01.
        assert_eq!(policy.tier_for(&purchases, day(2025, 6, 1)), Tier::Silver);
        assert_eq!(policy.tier_for(&purchases, day(2025, 6, 2)), Tier::Bronze);
    }

    #[test]
    fn recalculation_is_deterministic_and_replay_safe() {
        let policy = TierPolicy::default();
        let mut purchases = ledger(&[("a", 300, day(2025, 1, 1)), ("b", 300, day(2025, 2, 1))]);
        let today = day(2025, 3, 1);
        assert_eq!(policy.tier_for(&purchases, today), Tier::Silver);
        purchases.apply(&PurchaseEvent {
            purchase_id: "b".into(),
            amount: Money::from_ringgit(300),
            purchased_on: day(2025, 2, 1),
        });
        assert_eq!(policy.tier_for(&purchases, today), Tier::Silver);
    }

    #[test]
    fn policy_validation() {
        assert!(TierPolicy::default().validate().is_ok());
        let bad = TierPolicy {
            gold_from: Money::from_ringgit(400),
            ..TierPolicy::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(TierPolicyError::NotIncreasing { .. })
        ));
        let empty = TierPolicy {
            window: TierWindow::RollingMonths { months: 0 },
            ..TierPolicy::default()
        };
        assert_eq!(empty.validate(), Err(TierPolicyError::EmptyWindow));
    }

    #[test]
    fn tier_names_parse_case_insensitively() {
        assert_eq!("gold".parse::<Tier>(), Ok(Tier::Gold));
        assert_eq!("PLATINUM".parse::<Tier>(), Ok(Tier::Platinum));
        assert!("diamond".parse::<Tier>().is_err());
    }
}
