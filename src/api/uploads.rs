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
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use crate::domain::phone::PhoneNumber;
use crate::engine::wire::{event_id, OcrJob, STORED_MEDIA_PREFIX};
use crate::ingress::http::refuse;
use crate::ingress::Business;
use crate::media::{self, MediaError, MediaFormat, MediaLimits, ObjectStore};
use crate::storage::bus::{Producer, Record};

use super::{parse_phone, AdminState};

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

#[derive(Deserialize)]
pub struct UploadQuery {
    caption: Option<String>,
    phone_number_id: Option<String>,
}

pub async fn upload(
    State(state): State<Arc<AdminState>>,
    Path(phone): Path<String>,
    Query(query): Query<UploadQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(uploads) = &state.uploads else {
        return refuse(
            StatusCode::NOT_FOUND,
            "no_uploads",
            "this process does not take uploads",
        );
    };
    let phone = match parse_phone(&phone) {
        Ok(phone) => phone,
        Err(refusal) => return *refusal,
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let kind = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "unreadable_body"
            };
            return refuse(rejection.status(), kind, &rejection.body_text());
        }
    };
    let checked = match media::check(&body, &uploads.limits) {
        Ok(checked) => checked,
        Err(error) => return refuse_media(&error),
    };
    if checked.format == MediaFormat::Pdf {
        // The pipeline reads photos; it does not render documents.
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
            "PDF uploads are not read: send a photo (JPEG, PNG or WebP)",
        );
    }
    let phone_number_id = query
        .phone_number_id
        .unwrap_or_else(|| uploads.phone_number_id.clone());
    if phone_number_id.trim().is_empty() {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_business_number",
            "no business number to answer from: pass ?phone_number_id= or set whatsapp.phone_number_id",
        );
    }
    let key = checked.key();
    let object = match uploads.objects.put(&key, &body).await {
        Ok(object) => object,
        Err(error) => return refuse_media(&error),
    };
    let job = OcrJob {
        job_id: upload_job_id(&phone, &checked.sha256),
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
    let payload = match serde_json::to_vec(&job) {
        Ok(payload) => payload,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "encode", &e.to_string()),
    };
    let record = Record::new(
        uploads.ocr_jobs_topic.clone(),
        phone.as_str().as_bytes().to_vec(),
        payload,
    );
    if let Err(error) = uploads.producer.send(record).await {
        tracing::warn!(%error, "upload not queued");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "bus_unavailable",
            "the upload could not be queued; try again",
        );
    }
    metrics::counter!("sembang_media_uploads_total").increment(1);
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "job_id": job.job_id,
            "sha256": checked.sha256,
            "format": checked.format.extension(),
            "width": checked.width,
            "height": checked.height,
            "bytes": checked.bytes,
            "object": object,
        })),
    )
        .into_response()
}

/// One job per contact and photo.
fn upload_job_id(phone: &PhoneNumber, sha256: &str) -> String {
    let id = event_id(&format!("upload:{}:{sha256}", phone.as_str()));
    format!("upload.{}", id.simple())
}

fn refuse_media(error: &MediaError) -> Response {
    let status = match error {
        MediaError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        MediaError::UnsupportedFormat { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        MediaError::TooManyPixels { .. } | MediaError::Corrupt { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    refuse(status, error.kind(), &error.to_string())
}
