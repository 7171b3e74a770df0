//! What an OCR result does to its contact, as a pure function (the OCR role already did the
//! I/O: protecting and linking the IC, claiming the receipt's fingerprint). A MyKad fills
//! the profile from the number (date of birth, gender, state) and the card (name); a
//! receipt becomes a purchase that counts toward spending and tier unless it is a
//! duplicate or needs review. Every outcome is answered, unless the contact opted out.

use chrono::{DateTime, Utc};

use crate::domain::contact::{Contact, WhatsappStatus};
use crate::domain::purchase::{Purchase, PurchaseStatus};
use crate::domain::spending::Applied;
use crate::domain::tier::Tier;
use crate::provider::OutboundContent;
use crate::storage::sink::{AnalyticsEvent, PurchaseEvent};
use crate::topics::inbound::Business;

use super::apply::{business_number, snapshot, ApplyContext, Effects, Outcome};
use crate::topics::event_id;
use crate::topics::ocr::{
    IcLinkOutcome, MyKadReading, OcrKind, OcrOutcome, OcrResult, ReceiptReading,
};
use crate::topics::outbound::{Origin, OutboundRequest};

/// What a contact's dedupe window records an OCR result by.
pub fn ocr_dedupe_key(result: &OcrResult) -> String {
    format!("ocr:{}", result.job_id)
}

pub fn apply_ocr(contact: &mut Contact, result: &OcrResult, ctx: &ApplyContext<'_>) -> Outcome {
    let key = ocr_dedupe_key(result);
    if !contact.applied_events.insert(&key) {
        return Outcome::Duplicate;
    }
    contact.updated_at = ctx.now;
    let mut effects = Effects::default();
    let reply = match &result.outcome {
        OcrOutcome::MyKad(reading) => register(contact, reading, &key, ctx, &mut effects),
        OcrOutcome::Receipt(reading) => purchase(contact, result, reading, &key, ctx, &mut effects),
        OcrOutcome::Rejected { read_as, reason } => {
            let what = match read_as {
                OcrKind::Ic => "your MyKad",
                OcrKind::Receipt => "your receipt",
                OcrKind::Unknown => "a MyKad or a receipt in this photo",
            };
            format!(
                "Sorry, we could not read {what} ({reason}). Please send a clearer photo: flat, in good light, the whole card or receipt in view.\nMaaf, gambar kurang jelas. Sila hantar gambar yang lebih jelas."
            )
        }
    };
    // Free-form text answers the customer's own message, inside the 24 h window. A contact
    // who opted out got one confirmation and nothing more: the photo still counts (profile,
    // purchase, tier), but is not answered until they opt in again.
    if contact.whatsapp_status == WhatsappStatus::Unsubscribed {
        return Outcome::Applied(effects);
    }
    contact.interactions.outbound_count += 1;
    contact.interactions.last_outbound = Some(
        contact
            .interactions
            .last_interaction
            .unwrap_or(result.completed_at),
    );
    // Every message sent for this photo: its id, content and rule differ, nothing else.
    let to = contact.phone_number.clone();
    let reply_to_photo =
        |request_id: String, content: OutboundContent, rule: &str| OutboundRequest {
            request_id,
            phone_number_id: result.business.phone_number_id.clone(),
            business_number: business_number(&result.business),
            to: to.clone(),
            content,
            origin: Origin::Ocr,
            rule: Some(rule.into()),
            campaign_id: None,
            in_reply_to: Some(result.job_id.clone()),
            created_at: ctx.now,
        };
    let rule = match &result.outcome {
        OcrOutcome::MyKad(_) => "mykad",
        OcrOutcome::Receipt(_) => "receipt",
        OcrOutcome::Rejected { .. } => "ocr_rejected",
    };
    let text = OutboundContent::Text {
        body: reply,
        preview_url: false,
    };
    effects
        .replies
        .push(reply_to_photo(format!("ocr:{}", result.job_id), text, rule));
    let registered = effects
        .events
        .iter()
        .any(|e| matches!(e, AnalyticsEvent::ContactSnapshot(s) if s.reason == "registered"));
    if let (true, Some(question)) = (registered, ctx.consent_question) {
        // Asked once: never again after any consent decision.
        if !contact.marketing_opt_in && contact.consent_change.is_none() {
            contact.interactions.outbound_count += 1;
            effects.replies.push(reply_to_photo(
                format!("ocr:{}:consent", result.job_id),
                super::apply::consent_question_content(question),
                "consent_question",
            ));
        }
    }
    if registered && ctx.ask_marital_status && contact.marital_status.is_none() {
        contact.interactions.outbound_count += 1;
        effects.replies.push(reply_to_photo(
            format!("ocr:{}:marital", result.job_id),
            super::apply::marital_question_content(),
            "marital_question",
        ));
    }
    Outcome::Applied(effects)
}

fn register(
    contact: &mut Contact,
    reading: &MyKadReading,
    key: &str,
    ctx: &ApplyContext<'_>,
    effects: &mut Effects,
) -> String {
    let masked = &reading.ic.masked;
    if reading.link == IcLinkOutcome::LinkedToOther {
        // Flagged for a person to look at; the contact's profile is left as it was.
        contact.attributes.insert(
            "ic_conflict".into(),
            serde_json::Value::String(masked.clone()),
        );
        effects
            .events
            .push(snapshot(contact, "ic_conflict", key, ctx.today));
        return format!(
            "This MyKad ({masked}) is already registered to another WhatsApp number, so we did not register it here. Please contact us if this is a mistake."
        );
    }
    contact.ic = Some(reading.ic.clone());
    contact.date_of_birth = Some(reading.birth_date);
    contact.gender = Some(reading.gender);
    if reading.state.is_some() {
        contact.state = reading.state.clone();
    }
    if reading.name.is_some() {
        contact.name = reading.name.clone();
    }
    contact.attributes.remove("ic_conflict");
    effects
        .events
        .push(snapshot(contact, "registered", key, ctx.today));
    let name = reading
        .name
        .as_deref()
        .map(|n| format!(", {n}"))
        .unwrap_or_default();
    format!(
        "Thank you{name}! Your MyKad {masked} is registered.\nTerima kasih! MyKad {masked} anda telah didaftarkan."
    )
}

fn purchase(
    contact: &mut Contact,
    result: &OcrResult,
    reading: &ReceiptReading,
    key: &str,
    ctx: &ApplyContext<'_>,
    effects: &mut Effects,
) -> String {
    let total = format!("RM {}", reading.total);
    if reading.duplicate_of.is_some() {
        return format!("This receipt ({total}) was already recorded, so it is not counted again.");
    }
    let status = if reading.needs_review {
        PurchaseStatus::PendingReview
    } else {
        PurchaseStatus::Counted
    };
    let purchase = Purchase {
        purchase_id: reading.purchase_id.clone(),
        amount: reading.total,
        purchased_on: reading.purchased_on,
        merchant: reading.merchant.clone(),
        receipt_no: reading.receipt_no.clone(),
        item_count: reading.item_count,
        image_sha256: result.image_sha256.clone(),
        ocr_confidence: Some(f64::from(result.confidence)),
        status,
        recorded_at: result.completed_at,
    };
    effects.events.push(purchase_event(
        contact,
        &result.business,
        &purchase,
        result.completed_at,
    ));
    let pending = purchase.status != PurchaseStatus::Counted;
    effects.purchases.push(purchase.clone());
    if pending {
        return format!(
            "We received your receipt ({total}) and will check it before it counts. Thank you!"
        );
    }
    let Some(before) = count_purchase(
        contact,
        &result.business,
        result.completed_at,
        &purchase,
        key,
        ctx,
        effects,
    ) else {
        return format!("This receipt ({total}) was already recorded, so it is not counted again.");
    };
    let spent = contact.spending().total_spent;
    let merchant = reading
        .merchant
        .as_deref()
        .map(|m| format!(" at {m}"))
        .unwrap_or_default();
    let mut reply = format!(
        "Recorded {total}{merchant} on {}. Total spent: RM {spent}. Your tier: {}.",
        reading.purchased_on.format("%d/%m/%Y"),
        contact.customer_tier.as_str()
    );
    reply.push_str(&upgrade_note(contact, before));
    reply
}

/// The line that tells a customer their purchase moved them up a tier ("" when it did not).
pub(super) fn upgrade_note(contact: &Contact, before: Tier) -> String {
    if contact.customer_tier > before {
        format!(
            "\nCongratulations, you are now {}!",
            contact.customer_tier.as_str()
        )
    } else {
        String::new()
    }
}

/// The analytics event of a purchase in its current state: one per (purchase, status), so
/// a replay collapses and a review's decision is a later event of the same purchase.
pub(super) fn purchase_event(
    contact: &Contact,
    business: &Business,
    purchase: &Purchase,
    at: DateTime<Utc>,
) -> AnalyticsEvent {
    AnalyticsEvent::Purchase(PurchaseEvent {
        event_id: event_id(&format!(
            "purchase:{}:{}",
            purchase.purchase_id,
            purchase.status.as_str()
        )),
        occurred_at: at,
        contact_phone: contact.phone_number.clone(),
        business_number: business_number(business),
        purchase_id: purchase.purchase_id.clone(),
        purchase_date: purchase.purchased_on,
        merchant: purchase.merchant.clone(),
        receipt_no: purchase.receipt_no.clone(),
        total: purchase.amount,
        item_count: purchase.item_count,
        status: purchase.status,
        ocr_confidence: purchase.ocr_confidence.map(|c| c as f32),
        campaign_id: None,
    })
}

/// Counts a purchase (status counted) toward spend and tier: the ledger, the tier, the
/// campaigns it converts, the triggers it fires, the contact's snapshot. Returns the tier
/// before, or `None` when the ledger had it already (nothing counted twice).
pub(super) fn count_purchase(
    contact: &mut Contact,
    business: &Business,
    at: DateTime<Utc>,
    purchase: &Purchase,
    key: &str,
    ctx: &ApplyContext<'_>,
    effects: &mut Effects,
) -> Option<Tier> {
    let event = purchase.counted_event()?;
    let recorded = contact.purchases.apply(&event);
    let before = contact.customer_tier;
    contact.customer_tier = ctx.tiers.tier_for(&contact.purchases, ctx.today);
    if recorded == Applied::AlreadyRecorded {
        // Its purchase row may be stored without the contact's row that counted it (purchases
        // are written first, and a replay reloads the ledger from them): the tier above is
        // then the one that row missed.
        if contact.customer_tier != before {
            effects
                .events
                .push(snapshot(contact, "purchase", key, ctx.today));
        }
        return None;
    }
    super::apply_campaign::apply_purchase(contact, business, at, purchase.amount, effects);
    super::apply_campaign::trigger_on_purchase(contact, business, before, ctx, effects);
    effects
        .events
        .push(snapshot(contact, "purchase", key, ctx.today));
    Some(before)
}
