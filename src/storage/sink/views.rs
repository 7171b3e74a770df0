//! The analyst views computed in memory from deduplicated events: what the file backend
//! answers, with the same definitions as the ClickHouse materialized views in
//! schemas/clickhouse/0002_views.sql.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use uuid::Uuid;

use crate::domain::money::Money;
use crate::domain::purchase::PurchaseStatus;

use super::{
    spend_band, CustomerValue, DemographicRow, FunnelRow, OcrOutcomeRow, PendingReviewRow,
    RevenueRow, ValueBucket, SPEND_BANDS,
};
use crate::topics::events::{age_band, malaysian_day, AnalyticsEvent, PurchaseEvent};

/// `events` must hold each event id once.
pub fn campaign_funnel(
    events: &[AnalyticsEvent],
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<FunnelRow> {
    type Key = (NaiveDate, String, String);
    let mut stages: BTreeMap<Key, (BTreeSet<String>, BTreeSet<Uuid>)> = BTreeMap::new();
    for event in events {
        let (campaign, stage) = match event {
            AnalyticsEvent::CampaignSend(e) => (Some(&e.campaign_id), e.outcome.as_str()),
            AnalyticsEvent::MessageStatus(e) => (e.campaign_id.as_ref(), e.status.as_str()),
            AnalyticsEvent::InboundMessage(e) => (e.campaign_id.as_ref(), "replied"),
            AnalyticsEvent::Purchase(e) if e.status == PurchaseStatus::Counted => {
                (e.campaign_id.as_ref(), "converted")
            }
            _ => (None, ""),
        };
        let Some(campaign) = campaign.filter(|c| !c.is_empty()) else {
            continue;
        };
        let day = malaysian_day(event.occurred_at());
        if day < from || day > to {
            continue;
        }
        let entry = stages
            .entry((day, campaign.clone(), stage.to_string()))
            .or_default();
        if let Some(contact) = event.contact_phone() {
            entry.0.insert(contact.as_str().to_string());
        }
        entry.1.insert(event.event_id());
    }
    stages
        .into_iter()
        .map(|((day, campaign_id, stage), (contacts, ids))| FunnelRow {
            day,
            campaign_id,
            stage,
            contacts: contacts.len() as u64,
            events: ids.len() as u64,
        })
        .collect()
}

/// `events` must hold each event id once, in write order. Each purchase counts as its
/// latest event says (by occurred_at; on a tie the one written last, as ReplacingMergeTree
/// keeps), on that event's receipt date.
/// Each purchase's latest event (by `occurred_at`): its current state.
fn latest_purchases(events: &[AnalyticsEvent]) -> HashMap<&str, &PurchaseEvent> {
    let mut latest: HashMap<&str, &PurchaseEvent> = HashMap::new();
    for event in events {
        if let AnalyticsEvent::Purchase(p) = event {
            let key = p.purchase_id.as_str();
            match latest.get(key) {
                Some(seen) if seen.occurred_at > p.occurred_at => {}
                _ => {
                    latest.insert(key, p);
                }
            }
        }
    }
    latest
}

/// The review queue: purchases whose latest event is pending_review, oldest first.
pub fn pending_reviews(events: &[AnalyticsEvent], limit: u32) -> Vec<PendingReviewRow> {
    let mut pending: Vec<&PurchaseEvent> = latest_purchases(events)
        .into_values()
        .filter(|p| p.status == PurchaseStatus::PendingReview)
        .collect();
    pending.sort_by(|a, b| (a.occurred_at, &a.purchase_id).cmp(&(b.occurred_at, &b.purchase_id)));
    pending
        .into_iter()
        .take(limit as usize)
        .map(|p| PendingReviewRow {
            purchase_id: p.purchase_id.clone(),
            contact_phone: p.contact_phone.clone(),
            recorded_at: p.occurred_at,
            purchase_date: p.purchase_date,
            merchant: p.merchant.clone(),
            receipt_no: p.receipt_no.clone(),
            total: p.total,
            item_count: p.item_count,
            ocr_confidence: p.ocr_confidence,
        })
        .collect()
}

pub fn daily_revenue(events: &[AnalyticsEvent], from: NaiveDate, to: NaiveDate) -> Vec<RevenueRow> {
    let latest = latest_purchases(events);
    let mut days: BTreeMap<NaiveDate, (u64, BTreeSet<&str>, Money)> = BTreeMap::new();
    for p in latest.into_values() {
        let day = p.purchase_date;
        if day < from || day > to {
            continue;
        }
        let entry = days.entry(day).or_insert((0, BTreeSet::new(), Money::ZERO));
        if p.status == PurchaseStatus::Counted {
            entry.0 += 1;
            entry.1.insert(p.contact_phone.as_str());
            entry.2 += p.total;
        }
    }
    days.into_iter()
        .map(|(day, (purchases, buyers, revenue))| RevenueRow {
            day,
            purchases,
            buyers: buyers.len() as u64,
            revenue,
        })
        .collect()
}

/// `events` must hold each event id once.
pub fn demographics(
    events: &[AnalyticsEvent],
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<DemographicRow> {
    type Key = (NaiveDate, String, String, String, String);
    let mut buckets: BTreeMap<Key, BTreeSet<&str>> = BTreeMap::new();
    for event in events {
        let AnalyticsEvent::ContactSnapshot(s) = event else {
            continue;
        };
        let day = malaysian_day(s.occurred_at);
        if day < from || day > to {
            continue;
        }
        let key = (
            day,
            s.gender.map(|g| g.as_str()).unwrap_or("").to_string(),
            age_band(s.age).to_string(),
            s.state.clone().unwrap_or_default(),
            s.tier.as_str().to_string(),
        );
        buckets
            .entry(key)
            .or_default()
            .insert(s.contact_phone.as_str());
    }
    buckets
        .into_iter()
        .map(
            |((day, gender, age_band, state, tier), contacts)| DemographicRow {
                day,
                gender,
                age_band,
                state,
                tier,
                contacts: contacts.len() as u64,
            },
        )
        .collect()
}

/// Lifetime value from each contact's latest snapshot (see [`CustomerValue`]).
pub fn customer_value(events: &[AnalyticsEvent]) -> CustomerValue {
    use crate::topics::events::ContactSnapshotEvent;
    let mut latest: HashMap<&str, &ContactSnapshotEvent> = HashMap::new();
    let mut registered: HashMap<&str, NaiveDate> = HashMap::new();
    for event in events {
        let AnalyticsEvent::ContactSnapshot(s) = event else {
            continue;
        };
        let contact = s.contact_phone.as_str();
        if latest
            .get(contact)
            .is_none_or(|seen| seen.occurred_at <= s.occurred_at)
        {
            latest.insert(contact, s);
        }
        if s.reason == "registered" {
            let day = malaysian_day(s.occurred_at);
            let first = registered.entry(contact).or_insert(day);
            *first = (*first).min(day);
        }
    }
    let add =
        |buckets: &mut BTreeMap<String, ValueBucket>, key: String, s: &ContactSnapshotEvent| {
            let bucket = buckets.entry(key.clone()).or_insert(ValueBucket {
                bucket: key,
                customers: 0,
                total_spent: Money::ZERO,
                purchases: 0,
            });
            bucket.customers += 1;
            bucket.total_spent += s.total_spent;
            bucket.purchases += u64::from(s.purchase_count);
        };
    let (mut bands, mut tiers, mut cohorts) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for (contact, s) in &latest {
        add(&mut bands, spend_band(s.total_spent).to_string(), s);
        add(&mut tiers, s.tier.as_str().to_string(), s);
        if let Some(day) = registered.get(contact) {
            add(&mut cohorts, day.format("%Y-%m").to_string(), s);
        }
    }
    let band_order = |b: &ValueBucket| SPEND_BANDS.iter().position(|(name, _)| *name == b.bucket);
    let tier_order = |b: &ValueBucket| b.bucket.parse::<crate::domain::tier::Tier>().ok();
    let mut spending: Vec<ValueBucket> = bands.into_values().collect();
    spending.sort_by_key(band_order);
    let mut by_tier: Vec<ValueBucket> = tiers.into_values().collect();
    by_tier.sort_by_key(tier_order);
    CustomerValue {
        spending,
        by_tier,
        by_cohort: cohorts.into_values().collect(),
    }
}

/// OCR outcomes per kind over photos read in `from..=to` (see [`OcrOutcomeRow`]).
pub fn ocr_outcomes(
    events: &[AnalyticsEvent],
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<OcrOutcomeRow> {
    use crate::topics::events::{OcrResultEvent, OcrStatus};
    let mut once: HashMap<Uuid, &OcrResultEvent> = HashMap::new();
    for event in events {
        if let AnalyticsEvent::OcrResult(r) = event {
            let day = malaysian_day(r.occurred_at);
            if day >= from && day <= to {
                once.insert(r.event_id, r);
            }
        }
    }
    let mut kinds: BTreeMap<&str, Vec<&OcrResultEvent>> = BTreeMap::new();
    for r in once.into_values() {
        kinds.entry(r.kind.as_str()).or_default().push(r);
    }
    let mut rows: Vec<OcrOutcomeRow> = kinds
        .into_iter()
        .map(|(kind, results)| {
            let mut times: Vec<u32> = results.iter().map(|r| r.duration_ms).collect();
            times.sort_unstable();
            let at = |q: f64| times[((q * times.len() as f64) as usize).min(times.len() - 1)];
            OcrOutcomeRow {
                kind: kind.to_string(),
                photos: results.len() as u64,
                parsed: results
                    .iter()
                    .filter(|r| r.status == OcrStatus::Parsed)
                    .count() as u64,
                mean_confidence: results.iter().map(|r| f64::from(r.confidence)).sum::<f64>()
                    / results.len() as f64,
                p50_ms: at(0.5),
                p95_ms: at(0.95),
            }
        })
        .collect();
    rows.sort_by(|a, b| b.photos.cmp(&a.photos).then(a.kind.cmp(&b.kind)));
    rows
}
