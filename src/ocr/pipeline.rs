//! One image from bytes to a reading: media checks, OpenCV preparation (on the blocking
//! pool: it is CPU work), Tesseract in the worker pool, then classification and parsing.
//! `sembang ocr` and the OCR role both go through [`process`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use thiserror::Error;

use crate::media::{check, CheckedMedia, MediaError, MediaLimits};
use crate::topics::ocr::OcrKind;

use super::preprocess::{self, Binarization, Turn};
use super::{read_text, OcrError, OcrPool, Reading, Recognized};
use crate::metrics::catalog;

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
            PipelineError::Ocr(OcrError::Deadline { .. }) => "deadline",
            PipelineError::Ocr(_) => "ocr_engine",
        }
    }

    /// What the customer is told: a fixed phrase per kind of failure, never the technical
    /// detail (bytes of the file, engine messages), which goes to the log and dead letters.
    pub fn customer_reason(&self) -> &'static str {
        match self {
            PipelineError::Media(MediaError::TooLarge { .. }) => "the photo is too large",
            PipelineError::Media(MediaError::TooManyPixels { .. }) => {
                "the photo has too many pixels"
            }
            PipelineError::Media(MediaError::Misshapen { .. }) => {
                "the photo is too long and narrow for a card or receipt"
            }
            PipelineError::Ocr(OcrError::Deadline { .. }) => "the photo took too long to read",
            PipelineError::Media(MediaError::UnsupportedFormat { .. }) => {
                "the file is not a JPEG, PNG or WebP photo"
            }
            PipelineError::Media(MediaError::Corrupt { .. })
            | PipelineError::Ocr(OcrError::Image(_)) => "the photo is damaged",
            _ => "the photo could not be read",
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
    /// How the kept pass turned the image (a photo taken sideways or upside down).
    pub turn: Turn,
    /// Tesseract runs: 1 when the first reading validates; more for second binarizations
    /// and turns.
    pub passes: u8,
    pub prepare_time: Duration,
    /// Tesseract's time over all passes.
    pub recognize_time: Duration,
    pub total_time: Duration,
}

/// [`process`] within `deadline`: past it the photo is answered as unreadable. Tesseract
/// cannot be interrupted, so a worker may finish the pass it is in after that; the bounds
/// on image size keep that pass short.
pub async fn process_within(
    pool: &OcrPool,
    bytes: Vec<u8>,
    limits: &MediaLimits,
    reference: NaiveDate,
    deadline: Duration,
) -> Result<OcrOutput, PipelineError> {
    tokio::time::timeout(deadline, process(pool, bytes, limits, reference))
        .await
        .unwrap_or_else(|_| {
            Err(OcrError::Deadline {
                ms: deadline.as_millis(),
            }
            .into())
        })
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
    let mut spent = Spent::default();
    let mut kept = read_oriented(pool, &bytes, Turn::None, reference, &mut spent).await?;
    // Nothing recognizable upright, and garbled: the photo may be sideways or upside down
    // (how the garble breaks up says which turns to try first); failing that, the other
    // binarization may read it upright. Legible text that is neither card nor receipt (a
    // screenshot, a flyer) is not turned.
    if is_unrecognized(&kept.reading) && kept.recognized.confidence < GARBLED_BELOW {
        let turns = if is_fragmented(&kept.recognized.text) {
            [Turn::Quarter, Turn::ThreeQuarters, Turn::Half]
        } else {
            [Turn::Half, Turn::Quarter, Turn::ThreeQuarters]
        };
        let mut found = false;
        for turn in turns {
            let attempt = read_oriented(pool, &bytes, turn, reference, &mut spent).await?;
            if !is_unrecognized(&attempt.reading) {
                kept = attempt;
                found = true;
                break;
            }
        }
        if !found {
            let other = Some(kept.binarization.other());
            let last = read_pass(pool, bytes, other, Turn::None, reference, &mut spent).await?;
            if !is_unrecognized(&last.reading) {
                kept = last;
            }
        }
    }
    let (prepare_time, recognize_time, passes) = (spent.prepare, spent.recognize, spent.passes);
    let Pass {
        recognized,
        reading,
        binarization,
        turn,
        ..
    } = kept;
    let total_time = started.elapsed();
    catalog::OCR_SECONDS
        .histogram(&[reading.kind().as_str().into()])
        .record(total_time.as_secs_f64());
    catalog::OCR_CONFIDENCE
        .histogram(&[])
        .record(f64::from(recognized.confidence));
    Ok(OcrOutput {
        media,
        recognized,
        reading,
        binarization,
        turn,
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
    turn: Turn,
}

/// Mean word confidence under which an unrecognized reading is garble. Measured on the
/// generated corpora: turned photos read upright at 35-56, upright hard photos at 77 or more.
const GARBLED_BELOW: f32 = 65.0;

/// Sideways text reads as many fragments: about 0.6 words per letter or digit, against
/// 0.2-0.3 for text upright or upside down (measured on the same corpora).
fn is_fragmented(text: &str) -> bool {
    let alphanumeric = text.chars().filter(char::is_ascii_alphanumeric).count();
    let words = text.split_whitespace().count();
    alphanumeric > 0 && words as f64 / alphanumeric as f64 > 0.4
}

/// Time and Tesseract runs over all passes.
#[derive(Default)]
struct Spent {
    prepare: Duration,
    recognize: Duration,
    passes: u8,
}

/// Neither a card nor a receipt was found in the text (as opposed to one found and not
/// validated).
fn is_unrecognized(reading: &Reading) -> bool {
    matches!(
        reading,
        Reading::Rejected {
            read_as: OcrKind::Unknown,
            ..
        }
    )
}

/// Reads the image turned by `turn`. Tesseract's confidence says little; a reading that
/// does not validate does: when the first binarization's reading found a card or a
/// receipt but did not validate, the other binarization often reads what it could not (a
/// card under a shadow, a receipt photographed at a card's proportions). A reading that
/// found nothing is not read again here: the image may be turned.
async fn read_oriented(
    pool: &OcrPool,
    bytes: &Arc<Vec<u8>>,
    turn: Turn,
    reference: NaiveDate,
    spent: &mut Spent,
) -> Result<Pass, OcrError> {
    let first = read_pass(pool, bytes.clone(), None, turn, reference, spent).await?;
    let worth_another = !first.reading.is_trusted() && !is_unrecognized(&first.reading);
    if !worth_another {
        return Ok(first);
    }
    let other = Some(first.binarization.other());
    let second = read_pass(pool, bytes.clone(), other, turn, reference, spent).await?;
    let improves = second.reading.is_trusted()
        || (matches!(first.reading, Reading::Rejected { .. })
            && !matches!(second.reading, Reading::Rejected { .. }));
    Ok(if improves { second } else { first })
}

/// Prepares (on the blocking pool: it is CPU work), recognizes and reads the image once.
async fn read_pass(
    pool: &OcrPool,
    bytes: Arc<Vec<u8>>,
    binarization: Option<Binarization>,
    turn: Turn,
    reference: NaiveDate,
    spent: &mut Spent,
) -> Result<Pass, OcrError> {
    let started = Instant::now();
    let prepared =
        tokio::task::spawn_blocking(move || preprocess::prepare(&bytes, binarization, turn))
            .await
            .map_err(|e| OcrError::Engine(format!("preprocessing task: {e}")))??;
    spent.prepare += started.elapsed();
    let recognized = pool.recognize(prepared.png).await?;
    spent.recognize += recognized.took;
    spent.passes += 1;
    let reading = read_text(&recognized.text, reference);
    Ok(Pass {
        recognized,
        reading,
        binarization: prepared.binarization,
        turn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sideways_garble_is_fragmented_and_upright_text_is_not() {
        let upright = "AEON BIG\nRECEIPT NO: 1234\nSUBTOTAL 10.00\nTOTAL 10.60\n";
        let sideways = "i ! ' a - ; = 1 ] 7 . , i l : ' - ~ \" a 8 ; 1 |";
        assert!(!is_fragmented(upright));
        assert!(is_fragmented(sideways));
        assert!(!is_fragmented(""), "no text is not evidence of anything");
    }
}
