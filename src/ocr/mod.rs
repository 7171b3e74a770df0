//! OCR of inbound photos: OpenCV preprocessing ([`preprocess`]), a pool of warm Tesseract
//! engines on their own threads ([`pool`]), and reading what the text is ([`read`]): a
//! MyKad (the card reader of `domain::mykad::card`), a receipt (`domain::receipt`), or
//! neither. Tesseract's confidence alone is a poor signal, so what is read is validated: an
//! IC number by the MyKad parser, a receipt by its own arithmetic.

pub mod document;
pub mod engine;
pub mod pipeline;
pub mod pool;
pub mod preprocess;
pub mod read;
pub mod rows;
pub mod words;

use thiserror::Error;

pub use pipeline::{process, process_with_budget, process_within, OcrOutput, PipelineError};
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
    #[error("not read within the deadline of {ms} ms")]
    Deadline { ms: u128 },
}

/// Variables the native libraries read once, when they are loaded at process start, so
/// setting them later has no effect:
/// - libgomp (Tesseract's OpenMP): without a limit each image spins up threads on every core
///   (measured ~1 s per image instead of ~150 ms);
/// - OpenCV's image decoders: their own size limits (defaults 2^30 pixels and 2^20 px a
///   side), set to what the intake check admits, so a file whose header lies to that check
///   still cannot make a decoder allocate gigabytes.
pub const NATIVE_LIMITS: [(&str, &str); 4] = [
    ("OMP_THREAD_LIMIT", "1"),
    ("OPENCV_IO_MAX_IMAGE_PIXELS", "60000000"),
    ("OPENCV_IO_MAX_IMAGE_WIDTH", "16384"),
    ("OPENCV_IO_MAX_IMAGE_HEIGHT", "16384"),
];

/// `sembang` re-executes itself with [`NATIVE_LIMITS`] set when one is missing. Returns only
/// when no re-exec was needed or possible.
#[cfg(unix)]
pub fn ensure_single_threaded_openmp() {
    use std::os::unix::process::CommandExt;
    if NATIVE_LIMITS
        .iter()
        .all(|(name, _)| std::env::var_os(name).is_some())
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut command = std::process::Command::new(exe);
    command.args(std::env::args_os().skip(1));
    for (name, value) in NATIVE_LIMITS {
        if std::env::var_os(name).is_none() {
            command.env(name, value);
        }
    }
    let error = command.exec();
    eprintln!(
        "sembang: could not re-execute with the native libraries' limits set ({error}); OCR \
         will be slower and rely on Sembang's own image checks"
    );
}

#[cfg(not(unix))]
pub fn ensure_single_threaded_openmp() {}
