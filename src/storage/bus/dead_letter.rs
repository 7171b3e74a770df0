//! Poison messages go to the dead-letter topic with the original bytes and why they failed,
//! so nothing is lost and an operator can replay them after a fix.

use super::{Message, Record};

pub const HEADER_ERROR: &str = "x-error";
pub const HEADER_ERROR_KIND: &str = "x-error-kind";
pub const HEADER_ORIGINAL_TOPIC: &str = "x-original-topic";
pub const HEADER_ORIGINAL_PARTITION: &str = "x-original-partition";
pub const HEADER_ORIGINAL_OFFSET: &str = "x-original-offset";

/// A dead-letter record for `message`: same key and payload, its headers, and the reason.
/// `kind` is a stable machine-readable reason (for metrics labels); `error` the full text.
pub fn dead_letter(dlq_topic: &str, message: &Message, kind: &str, error: &str) -> Record {
    let mut record = Record::new(dlq_topic, message.key.clone(), message.payload.clone());
    record.headers = message.headers.clone();
    record
        .with_header(HEADER_ERROR, error.as_bytes().to_vec())
        .with_header(HEADER_ERROR_KIND, kind.as_bytes().to_vec())
        .with_header(HEADER_ORIGINAL_TOPIC, message.topic.as_bytes().to_vec())
        .with_header(
            HEADER_ORIGINAL_PARTITION,
            message.partition.to_string().into_bytes(),
        )
        .with_header(
            HEADER_ORIGINAL_OFFSET,
            message.offset.to_string().into_bytes(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_original_bytes_and_says_why() {
        let message = Message {
            topic: "wa.inbound".into(),
            partition: 3,
            offset: 42,
            key: b"60123456789".to_vec(),
            payload: b"{not json".to_vec(),
            headers: vec![("trace".into(), b"abc".to_vec())],
            timestamp_ms: 0,
        };
        let record = dead_letter(
            "crm.dlq",
            &message,
            "malformed_json",
            "expected value at line 1",
        );
        assert_eq!(record.topic, "crm.dlq");
        assert_eq!(record.key, message.key);
        assert_eq!(record.payload, message.payload);
        let header = |name: &str| {
            record
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
        };
        assert_eq!(header("trace").as_deref(), Some("abc"));
        assert_eq!(header(HEADER_ERROR_KIND).as_deref(), Some("malformed_json"));
        assert_eq!(header(HEADER_ORIGINAL_OFFSET).as_deref(), Some("42"));
        assert_eq!(header(HEADER_ORIGINAL_PARTITION).as_deref(), Some("3"));
        assert_eq!(header(HEADER_ORIGINAL_TOPIC).as_deref(), Some("wa.inbound"));
    }
}
