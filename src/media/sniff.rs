//! What an image really is, from its bytes (never the declared MIME type), and how many
//! pixels it would decode to, read from its header without decoding it: a decompression
//! bomb is refused before any decoder sees it.

use serde::Serialize;

use super::MediaError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaFormat {
    Jpeg,
    Png,
    Webp,
    Pdf,
}

impl MediaFormat {
    pub const fn extension(self) -> &'static str {
        match self {
            MediaFormat::Jpeg => "jpg",
            MediaFormat::Png => "png",
            MediaFormat::Webp => "webp",
            MediaFormat::Pdf => "pdf",
        }
    }

    pub const fn mime(self) -> &'static str {
        match self {
            MediaFormat::Jpeg => "image/jpeg",
            MediaFormat::Png => "image/png",
            MediaFormat::Webp => "image/webp",
            MediaFormat::Pdf => "application/pdf",
        }
    }
}

/// The format from the magic bytes.
pub fn sniff(bytes: &[u8]) -> Result<MediaFormat, MediaError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok(MediaFormat::Jpeg)
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Ok(MediaFormat::Png)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Ok(MediaFormat::Webp)
    } else if bytes.starts_with(b"%PDF-") {
        Ok(MediaFormat::Pdf)
    } else {
        Err(MediaError::UnsupportedFormat {
            first_bytes: hex::encode(&bytes[..bytes.len().min(8)]),
        })
    }
}

/// Width and height from the image header; `None` for documents (PDF pages are
/// rasterized at a fixed resolution later).
pub fn dimensions(format: MediaFormat, bytes: &[u8]) -> Result<Option<(u64, u64)>, MediaError> {
    if format == MediaFormat::Pdf {
        return Ok(None);
    }
    let size = imagesize::blob_size(bytes).map_err(|e| MediaError::Corrupt {
        reason: format!("unreadable {} header: {e}", format.extension()),
    })?;
    Ok(Some((size.width as u64, size.height as u64)))
}

/// The longest side a photo may have: phone cameras stay under 9,000 px; a side of 10^6 px
/// is a crafted file whatever its pixel count.
pub const MAX_SIDE: u64 = 16_384;
/// The most elongated a photo may be (long side over short side): a long receipt held in
/// frame is ~1:6; a 60 x 1,000,000 strip is a crafted file.
pub const MAX_ASPECT: u64 = 20;

/// Refuses images over `max_pixels` (decompression bombs: a small file that decodes to
/// gigabytes), with a side over [`MAX_SIDE`] or more elongated than [`MAX_ASPECT`] (a strip
/// that passes the pixel count and explodes when scaled to a readable width), and
/// degenerate ones.
pub fn check_pixels(width: u64, height: u64, max_pixels: u64) -> Result<(), MediaError> {
    if width == 0 || height == 0 {
        return Err(MediaError::Corrupt {
            reason: format!("image is {width}x{height}"),
        });
    }
    let pixels = width.saturating_mul(height);
    if pixels > max_pixels {
        return Err(MediaError::TooManyPixels {
            width,
            height,
            max_pixels,
        });
    }
    let (long, short) = (width.max(height), width.min(height));
    if long > MAX_SIDE || long > short.saturating_mul(MAX_ASPECT) {
        return Err(MediaError::Misshapen { width, height });
    }
    Ok(())
}

/// The first bytes of a PNG (signature + IHDR) claiming `width` x `height` pixels: what the
/// format and pixel-count checks read, never decoded. For tests and tools that need a
/// picture's header without its pixels (decompression bombs included).
pub fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    bytes.extend_from_slice(&13u32.to_be_bytes());
    bytes.extend_from_slice(b"IHDR");
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&[8, 2, 0, 0, 0]);
    bytes.extend_from_slice(&[0, 0, 0, 0]); // CRC (not checked by header readers)
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_magic_bytes() {
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]).unwrap(),
            MediaFormat::Jpeg
        );
        assert_eq!(sniff(&png_header(1, 1)).unwrap(), MediaFormat::Png);
        assert_eq!(
            sniff(b"RIFF\x10\x00\x00\x00WEBPVP8 ").unwrap(),
            MediaFormat::Webp
        );
        assert_eq!(sniff(b"%PDF-1.7\n").unwrap(), MediaFormat::Pdf);
        // HTML served as image/jpeg is still HTML.
        assert!(matches!(
            sniff(b"<html><body>"),
            Err(MediaError::UnsupportedFormat { .. })
        ));
        assert!(sniff(b"").is_err());
    }

    #[test]
    fn bombs_are_refused_from_the_header_alone() {
        let bomb = png_header(100_000, 100_000);
        let (w, h) = dimensions(MediaFormat::Png, &bomb).unwrap().unwrap();
        assert_eq!((w, h), (100_000, 100_000));
        assert!(matches!(
            check_pixels(w, h, 40_000_000),
            Err(MediaError::TooManyPixels { .. })
        ));
        assert!(check_pixels(4_000, 3_000, 40_000_000).is_ok());
        assert!(check_pixels(0, 10, 40_000_000).is_err());
        assert!(
            dimensions(MediaFormat::Png, &bomb[..12]).is_err(),
            "truncated header"
        );
    }
}
