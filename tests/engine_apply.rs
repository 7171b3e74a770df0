//! The pure effect of inbound events on a contact (src/engine/apply.rs): counters, consent,
//! replies, OCR jobs, statuses, and replays that change nothing.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::json;

use sembang::domain::auto_reply::AutoReplies;
use sembang::domain::contact::{Contact, WhatsappStatus};
use sembang::domain::message::DeliveryStatus;
use sembang::domain::phone::PhoneNumber;
use sembang::engine::apply::{apply, ApplyContext, Effects, Outcome};
use sembang::ingress::{parse_webhook, InboundEvent};
use sembang::provider::OutboundContent;
use sembang::storage::sink::AnalyticsEvent;

const SITI: &str = "60123456789";
const T0: i64 = 1_732_510_800;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(T0 + seconds, 0).unwrap()
}

fn events(value: serde_json::Value) -> Vec<InboundEvent> {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": value }] }]
    });
    parse_webhook(&serde_json::to_vec(&body).unwrap())
        .unwrap()
        .events
}

fn metadata() -> serde_json::Value {
    json!({ "display_phone_number": "+60 3-2161 1234", "phone_number_id": "106540352242922" })
}

fn message(wamid: &str, seconds: i64, kind: serde_json::Value) -> InboundEvent {
    let mut m = json!({ "from": SITI, "id": wamid, "timestamp": (T0 + seconds).to_string() });
    for (k, v) in kind.as_object().unwrap() {
        m[k] = v.clone();
    }
    events(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "contacts": [{ "profile": { "name": "Siti" }, "wa_id": SITI }],
        "messages": [m]
    }))
    .remove(0)
}

fn text(wamid: &str, seconds: i64, body: &str) -> InboundEvent {
    message(
        wamid,
        seconds,
        json!({ "type": "text", "text": { "body": body } }),
    )
}

fn status(wamid: &str, status: &str, seconds: i64, code: Option<i64>) -> InboundEvent {
    let mut s = json!({ "id": wamid, "status": status, "timestamp": (T0 + seconds).to_string(),
                        "recipient_id": SITI });
    if let Some(code) = code {
        s["errors"] = json!([{ "code": code, "title": "Message undeliverable." }]);
    }
    events(json!({ "messaging_product": "whatsapp", "metadata": metadata(), "statuses": [s] }))
        .remove(0)
}

struct World {
    replies: AutoReplies,
    contact: Contact,
}

impl World {
    fn new() -> Self {
        World {
            replies: AutoReplies::new(AutoReplies::default_rules()).unwrap(),
            contact: Contact::new(PhoneNumber::parse(SITI).unwrap(), at(0)),
        }
    }

    fn apply(&mut self, event: &InboundEvent) -> Outcome {
        let ctx = ApplyContext {
            replies: &self.replies,
            now: at(100_000),
            today: NaiveDate::from_ymd_opt(2024, 11, 25).unwrap(),
        };
        apply(&mut self.contact, false, event, &ctx)
    }

    fn effects(&mut self, event: &InboundEvent) -> Effects {
        match self.apply(event) {
            Outcome::Applied(effects) => effects,
            Outcome::Duplicate => panic!("unexpected duplicate"),
        }
    }
}

fn reply_body(effects: &Effects) -> Option<String> {
    effects.replies.first().map(|r| match &r.content {
        OutboundContent::Text { body, .. } => body.clone(),
        other => panic!("unexpected reply content {other:?}"),
    })
}

#[test]
fn a_text_counts_names_and_records_the_message() {
    let mut w = World::new();
    let effects = w.effects(&text("wamid.1", 10, "Selamat pagi"));
    assert_eq!(w.contact.interactions.message_count, 1);
    assert_eq!(w.contact.interactions.last_interaction, Some(at(10)));
    assert_eq!(w.contact.name.as_deref(), Some("Siti"));
    assert!(effects.replies.is_empty(), "no keyword, no reply");
    assert_eq!(effects.messages.len(), 1);
    assert_eq!(effects.messages[0].body.as_deref(), Some("Selamat pagi"));
    match &effects.events[..] {
        [AnalyticsEvent::InboundMessage(e)] => {
            assert_eq!(e.wamid, "wamid.1");
            assert_eq!(
                e.business_number, "60321611234",
                "display number reduced to digits"
            );
            assert_eq!(e.message_type, "text");
        }
        other => panic!("expected one inbound event, got {other:?}"),
    }
}

#[test]
fn a_replayed_event_changes_nothing() {
    let mut w = World::new();
    let first = w.effects(&text("wamid.1", 10, "help"));
    let after_first = w.contact.clone();
    assert_eq!(w.apply(&text("wamid.1", 10, "help")), Outcome::Duplicate);
    assert_eq!(w.contact, after_first);
    // The same status twice is a duplicate too; the same wamid with another status is not.
    w.effects(&status("wamid.out", "delivered", 20, None));
    assert_eq!(
        w.apply(&status("wamid.out", "delivered", 20, None)),
        Outcome::Duplicate
    );
    assert!(matches!(
        w.apply(&status("wamid.out", "read", 30, None)),
        Outcome::Applied(_)
    ));
    // Ids derived from the event are stable, so downstream replays collapse too.
    let mut again = World::new();
    assert_eq!(
        again.effects(&text("wamid.1", 10, "help")).events,
        first.events
    );
}

#[test]
fn keywords_reply_and_replies_are_counted_as_answered_once() {
    let mut w = World::new();
    let effects = w.effects(&text("wamid.1", 10, "boleh tolong saya?"));
    assert!(
        reply_body(&effects).unwrap().contains("MyKad"),
        "help reply"
    );
    let reply = &effects.replies[0];
    assert_eq!(reply.request_id, "reply:wamid.1");
    assert_eq!(reply.phone_number_id, "106540352242922");
    assert_eq!(reply.in_reply_to.as_deref(), Some("wamid.1"));
    assert_eq!(w.contact.interactions.outbound_count, 1);
    w.effects(&text("wamid.2", 20, "ok"));
    w.effects(&text("wamid.3", 30, "ok lagi"));
    assert_eq!(
        w.contact.interactions.replied_count, 1,
        "only the first message answers"
    );
    assert_eq!(w.contact.interactions.response_rate(), 1.0);
}

#[test]
fn opt_out_is_immediate_confirmed_once_and_silences_replies() {
    let mut w = World::new();
    w.contact.marketing_opt_in = true;
    let effects = w.effects(&text("wamid.1", 10, "停止"));
    assert_eq!(w.contact.whatsapp_status, WhatsappStatus::Unsubscribed);
    assert!(!w.contact.marketing_opt_in);
    let consent = w.contact.consent_change.clone().unwrap();
    assert_eq!(
        (consent.at, consent.source.as_str()),
        (at(10), "keyword:停止")
    );
    assert!(reply_body(&effects).unwrap().contains("unsubscribed"));
    assert!(effects
        .events
        .iter()
        .any(|e| matches!(e, AnalyticsEvent::ContactSnapshot(s) if s.reason == "opt_out")));
    for (i, body) in ["STOP", "help", "daftar"].iter().enumerate() {
        let effects = w.effects(&text(&format!("wamid.x{i}"), 20 + i as i64, body));
        assert!(
            effects.replies.is_empty(),
            "{body}: nothing after the confirmation"
        );
    }
    assert_eq!(
        w.contact.consent_change.as_ref().unwrap().at,
        at(10),
        "the first opt-out stands"
    );
    let effects = w.effects(&text("wamid.in", 60, "START"));
    assert_eq!(w.contact.whatsapp_status, WhatsappStatus::Active);
    assert!(w.contact.marketing_opt_in);
    assert!(reply_body(&effects).unwrap().contains("subscribed"));
}

#[test]
fn images_and_documents_become_ocr_jobs() {
    let mut w = World::new();
    let image = message(
        "wamid.img",
        10,
        json!({ "type": "image", "image": { "id": "MEDIA1", "mime_type": "image/jpeg",
                 "sha256": "abc", "caption": "resit" } }),
    );
    let effects = w.effects(&image);
    let job = &effects.ocr_jobs[0];
    assert_eq!(
        (job.job_id.as_str(), job.media_id.as_str()),
        ("wamid.img", "MEDIA1")
    );
    assert_eq!(job.media_kind, "image");
    assert_eq!(job.caption.as_deref(), Some("resit"));
    let document = message(
        "wamid.doc",
        20,
        json!({ "type": "document", "document": { "id": "MEDIA2", "mime_type": "application/pdf",
                 "filename": "receipt.pdf" } }),
    );
    let effects = w.effects(&document);
    assert_eq!(effects.ocr_jobs[0].filename.as_deref(), Some("receipt.pdf"));
    assert!(
        effects.replies.is_empty(),
        "captions are not keyword-matched"
    );
}

#[test]
fn statuses_are_recorded_and_undeliverable_blocks_until_the_contact_writes() {
    let mut w = World::new();
    let effects = w.effects(&status("wamid.out", "failed", 10, Some(131_026)));
    let update = &effects.statuses[0];
    assert_eq!(
        (update.status, update.error_code),
        (DeliveryStatus::Failed, Some(131_026))
    );
    assert_eq!(w.contact.whatsapp_status, WhatsappStatus::Blocked);
    w.effects(&text("wamid.1", 20, "hello"));
    assert_eq!(w.contact.whatsapp_status, WhatsappStatus::Active);
    // Unknown statuses are remembered (deduped) but store nothing.
    let effects = w.effects(&status("wamid.out", "deleted", 30, None));
    assert!(effects.statuses.is_empty() && effects.events.is_empty());
}
