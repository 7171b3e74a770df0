//! One image from bytes to a reading: media checks, OpenCV preparation (on the blocking
//! pool: it is CPU work), Tesseract in the worker pool, then classification and parsing.
//! `sembang ocr` and the OCR role both go through [`process`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use thiserror::Error;

use crate::media::{check, CheckedMedia, MediaError, MediaLimits};

use super::preprocess::{self, Binarization};
use super::{read_text, OcrError, OcrPool, Reading, Recognized};

#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Ocr(#[from] OcrError),
}

impl PipelineError {
    /// A stable name for metrics and events.
    pub fn kind(&self) -> &'static str {
        match self {
            PipelineError::Media(e) => e.kind(),
            PipelineError::Ocr(OcrError::Image(_)) => "undecodable",
            PipelineError::Ocr(_) => "ocr_engine",
        }
    }
}

#[derive(Debug)]
pub struct OcrOutput {
    pub media: CheckedMedia,
    /// The text of the pass whose reading is kept.
    pub recognized: Recognized,
    pub reading: Reading,
    /// How the kept pass binarized the image.
    pub binarization: Binarization,
    /// 1, or 2 when the first reading did not validate and the image was read again.
    pub passes: u8,
    pub prepare_time: Duration,
    /// Tesseract's time over all passes.
    pub recognize_time: Duration,
    pub total_time: Duration,
}

pub async fn process(
    pool: &OcrPool,
    bytes: Vec<u8>,
    limits: &MediaLimits,
    reference: NaiveDate,
) -> Result<OcrOutput, PipelineError> {
    let started = Instant::now();
    let media = check(&bytes, limits)?;
    if media.format == crate::media::MediaFormat::Pdf {
        return Err(OcrError::Image("PDF documents are not read yet; send a photo".into()).into());
    }
    let bytes = Arc::new(bytes);
    let mut kept = read_pass(pool, bytes.clone(), None, reference).await?;
    let mut prepare_time = kept.prepare_time;
    let mut recognize_time = kept.recognized.took;
    let mut passes = 1;
    // Tesseract's confidence says little; a reading that does not validate does. The other
    // binarization often reads what the first could not (a card under a shadow, a receipt
    // photographed at a card's proportions).
    if !kept.reading.is_trusted() {
        let other = Some(kept.binarization.other());
        let second = read_pass(pool, bytes, other, reference).await?;
        passes = 2;
        prepare_time += second.prepare_time;
        recognize_time += second.recognized.took;
        let improves = second.reading.is_trusted()
            || (matches!(kept.reading, Reading::Rejected { .. })
                && !matches!(second.reading, Reading::Rejected { .. }));
        if improves {
            kept = second;
        }
    }
    let Pass {
        recognized,
        reading,
        binarization,
        ..
    } = kept;
    let total_time = started.elapsed();
    metrics::histogram!("sembang_ocr_seconds", "kind" => reading.kind())
        .record(total_time.as_secs_f64());
    metrics::histogram!("sembang_ocr_confidence").record(f64::from(recognized.confidence));
    Ok(OcrOutput {
        media,
        recognized,
        reading,
        binarization,
        passes,
        prepare_time,
        recognize_time,
        total_time,
    })
}

struct Pass {
    recognized: Recognized,
    reading: Reading,
    binarization: Binarization,
    prepare_time: Duration,
}

/// Prepares (on the blocking pool: it is CPU work), recognizes and reads the image once.
async fn read_pass(
    pool: &OcrPool,
    bytes: Arc<Vec<u8>>,
    binarization: Option<Binarization>,
    reference: NaiveDate,
) -> Result<Pass, OcrError> {
    let started = Instant::now();
    let prepared = tokio::task::spawn_blocking(move || preprocess::prepare(&bytes, binarization))
        .await
        .map_err(|e| OcrError::Engine(format!("preprocessing task: {e}")))??;
    let prepare_time = started.elapsed();
    let recognized = pool.recognize(prepared.png).await?;
    let reading = read_text(&recognized.text, reference);
    Ok(Pass {
        recognized,
        reading,
        binarization: prepared.binarization,
        prepare_time,
    })
}
