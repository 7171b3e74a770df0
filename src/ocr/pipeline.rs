//! One image from bytes to a reading: media checks, OpenCV preparation (on the blocking
//! pool: it is CPU work), Tesseract in the worker pool, then classification and parsing.
//! `sembang ocr` and the OCR role both go through [`process`].

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use thiserror::Error;

use crate::media::{check, CheckedMedia, MediaError, MediaLimits};

use super::{preprocess, read_text, OcrError, OcrPool, Reading, Recognized};

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
    pub recognized: Recognized,
    pub reading: Reading,
    pub prepare_time: Duration,
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
    let prepared = tokio::task::spawn_blocking(move || preprocess::prepare(&bytes))
        .await
        .map_err(|e| OcrError::Engine(format!("preprocessing task: {e}")))??;
    let prepare_time = started.elapsed();
    let recognized = pool.recognize(prepared).await?;
    let reading = read_text(&recognized.text, reference);
    let total_time = started.elapsed();
    metrics::histogram!("sembang_ocr_seconds", "kind" => reading.kind())
        .record(total_time.as_secs_f64());
    metrics::histogram!("sembang_ocr_confidence").record(f64::from(recognized.confidence));
    Ok(OcrOutput {
        media,
        recognized,
        reading,
        prepare_time,
        total_time,
    })
}
