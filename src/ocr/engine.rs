//! One Tesseract engine through its C API. Written against the C API (leptess's
//! re-export of it) rather than with leptess's `LepTess` for the one thing `LepTess` does
//! not expose: recognition under a deadline (Tesseract's progress monitor), so a photo of
//! table texture cannot hold a worker for fifteen seconds.

use std::ffi::{CStr, CString};
use std::os::raw::c_int;
use std::ptr;
use std::time::Duration;

use leptess::capi;

use super::rows::document_text;
use super::OcrError;

/// What one recognition gave.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Read {
        text: String,
        confidence: f32,
    },
    /// The deadline passed before Tesseract finished; nothing it found is kept.
    TimedOut,
}

/// A part of the image, as fractions of its width and height: only words that touch it
/// are kept (a document's area in its rectified photo, without the table around it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Region {
    pub left: f32,
    pub top: f32,
    pub right: f32,
    pub bottom: f32,
}

impl Region {
    /// The middle of the image, leaving `margin` of each side out.
    pub fn inset(margin: f32) -> Self {
        Region {
            left: margin,
            top: margin,
            right: 1.0 - margin,
            bottom: 1.0 - margin,
        }
    }
}

pub struct Engine {
    handle: *mut capi::TessBaseAPI,
}

// The handle is used by one thread at a time: each pool worker owns its engine.
unsafe impl Send for Engine {}

impl Engine {
    /// Loads `languages` (e.g. "eng+msa") from `datapath` (None: the system's tessdata).
    pub fn new(datapath: Option<&str>, languages: &str) -> Result<Engine, OcrError> {
        let start_error = || OcrError::Engine(format!("Tesseract ({languages}) did not start"));
        let datapath = datapath
            .map(CString::new)
            .transpose()
            .map_err(|_| start_error())?;
        let language = CString::new(languages).map_err(|_| start_error())?;
        // SAFETY: Create has no preconditions; a null handle is checked.
        let handle = unsafe { capi::TessBaseAPICreate() };
        if handle.is_null() {
            return Err(start_error());
        }
        let engine = Engine { handle };
        // SAFETY: the handle is live; the strings outlive the call.
        let status = unsafe {
            capi::TessBaseAPIInit3(
                engine.handle,
                datapath.as_ref().map_or(ptr::null(), |d| d.as_ptr()),
                language.as_ptr(),
            )
        };
        if status != 0 {
            return Err(start_error());
        }
        Ok(engine)
    }

    pub fn set_variable(&mut self, name: &str, value: &str) -> Result<(), OcrError> {
        let refused = || OcrError::Engine(format!("Tesseract refused {name}={value}"));
        let (c_name, c_value) = (
            CString::new(name).map_err(|_| refused())?,
            CString::new(value).map_err(|_| refused())?,
        );
        // SAFETY: the handle is live; the strings outlive the call.
        let accepted =
            unsafe { capi::TessBaseAPISetVariable(self.handle, c_name.as_ptr(), c_value.as_ptr()) };
        if accepted == 1 {
            Ok(())
        } else {
            Err(refused())
        }
    }

    /// Reads `image` (any format Leptonica reads from memory: the pipeline's PBM) within
    /// `deadline`; with `within`, only the words touching that region.
    pub fn recognize(
        &mut self,
        image: &[u8],
        deadline: Duration,
        within: Option<Region>,
    ) -> Result<Outcome, OcrError> {
        // SAFETY: the slice is valid for its length; a null result is checked.
        let mut pix = unsafe { capi::pixReadMem(image.as_ptr(), image.len()) };
        if pix.is_null() {
            return Err(OcrError::Image(
                "Tesseract cannot read the image: not an image Leptonica reads".into(),
            ));
        }
        let milliseconds = c_int::try_from(deadline.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: the handle and the pix are live; Tesseract neither copies nor frees the
        // pix, which is destroyed below after its results were taken (Clear). The monitor
        // is created and deleted here, around the one call that reads it.
        let outcome = unsafe {
            capi::TessBaseAPISetImage2(self.handle, pix);
            let monitor = capi::TessMonitorCreate();
            capi::TessMonitorSetDeadlineMSecs(monitor, milliseconds.max(1));
            let status = capi::TessBaseAPIRecognize(self.handle, monitor);
            capi::TessMonitorDelete(monitor);
            let outcome = if status != 0 {
                Ok(Outcome::TimedOut)
            } else {
                // Words with their boxes, so that rows are made by geometry.
                let text = capi::TessBaseAPIGetTsvText(self.handle, 0);
                if text.is_null() {
                    Err(OcrError::Engine("Tesseract returned no text".into()))
                } else {
                    let tsv = CStr::from_ptr(text).to_string_lossy().into_owned();
                    capi::TessDeleteText(text);
                    let (w, h) = (
                        capi::pixGetWidth(pix) as f32,
                        capi::pixGetHeight(pix) as f32,
                    );
                    let region = within.map(|region| {
                        (
                            (region.left * w) as i32,
                            (region.top * h) as i32,
                            (region.right * w) as i32,
                            (region.bottom * h) as i32,
                        )
                    });
                    let read = document_text(&tsv, region);
                    Ok(Outcome::Read {
                        text: read,
                        confidence: capi::TessBaseAPIMeanTextConf(self.handle) as f32,
                    })
                }
            };
            capi::TessBaseAPIClear(self.handle);
            capi::pixDestroy(&mut pix);
            outcome
        };
        outcome
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: the handle is live and dropped once.
        unsafe { capi::TessBaseAPIDelete(self.handle) };
    }
}
