//! What travels on each topic: one module per topic with its name, its key rule and its
//! payload type, so a producer and its consumers can only agree. Names carry the
//! deployment's namespace so several deployments can share one Kafka cluster.
//!
//! This module depends on the domain only: storage, providers, ingress, the API and the
//! engine all speak these payloads.

pub mod campaign;
pub mod commands;
pub mod contacts;
pub mod dead_letter;
pub mod events;
pub mod inbound;
pub mod ocr;
pub mod outbound;

use uuid::Uuid;

/// A topic of DESIGN.md: its base name and whether the broker compacts it to the latest
/// record per key (a changelog) instead of deleting by age.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Topic {
    pub name: &'static str,
    pub compacted: bool,
}

const fn log(name: &'static str) -> Topic {
    Topic {
        name,
        compacted: false,
    }
}

pub const INBOUND: Topic = log(inbound::TOPIC);
pub const COMMANDS: Topic = log(commands::TOPIC);
pub const CONTACTS: Topic = Topic {
    name: contacts::TOPIC,
    compacted: true,
};
pub const OCR_JOBS: Topic = log(ocr::JOBS_TOPIC);
pub const OCR_RESULTS: Topic = log(ocr::RESULTS_TOPIC);
pub const OUTBOUND: Topic = log(outbound::TOPIC);
pub const CAMPAIGN: Topic = log(campaign::TOPIC);
pub const EVENTS: Topic = log(events::TOPIC);
pub const DEAD_LETTER: Topic = log(dead_letter::TOPIC);

/// Every topic the engine uses.
pub const ALL: [Topic; 9] = [
    INBOUND,
    COMMANDS,
    CONTACTS,
    OCR_JOBS,
    OCR_RESULTS,
    OUTBOUND,
    CAMPAIGN,
    EVENTS,
    DEAD_LETTER,
];

/// Namespace of the engine's v5 UUIDs (a fixed random UUID: changing it would break replays).
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x5e6b_a7a1_33c4_4b5e_9a0d_2f1e_8c47_d301);

/// A stable id for `what` (e.g. `inbound:wamid.X`). Every id a record carries is derived
/// from the inbound event that caused it, so processing the same event twice produces the
/// same ids, which the sender (send claims) and the analytics sink (ReplacingMergeTree)
/// collapse.
pub fn event_id(what: &str) -> Uuid {
    Uuid::new_v5(&ID_NAMESPACE, what.as_bytes())
}

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

    pub fn name(&self, topic: Topic) -> String {
        self.prefixed(topic.name)
    }

    /// Consumer group names get the same prefix, so deployments never share offsets.
    pub fn group(&self, group: &str) -> String {
        self.prefixed(group)
    }

    fn prefixed(&self, name: &str) -> String {
        if self.namespace.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.namespace)
        }
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
    }

    #[test]
    fn names_are_distinct_and_only_the_changelog_is_compacted() {
        let names: std::collections::HashSet<_> = ALL.iter().map(|t| t.name).collect();
        assert_eq!(names.len(), ALL.len());
        let compacted: Vec<_> = ALL.iter().filter(|t| t.compacted).map(|t| t.name).collect();
        assert_eq!(compacted, vec!["crm.contacts"]);
    }

    #[test]
    fn event_ids_are_stable_and_distinct() {
        assert_eq!(event_id("inbound:wamid.A"), event_id("inbound:wamid.A"));
        assert_ne!(event_id("inbound:wamid.A"), event_id("inbound:wamid.B"));
        assert_eq!(event_id("x").get_version_num(), 5);
    }
}
