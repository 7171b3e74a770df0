//! One append-only log file per partition.
//!
//! File layout: the 8-byte magic [`MAGIC`], then frames. A frame is
//! `len: u32 LE | crc32(body): u32 LE | body` and a body is
//! `version: u8 (=1) | timestamp_ms: i64 | key_len: u32 | key | payload_len: u32 | payload |
//! header_count: u32 | (name_len: u32 | name | value_len: u32 | value)*`, all little endian.
//! Offsets are not stored: a record's offset is its index in the file.
//!
//! On open the whole file is scanned and every frame's length, CRC and structure checked; the
//! file is truncated at the first frame that fails (a torn write at the tail after a crash).
//! Readers do not re-check CRCs: everything below the visible end was either verified at open
//! or written by this process.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use crate::storage::bus::{BusError, Headers, Message, Record, TopicPartition};

pub(crate) const MAGIC: &[u8; 8] = b"SMBLOG1\n";
const FRAME_HEADER: usize = 8;
const VERSION: u8 = 1;
/// Larger frames are refused on write and treated as corruption on recovery.
pub(crate) const MAX_FRAME: usize = 64 << 20;
/// A sparse index entry every this many records, to seek to a committed offset.
const INDEX_INTERVAL: u64 = 256;

/// CRC-32 (IEEE 802.3, the zlib/PNG polynomial): the same checksum the hand-written table
/// computed, so logs written before still open.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

pub(crate) fn log_error(path: &Path, detail: impl std::fmt::Display) -> BusError {
    BusError::Log {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends the frame of `record` to `out`.
pub(crate) fn encode_frame(
    out: &mut Vec<u8>,
    timestamp_ms: i64,
    record: &Record,
) -> Result<(), BusError> {
    let body_len = 1
        + 8
        + 4
        + record.key.len()
        + 4
        + record.payload.len()
        + 4
        + record
            .headers
            .iter()
            .map(|(n, v)| 8 + n.len() + v.len())
            .sum::<usize>();
    if body_len > MAX_FRAME {
        return Err(BusError::RecordRefused {
            service: "embedded bus",
            detail: format!("record of {body_len} bytes exceeds the {MAX_FRAME}-byte limit"),
        });
    }
    let start = out.len();
    out.reserve(FRAME_HEADER + body_len);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(VERSION);
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    put_bytes(out, &record.key);
    put_bytes(out, &record.payload);
    out.extend_from_slice(&(record.headers.len() as u32).to_le_bytes());
    for (name, value) in &record.headers {
        put_bytes(out, name.as_bytes());
        put_bytes(out, value);
    }
    let crc = crc32(&out[start + FRAME_HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// A decoded body: (timestamp, key, payload, headers).
pub(crate) struct Decoded {
    pub timestamp_ms: i64,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Headers,
}

pub(crate) fn decode_body(body: &[u8]) -> Option<Decoded> {
    let mut c = Cursor(body);
    if c.take(1)? != [VERSION] {
        return None;
    }
    let ts = c.take(8)?;
    let timestamp_ms = i64::from_le_bytes(ts.try_into().ok()?);
    let key = c.bytes()?.to_vec();
    let payload = c.bytes()?.to_vec();
    let count = c.u32()? as usize;
    // Each header takes at least 8 bytes: refuse counts the body cannot hold.
    if count > c.0.len() / 8 {
        return None;
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let name = std::str::from_utf8(c.bytes()?).ok()?.to_string();
        let value = c.bytes()?.to_vec();
        headers.push((name, value));
    }
    if !c.0.is_empty() {
        return None;
    }
    Some(Decoded {
        timestamp_ms,
        key,
        payload,
        headers,
    })
}

/// The writer's side of a partition: only the bus's writer thread locks it.
pub(crate) struct LogWriter {
    pub file: File,
    /// Byte length of the file (the position of the next frame).
    pub pos: u64,
    pub next_offset: u64,
    /// Set when a failed write could not be rolled back; the partition refuses writes then.
    pub failed: Option<String>,
}

/// A partition log: its writer, a shared read handle, the visible end and a sparse index.
pub(crate) struct PartitionLog {
    pub tp: TopicPartition,
    pub path: PathBuf,
    reader: File,
    pub writer: Mutex<LogWriter>,
    /// Next offset visible to readers (records below it are durable per the sync policy).
    end_offset: AtomicU64,
    /// Byte position matching `end_offset`.
    end_pos: AtomicU64,
    /// (offset, byte position) every INDEX_INTERVAL records, starting with (0, MAGIC.len()).
    index: RwLock<Vec<(u64, u64)>>,
}

impl PartitionLog {
    /// Opens (creating if missing) and recovers a partition log: scans every frame, truncates
    /// a torn or corrupt tail, and builds the sparse index.
    pub fn open(tp: TopicPartition, path: PathBuf) -> Result<PartitionLog, BusError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| log_error(&path, format!("cannot open: {e}")))?;
        let len = file.metadata().map_err(|e| log_error(&path, e))?.len();
        let mut index = vec![(0u64, MAGIC.len() as u64)];
        let mut modified = false;
        let (pos, next_offset) = if len < MAGIC.len() as u64 {
            modified = true;
            // New file, or one torn while its magic was being written.
            let mut head = Vec::new();
            file.read_to_end(&mut head)
                .map_err(|e| log_error(&path, e))?;
            if !MAGIC.starts_with(&head) {
                return Err(log_error(&path, "not a sembang bus log (bad magic)"));
            }
            file.set_len(0).map_err(|e| log_error(&path, e))?;
            file.seek(SeekFrom::Start(0))
                .map_err(|e| log_error(&path, e))?;
            file.write_all(MAGIC).map_err(|e| log_error(&path, e))?;
            (MAGIC.len() as u64, 0)
        } else {
            let (good, count) = scan(&file, &path, &mut index)?;
            if good < len {
                tracing::warn!(
                    path = %path.display(),
                    kept_records = count,
                    dropped_bytes = len - good,
                    "bus log has a torn or corrupt tail; truncating it"
                );
                file.set_len(good).map_err(|e| log_error(&path, e))?;
                modified = true;
            }
            (good, count)
        };
        if modified {
            file.sync_all().map_err(|e| log_error(&path, e))?;
        }
        drop(file);
        let writer = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| log_error(&path, format!("cannot open for append: {e}")))?;
        let reader = File::open(&path).map_err(|e| log_error(&path, e))?;
        Ok(PartitionLog {
            tp,
            path,
            reader,
            writer: Mutex::new(LogWriter {
                file: writer,
                pos,
                next_offset,
                failed: None,
            }),
            end_offset: AtomicU64::new(next_offset),
            end_pos: AtomicU64::new(pos),
            index: RwLock::new(index),
        })
    }

    pub fn end_offset(&self) -> u64 {
        self.end_offset.load(Ordering::Acquire)
    }

    pub fn end_pos(&self) -> u64 {
        self.end_pos.load(Ordering::Acquire)
    }

    /// Makes records up to `offset` (ending at byte `pos`) visible to readers. Called by the
    /// writer thread only, with the frame positions of the records just written.
    pub fn publish(&self, first_offset: u64, frame_positions: &[u64], pos: u64) {
        let mut indexed = Vec::new();
        for (i, &p) in frame_positions.iter().enumerate() {
            let offset = first_offset + i as u64;
            if offset.is_multiple_of(INDEX_INTERVAL) && offset > 0 {
                indexed.push((offset, p));
            }
        }
        if !indexed.is_empty() {
            self.index
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .extend(indexed);
        }
        self.end_pos.store(pos, Ordering::Release);
        self.end_offset.store(
            first_offset + frame_positions.len() as u64,
            Ordering::Release,
        );
    }

    /// The greatest indexed (offset, position) at or before `offset`.
    pub fn locate(&self, offset: u64) -> (u64, u64) {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        match index.binary_search_by_key(&offset, |&(o, _)| o) {
            Ok(i) => index[i],
            Err(i) => index[i - 1],
        }
    }

    /// Reads the complete records starting at byte `pos` (whose offset is `offset`), up to
    /// about `max_bytes` (at least one record), never past the visible end.
    /// Returns the messages and the position after the last one.
    pub fn read(
        &self,
        pos: u64,
        offset: u64,
        max_bytes: usize,
    ) -> Result<(Vec<Message>, u64), BusError> {
        let end = self.end_pos();
        if pos >= end {
            return Ok((Vec::new(), pos));
        }
        let mut want = ((end - pos) as usize).min(max_bytes.max(FRAME_HEADER));
        let mut buf = vec![0u8; want];
        read_exact_at(&self.reader, &mut buf, pos).map_err(|e| log_error(&self.path, e))?;
        let first_len =
            frame_len(&buf).ok_or_else(|| log_error(&self.path, "short frame header"))?;
        if FRAME_HEADER + first_len > want {
            // A record larger than the read size: read exactly that record.
            want = FRAME_HEADER + first_len;
            if pos + want as u64 > end {
                return Err(log_error(
                    &self.path,
                    format!("frame at {pos} runs past the end"),
                ));
            }
            buf.resize(want, 0);
            read_exact_at(&self.reader, &mut buf, pos).map_err(|e| log_error(&self.path, e))?;
        }
        let mut messages = Vec::new();
        let mut at = 0usize;
        while let Some(len) = frame_len(&buf[at..]) {
            let next = at + FRAME_HEADER + len;
            if next > buf.len() {
                break;
            }
            let body = &buf[at + FRAME_HEADER..next];
            let d = decode_body(body).ok_or_else(|| {
                log_error(
                    &self.path,
                    format!("undecodable frame at byte {}", pos + at as u64),
                )
            })?;
            messages.push(Message {
                topic: self.tp.topic.clone(),
                partition: self.tp.partition,
                offset: offset + messages.len() as u64,
                key: d.key,
                payload: d.payload,
                headers: d.headers,
                timestamp_ms: d.timestamp_ms,
            });
            at = next;
        }
        Ok((messages, pos + at as u64))
    }
}

fn frame_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < FRAME_HEADER {
        return None;
    }
    Some(u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, pos)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut pos: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, pos)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                pos += n as u64;
            }
        }
    }
    Ok(())
}

/// Verifies frames after the magic; returns the end of the last good frame and the record
/// count, filling the sparse index.
fn scan(file: &File, path: &Path, index: &mut Vec<(u64, u64)>) -> Result<(u64, u64), BusError> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    reader
        .read_exact(&mut magic)
        .map_err(|e| log_error(path, e))?;
    if &magic != MAGIC {
        return Err(log_error(path, "not a sembang bus log (bad magic)"));
    }
    let mut pos = MAGIC.len() as u64;
    let mut count = 0u64;
    let mut header = [0u8; FRAME_HEADER];
    let mut body = Vec::new();
    loop {
        match read_full(&mut reader, &mut header).map_err(|e| log_error(path, e))? {
            0 => break,
            n if n < FRAME_HEADER => break,
            _ => {}
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_FRAME {
            break;
        }
        body.resize(len, 0);
        if read_full(&mut reader, &mut body).map_err(|e| log_error(path, e))? < len {
            break;
        }
        if crc32(&body) != crc || decode_body(&body).is_none() {
            break;
        }
        if count.is_multiple_of(INDEX_INTERVAL) && count > 0 {
            index.push((count, pos));
        }
        pos += (FRAME_HEADER + len) as u64;
        count += 1;
    }
    Ok((pos, count))
}

/// Reads until `buf` is full or end of file; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn frames_round_trip() {
        let record = Record::new("t", b"k".to_vec(), b"payload".to_vec())
            .with_header("a", b"1".to_vec())
            .with_header("a", Vec::new());
        let mut out = Vec::new();
        encode_frame(&mut out, 1_700_000_000_123, &record).unwrap();
        let len = frame_len(&out).unwrap();
        assert_eq!(out.len(), FRAME_HEADER + len);
        let crc = u32::from_le_bytes(out[4..8].try_into().unwrap());
        assert_eq!(crc32(&out[8..]), crc);
        let d = decode_body(&out[8..]).unwrap();
        assert_eq!(d.timestamp_ms, 1_700_000_000_123);
        assert_eq!(d.key, record.key);
        assert_eq!(d.payload, record.payload);
        assert_eq!(d.headers, record.headers);
        // Any truncation of the body is detected.
        for cut in 8..out.len() - 1 {
            assert!(decode_body(&out[8..cut]).is_none());
        }
    }
}
