//! Pure domain code: no I/O, no async, no transport types. Everything here is deterministic
//! given its inputs (reference dates are parameters; [`clock::malaysia_today`] is the one
//! place that reads the clock, for callers to pass on).

pub mod auto_reply;
pub mod campaign;
pub mod clock;
pub mod contact;
pub mod contact_fields;
pub mod contact_import;
pub mod message;
pub mod money;
pub mod mykad;
pub mod person;
pub mod phone;
pub mod profile;
pub mod purchase;
pub mod receipt;
pub mod recent;
pub mod segment;
pub mod spending;
pub mod state;
pub mod tier;
