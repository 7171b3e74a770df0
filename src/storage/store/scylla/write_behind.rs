//! Writing rows of many contacts at once (a flush): grouped by partition, and the
//! partitions by replicas into batches.

use super::*;

impl ScyllaStore {
    /// Groups the rows by partition, and the partitions by replicas into batches.
    pub(super) async fn write_partitions(
        &self,
        contacts: &[ContactWrite<'_>],
        messages: &[MessageRecord],
        purchases: &[(PhoneNumber, Purchase)],
        absent: Absent,
    ) -> Result<(), StoreError> {
        let mut partitions: HashMap<&str, Partition<'_>> = HashMap::new();
        for message in messages {
            let key = message.contact.as_str();
            partitions.entry(key).or_default().messages.push(message);
        }
        for (contact, purchase) in purchases {
            let key = contact.as_str();
            partitions
                .entry(key)
                .or_default()
                .purchases
                .push((contact, purchase));
        }
        for write in contacts {
            partitions
                .entry(write.contact.phone_number.as_str())
                .or_default()
                .contact = Some(*write);
        }
        // Partitions with the same replicas share batches (see batch.rs).
        let cluster = self.session.get_cluster_state();
        let keyspace = self.metadata_keyspace.as_str();
        let mut by_owners: HashMap<Owners<'_>, Packer<Write<'_>>> = HashMap::new();
        for (key, partition) in partitions {
            // Every table is keyed by the phone number: one token for all.
            let owners = match cluster.compute_token(keyspace, "contacts", &(key,)) {
                Ok(token) => {
                    let mut replicas: Vec<_> = partition
                        .tables()
                        .into_iter()
                        .flat_map(|table| cluster.get_token_endpoints(keyspace, table, token))
                        .map(|(node, shard)| (node.host_id, shard))
                        .collect();
                    replicas.sort_unstable();
                    replicas.dedup();
                    Owners::Replicas(replicas)
                }
                Err(_) => Owners::Unknown(key),
            };
            by_owners
                .entry(owners)
                .or_default()
                .partition(self.partition_writes(partition, absent)?);
        }
        let mut sends = Vec::new();
        for packer in by_owners.into_values() {
            for chain in batch::into_batches(packer.finish()) {
                sends.push(self.send_chain(chain));
            }
        }
        futures::stream::iter(sends)
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await
    }

    /// The statements of one partition, in order: its messages (the row with the normal
    /// write timestamp, the time index, and the reports with the status-timestamp rule,
    /// so statuses already recorded never regress), its purchases, then the contact's row
    /// (a write-behind flush sends purchases in a step of their own, see `write_behind`).
    fn partition_writes<'a>(
        &'a self,
        partition: Partition<'a>,
        absent: Absent,
    ) -> Result<Vec<Write<'a>>, StoreError> {
        let mut writes = Vec::new();
        let mut push = |statement: &'a PreparedStatement, values: BoxedRow<'a>, text_bytes| {
            writes.push(Write {
                statement,
                values,
                text_bytes,
            })
        };
        for message in partition.messages {
            let key = message.contact.as_str();
            let wamid = message.wamid.as_str();
            let text = message.body.as_ref().map_or(0, String::len) + message.kind.len();
            if inbound_only(message) {
                let row = InboundValues::new(message, absent);
                push(
                    &self.st.messages.put_inbound,
                    Box::new(row),
                    text + wamid.len(),
                );
                continue;
            }
            let row = MessageValues::new(message, absent);
            push(
                &self.st.messages.put_message,
                Box::new(row),
                text + wamid.len(),
            );
            let index = (key, message.created_at, wamid);
            push(
                &self.st.messages.put_message_index,
                Box::new(index),
                wamid.len(),
            );
            for (status, at, code) in message.timeline.reports() {
                if let Some((statement, values)) =
                    self.status_statement(key, wamid, status, at, code)
                {
                    push(statement, values, wamid.len());
                }
            }
        }
        for (contact, purchase) in partition.purchases {
            let row = PurchaseValues::new(contact, purchase, absent);
            let bytes = row.text_bytes();
            push(&self.st.contacts.put_purchase, Box::new(row), bytes);
        }
        if let Some(write) = partition.contact {
            let row = ContactValues::new(write, absent)?;
            let bytes = row.text_bytes();
            push(&self.st.contacts.upsert_contact, Box::new(row), bytes);
        }
        Ok(writes)
    }

    /// Sends a chain's batches one after the other.
    async fn send_chain(&self, chain: Chain<'_>) -> Result<(), StoreError> {
        for (mut batch, values) in chain {
            batch.set_is_idempotent(true);
            self.session
                .batch(&batch, values)
                .await
                .map_err(|e| errors::execution("write_behind", e))?;
        }
        Ok(())
    }
}
