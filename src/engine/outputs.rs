//! Sending what a flush or a role produced (events, replies, OCR jobs and results). A
//! record the bus refuses for what it is (no key, too large) would be refused again on
//! every retry and after every restart, stalling its partition for good: it goes to the
//! dead-letter topic with the reason instead, and the others go on. Any other error is
//! retried, then fails the actor, whose supervisor restarts it from the committed offsets.

pub use crate::storage::bus::refused::send_outputs;

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::storage::bus::dead_letter::{
        HEADER_ERROR_KIND, HEADER_PAYLOAD_OMITTED, KIND_OUTPUT_REFUSED,
    };
    use crate::storage::bus::{BusError, Delivery, PartitionedRecord, Producer, Record};

    /// A bus that refuses keyless records and records over `max_payload` bytes, fails the
    /// first `outages` sends as unavailable, and keeps what it accepted.
    #[derive(Default)]
    struct FakeBus {
        max_payload: usize,
        outages: AtomicU32,
        accepted: Mutex<Vec<Record>>,
    }

    #[async_trait]
    impl Producer for FakeBus {
        async fn send(&self, record: Record) -> Result<Delivery, BusError> {
            if self.outages.load(Ordering::SeqCst) > 0 {
                self.outages.fetch_sub(1, Ordering::SeqCst);
                return Err(BusError::Unavailable {
                    service: "fake",
                    detail: "down".into(),
                });
            }
            if record.key.is_empty() || record.payload.len() > self.max_payload {
                return Err(BusError::RecordRefused {
                    service: "fake",
                    detail: "no key or too large".into(),
                });
            }
            let mut accepted = self.accepted.lock().unwrap();
            accepted.push(record);
            Ok(Delivery {
                partition: 0,
                offset: accepted.len() as u64 - 1,
            })
        }

        async fn send_to(&self, record: PartitionedRecord) -> Result<Delivery, BusError> {
            self.send(record.record).await
        }
    }

    fn header(record: &Record, name: &str) -> Option<String> {
        record
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
    }

    fn outputs() -> Vec<Record> {
        vec![
            Record::new("crm.events", "60123", "first"),
            Record::new("wa.outbound", Vec::new(), "keyless"),
            Record::new("crm.events", "60124", "x".repeat(101)),
            Record::new("crm.events", "60123", "second"),
        ]
    }

    #[tokio::test(start_paused = true)]
    async fn refused_records_go_to_the_dead_letter_topic_and_the_rest_on() {
        let bus = FakeBus {
            max_payload: 100,
            ..FakeBus::default()
        };
        send_outputs(&bus, outputs(), "crm.dlq").await.unwrap();

        let accepted = bus.accepted.into_inner().unwrap();
        let events: Vec<&[u8]> = accepted
            .iter()
            .filter(|r| r.topic == "crm.events")
            .map(|r| r.payload.as_slice())
            .collect();
        assert_eq!(events, vec![&b"first"[..], &b"second"[..]]);
        let dead: Vec<&Record> = accepted.iter().filter(|r| r.topic == "crm.dlq").collect();
        assert_eq!(dead.len(), 2);
        let keyless = dead.iter().find(|r| r.payload == b"keyless").unwrap();
        assert_eq!(keyless.key, b"wa.outbound");
        assert_eq!(
            header(keyless, HEADER_ERROR_KIND).as_deref(),
            Some(KIND_OUTPUT_REFUSED)
        );
        // Too large for the dead-letter topic as well: kept as its reason and size.
        let large = dead.iter().find(|r| r.key == b"60124").unwrap();
        assert!(large.payload.is_empty());
        assert_eq!(
            header(large, HEADER_PAYLOAD_OMITTED).as_deref(),
            Some("101")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_an_outage_everything_is_sent_again_in_order() {
        let bus = FakeBus {
            max_payload: 100,
            outages: AtomicU32::new(1),
            ..FakeBus::default()
        };
        send_outputs(&bus, outputs(), "crm.dlq").await.unwrap();

        let accepted = bus.accepted.into_inner().unwrap();
        let last_copies: Vec<&[u8]> = accepted
            .iter()
            .filter(|r| r.topic == "crm.events")
            .map(|r| r.payload.as_slice())
            .rev()
            .take(2)
            .collect();
        assert_eq!(
            last_copies,
            vec![&b"second"[..], &b"first"[..]],
            "the retry sent both again, in order"
        );
        let dead = accepted.iter().filter(|r| r.topic == "crm.dlq").count();
        assert_eq!(dead, 2, "dead letters only once the rest is sent");
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_that_outlasts_the_retries_is_an_error() {
        let bus = FakeBus {
            max_payload: 100,
            outages: AtomicU32::new(1_000),
            ..FakeBus::default()
        };
        let records = vec![Record::new("crm.events", "60123", "ok")];
        let error = send_outputs(&bus, records, "crm.dlq").await.unwrap_err();
        assert!(matches!(error, BusError::Unavailable { .. }), "{error}");
        assert!(bus.accepted.into_inner().unwrap().is_empty());
    }
}
