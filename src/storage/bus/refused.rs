//! Sending records when some may be refused for what they are (no key, too large): those
//! go to the dead-letter topic with the reason, the others to their topics. A refused
//! record would be refused again on every retry, so without this it would stall whatever
//! sends it for good. Used by the webhook ingress (once; the sender retries) and by the
//! engine's roles (with retries, [`crate::engine::outputs`]).

use super::dead_letter::{refused_output, KIND_OUTPUT_REFUSED};
use super::{BusError, Producer, Record};
use crate::metrics::catalog;

fn refused(error: &BusError) -> bool {
    matches!(error, BusError::RecordRefused { .. })
}

/// Sends every record concurrently, then dead-letters the refused ones. Any other error
/// fails the whole call (the caller sends them all again).
pub async fn send_or_dead_letter(
    producer: &dyn Producer,
    records: &[Record],
    dead_letter_topic: &str,
) -> Result<(), BusError> {
    let sends = records.iter().map(|record| producer.send(record.clone()));
    let results = futures::future::join_all(sends).await;
    let mut dead = Vec::new();
    for (record, result) in records.iter().zip(results) {
        match result {
            Ok(_) => {}
            Err(error) if refused(&error) => dead.push((record, error)),
            Err(error) => return Err(error),
        }
    }
    for (record, error) in &dead {
        dead_letter(producer, record, error, dead_letter_topic).await?;
    }
    Ok(())
}

async fn dead_letter(
    producer: &dyn Producer,
    record: &Record,
    error: &BusError,
    dead_letter_topic: &str,
) -> Result<(), BusError> {
    tracing::warn!(topic = %record.topic, %error, "record refused by the bus, sent to the dead-letter topic");
    let reason = error.to_string();
    let whole = refused_output(dead_letter_topic, record, &reason, true);
    match producer.send(whole).await {
        Ok(_) => {}
        // Too large for the dead-letter topic too: the reason and the size, without it.
        Err(error) if refused(&error) => {
            let slim = refused_output(dead_letter_topic, record, &reason, false);
            producer.send(slim).await?;
        }
        Err(error) => return Err(error),
    }
    catalog::DLQ
        .counter(&[KIND_OUTPUT_REFUSED.into()])
        .increment(1);
    Ok(())
}

/// Sends every record concurrently (retried as any write); resolves when each is durable
/// in its topic or, if refused there, in the dead-letter topic. A failed attempt sends
/// them all again, as `send_all` does, so the last copy of each record keeps the order
/// they were given in.
pub async fn send_outputs(
    producer: &dyn Producer,
    records: Vec<Record>,
    dead_letter_topic: &str,
) -> Result<(), BusError> {
    crate::retry::with_retries("produce_outputs", || {
        send_or_dead_letter(producer, &records, dead_letter_topic)
    })
    .await
}
