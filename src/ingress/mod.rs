//! Pure front end of the WhatsApp Cloud API webhook ingress: signature verification, the GET
//! subscription handshake, and splitting a POST body into typed [`events::InboundEvent`]s.
//! No I/O here: the HTTP server and the Kafka producer call into these functions.

pub mod envelope;
pub mod events;
pub mod parse;
pub mod signature;
pub mod verification;

pub use events::{
    ApiError, Business, EventPayload, InboundEvent, InboundMessage, MessageKind, ReplyContext,
    ReportedStatus, StatusReport,
};
pub use parse::{parse_webhook, ParseError, ParsedWebhook, SkippedChange};
pub use signature::{sign, verify_signature, MalformedSignature, SignatureError};
pub use verification::{verify_subscription, Forbidden};
