-- The PDPA audit trail: one row per admin API request that read or changed personal data.
-- key_id is a hash prefix of the API key (never the key); contact_phone is '' for routes
-- that name no single contact (lists, exports of many); query is the query string with
-- IC-shaped numbers masked. Rows are kept; replays of one request collapse by event_id.
CREATE TABLE IF NOT EXISTS ${DATABASE}.personal_data_access (
    event_id String,
    occurred_at DateTime('UTC'),
    key_id String,
    role String,
    method String,
    route String,
    query String,
    contact_phone String,
    status UInt16
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (occurred_at, event_id);
