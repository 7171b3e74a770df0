//! crm.dlq: poison records with the reason they failed. The payload is the original bytes
//! (or none, when too large, with its size in a header); the key is the original record's
//! key; the headers below say why and where from. The records are built by
//! [`crate::storage::bus::dead_letter`].

pub const TOPIC: &str = "crm.dlq";

pub const HEADER_ERROR: &str = "x-error";
pub const HEADER_ERROR_KIND: &str = "x-error-kind";
pub const HEADER_ORIGINAL_TOPIC: &str = "x-original-topic";
pub const HEADER_ORIGINAL_PARTITION: &str = "x-original-partition";
pub const HEADER_ORIGINAL_OFFSET: &str = "x-original-offset";
/// Set when the payload was left out (its size in bytes).
pub const HEADER_PAYLOAD_OMITTED: &str = "x-payload-omitted-bytes";
/// Where an input that never reached a topic came from (e.g. `webhook:whatsapp`).
pub const HEADER_SOURCE: &str = "x-source";
/// The error kind of an output record the bus refused.
pub const KIND_OUTPUT_REFUSED: &str = "output_refused";
