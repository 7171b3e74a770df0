//! Sending what a flush or a role produced (events, replies, OCR jobs and results). A
//! record the bus refuses for what it is (no key, too large, malformed) would be refused
//! again on every retry and after every restart, stalling its partition for good: it goes
//! to the dead-letter topic with the reason instead, and the others go on. Any other error
//! is retried, then fails the actor, whose supervisor restarts it from the committed
//! offsets.

use crate::storage::bus::dead_letter::{refused_output, KIND_OUTPUT_REFUSED};
use crate::storage::bus::{BusError, Producer, Record};

use super::retry::with_retries_if;

/// Sends every record concurrently; resolves when each is durable in its topic or, if
/// refused there, in the dead-letter topic.
pub async fn send_outputs(
    producer: &dyn Producer,
    records: Vec<Record>,
    dead_letter_topic: &str,
) -> Result<(), BusError> {
    let sends = records
        .into_iter()
        .map(|record| send_output(producer, record, dead_letter_topic));
    futures::future::try_join_all(sends).await.map(drop)
}

fn refused(error: &BusError) -> bool {
    matches!(error, BusError::RecordRefused { .. })
}

async fn send_output(
    producer: &dyn Producer,
    record: Record,
    dead_letter_topic: &str,
) -> Result<(), BusError> {
    let retriable = |e: &BusError| !refused(e);
    let error = match with_retries_if("produce_outputs", retriable, || {
        producer.send(record.clone())
    })
    .await
    {
        Ok(_) => return Ok(()),
        Err(error) if refused(&error) => error,
        Err(error) => return Err(error),
    };
    tracing::warn!(topic = %record.topic, %error, "output refused by the bus, sent to the dead-letter topic");
    let reason = error.to_string();
    let whole = refused_output(dead_letter_topic, &record, &reason, true);
    match with_retries_if("dead_letter", retriable, || producer.send(whole.clone())).await {
        Ok(_) => {}
        // Too large for the dead-letter topic too: the reason and the size, without it.
        Err(error) if refused(&error) => {
            let slim = refused_output(dead_letter_topic, &record, &reason, false);
            with_retries_if("dead_letter", retriable, || producer.send(slim.clone())).await?;
        }
        Err(error) => return Err(error),
    }
    metrics::counter!("sembang_dlq_total", "reason" => KIND_OUTPUT_REFUSED).increment(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::storage::bus::dead_letter::{HEADER_ERROR_KIND, HEADER_PAYLOAD_OMITTED};
    use crate::storage::bus::{Delivery, PartitionedRecord};

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

    #[tokio::test(start_paused = true)]
    async fn refused_records_go_to_the_dead_letter_topic_and_the_rest_on() {
        let bus = FakeBus {
            max_payload: 100,
            outages: AtomicU32::new(2),
            ..FakeBus::default()
        };
        let records = vec![
            Record::new("crm.events", "60123", "ok"),
            Record::new("wa.outbound", Vec::new(), "keyless"),
            Record::new("crm.events", "60124", "x".repeat(101)),
            Record::new("crm.events", "60125", "also ok"),
        ];
        send_outputs(&bus, records, "crm.dlq").await.unwrap();

        let accepted = bus.accepted.into_inner().unwrap();
        let to = |topic: &str| -> Vec<&Record> {
            accepted.iter().filter(|r| r.topic == topic).collect()
        };
        assert_eq!(to("crm.events").len(), 2, "the outage was retried");
        let dead = to("crm.dlq");
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
