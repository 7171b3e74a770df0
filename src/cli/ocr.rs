//! `sembang ocr <IMAGE> [--json]`: the OCR pipeline of the OCR role on one file. Prints the
//! kind (ic, receipt, or the rejected reading), the text, Tesseract's confidence, timings,
//! and the IC or receipt fields with the names `ic parse` and `receipt parse` use.

use std::process::ExitCode;

use chrono::NaiveDate;
use serde_json::{json, Value};

use super::{EXIT_FAILURE, EXIT_REJECTED};
use crate::media::MediaLimits;
use crate::ocr::{process, OcrPool, Reading};

pub fn run(path: &str, reference: NaiveDate, as_json: bool, prepared: Option<&str>) -> ExitCode {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("sembang: cannot read {path}: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    if let Some(out) = prepared {
        // What Tesseract is given on the first pass, for looking at a photo that reads badly.
        let written = crate::ocr::preprocess::prepare(&bytes, None, Default::default())
            .map_err(|e| e.to_string())
            .and_then(|p| std::fs::write(out, p.png).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("sembang: cannot write the prepared image to {out}: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    }
    let pool = match OcrPool::start(1, 1, None, "eng+msa") {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("sembang: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let runtime = match super::async_runtime(false) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let output = match runtime.block_on(process(&pool, bytes, &MediaLimits::default(), reference)) {
        Ok(output) => output,
        Err(e) => {
            if as_json {
                println!(
                    "{}",
                    json!({ "kind": "error", "error": { "kind": e.kind(), "message": e.to_string() } })
                );
            } else {
                eprintln!("sembang: {e}");
            }
            return ExitCode::from(EXIT_REJECTED);
        }
    };
    let fields: Value = match &output.reading {
        Reading::MyKad(card) => json!({
            "ic": super::ic::to_json(&Ok(card.ic.clone()), reference),
            "card": card,
        }),
        Reading::Receipt(receipt) => json!({ "receipt": receipt }),
        Reading::Rejected { reason, .. } => json!({ "rejected": reason }),
    };
    let mut report = json!({
        "kind": output.reading.kind().as_str(),
        "accepted": !matches!(output.reading, Reading::Rejected { .. }),
        "confidence": output.recognized.confidence,
        "text": output.recognized.text,
        "sha256": output.media.sha256,
        "format": output.media.format,
        "ocr_ms": output.recognize_time.as_millis() as u64,
        "passes": output.passes,
        "turned_degrees": output.turn.degrees(),
        "binarization": format!("{:?}", output.binarization),
        "document": format!("{:?}", output.document),
        "card_check": output.card_check.map(|c| format!("{c:?}")),
        "total_ms": output.total_time.as_millis() as u64,
    });
    if let (Some(report), Some(fields)) = (report.as_object_mut(), fields.as_object()) {
        report.extend(fields.clone());
    }
    if as_json {
        println!("{report}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    if matches!(output.reading, Reading::Rejected { .. }) {
        ExitCode::from(EXIT_REJECTED)
    } else {
        ExitCode::SUCCESS
    }
}
