//! `/api/analytics/…`: revenue, demographics and campaign funnels over a range of days, for
//! analysts and admins. Answered by the analytics reader of the process: ClickHouse on a
//! deployment, the event files on the embedded default; both collapse replays (each event,
//! each purchase counted once), so the figures are exact under redelivery.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::{Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::query::ApiQuery;
use super::AdminState;
use crate::domain::clock::malaysian_day;
use crate::storage::sink::{AnalyticsReader, DemographicRow, FunnelRow, RevenueRow, SinkError};

/// The longest range one request may ask for.
const MAX_DAYS: i64 = 366;
/// The range when none is given: the last 30 Malaysian days, today included.
const DEFAULT_DAYS: i64 = 30;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Range {
    /// First day (Malaysian calendar), e.g. 2026-11-01; default 29 days before `to`.
    #[param(value_type = Option<String>, format = Date, example = "2026-11-01")]
    pub from: Option<NaiveDate>,
    /// Last day, included; default today.
    #[param(value_type = Option<String>, format = Date, example = "2026-11-30")]
    pub to: Option<NaiveDate>,
}

impl Range {
    /// The days asked for, checked: in order and at most a year.
    fn days(&self) -> Result<(NaiveDate, NaiveDate), ApiError> {
        let to = self.to.unwrap_or_else(|| malaysian_day(Utc::now()));
        let from = self.from.unwrap_or(to - Duration::days(DEFAULT_DAYS - 1));
        if from > to {
            return Err(ApiError::bad_request(
                "invalid_range",
                "`from` must not be after `to`",
            ));
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(ApiError::bad_request(
                "invalid_range",
                format!("at most {MAX_DAYS} days per request"),
            ));
        }
        Ok((from, to))
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RevenueDay {
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    /// Counted purchases with this receipt date.
    pub purchases: u64,
    /// Distinct customers among them.
    pub buyers: u64,
    /// Ringgit, two decimals, as text (exact).
    #[schema(example = "120.50")]
    pub revenue: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RevenueReport {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// The range's total, ringgit.
    pub revenue: String,
    pub purchases: u64,
    /// Days with counted purchases, in order.
    pub days: Vec<RevenueDay>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DemographicBucket {
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    /// `male`, `female`, or "" when unknown.
    pub gender: String,
    /// `under 18`, `18-24`, `25-34`, `35-44`, `45-54`, `55-64`, `65+`, `unknown`.
    pub age_band: String,
    /// The state of birth from the IC, or "".
    pub state: String,
    pub tier: String,
    /// Distinct contacts with a profile change that day in this bucket.
    pub contacts: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DemographicsReport {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    pub buckets: Vec<DemographicBucket>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FunnelStage {
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    pub campaign_id: String,
    /// queued, sent, skipped, failed, delivered, read, clicked, replied, converted.
    pub stage: String,
    /// Distinct contacts that reached the stage that day.
    pub contacts: u64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FunnelReport {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    pub stages: Vec<FunnelStage>,
}

pub(super) fn reader(state: &AdminState) -> Result<&Arc<dyn AnalyticsReader>, ApiError> {
    state.analytics.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "no_analytics",
            "this process has no analytics reader (run the api role)",
        )
    })
}

/// The failure's detail reaches the log through `ApiError`'s response, not the caller.
pub(super) fn sink_error(error: SinkError) -> ApiError {
    ApiError::unavailable("analytics_unavailable", error.to_string())
}

/// Revenue per receipt date: counted purchases, buyers and ringgit.
#[utoipa::path(
    get,
    path = "/api/analytics/revenue/",
    tag = "analytics",
    params(Range),
    responses(
        (status = 200, description = "Revenue per day in the range", body = RevenueReport),
        (status = 400, description = "A bad or too long range", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not read analytics", body = ErrorBody),
        (status = 503, description = "The analytics store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn revenue(
    State(state): State<Arc<AdminState>>,
    ApiQuery(range): ApiQuery<Range>,
) -> Result<Json<RevenueReport>, ApiError> {
    let (from, to) = range.days()?;
    let rows = reader(&state)?
        .daily_revenue(from, to)
        .await
        .map_err(sink_error)?;
    Ok(Json(revenue_report(from, to, rows)))
}

fn revenue_report(from: NaiveDate, to: NaiveDate, rows: Vec<RevenueRow>) -> RevenueReport {
    let total = rows
        .iter()
        .fold(crate::domain::money::Money::ZERO, |sum, row| {
            sum.saturating_add(row.revenue)
        });
    RevenueReport {
        from,
        to,
        revenue: total.to_string(),
        purchases: rows.iter().map(|row| row.purchases).sum(),
        days: rows
            .into_iter()
            .map(|row| RevenueDay {
                day: row.day,
                purchases: row.purchases,
                buyers: row.buyers,
                revenue: row.revenue.to_string(),
            })
            .collect(),
    }
}

/// Distinct contacts per day by gender, age band, state and tier.
#[utoipa::path(
    get,
    path = "/api/analytics/demographics/",
    tag = "analytics",
    params(Range),
    responses(
        (status = 200, description = "Demographic buckets per day in the range", body = DemographicsReport),
        (status = 400, description = "A bad or too long range", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not read analytics", body = ErrorBody),
        (status = 503, description = "The analytics store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn demographics(
    State(state): State<Arc<AdminState>>,
    ApiQuery(range): ApiQuery<Range>,
) -> Result<Json<DemographicsReport>, ApiError> {
    let (from, to) = range.days()?;
    let rows = reader(&state)?
        .demographics(from, to)
        .await
        .map_err(sink_error)?;
    Ok(Json(DemographicsReport {
        from,
        to,
        buckets: rows.into_iter().map(demographic_bucket).collect(),
    }))
}

fn demographic_bucket(row: DemographicRow) -> DemographicBucket {
    DemographicBucket {
        day: row.day,
        gender: row.gender,
        age_band: row.age_band,
        state: row.state,
        tier: row.tier,
        contacts: row.contacts,
    }
}

/// Each campaign's funnel per day: distinct contacts per stage.
#[utoipa::path(
    get,
    path = "/api/analytics/campaigns/",
    tag = "analytics",
    params(Range),
    responses(
        (status = 200, description = "Funnel stages per campaign and day in the range", body = FunnelReport),
        (status = 400, description = "A bad or too long range", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not read analytics", body = ErrorBody),
        (status = 503, description = "The analytics store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn campaigns(
    State(state): State<Arc<AdminState>>,
    ApiQuery(range): ApiQuery<Range>,
) -> Result<Json<FunnelReport>, ApiError> {
    let (from, to) = range.days()?;
    let rows = reader(&state)?
        .campaign_funnel(from, to)
        .await
        .map_err(sink_error)?;
    Ok(Json(FunnelReport {
        from,
        to,
        stages: rows.into_iter().map(funnel_stage).collect(),
    }))
}

fn funnel_stage(row: FunnelRow) -> FunnelStage {
    FunnelStage {
        day: row.day,
        campaign_id: row.campaign_id,
        stage: row.stage,
        contacts: row.contacts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Money;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn a_range_is_in_order_and_at_most_a_year() {
        let range = |from, to| Range { from, to };
        assert_eq!(
            range(Some(day(1)), Some(day(30))).days().unwrap(),
            (day(1), day(30))
        );
        assert_eq!(
            range(None, Some(day(30))).days().unwrap(),
            (day(1), day(30)),
            "30 days by default"
        );
        assert!(range(Some(day(2)), Some(day(1))).days().is_err());
        let year_ago = day(30) - Duration::days(MAX_DAYS);
        assert!(range(Some(year_ago), Some(day(30))).days().is_err());
        assert!(range(Some(year_ago + Duration::days(1)), Some(day(30)))
            .days()
            .is_ok());
    }

    #[test]
    fn the_revenue_report_totals_its_days_exactly() {
        let row = |d, cents: i64| RevenueRow {
            day: day(d),
            purchases: 2,
            buyers: 1,
            revenue: Money::from_sen(cents),
        };
        let report = revenue_report(day(1), day(30), vec![row(3, 12_050), row(4, 1)]);
        assert_eq!(report.revenue, "120.51");
        assert_eq!(report.purchases, 4);
        assert_eq!(report.days[0].revenue, "120.50");
        assert_eq!(report.days[1].revenue, "0.01");
    }
}

/// One bucket of customers and what they are worth.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ValueView {
    /// A spend band (`none`, `under 100`, `100-499`, `500-1999`, `2000-4999`, `5000+`
    /// ringgit), a tier, or a registration month (`YYYY-MM`).
    pub bucket: String,
    pub customers: u64,
    /// Ringgit spent by them in all, exact.
    #[schema(example = "12500.00")]
    pub total_spent: String,
    /// Lifetime value: the mean spend per customer, to the sen.
    #[schema(example = "250.00")]
    pub average_spent: String,
    /// Purchases per customer.
    pub average_purchases: f64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CustomerValueReport {
    /// Customers by lifetime spend (the distribution), with average spend and purchase
    /// frequency per band.
    pub spending: Vec<ValueView>,
    /// Lifetime value by tier.
    pub by_tier: Vec<ValueView>,
    /// Lifetime value by the month customers registered their MyKad.
    pub by_cohort: Vec<ValueView>,
}

fn value_views(buckets: Vec<crate::storage::sink::ValueBucket>) -> Vec<ValueView> {
    buckets
        .into_iter()
        .map(|b| ValueView {
            average_spent: b
                .total_spent
                .div_round(b.customers)
                .unwrap_or_default()
                .to_string(),
            average_purchases: if b.customers == 0 {
                0.0
            } else {
                b.purchases as f64 / b.customers as f64
            },
            bucket: b.bucket,
            customers: b.customers,
            total_spent: b.total_spent.to_string(),
        })
        .collect()
}

/// Spending and customer lifetime value: spend bands, tiers, registration cohorts, each
/// from every customer's latest profile.
#[utoipa::path(
    get,
    path = "/api/analytics/customers/",
    tag = "analytics",
    responses(
        (status = 200, description = "Spending distribution and lifetime value", body = CustomerValueReport),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not read analytics", body = ErrorBody),
        (status = 503, description = "The analytics store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn customers(
    State(state): State<Arc<AdminState>>,
) -> Result<Json<CustomerValueReport>, ApiError> {
    let value = reader(&state)?.customer_value().await.map_err(sink_error)?;
    Ok(Json(CustomerValueReport {
        spending: value_views(value.spending),
        by_tier: value_views(value.by_tier),
        by_cohort: value_views(value.by_cohort),
    }))
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OcrKindOutcome {
    /// ic, receipt or unknown
    pub kind: String,
    pub photos: u64,
    /// Read and validated.
    pub parsed: u64,
    /// parsed ÷ photos.
    pub success_rate: f64,
    /// Tesseract's mean confidence, 0 to 100.
    pub mean_confidence: f64,
    pub p50_ms: u32,
    pub p95_ms: u32,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OcrReport {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    pub kinds: Vec<OcrKindOutcome>,
}

/// OCR outcomes per kind of document: success rate, confidence and time per photo.
#[utoipa::path(
    get,
    path = "/api/analytics/ocr/",
    tag = "analytics",
    params(Range),
    responses(
        (status = 200, description = "OCR outcomes per kind in the range", body = OcrReport),
        (status = 400, description = "A bad or too long range", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key's role may not read analytics", body = ErrorBody),
        (status = 503, description = "The analytics store is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn ocr(
    State(state): State<Arc<AdminState>>,
    ApiQuery(range): ApiQuery<Range>,
) -> Result<Json<OcrReport>, ApiError> {
    let (from, to) = range.days()?;
    let rows = reader(&state)?
        .ocr_outcomes(from, to)
        .await
        .map_err(sink_error)?;
    Ok(Json(OcrReport {
        from,
        to,
        kinds: rows
            .into_iter()
            .map(|r| OcrKindOutcome {
                success_rate: r.parsed as f64 / r.photos.max(1) as f64,
                kind: r.kind,
                photos: r.photos,
                parsed: r.parsed,
                mean_confidence: r.mean_confidence,
                p50_ms: r.p50_ms,
                p95_ms: r.p95_ms,
            })
            .collect(),
    }))
}
