//! Cloud API webhook envelopes (tests/fixtures/webhooks) → typed inbound events.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::json;

use sembang::domain::message::DeliveryStatus;
use sembang::ingress::{
    parse_webhook, sign, verify_signature, ParseError, ParsedWebhook, SignatureError,
};
use sembang::topics::inbound::{
    ApiError, Business, EventPayload, InboundEvent, InboundMessage, MessageKind, ReplyContext,
    ReportedStatus, StatusReport,
};

const WABA: &str = "102290129340398";
const CUSTOMER: &str = "60123456789";
const REPLIED_TO: &str = "wamid.HBgLNjAxMjM0NTY3ODkVAgARGBJCNjdDNjg2QjY0RTc4QUJCQkYA";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/webhooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(name: &str) -> ParsedWebhook {
    parse_webhook(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).unwrap()
}

fn business() -> Business {
    Business {
        waba_id: WABA.into(),
        phone_number_id: "106540352242922".into(),
        display_phone_number: "60321611234".into(),
    }
}

fn message(wamid: &str, ts: i64, context: Option<&str>, kind: MessageKind) -> InboundEvent {
    InboundEvent {
        business: business(),
        payload: EventPayload::Message(InboundMessage {
            wamid: wamid.into(),
            from: CUSTOMER.into(),
            profile_name: Some("Siti Nurhaliza".into()),
            timestamp: at(ts),
            context: context.map(|id| ReplyContext {
                from: Some("60321611234".into()),
                id: Some(id.into()),
            }),
            kind,
        }),
    }
}

/// The single event of a fixture that must yield exactly one and skip nothing.
fn only_event(name: &str) -> InboundEvent {
    let parsed = parse(name);
    assert!(parsed.skipped.is_empty(), "{name}: {:?}", parsed.skipped);
    assert_eq!(parsed.events.len(), 1, "{name}: {:?}", parsed.events);
    parsed.events.into_iter().next().unwrap()
}

#[test]
fn text_message() {
    let event = only_event("text");
    assert_eq!(
        event,
        message(
            "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQTRBNjVFRkQ0RTlBRjM1QkYzMQA=",
            1_732_510_800,
            None,
            MessageKind::Text {
                body: "Hi, saya nak daftar ahli".into()
            }
        )
    );
    // Independently computed: date -u -d @1732510800
    assert_eq!(
        event.timestamp().unwrap().to_rfc3339(),
        "2024-11-25T05:00:00+00:00"
    );
    assert_eq!(event.contact_wa_id(), Some(CUSTOMER));
    assert_eq!(event.partition_key(), CUSTOMER);
    assert_eq!(event.profile_name(), Some("Siti Nurhaliza"));
    assert_eq!(
        event
            .contact_phone()
            .map(|p| p.unwrap().as_str().to_owned()),
        Some(CUSTOMER.to_owned())
    );
    assert_eq!(
        event.dedupe_key(),
        "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQTRBNjVFRkQ0RTlBRjM1QkYzMQA="
    );
}

#[test]
fn image_with_caption() {
    assert_eq!(
        only_event("image_caption"),
        message(
            "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQTgzRjM3RTBDMzYwQjM4MTk2RQA=",
            1_732_510_860,
            None,
            MessageKind::Image {
                media_id: "1003383421387256".into(),
                mime_type: Some("image/jpeg".into()),
                sha256: Some("yq9JbKMJ8ZXZbqHIXXYFCgoWWu9dZ4I3sdoK3eYCWz4=".into()),
                caption: Some("Resit AEON Mid Valley".into()),
            }
        )
    );
}

#[test]
fn document() {
    assert_eq!(
        only_event("document"),
        message(
            "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzRUIwNjg4RjE1NTQ4OTlBRkQ2QgA=",
            1_732_510_920,
            None,
            MessageKind::Document {
                media_id: "2110589519432123".into(),
                mime_type: Some("application/pdf".into()),
                sha256: Some("Q3Qy4mhGmb0nD0yPeHkYx7S8p7E3XG0gU1l4n0Jc2hE=".into()),
                filename: Some("invoice-INV2024-0915.pdf".into()),
                caption: Some("Invois bulan September".into()),
            }
        )
    );
}

#[test]
fn interactive_button_reply() {
    assert_eq!(
        only_event("interactive_button_reply"),
        message(
            "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQUI4QjQ2OUQyNjM1RDhFNzVDQgA=",
            1_732_511_000,
            Some(REPLIED_TO),
            MessageKind::ButtonReply {
                id: "optin_yes".into(),
                title: "Ya, setuju".into(),
            }
        )
    );
}

#[test]
fn interactive_list_reply() {
    assert_eq!(
        only_event("interactive_list_reply"),
        message(
            "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQTdGMjNEMEZBRDIyOUJEQjBDRgA=",
            1_732_511_060,
            Some("wamid.HBgLNjAxMjM0NTY3ODkVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"),
            MessageKind::ListReply {
                id: "store_kl_midvalley".into(),
                title: "Mid Valley".into(),
                description: Some("Lot G-12, Mid Valley Megamall".into()),
            }
        )
    );
}

#[test]
fn template_quick_reply_button() {
    assert_eq!(
        only_event("template_button"),
        message(
            "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQTVERUE3QjY1MkZCNTc1MzY0MgA=",
            1_732_511_120,
            Some("wamid.HBgLNjAxMjM0NTY3ODkVAgARGBJEQTY0QzQ2RTg4NUQ5MUFCQTYA"),
            MessageKind::Button {
                payload: Some("STOP_PROMO".into()),
                text: Some("Berhenti promosi".into()),
            }
        )
    );
}

#[test]
fn system_user_changed_number() {
    let mut expected = message(
        "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQUQwRjY2RUY5NkM0NzQxNjU2OAA=",
        1_732_511_180,
        None,
        MessageKind::System {
            body: Some("User A changed from 60123456789 to 60198765432".into()),
            new_wa_id: Some("60198765432".into()),
            kind: Some("user_changed_number".into()),
        },
    );
    // This fixture has no contacts[]: no profile name.
    if let EventPayload::Message(m) = &mut expected.payload {
        m.profile_name = None;
    }
    assert_eq!(only_event("system_changed_number"), expected);
}

#[test]
fn reply_with_context() {
    assert_eq!(
        only_event("reply_context"),
        message(
            "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQUY0MkIyNzM5QTY1OUY3RDZCMwA=",
            1_732_511_420,
            Some(REPLIED_TO),
            MessageKind::Text {
                body: "Bila promosi ni tamat?".into()
            }
        )
    );
}

#[test]
fn unknown_types_are_kept_whole() {
    let parsed = parse("unknown_types");
    let raw: serde_json::Value = serde_json::from_slice(&fixture("unknown_types")).unwrap();
    let raw_messages = &raw["entry"][0]["changes"][0]["value"]["messages"];
    let kinds: Vec<_> = parsed
        .events
        .iter()
        .map(|e| match &e.payload {
            EventPayload::Message(m) => m.kind.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            MessageKind::Unknown {
                type_name: "reaction".into(),
                raw: raw_messages[0].clone()
            },
            MessageKind::Unknown {
                type_name: "order".into(),
                raw: raw_messages[1].clone()
            },
            MessageKind::Unknown {
                type_name: "interactive.nfm_reply".into(),
                raw: raw_messages[2].clone()
            },
        ]
    );
    // The raw keeps the content, e.g. the emoji and the order's price.
    if let MessageKind::Unknown { raw, .. } = &kinds[0] {
        assert_eq!(raw["reaction"]["emoji"], json!("\u{1F44D}"));
    }
    if let MessageKind::Unknown { raw, .. } = &kinds[1] {
        assert_eq!(raw["order"]["product_items"][0]["item_price"], json!(18.9));
    }
    let wamids: Vec<_> = parsed.events.iter().map(|e| e.dedupe_key()).collect();
    assert_eq!(
        wamids,
        vec![
            "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQTNCMTRBMzQ1NkM1QkI0RjI3MAA=",
            "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQjE4N0IyQjQ4QjQyMjE0QzQ1RgA=",
            "wamid.HBgLNjAxMjM0NTY3ODkVAgASGBQzQjI5QkY0NkE1RkM3RDQ2NjJDNQA=",
        ]
    );
}

fn status_event(
    wamid: &str,
    status: ReportedStatus,
    ts: i64,
    recipient: &str,
    errors: Vec<ApiError>,
    conversation: Option<serde_json::Value>,
    pricing: Option<serde_json::Value>,
) -> InboundEvent {
    InboundEvent {
        business: business(),
        payload: EventPayload::Status(StatusReport {
            wamid: wamid.into(),
            status,
            timestamp: at(ts),
            recipient_id: recipient.into(),
            errors,
            conversation,
            pricing,
        }),
    }
}

#[test]
fn statuses_sent_delivered_read() {
    let parsed = parse("statuses");
    let out = "wamid.HBgLNjAxMjM0NTY3ODkVAgARGBI4QkFCNzIzRjY1QTc2QTlFNjQA";
    let pricing = json!({"billable": true, "pricing_model": "CBP", "category": "marketing"});
    assert_eq!(
        parsed.events,
        vec![
            status_event(
                out,
                ReportedStatus::Known(DeliveryStatus::Sent),
                1_732_512_000,
                CUSTOMER,
                vec![],
                Some(json!({
                    "id": "2a1b9d0e4f5c6b7a8d9e0f1a2b3c4d5e",
                    "expiration_timestamp": "1732598400",
                    "origin": {"type": "marketing"}
                })),
                Some(pricing.clone()),
            ),
            status_event(
                out,
                ReportedStatus::Known(DeliveryStatus::Delivered),
                1_732_512_003,
                CUSTOMER,
                vec![],
                Some(
                    json!({"id": "2a1b9d0e4f5c6b7a8d9e0f1a2b3c4d5e", "origin": {"type": "marketing"}})
                ),
                Some(pricing),
            ),
            status_event(
                out,
                ReportedStatus::Known(DeliveryStatus::Read),
                1_732_512_060,
                CUSTOMER,
                vec![],
                None,
                None,
            ),
        ]
    );
    let keys: Vec<_> = parsed.events.iter().map(|e| e.dedupe_key()).collect();
    assert_eq!(
        keys,
        vec![
            format!("{out}:sent"),
            format!("{out}:delivered"),
            format!("{out}:read")
        ]
    );
    assert!(parsed
        .events
        .iter()
        .all(|e| e.partition_key() == CUSTOMER && e.profile_name().is_none()));
}

#[test]
fn failed_status_with_errors() {
    let event = only_event("status_failed");
    assert_eq!(
        event,
        status_event(
            "wamid.HBgLNjAxOTg3NjU0MzIVAgARGBJGQzI0QTc4RjU5QjFEMDlBMzkA",
            ReportedStatus::Known(DeliveryStatus::Failed),
            1_732_512_100,
            "60198765432",
            vec![ApiError {
                code: 131026,
                title: Some("Message undeliverable".into()),
                message: Some("Message undeliverable".into()),
                details: Some("Message Undeliverable.".into()),
            }],
            None,
            None,
        )
    );
    assert_eq!(
        event.timestamp().unwrap().to_rfc3339(),
        "2024-11-25T05:21:40+00:00"
    );
    assert_eq!(
        event.dedupe_key(),
        "wamid.HBgLNjAxOTg3NjU0MzIVAgARGBJGQzI0QTc4RjU5QjFEMDlBMzkA:failed"
    );
    assert_eq!(event.partition_key(), "60198765432");
}

#[test]
fn value_level_errors() {
    let event = only_event("value_errors");
    assert_eq!(
        event,
        InboundEvent {
            business: business(),
            payload: EventPayload::Error(ApiError {
                code: 131000,
                title: Some("Something went wrong".into()),
                message: Some("Something went wrong".into()),
                details: Some("Unsupported webhook payload".into()),
            }),
        }
    );
    assert_eq!(event.contact_wa_id(), None);
    assert_eq!(event.timestamp(), None);
    assert_eq!(event.partition_key(), "106540352242922");
    assert_eq!(
        event.dedupe_key(),
        "error:106540352242922:131000:Something went wrong:Something went wrong"
    );
}

#[test]
fn batch_keeps_entry_then_change_then_messages_before_statuses_order() {
    let parsed = parse("batch");
    assert!(parsed.skipped.is_empty());
    let summary: Vec<(String, String, String, Option<String>)> = parsed
        .events
        .iter()
        .map(|e| {
            (
                e.business.phone_number_id.clone(),
                e.dedupe_key(),
                e.partition_key().to_owned(),
                e.profile_name().map(str::to_owned),
            )
        })
        .collect();
    let row = |pnid: &str, key: &str, contact: &str, name: Option<&str>| {
        (
            pnid.to_owned(),
            key.to_owned(),
            contact.to_owned(),
            name.map(str::to_owned),
        )
    };
    let a = "106540352242922";
    let b = "113344556677889";
    assert_eq!(
        summary,
        vec![
            row(
                a,
                "wamid.BATCH-E0C0-M0",
                "60167778888",
                Some("Muthu a/l Rajan")
            ),
            row(a, "wamid.BATCH-E0C0-M1", CUSTOMER, Some("Siti Nurhaliza")),
            row(a, "wamid.OUT-1:delivered", CUSTOMER, None),
            row(a, "wamid.OUT-2:read", "60167778888", None),
            row(
                b,
                "wamid.BATCH-E1C0-M0",
                "60112223333",
                Some("Lim Mei Ling")
            ),
            row(b, "wamid.OUT-3:sent", "60112223333", None),
            row(b, "wamid.OUT-3:deleted", "60112223333", None),
        ]
    );
    assert_eq!(parsed.events[4].business.waba_id, "987654321098765");
    assert_eq!(
        parsed.events[4].business.display_phone_number,
        "60378901234"
    );
    assert_eq!(
        parsed.events[4].payload,
        EventPayload::Message(InboundMessage {
            wamid: "wamid.BATCH-E1C0-M0".into(),
            from: "60112223333".into(),
            profile_name: Some("Lim Mei Ling".into()),
            timestamp: at(1_732_514_010),
            context: None,
            kind: MessageKind::Image {
                media_id: "555000111".into(),
                mime_type: Some("image/jpeg".into()),
                sha256: Some("c2hhMjU2".into()),
                caption: None,
            },
        })
    );
    // An unknown status string is kept, not dropped and not an error.
    match &parsed.events[6].payload {
        EventPayload::Status(s) => {
            assert_eq!(s.status, ReportedStatus::Unknown("deleted".into()));
            assert_eq!(s.status.known(), None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn non_messages_changes_are_skipped_and_reported() {
    let parsed = parse("non_messages_field");
    let skipped: Vec<_> = parsed
        .skipped
        .iter()
        .map(|s| (s.location.as_str(), s.waba_id.as_str(), s.field.as_deref()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            (
                "entry[0].changes[0]",
                WABA,
                Some("message_template_status_update")
            ),
            (
                "entry[0].changes[2]",
                WABA,
                Some("phone_number_quality_update")
            ),
        ]
    );
    assert_eq!(parsed.events.len(), 1);
    // A foreign (Singapore) customer is a contact like any other, keyed by wa_id.
    let event = &parsed.events[0];
    assert_eq!(event.partition_key(), "6591234567");
    assert_eq!(event.contact_phone().unwrap().unwrap().country_code(), "65");
    assert_eq!(event.profile_name(), Some("Tan Wei Ming"));
}

// ---------------------------------------------------------------- errors

fn envelope_with_message(message: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": WABA,
            "changes": [
                {"field": "account_update", "value": {}},
                {"field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "60321611234", "phone_number_id": "106540352242922"},
                    "contacts": [{"profile": {"name": "X"}, "wa_id": CUSTOMER}],
                    "messages": [
                        {"from": CUSTOMER, "id": "wamid.A", "timestamp": "1732510800", "type": "text", "text": {"body": "a"}},
                        {"from": CUSTOMER, "id": "wamid.B", "timestamp": "1732510800", "type": "text", "text": {"body": "b"}},
                        message
                    ]
                }}
            ]
        }]
    }))
    .unwrap()
}

fn valid_message() -> serde_json::Value {
    json!({"from": CUSTOMER, "id": "wamid.C", "timestamp": "1732510800", "type": "text", "text": {"body": "c"}})
}

fn without(mut message: serde_json::Value, field: &str) -> serde_json::Value {
    message.as_object_mut().unwrap().remove(field);
    message
}

fn missing(location: &str) -> ParseError {
    ParseError::MissingField {
        location: location.into(),
    }
}

const M2: &str = "entry[0].changes[1].value.messages[2]";

/// The body's error, or else why its one unreadable item was set aside.
fn item_error(body: &[u8]) -> Result<ParsedWebhook, ParseError> {
    let parsed = parse_webhook(body)?;
    match &parsed.rejected[..] {
        [] => Ok(parsed),
        [item] => Err(item.error.clone()),
        more => panic!("expected one item set aside, got {more:?}"),
    }
}

#[test]
fn an_unreadable_item_is_set_aside_and_the_others_are_read() {
    let bad =
        json!({"from": CUSTOMER, "id": "wamid.C", "timestamp": "1", "type": "text", "text": {}});
    let parsed = parse_webhook(&envelope_with_message(bad.clone())).unwrap();
    let wamids: Vec<_> = parsed
        .events
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::Message(m) => Some(m.wamid.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(wamids, ["wamid.A", "wamid.B"]);
    match &parsed.rejected[..] {
        [item] => {
            assert_eq!(item.error, missing(&format!("{M2}.text.body")));
            assert_eq!(item.raw, bad, "kept as received");
            assert_eq!(item.wa_id(), Some(CUSTOMER));
        }
        other => panic!("{other:?}"),
    }

    // A status without its recipient, and an entry without its id: each set aside alone.
    let mut body: serde_json::Value = serde_json::from_slice(&fixture("batch")).unwrap();
    let whole = parse_webhook(&serde_json::to_vec(&body).unwrap()).unwrap();
    body["entry"][1].as_object_mut().unwrap().remove("id");
    let parsed = parse_webhook(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(parsed.rejected.len(), 1);
    assert_eq!(parsed.rejected[0].raw, body["entry"][1]);
    assert!(parsed.events.len() < whole.events.len() && !parsed.events.is_empty());
}

#[test]
fn the_helper_envelope_is_valid() {
    let parsed = parse_webhook(&envelope_with_message(valid_message())).unwrap();
    assert_eq!(parsed.events.len(), 3);
    assert_eq!(parsed.skipped.len(), 1);
}

#[test]
fn missing_message_fields_name_their_location() {
    for field in ["id", "from", "timestamp", "type"] {
        assert_eq!(
            item_error(&envelope_with_message(without(valid_message(), field))),
            Err(missing(&format!("{M2}.{field}"))),
            "{field}"
        );
    }
    let no_body =
        json!({"from": CUSTOMER, "id": "wamid.C", "timestamp": "1", "type": "text", "text": {}});
    assert_eq!(
        item_error(&envelope_with_message(no_body)),
        Err(missing(&format!("{M2}.text.body")))
    );
    let no_media_id = json!({"from": CUSTOMER, "id": "wamid.C", "timestamp": "1", "type": "image", "image": {"mime_type": "image/jpeg"}});
    assert_eq!(
        item_error(&envelope_with_message(no_media_id)),
        Err(missing(&format!("{M2}.image.id")))
    );
}

#[test]
fn missing_contact_wa_id_and_envelope_fields() {
    let mut body: serde_json::Value =
        serde_json::from_slice(&envelope_with_message(valid_message())).unwrap();
    body["entry"][0]["changes"][1]["value"]["contacts"][0]
        .as_object_mut()
        .unwrap()
        .remove("wa_id");
    assert_eq!(
        item_error(&serde_json::to_vec(&body).unwrap()),
        Err(missing("entry[0].changes[1].value.contacts[0].wa_id"))
    );

    let mut body: serde_json::Value = serde_json::from_slice(&fixture("statuses")).unwrap();
    body["entry"][0]["changes"][0]["value"]["statuses"][1]
        .as_object_mut()
        .unwrap()
        .remove("recipient_id");
    assert_eq!(
        item_error(&serde_json::to_vec(&body).unwrap()),
        Err(missing(
            "entry[0].changes[0].value.statuses[1].recipient_id"
        ))
    );

    let mut body: serde_json::Value = serde_json::from_slice(&fixture("batch")).unwrap();
    body["entry"][1].as_object_mut().unwrap().remove("id");
    assert_eq!(
        item_error(&serde_json::to_vec(&body).unwrap()),
        Err(missing("entry[1].id"))
    );

    let mut body: serde_json::Value = serde_json::from_slice(&fixture("text")).unwrap();
    body["entry"][0]["changes"][0]["value"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("phone_number_id");
    assert_eq!(
        item_error(&serde_json::to_vec(&body).unwrap()),
        Err(missing(
            "entry[0].changes[0].value.metadata.phone_number_id"
        ))
    );

    // Present but empty: as good as missing (replies are sent from this number).
    let mut body: serde_json::Value = serde_json::from_slice(&fixture("text")).unwrap();
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!(" ");
    assert_eq!(
        item_error(&serde_json::to_vec(&body).unwrap()),
        Err(missing(
            "entry[0].changes[0].value.metadata.phone_number_id"
        ))
    );

    assert_eq!(
        item_error(br#"{"object":"whatsapp_business_account"}"#),
        Err(missing("entry"))
    );
    assert_eq!(item_error(br#"{"entry":[]}"#), Err(missing("object")));
}

#[test]
fn bad_timestamps() {
    for bad in [
        json!("yesterday"),
        json!(""),
        json!("-5"),
        json!("1.5"),
        json!(1.5),
        json!("99999999999999999999"),
    ] {
        let message = json!({"from": CUSTOMER, "id": "wamid.C", "timestamp": bad, "type": "text", "text": {"body": "c"}});
        match item_error(&envelope_with_message(message)) {
            Err(ParseError::BadTimestamp { location, .. }) => {
                assert_eq!(location, format!("{M2}.timestamp"), "{bad}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let message = json!({"from": CUSTOMER, "id": "wamid.C", "timestamp": "abc", "type": "text", "text": {"body": "c"}});
    assert_eq!(
        item_error(&envelope_with_message(message)),
        Err(ParseError::BadTimestamp {
            location: format!("{M2}.timestamp"),
            value: "abc".into()
        })
    );
    // A number instead of the documented string is accepted.
    let message = json!({"from": CUSTOMER, "id": "wamid.C", "timestamp": 1732510800, "type": "text", "text": {"body": "c"}});
    let parsed = item_error(&envelope_with_message(message)).unwrap();
    assert_eq!(parsed.events[2].timestamp(), Some(at(1_732_510_800)));
}

#[test]
fn wrong_shapes_name_their_location() {
    let message = json!({"from": CUSTOMER, "id": 42, "timestamp": "1", "type": "text", "text": {"body": "c"}});
    match item_error(&envelope_with_message(message)) {
        Err(ParseError::InvalidField { location, reason }) => {
            assert_eq!(location, format!("{M2}.id"));
            assert!(reason.contains("invalid type"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    match item_error(
        br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":"x"}]}"#,
    ) {
        Err(ParseError::InvalidField { location, .. }) => {
            assert_eq!(location, "entry[0].changes")
        }
        other => panic!("{other:?}"),
    }
    for body in [&b"[\"whatsapp_business_account\", []]"[..], b" 5", b"null"] {
        assert_eq!(
            item_error(body),
            Err(ParseError::InvalidField {
                location: "(root)".into(),
                reason: "expected a JSON object".into()
            })
        );
    }
    assert!(matches!(
        item_error(b"[1,"),
        Err(ParseError::NotJson { .. })
    ));
}

#[test]
fn not_json_reports_line_and_column() {
    match parse_webhook(b"{\n  \"object\": \"whatsapp_business_account\",\n  \"entry\": [,]\n}") {
        Err(ParseError::NotJson { line, column, .. }) => assert_eq!((line, column), (3, 13)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse_webhook(b""),
        Err(ParseError::NotJson {
            line: 1,
            column: 0,
            ..
        })
    ));
    assert!(matches!(
        parse_webhook(br#"{"object":"whatsapp_business_account","entry":[]}  x"#),
        Err(ParseError::NotJson { line: 1, .. })
    ));
    assert!(matches!(
        parse_webhook(b"{\"object\""),
        Err(ParseError::NotJson { .. })
    ));
}

#[test]
fn wrong_object() {
    assert_eq!(
        parse_webhook(br#"{"object":"page","entry":[]}"#),
        Err(ParseError::WrongObject {
            found: "page".into()
        })
    );
    let err = parse_webhook(br#"{"object":"instagram","entry":[]}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "object is \"instagram\", expected \"whatsapp_business_account\""
    );
}

#[test]
fn empty_entry_list_gives_no_events() {
    let parsed = parse_webhook(br#"{"object":"whatsapp_business_account","entry":[]}"#).unwrap();
    assert_eq!(parsed, ParsedWebhook::default());
}

// ---------------------------------------------------------------- serde round trip

const ALL_FIXTURES: &[&str] = &[
    "text",
    "image_caption",
    "document",
    "interactive_button_reply",
    "interactive_list_reply",
    "template_button",
    "system_changed_number",
    "unknown_types",
    "reply_context",
    "statuses",
    "status_failed",
    "value_errors",
    "batch",
    "non_messages_field",
    "user_preferences",
];

#[test]
fn every_event_round_trips_through_json() {
    let mut seen = std::collections::BTreeSet::new();
    for name in ALL_FIXTURES {
        for event in parse(name).events {
            let encoded = serde_json::to_vec(&event).unwrap();
            let decoded: InboundEvent = serde_json::from_slice(&encoded).unwrap();
            assert_eq!(decoded, event, "{name}");
            assert_eq!(decoded.dedupe_key(), event.dedupe_key());
            seen.insert(match &event.payload {
                EventPayload::Message(m) => match &m.kind {
                    MessageKind::Text { .. } => "text",
                    MessageKind::Image { .. } => "image",
                    MessageKind::Document { .. } => "document",
                    MessageKind::ButtonReply { .. } => "button_reply",
                    MessageKind::ListReply { .. } => "list_reply",
                    MessageKind::Button { .. } => "button",
                    MessageKind::System { .. } => "system",
                    MessageKind::Unknown { .. } => "unknown",
                },
                EventPayload::Status(s) if s.status.known().is_none() => "unknown_status",
                EventPayload::Status(_) => "status",
                EventPayload::Error(_) => "error",
                EventPayload::MarketingPreference(_) => "marketing_preference",
                EventPayload::ProfileEdit(_)
                | EventPayload::CampaignSend(_)
                | EventPayload::Click(_)
                | EventPayload::PurchaseReview(_)
                | EventPayload::Erasure(_) => {
                    unreachable!(
                        "webhooks carry no profile edits, send outcomes, clicks or reviews"
                    )
                }
            });
        }
    }
    assert_eq!(seen.len(), 12, "{seen:?}");
}

/// Customers stopping and resuming marketing in WhatsApp: one event each; another
/// category is not ours; a value that is neither stop nor resume is set aside.
#[test]
fn user_preferences_become_marketing_preference_events() {
    use sembang::topics::inbound::MarketingPreference;
    let parsed = parse("user_preferences");
    let preferences: Vec<&MarketingPreference> = parsed
        .events
        .iter()
        .map(|e| match &e.payload {
            EventPayload::MarketingPreference(p) => p,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(preferences.len(), 2);
    assert_eq!(
        (preferences[0].wa_id.as_str(), preferences[0].stop),
        ("60123456789", true)
    );
    assert_eq!(
        (preferences[1].wa_id.as_str(), preferences[1].stop),
        ("60129876543", false)
    );
    assert_eq!(parsed.events[0].partition_key(), "60123456789");
    assert_eq!(parsed.rejected.len(), 1);
    assert!(parsed.rejected[0]
        .error
        .to_string()
        .contains("not stop or resume"));
    assert!(parsed.skipped.is_empty());
}

#[test]
fn wire_format_of_an_event() {
    let event = only_event("status_failed");
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(value["payload"]["event"], json!("status"));
    assert_eq!(value["payload"]["data"]["status"], json!("failed"));
    assert_eq!(
        value["payload"]["data"]["timestamp"],
        json!("2024-11-25T05:21:40Z")
    );
    let text = serde_json::to_value(only_event("text")).unwrap();
    assert_eq!(
        text["payload"]["data"]["kind"],
        json!({"type": "text", "body": "Hi, saya nak daftar ahli"})
    );
}

// ---------------------------------------------------------------- signature + parse

#[test]
fn signed_fixture_verifies_then_parses() {
    let body = fixture("batch");
    let header = sign(b"meta-app-secret", &body);
    assert_eq!(
        verify_signature(b"meta-app-secret", Some(&header), &body),
        Ok(())
    );
    let mut tampered = body.clone();
    let pos = tampered.iter().position(|&b| b == b'S').unwrap();
    tampered[pos] = b'T';
    assert_eq!(
        verify_signature(b"meta-app-secret", Some(&header), &tampered),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(parse_webhook(&body).unwrap().events.len(), 7);
}

// ---------------------------------------------------------------- never panics

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_webhook(&body);
    }

    #[test]
    fn mutated_envelopes_never_panic(
        fixture_index in 0..ALL_FIXTURES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut body = fixture(ALL_FIXTURES[fixture_index]);
        for (index, byte, op) in edits {
            if body.is_empty() {
                body.push(byte);
                continue;
            }
            let i = index.index(body.len());
            match op {
                0 => body[i] = byte,
                1 => { body.remove(i); }
                _ => body.insert(i, byte),
            }
        }
        if let Ok(parsed) = parse_webhook(&body) {
            for event in parsed.events {
                let encoded = serde_json::to_vec(&event).unwrap();
                let decoded: InboundEvent = serde_json::from_slice(&encoded).unwrap();
                prop_assert_eq!(decoded, event);
            }
        }
    }

    #[test]
    fn structural_mutations_never_panic(
        fixture_index in 0..ALL_FIXTURES.len(),
        path_seed in any::<u64>(),
        replacement in prop_oneof![
            Just(json!(null)), Just(json!(0)), Just(json!(-1)), Just(json!("")),
            Just(json!([])), Just(json!({})), Just(json!("x")), Just(json!(1e300)),
            Just(json!([{}])), Just(json!(true)),
        ],
    ) {
        let mut value: serde_json::Value =
            serde_json::from_slice(&fixture(ALL_FIXTURES[fixture_index])).unwrap();
        replace_somewhere(&mut value, path_seed, replacement);
        let _ = parse_webhook(&serde_json::to_vec(&value).unwrap());
    }
}

/// Walks down from the root choosing children by `seed`, and replaces the node reached.
fn replace_somewhere(value: &mut serde_json::Value, mut seed: u64, replacement: serde_json::Value) {
    let mut node = value;
    loop {
        let stop = seed.is_multiple_of(4);
        seed /= 4;
        let len = match &*node {
            serde_json::Value::Object(map) => map.len(),
            serde_json::Value::Array(items) => items.len(),
            _ => 0,
        };
        if stop || len == 0 {
            *node = replacement;
            return;
        }
        let pick = (seed % len as u64) as usize;
        seed /= len as u64;
        node = match node {
            serde_json::Value::Object(map) => map.values_mut().nth(pick).unwrap(),
            serde_json::Value::Array(items) => &mut items[pick],
            _ => unreachable!(),
        };
    }
}

#[test]
fn unknown_types_never_fail_on_their_payload_shape() {
    // A field named like a known type but shaped otherwise does not matter for another type.
    let message = json!({"from": CUSTOMER, "id": "wamid.C", "timestamp": "1", "type": "sticker",
        "sticker": {"id": 7}, "text": 5, "image": "x"});
    let parsed = item_error(&envelope_with_message(message.clone())).unwrap();
    assert_eq!(
        parsed.events[2].payload,
        EventPayload::Message(InboundMessage {
            wamid: "wamid.C".into(),
            from: CUSTOMER.into(),
            profile_name: Some("X".into()),
            timestamp: at(1),
            context: None,
            kind: MessageKind::Unknown {
                type_name: "sticker".into(),
                raw: message,
            },
        })
    );
    // For a known type, its own payload's shape is checked, with the location.
    let message = json!({"from": CUSTOMER, "id": "wamid.C", "timestamp": "1", "type": "text", "text": {"body": 5}});
    match item_error(&envelope_with_message(message)) {
        Err(ParseError::InvalidField { location, .. }) => {
            assert_eq!(location, format!("{M2}.text.body"))
        }
        other => panic!("{other:?}"),
    }
    let message = json!({"from": CUSTOMER, "id": "wamid.C", "timestamp": "1", "type": "image", "image": null});
    assert_eq!(
        item_error(&envelope_with_message(message)),
        Err(missing(&format!("{M2}.image")))
    );
}

#[test]
fn interactive_reply_fields_are_located() {
    let message = json!({"from": CUSTOMER, "id": "wamid.C", "timestamp": "1", "type": "interactive",
        "interactive": {"type": "list_reply", "list_reply": {"id": "a"}, "button_reply": 5}});
    assert_eq!(
        item_error(&envelope_with_message(message)),
        Err(missing(&format!("{M2}.interactive.list_reply.title")))
    );
    let message = json!({"from": CUSTOMER, "id": "wamid.C", "timestamp": "1", "type": "interactive",
        "interactive": {"type": "button_reply"}});
    assert_eq!(
        item_error(&envelope_with_message(message)),
        Err(missing(&format!("{M2}.interactive.button_reply")))
    );
    let message = json!({"from": CUSTOMER, "id": "wamid.C", "timestamp": "1", "type": "interactive",
        "interactive": {"button_reply": {"id": "a", "title": "b"}}});
    assert_eq!(
        item_error(&envelope_with_message(message)),
        Err(missing(&format!("{M2}.interactive.type")))
    );
}

/// The OCR role fetches by the media id: a URL (to a host inside the network) or the name of
/// another customer's upload in the object store is set aside, never turned into a job.
#[test]
fn media_ids_that_are_not_cloud_api_ids_are_set_aside() {
    for id in [
        "http://169.254.169.254/latest/meta-data/",
        "https://lookaside.fbsbx.com/x",
        "stored:3f2a.jpg",
        "../../etc/passwd",
        "",
        "MEDIA-1",
    ] {
        for kind in ["image", "document"] {
            let message = json!({"from": CUSTOMER, "id": "wamid.M", "timestamp": "1732510800",
                "type": kind, kind: {"id": id, "mime_type": "image/jpeg"}});
            let error = item_error(&envelope_with_message(message)).unwrap_err();
            assert_eq!(
                error,
                ParseError::InvalidField {
                    location: format!("{M2}.{kind}.id"),
                    reason: "a Cloud API media id is digits".into()
                },
                "{kind} {id:?}"
            );
        }
    }
    let message = json!({"from": CUSTOMER, "id": "wamid.M", "timestamp": "1732510800",
        "type": "image", "image": {"id": "1479537139650973", "mime_type": "image/jpeg"}});
    item_error(&envelope_with_message(message)).unwrap();
}

#[test]
fn wabot_media_must_be_an_http_url() {
    use sembang::ingress::wabot::parse_wabot;
    let message = |url: &str| {
        serde_json::to_vec(
            &json!({"instance_id": "609ABC", "id": "3EB0", "from": CUSTOMER,
            "timestamp": 1732510800, "type": "image", "media_url": url}),
        )
        .unwrap()
    };
    for url in [
        "stored:3f2a.jpg",
        "file:///etc/passwd",
        "gopher://x/",
        "not a url",
    ] {
        let error = parse_wabot(&message(url)).unwrap_err();
        assert!(
            matches!(&error, ParseError::InvalidField { location, .. } if location == "media_url"),
            "{url}: {error:?}"
        );
    }
    parse_wabot(&message("https://media.wabot.my/x.jpg")).unwrap();
}
