//! Sembang: a stream-processing engine behind a WhatsApp CRM for Malaysian retailers.

pub mod cli;
pub mod config;
pub mod domain;
pub mod ingress;
pub mod provider;
pub mod storage;
