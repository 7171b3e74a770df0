//! The durable baseline: a bare consumer that stores every record in Cassandra and does
//! nothing else (no parsing, no contact state, no outputs, no analytics). The raw consume
//! rate only prices the broker and librdkafka; this one prices "consume and persist", the
//! least any consumer that keeps what it reads must do on the same machine.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use scylla::client::session_builder::SessionBuilder;

/// Inserts in flight: enough to keep the node busy, as the engine's flushes do.
const IN_FLIGHT: usize = 256;

pub struct Target<'a> {
    pub kafka: &'a str,
    pub group: String,
    pub topic: &'a str,
    pub cassandra: &'a str,
    pub keyspace: &'a str,
}

/// Reads `messages` records of the topic and inserts each as one row (key, partition,
/// offset, payload), unbatched. Returns the time from the first record to the last
/// insert's acknowledgement.
pub async fn consume_and_store(target: Target<'_>, messages: u64) -> Duration {
    let session = SessionBuilder::new()
        .known_node(target.cassandra)
        .build()
        .await
        .expect("Cassandra session");
    let table = format!("{}.baseline_records", target.keyspace);
    session
        .query_unpaged(
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (key text, partition int, offset bigint, \
                 payload blob, PRIMARY KEY ((key), partition, offset))"
            ),
            (),
        )
        .await
        .expect("baseline table");
    let insert = session
        .prepare(format!(
            "INSERT INTO {table} (key, partition, offset, payload) VALUES (?, ?, ?, ?)"
        ))
        .await
        .expect("baseline insert");

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", target.kafka)
        .set("group.id", &target.group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("baseline consumer");
    consumer.subscribe(&[target.topic]).unwrap();
    let mut first: Option<Instant> = None;
    let limit = usize::try_from(messages).unwrap_or(usize::MAX);
    consumer
        .stream()
        .take(limit)
        .map(|message| {
            let message = message.expect("baseline consume");
            first.get_or_insert_with(Instant::now);
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            let row = (
                key,
                message.partition(),
                message.offset(),
                message.payload().unwrap_or_default().to_vec(),
            );
            let (session, insert) = (&session, &insert);
            async move { session.execute_unpaged(insert, row).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect("baseline insert");
    first.map(|f| f.elapsed()).unwrap_or_default()
}
