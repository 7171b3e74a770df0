//! The contact changelog (crm.contacts): at each flush, the indexable state of every
//! contact it stored, keyed by the contact like wa.inbound (so partition N of both has one
//! owner), written before the records that changed them are reported done. A segment index
//! rebuilds its partitions from this topic and follows it afterwards. A replay writes the
//! same state again, with the same version (`updated_at`): readers keep the later version.

use std::sync::Arc;

use async_trait::async_trait;

use crate::storage::bus::{Producer, Record};
use crate::topics::contacts::{self, ContactState};

use super::error::EngineError;
use super::outputs::send_outputs;
use super::shard::ContactChanges;

pub struct ChangelogWriter {
    pub producer: Arc<dyn Producer>,
    /// crm.contacts under the deployment's namespace.
    pub topic: String,
    /// Where a state the bus refuses for what it is (too large) goes.
    pub dead_letter_topic: String,
}

impl ChangelogWriter {
    fn record(&self, state: &ContactState) -> Record {
        Record::new(
            self.topic.clone(),
            contacts::key(&state.phone_number),
            state.encode(),
        )
    }
}

#[async_trait]
impl ContactChanges for ChangelogWriter {
    async fn erased(&self, contact: &crate::domain::phone::PhoneNumber) -> Result<(), EngineError> {
        // An empty payload: Kafka compaction keeps the tombstone, then drops the key.
        let tombstone = Record::new(self.topic.clone(), contacts::key(contact), Vec::new());
        send_outputs(&*self.producer, vec![tombstone], &self.dead_letter_topic)
            .await
            .map_err(Into::into)
    }
    async fn changed(&self, states: Vec<ContactState>) -> Result<(), EngineError> {
        let records = states.iter().map(|state| self.record(state)).collect();
        send_outputs(&*self.producer, records, &self.dead_letter_topic).await?;
        Ok(())
    }
}
