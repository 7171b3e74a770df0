#!/usr/bin/env python3
"""Writes Sembang's Grafana dashboards (deploy/grafana/dashboards/*.json) from the panel lists
below: one place to read every query, and the same layout for every panel. Run it after a
change; `--check` fails when a committed dashboard differs from what it would write (the test
command runs that, and runs every query against a real Prometheus and ClickHouse).

Queries use Grafana's `$__rate_interval`; ClickHouse panels use the ClickHouse data source's
`$__fromTime` / `$__toTime` macros and a `${database}` variable (default `sembang`)."""

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "dashboards"

PROM = {"type": "prometheus", "uid": "${prometheus}"}
CLICKHOUSE = {"type": "grafana-clickhouse-datasource", "uid": "${clickhouse}"}


def q(expr, legend=""):
    return {"expr": expr, "legendFormat": legend}


def p95(metric, by=""):
    group = f"le{', ' + by if by else ''}"
    return f"histogram_quantile(0.95, sum by ({group}) (rate({metric}_bucket[$__rate_interval])))"


def p50(metric, by=""):
    group = f"le{', ' + by if by else ''}"
    return f"histogram_quantile(0.5, sum by ({group}) (rate({metric}_bucket[$__rate_interval])))"


def rate(metric, by=""):
    inner = f"rate({metric}[$__rate_interval])"
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def zero_when_none(expr):
    # Counters that only appear on a first failure (an error code, a dead-letter reason):
    # the panel shows 0 instead of "No data" until then.
    return f"({expr}) or vector(0)"


# (title, unit, description, [queries])
ENGINE = [
    ("Webhook requests by outcome", "reqps",
     "Posts to the webhook routes; 'unavailable' is a 503 (the bus did not take the events in time).",
     [q(rate("sembang_ingress_requests_total", "outcome"), "{{outcome}}")]),
    ("Events made durable", "ops", "Events the webhook wrote to wa.inbound.",
     [q(rate("sembang_ingress_events_total"), "events/s")]),
    ("Events applied by type and outcome", "ops", "What the contact shards did with each event.",
     [q(rate("sembang_engine_events_total", "type, outcome"), "{{type}} {{outcome}}")]),
    ("Ingest latency (webhook to stored effects)", "s",
     "From a record's arrival on its topic to the flush that stored its effects.",
     [q(p50("sembang_engine_ingest_delay_seconds"), "p50"),
      q(p95("sembang_engine_ingest_delay_seconds"), "p95")]),
    ("Consumer lag by group", "short", "Records written and not yet committed, per consumer group.",
     [q("max by (group) (sembang_consumer_lag_records)", "{{group}}")]),
    ("Records in flight", "short", "Read by the engine and not yet committed (bounded by engine.max_in_flight).",
     [q("sum(sembang_engine_in_flight_records)", "in flight")]),
    ("Resident contacts", "short", "Contacts held in memory by the shards.",
     [q("sum(sembang_shard_resident_contacts)", "contacts")]),
    ("Resident bytes (budget: engine.max_resident_mb)", "bytes", "Estimated memory of resident contacts.",
     [q("sum(sembang_shard_resident_bytes)", "bytes")]),
    ("Flush latency", "s", "Time to write a shard's changed contacts back to the store.",
     [q(p50("sembang_shard_flush_seconds"), "p50"), q(p95("sembang_shard_flush_seconds"), "p95")]),
    ("Evictions and abandoned work", "ops", "Contacts dropped from memory; work abandoned at a late revoke (replayed by the new owner).",
     [q(rate("sembang_shard_evicted_contacts_total"), "evicted"),
      q(zero_when_none(rate("sembang_shard_abandoned_records_total")), "abandoned records")]),
    ("Dead letters by reason", "ops", "Records sent to the dead-letter topic.",
     [q(zero_when_none(rate("sembang_dlq_total", "reason")), "{{reason}}")]),
    ("Role restarts (1 h)", "short", "Roles the supervisor restarted after a failure.",
     [q(zero_when_none("sum by (role) (increase(sembang_actor_restarts_total[1h]))"), "{{role}}")]),
    ("Retried writes by operation", "ops", "Store, bus and sink writes retried.",
     [q(zero_when_none(rate("sembang_engine_retries_total", "operation")), "{{operation}}")]),
    ("Analytics sink", "ops", "Events written to ClickHouse (or the event files), and failed batches.",
     [q(rate("sembang_sink_events_total"), "events/s"),
      q(zero_when_none(rate("sembang_sink_write_errors_total")), "failed batches/s")]),
    ("Analytics batch latency", "s", "Time to write one analytics batch.",
     [q(p95("sembang_sink_batch_seconds"), "p95")]),
    ("Segment index", "short", "Contacts indexed by this process, and changelog partitions by state.",
     [q("sum(sembang_segment_index_contacts)", "contacts"),
      q("sum by (state) (sembang_segment_index_partitions)", "partitions {{state}}")]),
]

CAMPAIGNS = [
    ("Sends by outcome", "ops", "Every send through the sender (replies and campaigns).",
     [q(rate("sembang_sender_sends_total", "outcome"), "{{outcome}}")]),
    ("Rate used vs limit per business number", "ops",
     "Messages per second sent from each business number against its configured limit.",
     [q(rate("sembang_sender_number_sends_total", "number"), "{{number}} used"),
      q("max by (number) (sembang_sender_rate_limit_per_second)", "{{number}} limit")]),
    ("Rate-limit waits", "s", "Time a send waited for its number's rate limit.",
     [q(p50("sembang_sender_rate_limit_wait_seconds"), "p50"),
      q(p95("sembang_sender_rate_limit_wait_seconds"), "p95")]),
    ("Provider errors by code", "ops", "WhatsApp Cloud API error codes (see FACTS.md: 131049, 131026, 130429...).",
     [q(zero_when_none(rate("sembang_provider_errors_total", "code")), "{{code}}")]),
    ("Campaign sends by outcome", "ops", "Campaign recipients finished by the campaign sender.",
     [q(rate("sembang_campaign_sends_total", "outcome"), "{{outcome}}")]),
    ("Campaign send queue", "short", "Campaign sends taken and not finished.",
     [q("sum(sembang_campaign_send_queue)", "queued")]),
    ("Messaging limit room", "short",
     "New customers business-initiated messages may still reach in the moving 24 h (the portfolio's limit); sends past it wait.",
     [q("min(sembang_messaging_limit_remaining)", "room")]),
    ("Recipients planned by outcome", "ops", "Queued, or skipped with the reason.",
     [q(rate("sembang_campaign_recipients_planned_total", "outcome"), "{{outcome}}")]),
    ("Planning latency", "s", "Time to plan one partition's recipients.",
     [q(p95("sembang_campaign_plan_seconds"), "p95")]),
    ("Tracking link clicks", "ops", "Redirected, forged or dropped clicks.",
     [q(rate("sembang_campaign_clicks_total", "outcome"), "{{outcome}}")]),
    ("Segment query latency", "s", "Segment counts and member pages answered from the index.",
     [q(p95("sembang_segment_query_seconds"), "p95")]),
]

OCR = [
    ("OCR latency by kind", "s", "Time to read one image.",
     [q(p50("sembang_ocr_seconds", "kind"), "p50 {{kind}}"),
      q(p95("sembang_ocr_seconds", "kind"), "p95 {{kind}}")]),
    ("OCR queue depth and jobs in flight", "short", "Images waiting for a worker, and being read.",
     [q("sum(sembang_ocr_queue_depth)", "queued"), q("sum(sembang_ocr_jobs_in_flight)", "in flight")]),
    ("OCR outcomes", "ops", "Jobs by kind and status.",
     [q(rate("sembang_ocr_outcomes_total", "kind, status"), "{{kind}} {{status}}")]),
    # Not a latency: exported as a summary (quantiles over the process's recent readings).
    ("OCR confidence", "short", "Mean Tesseract word confidence of a reading (0-100).",
     [q("sum(rate(sembang_ocr_confidence_sum[$__rate_interval])) / sum(rate(sembang_ocr_confidence_count[$__rate_interval]))", "mean"),
      q('min(sembang_ocr_confidence{quantile="0.5"})', "median (lowest process)")]),
    ("OCR back-pressure", "short", "Partitions paused because the workers are full.",
     [q("sum by (group) (sembang_ocr_partitions_paused)", "paused {{group}}"),
      q(zero_when_none(rate("sembang_ocr_pauses_total", "group")), "pauses/s {{group}}")]),
    ("Photos uploaded through the admin API", "ops", "Queued for OCR.",
     [q(zero_when_none(rate("sembang_media_uploads_total")), "uploads/s")]),
]

# ClickHouse panels: (title, panel type, format, description, SQL)
BUSINESS = [
    ("Revenue per day (MYR)", "timeseries", "time_series",
     "Counted purchases only; each purchase once, at its latest version (FINAL).",
     "SELECT toDateTime(day) AS time, sum(revenue) AS revenue\n"
     "FROM ${database}.daily_revenue\n"
     "WHERE day >= toDate($__fromTime) AND day <= toDate($__toTime)\n"
     "GROUP BY time ORDER BY time"),
    ("Purchases and buyers per day", "timeseries", "time_series",
     "Counted purchases and distinct buyers.",
     "SELECT toDateTime(day) AS time, sum(purchases) AS purchases, sum(buyers) AS buyers\n"
     "FROM ${database}.daily_revenue\n"
     "WHERE day >= toDate($__fromTime) AND day <= toDate($__toTime)\n"
     "GROUP BY time ORDER BY time"),
    ("Revenue by merchant", "barchart", "table",
     "Counted purchases in the range, by the merchant read from the receipt.",
     "SELECT merchant, sum(total) AS revenue\n"
     "FROM ${database}.revenue_by_purchase FINAL\n"
     "WHERE status = 'counted' AND day >= toDate($__fromTime) AND day <= toDate($__toTime)\n"
     "GROUP BY merchant ORDER BY revenue DESC LIMIT 20"),
    ("Registrations per day", "timeseries", "time_series",
     "Contacts registered by MyKad on the day (their first 'registered' snapshot: replays collapse).",
     "SELECT toDateTime(day) AS time, count() AS registrations\n"
     "FROM (\n"
     "  SELECT contact_phone, toDate(min(occurred_at), 'Asia/Kuala_Lumpur') AS day\n"
     "  FROM ${database}.contact_snapshots WHERE reason = 'registered' GROUP BY contact_phone\n"
     ")\n"
     "WHERE day >= toDate($__fromTime) AND day <= toDate($__toTime)\n"
     "GROUP BY time ORDER BY time"),
    ("Customers by tier (now)", "piechart", "table",
     "Each contact's latest snapshot (argMax over time).",
     "SELECT tier, count() AS customers\n"
     "FROM (\n"
     "  SELECT contact_phone, argMax(tier, occurred_at) AS tier\n"
     "  FROM ${database}.contact_snapshots GROUP BY contact_phone\n"
     ")\n"
     "GROUP BY tier ORDER BY customers DESC"),
    ("Customers by age band and gender (now)", "barchart", "table",
     "Each contact's latest snapshot; age bands as in the demographics view.",
     "SELECT age_band, countIf(gender = 'male') AS male, countIf(gender = 'female') AS female\n"
     "FROM (\n"
     "  SELECT contact_phone, argMax(gender, occurred_at) AS gender,\n"
     "         multiIf(isNull(argMax(age, occurred_at)), 'unknown',\n"
     "                 ifNull(argMax(age, occurred_at), 0) < 25, 'under 25',\n"
     "                 ifNull(argMax(age, occurred_at), 0) < 35, '25-34',\n"
     "                 ifNull(argMax(age, occurred_at), 0) < 45, '35-44',\n"
     "                 ifNull(argMax(age, occurred_at), 0) < 55, '45-54', '55+') AS age_band\n"
     "  FROM ${database}.contact_snapshots GROUP BY contact_phone\n"
     ")\n"
     "GROUP BY age_band ORDER BY age_band"),
    ("Campaign funnel", "table", "table",
     "Distinct contacts per campaign and stage in the range (sent, delivered, read, replied, converted...).",
     "SELECT campaign_id, stage, sum(contacts) AS contacts\n"
     "FROM ${database}.campaign_funnel\n"
     "WHERE day >= toDate($__fromTime) AND day <= toDate($__toTime)\n"
     "GROUP BY campaign_id, stage ORDER BY campaign_id, contacts DESC"),
    ("Attributed revenue by campaign (MYR)", "barchart", "table",
     "Conversions attributed to a campaign (at most one per recipient) and their purchase amounts.",
     "SELECT campaign_id, sum(revenue) AS revenue, uniqExact(contact_phone) AS converted\n"
     "FROM ${database}.campaign_steps FINAL\n"
     "WHERE outcome = 'converted'\n"
     "  AND toDate(occurred_at, 'Asia/Kuala_Lumpur') >= toDate($__fromTime)\n"
     "  AND toDate(occurred_at, 'Asia/Kuala_Lumpur') <= toDate($__toTime)\n"
     "GROUP BY campaign_id ORDER BY revenue DESC LIMIT 20"),
]


def datasource_variable(name, plugin, label):
    return {"name": name, "label": label, "type": "datasource", "query": plugin,
            "current": {}, "hide": 0, "refresh": 1, "options": []}


def prometheus_dashboard(uid, title, description, panels):
    built = []
    for i, (panel_title, unit, text, queries) in enumerate(panels):
        built.append({
            "id": i + 1,
            "type": "timeseries",
            "title": panel_title,
            "description": text,
            "datasource": PROM,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
            "targets": [
                {"datasource": PROM, "refId": chr(ord("A") + j), **query}
                for j, query in enumerate(queries)
            ],
        })
    return dashboard(uid, title, description, built,
                     [datasource_variable("prometheus", "prometheus", "Prometheus")])


def clickhouse_dashboard(uid, title, description, panels):
    built = []
    for i, (panel_title, kind, fmt, text, sql) in enumerate(panels):
        built.append({
            "id": i + 1,
            "type": kind,
            "title": panel_title,
            "description": text,
            "datasource": CLICKHOUSE,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "targets": [{"datasource": CLICKHOUSE, "refId": "A", "editorType": "sql",
                         "format": 1 if fmt == "table" else 0, "queryType": fmt, "rawSql": sql}],
        })
    variables = [
        datasource_variable("clickhouse", "grafana-clickhouse-datasource", "ClickHouse"),
        {"name": "database", "label": "Database", "type": "constant", "query": "sembang",
         "current": {"text": "sembang", "value": "sembang"}, "hide": 2},
    ]
    return dashboard(uid, title, description, built, variables, time_from="now-30d")


def dashboard(uid, title, description, panels, variables, time_from="now-1h"):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["sembang"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "panels": panels,
    }


DASHBOARDS = {
    "sembang-engine.json": prometheus_dashboard(
        "sembang-engine", "Sembang / Engine",
        "Ingest, contact shards, consumer lag, dead letters, restarts and the analytics sink.", ENGINE),
    "sembang-campaigns.json": prometheus_dashboard(
        "sembang-campaigns", "Sembang / Campaigns and senders",
        "Sends by status, rate used against each number's limit, waits, provider errors, planning.", CAMPAIGNS),
    "sembang-ocr.json": prometheus_dashboard(
        "sembang-ocr", "Sembang / OCR",
        "Latency, queue depth, outcomes and confidence of card and receipt readings.", OCR),
    "sembang-business.json": clickhouse_dashboard(
        "sembang-business", "Sembang / Business (ClickHouse)",
        "Revenue, registrations, tiers, demographics and campaign funnels, from the analytics tables.", BUSINESS),
}


def main():
    check = "--check" in sys.argv[1:]
    OUT.mkdir(exist_ok=True)
    stale = []
    for name, board in DASHBOARDS.items():
        text = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
        path = OUT / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        sys.exit(f"stale dashboards (run deploy/grafana/generate.py): {', '.join(stale)}")


if __name__ == "__main__":
    main()
