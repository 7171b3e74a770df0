//! OCR of inbound photos: OpenCV preprocessing ([`preprocess`]), a pool of warm Tesseract
//! engines on their own threads ([`pool`]), and reading what the text is ([`read`]): a
//! MyKad (the card reader of `domain::mykad::card`), a receipt (`domain::receipt`), or
//! neither. Tesseract's confidence alone is a poor signal, so what is read is validated: an
//! IC number by the MyKad parser, a receipt by its own arithmetic.

pub mod pipeline;
pub mod pool;
pub mod preprocess;
pub mod read;

use thiserror::Error;

pub use pipeline::{process, OcrOutput, PipelineError};
pub use pool::{OcrPool, Recognized};
pub use read::{read_text, Reading};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum OcrError {
    #[error("image: {0}")]
    Image(String),
    #[error("OCR engine: {0}")]
    Engine(String),
    #[error("the OCR pool is closed")]
    Closed,
}

/// libgomp (used by Tesseract) reads OMP_THREAD_LIMIT when it is loaded, at process start:
/// setting it later has no effect. Without it each image spins up threads on every core
/// (measured ~1 s per image instead of ~150 ms), so `sembang` re-executes itself with the
/// variable set when it is missing. Returns only when no re-exec was needed or possible.
#[cfg(unix)]
pub fn ensure_single_threaded_openmp() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("OMP_THREAD_LIMIT").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("OMP_THREAD_LIMIT", "1")
        .exec();
    eprintln!(
        "sembang: could not re-execute with OMP_THREAD_LIMIT=1 ({error}); OCR will be slower"
    );
}

#[cfg(not(unix))]
pub fn ensure_single_threaded_openmp() {}
