//! The `sembang` binary as a user runs it: output shapes and exit statuses.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn sembang(args: &[&str]) -> Output {
    sembang_with_stdin(args, None)
}

fn sembang_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sembang"))
        .args(args)
        .env_remove("SEMBANG_CONFIG")
        .env_remove("SEMBANG_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sembang binary runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[test]
fn ic_parse_json_for_a_valid_number() {
    let output = sembang(&[
        "ic",
        "parse",
        "900101-14-5678",
        "--on",
        "2025-11-25",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let json = json_of(&output);
    assert_eq!(json["valid"], true);
    assert_eq!(json["normalized"], "900101-14-5678");
    assert_eq!(json["masked"], "900101-**-****");
    assert_eq!(json["birth_date"], "1990-01-01");
    assert_eq!(json["age"], 35);
    assert_eq!(json["gender"], "female");
    assert_eq!(json["place_of_birth_code"], "14");
    assert_eq!(json["place_of_birth"], "WP Kuala Lumpur");
}

#[test]
fn ic_parse_json_place_without_a_name_is_null() {
    let output = sembang(&[
        "ic",
        "parse",
        "851231 82 1231",
        "--on",
        "2025-11-25",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let json = json_of(&output);
    assert_eq!(json["place_of_birth_code"], "82");
    assert_eq!(json["place_of_birth"], Value::Null);
    assert_eq!(json["gender"], "male");
    assert_eq!(json["birth_date"], "1985-12-31");
}

#[test]
fn ic_parse_json_for_invalid_numbers() {
    let cases = [
        ("900101-17-5678", "never_issued_place_of_birth"),
        ("900230-14-5678", "invalid_birth_date"),
        ("90010114567", "wrong_length"),
        ("900101-14-567A", "invalid_character"),
        ("9001-0114-5678", "misplaced_separator"),
    ];
    for (number, kind) in cases {
        let output = sembang(&["ic", "parse", number, "--on", "2025-11-25", "--json"]);
        assert_eq!(output.status.code(), Some(1), "{number}");
        let json = json_of(&output);
        assert_eq!(json["valid"], false, "{number}");
        assert_eq!(json["error"]["kind"], kind, "{number}");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(!message.is_empty());
        assert!(
            !message.contains("5678") && !message.contains("567"),
            "{message}"
        );
        assert!(json.get("normalized").is_none());
    }
}

#[test]
fn ic_parse_defaults_to_today() {
    let output = sembang(&["ic", "parse", "000101-10-1234", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let json = json_of(&output);
    assert_eq!(json["birth_date"], "2000-01-01");
    // Whatever today is, someone born on 2000-01-01 is at least 26 from 2026 on.
    assert!(json["age"].as_u64().unwrap() >= 26);
}

#[test]
fn ic_parse_human_output() {
    let output = sembang(&["ic", "parse", "900101145678", "--on", "2025-11-25"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("900101-**-****"));
    assert!(text.contains("WP Kuala Lumpur"));
}

#[test]
fn bad_reference_date_is_a_usage_error() {
    let output = sembang(&["ic", "parse", "900101145678", "--on", "25/11/2025"]);
    assert_eq!(output.status.code(), Some(2));
}

/// The quick start: `sembang run` on the embedded default serves the webhook and the admin
/// API, answers a message, and stops cleanly on SIGTERM.
#[test]
fn run_serves_the_embedded_default_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sembang"))
        .arg("run")
        .env_remove("SEMBANG_CONFIG")
        .env_remove("SEMBANG_PROFILE")
        .env("SEMBANG_DATA_DIR", dir.path())
        .env("SEMBANG_HTTP_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the sembang binary runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let webhook = loop {
        let line = lines.next().expect("sembang run printed its URLs").unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if let Some(url) = line.strip_prefix("sembang: webhook    ") {
            break url.trim().to_string();
        }
    };
    assert!(seen.contains("built-in profile embedded"), "{seen}");
    let base = webhook.trim_end_matches("/webhook/whatsapp").to_string();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let body = serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": "60321611234", "phone_number_id": "106540352242922" },
                "contacts": [{ "profile": { "name": "Siti" }, "wa_id": "60123456789" }],
                "messages": [{ "from": "60123456789", "id": "wamid.CLI-1", "timestamp": "1732510800",
                               "type": "text", "text": { "body": "help" } }]
            }}]}]
        });
        let answer = http.post(&webhook).json(&body).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 200, "unsigned posts pass without an app secret");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let sent: Vec<Value> = http
                .get(format!("{base}/api/sandbox/messages/"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(reply) = sent.first() {
                assert_eq!(reply["to"], "60123456789");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no reply in the sandbox");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let contact: Value = http
            .get(format!("{base}/api/contacts/60123456789/"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(contact["message_count"], 1);
    });

    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[test]
fn config_check_rejects_bad_files_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[bus]\npartitions = 0\n").unwrap();
    let output = sembang(&["config", "check", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("bus.partitions"), "{stderr}");
}

#[test]
fn config_show_prints_the_effective_profile() {
    let output = sembang(&["config", "show", "--profile", "local"]);
    assert_eq!(output.status.code(), Some(0));
    let shown: toml::Table = toml::from_str(&String::from_utf8(output.stdout).unwrap()).unwrap();
    assert_eq!(shown["bus"]["backend"].as_str(), Some("kafka"));
}

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/receipts/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn receipt_parse_json_from_a_file() {
    let output = sembang(&[
        "receipt",
        "parse",
        &fixture("cash_rounding_up_both_totals.txt"),
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let json = json_of(&output);
    assert_eq!(json["total"], "47.50");
    assert_eq!(json["subtotal"], "44.80");
    assert_eq!(json["tax"], "2.69");
    assert_eq!(json["rounding"], "0.01");
    assert_eq!(json["date"], "2024-02-28");
    assert_eq!(json["receipt_no"], "5521");
    assert_eq!(json["items"].as_array().unwrap().len(), 4);
    assert!(json["merchant"].is_string());
    let confidence = json["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&confidence));
}

#[test]
fn receipt_parse_from_standard_input() {
    let text = std::fs::read_to_string(fixture("hawker_total_only.txt")).unwrap();
    let output = sembang_with_stdin(&["receipt", "parse", "-", "--json"], Some(&text));
    assert_eq!(output.status.code(), Some(0));
    assert!(json_of(&output)["total"].is_string());
}

#[test]
fn receipt_without_a_total_exits_1_with_null_total() {
    let output = sembang_with_stdin(
        &["receipt", "parse", "-", "--json"],
        Some("KAD PENGENALAN\nMALAYSIA\nWARGANEGARA\n"),
    );
    assert_eq!(output.status.code(), Some(1));
    let json = json_of(&output);
    assert_eq!(json["total"], Value::Null);
    assert_eq!(json["confidence"], 0.0);
}

#[test]
fn receipt_parse_of_a_missing_file_is_a_failure() {
    let output = sembang(&["receipt", "parse", "/nonexistent/receipt.txt"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/receipt.txt"));
}

mod support;

fn sembang_env(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sembang"));
    command
        .args(args)
        .env_remove("SEMBANG_CONFIG")
        .env_remove("SEMBANG_PROFILE");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the sembang binary runs")
}

#[test]
fn migrate_on_the_embedded_profile_has_nothing_to_do() {
    let output = sembang(&["migrate"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("no schema to migrate"), "{text}");
}

#[test]
fn migrate_applies_both_schemas_once_on_the_real_stack() {
    let (Some(cassandra), Some(clickhouse)) = (
        support::service(support::CASSANDRA),
        support::service(support::CLICKHOUSE),
    ) else {
        return;
    };
    let name = support::unique_name("cli_migrate");
    let env = [
        ("SEMBANG_STORE_SCYLLA_NODES", cassandra),
        ("SEMBANG_STORE_SCYLLA_KEYSPACE", name.clone()),
        ("SEMBANG_ANALYTICS_CLICKHOUSE_URL", clickhouse),
        ("SEMBANG_ANALYTICS_CLICKHOUSE_DATABASE", name),
    ];
    let first = sembang_env(&["migrate", "--profile", "local"], &env);
    let text = String::from_utf8_lossy(&first.stdout).to_string();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        text.contains("scylla schema migrated from version 0"),
        "{text}"
    );
    assert!(
        text.contains("clickhouse schema migrated from version 0"),
        "{text}"
    );
    let second = sembang_env(&["migrate", "--profile", "local"], &env);
    let text = String::from_utf8_lossy(&second.stdout).to_string();
    assert_eq!(second.status.code(), Some(0), "{text}");
    assert_eq!(text.matches("nothing to apply").count(), 2, "{text}");
}

#[test]
fn migrate_against_unreachable_services_names_them() {
    let env = [
        ("SEMBANG_STORE_SCYLLA_NODES", "127.0.0.1:1".to_string()),
        (
            "SEMBANG_ANALYTICS_CLICKHOUSE_URL",
            "http://127.0.0.1:1".to_string(),
        ),
    ];
    let output = sembang_env(&["migrate", "--profile", "local"], &env);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("scylla is unavailable"), "{stderr}");
    assert!(stderr.contains("clickhouse is unavailable"), "{stderr}");
}

/// Runs `sembang run` on `data_dir` until `work` is done with its base URL, then stops it.
fn with_running_embedded(data_dir: &std::path::Path, work: impl FnOnce(&str)) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_sembang"))
        .arg("run")
        .env_remove("SEMBANG_CONFIG")
        .env_remove("SEMBANG_PROFILE")
        .env("SEMBANG_DATA_DIR", data_dir)
        .env("SEMBANG_HTTP_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the sembang binary runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("sembang run printed its URLs").unwrap();
        if let Some(url) = line.strip_prefix("sembang: webhook    ") {
            break url.trim().trim_end_matches("/webhook/whatsapp").to_string();
        }
    };
    work(&base);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// Polls `url` until `done` holds for its JSON.
async fn json_until(http: &reqwest::Client, url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let value: Value = http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        if done(&value) {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "{url}: {value}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The CSV import and the segment export on the embedded default: rows become contacts
/// through the shards (bad rows reported by line), a segment counts them, the export
/// lists them masked, and importing the file again changes nothing.
#[test]
fn contacts_import_and_segment_export_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("contacts.csv");
    std::fs::write(
        &csv,
        "phone_number,name,marital_status,tags,outlet\n\
         012-345 6789,Siti Aminah,berkahwin,kids;halal,KLCC\n\
         not a phone,Ali,,,\n\
         013-555 0123,Mei Ling,single,,Mid Valley\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let env = [("SEMBANG_DATA_DIR", data.display().to_string())];
    let csv_arg = csv.display().to_string();
    let import = sembang_env(&["contacts", "import", &csv_arg], &env);
    let stdout = String::from_utf8_lossy(&import.stdout).to_string();
    let stderr = String::from_utf8_lossy(&import.stderr).to_string();
    assert_eq!(
        import.status.code(),
        Some(1),
        "some rows were rejected: {stdout} {stderr}"
    );
    assert!(stdout.contains("2 rows queued"), "{stdout}");
    assert!(
        stderr.contains("contacts.csv:3: phone_number: "),
        "{stderr}"
    );

    let mut segment_id = String::new();
    let mut updated_at = Value::Null;
    with_running_embedded(&data, |base| {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let http = reqwest::Client::new();
            let siti = json_until(&http, &format!("{base}/api/contacts/60123456789/"), |c| {
                c["name"] == "Siti Aminah"
            })
            .await;
            assert_eq!(siti["marital_status"], "married");
            updated_at = siti["updated_at"].clone();
            let created: Value = http
                .post(format!("{base}/api/segments/"))
                .json(&serde_json::json!({"name": "Kids", "custom": {"field": "attributes.tags", "op": "contains", "value": "kids"}}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            segment_id = created["id"].as_str().unwrap().to_string();
            json_until(&http, &format!("{base}/api/segments/{segment_id}/"), |s| s["count"] == 1).await;
        });
    });

    let export = sembang_env(&["segments", "export", &segment_id], &env);
    let text = String::from_utf8_lossy(&export.stdout).to_string();
    assert_eq!(
        export.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert_eq!(
        text,
        "phone_number,name,customer_tier,total_spent\n6012****789,Siti Aminah,Bronze,0.00\n"
    );
    assert_eq!(
        sembang_env(&["segments", "export", "no-such-id"], &env)
            .status
            .code(),
        Some(1)
    );

    // The same file again: the shards recognise every row; nothing changes.
    assert_eq!(
        sembang_env(&["contacts", "import", &csv_arg], &env)
            .status
            .code(),
        Some(1)
    );
    with_running_embedded(&data, |base| {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let http = reqwest::Client::new();
            // Wait until the engine has consumed and committed the second import (its
            // group's lag is 0), then check it changed nothing.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let metrics = http
                    .get(format!("{base}/metrics"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let caught_up = metrics.lines().any(|l| {
                    l.starts_with("sembang_consumer_lag_records{")
                        && l.contains("engine")
                        && l.ends_with(" 0")
                });
                if caught_up {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the engine did not catch up: {metrics}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            let siti = json_until(&http, &format!("{base}/api/contacts/60123456789/"), |c| {
                c["name"] == "Siti Aminah"
            })
            .await;
            assert_eq!(siti["updated_at"], updated_at, "a rerun changed Siti");
            // The restarted process rebuilt its index from the changelog: the same count.
            json_until(&http, &format!("{base}/api/segments/{segment_id}/"), |s| {
                s["count"] == 1 && s["live"] == true
            })
            .await;
        });
    });
}
