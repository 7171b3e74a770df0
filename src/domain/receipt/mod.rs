//! Receipt text parser (being written).
