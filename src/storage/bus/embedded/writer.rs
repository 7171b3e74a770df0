//! The bus's single writer thread. Producers encode their frames and queue them here; the
//! thread takes everything queued (group commit), writes each partition's frames with one
//! `write` call, applies the sync policy, publishes the new end to readers, wakes them, and
//! answers the producers. Producers never block a tokio worker on file I/O.

use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::{oneshot, Notify};

use super::log::{log_error, PartitionLog};
use super::SyncPolicy;
use crate::storage::bus::{BusError, Delivery};

/// At most this many records are written per batch, so replies are not held back too long.
const MAX_BATCH: usize = 8192;

pub(crate) struct AppendRequest {
    pub log: Arc<PartitionLog>,
    pub frame: Vec<u8>,
    pub reply: oneshot::Sender<Result<Delivery, BusError>>,
}

pub(crate) fn spawn(
    sync: SyncPolicy,
    notify: Arc<Notify>,
) -> std::io::Result<(mpsc::Sender<AppendRequest>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("bus-log-writer".into())
        .spawn(move || run(rx, sync, notify))?;
    Ok((tx, handle))
}

fn run(rx: mpsc::Receiver<AppendRequest>, sync: SyncPolicy, notify: Arc<Notify>) {
    let mut batch: Vec<AppendRequest> = Vec::new();
    let mut buf = Vec::new();
    let mut positions = Vec::new();
    let mut dirty: Vec<Arc<PartitionLog>> = Vec::new();
    let mut last_sync = Instant::now();
    loop {
        let first = match sync {
            SyncPolicy::Interval(every) if !dirty.is_empty() => {
                match rx.recv_timeout(every.saturating_sub(last_sync.elapsed())) {
                    Ok(request) => Some(request),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            _ => match rx.recv() {
                Ok(request) => Some(request),
                Err(_) => break,
            },
        };
        if let Some(first) = first {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            // Stable: each partition's records keep their arrival order.
            batch.sort_by_key(|r| Arc::as_ptr(&r.log) as usize);
            let mut requests = batch.drain(..).peekable();
            while let Some(head) = requests.next() {
                let log = head.log.clone();
                let mut group = vec![head];
                while let Some(next) = requests.peek() {
                    if !Arc::ptr_eq(&next.log, &log) {
                        break;
                    }
                    group.extend(requests.next());
                }
                let wrote = write_group(&log, group, sync, &mut buf, &mut positions);
                if wrote
                    && matches!(sync, SyncPolicy::Interval(_))
                    && !dirty.iter().any(|d| Arc::ptr_eq(d, &log))
                {
                    dirty.push(log);
                }
            }
            notify.notify_waiters();
        }
        if let SyncPolicy::Interval(every) = sync {
            if last_sync.elapsed() >= every {
                sync_all(&mut dirty);
                last_sync = Instant::now();
            }
        }
    }
    sync_all(&mut dirty);
}

fn sync_all(dirty: &mut Vec<Arc<PartitionLog>>) {
    for log in dirty.drain(..) {
        let writer = log.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = writer.file.sync_data() {
            tracing::error!(path = %log.path.display(), error = %e, "bus log fsync failed");
        }
    }
}

/// Writes one partition's frames; answers every request. Returns whether anything was written.
fn write_group(
    log: &PartitionLog,
    group: Vec<AppendRequest>,
    sync: SyncPolicy,
    buf: &mut Vec<u8>,
    positions: &mut Vec<u64>,
) -> bool {
    let mut writer = log.writer.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(failure) = &writer.failed {
        let detail = format!("partition refuses writes after an earlier failure: {failure}");
        for request in group {
            let _ = request.reply.send(Err(log_error(&log.path, &detail)));
        }
        return false;
    }
    buf.clear();
    positions.clear();
    let mut pos = writer.pos;
    for request in &group {
        positions.push(pos);
        buf.extend_from_slice(&request.frame);
        pos += request.frame.len() as u64;
    }
    let mut result = writer.file.write_all(buf);
    if result.is_ok() && sync == SyncPolicy::Always {
        result = writer.file.sync_data();
    }
    match result {
        Ok(()) => {
            let first = writer.next_offset;
            writer.pos = pos;
            writer.next_offset += group.len() as u64;
            log.publish(first, positions, pos);
            for (i, request) in group.into_iter().enumerate() {
                let _ = request.reply.send(Ok(Delivery {
                    partition: log.tp.partition,
                    offset: first + i as u64,
                }));
            }
            true
        }
        Err(e) => {
            // Roll the file back to the last complete frame so the log stays well formed.
            let rollback = writer.file.set_len(writer.pos);
            if let Err(rollback) = rollback {
                writer.failed = Some(format!(
                    "write failed ({e}) and rollback failed ({rollback})"
                ));
            }
            tracing::error!(path = %log.path.display(), error = %e, "bus log write failed");
            for request in group {
                let _ = request
                    .reply
                    .send(Err(log_error(&log.path, format!("write failed: {e}"))));
            }
            false
        }
    }
}
