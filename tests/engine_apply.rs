//! The pure effect of inbound events on a contact (src/engine/apply.rs): counters, consent,
//! replies, OCR jobs, statuses, and replays that change nothing.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::json;

use sembang::domain::auto_reply::AutoReplies;
use sembang::domain::contact::{Contact, WhatsappStatus};
use sembang::domain::message::DeliveryStatus;
use sembang::domain::phone::PhoneNumber;
use sembang::domain::tier::TierPolicy;
use sembang::engine::apply::{apply, ApplyContext, Effects, Outcome};
use sembang::ingress::parse_webhook;
use sembang::provider::OutboundContent;
use sembang::storage::sink::AnalyticsEvent;
use sembang::topics::inbound::InboundEvent;

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
    tiers: TierPolicy,
    contact: Contact,
}

impl World {
    fn new() -> Self {
        World {
            replies: AutoReplies::new(AutoReplies::default_rules()).unwrap(),
            tiers: TierPolicy::default(),
            contact: Contact::new(PhoneNumber::parse(SITI).unwrap(), at(0)),
        }
    }

    fn apply(&mut self, event: &InboundEvent) -> Outcome {
        let ctx = ApplyContext {
            replies: &self.replies,
            tiers: &self.tiers,
            now: at(100_000),
            today: NaiveDate::from_ymd_opt(2024, 11, 25).unwrap(),
            ask_marital_status: false,
            consent_question: None,
            event_triggers: &[],
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
fn consent_follows_the_time_the_customer_wrote_not_arrival_order() {
    let mut w = World::new();
    w.effects(&text("wamid.stop", 20, "STOP"));
    // A START written before that STOP arrives late: the STOP stands, and nothing is sent.
    let late = w.effects(&text("wamid.start-early", 10, "START"));
    assert_eq!(w.contact.whatsapp_status, WhatsappStatus::Unsubscribed);
    assert!(late.replies.is_empty());
    assert_eq!(w.contact.consent_change.as_ref().unwrap().at, at(20));
    // One written after it applies.
    let later = w.effects(&text("wamid.start", 30, "MULA"));
    assert_eq!(w.contact.whatsapp_status, WhatsappStatus::Active);
    assert!(reply_body(&later).is_some(), "opt-in confirmed");
    // The old STOP delivered again after the dedupe window forgot it changes nothing.
    for i in 0..40 {
        w.effects(&text(&format!("wamid.chat{i}"), 40 + i, "ok"));
    }
    let replayed = w.effects(&text("wamid.stop", 20, "STOP"));
    assert_eq!(w.contact.whatsapp_status, WhatsappStatus::Active);
    assert!(replayed.replies.is_empty());
}

#[test]
fn images_and_documents_become_ocr_jobs() {
    let mut w = World::new();
    let image = message(
        "wamid.img",
        10,
        json!({ "type": "image", "image": { "id": "4490709327384033", "mime_type": "image/jpeg",
                 "sha256": "abc", "caption": "resit" } }),
    );
    let effects = w.effects(&image);
    let job = &effects.ocr_jobs[0];
    assert_eq!(
        (job.job_id.as_str(), job.media_id.as_str()),
        ("wamid.img", "4490709327384033")
    );
    assert_eq!(job.media_kind, "image");
    assert_eq!(job.caption.as_deref(), Some("resit"));
    let document = message(
        "wamid.doc",
        20,
        json!({ "type": "document", "document": { "id": "4490709327384034", "mime_type": "application/pdf",
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

// ---- OCR results --------------------------------------------------------------------------

mod ocr {
    use super::*;
    use sembang::domain::money::Money;
    use sembang::domain::mykad::MyKad;
    use sembang::domain::person::{Gender, MaritalStatus};
    use sembang::domain::purchase::PurchaseStatus;
    use sembang::domain::tier::Tier;
    use sembang::engine::apply_ocr::apply_ocr;
    use sembang::pii::IcVault;
    use sembang::topics::inbound::Business;
    use sembang::topics::ocr::{
        IcLinkOutcome, MyKadReading, OcrOutcome, OcrResult, ReceiptReading,
    };

    fn result(job: &str, outcome: OcrOutcome) -> OcrResult {
        OcrResult {
            job_id: job.into(),
            contact: PhoneNumber::parse(SITI).unwrap(),
            business: Business {
                waba_id: "1".into(),
                phone_number_id: "106540352242922".into(),
                display_phone_number: "60321611234".into(),
            },
            image_sha256: Some("ab".repeat(32)),
            confidence: 91.0,
            outcome,
            completed_at: at(50),
        }
    }

    fn mykad(link: IcLinkOutcome) -> OcrOutcome {
        let vault = IcVault::new([1; 32], [2; 32]).unwrap();
        let ic = MyKad::parse(
            "900101-14-5678",
            NaiveDate::from_ymd_opt(2024, 11, 25).unwrap(),
        )
        .unwrap();
        OcrOutcome::MyKad(MyKadReading {
            ic: vault.protect(&ic),
            birth_date: ic.birth_date(),
            gender: ic.gender(),
            state: Some("WP Kuala Lumpur".into()),
            name: Some("SITI NURHALIZA BINTI TARUDIN".into()),
            link,
        })
    }

    fn receipt(id: &str, ringgit: i64, review: bool, duplicate: Option<&str>) -> OcrOutcome {
        OcrOutcome::Receipt(ReceiptReading {
            purchase_id: id.into(),
            total: Money::from_ringgit(ringgit),
            purchased_on: NaiveDate::from_ymd_opt(2024, 11, 20).unwrap(),
            merchant: Some("AEON Mid Valley".into()),
            receipt_no: Some("R-1".into()),
            item_count: 3,
            parse_confidence: 0.9,
            needs_review: review,
            duplicate_of: duplicate.map(String::from),
        })
    }

    fn apply(w: &mut World, r: &OcrResult) -> Effects {
        let ctx = ApplyContext {
            replies: &w.replies,
            tiers: &w.tiers,
            now: at(100_000),
            today: NaiveDate::from_ymd_opt(2024, 11, 25).unwrap(),
            ask_marital_status: false,
            consent_question: None,
            event_triggers: &[],
        };
        match apply_ocr(&mut w.contact, r, &ctx) {
            Outcome::Applied(effects) => effects,
            Outcome::Duplicate => panic!("unexpected duplicate"),
        }
    }

    #[test]
    fn a_mykad_registers_the_profile_and_confirms_with_the_masked_number() {
        let mut w = World::new();
        let effects = apply(&mut w, &result("wamid.ic", mykad(IcLinkOutcome::Linked)));
        let c = &w.contact;
        assert_eq!(c.ic.as_ref().unwrap().masked, "900101-**-****");
        assert_eq!(c.date_of_birth, NaiveDate::from_ymd_opt(1990, 1, 1));
        assert_eq!(c.gender, Some(Gender::Female));
        assert_eq!(c.state.as_deref(), Some("WP Kuala Lumpur"));
        assert_eq!(c.name.as_deref(), Some("SITI NURHALIZA BINTI TARUDIN"));
        let reply = reply_body(&effects).unwrap();
        assert!(
            reply.contains("900101-**-****") && !reply.contains("5678"),
            "{reply}"
        );
        assert!(effects.events.iter().any(|e| matches!(e, AnalyticsEvent::ContactSnapshot(s) if s.reason == "registered" && s.ic_masked.as_deref() == Some("900101-**-****"))));
        // The same result again changes nothing.
        let ctx = ApplyContext {
            replies: &w.replies,
            tiers: &w.tiers,
            now: at(100_001),
            today: NaiveDate::from_ymd_opt(2024, 11, 25).unwrap(),
            ask_marital_status: false,
            consent_question: None,
            event_triggers: &[],
        };
        let r = result("wamid.ic", mykad(IcLinkOutcome::Linked));
        assert_eq!(apply_ocr(&mut w.contact, &r, &ctx), Outcome::Duplicate);
    }

    /// With the question on, a registration is followed by the marital-status list; the
    /// customer's pick sets it (and is thanked), "prefer not to say" leaves it unknown.
    #[test]
    fn a_registration_asks_the_marital_status_when_configured_and_the_answer_sets_it() {
        let mut w = World::new();
        let (replies, tiers) = (AutoReplies::new(Vec::new()).unwrap(), TierPolicy::default());
        let ctx = ApplyContext {
            replies: &replies,
            tiers: &tiers,
            now: at(100_000),
            today: NaiveDate::from_ymd_opt(2024, 11, 25).unwrap(),
            ask_marital_status: true,
            consent_question: None,
            event_triggers: &[],
        };
        let replies = match apply_ocr(
            &mut w.contact,
            &result("wamid.icq", mykad(IcLinkOutcome::Linked)),
            &ctx,
        ) {
            Outcome::Applied(effects) => effects.replies,
            Outcome::Duplicate => panic!("unexpected duplicate"),
        };
        assert_eq!(replies.len(), 2, "{replies:?}");
        let OutboundContent::List { rows, .. } = &replies[1].content else {
            panic!("the question is a list: {:?}", replies[1].content)
        };
        assert_eq!(rows.len(), 5);
        assert!(replies[1].content.validate().is_ok());
        let pick = |id: &str, wamid: &str| {
            message(
                wamid,
                200,
                serde_json::json!({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": id, "title": "x"}}}),
            )
        };
        let effects = w.effects(&pick("marital:none", "wamid.q1"));
        assert_eq!(w.contact.marital_status, None);
        assert_eq!(
            reply_body(&effects).as_deref(),
            Some("Thank you! / Terima kasih!")
        );
        w.effects(&pick("marital:married", "wamid.q2"));
        assert_eq!(w.contact.marital_status, Some(MaritalStatus::Married));
        // Asked only while it is unknown.
        let again = match apply_ocr(
            &mut w.contact,
            &result("wamid.icq2", mykad(IcLinkOutcome::Linked)),
            &ctx,
        ) {
            Outcome::Applied(effects) => effects.replies,
            Outcome::Duplicate => panic!("unexpected duplicate"),
        };
        assert_eq!(again.len(), 1);
    }

    /// With the consent question on, a registration asks it with reply buttons; "Ya"
    /// opts in with the wording recorded; the question is not asked again.
    #[test]
    fn a_registration_asks_for_marketing_consent_and_the_answer_is_recorded_with_its_wording() {
        const QUESTION: &str = "Boleh kami hantar promosi? / May we send you offers?";
        let mut w = World::new();
        let (replies, tiers) = (AutoReplies::new(Vec::new()).unwrap(), TierPolicy::default());
        let ctx = ApplyContext {
            replies: &replies,
            tiers: &tiers,
            now: at(100_000),
            today: NaiveDate::from_ymd_opt(2024, 11, 25).unwrap(),
            ask_marital_status: false,
            consent_question: Some(QUESTION),
            event_triggers: &[],
        };
        let asked = match apply_ocr(
            &mut w.contact,
            &result("wamid.icc", mykad(IcLinkOutcome::Linked)),
            &ctx,
        ) {
            Outcome::Applied(effects) => effects.replies,
            Outcome::Duplicate => panic!("unexpected duplicate"),
        };
        assert_eq!(asked.len(), 2, "{asked:?}");
        let OutboundContent::Buttons { body, buttons } = &asked[1].content else {
            panic!("the question has reply buttons: {:?}", asked[1].content)
        };
        assert_eq!(body, QUESTION);
        assert_eq!(buttons.len(), 2);
        assert!(asked[1].content.validate().is_ok());
        let answer = |id: &str, wamid: &str, seconds: i64| {
            message(
                wamid,
                seconds,
                serde_json::json!({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": id, "title": "x"}}}),
            )
        };
        // The answer is applied with the wording the customer saw.
        let mut with_question = World::new();
        with_question.contact = w.contact.clone();
        let effects = {
            let ctx = ApplyContext {
                consent_question: Some(QUESTION),
                event_triggers: &[],
                ..ctx
            };
            match sembang::engine::apply::apply(
                &mut with_question.contact,
                false,
                &answer("consent:yes", "wamid.yes", 300),
                &ctx,
            ) {
                Outcome::Applied(effects) => effects,
                Outcome::Duplicate => panic!("duplicate"),
            }
        };
        let c = &with_question.contact;
        assert!(c.marketing_opt_in);
        let change = c.consent_change.as_ref().unwrap();
        assert_eq!(change.source, "question:consent");
        assert_eq!(change.wording.as_deref(), Some(QUESTION));
        assert_eq!(change.at, at(300));
        assert!(reply_body(&effects).unwrap().starts_with("Terima kasih!"));
        // A later STOP wins; a retailer's import cannot undo it; the customer's START can.
        with_question.effects(&text("wamid.stop", 400, "STOP"));
        assert!(!with_question.contact.marketing_opt_in);
        let import = |id: &str, seconds: i64, opt_in: bool| {
            let edit = sembang::topics::inbound::ProfileEdit {
                edit_id: id.into(),
                wa_id: SITI.into(),
                at: at(seconds),
                source: sembang::topics::inbound::EditSource::CsvImport,
                patch: sembang::domain::profile::ProfilePatch {
                    marketing_consent: Some(sembang::domain::profile::ConsentGrant {
                        opt_in,
                        source: "csv:form".into(),
                        wording: Some("I agree".into()),
                    }),
                    ..Default::default()
                },
            };
            InboundEvent {
                business: sembang::topics::inbound::Business {
                    waba_id: "1".into(),
                    phone_number_id: "106540352242922".into(),
                    display_phone_number: "60321611234".into(),
                },
                payload: sembang::topics::inbound::EventPayload::ProfileEdit(edit),
            }
        };
        with_question.effects(&import("e1", 500, true));
        assert!(
            !with_question.contact.marketing_opt_in,
            "an import does not re-subscribe"
        );
        assert_eq!(
            with_question
                .contact
                .consent_change
                .as_ref()
                .unwrap()
                .source,
            "keyword:STOP"
        );
        with_question.effects(&text("wamid.start", 600, "START"));
        assert!(with_question.contact.marketing_opt_in);
        // An import's withdrawal applies, with its source.
        with_question.effects(&import("e2", 700, false));
        assert!(!with_question.contact.marketing_opt_in);
        assert_eq!(
            with_question
                .contact
                .consent_change
                .as_ref()
                .unwrap()
                .source,
            "csv:form"
        );

        // "Tidak" is recorded too, and the question is not asked after any decision.
        let mut declined = World::new();
        declined.contact = w.contact.clone();
        declined.effects(&answer("consent:no", "wamid.no", 300));
        assert!(!declined.contact.marketing_opt_in);
        assert_eq!(
            declined.contact.consent_change.as_ref().unwrap().source,
            "question:consent"
        );
        let again = match apply_ocr(
            &mut declined.contact,
            &result("wamid.icc2", mykad(IcLinkOutcome::Linked)),
            &ctx,
        ) {
            Outcome::Applied(effects) => effects.replies,
            Outcome::Duplicate => panic!("unexpected duplicate"),
        };
        assert_eq!(again.len(), 1, "not asked again: {again:?}");
    }

    /// A campaign's send, its delivery report and a purchase within the window move the
    /// campaign's funnel through the contact; a 131050 refusal stops marketing.
    #[test]
    fn campaign_outcomes_statuses_and_purchases_move_the_funnel() {
        use sembang::domain::campaign::RecipientUpdate;
        use sembang::topics::inbound::{CampaignSendOutcome, CampaignSendResult, EventPayload};
        let mut w = World::new();
        w.contact.marketing_opt_in = true;
        let business = sembang::topics::inbound::Business {
            waba_id: "1".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "60321611234".into(),
        };
        let outcome = |id: &str, result: CampaignSendResult| InboundEvent {
            business: business.clone(),
            payload: EventPayload::CampaignSend(CampaignSendOutcome {
                request_id: id.into(),
                campaign_id: "c1".into(),
                wa_id: SITI.into(),
                at: at(10),
                result,
            }),
        };
        w.effects(&outcome(
            "campaign:c1:x",
            CampaignSendResult::Sent {
                wamid: "wamid.OUT".into(),
                attribution_days: 7,
            },
        ));
        assert_eq!(w.contact.campaign_touches.sent_since(at(0)), 1);
        assert_eq!(w.contact.interactions.outbound_count, 1);
        let effects = w.effects(&status("wamid.OUT", "delivered", 20, None));
        assert_eq!(
            effects.campaign_steps[0].update,
            RecipientUpdate::Delivered { at: at(20) }
        );
        // The status event names the campaign (the analytics funnel reads it).
        assert!(effects.events.iter().any(|e| matches!(e,
            AnalyticsEvent::MessageStatus(s) if s.campaign_id.as_deref() == Some("c1"))));
        let converted = apply(&mut w, &result("wamid.rc", receipt("pc", 80, false, None)));
        assert_eq!(converted.campaign_steps.len(), 1);
        assert!(matches!(
            converted.campaign_steps[0].update,
            RecipientUpdate::Converted { amount, .. } if amount == Money::from_ringgit(80)
        ));
        // A receipt for review converts nothing (until it is approved).
        let pending = apply(&mut w, &result("wamid.rc2", receipt("pc2", 50, true, None)));
        assert!(pending.campaign_steps.is_empty());
        // 131050: the customer stopped marketing from us.
        w.effects(&outcome(
            "campaign:c2:x",
            CampaignSendResult::Failed {
                code: Some(131_050),
            },
        ));
        assert!(!w.contact.marketing_opt_in);
        assert_eq!(
            w.contact.consent_change.as_ref().unwrap().source,
            "provider:131050"
        );
    }

    #[test]
    fn an_ic_of_another_number_is_flagged_not_moved() {
        let mut w = World::new();
        let effects = apply(
            &mut w,
            &result("wamid.ic2", mykad(IcLinkOutcome::LinkedToOther)),
        );
        assert!(w.contact.ic.is_none() && w.contact.date_of_birth.is_none());
        assert_eq!(w.contact.attributes["ic_conflict"], "900101-**-****");
        assert!(reply_body(&effects)
            .unwrap()
            .contains("another WhatsApp number"));
    }

    #[test]
    fn receipts_count_toward_spending_and_tier_once() {
        let mut w = World::new();
        let effects = apply(&mut w, &result("wamid.r1", receipt("p1", 450, false, None)));
        assert_eq!(w.contact.spending().total_spent, Money::from_ringgit(450));
        assert_eq!(w.contact.customer_tier, Tier::Bronze);
        assert_eq!(effects.purchases[0].status, PurchaseStatus::Counted);
        assert!(reply_body(&effects).unwrap().contains("RM 450.00"));
        // Crossing RM 500: Silver, and the customer is told.
        let effects = apply(&mut w, &result("wamid.r2", receipt("p2", 100, false, None)));
        assert_eq!(w.contact.customer_tier, Tier::Silver);
        let reply = reply_body(&effects).unwrap();
        assert!(
            reply.contains("Total spent: RM 550.00") && reply.contains("now"),
            "{reply}"
        );
        assert_eq!(w.contact.spending().purchase_count, 2);
        // A duplicate (claimed by p1 already) and a replayed purchase id count nothing.
        let effects = apply(
            &mut w,
            &result("wamid.r3", receipt("p3", 450, false, Some("p1"))),
        );
        assert!(effects.purchases.is_empty());
        assert!(reply_body(&effects).unwrap().contains("already recorded"));
        let effects = apply(&mut w, &result("wamid.r4", receipt("p2", 100, false, None)));
        assert!(reply_body(&effects).unwrap().contains("already recorded"));
        assert_eq!(w.contact.spending().total_spent, Money::from_ringgit(550));
    }

    /// Purchases are stored before the contact's row; if that row is then lost, the reloaded
    /// contact counts the purchase (its ledger is read from the purchases) with the tier
    /// it had before. The replayed result moves the tier there, once.
    #[test]
    fn a_replayed_receipt_moves_a_tier_its_contact_row_missed() {
        let mut first = World::new();
        let effects = apply(
            &mut first,
            &result("wamid.r1", receipt("p1", 600, false, None)),
        );
        assert_eq!(first.contact.customer_tier, Tier::Silver);
        let counted = effects.purchases[0].counted_event().unwrap();

        let mut reloaded = World::new();
        reloaded.contact.purchases.apply(&counted);
        assert_eq!(reloaded.contact.customer_tier, Tier::Bronze);
        let effects = apply(
            &mut reloaded,
            &result("wamid.r1", receipt("p1", 600, false, None)),
        );
        assert!(effects.purchases.iter().all(|p| p.purchase_id == "p1"));
        assert_eq!(reloaded.contact.customer_tier, Tier::Silver);
        assert_eq!(
            reloaded.contact.spending().total_spent,
            Money::from_ringgit(600),
            "counted once"
        );
        assert!(
            effects.events.iter().any(|e| matches!(
                e,
                AnalyticsEvent::ContactSnapshot(s) if s.tier == Tier::Silver
            )),
            "the new tier reaches analytics: {:?}",
            effects.events
        );
    }

    #[test]
    fn an_opted_out_contact_is_counted_but_not_answered() {
        let mut w = World::new();
        w.effects(&text("wamid.stop", 10, "BERHENTI"));
        assert_eq!(w.contact.whatsapp_status, WhatsappStatus::Unsubscribed);
        let sent_before = w.contact.interactions.outbound_count;
        let effects = apply(&mut w, &result("wamid.r9", receipt("p9", 120, false, None)));
        assert_eq!(effects.purchases[0].status, PurchaseStatus::Counted);
        assert_eq!(w.contact.spending().total_spent, Money::from_ringgit(120));
        assert!(
            effects.replies.is_empty(),
            "nothing more after the confirmation"
        );
        assert_eq!(w.contact.interactions.outbound_count, sent_before);
        // After an opt-in the next photo is answered again.
        w.effects(&text("wamid.start", 60, "MULA"));
        let effects = apply(
            &mut w,
            &result("wamid.r10", receipt("p10", 30, false, None)),
        );
        assert!(reply_body(&effects).unwrap().contains("RM 30.00"));
    }

    #[test]
    fn uncertain_receipts_wait_for_review_and_rejections_ask_for_a_clearer_photo() {
        let mut w = World::new();
        let effects = apply(&mut w, &result("wamid.r5", receipt("p5", 80, true, None)));
        assert_eq!(effects.purchases[0].status, PurchaseStatus::PendingReview);
        assert_eq!(w.contact.spending().purchase_count, 0, "not counted");
        assert!(reply_body(&effects).unwrap().contains("check it"));
        let rejected = OcrOutcome::Rejected {
            read_as: sembang::topics::ocr::OcrKind::Ic,
            reason: "the IC number has an impossible date of birth".into(),
        };
        let effects = apply(&mut w, &result("wamid.bad", rejected));
        let reply = reply_body(&effects).unwrap();
        assert!(
            reply.contains("MyKad") && reply.contains("impossible date"),
            "{reply}"
        );
        assert_eq!(effects.replies[0].request_id, "ocr:wamid.bad");
    }
}

/// A `user_preferences` stop from WhatsApp withdraws marketing consent; a resume gives it
/// back (it is the customer's own choice); a stale one changes nothing.
#[test]
fn marketing_preferences_from_whatsapp_stop_and_resume_marketing() {
    use sembang::topics::inbound::{Business, EventPayload, MarketingPreference};
    let mut w = World::new();
    w.effects(&text("wamid.s", 10, "START"));
    assert!(w.contact.marketing_opt_in);
    let preference = |stop: bool, seconds: i64| InboundEvent {
        business: Business {
            waba_id: "1".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "60321611234".into(),
        },
        payload: EventPayload::MarketingPreference(MarketingPreference {
            wa_id: SITI.into(),
            stop,
            at: at(seconds),
        }),
    };
    w.effects(&preference(true, 20));
    assert!(!w.contact.marketing_opt_in);
    assert_eq!(
        w.contact.consent_change.as_ref().unwrap().source,
        "webhook:user_preferences"
    );
    // Older than the change on record: ignored.
    w.effects(&preference(false, 15));
    assert!(!w.contact.marketing_opt_in);
    w.effects(&preference(false, 30));
    assert!(w.contact.marketing_opt_in);
}
