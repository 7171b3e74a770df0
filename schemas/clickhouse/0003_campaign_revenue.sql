-- Campaign steps: what campaign_sends held (queued, sent, skipped, failed) plus 'clicked'
-- (every click) and 'converted' (once per recipient, with the purchase amount in
-- revenue). A new table rather than a new column: ClickHouse 18.16 has no
-- ADD COLUMN IF NOT EXISTS, and every statement here must be safe to run twice.
-- campaign_sends stays for rows written before this version.
CREATE TABLE IF NOT EXISTS ${DATABASE}.campaign_steps (
    event_id String,
    occurred_at DateTime('UTC'),
    campaign_id String,
    contact_phone String,
    business_number String,
    outcome String,
    template_name String,
    wamid String,
    skip_reason String,
    error_code Nullable(Int64),
    revenue Decimal(18, 2)
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (campaign_id, occurred_at, event_id);

-- Attributed revenue per campaign:
--   SELECT campaign_id, sum(revenue) AS revenue, uniqExact(contact_phone) AS converted
--   FROM campaign_steps FINAL WHERE outcome = 'converted' GROUP BY campaign_id;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${DATABASE}.campaign_funnel_steps_mv
TO ${DATABASE}.campaign_funnel_daily AS
SELECT
    toDate(occurred_at, 'Asia/Kuala_Lumpur') AS day,
    campaign_id,
    outcome AS stage,
    uniqExactState(contact_phone) AS contacts,
    uniqExactState(event_id) AS events
FROM ${DATABASE}.campaign_steps
GROUP BY day, campaign_id, stage;
