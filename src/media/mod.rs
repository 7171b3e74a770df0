//! Media of inbound messages, on their way to OCR: fetched (Cloud API two-step, wabot.my
//! URL, or uploaded through the admin API), checked (size cap while streaming, format from
//! the bytes, pixel count from the header before any decode), hashed (SHA-256) and kept in
//! an object store under that hash.

pub mod download;
pub mod guard;
pub mod s3;
pub mod sealed;
pub mod sniff;
pub mod store;

use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

pub use download::MediaClient;
pub use guard::HostAllowlist;
pub use s3::{S3Config, S3Store};
pub use sealed::{KeylessStore, SealedStore};
pub use sniff::MediaFormat;
pub use store::{LocalDirStore, ObjectStore};

/// Limits on what is accepted.
#[derive(Clone, Copy, Debug)]
pub struct MediaLimits {
    pub max_bytes: u64,
    pub max_pixels: u64,
}

impl Default for MediaLimits {
    /// WhatsApp caps images at 5 MB and documents at 100 MB; a phone photo is 12–50 MP.
    fn default() -> Self {
        MediaLimits {
            max_bytes: 16 * 1024 * 1024,
            max_pixels: 60_000_000,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MediaError {
    #[error("media is {bytes} bytes, over the limit of {max_bytes}")]
    TooLarge { bytes: u64, max_bytes: u64 },
    #[error(
        "image is {width}x{height} pixels, over the limit of {max_pixels} (decompression bomb?)"
    )]
    TooManyPixels {
        width: u64,
        height: u64,
        max_pixels: u64,
    },
    #[error(
        "image is {width}x{height} pixels: a side over {} or more elongated than 1:{}",
        sniff::MAX_SIDE,
        sniff::MAX_ASPECT
    )]
    Misshapen { width: u64, height: u64 },
    #[error("not a JPEG, PNG, WebP or PDF (starts with {first_bytes})")]
    UnsupportedFormat { first_bytes: String },
    #[error("corrupt media: {reason}")]
    Corrupt { reason: String },
    #[error("the provider refused the {what} request with HTTP {status}")]
    Refused { status: u16, what: String },
    #[error("media download: {0}")]
    Download(String),
    #[error("object store: {0}")]
    Store(String),
    #[error("object {key} is not in the object store")]
    NotStored { key: String },
    /// A media location we refuse to fetch from (not on the allowlist, not public, not a
    /// media id of the source's form).
    #[error("media location refused: {reason}")]
    Forbidden { reason: String },
}

impl MediaError {
    /// Worth another attempt later (the service may come back); the rest never will.
    pub fn is_transient(&self) -> bool {
        match self {
            MediaError::Download(_) | MediaError::Store(_) => true,
            MediaError::Refused { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// A stable, low-cardinality name for metrics and events.
    pub fn kind(&self) -> &'static str {
        match self {
            MediaError::TooLarge { .. } => "too_large",
            MediaError::TooManyPixels { .. } => "too_many_pixels",
            MediaError::Misshapen { .. } => "misshapen",
            MediaError::UnsupportedFormat { .. } => "unsupported_format",
            MediaError::Corrupt { .. } => "corrupt",
            MediaError::Refused { .. } => "refused",
            MediaError::Download(_) => "download",
            MediaError::Store(_) => "store",
            MediaError::NotStored { .. } => "not_stored",
            MediaError::Forbidden { .. } => "forbidden",
        }
    }
}

/// Checked media, ready for OCR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckedMedia {
    pub sha256: String,
    pub format: MediaFormat,
    /// None for PDFs.
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub bytes: usize,
}

impl CheckedMedia {
    /// The object store key: the hash with the real format's extension.
    pub fn key(&self) -> String {
        format!("{}.{}", self.sha256, self.format.extension())
    }
}

/// Checks bytes however they arrived: size, real format, pixel count; and hashes them.
pub fn check(bytes: &[u8], limits: &MediaLimits) -> Result<CheckedMedia, MediaError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(MediaError::TooLarge {
            bytes: bytes.len() as u64,
            max_bytes: limits.max_bytes,
        });
    }
    let format = sniff::sniff(bytes)?;
    let dimensions = sniff::dimensions(format, bytes)?;
    if let Some((width, height)) = dimensions {
        sniff::check_pixels(width, height, limits.max_pixels)?;
    }
    Ok(CheckedMedia {
        sha256: hex::encode(Sha256::digest(bytes)),
        format,
        width: dimensions.map(|d| d.0),
        height: dimensions.map(|d| d.1),
        bytes: bytes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::sniff::png_header as png;

    #[test]
    fn checks_size_format_and_pixels_and_hashes() {
        let limits = MediaLimits {
            max_bytes: 1_000,
            max_pixels: 10_000,
        };
        let ok = check(&png(100, 50), &limits).unwrap();
        assert_eq!(
            (ok.format, ok.width, ok.height),
            (MediaFormat::Png, Some(100), Some(50))
        );
        assert_eq!(ok.sha256.len(), 64);
        assert!(ok.key().ends_with(".png"));
        assert_eq!(check(&png(100, 50), &limits).unwrap().sha256, ok.sha256);
        assert!(matches!(
            check(&png(1_000, 1_000), &limits),
            Err(MediaError::TooManyPixels { .. })
        ));
        // A strip under the pixel limit that would explode when scaled to a readable width.
        let strip = MediaLimits {
            max_bytes: 1_000,
            max_pixels: 60_000_000,
        };
        assert!(matches!(
            check(&png(60, 1_000_000), &strip),
            Err(MediaError::Misshapen { .. })
        ));
        assert!(matches!(
            check(&png(20_000, 2_000), &strip),
            Err(MediaError::Misshapen { .. })
        ));
        check(&png(1_000, 6_000), &strip).unwrap();
        assert!(matches!(
            check(&vec![0u8; 2_000], &limits),
            Err(MediaError::TooLarge { .. })
        ));
        let err = check(b"GIF89a....", &limits).unwrap_err();
        assert_eq!(err.kind(), "unsupported_format");
        assert!(!err.is_transient());
        assert!(MediaError::Refused {
            status: 503,
            what: "x".into()
        }
        .is_transient());
    }
}
