//! `sembang contacts reindex`: writes every stored contact's indexable state to the
//! contact changelog (crm.contacts). Contacts stored before the changelog existed are in no
//! index until they change again; this backfills them. Safe to run at any time and twice:
//! a state written again is the same version, and a reader keeps the later one, so a
//! contact that changes meanwhile keeps its newer state.

use crate::config::Config;
use crate::engine::changelog::ChangelogWriter;
use crate::engine::shard::ContactChanges;
use crate::retry::with_retries;
use crate::storage::bus::{Bus, TopicSpec};
use crate::storage::store::ContactStore;
use crate::topics::contacts::ContactState;
use crate::topics::{self as topic, TopicNames};

use super::error::StartError;

/// Contacts read and written per step.
const PAGE: u32 = 500;

/// Writes the state of every contact in `store` to the changelog of the profile's
/// namespace (created if missing); returns how many.
pub async fn reindex(
    config: &Config,
    bus: &dyn Bus,
    store: &dyn ContactStore,
) -> Result<u64, StartError> {
    let names = TopicNames::new(&config.bus.namespace);
    bus.ensure_topics(&TopicSpec::all(
        &names,
        config.bus.partitions,
        config.bus.kafka_replication_factor,
    ))
    .await?;
    reindex_into(bus, store, &names).await
}

/// Writes the state of every contact in `store` to the changelog under `names`, through
/// the same writer as the shards' flushes; returns how many.
pub async fn reindex_into(
    bus: &dyn Bus,
    store: &dyn ContactStore,
    names: &TopicNames,
) -> Result<u64, StartError> {
    let writer = ChangelogWriter {
        producer: bus.producer(),
        topic: names.name(topic::CONTACTS),
        dead_letter_topic: names.name(topic::DEAD_LETTER),
    };
    let mut written = 0u64;
    let mut from = None;
    loop {
        let page =
            with_retries("scan_contacts", || store.scan_contacts(from.clone(), PAGE)).await?;
        let mut states = Vec::with_capacity(page.items.len());
        for phone in &page.items {
            // Gone meanwhile (erased): nothing to index.
            if let Some(contact) =
                with_retries("load_contact", || store.load_contact(phone)).await?
            {
                states.push(ContactState::from(&contact));
            }
        }
        written += states.len() as u64;
        if !states.is_empty() {
            writer.changed(states).await?;
        }
        match page.next {
            Some(next) => from = Some(next),
            None => return Ok(written),
        }
    }
}
