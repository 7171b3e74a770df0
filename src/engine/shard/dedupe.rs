//! How a shard tells a redelivered event from a new one. A contact's dedupe window (its
//! latest fingerprints, stored in its row) answers for recent events; a message the window
//! no longer holds, and no newer than the latest one seen, may be a late redelivery, and its
//! stored row says whether it is (rows a replay may look up are written after their
//! contact's row: see `flush`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{stream, StreamExt, TryStreamExt};

use crate::domain::contact::Contact;
use crate::domain::phone::PhoneNumber;
use crate::domain::recent::fingerprint;
use crate::retry::with_retries;
use crate::storage::store::ContactStore;
use crate::topics::inbound::InboundMessage;

use super::residents::Residents;
use super::{Work, STORE_CONCURRENCY};
use crate::engine::error::EngineError;

/// Whether `message` is no newer than the latest message `contact` has had: a message a
/// replay may have to look up, as its window may no longer hold it.
pub(super) fn no_newer_than_latest(contact: &Contact, message: &InboundMessage) -> bool {
    contact
        .interactions
        .last_interaction
        .is_some_and(|latest| message.timestamp <= latest)
}

/// The positions in the batch of its messages that were applied long ago. Only messages
/// the window does not hold and that are no newer than the latest one cost a look-up, a
/// point read: a message newer than the latest one costs none (WhatsApp times are whole
/// seconds, so a burst within one second does).
pub(super) async fn redelivered(
    store: &Arc<dyn ContactStore>,
    residents: &Residents,
    batch: &[Work],
) -> Result<HashSet<usize>, EngineError> {
    let suspects: Vec<(usize, PhoneNumber, DateTime<Utc>, String)> = batch
        .iter()
        .enumerate()
        .filter_map(|(position, work)| {
            let message = work.event.message()?;
            let contact = &residents.get(&work.contact)?.contact;
            let suspect = no_newer_than_latest(contact, message)
                && !contact.applied_events.contains(&work.event.dedupe_key());
            suspect.then(|| {
                (
                    position,
                    work.contact.clone(),
                    message.timestamp,
                    message.wamid.clone(),
                )
            })
        })
        .collect();
    if suspects.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<Option<usize>> = stream::iter(suspects)
        .map(|(position, contact, at, wamid)| {
            let store = store.clone();
            async move {
                let stored = with_retries("inbound_stored", || {
                    store.inbound_stored(&contact, at, &wamid)
                })
                .await?;
                Ok::<_, EngineError>(stored.then_some(position))
            }
        })
        .buffer_unordered(STORE_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// Applying a batch pushes old events out of full windows, and one of them may be repeated
/// later in the same batch, which [`redelivered`] did not look up (the window held it
/// then). The fingerprints each contact's window lets go of during the batch are kept here.
#[derive(Default)]
pub(super) struct Forgotten {
    by_contact: HashMap<PhoneNumber, HashSet<i64>>,
}

impl Forgotten {
    /// Whether the window of `contact` let go of `dedupe_key` earlier in this batch.
    pub fn repeated(&self, contact: &PhoneNumber, dedupe_key: &str) -> bool {
        // Only a contact whose window has let go of something pays for the fingerprint.
        self.by_contact
            .get(contact)
            .is_some_and(|gone| gone.contains(&fingerprint(dedupe_key)))
    }

    /// Applying an event to `contact` pushed `print` out of its window.
    pub fn forgot(&mut self, contact: &PhoneNumber, print: i64) {
        self.by_contact
            .entry(contact.clone())
            .or_default()
            .insert(print);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    use crate::engine::apply::inbound_record;
    use crate::engine::shard::residents::Resident;
    use crate::engine::shard::WorkEvent;
    use crate::storage::bus::TopicPartition;
    use crate::storage::store::EmbeddedStore;
    use crate::topics::inbound::{Business, EventPayload, InboundEvent, MessageKind};

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + second, 0).unwrap()
    }

    fn text(phone: &PhoneNumber, wamid: &str, second: i64) -> Work {
        let message = InboundMessage {
            wamid: wamid.into(),
            from: phone.as_str().into(),
            profile_name: None,
            timestamp: at(second),
            context: None,
            kind: MessageKind::Text { body: "hi".into() },
        };
        Work {
            contact: phone.clone(),
            token: (TopicPartition::new("wa.inbound", 0), second as u64),
            arrived_ms: second * 1000,
            event: WorkEvent::Inbound(InboundEvent {
                business: Business {
                    waba_id: "1".into(),
                    phone_number_id: "2".into(),
                    display_phone_number: "3".into(),
                },
                payload: EventPayload::Message(message),
            }),
        }
    }

    #[tokio::test]
    async fn only_older_messages_the_window_lost_are_looked_up_and_stored_ones_are_redelivered() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ContactStore> =
            Arc::new(EmbeddedStore::open(dir.path().join("store.redb")).unwrap());
        let phone = PhoneNumber::parse("0123456789").unwrap();
        let mut contact = Contact::new(phone.clone(), at(0));
        contact.interactions.last_interaction = Some(at(100));
        // In the window: known without a look-up, so never reported here.
        let windowed = text(&phone, "wamid.windowed", 90);
        contact.applied_events.insert(&windowed.event.dedupe_key());
        let mut residents = Residents::new();
        residents.insert(
            phone.clone(),
            Resident::new(
                contact,
                None,
                TopicPartition::new("wa.inbound", 0),
                Instant::now(),
            ),
        );
        // Applied long ago: its row is stored.
        let old_stored = text(&phone, "wamid.old-stored", 50);
        let message = old_stored.event.message().unwrap();
        store
            .put_message(&inbound_record(&phone, message))
            .await
            .unwrap();
        // Old but never stored: new to this contact.
        let old_new = text(&phone, "wamid.old-new", 60);
        // Newer than the latest: not looked up even if a row existed.
        let newer = text(&phone, "wamid.newer", 200);
        store
            .put_message(&inbound_record(&phone, newer.event.message().unwrap()))
            .await
            .unwrap();

        let batch = vec![windowed, old_stored, old_new, newer];
        let found = redelivered(&store, &residents, &batch).await.unwrap();
        assert_eq!(found, HashSet::from([1]));
    }

    #[test]
    fn forgotten_fingerprints_are_kept_per_contact() {
        let siti = PhoneNumber::parse("0123456789").unwrap();
        let ali = PhoneNumber::parse("0129876543").unwrap();
        let mut forgotten = Forgotten::default();
        assert!(!forgotten.repeated(&siti, "inbound:wamid.A"));
        forgotten.forgot(&siti, fingerprint("inbound:wamid.A"));
        assert!(forgotten.repeated(&siti, "inbound:wamid.A"));
        assert!(!forgotten.repeated(&ali, "inbound:wamid.A"));
        assert!(!forgotten.repeated(&siti, "inbound:wamid.B"));
    }
}
