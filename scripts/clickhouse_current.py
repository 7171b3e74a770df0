"""The analysts' SQL on a current ClickHouse: run by scripts/clickhouse-current in a venv
with chdb (ClickHouse's engine embedded in Python), no server needed.

The local stack runs ClickHouse 18.16, where tests/observability.rs runs every query of
docs/analytics.md and every ClickHouse panel of the business dashboard. This runs the same
queries, the same way, on the ClickHouse release chdb embeds: the database `sembang` with
every migration of schemas/clickhouse applied as `sembang migrate` applies them, a few rows
per event table (a replayed event included), then each query. Fails, naming the query and
ClickHouse's error, when one is refused or finds no rows.
Usage: python scripts/clickhouse_current.py [http://server:8123]
With a server's URL, the same checks run there instead, in a database of their own that is
dropped after: `... http://127.0.0.1:8123` tries an edit on the local stack's 18.16 too.
"""

import datetime
import decimal
import json
import os
import pathlib
import sys
import tempfile
import urllib.error
import urllib.request


ROOT = pathlib.Path(__file__).resolve().parent.parent
DATABASE = "sembang"


def say(message):
    print(f"clickhouse-current: {message}", flush=True)


def migration_statements(text):
    """As src/storage/migrate.rs (Migration::statements): `--` lines removed, `${DATABASE}`
    replaced, split on `;` at line ends."""
    kept = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    kept = kept.replace("${DATABASE}", DATABASE)
    statements = []
    for chunk in kept.split(";\n"):
        chunk = chunk.strip()
        if chunk.endswith(";"):
            chunk = chunk[:-1].strip()
        if chunk:
            statements.append(chunk)
    return statements


def doc_queries():
    """As tests/observability.rs: every ```sql block of docs/analytics.md, as written (on
    the checker's database)."""
    doc = (ROOT / "docs/analytics.md").read_text()
    queries = []
    for n, rest in enumerate(doc.split("```sql\n")[1:], start=1):
        query = rest.split("```")[0].replace("sembang.", f"{DATABASE}.")
        first = next(line for line in query.splitlines() if line.strip())
        queries.append((f"docs/analytics.md query {n} ({first.strip()[:60]})", query))
    return queries


def panel_queries(start, end):
    """Every ClickHouse panel's rawSql of the business dashboard, with what Grafana's
    ClickHouse data source sends for its macros (as tests/observability.rs substitutes)."""
    path = "deploy/grafana/dashboards/sembang-business.json"
    board = json.loads((ROOT / path).read_text())
    queries = []

    def walk(panels):
        for panel in panels:
            walk(panel.get("panels", []))  # panels folded into a row
            for target in panel.get("targets", []):
                sql = target.get("rawSql")
                if sql is None:
                    continue
                sql = (
                    sql.replace("${database}", DATABASE)
                    .replace("$database", DATABASE)
                    .replace("$__fromTime", f"toDateTime({start})")
                    .replace("$__toTime", f"toDateTime({end})")
                )
                name = f"{path} panel \"{panel.get('title')}\" ({target.get('refId')})"
                if "$" in sql:
                    fail(name, sql, "a Grafana macro or variable this checker does not substitute")
                queries.append((name, sql))

    walk(board.get("panels", []))
    return queries


def fail(name, sql, error):
    print(f"clickhouse-current: FAILED {name}\n{sql.strip()}\n-> {error}", file=sys.stderr)
    sys.exit(1)


def literal(value):
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def main():
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)

    def at(days=0, hours=0, minutes=0):
        moment = now - datetime.timedelta(days=days, hours=hours, minutes=minutes)
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def date(days=0):
        return (now - datetime.timedelta(days=days)).strftime("%Y-%m-%d")

    D = decimal.Decimal
    # Pseudonymous phones (keyed, as the engine writes them), three customers.
    siti, ahmad, mei = "ps_5f3a9c1e0b7d", "ps_a81c44e2d9f0", "ps_0d7b2e6c31aa"
    biz = "60312345678"
    rows = {
        "inbound_messages": (
            "event_id, occurred_at, contact_phone, business_number, wamid, message_type, text,"
            " context_wamid, campaign_id",
            [
                ("e-in-1", at(3), siti, biz, "wamid.in1", "text", "Hai, nak daftar", "", ""),
                ("e-in-2", at(3, minutes=-2), siti, biz, "wamid.in2", "image", "", "", ""),
                ("e-in-3", at(1), ahmad, biz, "wamid.in3", "button", "Ya, berminat", "wamid.out3", "raya-2024"),
                # A replay after a crash: the same event written twice.
                ("e-in-3", at(1), ahmad, biz, "wamid.in3", "button", "Ya, berminat", "wamid.out3", "raya-2024"),
                ("e-in-4", at(0, hours=2), mei, biz, "wamid.in4", "interactive", "", "", ""),
            ],
        ),
        "outbound_messages": (
            "event_id, occurred_at, contact_phone, business_number, wamid, message_type,"
            " template_name, body, campaign_id, origin",
            [
                ("e-out-1", at(3, minutes=-1), siti, biz, "wamid.out1", "text", "", "Terima kasih! Sila hantar gambar MyKad.", "", "auto_reply"),
                ("e-out-2", at(3, minutes=-3), siti, biz, "wamid.out2", "text", "", "Pendaftaran berjaya.", "", "ocr"),
                ("e-out-3", at(2), ahmad, biz, "wamid.out3", "template", "raya_promo", "", "raya-2024", "campaign"),
                ("e-out-4", at(2), mei, biz, "wamid.out4", "template", "raya_promo", "", "raya-2024", "campaign"),
            ],
        ),
        "message_statuses": (
            "event_id, occurred_at, contact_phone, business_number, wamid, status, campaign_id,"
            " error_code, error_title",
            [
                ("e-st-1", at(2), ahmad, biz, "wamid.out3", "sent", "raya-2024", None, ""),
                ("e-st-2", at(2, minutes=-1), ahmad, biz, "wamid.out3", "delivered", "raya-2024", None, ""),
                ("e-st-3", at(1, hours=1), ahmad, biz, "wamid.out3", "read", "raya-2024", None, ""),
                ("e-st-4", at(2), mei, biz, "wamid.out4", "failed", "raya-2024", 131026, "Message undeliverable"),
                ("e-st-5", at(3, minutes=-1), siti, biz, "wamid.out1", "delivered", "", None, ""),
            ],
        ),
        "purchases": (
            "event_id, occurred_at, contact_phone, business_number, purchase_id, purchase_date,"
            " merchant, receipt_no, total, item_count, status, ocr_confidence, campaign_id",
            [
                ("e-pu-1", at(1), ahmad, biz, "pur-1", date(1), "AEON Mid Valley", "R-10293", D("120.50"), 4, "counted", 88.5, "raya-2024"),
                ("e-pu-1", at(1), ahmad, biz, "pur-1", date(1), "AEON Mid Valley", "R-10293", D("120.50"), 4, "counted", 88.5, "raya-2024"),
                # Held for review, then approved: the later event wins.
                ("e-pu-2", at(2), siti, biz, "pur-2", date(2), "Mydin USJ", "M-5521", D("45.90"), 2, "pending_review", 52.0, ""),
                ("e-pu-3", at(1, hours=3), siti, biz, "pur-2", date(2), "Mydin USJ", "M-5521", D("45.90"), 2, "counted", None, ""),
                ("e-pu-4", at(0, hours=1), mei, biz, "pur-3", date(0), "Lotus's Kepong", "L-0042", D("15.00"), 1, "rejected", 31.0, ""),
            ],
        ),
        "ocr_results": (
            "event_id, occurred_at, contact_phone, media_id, kind, status, confidence,"
            " duration_ms, fields_json, error",
            [
                ("e-oc-1", at(3, minutes=-2), siti, "media-1", "ic", "parsed", 91.5, 640, '{"ic":"900101-**-**62"}', ""),
                ("e-oc-2", at(1), ahmad, "media-2", "receipt", "parsed", 88.5, 1210, '{"total":"120.50"}', ""),
                ("e-oc-3", at(0, hours=1), mei, "media-3", "receipt", "rejected", 31.0, 1530, "{}", "no total found"),
                ("e-oc-4", at(0, hours=1), mei, "media-4", "unknown", "failed", 0.0, 95, "", "unsupported image"),
            ],
        ),
        "contact_snapshots": (
            "event_id, occurred_at, contact_phone, gender, age, state, marital_status, tier,"
            " total_spent, purchase_count, whatsapp_status, marketing_opt_in, ic_masked, reason",
            [
                ("e-cs-1", at(3), siti, "", None, "", "", "Bronze", D("0.00"), 0, "active", 0, "", "created"),
                ("e-cs-2", at(3, minutes=-3), siti, "female", 34, "Selangor", "married", "Bronze", D("0.00"), 0, "active", 1, "900101-**-**62", "registered"),
                ("e-cs-3", at(1, hours=3), siti, "female", 34, "Selangor", "married", "Bronze", D("45.90"), 1, "active", 1, "900101-**-**62", "purchase"),
                ("e-cs-4", at(20), ahmad, "male", 52, "Johor", "single", "Silver", D("2380.00"), 14, "active", 1, "720315-**-**07", "registered"),
                ("e-cs-5", at(1), ahmad, "male", 52, "Johor", "single", "Gold", D("2500.50"), 15, "active", 1, "720315-**-**07", "purchase"),
                ("e-cs-5", at(1), ahmad, "male", 52, "Johor", "single", "Gold", D("2500.50"), 15, "active", 1, "720315-**-**07", "purchase"),
                ("e-cs-6", at(0, hours=2), mei, "", None, "", "", "Bronze", D("0.00"), 0, "active", 0, "", "created"),
            ],
        ),
        "campaign_sends": (
            "event_id, occurred_at, campaign_id, contact_phone, business_number, outcome,"
            " template_name, wamid, skip_reason, error_code",
            [
                ("e-cse-1", at(2), "raya-2024", ahmad, biz, "sent", "raya_promo", "wamid.out3", "", None),
                ("e-cse-2", at(2), "raya-2024", mei, biz, "sent", "raya_promo", "wamid.out4", "", None),
                ("e-cse-3", at(2), "raya-2024", siti, biz, "skipped", "raya_promo", "", "no_marketing_opt_in", None),
            ],
        ),
        "campaign_steps": (
            "event_id, occurred_at, campaign_id, contact_phone, business_number, outcome,"
            " template_name, wamid, skip_reason, error_code, revenue",
            [
                ("e-cst-1", at(2, minutes=5), "raya-2024", ahmad, biz, "queued", "raya_promo", "", "", None, D("0")),
                ("e-cst-2", at(2), "raya-2024", ahmad, biz, "sent", "raya_promo", "wamid.out3", "", None, D("0")),
                ("e-cst-3", at(1, hours=1), "raya-2024", ahmad, biz, "clicked", "raya_promo", "wamid.out3", "", None, D("0")),
                ("e-cst-4", at(1), "raya-2024", ahmad, biz, "converted", "raya_promo", "wamid.out3", "", None, D("120.50")),
                ("e-cst-4", at(1), "raya-2024", ahmad, biz, "converted", "raya_promo", "wamid.out3", "", None, D("120.50")),
                ("e-cst-5", at(2), "raya-2024", mei, biz, "failed", "raya_promo", "wamid.out4", "", 131026, D("0")),
            ],
        ),
        "personal_data_access": (
            "event_id, occurred_at, key_id, role, method, route, query, contact_phone, status",
            [
                ("e-pda-1", at(1), "key-0123456789ab", "viewer", "GET", "/api/contacts/{phone}/", "", siti, 200),
                ("e-pda-1", at(1), "key-0123456789ab", "viewer", "GET", "/api/contacts/{phone}/", "", siti, 200),
                ("e-pda-2", at(0, hours=4), "key-ba9876543210", "analyst", "GET", "/api/contacts/", "q=siti&ic=900101-**-****", "", 200),
                ("e-pda-3", at(0, hours=3), "key-ba9876543210", "analyst", "DELETE", "/api/contacts/{phone}/", "", mei, 403),
            ],
        ),
    }

    with tempfile.TemporaryDirectory(prefix="sembang-chdb-") as path:
        if len(sys.argv) > 1:
            # The same checks on a ClickHouse server over HTTP, in a database of its own
            # (dropped after), e.g. the local stack's 18.16 when an edit must suit both.
            global DATABASE
            DATABASE = f"clickhouse_current_{os.getpid()}"
            run, engine, close = http_runner(sys.argv[1].rstrip("/") + "/")
            close_too = lambda: run("drop database", f"DROP DATABASE IF EXISTS {DATABASE}")
        else:
            run, engine, close = chdb_runner(path)
            close_too = lambda: None
        try:
            check(run, engine, rows, now)
        finally:
            close_too()
            close()


def chdb_runner(path):
    """Queries in a chdb session on `path` (persistent while the checker runs)."""
    import chdb
    from chdb import session

    sess = session.Session(path)

    def run(name, sql):
        try:
            result = sess.query(sql, "JSON")
        except Exception as error:  # chdb raises on any error of the engine
            fail(name, sql, str(error).strip())
        error = getattr(result, "error_message", lambda: "")()
        if error:
            fail(name, sql, error.strip())
        text = result.bytes().decode()
        return json.loads(text)["data"] if text.strip() else []

    return run, f"chdb {chdb.__version__}", sess.close


def http_runner(url):
    """Queries over ClickHouse's HTTP interface (JSON for every statement returning rows)."""

    def run(name, sql):
        request = urllib.request.Request(url + "?default_format=JSON", data=sql.encode())
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                text = answer.read().decode()
        except urllib.error.HTTPError as error:
            fail(name, sql, error.read().decode().strip())
        except OSError as error:
            fail(name, sql, f"{url}: {error}")
        return json.loads(text)["data"] if text.strip() else []

    return run, url, lambda: None


def check(run, engine, rows, now):
    version = run("version", "SELECT version() AS v")[0]["v"]
    say(f"{engine}, ClickHouse {version}")

    # As `sembang migrate` (src/storage/sink/clickhouse/migrations.rs): the database, its
    # schema_migrations, then each file's statements in order, each file recorded.
    run("create database", f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    run(
        "create schema_migrations",
        f"CREATE TABLE IF NOT EXISTS {DATABASE}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime('UTC')) "
        "ENGINE = MergeTree() ORDER BY version",
    )
    migrations = sorted((ROOT / "schemas/clickhouse").glob("*.sql"))
    statements = 0
    for file in migrations:
        number, _, name = file.stem.partition("_")
        for n, statement in enumerate(migration_statements(file.read_text()), start=1):
            run(f"schemas/clickhouse/{file.name} statement {n}", statement)
            statements += 1
        run(
            f"record {file.name}",
            f"INSERT INTO {DATABASE}.schema_migrations (version, name, applied_at) "
            f"SELECT toUInt32({int(number)}), '{name}', now()",
        )
    say(f"{len(migrations)} migrations applied ({statements} statements)")

    for table, (columns, values) in rows.items():
        tuples = ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in values)
        run(f"insert into {table}", f"INSERT INTO {DATABASE}.{table} ({columns}) VALUES {tuples}")
    # Every table and plain view has rows: the materialized views fed their targets.
    tables = run(
        "list tables",
        f"SELECT name FROM system.tables WHERE database = '{DATABASE}' "
        "AND engine != 'MaterializedView' ORDER BY name",
    )
    for table in (row["name"] for row in tables):
        sql = f"SELECT count() AS n FROM {DATABASE}.{table}"
        if int(run(f"count {table}", sql)[0]["n"]) == 0:
            fail(f"table {table}", sql, "no rows after the inserts")

    start = int(now.timestamp()) - 7 * 86400
    end = int(now.timestamp()) + 86400
    docs, panels = doc_queries(), panel_queries(start, end)
    if not docs or not panels:
        fail("extraction", "", f"{len(docs)} doc queries, {len(panels)} panel queries found")
    non_empty = 0
    for name, sql in docs + panels:
        data = run(name, sql)
        if not data:
            fail(name, sql, "no rows (the inserted rows should reach every query)")
        non_empty += 1
        # Replays collapse on this version too (as tests/observability.rs checks on 18.16).
        if "attributed_revenue" in sql:
            row = data[0]
            if (float(row["converted"]), float(row["attributed_revenue"])) != (1.0, 120.5):
                fail(name, sql, f"a replayed conversion counted twice: {row}")
    say(
        f"{len(docs) + len(panels)} queries ran on ClickHouse {version} "
        f"({len(docs)} of docs/analytics.md, {len(panels)} dashboard panels), "
        f"{non_empty} returned rows"
    )


if __name__ == "__main__":
    main()
