//! Image intake and preparation: sniffing, the header checks, then OpenCV's decode and the
//! preparation for Tesseract, on any bytes: typed errors, never a crash, and never more
//! memory than the limits allow (libFuzzer's -rss_limit_mb catches a bomb that slips by).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sembang::media::{check, MediaLimits};
use sembang::ocr::preprocess::{prepare, Turn};

fuzz_target!(|bytes: &[u8]| {
    let limits = MediaLimits {
        max_bytes: 1 << 20,
        max_pixels: 4_000_000,
    };
    if check(bytes, &limits).is_ok() {
        let _ = prepare(bytes, None, Turn::None);
    }
});
