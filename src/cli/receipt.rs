//! `sembang receipt parse`.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use super::{EXIT_FAILURE, EXIT_REJECTED};
use crate::domain::receipt::{read_receipt, ParsedReceipt};

/// OCR text of one receipt is a few KB; anything far larger is not a receipt.
const MAX_INPUT_BYTES: u64 = 4 * 1024 * 1024;

pub fn parse(source: &str, as_json: bool) -> ExitCode {
    let text = match read_source(source) {
        Ok(text) => text,
        Err(message) => {
            eprintln!("sembang: {message}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let receipt = read_receipt(&text);
    if as_json {
        match serde_json::to_string(&receipt) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("sembang: cannot print the receipt: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    } else {
        print_human(&receipt);
    }
    if receipt.total.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REJECTED)
    }
}

fn read_source(source: &str) -> Result<String, String> {
    let mut bytes = Vec::new();
    let result = if source == "-" {
        std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(Path::new(source))
            .and_then(|file| file.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes))
    };
    let name = if source == "-" {
        "standard input"
    } else {
        source
    };
    result.map_err(|e| format!("cannot read {name}: {e}"))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!(
            "{name} is larger than {MAX_INPUT_BYTES} bytes; not receipt text"
        ));
    }
    // OCR output can carry stray bytes; read what is text rather than refuse the receipt.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn print_human(receipt: &ParsedReceipt) {
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".into());
    println!("merchant     {}", or_dash(receipt.merchant.clone()));
    println!(
        "date         {}",
        or_dash(receipt.date.map(|d| d.to_string()))
    );
    println!("receipt no   {}", or_dash(receipt.receipt_no.clone()));
    for item in &receipt.items {
        println!("  item       {}  {}", item.name, item.amount);
    }
    println!(
        "subtotal     {}",
        or_dash(receipt.subtotal.map(|m| m.to_string()))
    );
    println!(
        "tax          {}",
        or_dash(receipt.tax.map(|m| m.to_string()))
    );
    println!(
        "rounding     {}",
        or_dash(receipt.rounding.map(|m| m.to_string()))
    );
    match receipt.total {
        Some(total) => println!("total        {total}"),
        None => println!("total        not found"),
    }
    println!("confidence   {:.2}", receipt.confidence);
}
