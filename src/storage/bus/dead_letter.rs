//! Poison messages go to the dead-letter topic with the original bytes and why they failed,
//! so nothing is lost and an operator can replay them after a fix.

use super::{Message, Record};

pub use crate::topics::dead_letter::*;

/// Why a record is in the dead-letter topic: `kind` a stable machine-readable reason (for
/// metrics labels), `error` the full text.
fn with_reason(record: Record, kind: &str, error: &str) -> Record {
    record
        .with_header(HEADER_ERROR, error.as_bytes().to_vec())
        .with_header(HEADER_ERROR_KIND, kind.as_bytes().to_vec())
}

/// A dead-letter record for `message`: same key and payload, its headers, and the reason.
/// `kind` is a stable machine-readable reason (for metrics labels); `error` the full text.
pub fn dead_letter(dlq_topic: &str, message: &Message, kind: &str, error: &str) -> Record {
    let mut record = Record::new(dlq_topic, message.key.clone(), message.payload.clone());
    record.headers = message.headers.clone();
    with_reason(record, kind, error)
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

/// A dead-letter record for an input refused before it reached any topic (an unreadable
/// item of a webhook body): its bytes as received, where it came from and why.
pub fn rejected_input(
    dlq_topic: &str,
    source: &str,
    key: &[u8],
    payload: Vec<u8>,
    kind: &str,
    error: &str,
) -> Record {
    with_reason(Record::new(dlq_topic, key.to_vec(), payload), kind, error)
        .with_header(HEADER_SOURCE, source.as_bytes().to_vec())
}

/// A dead-letter record for an output the bus refused (`record` was never written, so it
/// has no partition or offset). Keyed like the output, or by its topic when it had no key
/// (the dead-letter topic needs one). `keep_payload` false leaves the payload out, for an
/// output too large for any topic; its size is in a header.
pub fn refused_output(dlq_topic: &str, record: &Record, error: &str, keep_payload: bool) -> Record {
    let key = if record.key.is_empty() {
        record.topic.as_bytes().to_vec()
    } else {
        record.key.clone()
    };
    let payload = if keep_payload {
        record.payload.clone()
    } else {
        Vec::new()
    };
    let mut dead = Record::new(dlq_topic, key, payload);
    dead.headers = record.headers.clone();
    let dead = with_reason(dead, KIND_OUTPUT_REFUSED, error)
        .with_header(HEADER_ORIGINAL_TOPIC, record.topic.as_bytes().to_vec());
    if keep_payload {
        dead
    } else {
        dead.with_header(
            HEADER_PAYLOAD_OMITTED,
            record.payload.len().to_string().into_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_output_keeps_its_bytes_or_says_how_many_were_left_out() {
        let mut output = Record::new("crm.events", Vec::new(), b"{\"big\":1}".to_vec());
        output.headers = vec![("trace".into(), b"t1".to_vec())];
        let dead = refused_output("crm.dlq", &output, "needs a key", true);
        assert_eq!(dead.topic, "crm.dlq");
        assert_eq!(
            dead.key, b"crm.events",
            "keyed by its topic when it had no key"
        );
        assert_eq!(dead.payload, output.payload);
        let header = |record: &Record, name: &str| {
            record
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
        };
        assert_eq!(
            header(&dead, HEADER_ERROR_KIND).as_deref(),
            Some(KIND_OUTPUT_REFUSED)
        );
        assert_eq!(
            header(&dead, HEADER_ORIGINAL_TOPIC).as_deref(),
            Some("crm.events")
        );
        assert_eq!(header(&dead, HEADER_ERROR).as_deref(), Some("needs a key"));
        assert_eq!(header(&dead, "trace").as_deref(), Some("t1"));
        assert_eq!(header(&dead, HEADER_PAYLOAD_OMITTED), None);

        output.key = b"60123".to_vec();
        let slim = refused_output("crm.dlq", &output, "too large", false);
        assert_eq!(slim.key, b"60123");
        assert!(slim.payload.is_empty());
        assert_eq!(header(&slim, HEADER_PAYLOAD_OMITTED).as_deref(), Some("9"));
    }

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
