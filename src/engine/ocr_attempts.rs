//! The OCR jobs this process has started and not finished, on local disk. A photo that
//! kills the process (a native crash in a decoder or in Tesseract, which no Rust error
//! catches) is redelivered after the restart; the journal shows it was tried before, and
//! after [`MAX_CRASHES`] it is dead-lettered unread instead of killing the process again.
//! Every other way out of a job, errors and panics included, finishes its entry (a guard's
//! drop), so only a crash leaves one behind.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};

use super::error::EngineError;

/// Crashes while reading one photo after which it is not read again.
pub const MAX_CRASHES: u32 = 2;

const STARTED: TableDefinition<&str, u32> = TableDefinition::new("ocr_jobs_started");

pub struct AttemptJournal {
    db: Database,
}

fn journal_error(e: impl std::fmt::Display) -> EngineError {
    EngineError::actor("ocr", format!("attempt journal: {e}"))
}

impl AttemptJournal {
    /// Opens (or creates) the journal at `path`.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(journal_error)?;
        }
        let db = Database::create(path).map_err(journal_error)?;
        Ok(AttemptJournal { db })
    }

    /// Records that `job_id` starts now; the guard finishes it when dropped. Its `crashes`
    /// are the earlier starts that never finished.
    pub fn begin(self: &Arc<Self>, job_id: &str) -> Result<Attempt, EngineError> {
        let crashes = self.start(job_id)?;
        Ok(Attempt {
            journal: self.clone(),
            job_id: job_id.to_string(),
            crashes,
        })
    }

    /// Records a start of `job_id` that nothing will finish, as a crash leaves it (for
    /// tests and drills); returns the unfinished starts before it.
    pub fn start(&self, job_id: &str) -> Result<u32, EngineError> {
        let tx = self.db.begin_write().map_err(journal_error)?;
        let crashes = {
            let mut table = tx.open_table(STARTED).map_err(journal_error)?;
            let crashes = table
                .get(job_id)
                .map_err(journal_error)?
                .map_or(0, |v| v.value());
            table.insert(job_id, crashes + 1).map_err(journal_error)?;
            crashes
        };
        tx.commit().map_err(journal_error)?;
        Ok(crashes)
    }

    fn finish(&self, job_id: &str) -> Result<(), EngineError> {
        let tx = self.db.begin_write().map_err(journal_error)?;
        tx.open_table(STARTED)
            .map_err(journal_error)?
            .remove(job_id)
            .map_err(journal_error)?;
        tx.commit().map_err(journal_error)
    }
}

/// One started job; finished when dropped.
pub struct Attempt {
    journal: Arc<AttemptJournal>,
    job_id: String,
    crashes: u32,
}

impl Attempt {
    /// Whether earlier attempts at this job crashed the process often enough to stop.
    pub fn is_poison(&self) -> bool {
        self.crashes >= MAX_CRASHES
    }

    pub fn crashes(&self) -> u32 {
        self.crashes
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if let Err(error) = self.journal.finish(&self.job_id) {
            tracing::warn!(%error, "an OCR job's attempt stays in the journal");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_attempts_that_never_finished_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ocr-attempts.redb");
        let journal = Arc::new(AttemptJournal::open(&path).unwrap());
        // Finished attempts (returns, errors, panics) leave nothing behind.
        drop(journal.begin("wamid.A").unwrap());
        let again = journal.begin("wamid.A").unwrap();
        assert_eq!(again.crashes(), 0);
        drop(again);
        // A crash is an attempt never finished.
        for crashes in 0..MAX_CRASHES {
            assert_eq!(journal.start("wamid.POISON").unwrap(), crashes);
        }
        drop(journal);
        // After a restart the journal remembers.
        let journal = Arc::new(AttemptJournal::open(&path).unwrap());
        let poisoned = journal.begin("wamid.POISON").unwrap();
        assert!(poisoned.is_poison());
        drop(poisoned);
        assert!(
            !journal.begin("wamid.POISON").unwrap().is_poison(),
            "finished now"
        );
    }
}
