//! Segment and campaign definitions, in the CQL store.

use super::*;

#[async_trait]
impl Catalog for ScyllaStore {
    async fn put_segment(&self, segment: &SegmentRecord) -> Result<(), StoreError> {
        self.exec(
            "put_segment",
            &self.st.catalog.put_segment,
            SegmentValues::new(segment),
        )
        .await
        .map(drop)
    }
    async fn segment(&self, segment_id: &str) -> Result<Option<SegmentRecord>, StoreError> {
        let rows: Vec<SegmentRow> = self
            .rows("segment", &self.st.catalog.segment, (segment_id,))
            .await?;
        rows.into_iter()
            .next()
            .map(SegmentRow::into_record)
            .transpose()
    }
    async fn segments(&self) -> Result<Vec<SegmentRecord>, StoreError> {
        let rows: Vec<SegmentRow> = self
            .all_rows("segments", &self.st.catalog.segments, ())
            .await?;
        let mut records = rows
            .into_iter()
            .map(SegmentRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| a.segment_id.cmp(&b.segment_id));
        Ok(records)
    }
    async fn delete_segment(&self, segment_id: &str) -> Result<(), StoreError> {
        self.exec(
            "delete_segment",
            &self.st.catalog.delete_segment,
            (segment_id,),
        )
        .await
        .map(drop)
    }
    async fn put_campaign(&self, campaign: &CampaignRecord) -> Result<(), StoreError> {
        self.exec(
            "put_campaign",
            &self.st.catalog.put_campaign,
            CampaignValues::new(campaign),
        )
        .await
        .map(drop)
    }
    async fn campaign(&self, campaign_id: &str) -> Result<Option<CampaignRecord>, StoreError> {
        let rows: Vec<CampaignRow> = self
            .rows("campaign", &self.st.catalog.campaign, (campaign_id,))
            .await?;
        rows.into_iter()
            .next()
            .map(CampaignRow::into_record)
            .transpose()
    }
    async fn campaigns(&self) -> Result<Vec<CampaignRecord>, StoreError> {
        let rows: Vec<CampaignRow> = self
            .all_rows("campaigns", &self.st.catalog.campaigns, ())
            .await?;
        let mut records = rows
            .into_iter()
            .map(CampaignRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| a.campaign_id.cmp(&b.campaign_id));
        Ok(records)
    }
}

/// The prepared statements of this aggregate.
pub(super) struct CatalogStatements {
    pub(super) put_segment: PreparedStatement,
    pub(super) segment: PreparedStatement,
    pub(super) segments: PreparedStatement,
    pub(super) delete_segment: PreparedStatement,
    pub(super) put_campaign: PreparedStatement,
    pub(super) campaign: PreparedStatement,
    pub(super) campaigns: PreparedStatement,
}

impl CatalogStatements {
    pub(super) async fn prepare(s: &Session, ks: &str) -> Result<Self, StoreError> {
        use Kind::Idempotent as I;
        let (put_segment, segment, segments, delete_segment, put_campaign, campaign, campaigns) = futures::try_join!(
            prepare(
                s,
                format!(
                    "INSERT INTO {ks}.segments ({SEGMENT_COLUMNS}) VALUES ({})",
                    placeholders(SEGMENT_COLUMNS)
                ),
                I
            ),
            prepare(
                s,
                format!("SELECT {SEGMENT_COLUMNS} FROM {ks}.segments WHERE segment_id = ?"),
                I
            ),
            prepare(s, format!("SELECT {SEGMENT_COLUMNS} FROM {ks}.segments"), I),
            prepare(
                s,
                format!("DELETE FROM {ks}.segments WHERE segment_id = ?"),
                I
            ),
            prepare(
                s,
                format!(
                    "INSERT INTO {ks}.campaigns ({CAMPAIGN_COLUMNS}) VALUES ({})",
                    placeholders(CAMPAIGN_COLUMNS)
                ),
                I
            ),
            prepare(
                s,
                format!("SELECT {CAMPAIGN_COLUMNS} FROM {ks}.campaigns WHERE campaign_id = ?"),
                I
            ),
            prepare(
                s,
                format!("SELECT {CAMPAIGN_COLUMNS} FROM {ks}.campaigns"),
                I
            ),
        )?;
        Ok(CatalogStatements {
            put_segment,
            segment,
            segments,
            delete_segment,
            put_campaign,
            campaign,
            campaigns,
        })
    }
}
