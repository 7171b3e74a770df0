//! `GET /api/contacts/`: list and search contacts by name or phone, tier, state and saved
//! segment, in cursor pages, from the segment index (the api role's view of every
//! crm.contacts partition). The filters become one segment definition, so a search means
//! exactly what the same filters mean in a segment and costs one index evaluation.
//!
//! Phone numbers are always masked; names too for roles that may not see personal data
//! (the analyst, who may count and browse but not identify).

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use crate::domain::segment::{Predicate, SeedFilters, SegmentDefinition};
use crate::segments::MemberView;

use super::auth::{Caller, Role};
use super::error::{ApiError, ErrorBody};
use super::query::ApiQuery;
use super::segments::{load, query, segments, PageQuery};
use super::AdminState;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactSearch {
    /// Part of a name (any case), or digits of a phone number (`0123`, `6012-345`).
    pub q: Option<String>,
    /// Tiers, comma-separated: `Gold,Platinum`.
    pub tier: Option<String>,
    /// States, comma-separated: `Selangor,WP Kuala Lumpur`.
    pub state: Option<String>,
    /// Only members of this saved segment.
    pub segment: Option<String>,
    /// From `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Contacts per page, 1 to 1,000 (default 50).
    pub limit: Option<usize>,
}

/// A page of contacts.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ContactPage {
    /// Contacts matching the filters, all pages together.
    pub total: u64,
    /// Whether the index had caught up with the changelog.
    pub live: bool,
    pub contacts: Vec<MemberView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Contacts, filtered and searched, a page at a time.
#[utoipa::path(
    get,
    path = "/api/contacts/",
    tag = "contacts",
    params(ContactSearch),
    responses(
        (status = 200, description = "A page of contacts (phone numbers masked; names too for the analyst role)", body = ContactPage,
         example = json!({"total": 1, "live": true, "contacts": [{"phone_number": "6012*****89", "name": "Siti Aminah", "customer_tier": "Gold", "total_spent": "1250.00"}], "next_cursor": null})),
        (status = 400, description = "An unknown tier or state, a bad cursor or limit", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "No such segment", body = ErrorBody),
        (status = 503, description = "No segment index in this process, or the store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn list(
    State(state): State<Arc<AdminState>>,
    ApiQuery(search): ApiQuery<ContactSearch>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<ContactPage>, ApiError> {
    let index = &segments(&state)?.index;
    let (after, limit) = PageQuery {
        cursor: search.cursor.clone(),
        limit: search.limit,
    }
    .bounds()?;
    let mut conditions = filters(&search)?.conditions();
    if let Some(id) = search.segment.as_deref() {
        conditions.extend(load(&state, id).await?.1.conditions());
    }
    if let Some(text) = search.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        conditions.push(text_search(text)?);
    }
    let custom = match conditions.len() {
        0 => None,
        1 => conditions.pop(),
        _ => Some(Predicate::and(conditions).map_err(|e| invalid(e.to_string()))?),
    };
    let definition = SegmentDefinition::new("contact search", SeedFilters::default(), custom)
        .map_err(|e| invalid(e.to_string()))?;
    let page = query(index, &definition, move |index, d, ctx| {
        index.page(d, ctx, after, limit)
    })
    .await?;
    let personal = caller.is_none_or(|Extension(c)| c.role != Role::Analyst);
    let contacts = page
        .members
        .into_iter()
        .map(|mut member| {
            if !personal {
                member.name = member.name.as_deref().map(mask_name);
            }
            member
        })
        .collect();
    Ok(Json(ContactPage {
        total: page.total,
        live: index.is_live(),
        contacts,
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// The tier and state filters, checked by the segment definition parser (so names and
/// errors are the segments API's).
fn filters(search: &ContactSearch) -> Result<SegmentDefinition, ApiError> {
    let list = |text: &Option<String>| -> Value {
        let names: Vec<&str> = text
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            Value::Null
        } else {
            json!(names)
        }
    };
    SegmentDefinition::from_json(&json!({
        "name": "contact search",
        "tier": list(&search.tier),
        "state": list(&search.state),
    }))
    .map_err(|e| invalid(e.to_string()))
}

/// `q` as a predicate: digits (with the separators people type) search the phone number,
/// anything else the name.
fn text_search(text: &str) -> Result<Predicate, ApiError> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let phone_like = !digits.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')'));
    let predicate = if phone_like {
        json!({"field": "phone_number", "op": "contains", "value": digits})
    } else {
        json!({"field": "name", "op": "contains", "value": text})
    };
    Predicate::from_json(&predicate).map_err(|e| invalid(format!("q: {e}")))
}

fn invalid(reason: String) -> ApiError {
    ApiError::bad_request("invalid_query", reason)
}

/// A name reduced to its initials, `Siti Aminah` → `S*** A***`: enough to tell rows
/// apart, not to identify anyone.
fn mask_name(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|word| word.chars().next())
        .map(|initial| format!("{initial}***"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_names_keep_only_initials() {
        assert_eq!(mask_name("Siti Aminah binti Ali"), "S*** A*** b*** A***");
        assert_eq!(mask_name("  "), "");
    }

    #[test]
    fn digits_search_the_phone_and_words_the_name() {
        let phone = text_search("012-345").unwrap().to_json();
        assert_eq!(phone["field"], "phone_number");
        assert_eq!(phone["value"], "012345");
        let name = text_search("Siti 2").unwrap().to_json();
        assert_eq!(name["field"], "name");
        assert_eq!(name["value"], "Siti 2");
    }

    #[test]
    fn unknown_tiers_and_states_are_refused_with_the_parser_reason() {
        let search = ContactSearch {
            tier: Some("Gold, Diamond".into()),
            ..Default::default()
        };
        let error = filters(&search).unwrap_err();
        assert!(format!("{error:?}").contains("tier"), "{error:?}");
        let ok = ContactSearch {
            tier: Some("gold,Platinum".into()),
            state: Some("Selangor".into()),
            ..Default::default()
        };
        assert_eq!(filters(&ok).unwrap().conditions().len(), 2);
    }
}
