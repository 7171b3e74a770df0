//! A reviewer's decision on a receipt that was pending review, applied in the contact's
//! shard like any event: approved (perhaps with a corrected amount, date or merchant), the
//! purchase counts toward spend and tier exactly as a trusted receipt would; rejected, it
//! never counts. A purchase the ledger already counts is never taken back or counted again,
//! whatever decisions arrive (two reviewers, a replayed decision).

use crate::domain::campaign::eligibility::SERVICE_WINDOW;
use crate::domain::contact::{Contact, WhatsappStatus};
use crate::domain::purchase::PurchaseStatus;
use crate::provider::OutboundContent;
use crate::topics::inbound::{Business, PurchaseReview};
use crate::topics::outbound::{Origin, OutboundRequest};

use super::apply::{business_number, ApplyContext, Effects};
use super::apply_ocr::{count_purchase, purchase_event, upgrade_note};

pub fn apply_review(
    contact: &mut Contact,
    business: &Business,
    review: &PurchaseReview,
    key: &str,
    ctx: &ApplyContext<'_>,
    effects: &mut Effects,
) {
    let purchase = &review.purchase;
    let decided = matches!(
        purchase.status,
        PurchaseStatus::Counted | PurchaseStatus::Rejected
    );
    if !decided || contact.purchases.contains(&purchase.purchase_id) {
        return;
    }
    effects
        .events
        .push(purchase_event(contact, business, purchase, review.at));
    effects.purchases.push(purchase.clone());
    let total = format!("RM {}", purchase.amount);
    let reply = if purchase.status == PurchaseStatus::Counted {
        let Some(before) =
            count_purchase(contact, business, review.at, purchase, key, ctx, effects)
        else {
            return;
        };
        format!(
            "Your receipt ({total}, {}) has been checked and counted. Total spent: RM {}. Your tier: {}.{}",
            purchase.purchased_on.format("%d/%m/%Y"),
            contact.spending().total_spent,
            contact.customer_tier.as_str(),
            upgrade_note(contact, before)
        )
    } else {
        format!(
            "We could not accept your receipt ({total}) after checking it. Please send a clearer photo of the whole receipt if you think this is wrong."
        )
    };
    // Free-form text reaches the customer only inside the customer-service window, never
    // after they opted out, and only from a business number (none configured: not told).
    let in_window = contact
        .interactions
        .last_interaction
        .is_some_and(|seen| ctx.now - seen < SERVICE_WINDOW);
    if !review.notify
        || !in_window
        || business.phone_number_id.is_empty()
        || contact.whatsapp_status == WhatsappStatus::Unsubscribed
    {
        return;
    }
    contact.interactions.outbound_count += 1;
    contact.interactions.last_outbound = contact.interactions.last_interaction;
    effects.replies.push(OutboundRequest {
        request_id: format!("review:{}", review.review_id),
        phone_number_id: business.phone_number_id.clone(),
        business_number: business_number(business),
        to: contact.phone_number.clone(),
        content: OutboundContent::Text {
            body: reply,
            preview_url: false,
        },
        origin: Origin::Operator,
        rule: Some("receipt_review".into()),
        campaign_id: None,
        in_reply_to: None,
        created_at: ctx.now,
    });
}
