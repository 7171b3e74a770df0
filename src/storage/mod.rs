//! Storage: the traits the engine is written against, and their backends. Production
//! backends (Kafka, ScyllaDB, ClickHouse) and embedded twins (on-disk log, embedded
//! database, files) implement the same traits and pass the same conformance suites.

pub mod bus;
pub mod migrate;
pub mod sink;
pub mod store;
