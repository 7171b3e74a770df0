//! `POST /api/ocr/process/`: the OCR pipeline on an uploaded photo, answered at once with
//! what `sembang ocr` prints (kind, text, confidence, the card's or receipt's fields), and,
//! with `?contact=`, applied to that contact by queuing the photo exactly like an upload
//! (so the contact's shard applies it once, as it would a WhatsApp photo).
//!
//! The IC number is personal data: the answer carries it masked, in its fields and in the
//! text. Tesseract runs in this process on a small pool started at the first request, with
//! a bound on requests in flight (more get 503 with Retry-After) and the OCR role's deadline.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{OnceCell, Semaphore};
use utoipa::{IntoParams, ToSchema};

use crate::domain::clock::malaysia_today;
use crate::media::{self, MediaFormat, MediaLimits};
use crate::ocr::{process_within, OcrOutput, OcrPool, PipelineError, Reading};
use crate::pii::mask::mask_digit_runs;

use super::error::{ApiError, ErrorBody};
use super::query::ApiQuery;
use super::uploads::{media_error, store_and_queue, UploadAccepted, UploadQuery};
use super::{parse_phone, AdminState};

/// Tesseract engines of the API's pool: reading one photo for a person at a screen, not
/// the OCR role's throughput.
const WORKERS: usize = 1;
/// Photos read or waiting at once; the rest are told to come back.
const IN_FLIGHT: usize = 4;

/// What the OCR route needs.
pub struct OcrState {
    pool: OnceCell<Arc<OcrPool>>,
    languages: String,
    limits: MediaLimits,
    deadline: Duration,
    in_flight: Semaphore,
}

impl OcrState {
    pub fn new(languages: String, limits: MediaLimits, deadline: Duration) -> Self {
        OcrState {
            pool: OnceCell::new(),
            languages,
            limits,
            deadline,
            in_flight: Semaphore::new(IN_FLIGHT),
        }
    }

    /// The pool, started (loading Tesseract) on first use.
    async fn pool(&self) -> Result<Arc<OcrPool>, ApiError> {
        let languages = self.languages.clone();
        self.pool
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || {
                    OcrPool::start(WORKERS, WORKERS, None, &languages)
                })
                .await
                .map_err(|e| e.to_string())?
                .map(Arc::new)
                .map_err(|e| e.to_string())
            })
            .await
            .cloned()
            .map_err(|detail| ApiError::unavailable("ocr_unavailable", detail))
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProcessQuery {
    /// Apply the reading to this contact: the photo is kept and queued for the contact's
    /// shard like an upload (only when it was read as a card or a receipt).
    pub contact: Option<String>,
    /// With `contact`: the caption, as a WhatsApp caption would be.
    pub caption: Option<String>,
    /// With `contact`: the business number that answers (default: whatsapp.phone_number_id).
    pub phone_number_id: Option<String>,
}

/// The IC number's fields, never the number itself.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct IcFields {
    #[schema(example = "900101-**-****")]
    pub masked: String,
    pub birth_date: String,
    pub age: Option<u32>,
    /// male or female
    pub gender: String,
    pub place_of_birth: Option<String>,
}

/// What the pipeline read.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OcrResult {
    /// ic, receipt or unknown (what it was read as, even when rejected).
    #[schema(example = "receipt")]
    pub kind: String,
    /// Read as a card or a receipt (not rejected).
    pub accepted: bool,
    /// Validated enough to act on without review: a card whose number passed the MyKad
    /// checks, a receipt whose arithmetic agrees and that has a date.
    pub trusted: bool,
    /// Tesseract's mean word confidence, 0 to 100.
    pub confidence: f32,
    /// The text of the kept pass, IC numbers masked.
    pub text: String,
    pub sha256: String,
    /// jpg, png or webp
    pub format: String,
    /// Tesseract runs (more when the photo was turned or binarized again).
    pub passes: u8,
    pub turned_degrees: u16,
    pub total_ms: u64,
    pub ic: Option<IcFields>,
    /// The card's other fields: name, address lines, postcode, city, state, religion.
    #[schema(value_type = Option<Object>)]
    pub card: Option<Value>,
    /// The receipt's fields (docs: `sembang receipt parse`).
    #[schema(value_type = Option<Object>)]
    pub receipt: Option<Value>,
    /// Why it was not accepted.
    pub rejected: Option<String>,
    /// With `contact`: the queued job.
    pub applied: Option<UploadAccepted>,
}

/// Reads a photo of a MyKad or a receipt, and optionally applies it to a contact.
#[utoipa::path(
    post,
    path = "/api/ocr/process/",
    tag = "ocr",
    params(ProcessQuery),
    request_body(content = Vec<u8>, description = "The photo's bytes (JPEG, PNG or WebP)", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "What was read (also when it was not a card or receipt: see accepted and rejected)", body = OcrResult,
         example = json!({"kind": "ic", "accepted": true, "trusted": true, "confidence": 88.5, "text": "KAD PENGENALAN\n900101-**-****\nSITI AMINAH\n...", "sha256": "9f2c...", "format": "jpg", "passes": 1, "turned_degrees": 0, "total_ms": 240, "ic": {"masked": "900101-**-****", "birth_date": "1990-01-01", "age": 36, "gender": "female", "place_of_birth": "Selangor"}, "card": {"name": "SITI AMINAH", "address_lines": [], "postcode": null, "city": null, "state": null, "religion": null, "repaired": false, "cues": 2}, "receipt": null, "rejected": null, "applied": null})),
        (status = 400, description = "contact is not a phone number", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not change contacts", body = ErrorBody),
        (status = 404, description = "This process reads no photos", body = ErrorBody),
        (status = 413, description = "Too large", body = ErrorBody),
        (status = 415, description = "Not JPEG, PNG or WebP", body = ErrorBody),
        (status = 422, description = "Corrupt, a decompression bomb, not read within the deadline, or no business number to answer from", body = ErrorBody),
        (status = 503, description = "Too many photos in flight (Retry-After), the OCR engine, the object store or the bus is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn process(
    State(state): State<Arc<AdminState>>,
    ApiQuery(query): ApiQuery<ProcessQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<OcrResult>, ApiError> {
    let Some(ocr) = &state.ocr else {
        return Err(ApiError::not_found(
            "no_ocr",
            "this process does not read photos",
        ));
    };
    let contact = query.contact.as_deref().map(parse_phone).transpose()?;
    let body = body.map_err(|rejection| {
        ApiError::new(rejection.status(), "unreadable_body", rejection.body_text())
    })?;
    // Checked before queuing for a worker: a bomb or a PDF never waits for one.
    let checked = media::check(&body, &ocr.limits).map_err(|e| media_error(&e))?;
    if checked.format == MediaFormat::Pdf {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
            "PDFs are not read: send a photo (JPEG, PNG or WebP)",
        ));
    }
    let _permit = ocr.in_flight.try_acquire().map_err(|_| {
        ApiError::unavailable("ocr_busy", "too many photos are being read; try again")
            .retry_after(1)
    })?;
    let pool = ocr.pool().await?;
    let today = malaysia_today();
    let output = process_within(&pool, body.to_vec(), &ocr.limits, today, ocr.deadline)
        .await
        .map_err(|e| pipeline_error(&e))?;
    let mut result = report(&output, today);
    if let (Some(phone), true) = (contact, result.accepted) {
        let uploads = state.uploads.as_ref().ok_or_else(|| {
            ApiError::not_found("no_uploads", "this process does not take uploads")
        })?;
        let upload = UploadQuery {
            caption: query.caption,
            phone_number_id: query.phone_number_id,
        };
        result.applied = Some(store_and_queue(uploads, &phone, &body, checked, upload).await?);
    }
    Ok(Json(result))
}

fn pipeline_error(error: &PipelineError) -> ApiError {
    match error {
        PipelineError::Media(e) => media_error(e),
        PipelineError::Ocr(crate::ocr::OcrError::Engine(_) | crate::ocr::OcrError::Closed) => {
            ApiError::unavailable("ocr_unavailable", error.to_string())
        }
        PipelineError::Ocr(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            error.kind(),
            error.customer_reason(),
        ),
    }
}

/// The pipeline's output as the API answers it, the IC number masked throughout.
fn report(output: &OcrOutput, today: chrono::NaiveDate) -> OcrResult {
    let (ic, card, receipt, rejected) = match &output.reading {
        Reading::MyKad(card) => (
            Some(IcFields {
                masked: card.ic.masked(),
                birth_date: card.ic.birth_date().to_string(),
                age: card.ic.age_on(today),
                gender: card.ic.gender().as_str().to_string(),
                place_of_birth: card.ic.place_of_birth().name().map(String::from),
            }),
            serde_json::to_value(card).ok(),
            None,
            None,
        ),
        Reading::Receipt(receipt) => (None, None, serde_json::to_value(receipt).ok(), None),
        Reading::Rejected { reason, .. } => (None, None, None, Some(reason.clone())),
    };
    OcrResult {
        kind: output.reading.kind().as_str().to_string(),
        accepted: !matches!(output.reading, Reading::Rejected { .. }),
        trusted: output.reading.is_trusted(),
        confidence: output.recognized.confidence,
        text: mask_digit_runs(&output.recognized.text),
        sha256: output.media.sha256.clone(),
        format: output.media.format.extension().to_string(),
        passes: output.passes,
        turned_degrees: output.turn.degrees(),
        total_ms: output.total_time.as_millis() as u64,
        ic,
        card,
        receipt,
        rejected,
        applied: None,
    }
}
