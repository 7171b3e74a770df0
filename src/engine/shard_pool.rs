//! The contact shards as a ractor factory: a fixed pool of [`Shard`] workers, each job
//! routed by its [`ShardKey`] to the worker that owns the key's contacts (key-persistent:
//! one owner per contact, so a contact's events are applied in order).
//!
//! A worker that fails is not replaced in place: it took unflushed changes and unreported
//! offsets with it, so the factory fails instead, and the supervisor restarts the whole
//! role from the committed offsets (see [`Shard`]'s `pre_start`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ractor::factory::queues::DefaultQueue;
use ractor::factory::routing::{CustomHashFunction, CustomRouting};
use ractor::factory::{
    DiscardSettings, Factory, FactoryArguments, FactoryMessage, WorkerBuilder, WorkerId,
};
use ractor::{Actor, ActorCell, ActorRef, RpcReplyPort};
use tokio::sync::mpsc;

use super::error::EngineError;
use crate::storage::bus::Leases;

use super::shard::{job, Shard, ShardArgs, ShardDeps, ShardKey, ShardMsg, Token, Work};
use crate::storage::bus::TopicPartition;

/// How long workers get to store their pending work on a revoke or shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

type ShardRouting = CustomRouting<ShardKey, ShardMsg, BySlot>;
type ShardFactory =
    Factory<ShardKey, ShardMsg, ShardArgs, Shard, ShardRouting, DefaultQueue<ShardKey, ShardMsg>>;

/// Slot `i` is worker `i`; the pool never resizes, so a key keeps its worker.
struct BySlot;

impl CustomHashFunction<ShardKey> for BySlot {
    fn hash(&self, key: &ShardKey, worker_count: usize) -> usize {
        key.slot() % worker_count.max(1)
    }
}

struct ShardBuilder {
    deps: Arc<ShardDeps>,
    leases: Arc<Leases>,
    done: mpsc::UnboundedSender<Vec<Token>>,
    started: HashSet<WorkerId>,
}

impl WorkerBuilder<Shard, ShardArgs> for ShardBuilder {
    fn build(&mut self, wid: WorkerId) -> (Shard, ShardArgs) {
        let args = ShardArgs {
            deps: self.deps.clone(),
            leases: self.leases.clone(),
            done: self.done.clone(),
            replacing: !self.started.insert(wid),
        };
        (Shard, args)
    }
}

/// The running factory, as the partition consumer sees it.
pub struct ShardPool {
    factory: ActorRef<FactoryMessage<ShardKey, ShardMsg>>,
    workers: usize,
}

impl ShardPool {
    /// Starts `workers` shards under a factory linked to `supervisor`; finished tokens go to
    /// `done`. The shards abandon the work of partitions whose lease has ended.
    pub async fn start(
        workers: usize,
        deps: Arc<ShardDeps>,
        leases: Arc<Leases>,
        done: mpsc::UnboundedSender<Vec<Token>>,
        supervisor: ActorCell,
    ) -> Result<ShardPool, EngineError> {
        let workers = workers.max(1);
        let arguments = FactoryArguments::builder()
            .worker_builder(Box::new(ShardBuilder {
                deps,
                leases,
                done,
                started: HashSet::new(),
            }))
            .num_initial_workers(workers)
            .router(CustomRouting::new(BySlot))
            .queue(DefaultQueue::default())
            // Shard work is never shed: every record's offset waits for it.
            .discard_settings(DiscardSettings::None)
            .build();
        let (factory, _) =
            Actor::spawn_linked(None, ShardFactory::default(), arguments, supervisor)
                .await
                .map_err(|e| EngineError::actor("shard", e))?;
        Ok(ShardPool { factory, workers })
    }

    /// The key of a contact's shard.
    pub fn key_of(&self, contact: &crate::domain::phone::PhoneNumber) -> ShardKey {
        ShardKey::of(contact, self.workers)
    }

    /// Hands each shard its batch (in the order given, per shard).
    pub fn dispatch(&self, work: HashMap<ShardKey, Vec<Work>>) -> Result<(), EngineError> {
        for (key, batch) in work {
            self.send(job(key, ShardMsg::Apply(batch)))?;
        }
        Ok(())
    }

    /// Every shard stores what it has pending; returns when all have.
    pub async fn flush_all(&self) -> Result<(), EngineError> {
        self.call_all(ShardMsg::Flush).await
    }

    /// Every shard stores what it has pending, then drops the contacts of `partitions`.
    pub async fn release(&self, partitions: &[TopicPartition]) -> Result<(), EngineError> {
        self.call_all(|reply| ShardMsg::Release(partitions.to_vec(), reply))
            .await
    }

    /// Stops the factory; each worker stores what is pending as it stops.
    pub async fn stop(&self) {
        let _ = self.factory.stop_and_wait(None, Some(FLUSH_TIMEOUT)).await;
    }

    /// Sends one message to every worker and waits for all answers.
    async fn call_all(
        &self,
        message: impl Fn(RpcReplyPort<()>) -> ShardMsg,
    ) -> Result<(), EngineError> {
        let mut answers = Vec::with_capacity(self.workers);
        for wid in 0..self.workers {
            let (reply, answer) = ractor::concurrency::oneshot();
            self.send(job(ShardKey::worker(wid), message(reply.into())))?;
            answers.push(answer);
        }
        let all = futures::future::try_join_all(answers);
        match tokio::time::timeout(FLUSH_TIMEOUT, all).await {
            Ok(Ok(_)) => Ok(()),
            // A dropped reply port: the worker failed before answering.
            Ok(Err(_)) => Err(EngineError::actor(
                "shard",
                "a shard stopped before answering",
            )),
            Err(_) => Err(EngineError::actor("shard", "shards did not answer in time")),
        }
    }

    fn send(&self, job: ractor::factory::Job<ShardKey, ShardMsg>) -> Result<(), EngineError> {
        self.factory
            .cast(FactoryMessage::Dispatch(job))
            .map_err(|e| EngineError::actor("shard", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::PhoneNumber;

    fn phone(n: u32) -> PhoneNumber {
        PhoneNumber::parse(&format!("60123{n:06}")).unwrap()
    }

    #[test]
    fn a_contact_keeps_its_worker_and_every_worker_gets_contacts() {
        let workers = 8;
        let mut per_worker = vec![0u32; workers];
        for n in 0..8_000 {
            let key = ShardKey::of(&phone(n), workers);
            assert_eq!(key, ShardKey::of(&phone(n), workers), "stable");
            let wid = BySlot.hash(&key, workers);
            assert_eq!(wid, key.slot());
            per_worker[wid] += 1;
        }
        // FNV-1a spreads numbers that differ in their last digits evenly enough.
        for (wid, count) in per_worker.iter().enumerate() {
            assert!(
                (700..=1_300).contains(count),
                "worker {wid} got {count} of 8000"
            );
        }
    }

    #[test]
    fn a_worker_key_addresses_that_worker() {
        for wid in 0..8 {
            assert_eq!(BySlot.hash(&ShardKey::worker(wid), 8), wid);
        }
    }
}
