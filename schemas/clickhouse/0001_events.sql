-- Sembang analytics event tables (ClickHouse). Written for the SQL every ClickHouse from
-- 18.16 up accepts: no DateTime64, Map, Bool, LowCardinality, TTL, CODEC or skip indexes.
-- Applied by `sembang` through src/storage/migrate.rs with ${DATABASE} replaced; each
-- statement is idempotent, the applied version is recorded in ${DATABASE}.schema_migrations.
--
-- One table per event kind, written by the "analytics" consumer in batches. Conventions:
-- - event_id: a UUID, canonical text. The same event written again (a replay after a crash,
--   a retried insert) is the same row: every table is a ReplacingMergeTree whose ORDER BY
--   ends in event_id and otherwise holds only columns fixed for an event, and whose
--   partition (toYYYYMM(occurred_at)) is fixed for an event too, so copies always meet in
--   one partition and merge into one row. Until a merge happens, copies may be visible:
--   count events with uniqExact(event_id), or read with FINAL.
-- - occurred_at: DateTime('UTC'), whole seconds. Analysts' days are Malaysian days:
--   toDate(occurred_at, 'Asia/Kuala_Lumpur').
-- - Phones are E.164 digits without '+' (60123456789). No IC number is ever stored in
--   clear: only masked forms (900101-14-****); free text is scrubbed before insert.
-- - Money is Decimal(18,2) ringgit (exact; sum() gives Decimal(38,2)).
-- - An absent text is '' (no Nullable strings); absent numbers are NULL.
--
-- Example queries (dedupe-safe):
--   Messages received per day and type:
--     SELECT toDate(occurred_at, 'Asia/Kuala_Lumpur') AS day, message_type,
--            uniqExact(event_id) AS messages
--     FROM inbound_messages GROUP BY day, message_type ORDER BY day, message_type;
--   Provider errors by code in the last 7 days:
--     SELECT error_code, uniqExact(event_id) AS failures
--     FROM message_statuses WHERE status = 'failed' AND occurred_at >= now() - 7 * 86400
--     GROUP BY error_code ORDER BY failures DESC;
--   OCR latency and confidence per kind:
--     SELECT kind, status, count() AS jobs, quantile(0.95)(duration_ms) AS p95_ms,
--            avg(confidence) AS mean_confidence
--     FROM ocr_results FINAL GROUP BY kind, status;
--   Each contact's latest snapshot:
--     SELECT contact_phone, argMax(tier, occurred_at) AS tier,
--            argMax(total_spent, occurred_at) AS total_spent
--     FROM contact_snapshots GROUP BY contact_phone;

CREATE TABLE IF NOT EXISTS ${DATABASE}.inbound_messages (
    event_id String,
    occurred_at DateTime('UTC'),
    contact_phone String,
    business_number String,
    wamid String,
    message_type String,
    text String,
    context_wamid String,
    campaign_id String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (contact_phone, occurred_at, event_id);

CREATE TABLE IF NOT EXISTS ${DATABASE}.outbound_messages (
    event_id String,
    occurred_at DateTime('UTC'),
    contact_phone String,
    business_number String,
    wamid String,
    message_type String,
    template_name String,
    body String,
    campaign_id String,
    origin String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (contact_phone, occurred_at, event_id);

CREATE TABLE IF NOT EXISTS ${DATABASE}.message_statuses (
    event_id String,
    occurred_at DateTime('UTC'),
    contact_phone String,
    business_number String,
    wamid String,
    status String,
    campaign_id String,
    error_code Nullable(Int64),
    error_title String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (contact_phone, occurred_at, event_id);

-- One event per purchase recorded or re-reviewed (status counted, pending_review,
-- rejected): a purchase's latest event by occurred_at is its current state.
CREATE TABLE IF NOT EXISTS ${DATABASE}.purchases (
    event_id String,
    occurred_at DateTime('UTC'),
    contact_phone String,
    business_number String,
    purchase_id String,
    purchase_date Date,
    merchant String,
    receipt_no String,
    total Decimal(18, 2),
    item_count UInt32,
    status String,
    ocr_confidence Nullable(Float32),
    campaign_id String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (contact_phone, occurred_at, event_id);

CREATE TABLE IF NOT EXISTS ${DATABASE}.ocr_results (
    event_id String,
    occurred_at DateTime('UTC'),
    contact_phone String,
    media_id String,
    kind String,
    status String,
    confidence Float32,
    duration_ms UInt32,
    fields_json String,
    error String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (occurred_at, event_id);

-- gender: '', 'male', 'female'; marital_status: '', 'single', 'married', 'divorced',
-- 'widowed'; tier: 'Bronze' .. 'Platinum'; whatsapp_status: 'active', 'blocked',
-- 'unsubscribed'; marketing_opt_in: 0 or 1; age: NULL when unknown.
CREATE TABLE IF NOT EXISTS ${DATABASE}.contact_snapshots (
    event_id String,
    occurred_at DateTime('UTC'),
    contact_phone String,
    gender String,
    age Nullable(UInt8),
    state String,
    marital_status String,
    tier String,
    total_spent Decimal(18, 2),
    purchase_count UInt32,
    whatsapp_status String,
    marketing_opt_in UInt8,
    ic_masked String,
    reason String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (contact_phone, occurred_at, event_id);

-- outcome: 'queued', 'sent', 'skipped', 'failed'.
CREATE TABLE IF NOT EXISTS ${DATABASE}.campaign_sends (
    event_id String,
    occurred_at DateTime('UTC'),
    campaign_id String,
    contact_phone String,
    business_number String,
    outcome String,
    template_name String,
    wamid String,
    skip_reason String,
    error_code Nullable(Int64)
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (campaign_id, occurred_at, event_id);
