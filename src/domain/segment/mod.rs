//! Segment predicates (being written).
