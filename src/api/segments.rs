//! The segments API: saved definitions with live counts from the segment index, member
//! pages, previews of unsaved definitions, breakdowns and CSV export.
//!
//! Definitions are stored in the catalog and announced on crm.commands
//! ([`Command::SegmentChanged`], a copy per partition) so every process's index knows
//! them. Counts and members come from this process's index of every crm.contacts
//! partition (the api role); a process without it answers 503.
//!
//! Bodies take the definition format of docs/segments.md or the seed's names
//! (`gender_filter`, `marital_status_filter`, `state_filter`, `customer_tier_filter`,
//! `custom_filters`); blank seed values (`""`, `[]`) are absent, as HTML forms send them.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::domain::clock::malaysian_day;
use crate::domain::segment::{EvalContext, SegmentDefinition};
use crate::segments::{Breakdown, Cursor, MemberView, SegmentIndex};
use crate::storage::bus::Producer;
use crate::storage::store::SegmentRecord;
use crate::topics::commands::Command;

use super::auth::{Caller, READ_CONTACTS};
use super::body::ApiJson;
use super::error::{ApiError, ErrorBody};
use super::query::{page_cursor, page_limit, ApiQuery};
use super::AdminState;

/// Members per page by default and at most.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1_000;
/// Members a preview shows.
const PREVIEW_SAMPLE: usize = 10;

/// What the segments API needs beyond the store.
pub struct SegmentsState {
    pub index: Arc<SegmentIndex>,
    pub producer: Arc<dyn Producer>,
    /// crm.commands (namespaced) and its partition count.
    pub commands_topic: String,
    pub command_partitions: u32,
}

/// A saved segment with its live count.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SegmentView {
    pub id: String,
    pub name: String,
    /// The definition in canonical form (docs/segments.md).
    #[schema(value_type = Object)]
    pub definition: Value,
    /// Members now.
    pub count: u64,
    /// Whether the index had caught up with the changelog when counting.
    pub live: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A segment, its count, and a page of its members.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SegmentDetail {
    #[serde(flatten)]
    pub segment: SegmentView,
    /// A page of members; absent for roles that may not read contacts.
    pub members: Option<Vec<MemberView>>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The count and a sample of an unsaved definition.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Preview {
    pub count: u64,
    pub live: bool,
    /// Up to ten members; absent for roles that may not read contacts.
    pub sample: Option<Vec<MemberView>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// From `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Members per page, 1 to 1,000 (default 50).
    pub limit: Option<usize>,
}

impl PageQuery {
    /// Where the page starts and how long it is, or the API's 400 for a cursor this API
    /// did not give or a limit out of range.
    pub(super) fn bounds(&self) -> Result<(Option<Cursor>, usize), ApiError> {
        let after = page_cursor(self.cursor.as_deref(), Cursor::decode)?;
        Ok((after, page_limit(self.limit, DEFAULT_PAGE, MAX_PAGE)?))
    }
}

/// A definition body: the docs/segments.md format or the seed's field names.
#[derive(ToSchema)]
#[schema(example = json!({"name": "Selangor women 25-45", "min_age": 25, "max_age": 45, "gender_filter": "female", "state_filter": ["Selangor"], "customer_tier_filter": ["Gold", "Platinum"]}))]
#[allow(dead_code)] // Describes the body only; handlers take the JSON value.
pub struct DefinitionBody(std::collections::BTreeMap<String, Value>);

pub(super) fn segments(state: &AdminState) -> Result<&SegmentsState, ApiError> {
    state.segments.as_ref().ok_or_else(|| {
        ApiError::unavailable(
            "no_segment_index",
            "this process does not run the api role, which indexes segments",
        )
    })
}

pub(super) fn now() -> EvalContext {
    let now = Utc::now();
    EvalContext::new(now, malaysian_day(now))
}

/// The seed's spelling of a key and ours.
const SEED_KEYS: [(&str, &str); 5] = [
    ("gender_filter", "gender"),
    ("marital_status_filter", "marital_status"),
    ("state_filter", "state"),
    ("customer_tier_filter", "tier"),
    ("custom_filters", "custom"),
];

/// Parses a body in either spelling. Errors name the node as the caller wrote it.
pub fn parse_definition(body: &Value) -> Result<SegmentDefinition, ApiError> {
    let invalid = |message: String| ApiError::bad_request("invalid_segment", message);
    let Value::Object(fields) = body else {
        return Err(invalid("(root): expected a JSON object".into()));
    };
    let mut canonical = Map::new();
    let mut renamed = Vec::new();
    for (key, value) in fields {
        let ours = SEED_KEYS
            .iter()
            .find(|(seed, _)| seed == key)
            .map(|(_, ours)| *ours);
        match ours {
            Some(ours) => {
                if fields.contains_key(ours) {
                    return Err(invalid(format!(
                        "{key}: given twice, as {key} and as {ours}; use one"
                    )));
                }
                let blank = matches!(value, Value::String(s) if s.trim().is_empty())
                    || matches!(value, Value::Array(a) if a.is_empty())
                    || matches!(value, Value::Object(o) if o.is_empty());
                if !blank {
                    canonical.insert(ours.to_string(), value.clone());
                    renamed.push((ours, key.as_str()));
                }
            }
            None => {
                canonical.insert(key.clone(), value.clone());
            }
        }
    }
    SegmentDefinition::from_json(&Value::Object(canonical)).map_err(|e| {
        let text = e.to_string();
        for (ours, theirs) in &renamed {
            if let Some(rest) = text.strip_prefix(ours) {
                if rest.starts_with(['.', '[', ':']) {
                    return invalid(format!("{theirs}{rest}"));
                }
            }
        }
        invalid(text)
    })
}

/// Runs an index query off the async workers: at 10M contacts a count is tens of
/// milliseconds of CPU, which must not stall the other requests of the runtime.
pub(super) async fn query<T: Send + 'static>(
    index: &Arc<SegmentIndex>,
    definition: &SegmentDefinition,
    run: impl FnOnce(&SegmentIndex, &SegmentDefinition, &EvalContext) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (index, definition) = (index.clone(), definition.clone());
    tokio::task::spawn_blocking(move || run(&index, &definition, &now()))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "query_failed",
                format!("the segment query failed: {e}"),
            )
        })
}

/// A segment as the API shows it, with its count now.
async fn view(
    record: &SegmentRecord,
    definition: &SegmentDefinition,
    index: &Arc<SegmentIndex>,
) -> Result<SegmentView, ApiError> {
    let count = query(index, definition, |index, d, ctx| index.count(d, ctx)).await?;
    Ok(view_with_count(record, definition, count, index))
}

/// [`view`] with a count already taken (by a member page of the same evaluation).
fn view_with_count(
    record: &SegmentRecord,
    definition: &SegmentDefinition,
    count: u64,
    index: &SegmentIndex,
) -> SegmentView {
    SegmentView {
        id: record.segment_id.clone(),
        name: record.name.clone(),
        definition: definition.to_json(),
        count,
        live: index.is_live(),
        created_at: record.created_at.to_rfc3339(),
        updated_at: record.updated_at.to_rfc3339(),
    }
}

pub(super) fn store_error(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "segment catalog unavailable");
    ApiError::unavailable("store_unavailable", e.to_string())
}

pub(super) async fn load(
    state: &AdminState,
    id: &str,
) -> Result<(SegmentRecord, SegmentDefinition), ApiError> {
    let record = state
        .store
        .segment(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("not_found", "no such segment"))?;
    let definition = SegmentDefinition::from_json_str(&record.definition_json).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "stored_definition_invalid",
            format!("the stored definition no longer parses: {e}"),
        )
    })?;
    Ok((record, definition))
}

/// Writes the definition to the catalog, then announces it to every partition's owner.
async fn save(state: &AdminState, record: &SegmentRecord) -> Result<(), ApiError> {
    let segments = segments(state)?;
    state.store.put_segment(record).await.map_err(store_error)?;
    announce(segments, &record.segment_id).await
}

async fn announce(segments: &SegmentsState, segment_id: &str) -> Result<(), ApiError> {
    let command = Command::SegmentChanged {
        segment_id: segment_id.to_string(),
        at: Utc::now(),
    };
    broadcast(segments, &command).await
}

/// Writes `command` to every partition of crm.commands: each partition's owner acts on it
/// for its own contacts.
pub(super) async fn broadcast(segments: &SegmentsState, command: &Command) -> Result<(), ApiError> {
    crate::campaigns::clock::broadcast(
        &*segments.producer,
        &segments.commands_topic,
        segments.command_partitions,
        command,
    )
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "writing a command to crm.commands failed");
        ApiError::unavailable("bus_unavailable", e.to_string())
    })
}

fn may_read_contacts(caller: Option<Extension<Caller>>) -> bool {
    caller.is_some_and(|Extension(c)| READ_CONTACTS.contains(&c.role))
}

/// Saved segments, each with its live count.
#[utoipa::path(
    get,
    path = "/api/segments/",
    tag = "segments",
    responses(
        (status = 200, description = "Every saved segment", body = Vec<SegmentView>),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 503, description = "No segment index in this process, or the store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn list(
    State(state): State<Arc<AdminState>>,
) -> Result<Json<Vec<SegmentView>>, ApiError> {
    let index = &segments(&state)?.index;
    let records = state.store.segments().await.map_err(store_error)?;
    let mut views = Vec::with_capacity(records.len());
    for record in records {
        // A definition that no longer parses is listed without a count rather than hiding
        // the others.
        match SegmentDefinition::from_json_str(&record.definition_json) {
            Ok(definition) => views.push(view(&record, &definition, index).await?),
            Err(e) => {
                tracing::warn!(segment = %record.segment_id, error = %e, "stored segment definition invalid")
            }
        }
    }
    Ok(Json(views))
}

/// Saves a new segment.
#[utoipa::path(
    post,
    path = "/api/segments/",
    tag = "segments",
    request_body(content = DefinitionBody, description = "A definition (docs/segments.md) or the seed's field names"),
    responses(
        (status = 201, description = "Saved, with its live count", body = SegmentView),
        (status = 400, description = "Invalid definition: the path to the bad node and why", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not change segments", body = ErrorBody),
        (status = 503, description = "No segment index in this process, or the store or bus is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn create(
    State(state): State<Arc<AdminState>>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<SegmentView>), ApiError> {
    let definition = parse_definition(&body)?;
    let now = Utc::now();
    let record = SegmentRecord {
        segment_id: uuid::Uuid::now_v7().to_string(),
        name: definition.name().to_string(),
        definition_json: definition.to_json().to_string(),
        created_at: now,
        updated_at: now,
    };
    save(&state, &record).await?;
    let index = &segments(&state)?.index;
    Ok((
        StatusCode::CREATED,
        Json(view(&record, &definition, index).await?),
    ))
}

/// Same as `POST /api/segments/` (the seed's path).
#[utoipa::path(
    post,
    path = "/api/segments/create/",
    tag = "segments",
    request_body(content = DefinitionBody, description = "A definition (docs/segments.md) or the seed's field names"),
    responses(
        (status = 201, description = "Saved, with its live count", body = SegmentView),
        (status = 400, description = "Invalid definition: the path to the bad node and why", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not change segments", body = ErrorBody),
        (status = 503, description = "No segment index in this process, or the store or bus is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn create_seed(
    state: State<Arc<AdminState>>,
    body: ApiJson<Value>,
) -> Result<(StatusCode, Json<SegmentView>), ApiError> {
    create(state, body).await
}

/// A segment, its live count and a page of its members.
#[utoipa::path(
    get,
    path = "/api/segments/{id}/",
    tag = "segments",
    params(("id" = String, Path, description = "Segment id"), PageQuery),
    responses(
        (status = 200, description = "The segment", body = SegmentDetail),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "No such segment", body = ErrorBody),
        (status = 503, description = "No segment index in this process, or the store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn show(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<SegmentDetail>, ApiError> {
    let index = &segments(&state)?.index;
    let (after, limit) = page.bounds()?;
    let (record, definition) = load(&state, &id).await?;
    // One evaluation gives both the count and the page.
    let (segment, members, next_cursor) = if may_read_contacts(caller) {
        let page = query(index, &definition, move |index, d, ctx| {
            index.page(d, ctx, after, limit)
        })
        .await?;
        let segment = view_with_count(&record, &definition, page.total, index);
        (segment, Some(page.members), page.next.map(|c| c.encode()))
    } else {
        (view(&record, &definition, index).await?, None, None)
    };
    Ok(Json(SegmentDetail {
        segment,
        members,
        next_cursor,
    }))
}

/// Replaces a segment's definition.
#[utoipa::path(
    put,
    path = "/api/segments/{id}/",
    tag = "segments",
    params(("id" = String, Path, description = "Segment id")),
    request_body(content = DefinitionBody, description = "The whole new definition"),
    responses(
        (status = 200, description = "Saved, with its live count", body = SegmentView),
        (status = 400, description = "Invalid definition: the path to the bad node and why", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not change segments", body = ErrorBody),
        (status = 404, description = "No such segment", body = ErrorBody),
        (status = 503, description = "No segment index in this process, or the store or bus is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn replace(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<SegmentView>, ApiError> {
    let (record, _) = load(&state, &id).await?;
    let definition = parse_definition(&body)?;
    update(&state, record, definition).await
}

/// Changes some keys of a segment's definition (a JSON merge patch: `null` removes a key).
#[utoipa::path(
    patch,
    path = "/api/segments/{id}/",
    tag = "segments",
    params(("id" = String, Path, description = "Segment id")),
    request_body(content = DefinitionBody, description = "The keys to change"),
    responses(
        (status = 200, description = "Saved, with its live count", body = SegmentView),
        (status = 400, description = "Invalid definition: the path to the bad node and why", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not change segments", body = ErrorBody),
        (status = 404, description = "No such segment", body = ErrorBody),
        (status = 503, description = "No segment index in this process, or the store or bus is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn patch(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<SegmentView>, ApiError> {
    let (record, current) = load(&state, &id).await?;
    let Value::Object(changes) = body else {
        return Err(ApiError::bad_request(
            "invalid_segment",
            "(root): expected a JSON object",
        ));
    };
    let Value::Object(mut merged) = current.to_json() else {
        unreachable!("a definition renders as an object");
    };
    for (key, value) in changes {
        // A seed spelling replaces our spelling of the same key, and the reverse.
        if let Some((seed, ours)) = SEED_KEYS.iter().find(|(s, o)| *s == key || *o == key) {
            merged.remove(*seed);
            merged.remove(*ours);
        }
        if value.is_null() {
            merged.remove(&key);
        } else {
            merged.insert(key, value);
        }
    }
    let definition = parse_definition(&Value::Object(merged))?;
    update(&state, record, definition).await
}

async fn update(
    state: &AdminState,
    record: SegmentRecord,
    definition: SegmentDefinition,
) -> Result<Json<SegmentView>, ApiError> {
    let record = SegmentRecord {
        name: definition.name().to_string(),
        definition_json: definition.to_json().to_string(),
        updated_at: Utc::now().max(record.updated_at),
        ..record
    };
    save(state, &record).await?;
    Ok(Json(
        view(&record, &definition, &segments(state)?.index).await?,
    ))
}

/// Deletes a segment.
#[utoipa::path(
    delete,
    path = "/api/segments/{id}/",
    tag = "segments",
    params(("id" = String, Path, description = "Segment id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not change segments", body = ErrorBody),
        (status = 404, description = "No such segment", body = ErrorBody),
        (status = 503, description = "No segment index in this process, or the store or bus is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn delete(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let segments = segments(&state)?;
    load(&state, &id).await?;
    state.store.delete_segment(&id).await.map_err(store_error)?;
    announce(segments, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The count and a sample of members of an unsaved definition (`name` may be left out).
#[utoipa::path(
    post,
    path = "/api/segments/preview",
    tag = "segments",
    request_body(content = DefinitionBody, description = "A definition (docs/segments.md) or the seed's field names"),
    responses(
        (status = 200, description = "Its count now and a sample", body = Preview),
        (status = 400, description = "Invalid definition: the path to the bad node and why", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 503, description = "No segment index in this process", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn preview(
    State(state): State<Arc<AdminState>>,
    caller: Option<Extension<Caller>>,
    ApiJson(mut body): ApiJson<Value>,
) -> Result<Json<Preview>, ApiError> {
    let index = &segments(&state)?.index;
    if let Value::Object(fields) = &mut body {
        fields
            .entry("name")
            .or_insert_with(|| Value::from("preview"));
    }
    let definition = parse_definition(&body)?;
    let with_sample = may_read_contacts(caller);
    // One evaluation gives both the count and the sample.
    let (count, sample) = query(index, &definition, move |index, d, ctx| {
        if with_sample {
            let page = index.page(d, ctx, None, PREVIEW_SAMPLE);
            (page.total, Some(page.members))
        } else {
            (index.count(d, ctx), None)
        }
    })
    .await?;
    Ok(Json(Preview {
        count,
        live: index.is_live(),
        sample,
    }))
}

/// A segment's members by tier, state, gender and age band.
#[utoipa::path(
    get,
    path = "/api/segments/{id}/breakdown",
    tag = "segments",
    params(("id" = String, Path, description = "Segment id")),
    responses(
        (status = 200, description = "Member counts per value", body = Breakdown),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "No such segment", body = ErrorBody),
        (status = 503, description = "No segment index in this process, or the store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn breakdown(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Result<Json<Breakdown>, ApiError> {
    let index = &segments(&state)?.index;
    let (_, definition) = load(&state, &id).await?;
    let breakdown = query(index, &definition, |index, d, ctx| index.breakdown(d, ctx)).await?;
    Ok(Json(breakdown))
}

/// The members as CSV: masked phone number, name, tier, total spent.
#[utoipa::path(
    get,
    path = "/api/segments/{id}/export.csv",
    tag = "segments",
    params(("id" = String, Path, description = "Segment id")),
    responses(
        (status = 200, description = "CSV with a header row", content_type = "text/csv", body = String),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not read contacts", body = ErrorBody),
        (status = 404, description = "No such segment", body = ErrorBody),
        (status = 503, description = "No segment index in this process, or the store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn export(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let index = &segments(&state)?.index;
    let (record, definition) = load(&state, &id).await?;
    let csv = query(index, &definition, |index, d, ctx| {
        members_csv(index, d, ctx)
    })
    .await?;
    let disposition = format!("attachment; filename=\"segment-{}.csv\"", record.segment_id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response())
}

/// The CSV of a segment's members (the API download and `sembang segments export`).
pub fn members_csv(
    index: &SegmentIndex,
    definition: &SegmentDefinition,
    ctx: &EvalContext,
) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(["phone_number", "name", "customer_tier", "total_spent"]);
    index.for_each_member(definition, ctx, |_, row| {
        let _ = writer.write_record([
            row.phone_number.masked(),
            row.name.as_deref().unwrap_or("").to_string(),
            row.customer_tier.to_string(),
            row.lifetime().total_spent.to_string(),
        ]);
    });
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}
