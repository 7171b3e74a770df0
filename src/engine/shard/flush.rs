//! What a shard writes at a flush, and in which order. Nothing is reported done before
//! its effects are stored, and the order makes a crash at any point replay into the same
//! state:
//! 1. outputs (events, replies, OCR jobs): a replay produces the same ids, which their
//!    consumers collapse;
//! 2. delivery statuses and campaign funnel steps;
//! 3. contacts with their messages and purchases (their rows hold the fingerprints of the
//!    events applied, so a crash before this write leaves those events to apply again);
//! 4. rows a replay may look up (see `dedupe`), only once their contacts' rows are stored,
//!    so a row found means its effects are;
//! 5. the changed contacts' indexable state, to whoever follows them ([`ContactChanges`]);
//!
//! and then the records' tokens are reported done.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use futures::{stream, StreamExt, TryStreamExt};

use crate::domain::phone::PhoneNumber;
use crate::domain::purchase::Purchase;
use crate::metrics::catalog;
use crate::retry::with_retries;
use crate::storage::bus::{Record, TopicPartition};
use crate::storage::store::{ContactWrite, MessageRecord};
use crate::topics::contacts::ContactState;

use crate::domain::campaign::RecipientUpdate;

use super::super::apply::StatusUpdate;
use super::super::apply_campaign::CampaignStep;
use super::super::error::EngineError;
use super::super::outputs::send_outputs;
use super::{ShardDeps, Token, STORE_CONCURRENCY};

/// Where a flush publishes the indexable state of the contacts it stored, before their
/// records are reported done: the one seam through which changes leave a shard (the
/// contact changelog and the segment index follow it).
#[async_trait]
pub trait ContactChanges: Send + Sync {
    async fn changed(&self, contacts: Vec<ContactState>) -> Result<(), EngineError>;
    /// The contact is erased: a tombstone, which every segment index applies as removal.
    async fn erased(&self, contact: &PhoneNumber) -> Result<(), EngineError>;
}

/// Everything applied and not yet stored.
#[derive(Default)]
pub(super) struct Pending {
    pub records: Vec<Record>,
    pub messages: Vec<MessageRecord>,
    /// Rows that a replay may look up: of messages no newer than their contact's latest,
    /// and of duplicates. Written only once the contacts' rows are (a write of their own),
    /// so a row found means its message's effects are stored.
    pub messages_after_contacts: Vec<MessageRecord>,
    pub statuses: Vec<StatusUpdate>,
    pub campaign_steps: Vec<(PhoneNumber, CampaignStep)>,
    pub purchases: Vec<(PhoneNumber, Purchase)>,
    pub tokens: Vec<Token>,
    /// When each token's record arrived on its topic (ms since the epoch), index for index.
    pub arrived_ms: Vec<i64>,
}

impl Pending {
    /// Drops the rows of the contacts `gone` and the tokens of the partitions `ended`
    /// (revoked past their deadline: the new owner replays them). Staged outputs still go:
    /// their consumers dedupe.
    pub fn abandon(&mut self, gone: &HashSet<PhoneNumber>, ended: &HashSet<TopicPartition>) {
        self.messages.retain(|m| !gone.contains(&m.contact));
        self.messages_after_contacts
            .retain(|m| !gone.contains(&m.contact));
        self.statuses.retain(|s| !gone.contains(&s.contact));
        self.campaign_steps
            .retain(|(contact, _)| !gone.contains(contact));
        self.purchases
            .retain(|(contact, _)| !gone.contains(contact));
        // Tokens decide commits: each one is kept or dropped on its own, whatever the
        // (metrics-only) arrival times hold.
        let arrived = std::mem::take(&mut self.arrived_ms);
        for (i, token) in std::mem::take(&mut self.tokens).into_iter().enumerate() {
            if !ended.contains(&token.0) {
                self.arrived_ms.extend(arrived.get(i));
                self.tokens.push(token);
            }
        }
    }
}

/// Writes `rows` and `contacts` in the order above and returns the tokens now done.
pub(super) async fn write(
    deps: &ShardDeps,
    rows: Pending,
    contacts: &[ContactWrite<'_>],
) -> Result<Vec<Token>, EngineError> {
    let Pending {
        records,
        messages,
        messages_after_contacts,
        statuses,
        campaign_steps,
        purchases,
        tokens,
        arrived_ms,
    } = rows;
    if !records.is_empty() {
        send_outputs(&*deps.producer, records, &deps.topics.dead_letter).await?;
    }
    stream::iter(statuses)
        .map(|s| {
            let store = deps.store.clone();
            async move {
                with_retries("record_status", || {
                    store.record_status(&s.contact, &s.wamid, s.status, s.at, s.error_code)
                })
                .await
            }
        })
        .buffer_unordered(STORE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let mut by_campaign: BTreeMap<String, Vec<(PhoneNumber, RecipientUpdate)>> = BTreeMap::new();
    for (contact, step) in campaign_steps {
        by_campaign
            .entry(step.campaign_id)
            .or_default()
            .push((contact, step.update));
    }
    for (campaign_id, updates) in &by_campaign {
        with_retries("record_recipients", || {
            deps.store.record_recipients(campaign_id, updates)
        })
        .await?;
    }
    if !contacts.is_empty() || !messages.is_empty() || !purchases.is_empty() {
        with_retries("write_behind", || {
            deps.store.write_behind(contacts, &messages, &purchases)
        })
        .await?;
    }
    if !messages_after_contacts.is_empty() {
        with_retries("write_behind", || {
            deps.store.write_behind(&[], &messages_after_contacts, &[])
        })
        .await?;
    }
    if let (Some(changes), false) = (&deps.changes, contacts.is_empty()) {
        let states = contacts
            .iter()
            .map(|write| ContactState::from(write.contact))
            .collect();
        changes.changed(states).await?;
    }
    let stored_ms = chrono::Utc::now().timestamp_millis();
    let delay = catalog::ENGINE_INGEST_DELAY.histogram(&[]);
    for arrived in arrived_ms {
        delay.record((stored_ms - arrived).max(0) as f64 / 1000.0);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use chrono::Utc;

    use crate::domain::auto_reply::AutoReplies;
    use crate::domain::contact::Contact;
    use crate::domain::message::DeliveryTimeline;
    use crate::domain::tier::TierPolicy;
    use crate::storage::bus::{Bus, EmbeddedBus, EmbeddedBusConfig};
    use crate::storage::store::{Contacts, Direction, EmbeddedStore, MessageLog};

    use super::super::{OutputTopics, ShardLimits};

    #[derive(Default)]
    struct Recorded(Mutex<Vec<ContactState>>);

    #[async_trait]
    impl ContactChanges for Recorded {
        async fn changed(&self, contacts: Vec<ContactState>) -> Result<(), EngineError> {
            self.0.lock().unwrap().extend(contacts);
            Ok(())
        }
        async fn erased(&self, _: &PhoneNumber) -> Result<(), EngineError> {
            Ok(())
        }
    }

    fn message(contact: &PhoneNumber, wamid: &str) -> MessageRecord {
        MessageRecord {
            wamid: wamid.into(),
            contact: contact.clone(),
            direction: Direction::Inbound,
            kind: "text".into(),
            body: Some("hi".into()),
            campaign_id: None,
            created_at: Utc::now(),
            timeline: DeliveryTimeline::default(),
        }
    }

    #[tokio::test]
    async fn a_flush_stores_rows_and_contacts_then_publishes_the_contacts_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path().join("store.redb")).unwrap());
        let bus = EmbeddedBus::open(EmbeddedBusConfig::new(dir.path().join("bus"))).unwrap();
        let recorded = Arc::new(Recorded::default());
        let deps = ShardDeps {
            store: store.clone(),
            producer: bus.producer(),
            topics: OutputTopics {
                events: "crm.events".into(),
                campaign: "wa.campaign".into(),
                outbound: "wa.outbound".into(),
                ocr_jobs: "crm.ocr.jobs".into(),
                dead_letter: "crm.dlq".into(),
            },
            replies: AutoReplies::new(Vec::new()).unwrap(),
            tiers: TierPolicy::default(),
            limits: ShardLimits {
                max_resident: 10,
                max_resident_bytes: usize::MAX,
                idle_timeout: Duration::from_secs(60),
                flush_max_delay: Duration::from_millis(50),
                flush_max_dirty: 10,
            },
            changes: Some(recorded.clone()),
            ask_marital_status: false,
            consent_question: None,
            event_triggers: Default::default(),
        };
        let siti = PhoneNumber::parse("0123456789").unwrap();
        let ali = PhoneNumber::parse("0129876543").unwrap();
        let mut contact = Contact::new(siti.clone(), Utc::now());
        contact.name = Some("Siti".into());
        let tp = TopicPartition::new("wa.inbound", 0);
        let rows = Pending {
            messages: vec![message(&siti, "wamid.1")],
            messages_after_contacts: vec![message(&ali, "wamid.2")],
            tokens: vec![(tp.clone(), 7), (tp.clone(), 8)],
            ..Pending::default()
        };
        let done = write(&deps, rows, &[ContactWrite::whole(&contact)])
            .await
            .unwrap();
        assert_eq!(done, vec![(tp.clone(), 7), (tp, 8)]);
        let stored = store.load_contact(&siti).await.unwrap().unwrap();
        assert_eq!(stored.name.as_deref(), Some("Siti"));
        assert!(store.message(&siti, "wamid.1").await.unwrap().is_some());
        assert!(store.message(&ali, "wamid.2").await.unwrap().is_some());
        let published = recorded.0.lock().unwrap().clone();
        assert_eq!(published, vec![ContactState::from(&contact)]);

        // Nothing written, nothing published.
        write(&deps, Pending::default(), &[]).await.unwrap();
        assert_eq!(recorded.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn abandoning_drops_the_gone_contacts_rows_and_the_ended_partitions_tokens() {
        let siti = PhoneNumber::parse("0123456789").unwrap();
        let ali = PhoneNumber::parse("0129876543").unwrap();
        let (p0, p1) = (
            TopicPartition::new("wa.inbound", 0),
            TopicPartition::new("wa.inbound", 1),
        );
        let mut pending = Pending {
            messages: vec![message(&siti, "a"), message(&ali, "b")],
            messages_after_contacts: vec![message(&siti, "c")],
            tokens: vec![(p0.clone(), 1), (p1.clone(), 2)],
            arrived_ms: vec![1_000, 2_000],
            ..Pending::default()
        };
        pending.abandon(&HashSet::from([siti]), &HashSet::from([p0]));
        assert_eq!(pending.messages.len(), 1);
        assert_eq!(pending.messages[0].contact, ali);
        assert!(pending.messages_after_contacts.is_empty());
        assert_eq!(pending.tokens, vec![(p1, 2)]);
        assert_eq!(pending.arrived_ms, vec![2_000]);
    }
}
