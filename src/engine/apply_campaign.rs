//! What campaign events do to a contact, as pure functions beside [`super::apply`]: a send's
//! outcome becomes a campaign touch (or changes the contact for codes that concern it), a
//! delivery report or a click moves the campaign's funnel, and a counted purchase converts
//! the campaigns that reached the contact within their attribution window.

use chrono::{DateTime, Utc};

use crate::domain::campaign::{FunnelStep, RecipientUpdate};
use crate::domain::contact::{ConsentChange, Contact, WhatsappStatus};
use crate::domain::message::DeliveryStatus;
use crate::domain::money::Money;
use crate::storage::sink::{AnalyticsEvent, CampaignSendEvent, SendOutcome};
use crate::topics::inbound::{Business, CampaignSendOutcome, CampaignSendResult, LinkClick};

use super::apply::{business_number, snapshot, ApplyContext, Effects, UNDELIVERABLE};

/// Provider error code: the customer stopped marketing messages from this business.
pub const MARKETING_STOPPED: i64 = 131_050;

/// A campaign's step for this contact, to record in the campaign's ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignStep {
    pub campaign_id: String,
    pub update: RecipientUpdate,
}

impl From<FunnelStep> for CampaignStep {
    fn from(step: FunnelStep) -> Self {
        CampaignStep {
            campaign_id: step.campaign_id,
            update: step.update,
        }
    }
}

pub fn apply_send_outcome(
    contact: &mut Contact,
    outcome: &CampaignSendOutcome,
    key: &str,
    ctx: &ApplyContext<'_>,
    effects: &mut Effects,
) {
    match &outcome.result {
        CampaignSendResult::Sent {
            wamid,
            attribution_days,
        } => {
            if contact.campaign_touches.record_send(
                &outcome.campaign_id,
                wamid,
                outcome.at,
                *attribution_days,
            ) {
                let stats = &mut contact.interactions;
                stats.outbound_count += 1;
                stats.last_outbound = Some(
                    stats
                        .last_outbound
                        .map_or(outcome.at, |t| t.max(outcome.at)),
                );
            }
        }
        CampaignSendResult::Failed { code: Some(code) } => match *code {
            UNDELIVERABLE if contact.whatsapp_status == WhatsappStatus::Active => {
                contact.whatsapp_status = WhatsappStatus::Blocked;
                effects
                    .events
                    .push(snapshot(contact, "blocked", key, ctx.today));
            }
            MARKETING_STOPPED => {
                stop_marketing(contact, outcome.at, "provider:131050", key, ctx, effects)
            }
            _ => {}
        },
        CampaignSendResult::Failed { code: None } => {}
    }
}

/// Records a marketing consent given or withdrawn at `at` through `source`. A withdrawal
/// always applies (unless a later change is on record). A grant applies when it is later
/// than the last change and, unless it comes from the customer themselves (`by_customer`:
/// START, the consent question), only if the customer never withdrew: a retailer's form or
/// import does not re-subscribe someone who said stop. Returns whether the contact changed.
pub fn record_consent(
    contact: &mut Contact,
    opt_in: bool,
    at: DateTime<Utc>,
    source: &str,
    wording: Option<&str>,
    by_customer: bool,
) -> bool {
    if contact.consent_change.as_ref().is_some_and(|c| c.at > at) {
        return false;
    }
    if opt_in {
        let withdrew = contact.whatsapp_status == WhatsappStatus::Unsubscribed
            || (!contact.marketing_opt_in && contact.consent_change.is_some());
        if contact.marketing_opt_in || (withdrew && !by_customer) {
            return false;
        }
        if contact.whatsapp_status == WhatsappStatus::Unsubscribed {
            // Only the customer gets here: answering the question re-subscribes.
            contact.whatsapp_status = WhatsappStatus::Active;
        }
    } else if !contact.marketing_opt_in && contact.consent_change.is_some() {
        return false;
    }
    contact.marketing_opt_in = opt_in;
    contact.consent_change = Some(ConsentChange {
        at,
        source: source.to_string(),
        wording: wording.map(str::to_string),
    });
    true
}

/// The customer withdrew consent to marketing (131050, a `user_preferences` webhook): it
/// wins over any earlier opt-in, and never re-subscribes or unsubscribes them otherwise.
pub fn stop_marketing(
    contact: &mut Contact,
    at: DateTime<Utc>,
    source: &str,
    key: &str,
    ctx: &ApplyContext<'_>,
    effects: &mut Effects,
) {
    let newer = contact.consent_change.as_ref().is_none_or(|c| at >= c.at);
    if contact.marketing_opt_in && newer {
        contact.marketing_opt_in = false;
        contact.consent_change = Some(ConsentChange {
            at,
            source: source.to_string(),
            wording: None,
        });
        effects
            .events
            .push(snapshot(contact, "marketing_stopped", key, ctx.today));
    }
}

/// A delivery report of one of the contact's messages: the campaign it belongs to, if any,
/// and the step it makes (recorded in `effects`).
pub fn apply_status(
    contact: &mut Contact,
    wamid: &str,
    status: DeliveryStatus,
    at: DateTime<Utc>,
    effects: &mut Effects,
) -> Option<String> {
    let campaign = contact
        .campaign_touches
        .iter()
        .find(|t| t.wamid == wamid)
        .map(|t| t.campaign_id.clone())?;
    if let Some(step) = contact.campaign_touches.status(wamid, status, at) {
        effects.campaign_steps.push(step.into());
    }
    Some(campaign)
}

pub fn apply_click(
    contact: &mut Contact,
    business: &Business,
    click: &LinkClick,
    effects: &mut Effects,
) {
    if let Some(step) = contact.campaign_touches.click(&click.campaign_id, click.at) {
        effects.campaign_steps.push(step.into());
    }
    effects.events.push(campaign_event(
        contact,
        business,
        &click.campaign_id,
        &format!("click:{}", click.click_id),
        click.at,
        SendOutcome::Clicked,
        None,
    ));
}

/// A counted purchase made at `at`: converts the campaigns whose window it falls in.
pub fn apply_purchase(
    contact: &mut Contact,
    business: &Business,
    at: DateTime<Utc>,
    amount: Money,
    effects: &mut Effects,
) {
    for step in contact.campaign_touches.purchase(at, amount) {
        effects.events.push(campaign_event(
            contact,
            business,
            &step.campaign_id,
            &format!(
                "converted:{}:{}",
                step.campaign_id,
                contact.phone_number.as_str()
            ),
            at,
            SendOutcome::Converted,
            Some(amount),
        ));
        effects.campaign_steps.push(step.into());
    }
}

fn campaign_event(
    contact: &Contact,
    business: &Business,
    campaign_id: &str,
    cause: &str,
    at: DateTime<Utc>,
    outcome: SendOutcome,
    revenue: Option<Money>,
) -> AnalyticsEvent {
    AnalyticsEvent::CampaignSend(CampaignSendEvent {
        revenue,
        ..CampaignSendEvent::step(
            cause,
            at,
            campaign_id,
            &contact.phone_number,
            &business_number(business),
            outcome,
        )
    })
}

/// A counted purchase may start campaigns: a tier upgrade (one send per tier reached) and
/// a first purchase (once). Consent, caps, quiet hours and the window are checked when the
/// send goes, as for any campaign.
pub fn trigger_on_purchase(
    contact: &mut Contact,
    business: &Business,
    tier_before: crate::domain::tier::Tier,
    ctx: &ApplyContext<'_>,
    effects: &mut Effects,
) {
    use crate::domain::campaign::Trigger;
    let upgraded = contact.customer_tier > tier_before;
    let first = contact.spending().purchase_count == 1;
    for active in ctx.event_triggers {
        let occurrence = match active.trigger {
            Trigger::TierUpgrade if upgraded => contact.customer_tier as u32,
            Trigger::FirstPurchase if first => 1,
            _ => continue,
        };
        effects.campaign_steps.push(CampaignStep {
            campaign_id: active.campaign_id.clone(),
            update: RecipientUpdate::Planned { at: ctx.now },
        });
        effects
            .triggered
            .push(crate::topics::campaign::CampaignSend {
                campaign_id: active.campaign_id.clone(),
                to: contact.phone_number.clone(),
                phone_number_id: business.phone_number_id.clone(),
                business_number: business_number(business),
                attempt: 0,
                occurrence: Some(occurrence),
                cap_retry: 0,
                retry_of: None,
                planned_at: ctx.now,
            });
    }
}
