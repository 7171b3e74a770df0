//! Reading back: the events themselves, and the analysts' aggregates over the views.

use super::rows::*;
use super::*;
use crate::storage::sink::SPEND_BANDS;

#[async_trait]
impl EventReader for ClickHouseSink {
    async fn count_events(&self, table: EventTable) -> Result<u64, SinkError> {
        let sql = format!(
            "SELECT uniqExact(event_id) FROM {}",
            self.qualified(table.name())
        );
        let counts: Vec<u64> = self.fetch(sql).await?;
        Ok(counts.first().copied().unwrap_or(0))
    }
    async fn fetch_events(
        &self,
        table: EventTable,
        limit: usize,
    ) -> Result<Vec<AnalyticsEvent>, SinkError> {
        let from = self.qualified(table.name());
        let select = |columns: &[&str]| {
            format!(
                "SELECT {} FROM {from} FINAL ORDER BY occurred_at, event_id LIMIT {limit}",
                columns.join(", ")
            )
        };
        let pseudonyms = self.pseudonyms.as_deref();
        fn decode_rows<R: TryInto<AnalyticsEvent, Error = String> + ContactColumn>(
            rows: Vec<R>,
            pseudonyms: Option<&PhonePseudonyms>,
        ) -> Result<Vec<AnalyticsEvent>, SinkError> {
            rows.into_iter()
                .map(|mut row| {
                    // An audit row of a list names no contact: nothing to open.
                    if let Some(pseudonyms) =
                        pseudonyms.filter(|_| !row.contact_phone_mut().is_empty())
                    {
                        let contact = row.contact_phone_mut();
                        *contact = pseudonyms
                            .open(contact)
                            .unwrap_or_else(|| "a pseudonym of another key".into());
                    }
                    row.try_into().map_err(|detail| SinkError::Rejected {
                        service: SERVICE,
                        operation: "fetch",
                        detail,
                    })
                })
                .collect()
        }
        match table {
            EventTable::InboundMessages => decode_rows(
                self.fetch::<InboundRow>(select(InboundRow::COLUMN_NAMES))
                    .await?,
                pseudonyms,
            ),
            EventTable::OutboundMessages => decode_rows(
                self.fetch::<OutboundRow>(select(OutboundRow::COLUMN_NAMES))
                    .await?,
                pseudonyms,
            ),
            EventTable::MessageStatuses => decode_rows(
                self.fetch::<StatusRow>(select(StatusRow::COLUMN_NAMES))
                    .await?,
                pseudonyms,
            ),
            EventTable::Purchases => decode_rows(
                self.fetch::<PurchaseRow>(select(PurchaseRow::COLUMN_NAMES))
                    .await?,
                pseudonyms,
            ),
            EventTable::OcrResults => decode_rows(
                self.fetch::<OcrRow>(select(OcrRow::COLUMN_NAMES)).await?,
                pseudonyms,
            ),
            EventTable::ContactSnapshots => decode_rows(
                self.fetch::<SnapshotRow>(select(SnapshotRow::COLUMN_NAMES))
                    .await?,
                pseudonyms,
            ),
            EventTable::CampaignSends => decode_rows(
                self.fetch::<SendRow>(select(SendRow::COLUMN_NAMES)).await?,
                pseudonyms,
            ),
            EventTable::PersonalDataAccess => decode_rows(
                self.fetch::<AccessRow>(select(AccessRow::COLUMN_NAMES))
                    .await?,
                pseudonyms,
            ),
        }
    }
}

#[async_trait]
impl AnalyticsReader for ClickHouseSink {
    async fn campaign_funnel(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FunnelRow>, SinkError> {
        let sql = format!(
            "SELECT day, campaign_id, stage, contacts, events FROM {} WHERE {} \
             ORDER BY day, campaign_id, stage",
            self.qualified("campaign_funnel"),
            Self::day_filter(from, to)
        );
        let rows: Vec<(u16, String, String, u64, u64)> = self.fetch(sql).await?;
        rows.into_iter()
            .map(|(day, campaign_id, stage, contacts, events)| {
                Ok(FunnelRow {
                    day: date_from_days(day).map_err(query_error)?,
                    campaign_id,
                    stage,
                    contacts,
                    events,
                })
            })
            .collect()
    }
    async fn daily_revenue(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<RevenueRow>, SinkError> {
        let sql = format!(
            "SELECT day, purchases, buyers, toDecimal64(revenue, 2) AS revenue_sen FROM {} \
             WHERE {} ORDER BY day",
            self.qualified("daily_revenue"),
            Self::day_filter(from, to)
        );
        let rows: Vec<(u16, u64, u64, i64)> = self.fetch(sql).await?;
        rows.into_iter()
            .map(|(day, purchases, buyers, sen)| {
                Ok(RevenueRow {
                    day: date_from_days(day).map_err(query_error)?,
                    purchases,
                    buyers,
                    revenue: Money::from_sen(sen),
                })
            })
            .collect()
    }
    async fn demographics(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DemographicRow>, SinkError> {
        let sql = format!(
            "SELECT day, gender, age_band, state, tier, contacts FROM {} WHERE {} \
             ORDER BY day, gender, age_band, state, tier",
            self.qualified("daily_demographics"),
            Self::day_filter(from, to)
        );
        let rows: Vec<(u16, String, String, String, String, u64)> = self.fetch(sql).await?;
        rows.into_iter()
            .map(|(day, gender, age_band, state, tier, contacts)| {
                Ok(DemographicRow {
                    day: date_from_days(day).map_err(query_error)?,
                    gender,
                    age_band,
                    state,
                    tier,
                    contacts,
                })
            })
            .collect()
    }
    async fn customer_value(&self) -> Result<CustomerValue, SinkError> {
        // Each contact's latest snapshot (argMax by time; a replayed snapshot is the same
        // row twice). Sums in sen, exact.
        let latest = format!(
            "SELECT contact_phone, argMax(total_spent, occurred_at) AS spent, \
             argMax(purchase_count, occurred_at) AS purchases, argMax(tier, occurred_at) AS tier \
             FROM {} GROUP BY contact_phone",
            self.qualified("contact_snapshots")
        );
        let totals = "count() AS customers, toDecimal64(sum(spent), 2) AS spent_sen, \
                      sum(toUInt64(purchases)) AS purchase_total";
        let bands = format!(
            "SELECT multiIf(spent <= 0, 'none', spent < 100, 'under 100', spent < 500, '100-499', \
             spent < 2000, '500-1999', spent < 5000, '2000-4999', '5000+') AS bucket, {totals} \
             FROM ({latest}) GROUP BY bucket"
        );
        let tiers = format!("SELECT tier AS bucket, {totals} FROM ({latest}) GROUP BY bucket");
        let cohorts = format!(
            "SELECT toString(cohort) AS bucket, {totals} FROM ( \
                SELECT contact_phone, toYYYYMM(toDate(min(occurred_at), 'Asia/Kuala_Lumpur')) AS cohort \
                FROM {} WHERE reason = 'registered' GROUP BY contact_phone \
             ) AS registered ANY INNER JOIN ({latest}) AS latest USING (contact_phone) GROUP BY bucket",
            self.qualified("contact_snapshots")
        );
        let fetch = |sql: String| async move {
            let rows: Vec<(String, u64, i64, u64)> = self.fetch(sql).await?;
            Ok::<_, SinkError>(
                rows.into_iter()
                    .map(|(bucket, customers, sen, purchases)| ValueBucket {
                        bucket,
                        customers,
                        total_spent: Money::from_sen(sen),
                        purchases,
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let mut spending = fetch(bands).await?;
        spending.sort_by_key(|b| SPEND_BANDS.iter().position(|(name, _)| *name == b.bucket));
        let mut by_tier = fetch(tiers).await?;
        by_tier.sort_by_key(|b| b.bucket.parse::<crate::domain::tier::Tier>().ok());
        let mut by_cohort = fetch(cohorts).await?;
        for bucket in &mut by_cohort {
            // YYYYMM as YYYY-MM.
            if bucket.bucket.len() == 6 {
                bucket.bucket.insert(4, '-');
            }
        }
        by_cohort.sort_by(|a, b| a.bucket.cmp(&b.bucket));
        Ok(CustomerValue {
            spending,
            by_tier,
            by_cohort,
        })
    }
    async fn ocr_outcomes(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<OcrOutcomeRow>, SinkError> {
        let sql = format!(
            "SELECT kind, count() AS photos, countIf(status = 'parsed') AS parsed, \
             avg(toFloat64(confidence)) AS mean_confidence, \
             quantileExact(0.5)(duration_ms) AS p50, quantileExact(0.95)(duration_ms) AS p95 \
             FROM {} FINAL WHERE toDate(occurred_at, 'Asia/Kuala_Lumpur') BETWEEN toDate('{from}') AND toDate('{to}') \
             GROUP BY kind ORDER BY photos DESC, kind",
            self.qualified("ocr_results")
        );
        let rows: Vec<(String, u64, u64, f64, u32, u32)> = self.fetch(sql).await?;
        Ok(rows
            .into_iter()
            .map(
                |(kind, photos, parsed, mean_confidence, p50_ms, p95_ms)| OcrOutcomeRow {
                    kind,
                    photos,
                    parsed,
                    mean_confidence,
                    p50_ms,
                    p95_ms,
                },
            )
            .collect())
    }
    async fn pending_reviews(&self, limit: u32) -> Result<Vec<PendingReviewRow>, SinkError> {
        // Each purchase's latest event (argMax by occurred_at; a replayed event is the
        // same row twice and changes nothing).
        let sql = format!(
            "SELECT purchase_id, contact_phone, toUInt32(recorded) AS recorded_at, purchase_date, \
             merchant, receipt_no, toDecimal64(total, 2) AS total_sen, item_count, ocr_confidence \
             FROM (SELECT purchase_id, \
                argMax(status, occurred_at) AS latest_status, \
                argMax(contact_phone, occurred_at) AS contact_phone, \
                max(occurred_at) AS recorded, \
                argMax(purchase_date, occurred_at) AS purchase_date, \
                argMax(merchant, occurred_at) AS merchant, \
                argMax(receipt_no, occurred_at) AS receipt_no, \
                argMax(total, occurred_at) AS total, \
                argMax(item_count, occurred_at) AS item_count, \
                argMax(ocr_confidence, occurred_at) AS ocr_confidence \
                FROM {} GROUP BY purchase_id) \
             WHERE latest_status = 'pending_review' ORDER BY recorded, purchase_id LIMIT {limit}",
            self.qualified("purchases")
        );
        type Row = (
            String,
            String,
            u32,
            u16,
            String,
            String,
            i64,
            u32,
            Option<f32>,
        );
        let rows: Vec<Row> = self.fetch(sql).await?;
        let pseudonyms = self.pseudonyms.as_deref();
        let mut pending = Vec::with_capacity(rows.len());
        for (purchase_id, contact, at, day, merchant, receipt_no, sen, item_count, confidence) in
            rows
        {
            let contact = match pseudonyms {
                Some(p) => p.open(&contact),
                None => Some(contact),
            };
            // A row written under another pseudonym key cannot be traced to a contact.
            let Some(Ok(contact_phone)) = contact.map(|c| PhoneNumber::parse(&c)) else {
                continue;
            };
            pending.push(PendingReviewRow {
                purchase_id,
                contact_phone,
                recorded_at: DateTime::<Utc>::from_timestamp(i64::from(at), 0).unwrap_or_default(),
                purchase_date: date_from_days(day).map_err(query_error)?,
                merchant: Some(merchant).filter(|m| !m.is_empty()),
                receipt_no: Some(receipt_no).filter(|r| !r.is_empty()),
                total: Money::from_sen(sen),
                item_count,
                ocr_confidence: confidence,
            });
        }
        Ok(pending)
    }
}

fn query_error(detail: String) -> SinkError {
    SinkError::Rejected {
        service: SERVICE,
        operation: "query",
        detail,
    }
}
