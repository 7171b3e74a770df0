//! The operators' view, checked against real software: the alert rules pass `promtool`
//! (syntax and their unit tests), a real Prometheus scrapes a running engine under a small
//! load and every dashboard and alert query returns series from it, every metric they name is
//! in the catalogue, and every ClickHouse panel of the business dashboard runs on the real
//! ClickHouse over rows shaped like the engine's.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use regex::Regex;
use reqwest::Method;
use serde_json::{json, Value};

use sembang::config::{Config, Role};
use sembang::metrics::catalog::{self, Kind};
use sembang::provider::fake_cloud_api::FakeFailure;
use sembang::storage::bus::Record;
use sembang::topics;

use support::engine::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A Prometheus tool on PATH, or `None` (with a note) when it is not installed and the real
/// stack is not required; scripts/test installs it (Debian's `prometheus`).
fn prometheus_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    match found {
        Some(path) => Some(path),
        None if std::env::var("SEMBANG_TEST_REQUIRE_STACK").is_ok() => {
            panic!("{name} is not installed but SEMBANG_TEST_REQUIRE_STACK is set (scripts/install-deps installs it)")
        }
        None => {
            eprintln!("skipping: {name} is not installed (apt install prometheus)");
            None
        }
    }
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

// ---- what the dashboards and rules ask ---------------------------------------------------

/// Every Prometheus query of every dashboard: (dashboard, panel, expression).
fn dashboard_queries() -> Vec<(String, String, String)> {
    let mut queries = Vec::new();
    for (file, board) in dashboards() {
        for panel in board["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                if let Some(expr) = target["expr"].as_str() {
                    queries.push((
                        file.clone(),
                        panel["title"].as_str().unwrap().to_string(),
                        expr.to_string(),
                    ));
                }
            }
        }
    }
    queries
}

/// Every ClickHouse query of every dashboard: (panel, SQL).
fn clickhouse_panels() -> Vec<(String, String)> {
    let mut panels = Vec::new();
    for (_, board) in dashboards() {
        for panel in board["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                if let Some(sql) = target["rawSql"].as_str() {
                    panels.push((panel["title"].as_str().unwrap().to_string(), sql.into()));
                }
            }
        }
    }
    panels
}

fn dashboards() -> Vec<(String, Value)> {
    let mut boards: Vec<(String, Value)> = std::fs::read_dir(repo("deploy/grafana/dashboards"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let board = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, board)
        })
        .collect();
    boards.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(boards.len() >= 4, "the four dashboards are there");
    boards
}

/// Every alert's name and expression. The rules file's own layout (`- alert:`, then
/// `expr:` on one line or as a `|` block) is read by hand: the test needs no YAML crate
/// for a file that promtool parses for real in the test beside this one.
fn alert_rules() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("deploy/prometheus/alerts.yml")).unwrap();
    let mut rules = Vec::new();
    let mut lines = text.lines().peekable();
    let mut alert = None;
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            alert = Some(name.trim().to_string());
        } else if let Some(expr) = trimmed.strip_prefix("expr:") {
            let indent = line.len() - trimmed.len();
            let expr = if expr.trim() == "|" {
                let mut block = Vec::new();
                while let Some(next) = lines.peek() {
                    let next_indent = next.len() - next.trim_start().len();
                    if next.trim().is_empty() || next_indent <= indent {
                        break;
                    }
                    block.push(next.trim().to_string());
                    lines.next();
                }
                block.join(" ")
            } else {
                expr.trim().to_string()
            };
            rules.push((alert.take().expect("expr after its alert"), expr));
        }
    }
    assert!(rules.len() >= 8, "{rules:?}");
    rules
}

/// Grafana's variables, as a dashboard would send them.
fn as_grafana_sends(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
}

/// The metric names an expression reads, histogram series mapped to their metric.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let name = Regex::new(r"\b(sembang_[a-z0-9_]+)").unwrap();
    name.captures_iter(expr)
        .map(|c| {
            let found = &c[1];
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| found.strip_suffix(suffix))
                .filter(|base| {
                    catalog::ALL
                        .iter()
                        .any(|m| m.name == *base && m.kind == Kind::Histogram)
                })
                .unwrap_or(found)
                .to_string()
        })
        .collect()
}

/// The vector selectors of an expression (`name{matchers}`), each queried on its own: an
/// alert's whole expression is empty while it does not fire, its inputs are not.
fn selectors(expr: &str) -> Vec<String> {
    let selector = Regex::new(r#"\b((?:sembang_[a-z0-9_]+|up)(?:\{[^}]*\})?)"#).unwrap();
    selector
        .captures_iter(expr)
        .map(|c| c[1].to_string())
        .collect()
}

// ---- static checks -----------------------------------------------------------------------

#[test]
fn every_metric_the_dashboards_and_alerts_name_is_in_the_catalogue() {
    let known: BTreeSet<&str> = catalog::ALL.iter().map(|m| m.name).collect();
    let mut unknown = Vec::new();
    let named = dashboard_queries()
        .into_iter()
        .map(|(file, panel, expr)| (format!("{file} / {panel}"), expr))
        .chain(alert_rules());
    for (place, expr) in named {
        for name in metric_names(&expr) {
            if !known.contains(name.as_str()) {
                unknown.push(format!("{place}: {name}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "not in the catalogue:\n{}",
        unknown.join("\n")
    );
    // The check itself sees a typo.
    assert_eq!(
        metric_names("rate(sembang_dlq_totl[5m])"),
        BTreeSet::from(["sembang_dlq_totl".to_string()])
    );
}

#[test]
fn the_dashboards_are_what_their_generator_writes() {
    run(Command::new("python3")
        .arg(repo("deploy/grafana/generate.py"))
        .arg("--check"));
}

#[test]
fn promtool_accepts_the_alert_rules_and_their_unit_tests_pass() {
    let Some(promtool) = prometheus_tool("promtool") else {
        return;
    };
    let checked = run(Command::new(&promtool)
        .args(["check", "rules"])
        .arg(repo("deploy/prometheus/alerts.yml")));
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = run(Command::new(&promtool)
        .args(["test", "rules"])
        .arg(repo("deploy/prometheus/alerts.test.yml")));
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert has its runbook section.
    let runbook = std::fs::read_to_string(repo("deploy/prometheus/RUNBOOK.md")).unwrap();
    for (alert, _) in alert_rules() {
        assert!(
            runbook.contains(&format!("## {alert}\n")),
            "{alert} has no runbook section"
        );
    }
}

// ---- a real Prometheus over a running engine ---------------------------------------------

struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts a Prometheus that scrapes `target` (host:port) every second, with the alert
    /// rules loaded as a deployment would.
    async fn start(binary: &Path, target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: sembang\n    static_configs:\n      - targets: ['{target}']\n",
                repo("deploy/prometheus/alerts.yml").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let prometheus = Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http
                .get(format!("{}/-/ready", prometheus.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus did not start:\n{}",
                prometheus.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query: Err(the error) when Prometheus refuses it, else the series.
    async fn query(&self, http: &reqwest::Client, expr: &str) -> Result<Vec<Value>, String> {
        let answer: Value = http
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", expr)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if answer["status"] != "success" {
            return Err(answer.to_string());
        }
        Ok(answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tune(config: &mut Config) {
    config.engine.roles.push(Role::Ocr);
    config.whatsapp.phone_number_id = "106540352242922".into();
    // One shard holding two contacts: evictions happen under this small load.
    config.engine.shards = 1;
    config.engine.max_resident_contacts = 2;
    config.campaigns.quiet_hours_start = "00:00".into();
    config.campaigns.quiet_hours_end = "00:00".into();
    // A limit the scenario stays far below: the room gauge is exposed.
    config.campaigns.messaging_limit_24h = 10_000;
    config.campaigns.pair_interval_ms = 0;
    config.campaigns.clock_tick_ms = 200;
    config.campaigns.link_base_url = "https://t.example.my".into();
}

/// What an operator's first hour looks like, small: customers writing and opting in, replies
/// (one refused for rate, one to a dead number), a poison record, a photo read by OCR, a
/// segment and a campaign sent to it, a forged tracking link.
async fn small_load(h: &Harness) {
    let Replies::Fake(fake) = &h.replies else {
        panic!("the harness sends through the fake Cloud API");
    };
    let t = chrono::Utc::now().timestamp();
    fake.fail_next(
        1,
        FakeFailure::Code {
            http_status: 429,
            code: 130_429,
        },
    );
    fake.fail_recipient(
        "60145550199",
        FakeFailure::Code {
            http_status: 400,
            code: 131_026,
        },
    );
    let customers = ["60123456789", "60129876543", "60135550123", "60145550199"];
    for (i, phone) in customers.iter().enumerate() {
        h.post(&text(phone, &format!("wamid.OBS-{i}-a"), t - 60, "START"))
            .await;
        h.post(&text(phone, &format!("wamid.OBS-{i}-b"), t - 50, "help"))
            .await;
    }
    h.bus
        .producer()
        .send(Record::new(
            h.names.name(topics::INBOUND),
            customers[0].as_bytes().to_vec(),
            b"{not an event".to_vec(),
        ))
        .await
        .unwrap();
    let photo = std::fs::read(repo("tests/fixtures/ocr/card-0001.jpg")).unwrap();
    let uploaded = h
        .http
        .post(format!(
            "{}/api/contacts/{}/media?phone_number_id=106540352242922",
            h.base, customers[1]
        ))
        .header("content-type", "application/octet-stream")
        .body(photo)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status().as_u16(), 202);
    for phone in customers {
        h.message_count_reaches(phone, 2).await;
    }

    let segment = h.opted_in_segment(4).await;
    let (status, campaign) = h
        .api(
            Method::POST,
            "/api/campaigns/",
            Some(json!({"name": "Raya", "segments": [segment], "message_text": "Hi {{first_name|there}}: https://shop.example.my/raya"})),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"].as_str().unwrap().to_string();
    let (status, launched) = h
        .api(Method::POST, &format!("/api/campaigns/{id}/launch"), None)
        .await;
    assert_eq!(status, 200, "{launched}");
    h.campaign_where(&id, "every recipient finished", WAIT, |c| {
        c["pending"].as_u64() == Some(0) && c["sent"].as_u64().unwrap_or(0) >= 3
    })
    .await;
    let forged = h
        .http
        .get(format!("{}/r/not-a-real-token", h.base))
        .send()
        .await
        .unwrap();
    assert!(forged.status().is_client_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_dashboard_and_alert_query_returns_series_from_a_scraped_engine() {
    let Some(binary) = prometheus_tool("prometheus") else {
        return;
    };
    let h = Harness::embedded_tuned(true, |store| store, tune).await;
    small_load(&h).await;
    let target = h.admin_base.trim_start_matches("http://").to_string();
    let prometheus = Prometheus::start(&binary, &target).await;
    let http = reqwest::Client::new();

    // (where, query): dashboard queries whole; alert expressions whole (they must be
    // accepted) and each of their selectors (they must find series).
    let mut must_have_series: Vec<(String, String)> = dashboard_queries()
        .into_iter()
        .map(|(file, panel, expr)| (format!("{file} / {panel}"), as_grafana_sends(&expr)))
        .collect();
    let alerts = alert_rules();
    for (alert, expr) in &alerts {
        for selector in selectors(expr) {
            must_have_series.push((format!("alert {alert}"), selector));
        }
    }

    // Scrapes come every second; give the histograms' rates two of them.
    let deadline = Instant::now() + Duration::from_secs(90);
    let missing = loop {
        let mut missing = Vec::new();
        for (place, expr) in &must_have_series {
            match prometheus.query(&http, expr).await {
                Ok(series) if !series.is_empty() => {}
                Ok(_) => missing.push(format!("{place}: no series for {expr}")),
                Err(e) => panic!("{place}: Prometheus refused {expr}: {e}"),
            }
        }
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert!(
        missing.is_empty(),
        "queries without series:\n{}\n\nPrometheus log:\n{}",
        missing.join("\n"),
        prometheus.log()
    );
    for (alert, expr) in &alerts {
        if let Err(e) = prometheus.query(&http, expr).await {
            panic!("alert {alert}: Prometheus refused {expr}: {e}");
        }
    }
    // Prometheus loaded the same rules and evaluates them without error.
    let rules: Value = http
        .get(format!("{}/api/v1/rules", prometheus.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(loaded.len(), alerts.len(), "{rules}");
    for rule in loaded {
        assert_ne!(rule["health"], "err", "{rule}");
    }
    // Nothing is wrong with this engine: no alert is firing or pending.
    let firing = prometheus.query(&http, "ALERTS").await.unwrap();
    assert!(firing.is_empty(), "alerts on a healthy engine: {firing:?}");
    h.stop().await;
}

// ---- the business dashboard on the real ClickHouse ---------------------------------------

/// A number from ClickHouse's JSON: 64-bit integers and decimals may come quoted,
/// depending on the server's version and settings.
fn number(value: &Value) -> Option<f64> {
    value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

/// Grafana's ClickHouse data source macros and the dashboard's database variable.
fn as_clickhouse_plugin_sends(sql: &str, database: &str, from: i64, to: i64) -> String {
    sql.replace("${database}", database)
        .replace("$__fromTime", &format!("toDateTime({from})"))
        .replace("$__toTime", &format!("toDateTime({to})"))
}

#[tokio::test]
async fn every_business_panel_runs_on_the_real_clickhouse() {
    let Some(url) = support::service(support::CLICKHOUSE) else {
        return;
    };
    let database = support::unique_name("dashboards");
    let sink = sembang::storage::sink::ClickHouseSink::new(
        sembang::storage::sink::ClickHouseConfig::new(url.clone(), database.clone()),
    )
    .unwrap();
    sink.migrate().await.unwrap();
    let http = reqwest::Client::new();
    let sql = |statement: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let answer = http
                .post(&url)
                .body(statement.clone())
                .send()
                .await
                .unwrap();
            let status = answer.status();
            let text = answer.text().await.unwrap();
            assert!(status.is_success(), "{statement}\n→ {text}");
            text
        }
    };
    // Rows as the engine writes them, a replay included (the same event twice).
    let now = chrono::Utc::now();
    let today = now.format("%Y-%m-%d").to_string();
    let at = now.format("%Y-%m-%d %H:%M:%S").to_string();
    for (table, columns, rows) in [
        (
            "contact_snapshots",
            "event_id, occurred_at, contact_phone, gender, age, state, tier, ic_masked, reason",
            vec![
                format!("('s1', '{at}', 'p1', 'female', 31, 'Selangor', 'Gold', '900101-**-**62', 'registered')"),
                format!("('s1', '{at}', 'p1', 'female', 31, 'Selangor', 'Gold', '900101-**-**62', 'registered')"),
                format!("('s2', '{at}', 'p2', 'male', 52, 'Johor', 'Bronze', '', 'created')"),
            ],
        ),
        (
            "purchases",
            "event_id, occurred_at, contact_phone, purchase_id, purchase_date, merchant, total, status, campaign_id",
            vec![
                format!("('u1', '{at}', 'p1', 'r1', '{today}', 'AEON', 120.50, 'counted', 'c1')"),
                format!("('u1', '{at}', 'p1', 'r1', '{today}', 'AEON', 120.50, 'counted', 'c1')"),
                format!("('u2', '{at}', 'p2', 'r2', '{today}', 'Mydin', 30.00, 'pending_review', '')"),
            ],
        ),
        (
            "campaign_sends",
            "event_id, occurred_at, campaign_id, contact_phone, outcome",
            vec![
                format!("('k1', '{at}', 'c1', 'p1', 'sent')"),
                format!("('k2', '{at}', 'c1', 'p2', 'sent')"),
            ],
        ),
        (
            "ocr_results",
            "event_id, occurred_at, contact_phone, media_id, kind, status, confidence, duration_ms",
            vec![
                format!("('o1', '{at}', 'p1', 'm1', 'ic', 'parsed', 91.5, 640)"),
                format!("('o2', '{at}', 'p2', 'm2', 'receipt', 'rejected', 40.0, 1200)"),
            ],
        ),
        (
            "personal_data_access",
            "event_id, occurred_at, key_id, role, method, route, query, contact_phone, status",
            vec![
                format!("('a1', '{at}', 'key-0123456789ab', 'viewer', 'GET', '/api/contacts/{{phone}}/', '', 'p1', 200)"),
                format!("('a1', '{at}', 'key-0123456789ab', 'viewer', 'GET', '/api/contacts/{{phone}}/', '', 'p1', 200)"),
                format!("('a2', '{at}', 'key-ba9876543210', 'analyst', 'GET', '/api/contacts/', 'q=siti', '', 200)"),
            ],
        ),
        (
            "inbound_messages",
            "event_id, occurred_at, contact_phone, wamid, message_type, text",
            vec![format!("('i1', '{at}', 'p1', 'wamid.1', 'text', 'hi')")],
        ),
        (
            "campaign_steps",
            "event_id, occurred_at, campaign_id, contact_phone, outcome, revenue",
            vec![
                format!("('k3', '{at}', 'c1', 'p1', 'converted', 120.50)"),
                format!("('k3', '{at}', 'c1', 'p1', 'converted', 120.50)"),
            ],
        ),
    ] {
        sql(format!(
            "INSERT INTO {database}.{table} ({columns}) VALUES {}",
            rows.join(", ")
        ))
        .await;
    }
    let (from, to) = (now.timestamp() - 7 * 86_400, now.timestamp() + 86_400);
    let panels = clickhouse_panels();
    assert!(panels.len() >= 6, "{panels:?}");
    for (title, panel_sql) in &panels {
        let statement = as_clickhouse_plugin_sends(panel_sql, &database, from, to);
        let answer: Value =
            serde_json::from_str(&sql(format!("{statement}\nFORMAT JSON")).await).unwrap();
        let rows = answer["data"].as_array().unwrap();
        assert!(!rows.is_empty(), "{title}: no rows\n{statement}");
    }
    // Replays collapse: the revenue panel counts the repeated purchase once.
    let revenue = panels
        .iter()
        .find(|(title, _)| title.starts_with("Revenue per day"))
        .unwrap();
    let answer: Value = serde_json::from_str(
        &sql(format!(
            "{}\nFORMAT JSON",
            as_clickhouse_plugin_sends(&revenue.1, &database, from, to)
        ))
        .await,
    )
    .unwrap();
    assert_eq!(
        number(&answer["data"][0]["revenue"]),
        Some(120.5),
        "{answer}"
    );

    // docs/analytics.md: every query runs as written (on the test's database) and finds
    // the rows above.
    let doc = std::fs::read_to_string(repo("docs/analytics.md")).unwrap();
    let queries: Vec<&str> = doc
        .split("```sql\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert!(
        queries.len() >= 9,
        "{} queries in docs/analytics.md",
        queries.len()
    );
    for query in queries {
        let statement = query.replace("sembang.", &format!("{database}."));
        let answer: Value =
            serde_json::from_str(&sql(format!("{statement}\nFORMAT JSON")).await).unwrap();
        assert!(
            !answer["data"].as_array().unwrap().is_empty(),
            "docs/analytics.md: no rows from\n{statement}"
        );
        if statement.contains("attributed_revenue") {
            assert_eq!(
                number(&answer["data"][0]["converted"]),
                Some(1.0),
                "{answer}"
            );
            assert_eq!(
                number(&answer["data"][0]["attributed_revenue"]),
                Some(120.5),
                "a replayed conversion counts once: {answer}"
            );
        }
    }
    sql(format!("DROP DATABASE IF EXISTS {database}")).await;
}
