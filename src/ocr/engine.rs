//! One Tesseract engine through its C API. Written against the C API (leptess's
//! re-export of it) rather than with leptess's `LepTess` for the one thing `LepTess` does
//! not expose: recognition under a deadline (Tesseract's progress monitor), so a photo of
//! table texture cannot hold a worker for fifteen seconds.

use std::ffi::{CStr, CString};
use std::os::raw::c_int;
use std::ptr;
use std::time::Duration;

use leptess::capi;

use super::rows::{document_rows, rows_text};
use super::words::Word;
use super::OcrError;

/// Tesseract page segmentation mode 6 ("a single uniform block of text") for whole
/// documents: mode 3 drops receipt lines; 6 reads cards and receipts alike.
const WHOLE_DOCUMENT: capi::TessPageSegMode = capi::TessPageSegMode_PSM_SINGLE_BLOCK;

/// What one recognition gave.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Read {
        text: String,
        confidence: f32,
        /// The text's rows with their words and boxes (none for a line read alone).
        rows: Vec<Vec<Word>>,
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

/// A rectangle of the image in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub left: i32,
    pub top: i32,
    pub width: i32,
    pub height: i32,
}

impl Rect {
    /// The part of this rectangle inside a `width` x `height` image (empty when none is).
    fn clamped(self, width: i32, height: i32) -> Rect {
        let (left, top) = (self.left.clamp(0, width), self.top.clamp(0, height));
        let right = self.left.saturating_add(self.width).clamp(left, width);
        let bottom = self.top.saturating_add(self.height).clamp(top, height);
        Rect {
            left,
            top,
            width: right - left,
            height: bottom - top,
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

    /// Reads `image` (any format Leptonica reads from memory: the pipeline's PBM) as one
    /// document within `deadline`; with `within`, only the words touching that region.
    pub fn recognize(
        &mut self,
        image: &[u8],
        deadline: Duration,
        within: Option<Region>,
    ) -> Result<Outcome, OcrError> {
        self.run(image, deadline, None, |handle, pix| {
            // SAFETY (the closure's calls): `run` gives a live handle and pix, the image
            // set and recognized.
            unsafe {
                let tsv = owned_text(capi::TessBaseAPIGetTsvText(handle, 0))?;
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
                // Words with their boxes, so that rows are made by geometry.
                let rows = document_rows(&tsv, region);
                Ok(Outcome::Read {
                    text: rows_text(&rows),
                    confidence: capi::TessBaseAPIMeanTextConf(handle) as f32,
                    rows,
                })
            }
        })
    }

    /// Reads one line of text lying in `line` of `image` within `deadline`: a card's number
    /// read again on its own, in a fraction of a whole document's time.
    pub fn recognize_line(
        &mut self,
        image: &[u8],
        deadline: Duration,
        line: Rect,
    ) -> Result<Outcome, OcrError> {
        self.run(image, deadline, Some(line), |handle, _| {
            // SAFETY: as in `recognize`.
            unsafe {
                let text = owned_text(capi::TessBaseAPIGetUTF8Text(handle))?;
                Ok(Outcome::Read {
                    text: text.trim().to_string(),
                    confidence: capi::TessBaseAPIMeanTextConf(handle) as f32,
                    rows: Vec::new(),
                })
            }
        })
    }

    /// Sets `image`, recognizes it (all of it as one block of text, or only `line` as one
    /// line) under a deadline, and takes the results with `take` before they are cleared.
    fn run(
        &mut self,
        image: &[u8],
        deadline: Duration,
        line: Option<Rect>,
        take: impl FnOnce(*mut capi::TessBaseAPI, *mut capi::Pix) -> Result<Outcome, OcrError>,
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
        unsafe {
            capi::TessBaseAPISetImage2(self.handle, pix);
            let line =
                line.map(|line| line.clamped(capi::pixGetWidth(pix), capi::pixGetHeight(pix)));
            let outcome = if line.is_some_and(|line| line.width == 0 || line.height == 0) {
                // A line wholly outside the image: nothing there to read.
                Ok(Outcome::Read {
                    text: String::new(),
                    confidence: 0.0,
                    rows: Vec::new(),
                })
            } else {
                match line {
                    Some(line) => {
                        capi::TessBaseAPISetPageSegMode(
                            self.handle,
                            capi::TessPageSegMode_PSM_SINGLE_LINE,
                        );
                        capi::TessBaseAPISetRectangle(
                            self.handle,
                            line.left,
                            line.top,
                            line.width,
                            line.height,
                        );
                    }
                    None => capi::TessBaseAPISetPageSegMode(self.handle, WHOLE_DOCUMENT),
                }
                let monitor = capi::TessMonitorCreate();
                capi::TessMonitorSetDeadlineMSecs(monitor, milliseconds.max(1));
                let status = capi::TessBaseAPIRecognize(self.handle, monitor);
                capi::TessMonitorDelete(monitor);
                if status != 0 {
                    Ok(Outcome::TimedOut)
                } else {
                    take(self.handle, pix)
                }
            };
            capi::TessBaseAPIClear(self.handle);
            capi::pixDestroy(&mut pix);
            outcome
        }
    }
}

/// Copies and frees a text Tesseract returned (its `GetTsvText`, `GetUTF8Text`).
///
/// # Safety
/// `text` is null or a string Tesseract allocated and nothing else frees.
unsafe fn owned_text(text: *mut std::os::raw::c_char) -> Result<String, OcrError> {
    if text.is_null() {
        return Err(OcrError::Engine("Tesseract returned no text".into()));
    }
    let owned = CStr::from_ptr(text).to_string_lossy().into_owned();
    capi::TessDeleteText(text);
    Ok(owned)
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: the handle is live and dropped once.
        unsafe { capi::TessBaseAPIDelete(self.handle) };
    }
}
