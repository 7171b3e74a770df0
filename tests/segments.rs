//! Segment definitions: parsing, validation errors with paths, evaluation semantics, and
//! the segment index against the reference evaluator (property tests).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};

use sembang::domain::contact::{Contact, InteractionStats, WhatsappStatus};
use sembang::domain::money::Money;
use sembang::domain::person::{Gender, MaritalStatus};
use sembang::domain::phone::PhoneNumber;
use sembang::domain::segment::{
    Comparison, EvalContext, Field, Literal, MalaysianState, Node, Op, Operand, Predicate,
    SeedFilters, SegmentDefinition, MAX_DEPTH, MAX_NODES,
};
use sembang::domain::spending::PurchaseEvent;
use sembang::domain::tier::Tier;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// Evaluation reference: 2025-06-15, 12:00 in Kuala Lumpur.
fn ctx() -> EvalContext {
    EvalContext::new(at(2025, 6, 15, 4, 0), day(2025, 6, 15))
}

fn buy(contact: &mut Contact, id: &str, sen: i64, on: NaiveDate) {
    contact.purchases.apply(&PurchaseEvent {
        purchase_id: id.to_string(),
        amount: Money::from_sen(sen),
        purchased_on: on,
    });
}

/// A contact with nothing but a phone number and a creation time.
fn bare() -> Contact {
    Contact::new(
        PhoneNumber::parse("012-345 6789").unwrap(),
        at(2024, 1, 1, 0, 0),
    )
}

/// A contact with every field set. On 2025-06-15 she is exactly 30, has spent RM 500.00 in
/// 3 purchases (today, 29 days ago, in January), answered 2 of 8 messages (rate 0.25) and
/// last wrote 1 day 23 hours ago.
fn siti() -> Contact {
    let mut c = bare();
    c.name = Some("Siti Aminah binti Ahmad".into());
    c.gender = Some(Gender::Female);
    c.date_of_birth = Some(day(1995, 6, 15));
    c.state = Some("Selangor".into());
    c.marital_status = Some(MaritalStatus::Married);
    c.whatsapp_status = WhatsappStatus::Active;
    c.marketing_opt_in = true;
    buy(&mut c, "r1", 12_050, day(2025, 6, 15));
    buy(&mut c, "r2", 7_950, day(2025, 5, 17));
    buy(&mut c, "r3", 30_000, day(2025, 1, 10));
    c.customer_tier = Tier::Gold;
    c.interactions = InteractionStats {
        message_count: 12,
        last_interaction: Some(at(2025, 6, 13, 5, 0)),
        outbound_count: 8,
        replied_count: 2,
        last_outbound: None,
    };
    c.attributes = BTreeMap::from([
        ("outlet".to_string(), json!("Mid Valley Megamall")),
        ("visits".to_string(), json!(7)),
        ("score".to_string(), json!(4.5)),
        ("vip".to_string(), json!(true)),
        ("tags".to_string(), json!(["Halal", "kids", 3])),
        ("retired".to_string(), Value::Null),
    ]);
    c
}

fn pred(value: Value) -> Predicate {
    Predicate::from_json(&value).unwrap_or_else(|e| panic!("{value}: {e}"))
}

fn matches(value: Value, contact: &Contact) -> bool {
    pred(value).matches(contact, &ctx())
}

fn cmp(field: &str, op: &str, value: Value) -> Value {
    json!({ "field": field, "op": op, "value": value })
}

/// Asserts each case `(predicate JSON, expected for siti, expected for bare)`.
fn check(cases: &[(Value, bool, bool)]) {
    let (full, empty) = (siti(), bare());
    for (json, want_full, want_empty) in cases {
        assert_eq!(matches(json.clone(), &full), *want_full, "siti: {json}");
        assert_eq!(matches(json.clone(), &empty), *want_empty, "bare: {json}");
    }
}

fn parse_error(value: Value) -> String {
    match Predicate::from_json(&value) {
        Ok(p) => panic!("{value} parsed as {p:?}"),
        Err(e) => e.to_string(),
    }
}

fn definition_error(value: Value) -> String {
    match SegmentDefinition::from_json(&value) {
        Ok(d) => panic!("{value} parsed as {d:?}"),
        Err(e) => e.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Operators on each field type
// ---------------------------------------------------------------------------------------

#[test]
fn integer_operators() {
    check(&[
        (cmp("age", "eq", json!(30)), true, false),
        (cmp("age", "eq", json!(29)), false, false),
        (cmp("age", "ne", json!(29)), true, false),
        (cmp("age", "ne", json!(30)), false, false),
        (cmp("age", "lt", json!(30)), false, false),
        (cmp("age", "lt", json!(31)), true, false),
        (cmp("age", "lte", json!(30)), true, false),
        (cmp("age", "lte", json!(29)), false, false),
        (cmp("age", "gt", json!(29)), true, false),
        (cmp("age", "gt", json!(30)), false, false),
        (cmp("age", "gte", json!(30)), true, false),
        (cmp("age", "gte", json!(31)), false, false),
        (cmp("age", "between", json!([30, 30])), true, false),
        (cmp("age", "between", json!([18, 29])), false, false),
        (cmp("age", "between", json!([30, 40])), true, false),
        (cmp("age", "in", json!([18, 30, 45])), true, false),
        (cmp("age", "in", json!([18, 45])), false, false),
        (cmp("purchase_count", "eq", json!(3)), true, false),
        (cmp("purchase_count", "eq", json!(0)), false, true),
        (cmp("message_count", "gte", json!(12)), true, false),
        (cmp("outbound_count", "eq", json!(8)), true, false),
        (cmp("replied_count", "lt", json!(3)), true, true),
    ]);
}

#[test]
fn money_operators_are_exact_to_the_sen() {
    check(&[
        (cmp("total_spent", "eq", json!("500.00")), true, false),
        (cmp("total_spent", "eq", json!(500)), true, false),
        (cmp("total_spent", "eq", json!("RM 500")), true, false),
        (cmp("total_spent", "eq", json!(0)), false, true),
        (cmp("total_spent", "ne", json!("499.99")), true, true),
        (cmp("total_spent", "gte", json!("500.00")), true, false),
        (cmp("total_spent", "gt", json!("499.99")), true, false),
        (cmp("total_spent", "gt", json!("500.00")), false, false),
        (cmp("total_spent", "lt", json!("500.01")), true, true),
        (cmp("total_spent", "lte", json!(499.99)), false, true),
        (
            cmp("total_spent", "between", json!(["0.01", 500])),
            true,
            false,
        ),
        (
            cmp("total_spent", "between", json!([500.01, "1,000"])),
            false,
            false,
        ),
        (cmp("total_spent", "in", json!([100, "500.0"])), true, false),
        // 500 / 3 = 166.666..., rounded half away from zero to the sen.
        (cmp("average_spend", "eq", json!("166.67")), true, false),
        (cmp("average_spend", "lt", json!(1000)), true, false),
        (
            json!({"field": "spend_in_last_days", "days": 30, "op": "gte", "value": 200}),
            true,
            false,
        ),
    ]);
    // 0.10 + 0.20 must equal 0.30, which floats get wrong.
    let mut c = bare();
    buy(&mut c, "a", 10, day(2025, 1, 1));
    buy(&mut c, "b", 20, day(2025, 1, 2));
    assert!(matches(cmp("total_spent", "eq", json!(0.3)), &c));
    assert!(matches(cmp("total_spent", "eq", json!("0.30")), &c));
}

#[test]
fn ratio_operators_are_exact() {
    check(&[
        (cmp("response_rate", "eq", json!(0.25)), true, false),
        (cmp("response_rate", "gte", json!(0.25)), true, false),
        (cmp("response_rate", "gt", json!(0.25)), false, false),
        (cmp("response_rate", "lt", json!(0.250001)), true, false),
        (cmp("response_rate", "between", json!([0, 1])), true, false),
        (cmp("response_rate", "in", json!([0.5, 0.25])), true, false),
        (cmp("response_rate", "ne", json!(0)), true, false),
    ]);
    // 1/3 is above 0.333333 and below 0.333334.
    let mut c = bare();
    c.interactions.outbound_count = 3;
    c.interactions.replied_count = 1;
    assert!(matches(cmp("response_rate", "gt", json!(0.333333)), &c));
    assert!(matches(cmp("response_rate", "lt", json!(0.333334)), &c));
    assert!(!matches(cmp("response_rate", "eq", json!(0.333333)), &c));
    // Replies beyond messages sent are clamped, as in InteractionStats::response_rate.
    c.interactions.replied_count = 9;
    assert!(matches(cmp("response_rate", "eq", json!(1)), &c));
}

#[test]
fn date_and_datetime_operators() {
    check(&[
        (cmp("date_of_birth", "eq", json!("1995-06-15")), true, false),
        (cmp("date_of_birth", "lt", json!("1995-06-16")), true, false),
        (
            cmp("date_of_birth", "gt", json!("1995-06-15")),
            false,
            false,
        ),
        (
            cmp(
                "date_of_birth",
                "between",
                json!(["1990-01-01", "1999-12-31"]),
            ),
            true,
            false,
        ),
        (
            cmp("date_of_birth", "in", json!(["1995-06-15"])),
            true,
            false,
        ),
        (
            cmp("first_purchase_date", "eq", json!("2025-01-10")),
            true,
            false,
        ),
        (
            cmp("last_purchase_date", "gte", json!("2025-06-15")),
            true,
            false,
        ),
        (
            cmp("created_at", "eq", json!("2024-01-01T00:00:00Z")),
            true,
            true,
        ),
        // The same instant written in Malaysian time.
        (
            cmp("created_at", "eq", json!("2024-01-01T08:00:00+08:00")),
            true,
            true,
        ),
        (
            cmp("created_at", "lt", json!("2024-01-01T07:59:59+08:00")),
            false,
            false,
        ),
        (
            cmp(
                "last_interaction",
                "gte",
                json!("2025-06-13T13:00:00+08:00"),
            ),
            true,
            false,
        ),
        (
            cmp("last_interaction", "gt", json!("2025-06-13T13:00:00+08:00")),
            false,
            false,
        ),
        (
            cmp(
                "last_interaction",
                "between",
                json!(["2025-06-01T00:00:00Z", "2025-06-30T00:00:00Z"]),
            ),
            true,
            false,
        ),
    ]);
}

#[test]
fn text_operators_ignore_case() {
    check(&[
        (
            cmp("name", "eq", json!("siti aminah BINTI ahmad")),
            true,
            false,
        ),
        (cmp("name", "eq", json!("Siti")), false, false),
        (cmp("name", "ne", json!("Siti")), true, false),
        (
            cmp("name", "ne", json!("SITI AMINAH BINTI AHMAD")),
            false,
            false,
        ),
        (cmp("name", "contains", json!("AMINAH")), true, false),
        (
            cmp("name", "contains", json!("aminah  binti")),
            false,
            false,
        ),
        (
            cmp("name", "in", json!(["Ali", "Siti Aminah binti Ahmad"])),
            true,
            false,
        ),
    ]);
    let mut c = bare();
    c.name = Some("ÉLODIE".into());
    assert!(matches(cmp("name", "eq", json!("élodie")), &c));
    assert!(matches(cmp("name", "contains", json!("lod")), &c));
}

#[test]
fn phone_operators_normalize_numbers() {
    check(&[
        (
            cmp("phone_number", "eq", json!("+60 12-345 6789")),
            true,
            true,
        ),
        (cmp("phone_number", "eq", json!("60123456789")), true, true),
        (cmp("phone_number", "ne", json!("019-876 5432")), true, true),
        (
            cmp("phone_number", "in", json!(["0198765432", "0123456789"])),
            true,
            true,
        ),
        (cmp("phone_number", "contains", json!("6012")), true, true),
        (cmp("phone_number", "contains", json!("6019")), false, false),
    ]);
}

#[test]
fn enum_operators() {
    check(&[
        (cmp("gender", "eq", json!("female")), true, false),
        (cmp("gender", "eq", json!("Perempuan")), true, false),
        (cmp("gender", "ne", json!("male")), true, false),
        (cmp("gender", "in", json!(["male", "female"])), true, false),
        (cmp("marital_status", "eq", json!("married")), true, false),
        (
            cmp("marital_status", "in", json!(["single", "divorced"])),
            false,
            false,
        ),
        (cmp("state", "eq", json!("Selangor")), true, false),
        (cmp("state", "eq", json!("selangor")), true, false),
        (cmp("state", "ne", json!("Penang")), true, false),
        (
            cmp("state", "in", json!(["Johor", "WP Kuala Lumpur"])),
            false,
            false,
        ),
        (cmp("whatsapp_status", "eq", json!("active")), true, true),
        (cmp("whatsapp_status", "ne", json!("Blocked")), true, true),
        (
            cmp("whatsapp_status", "in", json!(["blocked", "unsubscribed"])),
            false,
            false,
        ),
    ]);
    // A contact state spelled differently still names the same state; an unrecognized one is
    // present but equal to no state.
    let mut c = bare();
    c.state = Some("PENANG".into());
    assert!(matches(cmp("state", "eq", json!("Pulau Pinang")), &c));
    c.state = Some("Singapore".into());
    assert!(!matches(cmp("state", "eq", json!("Selangor")), &c));
    assert!(matches(cmp("state", "ne", json!("Selangor")), &c));
    assert!(matches(json!({"field": "state", "op": "exists"}), &c));
}

#[test]
fn tier_compares_by_tier_order() {
    check(&[
        (cmp("customer_tier", "eq", json!("Gold")), true, false),
        (cmp("customer_tier", "eq", json!("gold")), true, false),
        (cmp("customer_tier", "gt", json!("Silver")), true, false),
        (cmp("customer_tier", "gte", json!("Gold")), true, false),
        (cmp("customer_tier", "lt", json!("Platinum")), true, true),
        (cmp("customer_tier", "lt", json!("Gold")), false, true),
        (cmp("customer_tier", "lte", json!("Bronze")), false, true),
        (
            cmp("customer_tier", "between", json!(["Silver", "Gold"])),
            true,
            false,
        ),
        (
            cmp("customer_tier", "in", json!(["Bronze", "Platinum"])),
            false,
            true,
        ),
        (cmp("customer_tier", "ne", json!("Bronze")), true, false),
    ]);
    // Alphabetically "Gold" < "Platinum" < "Silver"; tier order must win.
    let mut c = bare();
    c.customer_tier = Tier::Silver;
    assert!(matches(cmp("customer_tier", "lt", json!("Gold")), &c));
    assert!(!matches(cmp("customer_tier", "gt", json!("Platinum")), &c));
}

#[test]
fn bool_operators() {
    check(&[
        (cmp("marketing_opt_in", "eq", json!(true)), true, false),
        (cmp("marketing_opt_in", "eq", json!(false)), false, true),
        (cmp("marketing_opt_in", "ne", json!(true)), false, true),
        (
            json!({"field": "marketing_opt_in", "op": "exists"}),
            true,
            true,
        ),
    ]);
}

#[test]
fn attribute_operators_follow_the_json_type() {
    check(&[
        (
            cmp("attributes.outlet", "eq", json!("mid valley megamall")),
            true,
            false,
        ),
        (
            cmp("attributes.outlet", "contains", json!("VALLEY")),
            true,
            false,
        ),
        (
            cmp("attributes.outlet", "ne", json!("Pavilion")),
            true,
            false,
        ),
        (
            cmp(
                "attributes.outlet",
                "in",
                json!(["Pavilion", "Mid Valley Megamall"]),
            ),
            true,
            false,
        ),
        (cmp("attributes.visits", "eq", json!(7)), true, false),
        (cmp("attributes.visits", "eq", json!(7.0)), true, false),
        (cmp("attributes.visits", "gt", json!(6.5)), true, false),
        (
            cmp("attributes.visits", "between", json!([7, 7])),
            true,
            false,
        ),
        (cmp("attributes.visits", "lt", json!(7)), false, false),
        (cmp("attributes.score", "gte", json!(4.5)), true, false),
        (cmp("attributes.score", "lt", json!(5)), true, false),
        (cmp("attributes.score", "in", json!([4, 4.5])), true, false),
        (cmp("attributes.vip", "eq", json!(true)), true, false),
        (cmp("attributes.vip", "ne", json!(false)), true, false),
        // Lists: `contains` looks for an element (text ignoring case, numbers exactly).
        (
            cmp("attributes.tags", "contains", json!("halal")),
            true,
            false,
        ),
        (
            cmp("attributes.tags", "contains", json!("hal")),
            false,
            false,
        ),
        (cmp("attributes.tags", "contains", json!(3.0)), true, false),
        (
            cmp("attributes.tags", "contains", json!(true)),
            false,
            false,
        ),
        (cmp("attributes.tags", "eq", json!("halal")), false, false),
        // A type that does not fit the literal never matches, `ne` included.
        (cmp("attributes.outlet", "gt", json!(1)), false, false),
        (cmp("attributes.outlet", "ne", json!(1)), false, false),
        (cmp("attributes.visits", "eq", json!("7")), false, false),
        (
            cmp("attributes.visits", "contains", json!("7")),
            false,
            false,
        ),
        (cmp("attributes.vip", "eq", json!(1)), false, false),
        // Absent and null attributes are missing.
        (cmp("attributes.retired", "ne", json!(true)), false, false),
        (
            json!({"field": "attributes.retired", "op": "exists"}),
            false,
            false,
        ),
        (
            json!({"field": "attributes.vip", "op": "exists"}),
            true,
            false,
        ),
        (cmp("attributes.nope", "ne", json!("x")), false, false),
    ]);
}

#[test]
fn attribute_keys_may_contain_dots() {
    let mut c = bare();
    c.attributes
        .insert("loyalty.level".into(), json!("platinum plus"));
    assert!(matches(
        cmp("attributes.loyalty.level", "eq", json!("Platinum Plus")),
        &c
    ));
}

#[test]
fn large_integers_compare_exactly() {
    let mut c = bare();
    c.attributes
        .insert("big".into(), json!(9_007_199_254_740_993u64));
    assert!(matches(
        cmp("attributes.big", "gt", json!(9_007_199_254_740_992.0)),
        &c
    ));
    assert!(matches(
        cmp("attributes.big", "eq", json!(9_007_199_254_740_993u64)),
        &c
    ));
    c.interactions.message_count = u64::MAX;
    assert!(matches(cmp("message_count", "gt", json!(i64::MAX)), &c));
}

// ---------------------------------------------------------------------------------------
// Derived fields with a fixed reference date
// ---------------------------------------------------------------------------------------

#[test]
fn age_is_whole_years_on_the_evaluation_date() {
    let c = siti(); // born 1995-06-15
    let on = |today: NaiveDate| EvalContext::new(at(2025, 6, 15, 4, 0), today);
    let is = |age: i64, today| pred(cmp("age", "eq", json!(age))).matches(&c, &on(today));
    assert!(is(30, day(2025, 6, 15)));
    assert!(is(29, day(2025, 6, 14)));
    assert!(is(0, day(1995, 6, 15)));
    // Born after the evaluation date: no age.
    let before_birth = on(day(1995, 6, 14));
    assert!(!pred(json!({"field": "age", "op": "exists"})).matches(&c, &before_birth));
    // Feb 29 birthdays are reached on Mar 1 in common years.
    let mut leap = bare();
    leap.date_of_birth = Some(day(2000, 2, 29));
    let age_25 = pred(cmp("age", "eq", json!(25)));
    assert!(!age_25.matches(&leap, &on(day(2025, 2, 28))));
    assert!(age_25.matches(&leap, &on(day(2025, 3, 1))));
}

#[test]
fn purchase_recency_and_windows() {
    // Purchases: today (120.50), 29 days ago (79.50), 2025-01-10 (300.00).
    check(&[
        (cmp("days_since_last_purchase", "eq", json!(0)), true, false),
        (
            json!({"field": "purchase_count_in_last_days", "days": 1, "op": "eq", "value": 1}),
            true,
            false,
        ),
        (
            json!({"field": "purchase_count_in_last_days", "days": 29, "op": "eq", "value": 1}),
            true,
            false,
        ),
        (
            json!({"field": "purchase_count_in_last_days", "days": 30, "op": "eq", "value": 2}),
            true,
            false,
        ),
        (
            json!({"field": "purchase_count_in_last_days", "days": 365, "op": "eq", "value": 3}),
            true,
            false,
        ),
        (
            json!({"field": "purchase_count_in_last_days", "days": 30, "op": "eq", "value": 0}),
            false,
            true,
        ),
        (
            json!({"field": "spend_in_last_days", "days": 29, "op": "eq", "value": "120.50"}),
            true,
            false,
        ),
        (
            json!({"field": "spend_in_last_days", "days": 30, "op": "eq", "value": "200.00"}),
            true,
            false,
        ),
        (
            json!({"field": "spend_in_last_days", "days": 30, "op": "eq", "value": 0}),
            false,
            true,
        ),
    ]);
    let mut c = bare();
    buy(&mut c, "old", 5_000, day(2025, 5, 1));
    for (days_since, holds) in [(45, true), (44, false), (46, false)] {
        assert_eq!(
            matches(cmp("days_since_last_purchase", "eq", json!(days_since)), &c),
            holds
        );
    }
    // A purchase dated after today counts in the window and gives a negative recency.
    buy(&mut c, "future", 100, day(2025, 6, 20));
    assert!(matches(
        cmp("days_since_last_purchase", "eq", json!(-5)),
        &c
    ));
    assert!(matches(
        json!({"field": "purchase_count_in_last_days", "days": 1, "op": "eq", "value": 1}),
        &c
    ));
}

#[test]
fn days_since_last_interaction_counts_whole_24_hour_periods() {
    let mut c = bare();
    let now = ctx().now; // 2025-06-15T04:00Z
    for (ago, days) in [
        (Duration::hours(23), 0),
        (Duration::hours(24), 1),
        (Duration::hours(47), 1),
        (Duration::days(30), 30),
        (Duration::hours(-1), -1),
    ] {
        c.interactions.last_interaction = Some(now - ago);
        assert!(
            matches(cmp("days_since_last_interaction", "eq", json!(days)), &c),
            "{ago:?}"
        );
    }
    assert!(matches(
        cmp("days_since_last_interaction", "eq", json!(1)),
        &siti()
    ));
}

// ---------------------------------------------------------------------------------------
// Logic and missing values
// ---------------------------------------------------------------------------------------

#[test]
fn and_or_not_nesting() {
    let woman_in_selangor = json!({"and": [
        cmp("gender", "eq", json!("female")),
        cmp("state", "eq", json!("Selangor")),
    ]});
    let big_or_recent = json!({"or": [
        cmp("total_spent", "gte", json!(1000)),
        cmp("days_since_last_purchase", "lte", json!(7)),
    ]});
    check(&[
        (woman_in_selangor.clone(), true, false),
        (big_or_recent.clone(), true, false),
        (json!({"not": woman_in_selangor.clone()}), false, true),
        (
            json!({"not": {"not": woman_in_selangor.clone()}}),
            true,
            false,
        ),
        (
            json!({"and": [woman_in_selangor.clone(), {"not": big_or_recent.clone()}]}),
            false,
            false,
        ),
        (
            json!({"or": [{"not": woman_in_selangor}, big_or_recent]}),
            true,
            true,
        ),
        (json!({"and": [cmp("age", "gte", json!(18))]}), true, false),
        (json!({"or": [cmp("age", "lt", json!(18))]}), false, false),
    ]);
}

#[test]
fn missing_values_never_match_except_exists() {
    let c = bare();
    for (field, op, value) in [
        ("age", "gte", json!(18)),
        ("age", "lt", json!(200)),
        ("age", "ne", json!(30)),
        ("age", "in", json!([30, 31])),
        ("age", "between", json!([0, 200])),
        ("gender", "ne", json!("male")),
        ("marital_status", "ne", json!("single")),
        ("state", "ne", json!("Selangor")),
        ("name", "ne", json!("x")),
        ("name", "contains", json!("a")),
        ("date_of_birth", "lt", json!("9999-12-31")),
        ("average_spend", "gte", json!(0)),
        ("first_purchase_date", "gte", json!("0001-01-01")),
        ("last_purchase_date", "ne", json!("2025-01-01")),
        ("days_since_last_purchase", "gte", json!(0)),
        ("response_rate", "gte", json!(0)),
        ("last_interaction", "lt", json!("9999-01-01T00:00:00Z")),
        ("days_since_last_interaction", "ne", json!(0)),
        ("attributes.anything", "ne", json!("x")),
    ] {
        let p = pred(cmp(field, op, value));
        assert!(!p.matches(&c, &ctx()), "{field} {op}");
        // `not` is the plain complement: it matches the missing value.
        let not_p = Predicate::not(p).unwrap();
        assert!(not_p.matches(&c, &ctx()), "not {field} {op}");
        let exists = pred(json!({"field": field, "op": "exists"}));
        assert!(!exists.matches(&c, &ctx()), "{field} exists");
        assert!(exists.matches(&siti(), &ctx()) || field == "attributes.anything");
    }
    // The documented table: `ne` asks for a value, `not eq` does not.
    assert!(!matches(cmp("age", "ne", json!(30)), &c));
    assert!(matches(json!({"not": cmp("age", "eq", json!(30))}), &c));
    assert!(matches(
        json!({"not": {"field": "age", "op": "exists"}}),
        &c
    ));
}

#[test]
fn fields_that_are_never_missing() {
    let c = bare();
    for field in [
        "customer_tier",
        "total_spent",
        "purchase_count",
        "whatsapp_status",
        "marketing_opt_in",
        "message_count",
        "outbound_count",
        "replied_count",
        "created_at",
        "phone_number",
    ] {
        assert!(
            matches(json!({"field": field, "op": "exists"}), &c),
            "{field}"
        );
    }
    for (field, days) in [
        ("purchase_count_in_last_days", 7),
        ("spend_in_last_days", 7),
    ] {
        assert!(matches(
            json!({"field": field, "days": days, "op": "exists"}),
            &c
        ));
    }
}

// ---------------------------------------------------------------------------------------
// Parse errors, each with its exact path
// ---------------------------------------------------------------------------------------

#[test]
fn the_issue_example_error() {
    let err = definition_error(json!({
        "name": "adults",
        "custom": {"and": [
            cmp("gender", "eq", json!("female")),
            cmp("state", "eq", json!("Johor")),
            cmp("age", "gte", json!("18")),
        ]}
    }));
    assert_eq!(
        err,
        "custom.and[2].value: expected a number for field \"age\" with op \"gte\", got string"
    );
}

#[test]
fn predicate_structure_errors() {
    let cases = [
        (json!([]), "(root): expected a predicate object, got array"),
        (
            json!({}),
            "(root): empty object; expected \"and\", \"or\", \"not\" or a comparison with \"field\" and \"op\"",
        ),
        (
            json!({"and": []}),
            "and: expected at least one predicate, got an empty list",
        ),
        (
            json!({"or": {"field": "age"}}),
            "or: expected a list of predicates, got object",
        ),
        (
            json!({"and": [cmp("age", "eq", json!(1))], "or": []}),
            "or: unexpected key next to \"and\"; a logical node has exactly one key",
        ),
        (
            json!({"not": cmp("age", "eq", json!(1)), "field": "age"}),
            "field: unexpected key next to \"not\"; a logical node has exactly one key",
        ),
        (
            json!({"not": [cmp("age", "eq", json!(1))]}),
            "not: expected a predicate object, got array",
        ),
        (
            json!({"and": [cmp("age", "eq", json!(1)), "age > 1"]}),
            "and[1]: expected a predicate object, got string",
        ),
        (
            json!({"field": "age", "op": "eq", "value": 1, "values": [1]}),
            "values: unknown key; expected one of: field, op, value, days (or a single and / or / not)",
        ),
        (
            json!({"op": "eq", "value": 1}),
            "(root): missing required key \"field\"",
        ),
        (
            json!({"field": "age", "value": 1}),
            "(root): missing required key \"op\"",
        ),
        (
            json!({"field": "age", "op": "eq"}),
            "(root): missing required key \"value\"",
        ),
        (
            json!({"field": 7, "op": "eq", "value": 1}),
            "field: expected a field name string, got number",
        ),
        (
            json!({"field": "age", "op": ["eq"], "value": 1}),
            "op: expected an op name string, got array",
        ),
    ];
    for (json, want) in cases {
        assert_eq!(parse_error(json.clone()), want, "{json}");
    }
}

#[test]
fn field_and_operator_errors() {
    let cases = [
        (
            cmp("agee", "eq", json!(1)),
            "field: unknown field \"agee\"; see docs/segments.md for the field catalog",
        ),
        (
            cmp("ic_number", "eq", json!("900101-14-5678")),
            "field: field \"ic_number\" is personal identity data and cannot be filtered on",
        ),
        (
            cmp("attributes.", "eq", json!(1)),
            "field: attribute fields need a key after \"attributes.\"",
        ),
        (
            cmp("age", "like", json!(1)),
            "op: unknown op \"like\"; expected one of: eq, ne, lt, lte, gt, gte, in, between, contains, exists",
        ),
        (
            cmp("gender", "gt", json!("male")),
            "op: op \"gt\" is not allowed for field \"gender\" (enum gender); allowed: eq, ne, in, exists",
        ),
        (
            cmp("age", "contains", json!(3)),
            "op: op \"contains\" is not allowed for field \"age\" (integer); allowed: eq, ne, lt, lte, gt, gte, between, in, exists",
        ),
        (
            cmp("marketing_opt_in", "in", json!([true])),
            "op: op \"in\" is not allowed for field \"marketing_opt_in\" (boolean); allowed: eq, ne, exists",
        ),
        (
            cmp("name", "lt", json!("M")),
            "op: op \"lt\" is not allowed for field \"name\" (string); allowed: eq, ne, in, contains, exists",
        ),
        (
            json!({"field": "age", "op": "exists", "value": true}),
            "value: op \"exists\" takes no \"value\"",
        ),
        (
            cmp("spend_in_last_days", "gte", json!(100)),
            "(root): field \"spend_in_last_days\" needs a \"days\" window",
        ),
        (
            json!({"field": "age", "days": 30, "op": "eq", "value": 1}),
            "days: field \"age\" takes no \"days\" window",
        ),
        (
            json!({"field": "purchase_count_in_last_days", "days": 0, "op": "gte", "value": 1}),
            "days: expected a whole number of days from 1 to 36500, got 0",
        ),
        (
            json!({"field": "purchase_count_in_last_days", "days": "30", "op": "gte", "value": 1}),
            "days: expected a whole number of days from 1 to 36500, got \"30\"",
        ),
        (
            json!({"field": "spend_in_last_days", "days": 36501, "op": "gte", "value": 1}),
            "days: expected a whole number of days from 1 to 36500, got 36501",
        ),
    ];
    for (json, want) in cases {
        assert_eq!(parse_error(json.clone()), want, "{json}");
    }
}

#[test]
fn value_errors() {
    let cases = [
        (
            cmp("age", "gte", json!(18.5)),
            "value: expected a whole number for field \"age\" with op \"gte\", got 18.5",
        ),
        (
            cmp("age", "eq", json!(18_446_744_073_709_551_615u64)),
            "value: invalid value for field \"age\" with op \"eq\": 18446744073709551615 is out of range for a whole number",
        ),
        (
            cmp("total_spent", "gte", json!("12.345")),
            "value: invalid value for field \"total_spent\" with op \"gte\": amount \"12.345\" has more than two decimal places",
        ),
        (
            cmp("total_spent", "gte", json!(true)),
            "value: expected an amount of ringgit (a number or a string like \"45.60\") for field \"total_spent\" with op \"gte\", got boolean",
        ),
        (
            cmp("response_rate", "gte", json!(1.5)),
            "value: invalid value for field \"response_rate\" with op \"gte\": 1.5 is not a decimal from 0 to 1 with at most 6 decimal places",
        ),
        (
            cmp("response_rate", "gte", json!("0.5")),
            "value: expected a number from 0 to 1 for field \"response_rate\" with op \"gte\", got string",
        ),
        (
            cmp("date_of_birth", "lt", json!("2000-02-30")),
            "value: invalid value for field \"date_of_birth\" with op \"lt\": \"2000-02-30\" is not a date YYYY-MM-DD",
        ),
        (
            cmp("date_of_birth", "lt", json!("1/2/2000")),
            "value: invalid value for field \"date_of_birth\" with op \"lt\": \"1/2/2000\" is not a date YYYY-MM-DD",
        ),
        (
            cmp("created_at", "gte", json!("2025-01-01")),
            "value: invalid value for field \"created_at\" with op \"gte\": \"2025-01-01\" is not an RFC 3339 date-time like 2025-01-31T00:00:00+08:00",
        ),
        (
            cmp("gender", "eq", json!("mael")),
            "value: invalid value for field \"gender\" with op \"eq\": \"mael\" is not a valid gender; expected one of: male, female",
        ),
        (
            cmp("customer_tier", "gte", json!("Diamond")),
            "value: invalid value for field \"customer_tier\" with op \"gte\": \"Diamond\" is not a valid tier; expected one of: Bronze, Silver, Gold, Platinum",
        ),
        (
            cmp("whatsapp_status", "eq", json!("gone")),
            "value: invalid value for field \"whatsapp_status\" with op \"eq\": \"gone\" is not a valid WhatsApp status; expected one of: active, blocked, unsubscribed",
        ),
        (
            cmp("state", "in", json!(["Johor", "Selangr"])),
            "value[1]: invalid value for field \"state\" with op \"in\": \"Selangr\" is not a valid state; expected one of: Johor, Kedah, Kelantan, Melaka, Negeri Sembilan, Pahang, Pulau Pinang, Perak, Perlis, Selangor, Terengganu, Sabah, Sarawak, WP Kuala Lumpur, WP Labuan, WP Putrajaya",
        ),
        (
            cmp("marketing_opt_in", "eq", json!("yes")),
            "value: expected a boolean for field \"marketing_opt_in\" with op \"eq\", got string",
        ),
        (
            cmp("phone_number", "eq", json!("12345")),
            "value: invalid value for field \"phone_number\" with op \"eq\": \"12345\": phone number must start with 0 (Malaysian national), 60, or + / 00 and a country code",
        ),
        (
            cmp("phone_number", "contains", json!("+60")),
            "value: invalid value for field \"phone_number\" with op \"contains\": \"+60\" is not a non-empty string of digits",
        ),
        (
            cmp("name", "contains", json!("")),
            "value: invalid value for field \"name\" with op \"contains\": contains needs a non-empty string",
        ),
        (
            cmp("name", "eq", json!(null)),
            "value: expected a string for field \"name\" with op \"eq\", got null",
        ),
        (
            cmp("attributes.visits", "gt", json!("5")),
            "value: expected a number for field \"attributes.visits\" with op \"gt\", got string",
        ),
        (
            cmp("attributes.tier", "eq", json!({"a": 1})),
            "value: expected a string, number or boolean for field \"attributes.tier\" with op \"eq\", got object",
        ),
        (
            cmp("age", "in", json!([])),
            "value: expected at least one value, got an empty list",
        ),
        (
            cmp("age", "in", json!(30)),
            "value: expected a non-empty list for field \"age\" with op \"in\", got number",
        ),
        (
            cmp("age", "in", json!([30, "31"])),
            "value[1]: expected a number for field \"age\" with op \"in\", got string",
        ),
        (
            cmp("age", "eq", json!([30])),
            "value: expected a number for field \"age\" with op \"eq\", got array",
        ),
        (
            cmp("age", "between", json!([18])),
            "value: expected a list of two bounds [low, high] for op \"between\", got a list of 1",
        ),
        (
            cmp("age", "between", json!(18)),
            "value: expected a list of two bounds [low, high] for op \"between\", got number",
        ),
        (
            cmp("age", "between", json!([18, "x"])),
            "value[1]: expected a number for field \"age\" with op \"between\", got string",
        ),
        (
            cmp("age", "between", json!([65, 18])),
            "value: between bounds are reversed: low 65 is greater than high 18",
        ),
        (
            cmp("total_spent", "between", json!(["500", 100])),
            "value: between bounds are reversed: low 500.00 is greater than high 100.00",
        ),
        (
            cmp("customer_tier", "between", json!(["Gold", "Silver"])),
            "value: between bounds are reversed: low Gold is greater than high Silver",
        ),
    ];
    for (json, want) in cases {
        assert_eq!(parse_error(json.clone()), want, "{json}");
    }
}

#[test]
fn errors_point_into_nested_trees() {
    let err = parse_error(json!({"or": [
        cmp("age", "gte", json!(18)),
        {"not": {"and": [
            cmp("gender", "eq", json!("female")),
            cmp("gender", "eq", json!("mael")),
        ]}},
    ]}));
    assert_eq!(
        err,
        "or[1].not.and[1].value: invalid value for field \"gender\" with op \"eq\": \"mael\" is not a valid gender; expected one of: male, female"
    );
    let err = parse_error(json!({"and": [{"my key": 1}]}));
    assert!(err.starts_with("and[0][\"my key\"]: unknown key"), "{err}");
}

#[test]
fn list_length_limit() {
    let ok: Vec<i64> = (0..1000).collect();
    assert!(Predicate::from_json(&cmp("age", "in", json!(ok))).is_ok());
    let too_long: Vec<i64> = (0..1001).collect();
    assert_eq!(
        parse_error(json!({"not": cmp("age", "in", json!(too_long))})),
        "not.value: list has 1001 values; at most 1000 are allowed"
    );
}

#[test]
fn invalid_json_text() {
    let err = Predicate::from_json_str("{\"field\": ").unwrap_err();
    assert!(
        err.to_string().starts_with("(root): invalid JSON: "),
        "{err}"
    );
    let err = SegmentDefinition::from_json_str("[1,").unwrap_err();
    assert!(
        err.to_string().starts_with("(root): invalid JSON: "),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Depth and size limits
// ---------------------------------------------------------------------------------------

fn nested_nots(levels: usize) -> Value {
    let mut value = cmp("age", "gte", json!(18));
    for _ in 0..levels {
        value = json!({ "not": value });
    }
    value
}

#[test]
fn depth_limit() {
    // 31 nots around a comparison: 32 levels, the maximum.
    let ok = pred(nested_nots(MAX_DEPTH as usize - 1));
    assert_eq!(ok.depth(), 32);
    let err = parse_error(nested_nots(MAX_DEPTH as usize));
    let path = vec!["not"; 32].join(".");
    assert_eq!(
        err,
        format!("{path}: predicate is nested deeper than 32 levels")
    );
    // Deeper input is cut off at the same place without descending further.
    let err = parse_error(nested_nots(120));
    assert!(err.starts_with(&format!("{path}: predicate is nested deeper")));
    // Inside a definition the path starts at `custom`.
    let err = definition_error(json!({"name": "deep", "custom": nested_nots(40)}));
    assert_eq!(
        err,
        format!("custom.{path}: predicate is nested deeper than 32 levels")
    );
}

#[test]
fn node_count_limit() {
    let leaves = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| cmp("age", "eq", json!(i)))
            .collect::<Vec<_>>()
    };
    // The `or` plus 999 comparisons: 1,000 nodes, the maximum.
    let ok = pred(json!({ "or": leaves(MAX_NODES as usize - 1) }));
    assert_eq!(ok.size(), 1000);
    // The 1,001st node (in document order) is reported.
    assert_eq!(
        parse_error(json!({ "or": leaves(5000) })),
        "or[999]: predicate has more than 1000 nodes"
    );
    let nested = json!({"and": [
        {"or": leaves(600)},
        {"not": {"or": leaves(600)}},
    ]});
    // Nodes: and(1) + or(1) + 600 + not(1) + or(1) = 604, then leaf k of the second
    // list is node 604 + k + 1, so leaf 396 is node 1,001.
    assert_eq!(
        parse_error(nested),
        "and[1].not.or[396]: predicate has more than 1000 nodes"
    );
}

// ---------------------------------------------------------------------------------------
// Definitions: seed filters, validation, round trip
// ---------------------------------------------------------------------------------------

fn definition(value: Value) -> SegmentDefinition {
    SegmentDefinition::from_json(&value).unwrap_or_else(|e| panic!("{value}: {e}"))
}

fn member(value: Value, contact: &Contact) -> bool {
    definition(value).matches(contact, &ctx())
}

#[test]
fn each_seed_filter() {
    let (full, empty) = (siti(), bare());
    let cases = [
        (json!({"name": "all"}), true, true),
        (json!({"name": "s", "min_spending": 500}), true, false),
        (json!({"name": "s", "min_spending": "500.01"}), false, false),
        (json!({"name": "s", "max_spending": "500.00"}), true, true),
        (json!({"name": "s", "max_spending": 499.99}), false, true),
        (
            json!({"name": "s", "min_spending": 100, "max_spending": 500}),
            true,
            false,
        ),
        (json!({"name": "s", "min_age": 30}), true, false),
        (json!({"name": "s", "min_age": 31}), false, false),
        (json!({"name": "s", "max_age": 30}), true, false),
        (json!({"name": "s", "max_age": 29}), false, false),
        (
            json!({"name": "s", "min_age": 18, "max_age": 35}),
            true,
            false,
        ),
        (json!({"name": "s", "gender": "female"}), true, false),
        (json!({"name": "s", "gender": ["male"]}), false, false),
        (
            json!({"name": "s", "gender": ["male", "female"]}),
            true,
            false,
        ),
        (
            json!({"name": "s", "marital_status": "married"}),
            true,
            false,
        ),
        (
            json!({"name": "s", "marital_status": ["single", "widowed"]}),
            false,
            false,
        ),
        (json!({"name": "s", "state": "selangor"}), true, false),
        (
            json!({"name": "s", "state": ["Johor", "Selangor"]}),
            true,
            false,
        ),
        (json!({"name": "s", "state": "Kuala Lumpur"}), false, false),
        (json!({"name": "s", "tier": "Gold"}), true, false),
        (
            json!({"name": "s", "tier": ["Bronze", "silver"]}),
            false,
            true,
        ),
        (
            json!({"name": "s", "custom": cmp("marketing_opt_in", "eq", json!(true))}),
            true,
            false,
        ),
        // All parts are ANDed.
        (
            json!({"name": "s", "gender": "female", "tier": "Platinum"}),
            false,
            false,
        ),
        (
            json!({
                "name": "s", "min_spending": 100, "min_age": 18, "gender": "female",
                "marital_status": "married", "state": "Selangor", "tier": ["Gold", "Platinum"],
                "custom": cmp("response_rate", "gte", json!(0.2)),
            }),
            true,
            false,
        ),
        // JSON null counts as absent.
        (
            json!({"name": "s", "gender": null, "custom": null}),
            true,
            true,
        ),
    ];
    for (json, want_full, want_empty) in cases {
        assert_eq!(member(json.clone(), &full), want_full, "siti: {json}");
        assert_eq!(member(json.clone(), &empty), want_empty, "bare: {json}");
    }
}

#[test]
fn definition_validation_errors() {
    let cases = [
        (json!("x"), "(root): expected a segment definition object, got string"),
        (json!({}), "(root): missing required key \"name\""),
        (json!({"name": 5}), "name: expected a string, got number"),
        (json!({"name": "  "}), "name: segment name must not be blank"),
        (
            json!({"name": "x".repeat(201)}),
            "name: segment name is 201 characters long; at most 200 are allowed",
        ),
        (
            json!({"name": "s", "min_spend": 5}),
            "min_spend: unknown key; expected one of: name, min_spending, max_spending, min_age, max_age, gender, marital_status, state, tier, custom",
        ),
        (
            json!({"name": "s", "min_spending": 500, "max_spending": "100"}),
            "min_spending: min_spending 500.00 is greater than max_spending 100.00",
        ),
        (
            json!({"name": "s", "min_spending": "abc"}),
            "min_spending: invalid value for key \"min_spending\": amount \"abc\" is not a decimal number of ringgit",
        ),
        (
            json!({"name": "s", "max_spending": [1]}),
            "max_spending: expected an amount of ringgit (a number or a string like \"45.60\") for key \"max_spending\", got array",
        ),
        (
            json!({"name": "s", "min_age": 40, "max_age": 30}),
            "min_age: min_age 40 is greater than max_age 30",
        ),
        (
            json!({"name": "s", "min_age": -1}),
            "min_age: age must be a whole number from 0 to 150, got -1",
        ),
        (
            json!({"name": "s", "max_age": 151}),
            "max_age: age must be a whole number from 0 to 150, got 151",
        ),
        (
            json!({"name": "s", "max_age": 30.5}),
            "max_age: age must be a whole number from 0 to 150, got 30.5",
        ),
        (
            json!({"name": "s", "min_age": "18"}),
            "min_age: expected a number for key \"min_age\", got string",
        ),
        (
            json!({"name": "s", "gender": "mael"}),
            "gender: invalid value for key \"gender\": \"mael\" is not a valid gender; expected one of: male, female",
        ),
        (
            json!({"name": "s", "marital_status": ["single", "engaged"]}),
            "marital_status[1]: invalid value for key \"marital_status\": \"engaged\" is not a valid marital status; expected one of: single, married, divorced, widowed",
        ),
        (
            json!({"name": "s", "state": []}),
            "state: expected at least one value, got an empty list",
        ),
        (
            json!({"name": "s", "tier": [1]}),
            "tier[0]: expected a string for key \"tier\", got number",
        ),
        (
            json!({"name": "s", "custom": []}),
            "custom: expected a predicate object, got array",
        ),
        (
            json!({"name": "s", "custom": {"not": cmp("age", "gte", json!(true))}}),
            "custom.not.value: expected a number for field \"age\" with op \"gte\", got boolean",
        ),
    ];
    for (json, want) in cases {
        assert_eq!(definition_error(json.clone()), want, "{json}");
    }
}

#[test]
fn programmatic_definitions_are_validated_too() {
    let seed = SeedFilters {
        min_age: Some(50),
        max_age: Some(20),
        ..SeedFilters::default()
    };
    let err = SegmentDefinition::new("x", seed, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "min_age: min_age 50 is greater than max_age 20"
    );
    let seed = SeedFilters {
        min_age: Some(200),
        ..SeedFilters::default()
    };
    assert!(SegmentDefinition::new("x", seed, None).is_err());
    assert!(SegmentDefinition::new("", SeedFilters::default(), None).is_err());
}

#[test]
fn definition_round_trips_through_canonical_json() {
    let original = json!({
        "name": "Selangor mums, RM100+ in 90 days",
        "min_spending": "RM 1,000",
        "max_spending": 25000.5,
        "min_age": 25,
        "max_age": 45,
        "gender": "Perempuan",
        "marital_status": ["berkahwin", "Divorced"],
        "state": ["selangor", "W.P. Kuala Lumpur"],
        "tier": ["gold", "PLATINUM"],
        "custom": {"and": [
            {"field": "spend_in_last_days", "days": 90, "op": "gte", "value": 100},
            {"or": [
                cmp("attributes.tags", "contains", json!("kids")),
                cmp("attributes.children", "gt", json!(0)),
            ]},
            {"not": cmp("whatsapp_status", "in", json!(["blocked", "unsubscribed"]))},
            cmp("response_rate", "between", json!([0.1, 1])),
            cmp("last_interaction", "gte", json!("2025-03-01T00:00:00+08:00")),
            cmp("phone_number", "ne", json!("+60 12-345 6789")),
            cmp("date_of_birth", "lt", json!("2000-01-01")),
            {"field": "name", "op": "exists"},
            cmp("phone_number", "ne", json!("0065 9123 4567")),
        ]},
    });
    let parsed = definition(original);
    let canonical = parsed.to_json();
    // Canonical spellings.
    assert_eq!(canonical["min_spending"], json!("1000.00"));
    assert_eq!(canonical["max_spending"], json!("25000.50"));
    assert_eq!(canonical["gender"], json!("female"));
    assert_eq!(canonical["marital_status"], json!(["married", "divorced"]));
    assert_eq!(canonical["state"], json!(["Selangor", "WP Kuala Lumpur"]));
    assert_eq!(canonical["tier"], json!(["Gold", "Platinum"]));
    assert_eq!(
        canonical["custom"]["and"][4]["value"],
        json!("2025-02-28T16:00:00Z")
    );
    assert_eq!(canonical["custom"]["and"][5]["value"], json!("60123456789"));
    // Another country's number keeps its +, which written forms need.
    assert_eq!(canonical["custom"]["and"][8]["value"], json!("+6591234567"));
    assert_eq!(
        canonical["custom"]["and"][0],
        json!({"field": "spend_in_last_days", "days": 90, "op": "gte", "value": "100.00"})
    );
    // parse → serialize → parse gives an equal definition, through serde and text too.
    assert_eq!(definition(canonical.clone()), parsed);
    let text = serde_json::to_string(&parsed).unwrap();
    let back: SegmentDefinition = serde_json::from_str(&text).unwrap();
    assert_eq!(back, parsed);
    assert_eq!(back.to_json(), canonical);
}

#[test]
fn serde_deserialize_reports_the_path() {
    let err = serde_json::from_value::<SegmentDefinition>(json!({
        "name": "x", "custom": {"or": [cmp("gender", "eq", json!("mael"))]}
    }))
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("custom.or[0].value: invalid value for field \"gender\""),
        "{err}"
    );
    let err =
        serde_json::from_str::<Predicate>("{\"field\": \"age\", \"op\": \"gt\"}").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("(root): missing required key \"value\""),
        "{err}"
    );
}

#[test]
fn conditions_spell_the_definition_as_predicates() {
    let d = definition(json!({
        "name": "x", "min_spending": 100, "max_age": 40, "gender": "female",
        "state": ["Johor", "Melaka"], "custom": cmp("age", "gte", json!(18)),
    }));
    let rendered: Vec<Value> = d.conditions().iter().map(Predicate::to_json).collect();
    assert_eq!(
        rendered,
        vec![
            cmp("total_spent", "gte", json!("100.00")),
            cmp("age", "lte", json!(40)),
            cmp("gender", "eq", json!("female")),
            cmp("state", "in", json!(["Johor", "Melaka"])),
            cmp("age", "gte", json!(18)),
        ]
    );
    assert!(definition(json!({"name": "all"})).conditions().is_empty());
}

#[test]
fn programmatic_trees_match_parsed_ones() {
    let comparison = Comparison::new(
        Field::SpendInLastDays { days: 30 },
        Op::Gte,
        Operand::One(Literal::Money(Money::from_ringgit(200))),
    )
    .unwrap();
    let built = Predicate::and(vec![
        Predicate::compare(comparison),
        Predicate::compare(
            Comparison::new(
                Field::State,
                Op::Eq,
                Operand::One(Literal::State(MalaysianState::Selangor)),
            )
            .unwrap(),
        ),
    ])
    .unwrap();
    let parsed = pred(json!({"and": [
        {"field": "spend_in_last_days", "days": 30, "op": "gte", "value": "200"},
        cmp("state", "eq", json!("Selangor")),
    ]}));
    assert_eq!(built, parsed);
    assert!(matches!(parsed.node(), Node::And(children) if children.len() == 2));
    assert!(built.matches(&siti(), &ctx()));
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

fn arb_attribute() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-20i64..20).prop_map(Value::from),
        (-40i32..40).prop_map(|h| Value::from(f64::from(h) / 4.0)),
        prop::sample::select(vec!["Halal", "kids", "VIP", "", "mid valley"]).prop_map(Value::from),
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec!["halal", "Kids"]).prop_map(Value::from),
                (0i64..4).prop_map(Value::from),
            ],
            0..4
        )
        .prop_map(Value::Array),
    ]
}

prop_compose! {
    fn arb_contact()(
        dob in prop::option::of(-40_000i64..2_000),
        gender in prop::option::of(prop::sample::select(vec![Gender::Male, Gender::Female])),
        state in prop::option::of(prop::sample::select(vec!["Selangor", "penang", "Johor", "Singapore", ""])),
        marital in prop::option::of(prop::sample::select(vec![
            MaritalStatus::Single, MaritalStatus::Married, MaritalStatus::Divorced, MaritalStatus::Widowed,
        ])),
        status in prop::sample::select(vec![
            WhatsappStatus::Active, WhatsappStatus::Blocked, WhatsappStatus::Unsubscribed,
        ]),
        opt_in in any::<bool>(),
        purchases in prop::collection::vec((-5_000i64..100_000, -400i64..10), 0..8),
        tier in prop::sample::select(Tier::ALL.to_vec()),
        messages in 0u64..50,
        last_seen in prop::option::of(-5_000_000i64..200_000),
        outbound in 0u64..10,
        replied in 0u64..12,
        name in prop::option::of(prop::sample::select(vec!["Siti", "AHMAD bin Ali", "Tan Mei Ling", ""])),
        attributes in prop::collection::btree_map(
            prop::sample::select(vec!["outlet", "visits", "tags", "vip"]).prop_map(String::from),
            arb_attribute(),
            0..4,
        ),
    ) -> Contact {
        let today = ctx().today;
        let mut c = bare();
        c.date_of_birth = dob.map(|d| today + Duration::days(d));
        c.gender = gender;
        c.state = state.map(String::from);
        c.marital_status = marital;
        c.whatsapp_status = status;
        c.marketing_opt_in = opt_in;
        for (i, (sen, offset)) in purchases.into_iter().enumerate() {
            buy(&mut c, &format!("p{i}"), sen, today + Duration::days(offset));
        }
        c.customer_tier = tier;
        c.interactions = InteractionStats {
            message_count: messages,
            last_interaction: last_seen.map(|s| ctx().now - Duration::seconds(s)),
            outbound_count: outbound,
            replied_count: replied,
            last_outbound: None,
        };
        c.name = name.map(String::from);
        c.attributes = attributes;
        c
    }
}

const ORDERED_OPS: [&str; 6] = ["eq", "ne", "lt", "lte", "gt", "gte"];

fn ordered_leaf(field: &'static str, values: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    let single = (prop::sample::select(ORDERED_OPS.to_vec()), values.clone())
        .prop_map(move |(op, v)| cmp(field, op, v));
    let list = prop::collection::vec(values.clone(), 1..4)
        .prop_map(move |vs| cmp(field, "in", Value::Array(vs)));
    let exists = Just(json!({"field": field, "op": "exists"}));
    prop_oneof![4 => single, 1 => list, 1 => exists].boxed()
}

fn arb_leaf() -> BoxedStrategy<Value> {
    let money = (-100i64..2_000).prop_map(|r| json!(format!("{}.{:02}", r, r.rem_euclid(7) * 13)));
    let ages = (0i64..100).prop_map(Value::from);
    let days = (-10i64..500).prop_map(Value::from);
    let counts = (0i64..10).prop_map(Value::from);
    let ratios = (0u32..=8).prop_map(|e| json!(f64::from(e) / 8.0));
    let dates =
        (-40_000i64..100).prop_map(|d| json!((ctx().today + Duration::days(d)).to_string()));
    let between_ages = (0i64..100, 0i64..30)
        .prop_map(|(low, span)| cmp("age", "between", json!([low, low + span])));
    let between_money = (0i64..2_000, 0i64..2_000)
        .prop_map(|(low, span)| cmp("total_spent", "between", json!([low, low + span])));
    let tiers =
        prop::sample::select(vec!["Bronze", "Silver", "Gold", "Platinum"]).prop_map(Value::from);
    let enum_leaf =
        |field: &'static str, names: Vec<&'static str>| {
            let values = prop::sample::select(names);
            prop_oneof![
                (prop::sample::select(vec!["eq", "ne"]), values.clone())
                    .prop_map(move |(op, v)| cmp(field, op, json!(v))),
                prop::collection::vec(values, 1..3).prop_map(move |vs| cmp(field, "in", json!(vs))),
                Just(json!({"field": field, "op": "exists"})),
            ]
        };
    let window = (
        1u32..400,
        prop::sample::select(ORDERED_OPS.to_vec()),
        0i64..5,
        any::<bool>(),
    )
        .prop_map(|(days, op, n, spend)| {
            if spend {
                json!({"field": "spend_in_last_days", "days": days, "op": op, "value": n * 100})
            } else {
                json!({"field": "purchase_count_in_last_days", "days": days, "op": op, "value": n})
            }
        });
    let text = (
        prop::sample::select(vec!["eq", "ne", "contains"]),
        prop::sample::select(vec!["siti", "Ahmad", "mei", "a"]),
    )
        .prop_map(|(op, v)| cmp("name", op, json!(v)));
    let attribute = (
        prop::sample::select(vec!["outlet", "visits", "tags", "vip", "missing"]),
        prop::sample::select(vec!["eq", "ne", "lt", "gte", "contains", "exists", "in"]),
        arb_attribute().prop_filter("scalar", |v| {
            !v.is_null() && !v.is_array() && v != &json!("")
        }),
    )
        .prop_map(|(key, op, v)| {
            let field = format!("attributes.{key}");
            match op {
                "exists" => json!({"field": field, "op": "exists"}),
                "lt" | "gte" if !v.is_number() => json!({"field": field, "op": op, "value": 1}),
                "in" => json!({"field": field, "op": "in", "value": [v, 2]}),
                _ => json!({"field": field, "op": op, "value": v}),
            }
        });
    prop_oneof![
        ordered_leaf("age", ages.boxed()),
        ordered_leaf("total_spent", money.clone().boxed()),
        ordered_leaf("average_spend", money.boxed()),
        ordered_leaf("days_since_last_purchase", days.clone().boxed()),
        ordered_leaf("days_since_last_interaction", days.boxed()),
        ordered_leaf("purchase_count", counts.clone().boxed()),
        ordered_leaf("replied_count", counts.boxed()),
        ordered_leaf("response_rate", ratios.boxed()),
        ordered_leaf("date_of_birth", dates.clone().boxed()),
        ordered_leaf("last_purchase_date", dates.boxed()),
        ordered_leaf("customer_tier", tiers.boxed()),
        between_ages,
        between_money,
        enum_leaf("gender", vec!["male", "female"]),
        enum_leaf("state", vec!["Selangor", "Pulau Pinang", "Johor"]),
        enum_leaf("marital_status", vec!["single", "married"]),
        enum_leaf("whatsapp_status", vec!["active", "blocked"]),
        window,
        text,
        attribute,
        any::<bool>().prop_map(|b| cmp("marketing_opt_in", "eq", json!(b))),
    ]
    .boxed()
}

fn arb_tree() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(5, 40, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|c| json!({ "and": c })),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|c| json!({ "or": c })),
            inner.prop_map(|c| json!({ "not": c })),
        ]
    })
}

/// Checks, node by node, that `and` is all, `or` is any and `not` is the complement.
fn check_logic(p: &Predicate, contact: &Contact, ctx: &EvalContext) -> bool {
    let result = p.matches(contact, ctx);
    match p.node() {
        Node::And(children) | Node::Or(children) => {
            // Every child is checked, not only up to the first decisive one.
            let results: Vec<bool> = children
                .iter()
                .map(|c| check_logic(c, contact, ctx))
                .collect();
            let expected = if matches!(p.node(), Node::And(_)) {
                results.iter().all(|r| *r)
            } else {
                results.iter().any(|r| *r)
            };
            assert_eq!(result, expected);
        }
        Node::Not(child) => assert_eq!(result, !check_logic(child, contact, ctx)),
        Node::Compare(_) => {}
    }
    result
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_trees_evaluate_and_not_is_the_complement(json in arb_tree(), contact in arb_contact()) {
        let p = Predicate::from_json(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        let ctx = ctx();
        let result = check_logic(&p, &contact, &ctx);
        let negated = Predicate::not(p.clone()).unwrap();
        prop_assert_eq!(negated.matches(&contact, &ctx), !result);
        let via_json = pred(json!({ "not": json }));
        prop_assert_eq!(via_json.matches(&contact, &ctx), !result);
    }

    #[test]
    fn random_trees_round_trip(json in arb_tree()) {
        let p = pred(json);
        prop_assert_eq!(&Predicate::from_json(&p.to_json()).unwrap(), &p);
        let text = serde_json::to_string(&p).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Predicate>(&text).unwrap(), &p);
    }

    #[test]
    fn seed_spending_equals_a_between_predicate(
        contact in arb_contact(),
        low_edge in -2i64..3,
        high_edge in -2i64..3,
        low_random in -1_000i64..300_000,
        span in 0i64..300_000,
        has_min in any::<bool>(),
        has_max in any::<bool>(),
    ) {
        // Bounds on or next to the contact's exact total half the time, so the inclusive edges
        // are exercised, and anywhere otherwise.
        let spent = contact.spending().total_spent;
        let near = |edge: i64| (edge.abs() <= 1).then(|| spent + Money::from_sen(edge));
        let min = near(low_edge).unwrap_or(Money::from_sen(low_random));
        let max = near(high_edge).unwrap_or(Money::from_sen(low_random + span)).max(min);
        let mut seed = json!({"name": "seed"});
        let custom = match (has_min, has_max) {
            (true, true) => cmp("total_spent", "between", json!([min.to_string(), max.to_string()])),
            (true, false) => cmp("total_spent", "gte", json!(min.to_string())),
            (false, true) => cmp("total_spent", "lte", json!(max.to_string())),
            (false, false) => json!({"field": "total_spent", "op": "exists"}),
        };
        if has_min { seed["min_spending"] = json!(min.to_string()); }
        if has_max { seed["max_spending"] = json!(max.to_string()); }
        let seeded = definition(seed).matches(&contact, &ctx());
        let custom = definition(json!({"name": "custom", "custom": custom})).matches(&contact, &ctx());
        prop_assert_eq!(seeded, custom);
        prop_assert_eq!(seeded, (!has_min || spent >= min) && (!has_max || spent <= max));
    }

    #[test]
    fn definition_matches_all_its_conditions(
        contact in arb_contact(),
        min_age in prop::option::of(0u32..60),
        age_span in 0u32..60,
        has_max_age in any::<bool>(),
        genders in prop::sample::subsequence(vec![Gender::Male, Gender::Female], 0..=2),
        states in prop::sample::subsequence(vec![MalaysianState::Selangor, MalaysianState::PulauPinang, MalaysianState::Johor], 0..=3),
        marital in prop::sample::subsequence(vec![MaritalStatus::Single, MaritalStatus::Married], 0..=2),
        tiers in prop::sample::subsequence(Tier::ALL.to_vec(), 0..=4),
        custom in prop::option::of(arb_tree()),
    ) {
        let seed = SeedFilters {
            min_spending: None,
            max_spending: Some(Money::from_ringgit(600)),
            min_age,
            max_age: has_max_age.then(|| min_age.unwrap_or(0) + age_span),
            gender: genders,
            marital_status: marital,
            state: states,
            tier: tiers,
        };
        let custom = custom.map(pred);
        let d = SegmentDefinition::new("p", seed, custom).unwrap();
        let ctx = ctx();
        let all = d.conditions().iter().all(|p| p.matches(&contact, &ctx));
        prop_assert_eq!(d.matches(&contact, &ctx), all);
        // And the canonical JSON reads back equal.
        prop_assert_eq!(&definition(d.to_json()), &d);
    }

    #[test]
    fn recency_agrees_with_the_purchase_window(
        contact in arb_contact(),
        random_days in 1i64..500,
        edge in -1i64..2,
        at_edge in any::<bool>(),
    ) {
        // Half the time the window ends on, just before or just after the latest purchase.
        let last = contact.spending().last_purchase_on;
        let days = match last {
            Some(last) if at_edge => (ctx().today - last).num_days() + 1 + edge,
            _ => random_days,
        }
        .max(1);
        let recent = pred(cmp("days_since_last_purchase", "lte", json!(days - 1)));
        let in_window = pred(json!({"field": "purchase_count_in_last_days", "days": days, "op": "gte", "value": 1}));
        let spend = pred(json!({"field": "spend_in_last_days", "days": days, "op": "eq", "value": 0}));
        let since = ctx().today - Duration::days(days - 1);
        let expected = contact.purchases.stats_since(since);
        prop_assert_eq!(recent.matches(&contact, &ctx()), in_window.matches(&contact, &ctx()));
        prop_assert_eq!(in_window.matches(&contact, &ctx()), expected.purchase_count >= 1);
        prop_assert_eq!(spend.matches(&contact, &ctx()), expected.total_spent == Money::ZERO);
    }
}

#[test]
fn documentation_examples_parse() {
    let doc = include_str!("../docs/segments.md");
    let blocks: Vec<&str> = doc
        .split("```json")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 4);
    for block in blocks {
        let d = SegmentDefinition::from_json_str(block).unwrap_or_else(|e| panic!("{block}: {e}"));
        assert_eq!(definition(d.to_json()), d);
    }
    // The first example: a Selangor mum who buys often and has kids.
    let first = doc
        .split("```json")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let first = SegmentDefinition::from_json_str(first).unwrap();
    let mut c = siti();
    c.attributes.insert("tags".into(), json!(["kids"]));
    assert!(first.matches(&c, &ctx()));
    c.whatsapp_status = WhatsappStatus::Blocked;
    assert!(!first.matches(&c, &ctx()));
}

#[test]
fn catalog_optional_flags_match_evaluation() {
    use sembang::domain::segment::CATALOG;
    assert_eq!(CATALOG.len(), 25);
    for info in CATALOG {
        let mut exists = json!({"field": info.name, "op": "exists"});
        if info.windowed {
            exists["days"] = json!(30);
        }
        let p = pred(exists);
        assert!(p.matches(&siti(), &ctx()), "{} on siti", info.name);
        // The bare contact lacks every optional field and has every other one.
        assert_eq!(
            p.matches(&bare(), &ctx()),
            !info.optional,
            "{} on bare",
            info.name
        );
    }
}

// ---------------------------------------------------------------------------------------
// The segment index agrees with the reference evaluator
// ---------------------------------------------------------------------------------------

mod index {
    use super::*;
    use sembang::segments::{Applied, PartitionIndex};
    use sembang::topics::contacts::ContactState;

    fn numbered(mut contact: Contact, i: usize) -> Contact {
        contact.phone_number = PhoneNumber::parse(&format!("+6011{:08}", i)).unwrap();
        contact
    }

    fn arb_definition() -> impl Strategy<Value = SegmentDefinition> {
        (
            prop::option::of(0i64..3_000),
            prop::option::of(0i64..3_000),
            prop::option::of(0u32..70),
            prop::option::of(0u32..70),
            prop::sample::subsequence(vec![Gender::Male, Gender::Female], 0..=2),
            prop::sample::subsequence(
                vec![
                    MalaysianState::Selangor,
                    MalaysianState::PulauPinang,
                    MalaysianState::Johor,
                ],
                0..=3,
            ),
            prop::sample::subsequence(vec![MaritalStatus::Single, MaritalStatus::Married], 0..=2),
            prop::sample::subsequence(Tier::ALL.to_vec(), 0..=4),
            prop::option::of(arb_tree()),
        )
            .prop_map(
                |(min_s, max_s, min_a, max_a, gender, state, marital, tier, custom)| {
                    let (min_s, max_s) = match (min_s, max_s) {
                        (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
                        other => other,
                    };
                    let (min_a, max_a) = match (min_a, max_a) {
                        (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
                        other => other,
                    };
                    let seed = SeedFilters {
                        // Sen that are not whole ringgit put the bound inside a money bucket.
                        min_spending: min_s.map(|r| Money::from_sen(r * 100 + r % 7 * 11)),
                        max_spending: max_s.map(|r| Money::from_sen(r * 100 + r % 5 * 19)),
                        min_age: min_a,
                        max_age: max_a,
                        gender,
                        marital_status: marital,
                        state,
                        tier,
                    };
                    SegmentDefinition::new("p", seed, custom.map(pred)).unwrap()
                },
            )
    }

    fn reference(
        contacts: &BTreeMap<String, Contact>,
        d: &SegmentDefinition,
        ctx: &EvalContext,
    ) -> Vec<String> {
        contacts
            .iter()
            .filter(|(_, c)| d.matches(c, ctx))
            .map(|(phone, _)| phone.clone())
            .collect()
    }

    fn indexed(index: &PartitionIndex, d: &SegmentDefinition, ctx: &EvalContext) -> Vec<String> {
        let mut phones: Vec<String> = index
            .members(d, ctx)
            .iter()
            .map(|id| index.row(id).unwrap().phone_number.as_str().to_string())
            .collect();
        phones.sort();
        phones
    }

    /// Comparisons that put a contact's own values on the boundary: each ordered field
    /// against the value, one unit below and one above, with every ordering operator, so
    /// bucket edges, birthdays and window ends are hit, not just sampled.
    fn edge_leaves(c: &Contact, ctx: &EvalContext) -> Vec<Value> {
        let mut out = Vec::new();
        let mut around = |field: &str, days: Option<i64>, values: Vec<Value>| {
            for v in &values {
                for op in ORDERED_OPS {
                    let mut leaf = cmp(field, op, v.clone());
                    if let Some(d) = days {
                        leaf["days"] = json!(d);
                    }
                    out.push(leaf);
                }
            }
            let mut between = cmp(
                field,
                "between",
                json!([values[0], values[values.len() - 1]]),
            );
            if let Some(d) = days {
                between["days"] = json!(d);
            }
            out.push(between);
        };
        let ints = |v: i64| vec![json!(v - 1), json!(v), json!(v + 1)];
        let money = |sen: i64| {
            (sen - 1..=sen + 1)
                .map(|s| json!(Money::from_sen(s).to_string()))
                .collect::<Vec<_>>()
        };
        let dates = |d: NaiveDate| {
            vec![
                json!((d - Duration::days(1)).to_string()),
                json!(d.to_string()),
                json!((d + Duration::days(1)).to_string()),
            ]
        };
        let instants = |t: DateTime<Utc>| {
            [-86_400i64, -1, 0, 1, 86_400]
                .iter()
                .map(|s| json!((t + Duration::seconds(*s)).to_rfc3339()))
                .collect::<Vec<_>>()
        };
        let stats = c.spending();
        around("total_spent", None, money(stats.total_spent.sen()));
        if stats.purchase_count > 0 {
            around("average_spend", None, money(stats.average_spend.sen()));
        }
        around("purchase_count", None, ints(stats.purchase_count as i64));
        around(
            "message_count",
            None,
            ints(c.interactions.message_count as i64),
        );
        around("created_at", None, instants(c.created_at));
        if let Some(age) = c.age_on(ctx.today) {
            around("age", None, ints(i64::from(age)));
        }
        if let Some(dob) = c.date_of_birth {
            around("date_of_birth", None, dates(dob));
        }
        if let Some(last) = stats.last_purchase_on {
            let since = (ctx.today - last).num_days();
            around("last_purchase_date", None, dates(last));
            around("days_since_last_purchase", None, ints(since));
            for days in [since, since + 1, since + 2]
                .into_iter()
                .filter(|d| (1..=36_500).contains(d))
            {
                let window = c
                    .purchases
                    .stats_since(ctx.today - Duration::days(days - 1));
                around(
                    "purchase_count_in_last_days",
                    Some(days),
                    ints(window.purchase_count as i64),
                );
                around(
                    "spend_in_last_days",
                    Some(days),
                    money(window.total_spent.sen()),
                );
            }
        }
        if let Some(t) = c.interactions.last_interaction {
            around("last_interaction", None, instants(t));
            let days = (ctx.now - t).num_seconds().div_euclid(86_400);
            around("days_since_last_interaction", None, ints(days));
        }
        out
    }

    fn edge_definitions(c: &Contact, ctx: &EvalContext) -> Vec<SegmentDefinition> {
        let mut out = Vec::new();
        for leaf in edge_leaves(c, ctx) {
            // A window past the limit is a validation error, not a query.
            let both = json!({"or": [leaf.clone(), {"not": leaf.clone()}]});
            for custom in [leaf, both] {
                if let Ok(d) =
                    SegmentDefinition::from_json(&json!({"name": "edge", "custom": custom}))
                {
                    out.push(d);
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(192))]

        /// Random contacts (missing values, purchase histories, attributes of every JSON
        /// kind), changed and erased after indexing, and random definitions (seed filters and
        /// custom trees of every operator) on a random day and time: the index selects
        /// exactly the reference's members.
        #[test]
        fn the_index_selects_exactly_the_reference_members(
            first in prop::collection::vec(arb_contact(), 0..40),
            changes in prop::collection::vec((0usize..40, prop::option::of(arb_contact())), 0..12),
            definitions in prop::collection::vec(arb_definition(), 1..4),
            shift_days in -2i64..3,
            shift_seconds in 0i64..86_400,
            edges in prop::bool::weighted(0.25),
        ) {
            let mut index = PartitionIndex::default();
            let mut contacts = BTreeMap::new();
            for (i, c) in first.into_iter().enumerate() {
                let c = numbered(c, i);
                prop_assert_eq!(index.apply(&c.phone_number, Some(&ContactState::from(&c))), Applied::Inserted);
                contacts.insert(c.phone_number.as_str().to_string(), c);
            }
            for (step, (i, change)) in changes.into_iter().enumerate() {
                let phone = numbered(bare(), i).phone_number;
                match change {
                    Some(c) => {
                        let mut c = numbered(c, i);
                        c.updated_at += Duration::seconds(step as i64 + 1);
                        index.apply(&phone, Some(&ContactState::from(&c)));
                        contacts.insert(phone.as_str().to_string(), c);
                    }
                    None => {
                        index.apply(&phone, None);
                        contacts.remove(phone.as_str());
                    }
                }
            }
            prop_assert_eq!(index.len() as usize, contacts.len());
            let base = ctx();
            let ctx = EvalContext::new(
                base.now + Duration::days(shift_days) + Duration::seconds(shift_seconds),
                base.today + Duration::days(shift_days),
            );
            let mut definitions = definitions;
            if edges {
                // On a quarter of the cases: every boundary of two contacts' own values.
                for c in contacts.values().take(2) {
                    definitions.extend(edge_definitions(c, &ctx));
                }
            }
            for d in &definitions {
                prop_assert_eq!(indexed(&index, d, &ctx), reference(&contacts, d, &ctx), "{}", d.to_json());
            }
        }
    }

    #[test]
    fn an_older_version_is_ignored_and_a_tombstone_erases() {
        let mut index = PartitionIndex::default();
        let mut c = numbered(siti(), 1);
        let all =
            SegmentDefinition::from_json(&json!({"name": "women", "gender": "female"})).unwrap();
        assert_eq!(
            index.apply(&c.phone_number, Some(&ContactState::from(&c))),
            Applied::Inserted
        );
        let older = {
            let mut o = c.clone();
            o.gender = Some(Gender::Male);
            o.updated_at = c.updated_at - Duration::seconds(1);
            o
        };
        assert_eq!(
            index.apply(&c.phone_number, Some(&ContactState::from(&older))),
            Applied::Stale
        );
        assert_eq!(index.members(&all, &ctx()).len(), 1);
        c.gender = Some(Gender::Male);
        c.updated_at += Duration::seconds(1);
        assert_eq!(
            index.apply(&c.phone_number, Some(&ContactState::from(&c))),
            Applied::Updated
        );
        assert_eq!(index.members(&all, &ctx()).len(), 0);
        assert_eq!(index.apply(&c.phone_number, None), Applied::Removed);
        assert_eq!(index.apply(&c.phone_number, None), Applied::Absent);
        assert!(index.is_empty());
    }
}
