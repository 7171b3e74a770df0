//! The topics of DESIGN.md, their keys and sizes. Names carry the deployment's namespace so
//! several deployments can share one Kafka cluster.

use super::TopicSpec;

/// Inbound webhook events, keyed by the contact's wa_id.
pub const INBOUND: &str = "wa.inbound";
/// Campaign launches and segment changes: one copy per partition.
pub const COMMANDS: &str = "crm.commands";
/// Media jobs for the OCR pool, keyed by contact.
pub const OCR_JOBS: &str = "crm.ocr.jobs";
/// OCR results back to the contact shards, keyed by contact.
pub const OCR_RESULTS: &str = "crm.ocr.results";
/// Messages to send, keyed by business number so one owner holds each rate limiter.
pub const OUTBOUND: &str = "wa.outbound";
/// Domain events for analytics (ClickHouse).
pub const EVENTS: &str = "crm.events";
/// Poison messages with the reason they failed.
pub const DEAD_LETTER: &str = "crm.dlq";

pub const ALL: [&str; 7] = [
    INBOUND,
    COMMANDS,
    OCR_JOBS,
    OCR_RESULTS,
    OUTBOUND,
    EVENTS,
    DEAD_LETTER,
];

/// Topic names under a namespace: `retailer-a.wa.inbound`, or the bare name without one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicNames {
    namespace: String,
}

impl TopicNames {
    pub fn new(namespace: &str) -> Self {
        TopicNames {
            namespace: namespace.trim_end_matches('.').to_string(),
        }
    }

    pub fn name(&self, topic: &str) -> String {
        if self.namespace.is_empty() {
            topic.to_string()
        } else {
            format!("{}.{topic}", self.namespace)
        }
    }

    /// Consumer group names get the same prefix, so deployments never share offsets.
    pub fn group(&self, group: &str) -> String {
        self.name(group)
    }

    /// Every topic the engine uses, with `partitions` each.
    pub fn specs(&self, partitions: u32, replication_factor: u32) -> Vec<TopicSpec> {
        ALL.iter()
            .map(|topic| TopicSpec {
                name: self.name(topic),
                partitions,
                replication_factor,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespacing() {
        assert_eq!(TopicNames::new("").name(INBOUND), "wa.inbound");
        assert_eq!(TopicNames::new("shop1").name(INBOUND), "shop1.wa.inbound");
        assert_eq!(TopicNames::new("shop1.").group("engine"), "shop1.engine");
        assert_eq!(TopicNames::new("x").specs(4, 1).len(), ALL.len());
    }
}
