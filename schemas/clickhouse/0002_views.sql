-- Materialized views for analysts: the daily campaign funnel, daily revenue and daily
-- demographics, each with a plain view on top that answers in final form.
--
-- Exactness under replays. A materialized view sees every inserted block, so a replayed
-- event reaches it again; the views are built so that a second copy changes no answer:
-- - Counts are distinct counts, never sums of rows. campaign_funnel_daily and
--   demographics_daily are AggregatingMergeTree tables holding uniqExactState over
--   event ids and contact phones; merging the state of a copy into the state of the
--   original is a no-op (a set union). Read them with uniqExactMerge (the plain views do).
-- - Money cannot be a distinct count, so revenue keeps one row per purchase:
--   revenue_by_purchase is a ReplacingMergeTree keyed by purchase_id alone (one
--   partition, so every event of a purchase meets every other) with occurred_at as the
--   version. A copy of an event replaces itself; a later event of the same purchase
--   (pending_review -> counted -> rejected, or a corrected amount or receipt date)
--   replaces the earlier one, so each purchase counts once, as its latest event says.
--   Sums are taken at query time over FINAL (the daily_revenue view), never stored
--   pre-summed. Two events of one purchase in the same second: the one inserted last wins.
-- Days are Malaysian days (UTC+8): toDate(occurred_at, 'Asia/Kuala_Lumpur'); revenue uses
-- the receipt's purchase_date. The views see only rows inserted after they were created;
-- to backfill after a schema change, INSERT INTO <target> SELECT ... FROM <event table>
-- (copies are harmless, as above).
--
-- Example queries:
--   Funnel of one campaign, all days together (merge the daily states, never add the
--   daily numbers: a contact seen on two days is one contact):
--     SELECT stage, uniqExactMerge(contacts) AS contacts
--     FROM campaign_funnel_daily WHERE campaign_id = 'spring-sale'
--     GROUP BY stage ORDER BY contacts DESC;
--   Delivery and read rates per campaign per day:
--     SELECT day, campaign_id,
--            sumIf(contacts, stage = 'delivered') / sumIf(contacts, stage = 'sent') AS delivered_rate,
--            sumIf(contacts, stage = 'read') / sumIf(contacts, stage = 'delivered') AS read_rate
--     FROM campaign_funnel GROUP BY day, campaign_id ORDER BY day, campaign_id;
--   Revenue per month and merchant:
--     SELECT toStartOfMonth(day) AS month, merchant, sumIf(total, status = 'counted') AS revenue
--     FROM revenue_by_purchase FINAL GROUP BY month, merchant ORDER BY month, revenue DESC;
--   Revenue attributed to each campaign:
--     SELECT campaign_id, countIf(status = 'counted') AS purchases,
--            sumIf(total, status = 'counted') AS revenue
--     FROM revenue_by_purchase FINAL WHERE campaign_id != '' GROUP BY campaign_id;
--   Contacts by state and gender over a month:
--     SELECT state, gender, uniqExactMerge(contacts) AS contacts FROM demographics_daily
--     WHERE day BETWEEN '2024-03-01' AND '2024-03-31' GROUP BY state, gender ORDER BY state, gender;

-- Campaign funnel. Stages: from campaign_sends the outcome (queued, sent, skipped,
-- failed); from message_statuses of campaign messages the status (sent, delivered, read,
-- failed); inbound messages answering a campaign: 'replied'; counted purchases attributed
-- to a campaign: 'converted'. contacts: distinct contacts reaching the stage; events:
-- distinct events behind it.
CREATE TABLE IF NOT EXISTS ${DATABASE}.campaign_funnel_daily (
    day Date,
    campaign_id String,
    stage String,
    contacts AggregateFunction(uniqExact, String),
    events AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (day, campaign_id, stage);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${DATABASE}.campaign_funnel_sends_mv
TO ${DATABASE}.campaign_funnel_daily AS
SELECT
    toDate(occurred_at, 'Asia/Kuala_Lumpur') AS day,
    campaign_id,
    outcome AS stage,
    uniqExactState(contact_phone) AS contacts,
    uniqExactState(event_id) AS events
FROM ${DATABASE}.campaign_sends
GROUP BY day, campaign_id, stage;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${DATABASE}.campaign_funnel_statuses_mv
TO ${DATABASE}.campaign_funnel_daily AS
SELECT
    toDate(occurred_at, 'Asia/Kuala_Lumpur') AS day,
    campaign_id,
    status AS stage,
    uniqExactState(contact_phone) AS contacts,
    uniqExactState(event_id) AS events
FROM ${DATABASE}.message_statuses
WHERE campaign_id != ''
GROUP BY day, campaign_id, stage;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${DATABASE}.campaign_funnel_replies_mv
TO ${DATABASE}.campaign_funnel_daily AS
SELECT
    toDate(occurred_at, 'Asia/Kuala_Lumpur') AS day,
    campaign_id,
    'replied' AS stage,
    uniqExactState(contact_phone) AS contacts,
    uniqExactState(event_id) AS events
FROM ${DATABASE}.inbound_messages
WHERE campaign_id != ''
GROUP BY day, campaign_id, stage;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${DATABASE}.campaign_funnel_conversions_mv
TO ${DATABASE}.campaign_funnel_daily AS
SELECT
    toDate(occurred_at, 'Asia/Kuala_Lumpur') AS day,
    campaign_id,
    'converted' AS stage,
    uniqExactState(contact_phone) AS contacts,
    uniqExactState(event_id) AS events
FROM ${DATABASE}.purchases
WHERE campaign_id != '' AND status = 'counted'
GROUP BY day, campaign_id, stage;

CREATE VIEW IF NOT EXISTS ${DATABASE}.campaign_funnel AS
SELECT
    day,
    campaign_id,
    stage,
    uniqExactMerge(contacts) AS contacts,
    uniqExactMerge(events) AS events
FROM ${DATABASE}.campaign_funnel_daily
GROUP BY day, campaign_id, stage;

-- Revenue: one row per purchase (day = the receipt's purchase_date), its latest event
-- winning. Query with FINAL. Unpartitioned on purpose: a purchase whose receipt date is
-- corrected must still replace its earlier row.
CREATE TABLE IF NOT EXISTS ${DATABASE}.revenue_by_purchase (
    day Date,
    purchase_id String,
    version DateTime('UTC'),
    event_id String,
    contact_phone String,
    merchant String,
    campaign_id String,
    status String,
    total Decimal(18, 2)
) ENGINE = ReplacingMergeTree(version)
ORDER BY purchase_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${DATABASE}.revenue_by_purchase_mv
TO ${DATABASE}.revenue_by_purchase AS
SELECT
    purchase_date AS day,
    purchase_id,
    occurred_at AS version,
    event_id,
    contact_phone,
    merchant,
    campaign_id,
    status,
    total
FROM ${DATABASE}.purchases;

-- purchases and buyers count counted purchases only; revenue is Decimal(38,2).
CREATE VIEW IF NOT EXISTS ${DATABASE}.daily_revenue AS
SELECT
    day,
    countIf(status = 'counted') AS purchases,
    uniqExactIf(contact_phone, status = 'counted') AS buyers,
    sumIf(total, status = 'counted') AS revenue
FROM ${DATABASE}.revenue_by_purchase FINAL
GROUP BY day;

-- Demographics: distinct contacts with a snapshot that day, per bucket. gender and state
-- are '' when unknown. A contact whose bucket changed during a day (a tier upgrade) is
-- counted in both buckets that day.
CREATE TABLE IF NOT EXISTS ${DATABASE}.demographics_daily (
    day Date,
    gender String,
    age_band String,
    state String,
    tier String,
    contacts AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (day, gender, age_band, state, tier);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${DATABASE}.demographics_daily_mv
TO ${DATABASE}.demographics_daily AS
SELECT
    toDate(occurred_at, 'Asia/Kuala_Lumpur') AS day,
    gender,
    multiIf(
        isNull(age), 'unknown',
        ifNull(age, 0) < 18, 'under 18',
        ifNull(age, 0) < 25, '18-24',
        ifNull(age, 0) < 35, '25-34',
        ifNull(age, 0) < 45, '35-44',
        ifNull(age, 0) < 55, '45-54',
        ifNull(age, 0) < 65, '55-64',
        '65+') AS age_band,
    state,
    tier,
    uniqExactState(contact_phone) AS contacts
FROM ${DATABASE}.contact_snapshots
GROUP BY day, gender, age_band, state, tier;

CREATE VIEW IF NOT EXISTS ${DATABASE}.daily_demographics AS
SELECT
    day,
    gender,
    age_band,
    state,
    tier,
    uniqExactMerge(contacts) AS contacts
FROM ${DATABASE}.demographics_daily
GROUP BY day, gender, age_band, state, tier;
