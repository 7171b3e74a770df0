//! Pure front end of the WhatsApp Cloud API webhook ingress: signature verification, the GET
//! subscription handshake, and splitting a POST body into typed [`crate::topics::inbound::InboundEvent`]s.
//! The HTTP routes that call into these functions live in [`http`]; the rest is pure.

pub mod click;
pub mod envelope;
pub mod http;
pub mod parse;
pub mod signature;
pub mod verification;
pub mod wabot;

pub use parse::{parse_webhook, ParseError, ParsedWebhook, RejectedItem, SkippedChange};
pub use signature::{sign, verify_signature, MalformedSignature, SignatureError};
pub use verification::{verify_subscription, Forbidden};
