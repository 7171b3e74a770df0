//! Write-behind flushes as one unlogged batch per partition. A contact's row, its message
//! rows, their time index and their status writes share the partition key (the phone
//! number), so the server applies them as a single mutation: one request instead of three
//! per message, which is what a flush on a small cluster spends its CPU on. Batches never
//! span partitions (the ScyllaDB anti-pattern); a partition with a lot to write is split
//! into several batches, sent in order, the contact's row last.

use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;

/// Below the servers' default warning threshold for a batch (Cassandra 5 KiB is only a
/// warning; the failure thresholds are 50 KiB in Cassandra and 1 MiB in ScyllaDB).
const MAX_BATCH_BYTES: usize = 32 * 1024;
/// What a statement costs besides its text columns: keys, timestamps, framing.
const STATEMENT_OVERHEAD_BYTES: usize = 128;

pub(crate) type BoxedRow<'a> = Box<dyn SerializeRow + Send + Sync + 'a>;

/// The statements of one partition, cut into batches of bounded size.
pub(crate) struct PartitionBatches<'a> {
    done: Vec<(Batch, Vec<BoxedRow<'a>>)>,
    current: Batch,
    values: Vec<BoxedRow<'a>>,
    bytes: usize,
}

impl<'a> PartitionBatches<'a> {
    pub(crate) fn new() -> Self {
        PartitionBatches {
            done: Vec::new(),
            current: Batch::new(BatchType::Unlogged),
            values: Vec::new(),
            bytes: 0,
        }
    }

    /// Adds a statement; `text_bytes` is the size of its variable-length values.
    pub(crate) fn push(
        &mut self,
        statement: &PreparedStatement,
        values: BoxedRow<'a>,
        text_bytes: usize,
    ) {
        let bytes = text_bytes + STATEMENT_OVERHEAD_BYTES;
        if !self.values.is_empty() && self.bytes + bytes > MAX_BATCH_BYTES {
            let full = std::mem::replace(&mut self.current, Batch::new(BatchType::Unlogged));
            self.done.push((full, std::mem::take(&mut self.values)));
            self.bytes = 0;
        }
        self.current.append_statement(statement.clone());
        self.values.push(values);
        self.bytes += bytes;
    }

    /// The batches in the order they were filled.
    pub(crate) fn finish(mut self) -> Vec<(Batch, Vec<BoxedRow<'a>>)> {
        if !self.values.is_empty() {
            self.done.push((self.current, self.values));
        }
        self.done
    }
}
