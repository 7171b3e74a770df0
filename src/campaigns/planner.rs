//! The campaign planner of one crm.commands partition: a launch command reaches every
//! partition, and the owner of each resolves its own recipients from its segment index
//! (segments ∪ custom recipients, as of the launch), records every intended recipient
//! (excluded ones with the reason) and enqueues a send per eligible recipient to
//! wa.campaign. A resume or "retry the failed" re-enqueues the partition's recorded
//! recipients that still await a send, never new ones.
//!
//! Everything is idempotent: recipient steps merge, and a send's claim key is derived from
//! (campaign, contact, attempt), so a replayed or repeated command changes nothing and
//! sends nothing twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use thiserror::Error;
use tokio::sync::watch;

use crate::domain::campaign::{
    exclusion, CampaignDefinition, CampaignStatus, CapRetry, CapRetryPolicy, RecipientSteps,
    RecipientUpdate, SkipReason, Trigger,
};
use crate::domain::clock::malaysian_day;
use crate::domain::phone::PhoneNumber;
use crate::domain::segment::{EvalContext, SegmentDefinition};
use crate::metrics::catalog;
use crate::retry::with_retries;
use crate::segments::SegmentIndex;
use crate::storage::bus::refused::send_outputs;
use crate::storage::bus::{BusError, Producer, Record};
use crate::storage::sink::{AnalyticsEvent, CampaignSendEvent, SendOutcome};
use crate::storage::store::{CampaignRecord, ContactStore, StoreError};
use crate::topics::campaign::CampaignSend;
use crate::topics::commands::Command;

use super::definition_of;
use super::ledger::RecipientPages;

/// Recipients written and enqueued at once.
const CHUNK: usize = 2_000;
/// How often a planner waiting for its partition's index looks again.
const INDEX_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Error)]
pub enum PlanError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    /// This process does not index the command's partition (no segment index here).
    #[error("partition {0} is not in this process's segment index")]
    NotIndexed(u32),
    /// Stopped while waiting for the index to catch up: the command is replayed later.
    #[error("stopped before the segment index caught up")]
    Stopped,
}

/// The business number campaign sends go from.
#[derive(Clone, Debug)]
pub struct SendingNumber {
    pub phone_number_id: String,
    pub business_number: String,
}

pub struct Planner {
    pub store: Arc<dyn ContactStore>,
    pub index: Arc<SegmentIndex>,
    pub producer: Arc<dyn Producer>,
    pub campaign_topic: String,
    pub events_topic: String,
    pub dead_letter_topic: String,
    pub number: SendingNumber,
    pub frequency_cap: crate::domain::campaign::FrequencyCap,
    pub cap_retry: CapRetryPolicy,
}

/// Which send of a recipient a record is; the sender's claim key follows from it.
#[derive(Clone, Copy, Debug)]
enum SendKey {
    /// The send planned at launch (a resume sends it if it has not gone).
    First,
    /// "Retry the failed" with this attempt number, of the failure at `of` (ms).
    Retry { attempt: u32, of: i64 },
    /// A trigger's occurrence (a birthday's year, the tier reached).
    Occurrence(u32),
    /// The n-th automatic retry after Meta's marketing cap, of the failure at `of` (ms).
    CapRetry { n: u32, of: i64 },
}

/// What one partition's planning did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanReport {
    pub queued: u64,
    pub skipped: u64,
}

impl Planner {
    /// Carries out `command` for `partition`'s contacts.
    pub async fn run(
        &self,
        command: &Command,
        partition: u32,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<PlanReport, PlanError> {
        match command {
            Command::CampaignLaunched { campaign_id, at } => {
                self.until_live(partition, &mut shutdown).await?;
                self.launch(campaign_id, *at, partition).await
            }
            Command::CampaignResumed {
                campaign_id,
                at,
                retry_failed,
            } => {
                self.until_live(partition, &mut shutdown).await?;
                // A retry is a new attempt with a key of its own; a resume sends the
                // planned one.
                if *retry_failed {
                    let attempt = u32::try_from(at.timestamp()).unwrap_or(u32::MAX).max(1);
                    self.requeue(campaign_id, *at, partition, "retry_failed", |steps| {
                        steps.retryable_failure().then(|| SendKey::Retry {
                            attempt,
                            of: steps.failure_ms().unwrap_or(0),
                        })
                    })
                    .await
                } else {
                    self.requeue(campaign_id, *at, partition, "resume", |steps| {
                        steps.awaits_send().then_some(SendKey::First)
                    })
                    .await
                }
            }
            Command::CampaignCapRetry { campaign_id, at } => {
                self.until_live(partition, &mut shutdown).await?;
                let policy = self.cap_retry;
                self.requeue(
                    campaign_id,
                    *at,
                    partition,
                    "cap_retry",
                    |steps| match steps.cap_retry(policy, *at) {
                        CapRetry::Due(n) => Some(SendKey::CapRetry {
                            n,
                            of: steps.failure_ms().unwrap_or(0),
                        }),
                        _ => None,
                    },
                )
                .await
            }
            Command::CampaignTriggered {
                campaign_id,
                at,
                day,
                ..
            } => {
                self.until_live(partition, &mut shutdown).await?;
                self.triggered(campaign_id, *at, *day, partition).await
            }
            // Sends check the campaign's status when they go; segment changes need nothing
            // (indexes evaluate definitions on demand).
            Command::CampaignHalted { .. } | Command::SegmentChanged { .. } => {
                Ok(PlanReport::default())
            }
        }
    }

    async fn until_live(
        &self,
        partition: u32,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), PlanError> {
        loop {
            match self.index.partition_live(partition) {
                Some(true) => return Ok(()),
                Some(false) => {}
                None => return Err(PlanError::NotIndexed(partition)),
            }
            tokio::select! {
                _ = tokio::time::sleep(INDEX_POLL) => {}
                _ = shutdown.changed() => return Err(PlanError::Stopped),
            }
        }
    }

    async fn campaign(
        &self,
        campaign_id: &str,
    ) -> Result<Option<(CampaignRecord, CampaignDefinition)>, PlanError> {
        let Some(record) = with_retries("campaign", || self.store.campaign(campaign_id)).await?
        else {
            tracing::warn!(campaign = campaign_id, "command for an unknown campaign");
            return Ok(None);
        };
        match definition_of(&record) {
            Ok(definition) => Ok(Some((record, definition))),
            Err(e) => {
                tracing::error!(campaign = campaign_id, error = %e, "stored campaign does not parse");
                Ok(None)
            }
        }
    }

    async fn launch(
        &self,
        campaign_id: &str,
        at: DateTime<Utc>,
        partition: u32,
    ) -> Result<PlanReport, PlanError> {
        let started = Instant::now();
        let Some((record, definition)) = self.campaign(campaign_id).await? else {
            return Ok(PlanReport::default());
        };
        if matches!(
            record.status,
            CampaignStatus::Draft | CampaignStatus::Cancelled
        ) {
            return Ok(PlanReport::default());
        }
        let mut segments: Vec<SegmentDefinition> = Vec::new();
        for segment_id in &definition.segments {
            let found = with_retries("segment", || self.store.segment(segment_id)).await?;
            match found.map(|s| SegmentDefinition::from_json_str(&s.definition_json)) {
                Some(Ok(segment)) => segments.push(segment),
                Some(Err(e)) => {
                    tracing::error!(campaign = campaign_id, segment = %segment_id, error = %e, "segment does not parse")
                }
                None => {
                    tracing::warn!(campaign = campaign_id, segment = %segment_id, "segment is gone")
                }
            }
        }
        let cap = definition.frequency_cap.unwrap_or(self.frequency_cap);
        let free_form = definition.message.is_free_form();
        // As of the launch: a replay of the command plans the same audience.
        let ctx = EvalContext::new(at, malaysian_day(at));
        let mut planned: Vec<(PhoneNumber, Option<SkipReason>)> = Vec::new();
        let indexed = self.index.for_each_in_partition(
            partition,
            &segments,
            &definition.custom_recipients,
            &ctx,
            |row| planned.push((row.phone_number.clone(), exclusion(row, free_form, cap, at))),
        );
        if !indexed {
            return Err(PlanError::NotIndexed(partition));
        }
        let mut report = PlanReport::default();
        for chunk in planned.chunks(CHUNK) {
            let mut updates = Vec::with_capacity(chunk.len() * 2);
            let mut sends = Vec::new();
            let mut events = Vec::with_capacity(chunk.len());
            for (phone, skip) in chunk {
                updates.push((phone.clone(), RecipientUpdate::Planned { at }));
                let (outcome, reason) = match skip {
                    Some(reason) => {
                        updates.push((
                            phone.clone(),
                            RecipientUpdate::Skipped {
                                at,
                                reason: *reason,
                            },
                        ));
                        report.skipped += 1;
                        catalog::CAMPAIGN_PLANNED
                            .counter(&[reason.as_str().into()])
                            .increment(1);
                        (SendOutcome::Skipped, Some(reason.as_str().to_string()))
                    }
                    None => {
                        sends.push(self.send_record(campaign_id, phone, SendKey::First, at));
                        report.queued += 1;
                        catalog::CAMPAIGN_PLANNED
                            .counter(&["queued".into()])
                            .increment(1);
                        (SendOutcome::Queued, None)
                    }
                };
                events.push(self.event(campaign_id, phone, at, outcome, reason));
            }
            // The rows first: a send never goes ahead of its recipient's record.
            with_retries("record_recipients", || {
                self.store.record_recipients(campaign_id, &updates)
            })
            .await?;
            sends.extend(events);
            send_outputs(&*self.producer, sends, &self.dead_letter_topic).await?;
        }
        catalog::CAMPAIGN_PLAN_SECONDS
            .histogram(&[])
            .record(started.elapsed().as_secs_f64());
        tracing::info!(
            campaign = campaign_id,
            partition,
            queued = report.queued,
            skipped = report.skipped,
            "campaign planned"
        );
        Ok(report)
    }

    /// Re-enqueues this partition's recorded recipients that `wanted` picks (with the key
    /// of the send), never new ones.
    async fn requeue(
        &self,
        campaign_id: &str,
        at: DateTime<Utc>,
        partition: u32,
        why: &'static str,
        wanted: impl Fn(&RecipientSteps) -> Option<SendKey>,
    ) -> Result<PlanReport, PlanError> {
        let Some((record, _)) = self.campaign(campaign_id).await? else {
            return Ok(PlanReport::default());
        };
        if record.status != CampaignStatus::Running {
            return Ok(PlanReport::default());
        }
        let mut report = PlanReport::default();
        let mut pages = RecipientPages::new(&*self.store, campaign_id, CHUNK as u32);
        while let Some(rows) = pages.next().await? {
            let mut sends = Vec::new();
            for row in &rows {
                if let Some(key) = wanted(&row.steps) {
                    if self.index.holds(partition, &row.contact) {
                        sends.push(self.send_record(campaign_id, &row.contact, key, at));
                        report.queued += 1;
                    }
                }
            }
            send_outputs(&*self.producer, sends, &self.dead_letter_topic).await?;
        }
        tracing::info!(
            campaign = campaign_id,
            partition,
            queued = report.queued,
            why,
            "campaign recipients requeued"
        );
        Ok(report)
    }

    /// A time-driven trigger's day: the partition's contacts it selects (a birthday today,
    /// exactly N days since the last purchase), one send per contact and occurrence.
    async fn triggered(
        &self,
        campaign_id: &str,
        at: DateTime<Utc>,
        day: NaiveDate,
        partition: u32,
    ) -> Result<PlanReport, PlanError> {
        let Some((record, definition)) = self.campaign(campaign_id).await? else {
            return Ok(PlanReport::default());
        };
        if record.status != CampaignStatus::Running {
            return Ok(PlanReport::default());
        }
        let Some(trigger) = &definition.trigger else {
            return Ok(PlanReport::default());
        };
        let mut chosen: Vec<(PhoneNumber, u32)> = Vec::new();
        let indexed = self.index.for_each_row(partition, |row| {
            if let Some(occurrence) = time_trigger_occurrence(trigger, row, day) {
                chosen.push((row.phone_number.clone(), occurrence));
            }
        });
        if !indexed {
            return Err(PlanError::NotIndexed(partition));
        }
        let mut report = PlanReport::default();
        for chunk in chosen.chunks(CHUNK) {
            let updates: Vec<_> = chunk
                .iter()
                .map(|(phone, _)| (phone.clone(), RecipientUpdate::Planned { at }))
                .collect();
            with_retries("record_recipients", || {
                self.store.record_recipients(campaign_id, &updates)
            })
            .await?;
            let sends = chunk
                .iter()
                .map(|(phone, occurrence)| {
                    self.send_record(campaign_id, phone, SendKey::Occurrence(*occurrence), at)
                })
                .collect();
            send_outputs(&*self.producer, sends, &self.dead_letter_topic).await?;
            report.queued += chunk.len() as u64;
        }
        catalog::CAMPAIGN_PLANNED
            .counter(&["triggered".into()])
            .increment(report.queued);
        Ok(report)
    }

    fn send_record(
        &self,
        campaign_id: &str,
        to: &PhoneNumber,
        key: SendKey,
        at: DateTime<Utc>,
    ) -> Record {
        let (attempt, occurrence, cap_retry, retry_of) = match key {
            SendKey::First => (0, None, 0, None),
            SendKey::Retry { attempt, of } => (attempt, None, 0, Some(of)),
            SendKey::Occurrence(occurrence) => (0, Some(occurrence), 0, None),
            SendKey::CapRetry { n, of } => (0, None, n, Some(of)),
        };
        let send = CampaignSend {
            campaign_id: campaign_id.to_string(),
            to: to.clone(),
            phone_number_id: self.number.phone_number_id.clone(),
            business_number: self.number.business_number.clone(),
            attempt,
            occurrence,
            cap_retry,
            retry_of,
            planned_at: at,
        };
        Record::new(
            self.campaign_topic.clone(),
            self.number.phone_number_id.as_bytes().to_vec(),
            send.encode(),
        )
    }

    fn event(
        &self,
        campaign_id: &str,
        to: &PhoneNumber,
        at: DateTime<Utc>,
        outcome: SendOutcome,
        skip_reason: Option<String>,
    ) -> Record {
        let event = AnalyticsEvent::CampaignSend(CampaignSendEvent {
            skip_reason,
            ..CampaignSendEvent::step(
                &format!(
                    "campaign_{}:{campaign_id}:{}",
                    outcome.as_str(),
                    to.as_str()
                ),
                at,
                campaign_id,
                to,
                &self.number.business_number,
                outcome,
            )
        });
        Record::new(
            self.events_topic.clone(),
            to.as_str().as_bytes().to_vec(),
            serde_json::to_vec(&event).expect("an event serializes"),
        )
    }
}

/// The occurrence a time-driven trigger selects `row` for on `day`, if it does: the year
/// of a birthday (29 February birthdays on 28 February in other years), the day number of
/// the last purchase for a win-back.
pub fn time_trigger_occurrence(
    trigger: &Trigger,
    row: &crate::segments::row::IndexedContact,
    day: NaiveDate,
) -> Option<u32> {
    match trigger {
        Trigger::Birthday { .. } => {
            let born = row.date_of_birth?;
            let leap_day = born.month() == 2 && born.day() == 29;
            let today = (day.month(), day.day()) == (born.month(), born.day())
                || (leap_day
                    && NaiveDate::from_ymd_opt(day.year(), 2, 29).is_none()
                    && (day.month(), day.day()) == (2, 28));
            today.then(|| u32::try_from(day.year()).ok()).flatten()
        }
        Trigger::WinBack { days } => {
            let last = row.last_purchase()?;
            let since = (day - last).num_days();
            (since == i64::from(*days))
                .then(|| u32::try_from(crate::segments::index::day_number(last)).ok())
                .flatten()
        }
        // Driven by the contact's own events, in its shard.
        Trigger::TierUpgrade | Trigger::FirstPurchase => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contact::Contact;
    use crate::domain::money::Money;
    use crate::domain::purchase::{Purchase, PurchaseStatus};
    use crate::segments::row::IndexedContact;
    use crate::topics::contacts::ContactState;

    fn row(dob: Option<NaiveDate>, last_purchase: Option<NaiveDate>) -> IndexedContact {
        let mut contact = Contact::new(PhoneNumber::parse("0123456789").unwrap(), Utc::now());
        contact.date_of_birth = dob;
        if let Some(day) = last_purchase {
            let purchase = Purchase {
                purchase_id: "p1".into(),
                amount: Money::from_ringgit(10),
                purchased_on: day,
                merchant: None,
                receipt_no: None,
                item_count: 1,
                image_sha256: None,
                ocr_confidence: None,
                status: PurchaseStatus::Counted,
                recorded_at: Utc::now(),
            };
            contact.purchases.apply(&purchase.counted_event().unwrap());
        }
        IndexedContact::from(&ContactState::from(&contact))
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn birthdays_select_their_day_once_a_year_and_leap_days_on_the_28th() {
        let birthday = Trigger::Birthday {
            local_time: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        };
        let born = row(Some(day(1990, 12, 6)), None);
        assert_eq!(
            time_trigger_occurrence(&birthday, &born, day(2026, 12, 6)),
            Some(2026)
        );
        assert_eq!(
            time_trigger_occurrence(&birthday, &born, day(2026, 12, 7)),
            None
        );
        let leap = row(Some(day(2000, 2, 29)), None);
        assert_eq!(
            time_trigger_occurrence(&birthday, &leap, day(2027, 2, 28)),
            Some(2027)
        );
        assert_eq!(
            time_trigger_occurrence(&birthday, &leap, day(2028, 2, 28)),
            None
        );
        assert_eq!(
            time_trigger_occurrence(&birthday, &leap, day(2028, 2, 29)),
            Some(2028)
        );
        assert_eq!(
            time_trigger_occurrence(&birthday, &row(None, None), day(2026, 12, 6)),
            None
        );
    }

    #[test]
    fn win_back_selects_exactly_n_days_after_the_last_purchase() {
        let win_back = Trigger::WinBack { days: 30 };
        let buyer = row(None, Some(day(2026, 11, 1)));
        assert_eq!(
            time_trigger_occurrence(&win_back, &buyer, day(2026, 11, 30)),
            None
        );
        let occurrence = time_trigger_occurrence(&win_back, &buyer, day(2026, 12, 1));
        assert!(occurrence.is_some());
        assert_eq!(
            time_trigger_occurrence(&win_back, &buyer, day(2026, 12, 2)),
            None
        );
        assert_eq!(
            time_trigger_occurrence(&win_back, &row(None, None), day(2026, 12, 1)),
            None
        );
        assert_eq!(
            time_trigger_occurrence(&Trigger::TierUpgrade, &buyer, day(2026, 12, 1)),
            None
        );
    }
}
