//! The RowBinary rows of each event table, both ways.

use super::*;

#[derive(Default)]
pub(super) struct Rows {
    pub(super) inbound: Vec<InboundRow>,
    pub(super) outbound: Vec<OutboundRow>,
    pub(super) statuses: Vec<StatusRow>,
    pub(super) purchases: Vec<PurchaseRow>,
    pub(super) ocr: Vec<OcrRow>,
    pub(super) snapshots: Vec<SnapshotRow>,
    pub(super) sends: Vec<SendRow>,
    pub(super) accesses: Vec<AccessRow>,
}

impl Rows {
    /// Every row's contact column, to put pseudonyms in.
    pub(super) fn contacts_mut(&mut self) -> impl Iterator<Item = &mut String> {
        self.inbound
            .iter_mut()
            .map(|r| &mut r.contact_phone)
            .chain(self.outbound.iter_mut().map(|r| &mut r.contact_phone))
            .chain(self.statuses.iter_mut().map(|r| &mut r.contact_phone))
            .chain(self.purchases.iter_mut().map(|r| &mut r.contact_phone))
            .chain(self.ocr.iter_mut().map(|r| &mut r.contact_phone))
            .chain(self.snapshots.iter_mut().map(|r| &mut r.contact_phone))
            .chain(self.sends.iter_mut().map(|r| &mut r.contact_phone))
            .chain(
                self.accesses
                    .iter_mut()
                    .map(|r| &mut r.contact_phone)
                    .filter(|c| !c.is_empty()),
            )
    }

    pub(super) fn push(&mut self, event: &AnalyticsEvent) -> Result<(), SinkError> {
        let invalid = |detail: String| SinkError::InvalidEvent {
            event_id: event.event_id().to_string(),
            detail,
        };
        let occurred_at = seconds(event.occurred_at()).map_err(invalid)?;
        match event {
            AnalyticsEvent::InboundMessage(e) => self.inbound.push(InboundRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                contact_phone: e.contact_phone.as_str().to_string(),
                business_number: e.business_number.clone(),
                wamid: e.wamid.clone(),
                message_type: e.message_type.clone(),
                text: text(&e.text),
                context_wamid: text(&e.context_wamid),
                campaign_id: text(&e.campaign_id),
            }),
            AnalyticsEvent::OutboundMessage(e) => self.outbound.push(OutboundRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                contact_phone: e.contact_phone.as_str().to_string(),
                business_number: e.business_number.clone(),
                wamid: text(&e.wamid),
                message_type: e.message_type.clone(),
                template_name: text(&e.template_name),
                body: text(&e.body),
                campaign_id: text(&e.campaign_id),
                origin: e.origin.as_str().to_string(),
            }),
            AnalyticsEvent::MessageStatus(e) => self.statuses.push(StatusRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                contact_phone: e.contact_phone.as_str().to_string(),
                business_number: e.business_number.clone(),
                wamid: e.wamid.clone(),
                status: e.status.as_str().to_string(),
                campaign_id: text(&e.campaign_id),
                error_code: e.error_code,
                error_title: text(&e.error_title),
            }),
            AnalyticsEvent::Purchase(e) => self.purchases.push(PurchaseRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                contact_phone: e.contact_phone.as_str().to_string(),
                business_number: e.business_number.clone(),
                purchase_id: e.purchase_id.clone(),
                purchase_date: days(e.purchase_date).map_err(invalid)?,
                merchant: text(&e.merchant),
                receipt_no: text(&e.receipt_no),
                total: decimal(e.total).map_err(invalid)?,
                item_count: e.item_count,
                status: e.status.as_str().to_string(),
                ocr_confidence: e.ocr_confidence,
                campaign_id: text(&e.campaign_id),
            }),
            AnalyticsEvent::OcrResult(e) => self.ocr.push(OcrRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                contact_phone: e.contact_phone.as_str().to_string(),
                media_id: e.media_id.clone(),
                kind: e.kind.as_str().to_string(),
                status: e.status.as_str().to_string(),
                confidence: e.confidence,
                duration_ms: e.duration_ms,
                fields_json: e.fields_json.clone(),
                error: text(&e.error),
            }),
            AnalyticsEvent::ContactSnapshot(e) => self.snapshots.push(SnapshotRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                contact_phone: e.contact_phone.as_str().to_string(),
                gender: e.gender.map(|g| g.as_str()).unwrap_or("").to_string(),
                age: e.age,
                state: text(&e.state),
                marital_status: e
                    .marital_status
                    .map(|m| m.as_str())
                    .unwrap_or("")
                    .to_string(),
                tier: e.tier.as_str().to_string(),
                total_spent: decimal(e.total_spent).map_err(invalid)?,
                purchase_count: e.purchase_count,
                whatsapp_status: e.whatsapp_status.as_str().to_string(),
                marketing_opt_in: u8::from(e.marketing_opt_in),
                ic_masked: text(&e.ic_masked),
                reason: e.reason.clone(),
            }),
            AnalyticsEvent::CampaignSend(e) => self.sends.push(SendRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                campaign_id: e.campaign_id.clone(),
                contact_phone: e.contact_phone.as_str().to_string(),
                business_number: e.business_number.clone(),
                outcome: e.outcome.as_str().to_string(),
                template_name: text(&e.template_name),
                wamid: text(&e.wamid),
                skip_reason: text(&e.skip_reason),
                error_code: e.error_code,
                revenue: decimal(e.revenue.unwrap_or_default()).map_err(invalid)?,
            }),
            AnalyticsEvent::PersonalDataAccess(e) => self.accesses.push(AccessRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                key_id: e.key_id.clone(),
                role: e.role.clone(),
                method: e.method.clone(),
                route: e.route.clone(),
                query: text(&e.query),
                contact_phone: e
                    .contact_phone
                    .as_ref()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                status: e.status,
            }),
        }
        Ok(())
    }
}

pub(super) fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

pub(super) fn optional(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// `DateTime` is seconds since the epoch in a UInt32.
pub(super) fn seconds(at: DateTime<Utc>) -> Result<u32, String> {
    u32::try_from(at.timestamp())
        .map_err(|_| format!("time {at} is outside ClickHouse DateTime (1970 to 2106)"))
}

pub(super) fn time_from_seconds(seconds: u32) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp(i64::from(seconds), 0).ok_or_else(|| format!("bad time {seconds}"))
}

pub(super) const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(date) => date,
    None => panic!("epoch"),
};

/// `Date` is days since 1970-01-01 in a UInt16.
pub(super) fn days(date: NaiveDate) -> Result<u16, String> {
    u16::try_from((date - EPOCH).num_days())
        .map_err(|_| format!("date {date} is outside ClickHouse Date (1970 to 2149)"))
}

pub(super) fn date_from_days(days: u16) -> Result<NaiveDate, String> {
    EPOCH
        .checked_add_days(chrono::Days::new(u64::from(days)))
        .ok_or_else(|| format!("bad date {days}"))
}

/// `Decimal(18, 2)` is the amount in sen as an Int64, at most 18 digits.
pub(super) fn decimal(amount: Money) -> Result<i64, String> {
    const LIMIT: i64 = 1_000_000_000_000_000_000;
    if amount.sen().abs() < LIMIT {
        Ok(amount.sen())
    } else {
        Err(format!("amount {amount} does not fit Decimal(18, 2)"))
    }
}

pub(super) fn uuid(value: &str) -> Result<Uuid, String> {
    Uuid::parse_str(value).map_err(|e| format!("event_id {value:?}: {e}"))
}

pub(super) fn phone(value: &str) -> Result<PhoneNumber, String> {
    PhoneNumber::from_e164_digits(value).map_err(|e| format!("phone {value:?}: {e}"))
}

pub(super) fn parsed<T: std::str::FromStr>(what: &str, value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| format!("{what} {value:?}: {e}"))
}

pub(super) fn optional_parsed<T: std::str::FromStr>(
    what: &str,
    value: &str,
) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    if value.is_empty() {
        Ok(None)
    } else {
        parsed(what, value).map(Some)
    }
}

#[derive(Row, Serialize, Deserialize)]
pub(super) struct InboundRow {
    event_id: String,
    occurred_at: u32,
    contact_phone: String,
    business_number: String,
    wamid: String,
    message_type: String,
    text: String,
    context_wamid: String,
    campaign_id: String,
}

impl TryFrom<InboundRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: InboundRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::InboundMessage(InboundMessageEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            contact_phone: phone(&r.contact_phone)?,
            business_number: r.business_number,
            wamid: r.wamid,
            message_type: r.message_type,
            text: optional(r.text),
            context_wamid: optional(r.context_wamid),
            campaign_id: optional(r.campaign_id),
        }))
    }
}

#[derive(Row, Serialize, Deserialize)]
pub(super) struct OutboundRow {
    event_id: String,
    occurred_at: u32,
    contact_phone: String,
    business_number: String,
    wamid: String,
    message_type: String,
    template_name: String,
    body: String,
    campaign_id: String,
    origin: String,
}

impl TryFrom<OutboundRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: OutboundRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::OutboundMessage(OutboundMessageEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            contact_phone: phone(&r.contact_phone)?,
            business_number: r.business_number,
            wamid: optional(r.wamid),
            message_type: r.message_type,
            template_name: optional(r.template_name),
            body: optional(r.body),
            campaign_id: optional(r.campaign_id),
            origin: r
                .origin
                .parse()
                .map_err(|_| format!("unknown origin {:?}", r.origin))?,
        }))
    }
}

#[derive(Row, Serialize, Deserialize)]
pub(super) struct StatusRow {
    event_id: String,
    occurred_at: u32,
    contact_phone: String,
    business_number: String,
    wamid: String,
    status: String,
    campaign_id: String,
    error_code: Option<i64>,
    error_title: String,
}

impl TryFrom<StatusRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: StatusRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::MessageStatus(MessageStatusEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            contact_phone: phone(&r.contact_phone)?,
            business_number: r.business_number,
            wamid: r.wamid,
            status: DeliveryStatus::parse(&r.status)
                .ok_or_else(|| format!("status {:?}", r.status))?,
            campaign_id: optional(r.campaign_id),
            error_code: r.error_code,
            error_title: optional(r.error_title),
        }))
    }
}

#[derive(Row, Serialize, Deserialize)]
pub(super) struct PurchaseRow {
    event_id: String,
    occurred_at: u32,
    contact_phone: String,
    business_number: String,
    purchase_id: String,
    purchase_date: u16,
    merchant: String,
    receipt_no: String,
    total: i64,
    item_count: u32,
    status: String,
    ocr_confidence: Option<f32>,
    campaign_id: String,
}

pub(super) fn purchase_status(value: &str) -> Result<PurchaseStatus, String> {
    [
        PurchaseStatus::Counted,
        PurchaseStatus::PendingReview,
        PurchaseStatus::Rejected,
    ]
    .into_iter()
    .find(|s| s.as_str() == value)
    .ok_or_else(|| format!("purchase status {value:?}"))
}

impl TryFrom<PurchaseRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: PurchaseRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::Purchase(PurchaseEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            contact_phone: phone(&r.contact_phone)?,
            business_number: r.business_number,
            purchase_id: r.purchase_id,
            purchase_date: date_from_days(r.purchase_date)?,
            merchant: optional(r.merchant),
            receipt_no: optional(r.receipt_no),
            total: Money::from_sen(r.total),
            item_count: r.item_count,
            status: purchase_status(&r.status)?,
            ocr_confidence: r.ocr_confidence,
            campaign_id: optional(r.campaign_id),
        }))
    }
}

#[derive(Row, Serialize, Deserialize)]
pub(super) struct OcrRow {
    event_id: String,
    occurred_at: u32,
    contact_phone: String,
    media_id: String,
    kind: String,
    status: String,
    confidence: f32,
    duration_ms: u32,
    fields_json: String,
    error: String,
}

impl TryFrom<OcrRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: OcrRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::OcrResult(OcrResultEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            contact_phone: phone(&r.contact_phone)?,
            media_id: r.media_id,
            kind: parsed("OCR kind", &r.kind)?,
            status: parsed("OCR status", &r.status)?,
            confidence: r.confidence,
            duration_ms: r.duration_ms,
            fields_json: r.fields_json,
            error: optional(r.error),
        }))
    }
}

#[derive(Row, Serialize, Deserialize)]
pub(super) struct SnapshotRow {
    event_id: String,
    occurred_at: u32,
    contact_phone: String,
    gender: String,
    age: Option<u8>,
    state: String,
    marital_status: String,
    tier: String,
    total_spent: i64,
    purchase_count: u32,
    whatsapp_status: String,
    marketing_opt_in: u8,
    ic_masked: String,
    reason: String,
}

impl TryFrom<SnapshotRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: SnapshotRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::ContactSnapshot(ContactSnapshotEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            contact_phone: phone(&r.contact_phone)?,
            gender: optional_parsed("gender", &r.gender)?,
            age: r.age,
            state: optional(r.state),
            marital_status: optional_parsed("marital status", &r.marital_status)?,
            tier: parsed("tier", &r.tier)?,
            total_spent: Money::from_sen(r.total_spent),
            purchase_count: r.purchase_count,
            whatsapp_status: parsed::<WhatsappStatus>("whatsapp status", &r.whatsapp_status)?,
            marketing_opt_in: r.marketing_opt_in != 0,
            ic_masked: optional(r.ic_masked),
            reason: r.reason,
        }))
    }
}

#[derive(Row, Serialize, Deserialize)]
pub(super) struct SendRow {
    event_id: String,
    occurred_at: u32,
    campaign_id: String,
    contact_phone: String,
    business_number: String,
    outcome: String,
    template_name: String,
    wamid: String,
    skip_reason: String,
    error_code: Option<i64>,
    revenue: i64,
}

impl TryFrom<SendRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: SendRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::CampaignSend(CampaignSendEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            campaign_id: r.campaign_id,
            contact_phone: phone(&r.contact_phone)?,
            business_number: r.business_number,
            outcome: SendOutcome::parse(&r.outcome)
                .ok_or_else(|| format!("send outcome {:?}", r.outcome))?,
            template_name: optional(r.template_name),
            wamid: optional(r.wamid),
            skip_reason: optional(r.skip_reason),
            error_code: r.error_code,
            revenue: (r.revenue != 0).then(|| Money::from_sen(r.revenue)),
        }))
    }
}

#[derive(Row, Serialize, Deserialize)]
pub(super) struct AccessRow {
    event_id: String,
    occurred_at: u32,
    key_id: String,
    role: String,
    method: String,
    route: String,
    query: String,
    /// Empty when the route names no contact.
    contact_phone: String,
    status: u16,
}

impl TryFrom<AccessRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: AccessRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::PersonalDataAccess(
            PersonalDataAccessEvent {
                event_id: uuid(&r.event_id)?,
                occurred_at: time_from_seconds(r.occurred_at)?,
                key_id: r.key_id,
                role: r.role,
                method: r.method,
                route: r.route,
                query: optional(r.query),
                contact_phone: match r.contact_phone.as_str() {
                    "" => None,
                    digits => Some(phone(digits)?),
                },
                status: r.status,
            },
        ))
    }
}

/// A row read back, whose contact column may hold a pseudonym.
pub(super) trait ContactColumn {
    fn contact_phone_mut(&mut self) -> &mut String;
}

macro_rules! contact_column {
    ($($row:ty),*) => {
        $(impl ContactColumn for $row {
            fn contact_phone_mut(&mut self) -> &mut String {
                &mut self.contact_phone
            }
        })*
    };
}

contact_column!(
    InboundRow,
    OutboundRow,
    StatusRow,
    PurchaseRow,
    OcrRow,
    SnapshotRow,
    SendRow,
    AccessRow
);
