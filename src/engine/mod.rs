//! The stream engine: supervised ractor actors between the bus topics and the stores.
//! Every consuming role runs on one skeleton ([`consumer`]: poll, submit, join; commits
//! of the finished prefix; revocation, leases, backpressure and dead letters) with a
//! strategy of its own:
//!
//! - [`inbound`]: wa.inbound → contact [`shard`]s under a ractor factory
//!   ([`shard_pool`]; write-behind, per-contact order) →
//!   crm.events, wa.outbound, crm.ocr.jobs, the contact store; commits only the finished
//!   prefix ([`offsets`]); abandons the work of partitions revoked past their deadline
//!   ([`Leases`](crate::storage::bus::Leases)).
//! - [`ocr_role`]: crm.ocr.jobs → photo → Tesseract → crm.ocr.results (the shards apply
//!   them) and crm.events.
//! - [`sender`]: wa.outbound → the WhatsApp provider, rate-limited, claimed once.
//! - [`analytics`]: crm.events → the event sink in batches.
//! - [`supervisor`]: restarts failed roles; drains them in order on shutdown.
//! - [`lag`]: consumer lag per group, for the dashboards.
//! - [`apply`], [`apply_ocr`]: the pure effect of one inbound event or OCR result on its
//!   contact.
//!
//! Process assembly (backends, HTTP, which roles run) is [`crate::app`]'s.

pub mod analytics;
pub mod apply;
pub mod apply_campaign;
pub mod apply_ocr;
pub mod apply_review;
pub mod campaign_sender;
pub mod changelog;
pub mod consumer;
mod error;
pub mod health;
pub mod inbound;
pub mod lag;
pub mod messaging_limit;
pub mod ocr_attempts;
pub mod ocr_role;
pub mod offsets;
pub mod outputs;
pub mod retention;
pub mod sender;
pub mod shard;
pub mod shard_pool;
pub mod supervisor;
pub mod triggers;

pub use error::EngineError;
