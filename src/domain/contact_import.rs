//! Contacts from a retailer's CSV file, as profile edits: one row per contact, a header
//! naming the columns.
//!
//! - `phone_number` (or `phone`): required, any form [`PhoneNumber::parse`] reads.
//! - `name`, `marital_status` (English or Malay), `tags` (separated by `;`).
//! - `marketing_opt_in` (yes / no, ya / tidak, true / false) with `consent_source` (where it
//!   was given, required with it) and `consent_wording` (the notice agreed to): recorded
//!   as `csv:<source>`.
//! - Any other column is an attribute (`attributes.` in front is optional): `true`/`false`
//!   are booleans, numbers are numbers, anything else text. An empty cell leaves the value
//!   as it is.
//!
//! A bad row is reported with its line and reason and the others are taken. Each row's edit
//! id is derived from its content, so importing the same file again is recognised as a
//! replay and changes nothing.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::Value;

use super::person::MaritalStatus;
use super::phone::PhoneNumber;
use super::profile::{ConsentGrant, PatchError, ProfilePatch, TAGS};

/// A row to import.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportRow {
    /// 1-based line of the file (the header is line 1).
    pub line: u64,
    pub phone: PhoneNumber,
    pub patch: ProfilePatch,
    pub edit_id: String,
}

/// A row left out, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedImport {
    pub rows: Vec<ImportRow>,
    pub errors: Vec<RowError>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("the file has no header row")]
    NoHeader,
    #[error("the header has no phone_number column")]
    NoPhoneColumn,
    #[error("the header names column {0:?} twice")]
    DuplicateColumn(String),
    #[error("unreadable CSV: {0}")]
    Csv(String),
}

enum Column {
    Phone,
    Name,
    MaritalStatus,
    Tags,
    MarketingOptIn,
    ConsentSource,
    ConsentWording,
    Attribute(String),
}

fn column(header: &str) -> Column {
    let header = header.trim();
    match header.to_ascii_lowercase().as_str() {
        "phone_number" | "phone" => Column::Phone,
        "name" => Column::Name,
        "marital_status" => Column::MaritalStatus,
        "tags" | "attributes.tags" => Column::Tags,
        "marketing_opt_in" | "marketing_consent" => Column::MarketingOptIn,
        "consent_source" => Column::ConsentSource,
        "consent_wording" => Column::ConsentWording,
        _ => Column::Attribute(
            header
                .strip_prefix("attributes.")
                .unwrap_or(header)
                .to_string(),
        ),
    }
}

fn typed(cell: &str) -> Value {
    // Only plain decimal numbers are numbers: "0123" (a member code) and "1e3" stay text.
    let leading_zero = cell.starts_with('0') && cell.len() > 1 && !cell.starts_with("0.");
    let plain = !leading_zero && !cell.contains(['e', 'E']);
    match cell {
        "true" | "TRUE" | "True" => Value::Bool(true),
        "false" | "FALSE" | "False" => Value::Bool(false),
        _ => match cell.parse::<serde_json::Number>() {
            Ok(n) if plain => Value::Number(n),
            _ => Value::String(cell.to_string()),
        },
    }
}

/// Reads the file. Fails only when the file as a whole is unusable (no header, no phone
/// column); row problems are in [`ParsedImport::errors`].
pub fn parse_contacts_csv(input: impl Read) -> Result<ParsedImport, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Csv(e.to_string()))?
        .clone();
    if headers.is_empty() {
        return Err(ImportError::NoHeader);
    }
    let columns: Vec<Column> = headers.iter().map(column).collect();
    if !columns.iter().any(|c| matches!(c, Column::Phone)) {
        return Err(ImportError::NoPhoneColumn);
    }
    let mut seen = std::collections::HashSet::new();
    for h in headers.iter() {
        if !seen.insert(h.trim().to_ascii_lowercase()) {
            return Err(ImportError::DuplicateColumn(h.to_string()));
        }
    }
    let mut parsed = ParsedImport::default();
    for record in reader.records() {
        let (line, record) = match record {
            Ok(r) => (r.position().map_or(0, |p| p.line()), r),
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                parsed.errors.push(RowError {
                    line,
                    reason: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        match row(&columns, &record) {
            Ok((phone, patch)) => {
                let content = format!(
                    "{}:{}",
                    phone.as_str(),
                    serde_json::to_string(&patch).unwrap_or_default()
                );
                let edit_id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, content.as_bytes());
                parsed.rows.push(ImportRow {
                    line,
                    phone,
                    patch,
                    edit_id: format!("csv-{edit_id}"),
                })
            }
            Err(reason) => parsed.errors.push(RowError { line, reason }),
        }
    }
    Ok(parsed)
}

fn row(
    columns: &[Column],
    record: &csv::StringRecord,
) -> Result<(PhoneNumber, ProfilePatch), String> {
    if record.len() != columns.len() {
        return Err(format!(
            "{} fields where the header has {}",
            record.len(),
            columns.len()
        ));
    }
    let mut phone = None;
    let mut patch = ProfilePatch::default();
    let mut attributes = BTreeMap::new();
    let (mut opt_in, mut source, mut wording) = (None, None, None);
    for (column, cell) in columns.iter().zip(record.iter()) {
        if cell.is_empty() {
            continue;
        }
        match column {
            Column::Phone => {
                phone = Some(PhoneNumber::parse(cell).map_err(|e| format!("phone_number: {e}"))?)
            }
            Column::Name => patch.name = Some(cell.to_string()),
            Column::MaritalStatus => {
                patch.marital_status = Some(
                    cell.parse::<MaritalStatus>()
                        .map_err(|e| format!("marital_status: {e}"))?,
                )
            }
            Column::Tags => {
                patch.tags = Some(
                    cell.split(';')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(String::from)
                        .collect(),
                )
            }
            Column::MarketingOptIn => {
                opt_in = Some(match cell.to_ascii_lowercase().as_str() {
                    "yes" | "y" | "true" | "1" | "ya" => true,
                    "no" | "n" | "false" | "0" | "tidak" => false,
                    _ => return Err(format!("marketing_opt_in: {cell:?} is not yes or no")),
                })
            }
            Column::ConsentSource => source = Some(cell.to_string()),
            Column::ConsentWording => wording = Some(cell.to_string()),
            Column::Attribute(key) => {
                attributes.insert(key.clone(), typed(cell));
            }
        }
    }
    let phone = phone.ok_or("phone_number: empty")?;
    patch.marketing_consent = match (opt_in, source) {
        (Some(opt_in), Some(source)) => Some(ConsentGrant {
            opt_in,
            source: format!("csv:{source}"),
            wording,
        }),
        (Some(_), None) => {
            return Err("marketing_opt_in: give consent_source (where it was given)".into())
        }
        (None, _) => None,
    };
    patch.attributes = attributes;
    patch.validate().map_err(|e| match e {
        PatchError::Empty => "nothing to set besides the phone number".to_string(),
        other => other.to_string(),
    })?;
    debug_assert!(!patch.attributes.contains_key(TAGS));
    Ok((phone, patch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn good_rows_are_taken_and_bad_ones_reported_with_their_line() {
        let file =
            "phone_number,name,marital_status,tags,attributes.outlet,visits,vip,member_code\n\
                    012-345 6789,Siti,berkahwin,kids; halal,KLCC,7,true,0123\n\
                    not-a-phone,Ali,,,,,,\n\
                    0198765432,Tan,complicated,,,,,\n\
                    0135550123,,,,,,,\n\
                    0135550124,Mei\n\
                    +6591234567,Lee,single,,,2.5,false,\n";
        let parsed = parse_contacts_csv(file.as_bytes()).unwrap();
        assert_eq!(parsed.rows.len(), 2, "{:?}", parsed.errors);
        let siti = &parsed.rows[0];
        assert_eq!((siti.line, siti.phone.as_str()), (2, "60123456789"));
        assert_eq!(siti.patch.name.as_deref(), Some("Siti"));
        assert_eq!(siti.patch.marital_status, Some(MaritalStatus::Married));
        assert_eq!(siti.patch.tags, Some(vec!["kids".into(), "halal".into()]));
        assert_eq!(siti.patch.attributes["outlet"], json!("KLCC"));
        assert_eq!(siti.patch.attributes["visits"], json!(7));
        assert_eq!(siti.patch.attributes["vip"], json!(true));
        assert_eq!(siti.patch.attributes["member_code"], json!("0123"));
        assert_eq!(parsed.rows[1].patch.attributes["visits"], json!(2.5));
        let lines: Vec<u64> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6]);
        assert!(
            parsed.errors[0].reason.starts_with("phone_number: "),
            "{:?}",
            parsed.errors
        );
        assert!(parsed.errors[1].reason.starts_with("marital_status: "));
        assert_eq!(
            parsed.errors[2].reason,
            "nothing to set besides the phone number"
        );
        assert_eq!(parsed.errors[3].reason, "2 fields where the header has 8");
        // The same file again gives the same edit ids (a rerun changes nothing).
        let again = parse_contacts_csv(file.as_bytes()).unwrap();
        assert_eq!(again.rows[0].edit_id, siti.edit_id);
    }

    #[test]
    fn a_consent_column_records_the_source_and_wording() {
        let file = "phone,marketing_opt_in,consent_source,consent_wording\n\
                    0123456789,ya,membership form,I agree to offers by WhatsApp\n\
                    0123456788,no,till,\n\
                    0123456787,maybe,till,\n\
                    0123456786,yes,,\n";
        let parsed = parse_contacts_csv(file.as_bytes()).unwrap();
        assert_eq!(parsed.rows.len(), 2, "{:?}", parsed.errors);
        assert_eq!(
            parsed.rows[0].patch.marketing_consent,
            Some(ConsentGrant {
                opt_in: true,
                source: "csv:membership form".into(),
                wording: Some("I agree to offers by WhatsApp".into()),
            })
        );
        assert!(
            !parsed.rows[1]
                .patch
                .marketing_consent
                .as_ref()
                .unwrap()
                .opt_in
        );
        let reasons: Vec<(u64, &str)> = parsed
            .errors
            .iter()
            .map(|e| (e.line, e.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (4, "marketing_opt_in: \"maybe\" is not yes or no"),
                (
                    5,
                    "marketing_opt_in: give consent_source (where it was given)"
                )
            ]
        );
    }

    #[test]
    fn unusable_files_are_errors() {
        assert_eq!(
            parse_contacts_csv("name,outlet\nSiti,KLCC\n".as_bytes()),
            Err(ImportError::NoPhoneColumn)
        );
        assert_eq!(
            parse_contacts_csv("phone,Phone\n1,2\n".as_bytes()),
            Err(ImportError::DuplicateColumn("Phone".into()))
        );
    }
}
