//! Sembang: a stream-processing engine behind a WhatsApp CRM for Malaysian retailers.

pub mod domain;
