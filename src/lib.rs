//! Sembang: a stream-processing engine behind a WhatsApp CRM for Malaysian retailers.

pub mod api;
pub mod app;
pub mod campaigns;
pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod ingress;
pub mod media;
pub mod metrics;
pub mod ocr;
pub mod pii;
pub mod provider;
pub mod retry;
pub mod segments;
pub mod storage;
pub mod topics;
