//! Pure domain code: no I/O, no async, no transport types. Everything here is deterministic
//! given its inputs (reference dates are parameters, never read from the clock).

pub mod auto_reply;
pub mod contact;
pub mod contact_fields;
pub mod message;
pub mod money;
pub mod mykad;
pub mod person;
pub mod phone;
pub mod purchase;
pub mod receipt;
pub mod recent;
pub mod segment;
pub mod spending;
pub mod state;
pub mod tier;
