//! The embedded bus: the default profile's in-process, on-disk stand-in for Kafka.
//!
//! Directory layout:
//! - `LOCK`: held (advisory file lock) while a bus has the directory open, so two processes
//!   or two bus instances never write the same logs;
//! - `topics.json`: topic names and partition counts;
//! - `logs/<topic>/<partition>.log`: one append-only log per partition (format in `log.rs`);
//! - `offsets/<group>.json`: a consumer group's committed offsets.
//!
//! Metadata and offset files are replaced atomically (write a temp file, rename it).
//!
//! Durability ([`SyncPolicy`]): `send` resolves once its record has been written to the
//! partition file by the writer thread (one `write` per batch), i.e. handed to the operating
//! system. With the default [`SyncPolicy::OsBuffered`] an acknowledged record survives a crash
//! of this process, but not a kernel crash or power loss before the OS writes it back (Linux:
//! usually within ~30 s). [`SyncPolicy::Always`] also `fdatasync`s the file before resolving
//! (one fsync per batch, shared by all records queued meanwhile) and survives power loss;
//! [`SyncPolicy::Interval`] fsyncs in the background and bounds the loss window. Consumers
//! only see records once they are acknowledged. On open, a torn or corrupt tail of a log is
//! truncated, and committed offsets beyond a log's end (possible after a power loss without
//! `Always`) are clamped to it.

mod consumer;
mod group;
mod log;
mod reader;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, Notify};

pub use consumer::EmbeddedConsumer;
use group::{rebalance, Group, GroupOffsets, Member, OffsetsFile};
use log::{log_error, PartitionLog};
use writer::AppendRequest;

use super::partitioner::partition_for;
use super::{
    Bus, BusError, Consumer, Delivery, PartitionReader, PartitionedRecord, Producer, Record,
    TopicPartition, TopicSpec,
};

const SERVICE: &str = "embedded bus";

/// When the embedded bus forces data to stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Written to the OS before `send` resolves, never fsynced by the bus: survives a crash
    /// of the process, not of the machine.
    #[default]
    OsBuffered,
    /// Written and fsynced before `send` resolves (group commit: one fsync per batch);
    /// offset and metadata files are fsynced too. Survives power loss.
    Always,
    /// Like `OsBuffered`, plus an fsync of recently written logs at this interval: a machine
    /// crash loses at most about this much acknowledged data.
    Interval(Duration),
}

impl SyncPolicy {
    pub(crate) fn fsync_offsets(self) -> bool {
        self == SyncPolicy::Always
    }
}

#[derive(Clone, Debug)]
pub struct EmbeddedBusConfig {
    /// The directory holding the logs; created if missing.
    pub dir: PathBuf,
    pub sync: SyncPolicy,
    /// How long a rebalance waits for a revoked member's ack before moving its partitions
    /// without committing more.
    pub revoke_timeout: Duration,
    /// Bytes read from one partition per fetch (at least one record is always read).
    pub fetch_bytes: usize,
}

impl EmbeddedBusConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        EmbeddedBusConfig {
            dir: dir.into(),
            sync: SyncPolicy::default(),
            revoke_timeout: Duration::from_secs(30),
            fetch_bytes: 256 * 1024,
        }
    }
}

#[derive(Serialize, Deserialize, Default)]
struct TopicsFile {
    version: u32,
    topics: BTreeMap<String, TopicMeta>,
}

#[derive(Serialize, Deserialize)]
struct TopicMeta {
    partitions: u32,
}

struct TopicLogs {
    partitions: Vec<Arc<PartitionLog>>,
}

pub(crate) struct Inner {
    dir: PathBuf,
    config: EmbeddedBusConfig,
    topics: RwLock<HashMap<String, Arc<TopicLogs>>>,
    /// Serializes topic creation and `topics.json` rewrites.
    topics_file: Mutex<()>,
    writer: Mutex<Option<mpsc::Sender<AppendRequest>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    /// Notified (all waiters) after every written batch.
    data_written: Arc<Notify>,
    groups: Mutex<HashMap<String, Arc<Group>>>,
    offsets: Mutex<HashMap<String, Arc<GroupOffsets>>>,
    next_member: AtomicU64,
    _lock: File,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unavailable(detail: impl std::fmt::Display) -> BusError {
    BusError::Unavailable {
        service: SERVICE,
        detail: detail.to_string(),
    }
}

/// Replaces `path` atomically with `bytes` (temp file + rename), fsyncing file and directory
/// when `fsync` is set.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8], fsync: bool) -> Result<(), BusError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if fsync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&tmp, path)?;
        if fsync {
            if let Some(parent) = path.parent() {
                File::open(parent)?.sync_all()?;
            }
        }
        Ok(())
    };
    write().map_err(|e| log_error(path, format!("cannot write: {e}")))
}

/// Kafka's topic name rule: 1–249 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// A file name for a group: safe characters kept, others `%XX`-escaped.
fn group_file_name(group: &str) -> String {
    let mut out = String::new();
    for b in group.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{out}.json")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Inner {
    pub(crate) fn partition_count_of(&self, topic: &str) -> Option<u32> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
            .map(|t| t.partitions.len() as u32)
    }

    pub(crate) fn partition_log(&self, tp: &TopicPartition) -> Option<Arc<PartitionLog>> {
        self.topic(&tp.topic)
            .ok()?
            .partitions
            .get(tp.partition as usize)
            .cloned()
    }

    fn topic(&self, name: &str) -> Result<Arc<TopicLogs>, BusError> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| BusError::UnknownTopic(name.to_string()))
    }

    fn group_offsets(&self, group: &str) -> Arc<GroupOffsets> {
        lock(&self.offsets)
            .entry(group.to_string())
            .or_insert_with(|| {
                Arc::new(GroupOffsets::new(
                    group.to_string(),
                    self.dir.join("offsets").join(group_file_name(group)),
                    BTreeMap::new(),
                ))
            })
            .clone()
    }

    fn group(&self, name: &str) -> Arc<Group> {
        let offsets = self.group_offsets(name);
        lock(&self.groups)
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Group::new(name.to_string(), offsets)))
            .clone()
    }

    async fn append(&self, log: Arc<PartitionLog>, record: &Record) -> Result<Delivery, BusError> {
        let mut frame = Vec::new();
        log::encode_frame(&mut frame, now_ms(), record)?;
        let (reply, answer) = oneshot::channel();
        {
            let writer = lock(&self.writer);
            let writer = writer.as_ref().ok_or(BusError::Closed)?;
            writer
                .send(AppendRequest { log, frame, reply })
                .map_err(|_| BusError::Closed)?;
        }
        answer.await.map_err(|_| BusError::Closed)?
    }

    /// Creates the topics (blocking): logs first, then `topics.json`, then visible in memory.
    fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), BusError> {
        let _guard = lock(&self.topics_file);
        let mut missing = Vec::new();
        for spec in specs {
            if !valid_topic_name(&spec.name) {
                return Err(BusError::Rejected {
                    service: SERVICE,
                    detail: format!(
                        "invalid topic name {:?}: use 1-249 characters of [A-Za-z0-9._-]",
                        spec.name
                    ),
                });
            }
            if spec.partitions == 0 {
                return Err(BusError::Rejected {
                    service: SERVICE,
                    detail: format!("topic {} needs at least one partition", spec.name),
                });
            }
            match self.partition_count_of(&spec.name) {
                Some(actual) if actual != spec.partitions => {
                    return Err(BusError::PartitionMismatch {
                        topic: spec.name.clone(),
                        expected: spec.partitions,
                        actual,
                    })
                }
                Some(_) => {}
                None => {
                    if let Some(other) = missing.iter().find(|s: &&TopicSpec| s.name == spec.name) {
                        if other.partitions != spec.partitions {
                            return Err(BusError::PartitionMismatch {
                                topic: spec.name.clone(),
                                expected: spec.partitions,
                                actual: other.partitions,
                            });
                        }
                    } else {
                        missing.push(spec.clone());
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let mut created = Vec::new();
        for spec in &missing {
            created.push((
                spec.name.clone(),
                open_topic(&self.dir, &spec.name, spec.partitions)?,
            ));
        }
        let mut file = TopicsFile {
            version: 1,
            topics: BTreeMap::new(),
        };
        for (name, logs) in self.topics.read().unwrap_or_else(|e| e.into_inner()).iter() {
            file.topics.insert(
                name.clone(),
                TopicMeta {
                    partitions: logs.partitions.len() as u32,
                },
            );
        }
        for spec in &missing {
            file.topics.insert(
                spec.name.clone(),
                TopicMeta {
                    partitions: spec.partitions,
                },
            );
        }
        let path = self.dir.join("topics.json");
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| log_error(&path, e))?;
        atomic_write(&path, &bytes, true)?;
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        for (name, logs) in created {
            topics.insert(name, Arc::new(logs));
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued, sync, and exit.
        lock(&self.writer).take();
        if let Some(thread) = lock(&self.writer_thread).take() {
            let _ = thread.join();
        }
    }
}

fn open_topic(dir: &Path, name: &str, partitions: u32) -> Result<TopicLogs, BusError> {
    let topic_dir = dir.join("logs").join(name);
    fs::create_dir_all(&topic_dir).map_err(|e| log_error(&topic_dir, e))?;
    let partitions = (0..partitions)
        .map(|p| {
            PartitionLog::open(
                TopicPartition::new(name, p),
                topic_dir.join(format!("{p}.log")),
            )
            .map(Arc::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TopicLogs { partitions })
}

/// The embedded bus. Cheap to share behind an `Arc<dyn Bus>`; the directory stays locked
/// until the bus and every producer and consumer made from it are dropped.
pub struct EmbeddedBus {
    inner: Arc<Inner>,
}

impl EmbeddedBus {
    /// Opens (creating if needed) the bus directory and recovers its logs. Blocking: it scans
    /// every log once; call it from `spawn_blocking` in async code if the logs are large.
    pub fn open(config: EmbeddedBusConfig) -> Result<EmbeddedBus, BusError> {
        let dir = config.dir.clone();
        fs::create_dir_all(dir.join("logs"))
            .and_then(|_| fs::create_dir_all(dir.join("offsets")))
            .map_err(|e| unavailable(format!("cannot create {}: {e}", dir.display())))?;
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(|e| unavailable(format!("cannot open {}/LOCK: {e}", dir.display())))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(unavailable(format!(
                    "{} is in use by another bus (process or instance)",
                    dir.display()
                )))
            }
            Err(TryLockError::Error(e)) => {
                return Err(unavailable(format!("cannot lock {}: {e}", dir.display())))
            }
        }

        let topics_path = dir.join("topics.json");
        let topics_file: TopicsFile = match fs::read(&topics_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| log_error(&topics_path, format!("unreadable: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => TopicsFile::default(),
            Err(e) => return Err(log_error(&topics_path, e)),
        };
        let mut topics = HashMap::new();
        for (name, meta) in &topics_file.topics {
            topics.insert(
                name.clone(),
                Arc::new(open_topic(&dir, name, meta.partitions)?),
            );
        }

        let mut offsets = HashMap::new();
        let offsets_dir = dir.join("offsets");
        let entries = fs::read_dir(&offsets_dir).map_err(|e| log_error(&offsets_dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| log_error(&offsets_dir, e))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue; // e.g. a temp file left by a crash mid-write
            }
            let bytes = fs::read(&path).map_err(|e| log_error(&path, e))?;
            let file: OffsetsFile = serde_json::from_slice(&bytes)
                .map_err(|e| log_error(&path, format!("unreadable: {e}")))?;
            let mut map = BTreeMap::new();
            for (topic, partitions) in file.offsets {
                for (partition, offset) in partitions {
                    let end = topics
                        .get(&topic)
                        .and_then(|t: &Arc<TopicLogs>| t.partitions.get(partition as usize))
                        .map(|log| log.end_offset());
                    let offset = match end {
                        Some(end) if offset > end => {
                            tracing::warn!(
                                group = %file.group, %topic, partition, committed = offset, end,
                                "committed offset beyond the log end (records lost in a crash?); clamping"
                            );
                            end
                        }
                        _ => offset,
                    };
                    map.insert(TopicPartition::new(topic.clone(), partition), offset);
                }
            }
            offsets.insert(
                file.group.clone(),
                Arc::new(GroupOffsets::new(file.group, path, map)),
            );
        }

        let data_written = Arc::new(Notify::new());
        let (writer, writer_thread) = writer::spawn(config.sync, data_written.clone())
            .map_err(|e| unavailable(format!("cannot start the log writer thread: {e}")))?;
        Ok(EmbeddedBus {
            inner: Arc::new(Inner {
                dir,
                config,
                topics: RwLock::new(topics),
                topics_file: Mutex::new(()),
                writer: Mutex::new(Some(writer)),
                writer_thread: Mutex::new(Some(writer_thread)),
                data_written,
                groups: Mutex::new(HashMap::new()),
                offsets: Mutex::new(offsets),
                next_member: AtomicU64::new(1),
                _lock: lock_file,
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

#[async_trait]
impl Bus for EmbeddedBus {
    async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<(), BusError> {
        let inner = self.inner.clone();
        let specs = specs.to_vec();
        tokio::task::spawn_blocking(move || inner.create_topics(&specs))
            .await
            .map_err(|e| unavailable(format!("topic creation panicked: {e}")))?
    }

    async fn partition_count(&self, topic: &str) -> Result<u32, BusError> {
        self.inner
            .partition_count_of(topic)
            .ok_or_else(|| BusError::UnknownTopic(topic.to_string()))
    }

    fn producer(&self) -> Arc<dyn Producer> {
        Arc::new(EmbeddedProducer {
            inner: self.inner.clone(),
        })
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Box<dyn Consumer>, BusError> {
        if group.is_empty() {
            return Err(BusError::Group {
                group: String::new(),
                detail: "the group name is empty".into(),
            });
        }
        if topics.is_empty() {
            return Err(BusError::Group {
                group: group.to_string(),
                detail: "no topics to subscribe to".into(),
            });
        }
        let mut counts = Vec::with_capacity(topics.len());
        for topic in topics {
            // Unknown topics are refused here too.
            counts.push((topic, self.partition_count(topic).await?));
        }
        super::require_one_partition_count(group, &counts)?;
        let mut topics = topics.to_vec();
        topics.sort();
        topics.dedup();
        let member = Arc::new(Member::new(
            self.inner.next_member.fetch_add(1, Ordering::Relaxed),
            topics,
        ));
        let group = self.inner.group(group);
        group.join(member.clone());
        tokio::spawn(rebalance(self.inner.clone(), group.clone()));
        Ok(Box::new(EmbeddedConsumer::new(
            self.inner.clone(),
            group,
            member,
        )))
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<u64>, BusError> {
        Ok(self
            .inner
            .topic(topic)?
            .partitions
            .iter()
            .map(|log| log.end_offset())
            .collect())
    }

    async fn read_from_start(
        &self,
        topic: &str,
        partitions: &[u32],
    ) -> Result<Box<dyn PartitionReader>, BusError> {
        let logs = self.inner.topic(topic)?;
        let mut chosen = Vec::with_capacity(partitions.len());
        for &p in partitions {
            let log = logs
                .partitions
                .get(p as usize)
                .cloned()
                .ok_or_else(|| BusError::UnknownTopic(format!("{topic} partition {p}")))?;
            chosen.push(log);
        }
        Ok(Box::new(reader::EmbeddedReader::new(
            chosen,
            self.inner.data_written.clone(),
            self.inner.config.fetch_bytes,
        )))
    }

    async fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Vec<Option<u64>>, BusError> {
        let logs = self.inner.topic(topic)?;
        let offsets = lock(&self.inner.offsets).get(group).cloned();
        Ok(logs
            .partitions
            .iter()
            .map(|log| offsets.as_ref().and_then(|o| o.get(&log.tp)))
            .collect())
    }
}

struct EmbeddedProducer {
    inner: Arc<Inner>,
}

#[async_trait]
impl Producer for EmbeddedProducer {
    async fn send(&self, record: Record) -> Result<Delivery, BusError> {
        if record.key.is_empty() {
            return Err(BusError::RecordRefused {
                service: SERVICE,
                detail:
                    "a keyed record needs a non-empty key (use send_to for an explicit partition)"
                        .into(),
            });
        }
        let topic = self.inner.topic(&record.topic)?;
        let partition = partition_for(&record.key, topic.partitions.len() as u32);
        let log = topic.partitions[partition as usize].clone();
        self.inner.append(log, &record).await
    }

    async fn send_to(&self, record: PartitionedRecord) -> Result<Delivery, BusError> {
        let topic = self.inner.topic(&record.record.topic)?;
        let log = topic
            .partitions
            .get(record.partition as usize)
            .cloned()
            .ok_or_else(|| BusError::Rejected {
                service: SERVICE,
                detail: format!(
                    "partition {} does not exist: {} has {} partitions",
                    record.partition,
                    record.record.topic,
                    topic.partitions.len()
                ),
            })?;
        self.inner.append(log, &record.record).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_topic_name("shop1.wa.inbound"));
        assert!(!valid_topic_name("a/b"));
        assert!(!valid_topic_name(".."));
        assert_eq!(group_file_name("engine"), "engine.json");
        assert_eq!(group_file_name("a b/%"), "a%20b%2F%25.json");
    }
}
