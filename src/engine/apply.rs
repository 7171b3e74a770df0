//! What one inbound event does to its contact, as a pure function: the contact is changed
//! in place and everything else the event causes (analytics events, replies, OCR jobs,
//! message-history rows, delivery statuses) is returned for the shard to store. No I/O and
//! no clock: the caller passes `now`.
//!
//! Replays are recognised by the event's dedupe key in the contact's
//! [`RecentKeys`](crate::domain::recent::RecentKeys), which is written in the same row as
//! the change, and every id produced is derived from the event, so a replay that slips
//! through downstream collapses there.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::auto_reply::{AutoReplies, ReplyAction};
use crate::domain::contact::{ConsentChange, Contact, WhatsappStatus};
use crate::domain::message::{DeliveryStatus, DeliveryTimeline};
use crate::domain::person::MaritalStatus;
use crate::domain::phone::PhoneNumber;
use crate::domain::profile::{consent_question, marital_question};
use crate::domain::purchase::Purchase;
use crate::domain::tier::TierPolicy;
use crate::provider::OutboundContent;
use crate::storage::sink::{
    AnalyticsEvent, ContactSnapshotEvent, InboundMessageEvent, MessageStatusEvent,
};
use crate::storage::store::{Direction, MessageRecord};
use crate::topics::inbound::{Business, EventPayload, InboundEvent, InboundMessage, MessageKind};

use crate::topics::event_id;
use crate::topics::ocr::OcrJob;

use super::apply_campaign::{self, CampaignStep};
use super::triggers::EventTrigger;
use crate::topics::campaign::CampaignSend;
use crate::topics::outbound::{ListRow, Origin, OutboundRequest};

/// Provider error code: the number cannot receive WhatsApp messages.
pub const UNDELIVERABLE: i64 = 131_026;

pub struct ApplyContext<'a> {
    pub replies: &'a AutoReplies,
    pub tiers: &'a TierPolicy,
    pub now: DateTime<Utc>,
    /// Today in Malaysia, for ages.
    pub today: NaiveDate,
    /// Ask the marital status after a registration.
    pub ask_marital_status: bool,
    /// Ask for marketing consent after a registration, in these words.
    pub consent_question: Option<&'a str>,
    /// Running campaigns started by a contact's own events.
    pub event_triggers: &'a [EventTrigger],
}

/// A delivery report to store against an outbound message.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusUpdate {
    pub contact: PhoneNumber,
    pub wamid: String,
    pub status: DeliveryStatus,
    pub at: DateTime<Utc>,
    pub error_code: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effects {
    pub events: Vec<AnalyticsEvent>,
    pub replies: Vec<OutboundRequest>,
    pub ocr_jobs: Vec<OcrJob>,
    pub messages: Vec<MessageRecord>,
    pub statuses: Vec<StatusUpdate>,
    pub purchases: Vec<Purchase>,
    /// Steps of campaigns' funnels for this contact, for the campaigns' ledgers.
    pub campaign_steps: Vec<CampaignStep>,
    /// Campaign sends an event triggered (tier upgrade, first purchase).
    pub triggered: Vec<CampaignSend>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Already applied to this contact: nothing changed.
    Duplicate,
    /// The contact changed (at least its dedupe keys) and these effects follow.
    Applied(Effects),
}

/// Applies `event` to `contact`. `is_new`: the contact was not in the store before this
/// event (its first message creates it). Value-level errors concern no contact and are not
/// passed here.
pub fn apply(
    contact: &mut Contact,
    is_new: bool,
    event: &InboundEvent,
    ctx: &ApplyContext<'_>,
) -> Outcome {
    let key = event.dedupe_key();
    if !contact.applied_events.insert(&key) {
        return Outcome::Duplicate;
    }
    contact.updated_at = ctx.now;
    let mut effects = Effects::default();
    if is_new {
        effects
            .events
            .push(snapshot(contact, "created", &key, ctx.today));
    }
    match &event.payload {
        EventPayload::Message(message) => {
            apply_message(contact, &event.business, message, ctx, &mut effects)
        }
        EventPayload::Status(report) => {
            if let Some(status) = report.status.known() {
                let error = report.errors.first();
                let error_code = error.map(|e| e.code);
                let campaign_id = apply_campaign::apply_status(
                    contact,
                    &report.wamid,
                    status,
                    report.timestamp,
                    &mut effects,
                );
                effects.statuses.push(StatusUpdate {
                    contact: contact.phone_number.clone(),
                    wamid: report.wamid.clone(),
                    status,
                    at: report.timestamp,
                    error_code,
                });
                effects
                    .events
                    .push(AnalyticsEvent::MessageStatus(MessageStatusEvent {
                        event_id: event_id(&format!("status:{key}")),
                        occurred_at: report.timestamp,
                        contact_phone: contact.phone_number.clone(),
                        business_number: business_number(&event.business),
                        wamid: report.wamid.clone(),
                        status,
                        campaign_id,
                        error_code,
                        error_title: error.and_then(|e| e.title.clone()),
                    }));
                if status == DeliveryStatus::Failed
                    && error_code == Some(UNDELIVERABLE)
                    && contact.whatsapp_status == WhatsappStatus::Active
                {
                    contact.whatsapp_status = WhatsappStatus::Blocked;
                    effects
                        .events
                        .push(snapshot(contact, "blocked", &key, ctx.today));
                }
            }
        }
        EventPayload::ProfileEdit(edit) => {
            // Checked where it was made; a bad one that got here anyway changes nothing.
            if edit.patch.validate().is_ok() {
                let mut changed = edit.patch.apply_to(contact);
                if let Some(consent) = &edit.patch.marketing_consent {
                    changed |= apply_campaign::record_consent(
                        contact,
                        consent.opt_in,
                        edit.at,
                        &consent.source,
                        consent.wording.as_deref(),
                        false,
                    );
                }
                if changed {
                    effects
                        .events
                        .push(snapshot(contact, "edited", &key, ctx.today));
                }
            }
        }
        EventPayload::CampaignSend(outcome) => {
            apply_campaign::apply_send_outcome(contact, outcome, &key, ctx, &mut effects)
        }
        EventPayload::Click(click) => {
            apply_campaign::apply_click(contact, &event.business, click, &mut effects)
        }
        EventPayload::MarketingPreference(preference) => {
            let source = "webhook:user_preferences";
            let opt_in = !preference.stop;
            let changed =
                apply_campaign::record_consent(contact, opt_in, preference.at, source, None, true);
            if changed {
                let reason = if preference.stop {
                    "marketing_stopped"
                } else {
                    "opt_in"
                };
                effects
                    .events
                    .push(snapshot(contact, reason, &key, ctx.today));
            }
        }
        EventPayload::PurchaseReview(review) => super::apply_review::apply_review(
            contact,
            &event.business,
            review,
            &key,
            ctx,
            &mut effects,
        ),
        // Handled by the shard itself (it is I/O: store, changelog, sink), never applied.
        EventPayload::Erasure(_) => {}
        // Not routed to contacts; nothing to do if one arrives here.
        EventPayload::Error(_) => {}
    }
    Outcome::Applied(effects)
}

fn apply_message(
    contact: &mut Contact,
    business: &Business,
    message: &InboundMessage,
    ctx: &ApplyContext<'_>,
    effects: &mut Effects,
) {
    let stats = &mut contact.interactions;
    // The first message after our last one answers it. An auto-reply is stamped with the
    // time of the message it answers, so the next message counts and later ones do not.
    let answered = match (stats.last_outbound, stats.last_interaction) {
        (Some(out), Some(seen)) => out >= seen,
        (Some(_), None) => true,
        _ => false,
    };
    if answered {
        stats.replied_count += 1;
    }
    stats.message_count += 1;
    stats.last_interaction = Some(
        stats
            .last_interaction
            .map_or(message.timestamp, |t| t.max(message.timestamp)),
    );
    if contact.name.is_none() {
        contact.name = message.profile_name.clone();
    }
    // Whoever writes to us can be written to.
    if contact.whatsapp_status == WhatsappStatus::Blocked {
        contact.whatsapp_status = WhatsappStatus::Active;
    }

    let record = inbound_record(&contact.phone_number, message);
    let (type_name, text) = (record.kind.clone(), record.body.clone());
    effects.messages.push(record);
    effects
        .events
        .push(AnalyticsEvent::InboundMessage(InboundMessageEvent {
            event_id: event_id(&format!("inbound:{}", message.wamid)),
            occurred_at: message.timestamp,
            contact_phone: contact.phone_number.clone(),
            business_number: business_number(business),
            wamid: message.wamid.clone(),
            message_type: type_name,
            text,
            context_wamid: message.context.as_ref().and_then(|c| c.id.clone()),
            campaign_id: None,
        }));

    match &message.kind {
        MessageKind::Image {
            media_id,
            mime_type,
            sha256,
            caption,
        } => effects.ocr_jobs.push(ocr_job(
            contact, business, message, "image", media_id, mime_type, sha256, &None, caption,
        )),
        MessageKind::Document {
            media_id,
            mime_type,
            sha256,
            filename,
            caption,
        } => effects.ocr_jobs.push(ocr_job(
            contact, business, message, "document", media_id, mime_type, sha256, filename, caption,
        )),
        _ => {}
    }

    if let MessageKind::ListReply { id, .. } = &message.kind {
        if let Some(answer) = marital_question::answer(id) {
            answer_marital_question(contact, business, message, answer, ctx, effects);
            return;
        }
    }
    if let MessageKind::ButtonReply { id, .. } = &message.kind {
        if let Some(yes) = consent_question::answer(id) {
            let wording = ctx.consent_question;
            if apply_campaign::record_consent(
                contact,
                yes,
                message.timestamp,
                "question:consent",
                wording,
                true,
            ) {
                let reason = if yes { "opt_in" } else { "marketing_declined" };
                effects
                    .events
                    .push(snapshot(contact, reason, &message.wamid, ctx.today));
            }
            if contact.whatsapp_status != WhatsappStatus::Unsubscribed {
                let thanks = if yes {
                    consent_question::THANKS_YES
                } else {
                    consent_question::THANKS_NO
                };
                answer_with_text(contact, business, message, thanks, "consent", ctx, effects);
            }
            return;
        }
    }

    let Some(text) = keyword_text(&message.kind) else {
        return;
    };
    let Some(rule) = ctx.replies.find(text) else {
        return;
    };
    let reply = match rule.action {
        ReplyAction::OptOut | ReplyAction::OptIn
            if contact
                .consent_change
                .as_ref()
                .is_some_and(|latest| message.timestamp < latest.at) =>
        {
            // Sent before the consent change on record (a late delivery, or a redelivery
            // older than the dedupe window): the customer's newer choice stands.
            return;
        }
        ReplyAction::OptOut if contact.whatsapp_status == WhatsappStatus::Unsubscribed => {
            // One confirmation, and nothing more.
            return;
        }
        ReplyAction::OptOut | ReplyAction::OptIn => {
            let subscribed = rule.action == ReplyAction::OptIn;
            contact.whatsapp_status = if subscribed {
                WhatsappStatus::Active
            } else {
                WhatsappStatus::Unsubscribed
            };
            contact.marketing_opt_in = subscribed;
            contact.consent_change = Some(ConsentChange {
                at: message.timestamp,
                source: format!("keyword:{}", text.trim()),
                wording: None,
            });
            let reason = if subscribed { "opt_in" } else { "opt_out" };
            effects
                .events
                .push(snapshot(contact, reason, &message.wamid, ctx.today));
            true
        }
        ReplyAction::Reply => contact.whatsapp_status != WhatsappStatus::Unsubscribed,
    };
    if reply {
        answer_with_text(
            contact,
            business,
            message,
            &rule.reply,
            &rule.name,
            ctx,
            effects,
        );
    }
}

/// Answers `message` with a text (counted as sent, stamped with the message's time).
fn answer_with_text(
    contact: &mut Contact,
    business: &Business,
    message: &InboundMessage,
    body: &str,
    rule: &str,
    ctx: &ApplyContext<'_>,
    effects: &mut Effects,
) {
    contact.interactions.outbound_count += 1;
    contact.interactions.last_outbound = Some(message.timestamp);
    effects.replies.push(OutboundRequest {
        request_id: format!("reply:{}", message.wamid),
        phone_number_id: business.phone_number_id.clone(),
        business_number: business_number(business),
        to: contact.phone_number.clone(),
        content: OutboundContent::Text {
            body: body.to_string(),
            preview_url: false,
        },
        origin: Origin::AutoReply,
        rule: Some(rule.to_string()),
        campaign_id: None,
        in_reply_to: Some(message.wamid.clone()),
        created_at: ctx.now,
    });
}

/// The customer's pick from the marital-status list: set it (unless "prefer not to say")
/// and thank them.
fn answer_marital_question(
    contact: &mut Contact,
    business: &Business,
    message: &InboundMessage,
    answer: Option<MaritalStatus>,
    ctx: &ApplyContext<'_>,
    effects: &mut Effects,
) {
    if let Some(status) = answer {
        if contact.marital_status != Some(status) {
            contact.marital_status = Some(status);
            effects
                .events
                .push(snapshot(contact, "edited", &message.wamid, ctx.today));
        }
    }
    if contact.whatsapp_status != WhatsappStatus::Unsubscribed {
        let thanks = marital_question::THANKS;
        answer_with_text(
            contact,
            business,
            message,
            thanks,
            "marital_status",
            ctx,
            effects,
        );
    }
}

/// The marketing-consent question as reply buttons.
pub fn consent_question_content(question: &str) -> OutboundContent {
    OutboundContent::Buttons {
        body: question.to_string(),
        buttons: consent_question::BUTTONS
            .iter()
            .map(|(id, title)| ListRow {
                id: (*id).into(),
                title: (*title).into(),
            })
            .collect(),
    }
}

/// The marital-status question as a list message.
pub fn marital_question_content() -> OutboundContent {
    OutboundContent::List {
        body: marital_question::BODY.into(),
        button: marital_question::BUTTON.into(),
        rows: marital_question::CHOICES
            .iter()
            .map(|(id, title)| ListRow {
                id: (*id).into(),
                title: (*title).into(),
            })
            .collect(),
    }
}

#[allow(clippy::too_many_arguments)]
fn ocr_job(
    contact: &Contact,
    business: &Business,
    message: &InboundMessage,
    media_kind: &str,
    media_id: &str,
    mime_type: &Option<String>,
    sha256: &Option<String>,
    filename: &Option<String>,
    caption: &Option<String>,
) -> OcrJob {
    OcrJob {
        job_id: message.wamid.clone(),
        contact: contact.phone_number.clone(),
        business: business.clone(),
        media_kind: media_kind.into(),
        media_id: media_id.into(),
        mime_type: mime_type.clone(),
        sha256: sha256.clone(),
        filename: filename.clone(),
        caption: caption.clone(),
        received_at: message.timestamp,
    }
}

/// The history row of an inbound message: the same whenever it is built, so writing it
/// again changes nothing.
pub fn inbound_record(contact: &PhoneNumber, message: &InboundMessage) -> MessageRecord {
    let (kind, body) = describe(&message.kind);
    MessageRecord {
        wamid: message.wamid.clone(),
        contact: contact.clone(),
        direction: Direction::Inbound,
        kind,
        body,
        campaign_id: None,
        created_at: message.timestamp,
        timeline: DeliveryTimeline::default(),
    }
}

/// The WhatsApp type name and the message's text (body, caption or button text).
pub fn describe(kind: &MessageKind) -> (String, Option<String>) {
    match kind {
        MessageKind::Text { body } => ("text".into(), Some(body.clone())),
        MessageKind::Image { caption, .. } => ("image".into(), caption.clone()),
        MessageKind::Document { caption, .. } => ("document".into(), caption.clone()),
        MessageKind::ButtonReply { title, .. } => ("interactive".into(), Some(title.clone())),
        MessageKind::ListReply { title, .. } => ("interactive".into(), Some(title.clone())),
        MessageKind::Button { text, payload } => {
            ("button".into(), text.clone().or_else(|| payload.clone()))
        }
        MessageKind::System { body, .. } => ("system".into(), body.clone()),
        MessageKind::Unknown { type_name, .. } => (type_name.clone(), None),
    }
}

/// The text keywords are matched against: what the customer typed or tapped.
fn keyword_text(kind: &MessageKind) -> Option<&str> {
    match kind {
        MessageKind::Text { body } => Some(body),
        MessageKind::ButtonReply { title, .. } | MessageKind::ListReply { title, .. } => {
            Some(title)
        }
        MessageKind::Button { text, payload } => text.as_deref().or(payload.as_deref()),
        _ => None,
    }
}

/// The business number as digits (display numbers come as "+60 12-345 6789").
pub fn business_number(business: &Business) -> String {
    business
        .display_phone_number
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

/// The contact's profile after a change, for the demographics tables. Stamped when the
/// change is applied, not with the time of the event that caused it: a contact's snapshots
/// then follow the order its state changed, even when an event arrives late, so the latest
/// one (`argMax` by time) is its state. The price: a replay after a crash writes a copy
/// with the same event id and content and a later time, which ClickHouse keeps as another
/// row (`uniqExact(event_id)` and `argMax` are unaffected).
pub fn snapshot(contact: &Contact, reason: &str, cause: &str, today: NaiveDate) -> AnalyticsEvent {
    let spending = contact.spending();
    AnalyticsEvent::ContactSnapshot(ContactSnapshotEvent {
        event_id: event_id(&format!(
            "snapshot:{}:{reason}:{cause}",
            contact.phone_number.as_str()
        )),
        occurred_at: contact.updated_at,
        contact_phone: contact.phone_number.clone(),
        gender: contact.gender,
        age: contact
            .age_on(today)
            .map(|age| u8::try_from(age).unwrap_or(u8::MAX)),
        state: contact.state.clone(),
        marital_status: contact.marital_status,
        tier: contact.customer_tier,
        total_spent: spending.total_spent,
        purchase_count: u32::try_from(spending.purchase_count).unwrap_or(u32::MAX),
        whatsapp_status: contact.whatsapp_status,
        marketing_opt_in: contact.marketing_opt_in,
        ic_masked: contact.ic.as_ref().map(|ic| ic.masked.clone()),
        reason: reason.into(),
    })
}
