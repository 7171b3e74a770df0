//! Shared by the integration tests that use real services. `scripts/test` starts the stack
//! (deploy/local/up), exports the addresses and sets SEMBANG_TEST_REQUIRE_STACK=1, so in CI a
//! missing service fails the test. A developer running plain `cargo test` without the stack
//! sees the real-service tests skip with a message instead.
#![allow(dead_code)]

pub mod engine;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub const KAFKA: &str = "SEMBANG_TEST_KAFKA";
pub const CASSANDRA: &str = "SEMBANG_TEST_CASSANDRA";
pub const CLICKHOUSE: &str = "SEMBANG_TEST_CLICKHOUSE";
/// An S3-compatible endpoint (deploy/local's S3Proxy), with the credentials and bucket below.
pub const S3: &str = "SEMBANG_TEST_S3";
pub const S3_IDENTITY: &str = "sembang-local";
pub const S3_CREDENTIAL: &str = "sembang-local-secret";
pub const S3_BUCKET: &str = "sembang";

/// The address of a real service, or `None` (with a note) when the stack is not configured.
pub fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value),
        _ if std::env::var("SEMBANG_TEST_REQUIRE_STACK").is_ok() => {
            panic!("{var} is not set but SEMBANG_TEST_REQUIRE_STACK is: the real stack is required")
        }
        _ => {
            eprintln!(
                "skipping: {var} is not set (run ./scripts/test, or deploy/local/up and export it)"
            );
            None
        }
    }
}

/// The first bytes of a PNG whose header says `width` x `height` pixels, then `padding`
/// zero bytes: enough for the format and pixel-count checks, which never decode it.
pub fn png_header(width: u32, height: u32, padding: usize) -> Vec<u8> {
    let mut bytes = sembang::media::sniff::png_header(width, height);
    bytes.extend(std::iter::repeat_n(0u8, padding));
    bytes
}

/// A name no other test run uses: topics, groups, keyspaces, databases, directories.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{:x}_{}",
        std::process::id(),
        nanos & 0xffff_ffff,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
