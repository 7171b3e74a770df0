//! Live segments: an exact, incremental segment index over crm.contacts partitions.
//!
//! - [`index::PartitionIndex`]: one partition's contacts under dense u32 ids, posting
//!   lists (roaring bitmaps) per field value and bucket, and compact rows; answers a
//!   definition exactly (bitmaps decide most contacts, the reference evaluator the rest).
//! - [`live::SegmentIndex`]: the partitions a process indexes, queried together;
//!   [`follower::Follower`] rebuilds them from crm.contacts on assignment and follows it.
//! - [`compile`]: comparison → bitmap bounds; [`bounds`], [`postings`], [`interval`],
//!   [`attributes`]: its parts; [`row`]: a contact as the index keeps it.
//!
//! The reference evaluator in `domain::segment` is the specification; a property test
//! compares the two on random contacts and definitions.

pub mod attributes;
pub mod bounds;
mod compile;
pub mod follower;
pub mod index;
pub mod interval;
pub mod live;
pub mod postings;
pub mod row;

pub use follower::Follower;
pub use index::{Applied, PartitionIndex};
pub use live::{Breakdown, Cursor, MemberPage, MemberView, SegmentIndex};
