//! `POST /api/contacts/<phone>/media`: a photo of a MyKad or receipt uploaded by staff (the
//! customer handed it over at the counter, or sent it by e-mail). It is checked like a
//! WhatsApp photo (size, real format, pixel count before any decode), kept in the object
//! store under its SHA-256, and queued on crm.ocr.jobs for the contact, so it flows
//! exactly like a photo the customer sent: profile or purchase, event, confirmation.
//!
//! The job id derives from the contact and the bytes: uploading the same photo again (a
//! client retry) queues the same job, which the contact's shard applies once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::phone::PhoneNumber;
use crate::media::{self, CheckedMedia, MediaError, MediaFormat, MediaLimits, ObjectStore};
use crate::storage::bus::{Producer, Record};
use crate::topics::event_id;
use crate::topics::inbound::Business;
use crate::topics::ocr::{OcrJob, STORED_MEDIA_PREFIX, UPLOAD_JOB_PREFIX};

use super::error::{ApiError, ErrorBody};
use super::query::ApiQuery;
use super::{parse_phone, AdminState};
use crate::metrics::catalog;

/// What the upload endpoint needs: where photos go and where jobs go.
pub struct UploadState {
    pub producer: Arc<dyn Producer>,
    pub objects: Arc<dyn ObjectStore>,
    pub limits: MediaLimits,
    pub ocr_jobs_topic: String,
    /// The business number that answers (Cloud API phone_number_id) unless the request
    /// names another.
    pub phone_number_id: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// Sent with the photo, as a WhatsApp caption would be.
    pub caption: Option<String>,
    /// The business number that answers the customer (default: whatsapp.phone_number_id).
    pub phone_number_id: Option<String>,
}

/// A photo queued for OCR.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UploadAccepted {
    /// The OCR job: the same photo uploaded again for the same contact is the same job.
    pub job_id: String,
    pub sha256: String,
    /// jpg, png or webp
    pub format: String,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub bytes: usize,
    /// Where the original is kept in the object store.
    pub object: String,
}

/// A photo of a MyKad or receipt for a contact, read by the OCR role like one sent on WhatsApp.
#[utoipa::path(
    post,
    path = "/api/contacts/{phone}/media",
    tag = "contacts",
    params(("phone" = String, Path, description = "The contact's phone number", example = "60123456789"), UploadQuery),
    request_body(content = Vec<u8>, description = "The photo's bytes (JPEG, PNG or WebP)", content_type = "application/octet-stream"),
    responses(
        (status = 202, description = "Stored and queued for OCR", body = UploadAccepted),
        (status = 400, description = "Not a phone number", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not change contacts", body = ErrorBody),
        (status = 404, description = "This process takes no uploads", body = ErrorBody),
        (status = 413, description = "Too large", body = ErrorBody),
        (status = 415, description = "Not JPEG, PNG or WebP", body = ErrorBody),
        (status = 422, description = "Corrupt, a decompression bomb, or no business number to answer from", body = ErrorBody),
        (status = 503, description = "The object store or the bus is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn upload(
    State(state): State<Arc<AdminState>>,
    Path(phone): Path<String>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<UploadAccepted>), ApiError> {
    let Some(uploads) = &state.uploads else {
        return Err(ApiError::not_found(
            "no_uploads",
            "this process does not take uploads",
        ));
    };
    let phone = parse_phone(&phone)?;
    let body = body.map_err(|rejection| {
        let kind = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "unreadable_body"
        };
        ApiError::new(rejection.status(), kind, rejection.body_text())
    })?;
    let checked = media::check(&body, &uploads.limits).map_err(|e| media_error(&e))?;
    if checked.format == MediaFormat::Pdf {
        // The pipeline reads photos; it does not render documents.
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
            "PDF uploads are not read: send a photo (JPEG, PNG or WebP)",
        ));
    }
    let accepted = store_and_queue(uploads, &phone, &body, checked, query).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Keeps a checked photo in the object store and queues its OCR job for `phone`, exactly
/// as a WhatsApp photo would be (the upload route, and `POST /api/ocr/process/` when asked
/// to apply its reading).
pub(super) async fn store_and_queue(
    uploads: &UploadState,
    phone: &PhoneNumber,
    body: &[u8],
    checked: CheckedMedia,
    query: UploadQuery,
) -> Result<UploadAccepted, ApiError> {
    let phone_number_id = query
        .phone_number_id
        .unwrap_or_else(|| uploads.phone_number_id.clone());
    if phone_number_id.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_business_number",
            "no business number to answer from: pass ?phone_number_id= or set whatsapp.phone_number_id",
        ));
    }
    let key = checked.key();
    let object = uploads
        .objects
        .put(&key, body)
        .await
        .map_err(|e| media_error(&e))?;
    let job = OcrJob {
        job_id: upload_job_id(phone, &checked.sha256),
        contact: phone.clone(),
        business: Business {
            waba_id: String::new(),
            phone_number_id,
            display_phone_number: String::new(),
        },
        media_kind: "image".into(),
        media_id: format!("{STORED_MEDIA_PREFIX}{key}"),
        mime_type: Some(checked.format.mime().into()),
        sha256: Some(checked.sha256.clone()),
        filename: None,
        caption: query.caption,
        received_at: Utc::now(),
    };
    let payload = serde_json::to_vec(&job)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "encode", e.to_string()))?;
    let record = Record::new(
        uploads.ocr_jobs_topic.clone(),
        phone.as_str().as_bytes().to_vec(),
        payload,
    );
    if let Err(error) = uploads.producer.send(record).await {
        tracing::warn!(%error, "upload not queued");
        return Err(ApiError::unavailable(
            "bus_unavailable",
            "the upload could not be queued; try again",
        ));
    }
    catalog::MEDIA_UPLOADS.counter(&[]).increment(1);
    Ok(UploadAccepted {
        job_id: job.job_id,
        sha256: checked.sha256,
        format: checked.format.extension().to_string(),
        width: checked.width,
        height: checked.height,
        bytes: checked.bytes,
        object,
    })
}

/// One job per contact and photo.
fn upload_job_id(phone: &PhoneNumber, sha256: &str) -> String {
    let id = event_id(&format!("upload:{}:{sha256}", phone.as_str()));
    format!("{UPLOAD_JOB_PREFIX}{}", id.simple())
}

pub(super) fn media_error(error: &MediaError) -> ApiError {
    let status = match error {
        MediaError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        MediaError::UnsupportedFormat { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        MediaError::TooManyPixels { .. }
        | MediaError::Misshapen { .. }
        | MediaError::Corrupt { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        MediaError::Forbidden { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, error.kind(), error.to_string())
}
