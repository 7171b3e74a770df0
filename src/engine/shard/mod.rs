//! A contact shard: one ractor factory worker owning many resident contacts (an actor per
//! contact would cost ~10 KB each). Jobs are keyed by the contact's [`ShardKey`], so a
//! contact's events are applied in order by one owner.
//!
//! Write-behind: applied changes stay in memory until a flush, which happens when the
//! oldest unflushed change is `flush_max_delay` old, when `flush_max_dirty` contacts are
//! dirty, or on request (revocation, shutdown); [`flush`] says what it writes in which
//! order, and only then are the records' offsets reported done: nothing is committed
//! before its effects are stored, and a crash in between replays into the same ids and
//! the contact's dedupe keys.
//!
//! Parts: [`residents`] (the contacts held, LRU), [`dedupe`] (what is a redelivery),
//! [`flush`] (the write order, and the [`ContactChanges`] seam); this file is the worker.

mod dedupe;
mod flush;
mod residents;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::{stream, StreamExt, TryStreamExt};
use ractor::factory::{FactoryMessage, Job, JobOptions, Worker, WorkerId};
use ractor::{ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::domain::auto_reply::AutoReplies;
use crate::domain::contact::Contact;
use crate::domain::contact_fields::{ContactField, ContactFields, StoredFields};
use crate::domain::phone::PhoneNumber;
use crate::domain::recent::RECENT_CAPACITY;
use crate::domain::tier::TierPolicy;
use crate::storage::bus::{Leases, Producer, Record, TopicPartition};
use crate::storage::store::{ContactStore, ContactWrite};
use crate::topics::inbound::{EventPayload, InboundEvent, InboundMessage};

use dedupe::{no_newer_than_latest, redelivered, Forgotten};
pub use flush::ContactChanges;
use flush::Pending;
use residents::{Budget, Resident, Residents};

use super::apply::{apply, inbound_record, ApplyContext, Effects, Outcome};
use super::apply_ocr::{apply_ocr, ocr_dedupe_key};
use super::error::EngineError;
use super::triggers::EventTriggers;
use crate::domain::clock::malaysia_today;
use crate::metrics::catalog;
use crate::retry::with_retries;
use crate::topics::ocr::OcrResult;

/// A consumed record's position: reported back once its effects are stored.
pub type Token = (TopicPartition, u64);

/// Store calls one flush keeps in flight.
const STORE_CONCURRENCY: usize = 64;

pub struct Work {
    pub contact: PhoneNumber,
    pub token: Token,
    pub event: WorkEvent,
    /// When its record arrived on its topic (ms since the epoch), for the ingest delay.
    pub arrived_ms: i64,
}

/// What a shard applies to a contact: a webhook event or an OCR result.
pub enum WorkEvent {
    Inbound(InboundEvent),
    Ocr(OcrResult),
}

impl WorkEvent {
    fn timestamp(&self) -> Option<chrono::DateTime<Utc>> {
        match self {
            WorkEvent::Inbound(event) => event.timestamp(),
            WorkEvent::Ocr(result) => Some(result.completed_at),
        }
    }

    /// What its contact's dedupe window records it by.
    fn dedupe_key(&self) -> String {
        match self {
            WorkEvent::Inbound(event) => event.dedupe_key(),
            WorkEvent::Ocr(result) => ocr_dedupe_key(result),
        }
    }

    /// The inbound WhatsApp message it carries, if it is one.
    fn message(&self) -> Option<&InboundMessage> {
        match self {
            WorkEvent::Inbound(event) => match &event.payload {
                EventPayload::Message(message) => Some(message),
                _ => None,
            },
            WorkEvent::Ocr(_) => None,
        }
    }

    /// For metrics labels.
    fn kind(&self) -> &'static str {
        match self {
            WorkEvent::Inbound(event) => match &event.payload {
                EventPayload::Message(_) => "message",
                EventPayload::Status(_) => "status",
                EventPayload::Error(_) => "error",
                EventPayload::ProfileEdit(_) => "profile_edit",
                EventPayload::CampaignSend(_) => "campaign_send",
                EventPayload::Click(_) => "click",
                EventPayload::MarketingPreference(_) => "marketing_preference",
                EventPayload::PurchaseReview(_) => "purchase_review",
                EventPayload::Erasure(_) => "erasure",
            },
            WorkEvent::Ocr(_) => "ocr_result",
        }
    }
}

pub enum ShardMsg {
    Apply(Vec<Work>),
    Tick,
    /// Store everything pending; answer when done.
    Flush(RpcReplyPort<()>),
    /// Store everything pending, then drop the contacts of these partitions.
    Release(Vec<TopicPartition>, RpcReplyPort<()>),
}

#[derive(Clone, Debug)]
pub struct ShardLimits {
    pub max_resident: usize,
    /// Estimated bytes of resident contacts (this shard's share of
    /// `engine.max_resident_mb`).
    pub max_resident_bytes: usize,
    pub idle_timeout: Duration,
    pub flush_max_delay: Duration,
    pub flush_max_dirty: usize,
}

/// Topic names resolved under the deployment's namespace.
#[derive(Clone, Debug)]
pub struct OutputTopics {
    pub events: String,
    pub outbound: String,
    pub ocr_jobs: String,
    /// wa.campaign: sends that a contact's event triggered.
    pub campaign: String,
    /// Where an output the bus refuses goes (see [`super::outputs`]).
    pub dead_letter: String,
}

pub struct ShardDeps {
    pub store: Arc<dyn ContactStore>,
    pub producer: Arc<dyn Producer>,
    pub topics: OutputTopics,
    pub replies: AutoReplies,
    pub tiers: TierPolicy,
    pub limits: ShardLimits,
    /// Who follows the changed contacts of each flush: the contact changelog.
    pub changes: Option<Arc<dyn ContactChanges>>,
    /// Ask the marital status after a registration.
    pub ask_marital_status: bool,
    /// The consent question to ask after a registration, when configured.
    pub consent_question: Option<String>,
    /// Running campaigns started by a contact's own events.
    pub event_triggers: Arc<EventTriggers>,
}

pub struct ShardArgs {
    pub deps: Arc<ShardDeps>,
    /// Revocations under way: the work of partitions whose lease has ended is abandoned.
    pub leases: Arc<Leases>,
    /// Where finished tokens go (the partition consumer's offset tracker).
    pub done: mpsc::UnboundedSender<Vec<Token>>,
    /// This worker would replace one that failed (see [`Shard`]'s `pre_start`).
    pub replacing: bool,
}

/// A shard job's key: the slot of the contacts it concerns. A contact's slot is a hash of
/// its number, stable for the life of the process, and slot `i` is worker `i`, so every
/// job about a contact lands on the same worker. One job carries all of a poll's records
/// for its worker's contacts, so the contacts it must load are loaded concurrently.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct ShardKey {
    slot: usize,
}

impl ShardKey {
    /// The slot of a contact among `workers` (FNV-1a of the number).
    pub fn of(contact: &PhoneNumber, workers: usize) -> ShardKey {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in contact.as_str().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        ShardKey {
            slot: (hash % workers.max(1) as u64) as usize,
        }
    }

    /// Addresses one worker, for the messages every worker gets (flush, release, ticks).
    pub fn worker(wid: WorkerId) -> ShardKey {
        ShardKey { slot: wid }
    }

    pub fn slot(self) -> usize {
        self.slot
    }
}

/// A factory job with default options (no time-to-live: shard work is never discarded).
pub fn job(key: ShardKey, msg: ShardMsg) -> Job<ShardKey, ShardMsg> {
    Job {
        key,
        msg,
        options: JobOptions::default(),
        accepted: None,
    }
}

/// The tick task; aborted when the worker goes, even when killed without `post_stop`.
struct Ticker(JoinHandle<()>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct ShardState {
    index: usize,
    deps: Arc<ShardDeps>,
    leases: Arc<Leases>,
    done: mpsc::UnboundedSender<Vec<Token>>,
    residents: Residents,
    dirty: HashSet<PhoneNumber>,
    dirty_since: Option<Instant>,
    pending: Pending,
    ticker: Ticker,
}

/// The contact shard worker. Shards run under a ractor factory ([`super::shard_pool`]),
/// which routes each job to the worker that owns its [`ShardKey`].
pub struct Shard;

impl Worker for Shard {
    type Key = ShardKey;
    type Message = ShardMsg;
    type Arguments = ShardArgs;
    type State = ShardState;

    async fn pre_start(
        &self,
        wid: WorkerId,
        factory: &ActorRef<FactoryMessage<ShardKey, ShardMsg>>,
        args: ShardArgs,
    ) -> Result<ShardState, ActorProcessingErr> {
        if args.replacing {
            // The factory would start a fresh worker in place of a failed one, but the
            // failed one took unflushed changes and unreported offsets with it: refusing
            // fails the factory, and with it the role, which restarts from the commit.
            return Err(format!(
                "shard {wid} failed with unstored changes; its role restarts from the committed offsets"
            )
            .into());
        }
        // Ticks drive the bounded flush delay and idle eviction.
        let period = (args.deps.limits.flush_max_delay / 4).max(Duration::from_millis(5));
        let ticker = factory.send_interval(period, move || {
            FactoryMessage::Dispatch(job(ShardKey::worker(wid), ShardMsg::Tick))
        });
        Ok(ShardState {
            index: wid,
            deps: args.deps,
            leases: args.leases,
            done: args.done,
            residents: Residents::new(),
            dirty: HashSet::new(),
            dirty_since: None,
            pending: Pending::default(),
            ticker: Ticker(ticker),
        })
    }

    async fn post_stop(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<ShardKey, ShardMsg>>,
        state: &mut ShardState,
    ) -> Result<(), ActorProcessingErr> {
        state.ticker.0.abort();
        // A clean stop stores what is pending, so the owner can commit it.
        state.flush().await?;
        state.publish_gauges(true);
        Ok(())
    }

    async fn handle(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<ShardKey, ShardMsg>>,
        Job { key, msg, .. }: Job<ShardKey, ShardMsg>,
        state: &mut ShardState,
    ) -> Result<ShardKey, ActorProcessingErr> {
        match msg {
            ShardMsg::Apply(batch) => {
                state.apply_batch(batch).await?;
                if state.dirty.len() >= state.deps.limits.flush_max_dirty {
                    state.flush().await?;
                }
            }
            ShardMsg::Tick => {
                let due = state
                    .dirty_since
                    .is_some_and(|since| since.elapsed() >= state.deps.limits.flush_max_delay);
                if due || (state.dirty.is_empty() && !state.pending.tokens.is_empty()) {
                    state.flush().await?;
                }
                state.evict().await?;
                state.publish_gauges(false);
            }
            ShardMsg::Flush(reply) => {
                state.flush().await?;
                let _ = reply.send(());
            }
            ShardMsg::Release(partitions, reply) => {
                state.flush().await?;
                state.release(&partitions);
                let _ = reply.send(());
            }
        }
        Ok(key)
    }
}

impl ShardState {
    async fn apply_batch(&mut self, mut batch: Vec<Work>) -> Result<(), EngineError> {
        let mut ended = self.leases.ended(Instant::now());
        if !ended.is_empty() {
            let before = batch.len();
            batch.retain(|work| !ended.contains(&work.token.0));
            abandoned_records(before - batch.len());
        }
        // Activate the contacts this batch needs, loading them concurrently.
        let mut missing: Vec<PhoneNumber> = batch
            .iter()
            .map(|w| w.contact.clone())
            .filter(|c| !self.residents.contains(c))
            .collect();
        missing.sort();
        missing.dedup();
        let store = self.deps.store.clone();
        let loaded: Vec<(PhoneNumber, Option<Contact>)> = stream::iter(missing)
            .map(|phone| {
                let store = store.clone();
                async move {
                    let contact =
                        with_retries("load_contact", || store.load_contact(&phone)).await?;
                    Ok::<_, EngineError>((phone, contact))
                }
            })
            .buffer_unordered(STORE_CONCURRENCY)
            .try_collect()
            .await?;
        let mut new_contacts = HashSet::new();
        let now = Instant::now();
        for (phone, stored) in loaded {
            let partition = batch
                .iter()
                .find(|w| w.contact == phone)
                .map(|w| w.token.0.clone())
                .expect("loaded contacts come from the batch");
            let snapshot = stored.as_ref().map(StoredFields::of);
            let contact = stored.unwrap_or_else(|| {
                new_contacts.insert(phone.clone());
                let first_seen = batch
                    .iter()
                    .find(|w| w.contact == phone)
                    .and_then(|w| w.event.timestamp())
                    .unwrap_or_else(Utc::now);
                Contact::new(phone.clone(), first_seen)
            });
            self.residents
                .insert(phone, Resident::new(contact, snapshot, partition, now));
        }

        let redelivered = redelivered(&self.deps.store, &self.residents, &batch).await?;
        let mut forgotten = Forgotten::default();
        let deps = self.deps.clone();
        let event_triggers = deps.event_triggers.current();
        let ctx = ApplyContext {
            replies: &deps.replies,
            tiers: &deps.tiers,
            now: Utc::now(),
            today: malaysia_today(),
            ask_marital_status: deps.ask_marital_status,
            consent_question: deps.consent_question.as_deref(),
            event_triggers: &event_triggers,
        };
        let mut erased = Vec::new();
        for (position, work) in batch.into_iter().enumerate() {
            let unflushed = self
                .residents
                .get(&work.contact)
                .map_or(0, |r| r.unflushed_events);
            if unflushed >= RECENT_CAPACITY {
                self.flush().await?;
                // The flush abandons the contacts of partitions whose lease ended since
                // the batch began: their remaining work goes too.
                ended.extend(self.leases.ended(Instant::now()));
            }
            if ended.contains(&work.token.0) {
                abandoned_records(1);
                continue;
            }
            if let WorkEvent::Inbound(InboundEvent {
                payload: EventPayload::Erasure(_),
                ..
            }) = &work.event
            {
                self.erase(&work.contact).await?;
                // A later event of this batch starts a new contact, from nothing.
                let contact = Contact::new(work.contact.clone(), Utc::now());
                self.residents.insert(
                    work.contact.clone(),
                    Resident::new(contact, None, work.token.0.clone(), now),
                );
                new_contacts.insert(work.contact.clone());
                erased.push(work.contact.clone());
                catalog::ENGINE_EVENTS
                    .counter(&[work.event.kind().into(), "applied".into()])
                    .increment(1);
                self.pending.tokens.push(work.token);
                self.pending.arrived_ms.push(work.arrived_ms);
                continue;
            }
            let resident = self
                .residents
                .get_mut(&work.contact)
                .expect("activated above, and its partition's lease holds");
            resident.last_used = now;
            let is_new = new_contacts.remove(&work.contact);
            let repeated_in_batch = forgotten.repeated(&work.contact, &work.event.dedupe_key());
            let next_forgotten = resident.contact.applied_events.next_to_forget();
            let found_stored = redelivered.contains(&position);
            // What `redelivered` would ask of a replay of this message.
            let late = work
                .event
                .message()
                .is_some_and(|message| no_newer_than_latest(&resident.contact, message));
            let outcome = match &work.event {
                _ if found_stored || repeated_in_batch => Outcome::Duplicate,
                WorkEvent::Inbound(event) => apply(&mut resident.contact, is_new, event, &ctx),
                WorkEvent::Ocr(result) => apply_ocr(&mut resident.contact, result, &ctx),
            };
            let kind = work.event.kind();
            let counted = |outcome: &'static str| {
                catalog::ENGINE_EVENTS
                    .counter(&[kind.into(), outcome.into()])
                    .increment(1);
                if let Some(message) = work.event.message() {
                    catalog::ENGINE_MESSAGES
                        .counter(&[message.kind.metric_label().into(), outcome.into()])
                        .increment(1);
                }
            };
            match outcome {
                Outcome::Duplicate => {
                    counted("duplicate");
                    // Known by the contact's window, its row may still be missing: a flush
                    // whose tables were not written all or nothing can store the contact's
                    // row without it. Writing the same row again restores it.
                    if let (false, Some(message)) = (found_stored, work.event.message()) {
                        self.pending
                            .messages_after_contacts
                            .push(inbound_record(&work.contact, message));
                    }
                }
                Outcome::Applied(mut effects) => {
                    counted("applied");
                    resident.unflushed_events += 1;
                    // Applying recorded one new key, pushing out the oldest of a full window.
                    if let Some(print) = next_forgotten {
                        forgotten.forgot(&work.contact, print);
                    }
                    if late {
                        self.pending
                            .messages_after_contacts
                            .append(&mut effects.messages);
                    }
                    self.dirty.insert(work.contact.clone());
                    self.dirty_since.get_or_insert(now);
                    self.stage(&work.contact, effects)?;
                }
            }
            self.residents.touch(&work.contact);
            self.pending.tokens.push(work.token);
            self.pending.arrived_ms.push(work.arrived_ms);
        }
        // An erased contact nothing wrote to since is not kept: the next event loads it
        // (finds nothing) and creates it as new.
        for phone in erased {
            if !self.dirty.contains(&phone) {
                self.residents.remove(&phone);
            }
        }
        Ok(())
    }

    /// Erases a contact: what came before is stored first (so nothing of it is written
    /// back after), then the store's rows, the changelog (a tombstone for every segment
    /// index) and the analytics copies (a marker after its events on crm.events).
    async fn erase(&mut self, contact: &PhoneNumber) -> Result<(), EngineError> {
        self.flush().await?;
        let store = self.deps.store.clone();
        let erased = with_retries("erase_contact", || store.erase_contact(contact)).await?;
        if let Some(changes) = &self.deps.changes {
            changes.erased(contact).await?;
        }
        let marker = Record::new(
            self.deps.topics.events.clone(),
            contact.as_str().as_bytes().to_vec(),
            Vec::new(),
        )
        .with_header(
            crate::topics::events::HEADER_ERASE_CONTACT,
            contact.as_str().as_bytes().to_vec(),
        );
        super::outputs::send_outputs(
            &*self.deps.producer,
            vec![marker],
            &self.deps.topics.dead_letter,
        )
        .await?;
        self.residents.remove(contact);
        self.dirty.remove(contact);
        tracing::info!(rows = erased.rows, "contact erased");
        Ok(())
    }

    fn stage(&mut self, contact: &PhoneNumber, effects: Effects) -> Result<(), EngineError> {
        let topics = &self.deps.topics;
        let key = contact.as_str().as_bytes().to_vec();
        for event in effects.events {
            self.pending.records.push(Record::new(
                topics.events.clone(),
                key.clone(),
                to_json(&event)?,
            ));
        }
        for job in effects.ocr_jobs {
            self.pending.records.push(Record::new(
                topics.ocr_jobs.clone(),
                key.clone(),
                to_json(&job)?,
            ));
        }
        for reply in effects.replies {
            catalog::ENGINE_REPLIES
                .counter(&[reply.rule.clone().unwrap_or_default().into()])
                .increment(1);
            self.pending.records.push(Record::new(
                topics.outbound.clone(),
                reply.phone_number_id.as_bytes().to_vec(),
                to_json(&reply)?,
            ));
        }
        for send in effects.triggered {
            self.pending.records.push(Record::new(
                topics.campaign.clone(),
                send.phone_number_id.as_bytes().to_vec(),
                send.encode(),
            ));
        }
        self.pending.messages.extend(effects.messages);
        self.pending.statuses.extend(effects.statuses);
        self.pending.campaign_steps.extend(
            effects
                .campaign_steps
                .into_iter()
                .map(|step| (contact.clone(), step)),
        );
        self.pending
            .purchases
            .extend(effects.purchases.into_iter().map(|p| (contact.clone(), p)));
        Ok(())
    }

    /// Stores everything pending, then reports its tokens as done.
    async fn flush(&mut self) -> Result<(), EngineError> {
        let ended = self.leases.ended(Instant::now());
        if !ended.is_empty() {
            self.abandon(&ended);
        }
        if self.pending.tokens.is_empty() && self.dirty.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let deps = self.deps.clone();
        // Which fields of each dirty contact changed: its row is written in the flush's
        // third step (see `flush`).
        // Each contact is digested once: to compare, and as what it is once written.
        let mut changes = Vec::with_capacity(self.dirty.len());
        let mut written_as = Vec::with_capacity(self.dirty.len());
        for phone in &self.dirty {
            let Some(resident) = self.residents.get_mut(phone) else {
                continue;
            };
            let mut now = StoredFields::of(&resident.contact);
            let changed = match &resident.stored {
                None => Some(ContactFields::ALL),
                Some(stored) => {
                    let mut changed = stored.changed_to(&now);
                    // Written as of updated_at: later than the stored version, or the
                    // store keeps that one (see Contacts::write_behind).
                    if !changed.is_empty() && resident.contact.supersede(stored.updated_at) {
                        changed.insert(ContactField::UpdatedAt);
                        now = StoredFields::of(&resident.contact);
                    }
                    (!changed.is_empty()).then_some(changed)
                }
            };
            if let Some(changed) = changed {
                changes.push((phone, changed));
            }
            written_as.push((phone, now));
        }
        let contacts: Vec<ContactWrite<'_>> = changes
            .into_iter()
            .filter_map(|(phone, changed)| {
                let resident = self.residents.get(phone)?;
                Some(ContactWrite {
                    contact: &resident.contact,
                    changed,
                })
            })
            .collect();
        let written = contacts.len();
        let rows = std::mem::take(&mut self.pending);
        let tokens = flush::write(&deps, rows, &contacts).await?;
        drop(contacts);
        for (phone, now) in written_as {
            if let Some(resident) = self.residents.get_mut(phone) {
                resident.stored = Some(now);
            }
        }
        for phone in self.dirty.drain() {
            if let Some(resident) = self.residents.get_mut(&phone) {
                resident.unflushed_events = 0;
            }
            self.residents.measure(&phone);
        }
        self.dirty_since = None;
        catalog::SHARD_FLUSH_SECONDS
            .histogram(&[])
            .record(started.elapsed().as_secs_f64());
        catalog::SHARD_FLUSH_CONTACTS
            .histogram(&[])
            .record(written as f64);
        // The owner may be gone (shutting down); its successor replays from the commit.
        let _ = self.done.send(tokens);
        Ok(())
    }

    /// Drops idle contacts and, over the memory budget, the least recently used ones. Only
    /// clean contacts are dropped; dirty ones are flushed first when over budget.
    async fn evict(&mut self) -> Result<(), EngineError> {
        let limits = self.deps.limits.clone();
        let budget = Budget {
            contacts: limits.max_resident,
            bytes: limits.max_resident_bytes,
        };
        if self.residents.over(budget) && !self.dirty.is_empty() {
            self.flush().await?;
        }
        let to_drop =
            self.residents
                .evictable(budget, limits.idle_timeout, Instant::now(), |phone| {
                    self.dirty.contains(phone)
                });
        let evicted = to_drop.len() as u64;
        for phone in to_drop {
            self.residents.remove(&phone);
        }
        if evicted > 0 {
            catalog::SHARD_EVICTED.counter(&[]).increment(evicted);
        }
        Ok(())
    }

    /// Drops, unstored, the contacts of partitions this process no longer owns, with
    /// their pending rows and tokens: the partitions' new owner replays their records from
    /// the last commit, and a write from here could land on top of its own. Outputs
    /// already staged still go (they are at least once anyway: consumers dedupe).
    fn abandon(&mut self, ended: &HashSet<TopicPartition>) {
        let gone: HashSet<PhoneNumber> = self
            .residents
            .in_partitions(|tp| ended.contains(tp))
            .into_iter()
            .collect();
        for phone in &gone {
            self.dirty.remove(phone);
            self.residents.remove(phone);
        }
        if self.dirty.is_empty() {
            self.dirty_since = None;
        }
        self.pending.abandon(&gone, ended);
        catalog::SHARD_ABANDONED_CONTACTS
            .counter(&[])
            .increment(gone.len() as u64);
    }

    fn release(&mut self, partitions: &[TopicPartition]) {
        for phone in self.residents.in_partitions(|tp| partitions.contains(tp)) {
            self.residents.remove(&phone);
        }
        self.publish_gauges(false);
    }

    fn publish_gauges(&self, stopped: bool) {
        let shard = self.index.to_string();
        let (resident, bytes) = if stopped {
            (0, 0)
        } else {
            (self.residents.len(), self.residents.bytes())
        };
        catalog::SHARD_RESIDENT_BYTES
            .gauge(&[shard.clone().into()])
            .set(bytes as f64);
        catalog::SHARD_RESIDENT
            .gauge(&[shard.into()])
            .set(resident as f64);
    }
}

fn abandoned_records(count: usize) {
    catalog::SHARD_ABANDONED_RECORDS
        .counter(&[])
        .increment(count as u64);
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, EngineError> {
    serde_json::to_vec(value).map_err(|e| EngineError::actor("shard", format!("encode: {e}")))
}
