//! From a comparison to [`Bounds`] over one partition's posting lists.
//!
//! - Closed sets (gender, marital status, state, tier, WhatsApp status, consent, boolean and
//!   text attribute values): the reference's own `holds` is asked once per distinct value
//!   and the bitmaps of the values that pass are the exact answer.
//! - Ordered fields (counts, dates, money, instants): the comparison becomes integer
//!   intervals and the intervals unions of buckets; where a bucket is wider than a value (a
//!   ringgit for money, a UTC day for instants) the edge buckets stay undecided.
//! - Time-relative fields are compiled to absolute dates on `ctx` (age to birth dates, days
//!   since to dates), at query time, so nothing goes stale at midnight.
//! - What no bitmap answers (names, phone numbers, response rates, windowed purchase counts
//!   and sums, numbers in attributes) narrows to the contacts that can match and leaves them
//!   undecided.

use chrono::{Months, NaiveDate};
use roaring::{MultiOps, RoaringBitmap};
use serde_json::Value;

use super::attributes::{texts_where, JsonKind};
use super::bounds::Bounds;
use super::index::{day_number, instant_nanos, PartitionIndex, NANOS_PER_DAY};
use super::interval::IntervalSet;
use super::postings::{Postings, Ranged};
use crate::domain::segment::{
    holds, window_start, Actual, Comparison, EvalContext, Field, Literal, Node, Op, Operand,
    Predicate,
};

/// Days of slack around an age's birth-date bounds: ages step on birthdays, which leap
/// years and 29 February shift by a day or two; contacts born that near the bound are
/// checked exactly.
const AGE_SLACK_DAYS: i64 = 2;
/// Oldest age considered when an age range is open upwards.
const MAX_AGE_YEARS: i64 = 1_000;

impl PartitionIndex {
    pub(super) fn bounds(&self, predicate: &Predicate, ctx: &EvalContext) -> Bounds {
        match predicate.node() {
            Node::And(children) => Bounds::and(
                children.iter().map(|c| self.bounds(c, ctx)).collect(),
                &self.universe,
            ),
            Node::Or(children) => {
                Bounds::or(children.iter().map(|c| self.bounds(c, ctx)).collect())
            }
            Node::Not(child) => self.bounds(child, ctx).not(&self.universe),
            Node::Compare(c) => self.leaf(c, ctx),
        }
    }

    fn leaf(&self, c: &Comparison, ctx: &EvalContext) -> Bounds {
        let all = &self.universe;
        let today = day_number(ctx.today);
        match c.field() {
            Field::Gender => closed(&self.gender, c, |g| Actual::Gender(*g)),
            Field::MaritalStatus => closed(&self.marital_status, c, |m| Actual::MaritalStatus(*m)),
            Field::State => closed(&self.state, c, |s| Actual::State(*s)),
            Field::CustomerTier => closed(&self.tier, c, |t| Actual::Tier(*t)),
            Field::WhatsappStatus => {
                closed(&self.whatsapp_status, c, |w| Actual::WhatsappStatus(*w))
            }
            Field::MarketingOptIn => closed(&self.marketing_opt_in, c, |b| Actual::Bool(*b)),
            Field::PurchaseCount => exact(&self.purchase_count, c, integer, all),
            Field::MessageCount => exact(&self.message_count, c, integer, all),
            Field::OutboundCount => exact(&self.outbound_count, c, integer, all),
            Field::RepliedCount => exact(&self.replied_count, c, integer, all),
            Field::DateOfBirth => exact(&self.date_of_birth, c, date, all),
            Field::FirstPurchaseDate => exact(&self.first_purchase, c, date, all),
            Field::LastPurchaseDate => exact(&self.last_purchase, c, date, all),
            Field::TotalSpent => bucketed(&self.total_spent, c, sen, 100, all),
            Field::AverageSpend => bucketed(&self.average_spend, c, sen, 100, all),
            Field::CreatedAt => bucketed(&self.created_at, c, instant, NANOS_PER_DAY, all),
            Field::LastInteraction => {
                bucketed(&self.last_interaction, c, instant, NANOS_PER_DAY, all)
            }
            Field::DaysSinceLastPurchase => {
                // days = today − last purchase day, so days in [l, h] ⇔ day in [today − h, today − l].
                let Some(set) = IntervalSet::of(c, integer) else {
                    return Bounds::unknown(all);
                };
                let days = mirror(&set, today);
                exact_set(&self.last_purchase, &days)
            }
            Field::Age => self.age(c, ctx),
            Field::DaysSinceLastInteraction => self.days_since_interaction(c, ctx),
            Field::PurchaseCountInLastDays { days } => {
                self.windowed(c, integer, (1, i64::MAX), window_start(ctx.today, *days))
            }
            Field::SpendInLastDays { days } => {
                self.windowed(c, sen, (i64::MIN, i64::MAX), window_start(ctx.today, *days))
            }
            Field::ResponseRate => Bounds::unknown(&self.outbound_count.range(1, i64::MAX)),
            Field::Name | Field::PhoneNumber => Bounds::unknown(all),
            Field::Attribute(key) => self.attribute(key, c),
        }
    }

    /// Age in [l, h] on `today` ⇔ born in (today − (h + 1) years, today − l years], give or
    /// take a leap day; contacts within [`AGE_SLACK_DAYS`] of either end are undecided.
    fn age(&self, c: &Comparison, ctx: &EvalContext) -> Bounds {
        let all = &self.universe;
        let Some(set) = IntervalSet::of(c, integer) else {
            return Bounds::unknown(all);
        };
        let today = day_number(ctx.today);
        let years_back = |years: i64| -> i64 {
            let years = years.clamp(0, MAX_AGE_YEARS);
            ctx.today
                .checked_sub_months(Months::new(12 * years as u32))
                .map_or(i64::MIN / 2, day_number)
        };
        let mut sure = Vec::new();
        let mut maybe = Vec::new();
        for &(low, high) in &set.ranges {
            if high < 0 || low > MAX_AGE_YEARS {
                continue;
            }
            let latest = years_back(low);
            let earliest = if high >= MAX_AGE_YEARS {
                i64::MIN / 2
            } else {
                years_back(high.saturating_add(1)) + 1
            };
            sure.push(self.date_of_birth.range(
                earliest + AGE_SLACK_DAYS,
                (latest - AGE_SLACK_DAYS).min(today),
            ));
            maybe.push(self.date_of_birth.range(
                earliest - AGE_SLACK_DAYS,
                (latest + AGE_SLACK_DAYS).min(today),
            ));
        }
        let hit = Bounds {
            sure: MultiOps::union(sure),
            maybe: MultiOps::union(maybe),
        };
        // Only births up to today have an age.
        within(hit, set.negated, || {
            self.date_of_birth.range(i64::MIN, today)
        })
    }

    /// Days since the last message, in whole 24 h periods: days in [l, h] ⇔ the message was
    /// in (now − (h + 1) days, now − l days]. Contacts within a day of either end (and the
    /// UTC days those ends fall in) are undecided.
    fn days_since_interaction(&self, c: &Comparison, ctx: &EvalContext) -> Bounds {
        let (Some(set), Some(now)) = (IntervalSet::of(c, integer), instant_nanos(ctx.now)) else {
            return Bounds::unknown(&self.last_interaction.all());
        };
        let instants = |slack: i64| -> Vec<(i64, i64)> {
            set.ranges
                .iter()
                .map(|&(low, high)| {
                    let from =
                        now.saturating_sub(high.saturating_add(1).saturating_mul(NANOS_PER_DAY));
                    let to = now.saturating_sub(low.saturating_mul(NANOS_PER_DAY));
                    (from.saturating_sub(slack), to.saturating_add(slack))
                })
                .collect()
        };
        let hit = Bounds {
            sure: bucket_hits(
                &self.last_interaction,
                &instants(-NANOS_PER_DAY),
                NANOS_PER_DAY,
            )
            .sure,
            maybe: bucket_hits(
                &self.last_interaction,
                &instants(NANOS_PER_DAY),
                NANOS_PER_DAY,
            )
            .maybe,
        };
        within(hit, set.negated, || self.last_interaction.all())
    }

    /// Counts and sums over purchases dated on or after `since`: contacts without such a
    /// purchase have 0 (decided); the others are undecided unless every non-zero value
    /// passes.
    /// `nonzero` is the range of values a contact with a purchase in the window can have.
    fn windowed(
        &self,
        c: &Comparison,
        encode: fn(&Literal) -> Option<i64>,
        nonzero: (i64, i64),
        since: NaiveDate,
    ) -> Bounds {
        let all = &self.universe;
        let Some(set) = IntervalSet::of(c, encode) else {
            return Bounds::unknown(all);
        };
        let active = self.last_purchase.range(day_number(since), i64::MAX);
        let idle = all - &active;
        let mut sure = RoaringBitmap::new();
        let mut maybe = RoaringBitmap::new();
        if set.contains(0) {
            sure |= &idle;
            maybe |= &idle;
        }
        if set.covers(nonzero.0, nonzero.1) {
            sure |= &active;
            maybe |= &active;
        } else if set.meets(nonzero.0, nonzero.1) {
            maybe |= &active;
        }
        Bounds { sure, maybe }
    }

    fn attribute(&self, key: &str, c: &Comparison) -> Bounds {
        let all = &self.universe;
        let Some(postings) = self.attributes.key(key) else {
            return if self.attributes.full() {
                Bounds::unknown(all)
            } else {
                // No contact of this partition has the key: nothing matches (missing).
                Bounds::default()
            };
        };
        if c.op() == Op::Exists {
            return Bounds::exact(postings.present());
        }
        let literals: Vec<&Literal> = match c.operand() {
            Operand::One(l) => vec![l],
            Operand::Range(a, b) => vec![a, b],
            Operand::List(items) => items.iter().collect(),
            Operand::None => Vec::new(),
        };
        let texts = literals.iter().all(|l| matches!(l, Literal::Text(_)));
        let bools = literals.iter().all(|l| matches!(l, Literal::Bool(_)));
        if texts && matches!(c.op(), Op::Eq | Op::Ne | Op::In | Op::Contains) {
            let text_hit = postings.texts.as_ref().map(|map| {
                texts_where(map, |t| {
                    holds(c, Some(Actual::Json(&Value::String(t.to_string()))))
                })
            });
            let mut bounds = match text_hit {
                Some(hit) => Bounds::exact(hit),
                None => Bounds::unknown(&postings.kind(JsonKind::Text)),
            };
            if c.op() == Op::Contains {
                // `contains` on a list: an element equal to the text.
                let list = match postings.elements.as_ref() {
                    Some(map) => Bounds::exact(texts_where(map, |t| {
                        holds(
                            c,
                            Some(Actual::Json(&Value::Array(vec![Value::String(
                                t.to_string(),
                            )]))),
                        )
                    })),
                    None => Bounds::unknown(&postings.kind(JsonKind::List)),
                };
                bounds = Bounds::or(vec![bounds, list]);
            }
            return bounds;
        }
        if bools && matches!(c.op(), Op::Eq | Op::Ne) {
            return closed(&postings.bools, c, |b| {
                Actual::Json(if *b { &TRUE } else { &FALSE })
            });
        }
        // Numbers, ordering, booleans in lists: the contacts whose value could compare.
        Bounds::unknown(&postings.present())
    }
}

static TRUE: Value = Value::Bool(true);
static FALSE: Value = Value::Bool(false);

/// A closed set's exact answer: the values the reference accepts.
fn closed<K: PartialEq + Clone>(
    postings: &Postings<K>,
    c: &Comparison,
    actual: impl Fn(&K) -> Actual<'static>,
) -> Bounds {
    Bounds::exact(postings.union_where(|k| holds(c, Some(actual(k)))))
}

/// An ordered field whose keys are its exact values.
fn exact(
    ranged: &Ranged,
    c: &Comparison,
    encode: fn(&Literal) -> Option<i64>,
    all: &RoaringBitmap,
) -> Bounds {
    match IntervalSet::of(c, encode) {
        Some(set) => exact_set(ranged, &set),
        None => Bounds::unknown(all),
    }
}

fn exact_set(ranged: &Ranged, set: &IntervalSet) -> Bounds {
    let hit: RoaringBitmap = MultiOps::union(set.ranges.iter().map(|&(l, h)| ranged.range(l, h)));
    if set.negated {
        Bounds::exact(&ranged.all() - &hit)
    } else {
        Bounds::exact(hit)
    }
}

/// An ordered field keyed by buckets of `width` values (key = value div width).
fn bucketed(
    ranged: &Ranged,
    c: &Comparison,
    encode: fn(&Literal) -> Option<i64>,
    width: i64,
    all: &RoaringBitmap,
) -> Bounds {
    match IntervalSet::of(c, encode) {
        Some(set) => within(bucket_hits(ranged, &set.ranges, width), set.negated, || {
            ranged.all()
        }),
        None => Bounds::unknown(all),
    }
}

/// Buckets wholly inside an interval are sure; buckets it touches are maybe.
fn bucket_hits(ranged: &Ranged, ranges: &[(i64, i64)], width: i64) -> Bounds {
    let mut sure = Vec::new();
    let mut maybe = Vec::new();
    for &(low, high) in ranges {
        if low > high {
            continue;
        }
        let first_touched = low.div_euclid(width);
        let last_touched = high.div_euclid(width);
        let first_whole = first_touched + i64::from(low.rem_euclid(width) != 0);
        let last_whole = last_touched - i64::from(high.rem_euclid(width) != width - 1);
        maybe.push(ranged.range(first_touched, last_touched));
        sure.push(ranged.range(first_whole, last_whole));
    }
    Bounds {
        sure: sure.union(),
        maybe: maybe.union(),
    }
}

/// The bounds of "has a value and is (not, when `negated`) in the hit set". The hit set
/// comes from the postings of contacts that have a value, so only the complement needs the
/// (costly to build) set of contacts with one.
fn within(hit: Bounds, negated: bool, present: impl FnOnce() -> RoaringBitmap) -> Bounds {
    if negated {
        let present = present();
        Bounds {
            sure: &present - &hit.maybe,
            maybe: &present - &hit.sure,
        }
    } else {
        hit
    }
}

/// `{today − v : v in set}`.
fn mirror(set: &IntervalSet, today: i64) -> IntervalSet {
    IntervalSet {
        ranges: set
            .ranges
            .iter()
            .map(|&(l, h)| (today.saturating_sub(h), today.saturating_sub(l)))
            .collect(),
        negated: set.negated,
    }
}

fn integer(l: &Literal) -> Option<i64> {
    match l {
        Literal::Integer(v) => Some(*v),
        _ => None,
    }
}

fn date(l: &Literal) -> Option<i64> {
    match l {
        Literal::Date(d) => Some(day_number(*d)),
        _ => None,
    }
}

fn sen(l: &Literal) -> Option<i64> {
    match l {
        Literal::Money(m) => Some(m.sen()),
        _ => None,
    }
}

fn instant(l: &Literal) -> Option<i64> {
    match l {
        Literal::DateTime(t) => instant_nanos(*t),
        _ => None,
    }
}
