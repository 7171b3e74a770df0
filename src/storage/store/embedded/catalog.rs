//! Segment and campaign definitions, in the embedded store.

use super::*;

#[async_trait]
impl Catalog for EmbeddedStore {
    async fn put_segment(&self, segment: &SegmentRecord) -> Result<(), StoreError> {
        const OP: &str = "put_segment";
        let mut record = segment.clone();
        record.created_at = ms(record.created_at);
        record.updated_at = ms(record.updated_at);
        let bytes = encode(OP, &record)?;
        self.blocking(OP, move |db| {
            Self::put_record(db, OP, SEGMENTS, &record.segment_id, &bytes)
        })
        .await
    }
    async fn segment(&self, segment_id: &str) -> Result<Option<SegmentRecord>, StoreError> {
        let id = segment_id.to_string();
        self.blocking("segment", move |db| {
            Self::get_record(db, "segment", SEGMENTS, &id)
        })
        .await
    }
    async fn segments(&self) -> Result<Vec<SegmentRecord>, StoreError> {
        self.blocking("segments", |db| Self::all_records(db, "segments", SEGMENTS))
            .await
    }
    async fn delete_segment(&self, segment_id: &str) -> Result<(), StoreError> {
        const OP: &str = "delete_segment";
        let id = segment_id.to_string();
        self.blocking(OP, move |db| {
            let txn = db.begin_write().map_err(err(OP))?;
            txn.open_table(SEGMENTS)
                .map_err(err(OP))?
                .remove(id.as_str())
                .map_err(err(OP))?;
            txn.commit().map_err(err(OP))
        })
        .await
    }
    async fn put_campaign(&self, campaign: &CampaignRecord) -> Result<(), StoreError> {
        const OP: &str = "put_campaign";
        let mut record = campaign.clone();
        record.created_at = ms(record.created_at);
        record.updated_at = ms(record.updated_at);
        let bytes = encode(OP, &record)?;
        self.blocking(OP, move |db| {
            Self::put_record(db, OP, CAMPAIGNS, &record.campaign_id, &bytes)
        })
        .await
    }
    async fn campaign(&self, campaign_id: &str) -> Result<Option<CampaignRecord>, StoreError> {
        let id = campaign_id.to_string();
        self.blocking("campaign", move |db| {
            Self::get_record(db, "campaign", CAMPAIGNS, &id)
        })
        .await
    }
    async fn campaigns(&self) -> Result<Vec<CampaignRecord>, StoreError> {
        self.blocking("campaigns", |db| {
            Self::all_records(db, "campaigns", CAMPAIGNS)
        })
        .await
    }
}
