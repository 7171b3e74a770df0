//! Development aid: replays saved Tesseract TSV (`NAME.tsv` beside the corpus's
//! truth.json) through the reading stage only (rows by geometry, then the receipt parser),
//! so a change to either is measured in seconds, not a corpus run.
//! `cargo run --example replay_tsv -- TSV_DIR TRUTH_JSON`

use chrono::NaiveDate;
use sembang::ocr::{read_text, rows::document_text, Reading};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, truth) = (&args[1], &args[2]);
    let truth: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(truth).expect("truth")).expect("json");
    let reference = NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date");
    let (mut seen, mut right, mut trusted_right, mut trusted_wrong) = (0, 0, 0, 0);
    for row in truth {
        let file = row["file"].as_str().unwrap_or_default();
        let stem = file.trim_end_matches(".jpg");
        let Ok(tsv) = std::fs::read_to_string(format!("{dir}/{stem}.tsv")) else {
            continue;
        };
        seen += 1;
        let text = if std::env::var_os("LINES").is_some() {
            tesseract_lines(&tsv)
        } else {
            document_text(&tsv, None)
        };
        let reading = read_text(&text, reference);
        let total = match &reading {
            Reading::Receipt(r) => r.details().total.map(|t| t.to_string()),
            _ => None,
        };
        let hit = total.as_deref() == row["total"].as_str();
        right += u32::from(hit);
        if reading.is_trusted() {
            if hit {
                trusted_right += 1;
            } else {
                trusted_wrong += 1;
                println!("TRUSTED WRONG {file}");
            }
        } else if std::env::var_os("SHOW").is_some() {
            let detail = match &reading {
                Reading::Receipt(r) => {
                    let d = r.details();
                    format!(
                        "conf {} date {:?} sub {:?} tax {:?} round {:?} paid {:?}/{:?} checks {:?}",
                        d.confidence,
                        d.date,
                        d.subtotal.map(|m| m.to_string()),
                        d.tax.map(|m| m.to_string()),
                        d.rounding.map(|m| m.to_string()),
                        d.tendered.map(|m| m.to_string()),
                        d.change.map(|m| m.to_string()),
                        d.checks
                            .iter()
                            .map(|c| format!("{:?}={}", c.check, c.passed))
                            .collect::<Vec<_>>()
                    )
                }
                other => format!("{other:?}"),
            };
            println!(
                "miss {file} total {total:?} truth {} {detail}",
                row["total"]
            );
        }
        if std::env::var("SHOW").ok().as_deref() == Some(stem) {
            println!("{text}\n{reading:?}");
        }
    }
    println!("{seen} receipts: total right {right}, trusted right {trusted_right}, trusted wrong {trusted_wrong}");
}

/// Tesseract's own lines, for comparison.
fn tesseract_lines(tsv: &str) -> String {
    sembang::ocr::rows::lines(sembang::ocr::words::parse_tsv(tsv))
        .iter()
        .map(|line| {
            line.iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}
