//! Write-behind flushes as unlogged batches. A contact's row, its message rows, their time
//! index and their status writes share the partition key (the phone number), so the
//! statements of one partition reach one set of replicas. (Not all or nothing across
//! tables: see `write_behind` for what the engine does about it.)
//!
//! A batch carries several whole partitions when they have the same replicas (for every
//! table they write): its coordinator (the driver routes it to a replica of its first
//! statement) then sends the same replicas one mutation per partition, as separate
//! requests would, but the per-request work (framing, parsing, dispatch) is paid once per
//! batch. On a small cluster that work was as large as the writes themselves
//! (BENCHMARKS.md). Grouping by replica set, not by "same flush", keeps this from becoming
//! the multi-node fan-out anti-pattern of batches that span partitions. (With vnodes the
//! coordinator holds every row itself; with ScyllaDB tablets, whose tables have replicas
//! of their own, a batch reaches the union of its tables' replicas, no further.)
//!
//! A partition too large for one batch gets batches of its own, sent in order.

use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;

/// Estimated bytes of a batch of several partitions, kept well below the servers' failure
/// thresholds (50 KiB in Cassandra, 1 MiB in ScyllaDB; the lower warning thresholds only
/// log). A batch of one partition is one mutation, which Cassandra does not check.
const MAX_BATCH_BYTES: usize = 32 * 1024;
/// Partitions in one batch: enough to amortise a request, few enough that one batch's
/// latency stays small and several run concurrently.
const MAX_PARTITIONS_PER_BATCH: usize = 32;
/// What a statement costs besides its text columns: keys, timestamps, framing.
const STATEMENT_OVERHEAD_BYTES: usize = 128;

pub(crate) type BoxedRow<'a> = Box<dyn SerializeRow + Send + Sync + 'a>;

/// One statement of a partition, with the size of its variable-length values.
pub(crate) struct Write<'a> {
    pub(crate) statement: &'a PreparedStatement,
    pub(crate) values: BoxedRow<'a>,
    pub(crate) text_bytes: usize,
}

/// A batch and its values.
pub(crate) type Filled<'a> = (Batch, Vec<BoxedRow<'a>>);

/// Batches that must be sent one after the other (the parts of one oversized partition);
/// different chains are independent.
pub(crate) type Chain<'a> = Vec<Filled<'a>>;

/// Something that takes room in a batch.
pub(crate) trait BatchBytes {
    fn bytes(&self) -> usize;
}

impl BatchBytes for Write<'_> {
    fn bytes(&self) -> usize {
        self.text_bytes + STATEMENT_OVERHEAD_BYTES
    }
}

/// Statements of one replica set packed into batches of whole partitions (a partition too
/// large for one batch gets a chain of its own): each inner `Vec<Vec<T>>` is a chain of
/// batches.
pub(crate) struct Packer<T> {
    chains: Vec<Vec<Vec<T>>>,
    open: Vec<T>,
    open_bytes: usize,
    open_partitions: usize,
}

impl<T> Default for Packer<T> {
    fn default() -> Self {
        Packer {
            chains: Vec::new(),
            open: Vec::new(),
            open_bytes: 0,
            open_partitions: 0,
        }
    }
}

impl<T: BatchBytes> Packer<T> {
    /// Adds a partition's statements, in the order they must be applied.
    pub(crate) fn partition(&mut self, writes: Vec<T>) {
        if writes.is_empty() {
            return;
        }
        let bytes: usize = writes.iter().map(BatchBytes::bytes).sum();
        if bytes > MAX_BATCH_BYTES {
            self.chains.push(split(writes));
            return;
        }
        if self.open_partitions >= MAX_PARTITIONS_PER_BATCH
            || self.open_bytes + bytes > MAX_BATCH_BYTES
        {
            self.close();
        }
        self.open.extend(writes);
        self.open_bytes += bytes;
        self.open_partitions += 1;
    }

    fn close(&mut self) {
        if !self.open.is_empty() {
            self.chains.push(vec![std::mem::take(&mut self.open)]);
        }
        self.open_bytes = 0;
        self.open_partitions = 0;
    }

    pub(crate) fn finish(mut self) -> Vec<Vec<Vec<T>>> {
        self.close();
        self.chains
    }
}

/// An oversized partition's statements cut into batches, in order.
fn split<T: BatchBytes>(writes: Vec<T>) -> Vec<Vec<T>> {
    let mut chain = Vec::new();
    let mut open: Vec<T> = Vec::new();
    let mut bytes = 0;
    for write in writes {
        if !open.is_empty() && bytes + write.bytes() > MAX_BATCH_BYTES {
            chain.push(std::mem::take(&mut open));
            bytes = 0;
        }
        bytes += write.bytes();
        open.push(write);
    }
    if !open.is_empty() {
        chain.push(open);
    }
    chain
}

/// The CQL batches of packed statements.
pub(crate) fn into_batches(chains: Vec<Vec<Vec<Write<'_>>>>) -> Vec<Chain<'_>> {
    chains
        .into_iter()
        .map(|chain| {
            chain
                .into_iter()
                .map(|writes| {
                    let mut batch = Batch::new(BatchType::Unlogged);
                    let mut values = Vec::with_capacity(writes.len());
                    for write in writes {
                        batch.append_statement(write.statement.clone());
                        values.push(write.values);
                    }
                    (batch, values)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statement of `usize` text bytes.
    struct Stub(usize);

    impl BatchBytes for Stub {
        fn bytes(&self) -> usize {
            self.0 + STATEMENT_OVERHEAD_BYTES
        }
    }

    fn writes(count: usize, text_bytes: usize) -> Vec<Stub> {
        (0..count).map(|_| Stub(text_bytes)).collect()
    }

    fn shape(chains: &[Vec<Vec<Stub>>]) -> Vec<Vec<usize>> {
        chains
            .iter()
            .map(|chain| chain.iter().map(Vec::len).collect())
            .collect()
    }

    #[test]
    fn small_partitions_share_a_batch_up_to_the_partition_limit() {
        let mut packer = Packer::default();
        for _ in 0..MAX_PARTITIONS_PER_BATCH + 1 {
            packer.partition(writes(3, 10));
        }
        let chains = packer.finish();
        assert_eq!(
            shape(&chains),
            vec![vec![3 * MAX_PARTITIONS_PER_BATCH], vec![3]]
        );
    }

    #[test]
    fn a_partition_that_does_not_fit_starts_the_next_batch_whole() {
        let mut packer = Packer::default();
        let half = MAX_BATCH_BYTES / 2;
        packer.partition(writes(1, half));
        packer.partition(writes(2, half / 2));
        let chains = packer.finish();
        assert_eq!(shape(&chains), vec![vec![1], vec![2]]);
    }

    #[test]
    fn an_oversized_partition_gets_a_chain_of_its_own_in_order() {
        let mut packer = Packer::default();
        packer.partition(writes(1, 10));
        packer.partition(writes(5, MAX_BATCH_BYTES / 3));
        packer.partition(writes(1, 10));
        let chains = packer.finish();
        // Two of the big statements fill a batch (a third would not fit with the
        // overhead); the small partitions share the open batch, closed last.
        assert_eq!(shape(&chains), vec![vec![2, 2, 1], vec![2]]);
    }

    #[test]
    fn nothing_gives_no_batches() {
        let mut packer: Packer<Stub> = Packer::default();
        packer.partition(Vec::new());
        assert!(packer.finish().is_empty());
    }
}
