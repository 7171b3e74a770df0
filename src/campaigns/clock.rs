//! The campaign clock (run by the api role): launches scheduled campaigns at their start,
//! ends running ones at their end (recipients not yet sent are recorded as expired),
//! resumes a running campaign whose pending recipients stopped moving (sends held through
//! quiet hours or the messaging limit, or lost with a process), and marks a campaign
//! completed once nothing is pending.
//!
//! Several api processes may each run a clock: every action it takes is idempotent (a
//! second launch plans the same recipients and sends nothing twice).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use tokio::sync::watch;

use crate::domain::campaign::{
    CampaignStatus, CapRetry, CapRetryPolicy, Funnel, QuietHours, RecipientUpdate, SkipReason,
    Trigger,
};
use crate::domain::clock::malaysia;
use crate::retry::with_retries;
use crate::storage::bus::{BusError, Producer, Record};
use crate::storage::store::{CampaignRecord, ContactStore, StoreError};

use super::ledger::RecipientPages;
use crate::topics::commands::Command;

use super::definition_of;

const LEDGER_PAGE: u32 = 5_000;

/// Writes `command` to every partition of crm.commands.
pub async fn broadcast(
    producer: &dyn Producer,
    topic: &str,
    partitions: u32,
    command: &Command,
) -> Result<(), BusError> {
    let payload = command.encode();
    for partition in 0..partitions {
        let record =
            Record::new(topic, command.key(partition), payload.clone()).to_partition(partition);
        with_retries("broadcast_command", || producer.send_to(record.clone())).await?;
    }
    Ok(())
}

/// The campaign's funnel from its whole recipient ledger.
pub async fn funnel(store: &dyn ContactStore, campaign_id: &str) -> Result<Funnel, StoreError> {
    let mut funnel = Funnel::default();
    let mut pages = RecipientPages::new(store, campaign_id, LEDGER_PAGE);
    while let Some(rows) = pages.next().await? {
        for row in &rows {
            funnel.add(&row.steps);
        }
    }
    Ok(funnel)
}

/// A running campaign's ledger as the clock follows it.
#[derive(Debug, Default)]
struct LedgerState {
    funnel: Funnel,
    /// Recipients whose automatic retry after the marketing cap may go now ...
    cap_retries_due: u64,
    /// ... and those whose retry is later.
    cap_retries_scheduled: u64,
}

async fn ledger_state(
    store: &dyn ContactStore,
    campaign_id: &str,
    policy: CapRetryPolicy,
    now: DateTime<Utc>,
) -> Result<LedgerState, StoreError> {
    let mut state = LedgerState::default();
    let mut pages = RecipientPages::new(store, campaign_id, LEDGER_PAGE);
    while let Some(rows) = pages.next().await? {
        for row in &rows {
            state.funnel.add(&row.steps);
            match row.steps.cap_retry(policy, now) {
                CapRetry::Due(_) => state.cap_retries_due += 1,
                CapRetry::Scheduled(_) => state.cap_retries_scheduled += 1,
                CapRetry::NotWanted => {}
            }
        }
    }
    Ok(state)
}

/// Records every recipient still pending as skipped for `reason`; returns how many.
pub async fn settle_pending(
    store: &dyn ContactStore,
    campaign_id: &str,
    reason: SkipReason,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut settled = 0;
    let mut pages = RecipientPages::new(store, campaign_id, LEDGER_PAGE);
    while let Some(rows) = pages.next().await? {
        let updates: Vec<_> = rows
            .iter()
            .filter(|row| row.steps.awaits_send())
            .map(|row| (row.contact.clone(), RecipientUpdate::Skipped { at, reason }))
            .collect();
        settled += updates.len() as u64;
        store.record_recipients(campaign_id, &updates).await?;
    }
    Ok(settled)
}

pub struct CampaignClock {
    pub store: Arc<dyn ContactStore>,
    pub producer: Arc<dyn Producer>,
    pub commands_topic: String,
    pub partitions: u32,
    pub quiet_hours: QuietHours,
    /// Automatic retries after Meta's marketing cap (131049).
    pub cap_retry: CapRetryPolicy,
    /// A running campaign whose pending count has not moved for this long is resumed.
    pub stall: Duration,
    pub tick: Duration,
    pub now: fn() -> DateTime<Utc>,
}

/// What the clock remembers of a running campaign between ticks.
struct Progress {
    pending: u64,
    recipients: u64,
    /// When `pending` last changed (or the clock last resumed it).
    since: Instant,
    /// When the clock last asked for due marketing-cap retries.
    cap_retry_asked: Option<Instant>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl CampaignClock {
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<(), ClockError> {
        let mut progress: HashMap<String, Progress> = HashMap::new();
        // The day each time-driven trigger was last evaluated (after a restart it is
        // evaluated again: its sends are claimed once per occurrence).
        let mut fired: HashMap<String, NaiveDate> = HashMap::new();
        loop {
            self.tick(&mut progress, &mut fired).await?;
            tokio::select! {
                _ = tokio::time::sleep(self.tick) => {}
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }

    async fn tick(
        &self,
        progress: &mut HashMap<String, Progress>,
        fired: &mut HashMap<String, NaiveDate>,
    ) -> Result<(), ClockError> {
        let now = (self.now)();
        let campaigns = with_retries("campaigns", || self.store.campaigns()).await?;
        progress.retain(|id, _| {
            campaigns
                .iter()
                .any(|c| &c.campaign_id == id && c.status == CampaignStatus::Running)
        });
        for record in campaigns {
            let Ok(definition) = definition_of(&record) else {
                continue;
            };
            match record.status {
                CampaignStatus::Scheduled
                    if definition.scheduled_start.is_some_and(|start| start <= now) =>
                {
                    if definition.scheduled_end.is_some_and(|end| end <= now) {
                        self.set_status(record, CampaignStatus::Completed, now)
                            .await?;
                        continue;
                    }
                    let id = record.campaign_id.clone();
                    self.set_status(record, CampaignStatus::Running, now)
                        .await?;
                    self.send(&Command::CampaignLaunched {
                        campaign_id: id.clone(),
                        at: now,
                    })
                    .await?;
                    tracing::info!(campaign = %id, "scheduled campaign launched");
                }
                CampaignStatus::Running
                    if definition.scheduled_end.is_some_and(|end| end <= now) =>
                {
                    let expired =
                        settle_pending(&*self.store, &record.campaign_id, SkipReason::Expired, now)
                            .await?;
                    tracing::info!(campaign = %record.campaign_id, expired, "campaign ended");
                    self.set_status(record, CampaignStatus::Completed, now)
                        .await?;
                }
                CampaignStatus::Running if definition.trigger.is_none() => {
                    self.follow(record, progress, now).await?;
                }
                CampaignStatus::Running => {
                    if let Some(day) = due_day(definition.trigger.as_ref(), now) {
                        let id = record.campaign_id.clone();
                        if fired.get(&id) != Some(&day) {
                            self.send(&Command::CampaignTriggered {
                                campaign_id: id.clone(),
                                at: now,
                                day,
                            })
                            .await?;
                            tracing::info!(campaign = %id, %day, "campaign trigger evaluated");
                            fired.insert(id, day);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Completes a campaign with nothing pending (and no retry to come); resumes one that
    /// stalled; asks for the marketing-cap retries that are due.
    async fn follow(
        &self,
        record: CampaignRecord,
        progress: &mut HashMap<String, Progress>,
        now: DateTime<Utc>,
    ) -> Result<(), ClockError> {
        let state = ledger_state(&*self.store, &record.campaign_id, self.cap_retry, now).await?;
        let funnel = &state.funnel;
        let id = record.campaign_id.clone();
        let Some(seen) = progress.get_mut(&id) else {
            // First sight: judged from the next tick, once it has had a tick to move.
            progress.insert(
                id,
                Progress {
                    pending: funnel.pending,
                    recipients: funnel.recipients,
                    since: Instant::now(),
                    cap_retry_asked: None,
                },
            );
            return Ok(());
        };
        // Due retries are asked for at most once per stall period (or retry interval, if
        // shorter, but not more often than the tick): a send already on its way is found
        // claimed, so asking again costs a ledger pass and queued copies, not a message.
        let ask_every = self
            .stall
            .min(self.cap_retry.after.to_std().unwrap_or_default())
            .max(self.tick);
        if state.cap_retries_due > 0
            && self.quiet_hours.resumes_at(now).is_none()
            && seen
                .cap_retry_asked
                .is_none_or(|at| at.elapsed() >= ask_every)
        {
            seen.cap_retry_asked = Some(Instant::now());
            tracing::info!(campaign = %id, due = state.cap_retries_due, "marketing-cap retries due");
            self.send(&Command::CampaignCapRetry {
                campaign_id: id.clone(),
                at: now,
            })
            .await?;
        }
        let moved = seen.pending != funnel.pending || seen.recipients != funnel.recipients;
        if moved {
            seen.pending = funnel.pending;
            seen.recipients = funnel.recipients;
            seen.since = Instant::now();
            return Ok(());
        }
        // Unchanged for a whole tick at least: planning is over in every partition that
        // planned (a partition still planning adds recipients).
        if funnel.pending == 0
            && funnel.recipients > 0
            && state.cap_retries_due + state.cap_retries_scheduled == 0
        {
            progress.remove(&id);
            self.set_status(record, CampaignStatus::Completed, now)
                .await?;
            tracing::info!(campaign = %id, "campaign completed");
            return Ok(());
        }
        if funnel.pending > 0
            && seen.since.elapsed() >= self.stall
            && self.quiet_hours.resumes_at(now).is_none()
        {
            seen.since = Instant::now();
            tracing::info!(campaign = %id, pending = funnel.pending, "campaign stalled: resumed");
            self.send(&Command::CampaignResumed {
                campaign_id: id,
                at: now,
                retry_failed: false,
            })
            .await?;
        }
        Ok(())
    }

    async fn set_status(
        &self,
        mut record: CampaignRecord,
        status: CampaignStatus,
        now: DateTime<Utc>,
    ) -> Result<(), ClockError> {
        record.status = status;
        record.updated_at = now;
        with_retries("put_campaign", || self.store.put_campaign(&record)).await?;
        Ok(())
    }

    async fn send(&self, command: &Command) -> Result<(), ClockError> {
        broadcast(
            &*self.producer,
            &self.commands_topic,
            self.partitions,
            command,
        )
        .await?;
        Ok(())
    }
}

/// The Malaysian day whose time-driven trigger is due at `now`: birthdays at their local
/// time, win-backs at 10:00; `None` before that time or for event-driven triggers.
pub fn due_day(trigger: Option<&Trigger>, now: DateTime<Utc>) -> Option<NaiveDate> {
    let local = now.with_timezone(&malaysia());
    let at = match trigger? {
        Trigger::Birthday { local_time } => *local_time,
        Trigger::WinBack { .. } => NaiveTime::from_hms_opt(10, 0, 0).expect("valid time"),
        Trigger::TierUpgrade | Trigger::FirstPurchase => return None,
    };
    (local.time() >= at).then(|| local.date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birthdays_are_due_from_their_local_time_and_event_triggers_never() {
        let nine = Trigger::Birthday {
            local_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        };
        let utc = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // 08:59 and 09:00 Malaysia time on 6 December.
        assert_eq!(due_day(Some(&nine), utc("2026-12-06T00:59:00Z")), None);
        assert_eq!(
            due_day(Some(&nine), utc("2026-12-06T01:00:00Z")),
            NaiveDate::from_ymd_opt(2026, 12, 6)
        );
        // 16:30 UTC on the 6th is already the 7th in Malaysia: a midnight birthday trigger
        // is due for the 7th, a 09:00 one not yet.
        let midnight = Trigger::Birthday {
            local_time: NaiveTime::MIN,
        };
        assert_eq!(
            due_day(Some(&midnight), utc("2026-12-06T16:30:00Z")),
            NaiveDate::from_ymd_opt(2026, 12, 7)
        );
        assert_eq!(due_day(Some(&nine), utc("2026-12-06T16:30:00Z")), None);
        assert_eq!(
            due_day(Some(&Trigger::TierUpgrade), utc("2026-12-06T05:00:00Z")),
            None
        );
        assert_eq!(due_day(None, utc("2026-12-06T05:00:00Z")), None);
    }
}
