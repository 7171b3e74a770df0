//! The campaigns API: definitions (the seed's fields), actions (schedule, launch, pause,
//! resume, cancel, retry the failed, test sends), the audience before launch, and each
//! campaign's recipients with their status.
//!
//! Launching writes the new status to the catalog and a launch command to every partition
//! of crm.commands; each partition's owner plans its own recipients (`campaigns::planner`).
//! The tracking metrics are counted from the campaign's recipient ledger, so they are
//! exact and as current as its last write.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::campaigns::ledger::RecipientPages;
use crate::campaigns::{definition_of, SendingNumber};
use crate::domain::campaign::{
    exclusion, CampaignAction, CampaignDefinition, CampaignMessage, CampaignStatus, CapRetry,
    CapRetryPolicy, FrequencyCap, Funnel, MediaRef, ReachWindow, RecipientStatus, RecipientSteps,
    RecipientUpdate, RenderedMessage, SkipReason, Trigger,
};
use crate::domain::clock::malaysian_day;
use crate::domain::contact::Contact;
use crate::domain::phone::PhoneNumber;
use crate::domain::segment::{EvalContext, SegmentDefinition};
use crate::provider::OutboundContent;
use crate::storage::bus::{Producer, Record};
use crate::storage::store::{CampaignRecord, PageToken};
use crate::topics::commands::Command;
use crate::topics::outbound::{Origin, OutboundRequest};

use super::body::ApiJson;
use super::error::{ApiError, ErrorBody};
use super::query::{invalid_cursor, page_limit, ApiQuery};
use super::segments::{broadcast, segments, store_error};
use super::AdminState;

/// Recipients per page by default and at most; ledger rows read per step.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1_000;
const LEDGER_PAGE: u32 = 5_000;
/// Test sends per request, at most.
const MAX_TEST_NUMBERS: usize = 10;

/// What the campaigns API needs beyond the segments API.
pub struct CampaignsState {
    pub producer: Arc<dyn Producer>,
    /// wa.outbound (namespaced), for test sends.
    pub outbound_topic: String,
    pub number: SendingNumber,
    pub frequency_cap: FrequencyCap,
    pub messaging_limit_24h: u64,
    pub messages_per_second: u32,
    pub cap_retry: CapRetryPolicy,
}

fn campaigns(state: &AdminState) -> Result<&CampaignsState, ApiError> {
    state.campaigns.as_ref().ok_or_else(|| {
        ApiError::unavailable(
            "no_campaigns",
            "this process does not run the api role, which plans and counts campaigns",
        )
    })
}

/// A template message: its approved name, language and body parameters (texts with
/// variables, rendered per recipient).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TemplateBody {
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub body_parameters: Vec<String>,
}

/// A campaign as the seed writes it. One of `message_text` (free-form text, or the
/// caption of the media), `template`; media as `media_image` or `media_video` (an https
/// link or an uploaded media id). Texts take variables: `{{name}}`, `{{first_name}}`,
/// `{{tier}}`, `{{total_spent}}`, `{{state}}`, `{{attributes.<key>}}`, each with a default
/// after a bar (`{{first_name|Pelanggan}}`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Raya sale", "objective": "Bring Gold members back", "segments": ["0193a1f2-…"], "message_text": "Selamat Hari Raya {{first_name|}}! 20% off for {{tier}} members: https://shop.example.my/raya", "scheduled_start": "2026-03-30T01:00:00Z"}))]
pub struct CampaignBody {
    pub name: String,
    #[serde(default)]
    pub objective: Option<String>,
    /// Segment ids.
    #[serde(default)]
    pub segments: Vec<String>,
    /// Phone numbers (local or international form).
    #[serde(default)]
    pub custom_recipients: Vec<String>,
    #[serde(default)]
    pub message_text: Option<String>,
    #[serde(default)]
    pub media_image: Option<String>,
    #[serde(default)]
    pub media_video: Option<String>,
    #[serde(default)]
    pub template: Option<TemplateBody>,
    #[serde(default)]
    pub scheduled_start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub scheduled_end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    #[serde(default)]
    pub frequency_cap: Option<FrequencyCap>,
    /// Days after delivery in which a purchase converts a recipient (default 7).
    #[serde(default)]
    pub attribution_days: Option<u16>,
    /// Rewrite links to tracking links (default true).
    #[serde(default)]
    pub track_links: Option<bool>,
}

/// A campaign with its tracking metrics.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CampaignView {
    pub id: String,
    pub name: String,
    pub objective: Option<String>,
    pub segments: Vec<String>,
    /// Masked.
    pub custom_recipients: Vec<String>,
    pub message_text: Option<String>,
    pub media_image: Option<String>,
    pub media_video: Option<String>,
    pub template: Option<TemplateBody>,
    pub scheduled_start: Option<DateTime<Utc>>,
    pub scheduled_end: Option<DateTime<Utc>>,
    pub trigger: Option<Trigger>,
    pub frequency_cap: Option<FrequencyCap>,
    pub attribution_days: u16,
    pub track_links: bool,
    pub status: CampaignStatus,
    /// Every intended recipient, counted once per step reached.
    pub recipients: u64,
    pub pending: u64,
    pub sent: u64,
    pub delivered: u64,
    pub read: u64,
    pub clicked: u64,
    pub converted: u64,
    pub failed: u64,
    pub skipped: u64,
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// Ringgit, e.g. `"1250.00"`.
    pub attributed_revenue: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who would receive the campaign if it were launched now.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Audience {
    /// Contacts in its segments and custom recipients, each once.
    pub audience: u64,
    /// Those who would be sent it.
    pub eligible: u64,
    /// Excluded now, by reason.
    pub excluded: BTreeMap<String, u64>,
    /// Custom recipients who are not contacts.
    pub unknown_custom_recipients: u64,
    /// The portfolio's 24 h limit of unique customers reached (0 = unlimited): sends past
    /// it wait for room.
    pub messaging_limit_24h: u64,
    /// New customers that fit in the limit now (the limit less the customers reached in
    /// the last 24 h, from the reach log); absent when unlimited.
    pub messaging_limit_remaining: Option<u64>,
    /// Eligible recipients already reached in the last 24 h: they take no room.
    pub eligible_already_reached: u64,
    /// At the number's rate and within the messaging limit, how long sending to every
    /// eligible recipient takes: the limit's part is exact while the room freed by the
    /// current reaches suffices, then a limit's worth per day.
    pub estimated_send_seconds: u64,
    /// Whether the index had caught up with the changelog.
    pub live: bool,
}

/// A recipient as the list shows them.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RecipientView {
    /// Masked.
    pub phone_number: String,
    pub status: RecipientStatus,
    pub skip_reason: Option<SkipReason>,
    pub error_code: Option<i64>,
    pub error: Option<String>,
    /// Whether "retry the failed" sends to them again.
    pub retryable: bool,
    /// When a send refused for Meta's marketing cap (131049) is tried again by itself.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// Automatic retries already made after that refusal.
    pub automatic_retries: u32,
    pub planned_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub clicked_at: Option<DateTime<Utc>>,
    pub converted_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RecipientPage {
    pub recipients: Vec<RecipientView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecipientQuery {
    /// Only recipients with this status.
    pub status: Option<RecipientStatus>,
    pub cursor: Option<String>,
    /// 1 to 1,000 (default 50).
    pub limit: Option<usize>,
}

/// Numbers to send a test of the campaign to.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    /// Up to ten phone numbers.
    pub phone_numbers: Vec<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TestSent {
    /// Test messages queued (one per number), outside the campaign's counts.
    pub queued: usize,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_campaign", message)
}

fn parse_phone(field: &str, text: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(text).map_err(|e| invalid(format!("{field}: {e}")))
}

/// The definition a body describes, checked (segments must exist).
async fn definition(
    state: &AdminState,
    body: CampaignBody,
) -> Result<CampaignDefinition, ApiError> {
    let caption = body.message_text.clone().filter(|t| !t.trim().is_empty());
    let message = match (body.template, body.media_image, body.media_video) {
        (Some(t), None, None) => CampaignMessage::Template {
            name: t.name,
            language: t.language,
            body_parameters: t.body_parameters,
        },
        (None, Some(image), None) => CampaignMessage::Image {
            media: MediaRef::from_seed(&image),
            caption,
        },
        (None, None, Some(video)) => CampaignMessage::Video {
            media: MediaRef::from_seed(&video),
            caption,
        },
        (None, None, None) => CampaignMessage::Text {
            text: caption
                .ok_or_else(|| invalid("message_text: required (or a template or media)"))?,
        },
        _ => {
            return Err(invalid(
                "give one of template, media_image, media_video (with message_text as caption)",
            ))
        }
    };
    let custom_recipients = body
        .custom_recipients
        .iter()
        .enumerate()
        .map(|(i, p)| parse_phone(&format!("custom_recipients[{i}]"), p))
        .collect::<Result<Vec<_>, _>>()?;
    let definition = CampaignDefinition {
        name: body.name,
        objective: body.objective,
        segments: body.segments,
        custom_recipients,
        message,
        scheduled_start: body.scheduled_start,
        scheduled_end: body.scheduled_end,
        trigger: body.trigger,
        frequency_cap: body.frequency_cap,
        attribution_days: body
            .attribution_days
            .unwrap_or(crate::domain::campaign::definition::DEFAULT_ATTRIBUTION_DAYS),
        track_links: body.track_links.unwrap_or(true),
    };
    definition.validate().map_err(|e| invalid(e.to_string()))?;
    for (i, id) in definition.segments.iter().enumerate() {
        if state
            .store
            .segment(id)
            .await
            .map_err(store_error)?
            .is_none()
        {
            return Err(invalid(format!("segments[{i}]: no segment {id:?}")));
        }
    }
    Ok(definition)
}

fn body_of(definition: &CampaignDefinition) -> CampaignBody {
    let media = |m: &MediaRef| match m {
        MediaRef::Link(link) => link.clone(),
        MediaRef::Id(id) => id.clone(),
    };
    let mut body = CampaignBody {
        name: definition.name.clone(),
        objective: definition.objective.clone(),
        segments: definition.segments.clone(),
        custom_recipients: definition
            .custom_recipients
            .iter()
            .map(PhoneNumber::masked)
            .collect(),
        scheduled_start: definition.scheduled_start,
        scheduled_end: definition.scheduled_end,
        trigger: definition.trigger.clone(),
        frequency_cap: definition.frequency_cap,
        attribution_days: Some(definition.attribution_days),
        track_links: Some(definition.track_links),
        ..CampaignBody::default()
    };
    match &definition.message {
        CampaignMessage::Text { text } => body.message_text = Some(text.clone()),
        CampaignMessage::Image { media: m, caption } => {
            body.media_image = Some(media(m));
            body.message_text = caption.clone();
        }
        CampaignMessage::Video { media: m, caption } => {
            body.media_video = Some(media(m));
            body.message_text = caption.clone();
        }
        CampaignMessage::Template {
            name,
            language,
            body_parameters,
        } => {
            body.template = Some(TemplateBody {
                name: name.clone(),
                language: language.clone(),
                body_parameters: body_parameters.clone(),
            })
        }
    }
    body
}

/// The campaign's funnel, from its whole recipient ledger.
async fn funnel(state: &AdminState, campaign_id: &str) -> Result<Funnel, ApiError> {
    crate::campaigns::clock::funnel(&*state.store, campaign_id)
        .await
        .map_err(store_error)
}

async fn view(state: &AdminState, record: &CampaignRecord) -> Result<CampaignView, ApiError> {
    let definition = parsed(record)?;
    let funnel = funnel(state, &record.campaign_id).await?;
    let body = body_of(&definition);
    Ok(CampaignView {
        id: record.campaign_id.clone(),
        name: record.name.clone(),
        objective: body.objective,
        segments: body.segments,
        custom_recipients: body.custom_recipients,
        message_text: body.message_text,
        media_image: body.media_image,
        media_video: body.media_video,
        template: body.template,
        scheduled_start: body.scheduled_start,
        scheduled_end: body.scheduled_end,
        trigger: body.trigger,
        frequency_cap: body.frequency_cap,
        attribution_days: definition.attribution_days,
        track_links: definition.track_links,
        status: record.status,
        recipients: funnel.recipients,
        pending: funnel.pending,
        sent: funnel.sent,
        delivered: funnel.delivered,
        read: funnel.read,
        clicked: funnel.clicked,
        converted: funnel.converted,
        failed: funnel.failed,
        skipped: funnel.skipped,
        skipped_by_reason: funnel.skipped_by_reason,
        attributed_revenue: crate::domain::money::Money::from_sen(funnel.attributed_revenue_sen)
            .to_string(),
        created_at: record.created_at,
        updated_at: record.updated_at,
    })
}

fn parsed(record: &CampaignRecord) -> Result<CampaignDefinition, ApiError> {
    definition_of(record).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "stored_campaign_invalid",
            format!("the stored campaign no longer parses: {e}"),
        )
    })
}

/// The automatic-retry policy, for a campaign the clock retries (running, not triggered).
fn retry_policy(state: &AdminState, record: &CampaignRecord) -> Option<CapRetryPolicy> {
    let followed = record.status == CampaignStatus::Running
        && definition_of(record).is_ok_and(|d| d.trigger.is_none());
    state
        .campaigns
        .as_ref()
        .filter(|_| followed)
        .map(|c| c.cap_retry)
}

async fn load(state: &AdminState, id: &str) -> Result<CampaignRecord, ApiError> {
    state
        .store
        .campaign(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("not_found", "no such campaign"))
}

/// Campaigns with their tracking metrics.
#[utoipa::path(
    get,
    path = "/api/campaigns/",
    tag = "campaigns",
    responses(
        (status = 200, description = "Every campaign", body = Vec<CampaignView>),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn list(
    State(state): State<Arc<AdminState>>,
) -> Result<Json<Vec<CampaignView>>, ApiError> {
    let records = state.store.campaigns().await.map_err(store_error)?;
    let mut views = Vec::with_capacity(records.len());
    for record in &records {
        match view(&state, record).await {
            Ok(view) => views.push(view),
            Err(e) => {
                tracing::warn!(campaign = %record.campaign_id, error = ?e, "campaign not listed")
            }
        }
    }
    Ok(Json(views))
}

/// Saves a new campaign as a draft.
#[utoipa::path(
    post,
    path = "/api/campaigns/",
    tag = "campaigns",
    request_body = CampaignBody,
    responses(
        (status = 201, description = "Saved as a draft", body = CampaignView),
        (status = 400, description = "Invalid campaign: the field at fault and why", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not change campaigns", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn create(
    State(state): State<Arc<AdminState>>,
    ApiJson(body): ApiJson<CampaignBody>,
) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    let definition = definition(&state, body).await?;
    let now = Utc::now();
    let record = CampaignRecord {
        campaign_id: uuid::Uuid::now_v7().to_string(),
        name: definition.name.clone(),
        status: CampaignStatus::Draft,
        definition_json: serde_json::to_string(&definition).expect("a definition serializes"),
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .put_campaign(&record)
        .await
        .map_err(store_error)?;
    Ok((StatusCode::CREATED, Json(view(&state, &record).await?)))
}

/// Same as `POST /api/campaigns/` (the seed's path).
#[utoipa::path(
    post,
    path = "/api/campaigns/create/",
    tag = "campaigns",
    request_body = CampaignBody,
    responses(
        (status = 201, description = "Saved as a draft", body = CampaignView),
        (status = 400, description = "Invalid campaign: the field at fault and why", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not change campaigns", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn create_seed(
    state: State<Arc<AdminState>>,
    body: ApiJson<CampaignBody>,
) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    create(state, body).await
}

/// A campaign with its tracking metrics.
#[utoipa::path(
    get,
    path = "/api/campaigns/{id}/",
    tag = "campaigns",
    params(("id" = String, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The campaign", body = CampaignView),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn show(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    let record = load(&state, &id).await?;
    Ok(Json(view(&state, &record).await?))
}

/// Replaces a draft or scheduled campaign's definition.
#[utoipa::path(
    put,
    path = "/api/campaigns/{id}/",
    tag = "campaigns",
    params(("id" = String, Path, description = "Campaign id")),
    request_body = CampaignBody,
    responses(
        (status = 200, description = "Saved", body = CampaignView),
        (status = 400, description = "Invalid campaign", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not change campaigns", body = ErrorBody),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 409, description = "The campaign has been launched: it can no longer change", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn replace(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CampaignBody>,
) -> Result<Json<CampaignView>, ApiError> {
    let mut record = load(&state, &id).await?;
    if !matches!(
        record.status,
        CampaignStatus::Draft | CampaignStatus::Scheduled
    ) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_launched",
            format!("a {} campaign can no longer change", record.status.as_str()),
        ));
    }
    let definition = definition(&state, body).await?;
    record.name = definition.name.clone();
    record.definition_json = serde_json::to_string(&definition).expect("a definition serializes");
    record.updated_at = Utc::now();
    state
        .store
        .put_campaign(&record)
        .await
        .map_err(store_error)?;
    Ok(Json(view(&state, &record).await?))
}

/// Applies `action` and tells the partitions' owners.
async fn act(
    state: &AdminState,
    id: &str,
    action: CampaignAction,
) -> Result<CampaignRecord, ApiError> {
    let mut record = load(state, id).await?;
    let definition = parsed(&record)?;
    let next = record
        .status
        .after(action)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "invalid_transition", e.to_string()))?;
    if action == CampaignAction::Schedule && definition.scheduled_start.is_none() {
        return Err(invalid("scheduled_start: required to schedule"));
    }
    if action == CampaignAction::Schedule && definition.trigger.is_some() {
        return Err(invalid(
            "a triggered campaign is not scheduled: launch it to start following its trigger",
        ));
    }
    let segments = segments(state)?;
    if matches!(action, CampaignAction::Launch | CampaignAction::Schedule)
        && campaigns(state)?.number.phone_number_id.is_empty()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_sending_number",
            "no business number to send from: set whatsapp.phone_number_id",
        ));
    }
    let now = Utc::now();
    record.status = next;
    record.updated_at = now;
    state
        .store
        .put_campaign(&record)
        .await
        .map_err(store_error)?;
    let command = match action {
        // A triggered campaign has no audience to plan now: it follows its trigger.
        CampaignAction::Launch if definition.trigger.is_some() => None,
        CampaignAction::Launch => {
            record_unknown_recipients(state, &record.campaign_id, &definition, now).await?;
            Some(Command::CampaignLaunched {
                campaign_id: record.campaign_id.clone(),
                at: now,
            })
        }
        CampaignAction::Resume | CampaignAction::RetryFailed => Some(Command::CampaignResumed {
            campaign_id: record.campaign_id.clone(),
            at: now,
            retry_failed: action == CampaignAction::RetryFailed,
        }),
        CampaignAction::Pause => Some(Command::CampaignHalted {
            campaign_id: record.campaign_id.clone(),
            at: now,
        }),
        CampaignAction::Cancel => {
            settle_pending(state, &record.campaign_id, SkipReason::Cancelled, now).await?;
            Some(Command::CampaignHalted {
                campaign_id: record.campaign_id.clone(),
                at: now,
            })
        }
        CampaignAction::Schedule | CampaignAction::Complete => None,
    };
    if let Some(command) = command {
        broadcast(segments, &command).await?;
    }
    Ok(record)
}

/// Custom recipients no partition's index knows are recorded here, skipped: no
/// partition's owner would plan them.
async fn record_unknown_recipients(
    state: &AdminState,
    campaign_id: &str,
    definition: &CampaignDefinition,
    at: DateTime<Utc>,
) -> Result<(), ApiError> {
    let index = &segments(state)?.index;
    let unknown: Vec<(PhoneNumber, RecipientUpdate)> = definition
        .custom_recipients
        .iter()
        .filter(|phone| !index.contains(phone))
        .flat_map(|phone| {
            [
                (phone.clone(), RecipientUpdate::Planned { at }),
                (
                    phone.clone(),
                    RecipientUpdate::Skipped {
                        at,
                        reason: SkipReason::UnknownContact,
                    },
                ),
            ]
        })
        .collect();
    state
        .store
        .record_recipients(campaign_id, &unknown)
        .await
        .map_err(store_error)
}

/// Records every recipient still pending as skipped for `reason` (a cancel, an end).
pub(crate) async fn settle_pending(
    state: &AdminState,
    campaign_id: &str,
    reason: SkipReason,
    at: DateTime<Utc>,
) -> Result<u64, ApiError> {
    crate::campaigns::clock::settle_pending(&*state.store, campaign_id, reason, at)
        .await
        .map_err(store_error)
}

macro_rules! action_route {
    ($name:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
            post,
            path = $path,
            tag = "campaigns",
            params(("id" = String, Path, description = "Campaign id")),
            responses(
                (status = 200, description = "Done: the campaign as it is now", body = CampaignView),
                (status = 400, description = "The campaign lacks what the action needs", body = ErrorBody),
                (status = 401, description = "No or unknown API key", body = ErrorBody),
                (status = 403, description = "The key's role may not change campaigns", body = ErrorBody),
                (status = 404, description = "No such campaign", body = ErrorBody),
                (status = 409, description = "Not allowed from the campaign's status", body = ErrorBody),
                (status = 503, description = "The store or bus is unavailable, or no segment index here", body = ErrorBody),
            ),
            security(("api_key" = []), ("bearer" = []))
        )]
        pub async fn $name(
            State(state): State<Arc<AdminState>>,
            Path(id): Path<String>,
        ) -> Result<Json<CampaignView>, ApiError> {
            let record = act(&state, &id, $action).await?;
            Ok(Json(view(&state, &record).await?))
        }
    };
}

action_route!(
    schedule,
    "/api/campaigns/{id}/schedule",
    CampaignAction::Schedule,
    "Schedules the campaign: it launches at its `scheduled_start`."
);
action_route!(
    launch,
    "/api/campaigns/{id}/launch",
    CampaignAction::Launch,
    "Launches the campaign now: its audience is planned as of this moment."
);
action_route!(
    pause,
    "/api/campaigns/{id}/pause",
    CampaignAction::Pause,
    "Pauses sending (within a second); recipients not yet sent stay pending."
);
action_route!(
    resume,
    "/api/campaigns/{id}/resume",
    CampaignAction::Resume,
    "Resumes a paused campaign: its pending recipients are sent, none twice."
);
action_route!(
    cancel,
    "/api/campaigns/{id}/cancel",
    CampaignAction::Cancel,
    "Cancels the campaign: recipients not yet sent are recorded as skipped (cancelled)."
);
action_route!(
    retry_failed,
    "/api/campaigns/{id}/retry-failed",
    CampaignAction::RetryFailed,
    "Sends again to the recipients whose last failure is retryable (rate limits, Meta's per-user cap, provider errors); never to those whose send may have gone out."
);

/// Who would receive the campaign if it were launched now, after exclusions.
#[utoipa::path(
    get,
    path = "/api/campaigns/{id}/audience",
    tag = "campaigns",
    params(("id" = String, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The audience now", body = Audience),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 503, description = "No segment index in this process, or the store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn audience(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Result<Json<Audience>, ApiError> {
    let record = load(&state, &id).await?;
    let definition = parsed(&record)?;
    let index = segments(&state)?.index.clone();
    let settings = campaigns(&state)?;
    let mut defs: Vec<SegmentDefinition> = Vec::new();
    for segment_id in &definition.segments {
        if let Some(segment) = state.store.segment(segment_id).await.map_err(store_error)? {
            if let Ok(parsed) = SegmentDefinition::from_json_str(&segment.definition_json) {
                defs.push(parsed);
            }
        }
    }
    let cap = definition.frequency_cap.unwrap_or(settings.frequency_cap);
    let unknown = definition
        .custom_recipients
        .iter()
        .filter(|p| !index.contains(p))
        .count() as u64;
    let (limit, rate) = (
        settings.messaging_limit_24h,
        settings.messages_per_second.max(1),
    );
    let now = Utc::now();
    let mut window = ReachWindow::new(limit);
    if limit > 0 {
        let since = now - chrono::Duration::hours(24);
        window.note_all(
            state
                .store
                .reaches_since(since)
                .await
                .map_err(store_error)?,
        );
    }
    let counted = tokio::task::spawn_blocking(move || {
        let ctx = EvalContext::new(now, malaysian_day(now));
        let free_form = definition.message.is_free_form();
        let (mut audience, mut excluded) = (0u64, BTreeMap::<String, u64>::new());
        let mut already_reached = 0u64;
        for partition in index.partitions() {
            index.for_each_in_partition(
                partition,
                &defs,
                &definition.custom_recipients,
                &ctx,
                |row| {
                    audience += 1;
                    match exclusion(row, free_form, cap, now) {
                        Some(reason) => {
                            *excluded.entry(reason.as_str().to_string()).or_default() += 1
                        }
                        None => {
                            already_reached += u64::from(window.reached(&row.phone_number, now))
                        }
                    }
                },
            );
        }
        (audience, excluded, already_reached, window, index.is_live())
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "query_failed",
            e.to_string(),
        )
    })?;
    let (audience, excluded, already_reached, mut window, live) = counted;
    let eligible = audience - excluded.values().sum::<u64>();
    let by_rate = eligible.div_ceil(u64::from(rate));
    let by_limit = window
        .wait_for(eligible - already_reached, now)
        .num_seconds()
        .max(0) as u64;
    Ok(Json(Audience {
        audience,
        eligible,
        excluded,
        unknown_custom_recipients: unknown,
        messaging_limit_24h: limit,
        messaging_limit_remaining: window.remaining(now),
        eligible_already_reached: already_reached,
        estimated_send_seconds: by_rate.max(by_limit),
        live,
    }))
}

/// `cap_retry`: the policy that schedules automatic retries, when known.
pub(super) fn recipient_view(
    contact: &PhoneNumber,
    steps: &RecipientSteps,
    cap_retry: Option<CapRetryPolicy>,
) -> RecipientView {
    let failed = steps.failed.as_ref();
    let next_retry_at = cap_retry.and_then(|policy| match steps.cap_retry(policy, Utc::now()) {
        CapRetry::Scheduled(at) => Some(at),
        CapRetry::Due(_) => Some(Utc::now()),
        CapRetry::NotWanted => None,
    });
    RecipientView {
        phone_number: contact.masked(),
        status: steps.status(),
        skip_reason: steps.skipped.map(|(_, r)| r),
        error_code: failed.and_then(|f| f.code),
        error: failed.map(|f| f.reason.clone()),
        retryable: steps.retryable_failure(),
        next_retry_at,
        automatic_retries: failed.map_or(0, |f| f.cap_retries),
        planned_at: steps.planned_at,
        sent_at: steps.sent.as_ref().map(|(at, _)| *at),
        delivered_at: steps.delivered_at,
        read_at: steps.read_at,
        clicked_at: steps.clicked_at,
        converted_at: steps.converted.map(|(at, _)| at),
        failed_at: failed.map(|f| f.at),
    }
}

/// The cursor is the store's page token (hex) and how many of that page were shown.
fn encode_cursor(token: &PageToken, skip: usize) -> String {
    format!("{}.{skip}", hex::encode(&token.0))
}

fn decode_cursor(text: &str) -> Result<(PageToken, usize), ApiError> {
    let bad = invalid_cursor;
    let (token, skip) = text.split_once('.').ok_or_else(bad)?;
    Ok((
        PageToken(hex::decode(token).map_err(|_| bad())?),
        skip.parse().map_err(|_| bad())?,
    ))
}

/// The campaign's recipients with their status, masked, a page at a time.
#[utoipa::path(
    get,
    path = "/api/campaigns/{id}/recipients/",
    tag = "campaigns",
    params(("id" = String, Path, description = "Campaign id"), RecipientQuery),
    responses(
        (status = 200, description = "A page of recipients", body = RecipientPage),
        (status = 400, description = "Bad cursor, limit or status", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not read contacts", body = ErrorBody),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn recipients(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<RecipientQuery>,
) -> Result<Json<RecipientPage>, ApiError> {
    let cap_retry = retry_policy(&state, &load(&state, &id).await?);
    let limit = page_limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let (mut token, mut skip) = match query.cursor.as_deref() {
        Some(text) => {
            let (token, skip) = decode_cursor(text)?;
            (Some(token), skip)
        }
        None => (None, 0),
    };
    let mut recipients = Vec::new();
    loop {
        let page = state
            .store
            .recipients(&id, token.clone(), LEDGER_PAGE)
            .await
            .map_err(store_error)?;
        for (i, row) in page.items.iter().enumerate().skip(skip) {
            if query.status.is_some_and(|s| s != row.steps.status()) {
                continue;
            }
            if recipients.len() == limit {
                // Resume at this row of this page.
                let here = token.clone().unwrap_or(PageToken(Vec::new()));
                return Ok(Json(RecipientPage {
                    recipients,
                    next_cursor: Some(encode_cursor(&here, i)),
                }));
            }
            recipients.push(recipient_view(&row.contact, &row.steps, cap_retry));
        }
        skip = 0;
        match page.next {
            Some(next) => token = Some(next),
            None => {
                return Ok(Json(RecipientPage {
                    recipients,
                    next_cursor: None,
                }))
            }
        }
    }
}

/// Every recipient as CSV (masked phone, status, reason, error, times).
#[utoipa::path(
    get,
    path = "/api/campaigns/{id}/recipients.csv",
    tag = "campaigns",
    params(("id" = String, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "CSV with a header row", content_type = "text/csv", body = String),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not read contacts", body = ErrorBody),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn recipients_csv(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let cap_retry = retry_policy(&state, &load(&state, &id).await?);
    let mut out = String::from(
        "phone_number,status,skip_reason,error_code,retryable,planned_at,sent_at,delivered_at,read_at,clicked_at,converted_at,failed_at,next_retry_at\n",
    );
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    let mut pages = RecipientPages::new(&*state.store, &id, LEDGER_PAGE);
    while let Some(rows) = pages.next().await.map_err(store_error)? {
        for row in &rows {
            let v = recipient_view(&row.contact, &row.steps, cap_retry);
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                v.phone_number,
                v.status.as_str(),
                v.skip_reason.map(|r| r.as_str()).unwrap_or_default(),
                v.error_code.map(|c| c.to_string()).unwrap_or_default(),
                v.retryable,
                time(v.planned_at),
                time(v.sent_at),
                time(v.delivered_at),
                time(v.read_at),
                time(v.clicked_at),
                time(v.converted_at),
                time(v.failed_at),
                time(v.next_retry_at),
            ));
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"campaign-{id}-recipients.csv\""),
            ),
        ],
        out,
    )
        .into_response())
}

/// Sends the campaign's message to the given numbers now, rendered for each (as a contact
/// if they are one), without touching the campaign's recipients or counts.
#[utoipa::path(
    post,
    path = "/api/campaigns/{id}/test",
    tag = "campaigns",
    params(("id" = String, Path, description = "Campaign id")),
    request_body = TestBody,
    responses(
        (status = 202, description = "Queued", body = TestSent),
        (status = 400, description = "No or too many numbers, or a bad one", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not send", body = ErrorBody),
        (status = 404, description = "No such campaign", body = ErrorBody),
        (status = 503, description = "The store or bus is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn test_send(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TestBody>,
) -> Result<(StatusCode, Json<TestSent>), ApiError> {
    let settings = campaigns(&state)?;
    if body.phone_numbers.is_empty() || body.phone_numbers.len() > MAX_TEST_NUMBERS {
        return Err(ApiError::bad_request(
            "invalid_test",
            format!("phone_numbers: 1 to {MAX_TEST_NUMBERS} numbers"),
        ));
    }
    let record = load(&state, &id).await?;
    let definition = parsed(&record)?;
    let now = Utc::now();
    let mut records = Vec::new();
    for (i, text) in body.phone_numbers.iter().enumerate() {
        let phone = PhoneNumber::parse(text).map_err(|e| {
            ApiError::bad_request("invalid_test", format!("phone_numbers[{i}]: {e}"))
        })?;
        let contact = state
            .store
            .load_contact(&phone)
            .await
            .map_err(store_error)?
            .unwrap_or_else(|| Contact::new(phone.clone(), now));
        let rendered = definition
            .message
            .render(&contact)
            .map_err(|e| ApiError::bad_request("invalid_test", e.to_string()))?;
        let request = OutboundRequest {
            // Each test is sent, even to the same number twice.
            request_id: format!("campaign_test:{id}:{}", uuid::Uuid::new_v4()),
            phone_number_id: settings.number.phone_number_id.clone(),
            business_number: settings.number.business_number.clone(),
            to: phone,
            content: test_content(rendered),
            origin: Origin::Operator,
            rule: Some(format!("campaign_test:{id}")),
            campaign_id: None,
            in_reply_to: None,
            created_at: now,
        };
        records.push(Record::new(
            settings.outbound_topic.clone(),
            request.phone_number_id.as_bytes().to_vec(),
            serde_json::to_vec(&request).expect("a request serializes"),
        ));
    }
    let queued = records.len();
    settings
        .producer
        .send_all(records)
        .await
        .map_err(|e| ApiError::unavailable("bus_unavailable", e.to_string()))?;
    Ok((StatusCode::ACCEPTED, Json(TestSent { queued })))
}

/// A test message: as the campaign's, links as written (a test click must not count).
fn test_content(rendered: RenderedMessage) -> OutboundContent {
    crate::campaigns::content::outbound_content(rendered, &|text| text)
}
