//! One Tesseract engine through its C API. Written against the C API (leptess's
//! re-export of it) rather than with leptess's `LepTess` for the one thing `LepTess` does
//! not expose: recognition under a deadline (Tesseract's progress monitor), so a photo of
//! table texture cannot hold a worker for fifteen seconds.

use std::ffi::{CStr, CString};
use std::os::raw::c_int;
use std::ptr;
use std::time::Duration;

use leptess::capi;

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

/// The text of Tesseract's TSV output (one row per word, with its box) from the words
/// whose box touches `region` (in pixels: left, top, right, bottom), a line per line.
fn text_within(tsv: &str, region: (i32, i32, i32, i32)) -> String {
    let (left, top, right, bottom) = region;
    // Each line (block, paragraph, line) with its words and their confidence.
    type Line<'a> = ((i32, i32, i32), Vec<(&'a str, f32)>);
    let mut lines: Vec<Line> = Vec::new();
    for row in tsv.lines() {
        let cells: Vec<&str> = row.split('\t').collect();
        // level, page, block, paragraph, line, word, left, top, width, height, conf, text
        if cells.len() < 12 || cells[0] != "5" {
            continue;
        }
        let number = |i: usize| cells[i].trim().parse::<i32>().unwrap_or(0);
        let text = cells[11].trim();
        let (x, y, w, h) = (number(6), number(7), number(8), number(9));
        if text.is_empty() || x > right || x + w < left || y > bottom || y + h < top {
            continue;
        }
        let confidence = cells[10].trim().parse::<f32>().unwrap_or(0.0);
        let line = (number(2), number(3), number(4));
        match lines.last_mut() {
            Some((at, words)) if *at == line => words.push((text, confidence)),
            _ => lines.push((line, vec![(text, confidence)])),
        }
    }
    lines
        .into_iter()
        .map(|(_, mut words)| {
            // Specks and the card's pattern read as a short word at a line's end, with
            // little confidence: not text of the document.
            let speck = |(text, confidence): &(&str, f32)| {
                text.chars().count() <= SPECK_CHARS && *confidence < SPECK_CONFIDENCE
            };
            while words.last().is_some_and(speck) {
                words.pop();
            }
            while words.first().is_some_and(speck) {
                words.remove(0);
            }
            words
                .iter()
                .map(|(text, _)| *text)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A word this short at a line's end, read with less confidence than this (0-100), is
/// taken for a speck.
const SPECK_CHARS: usize = 3;
const SPECK_CONFIDENCE: f32 = 60.0;

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
                let text = match within {
                    None => capi::TessBaseAPIGetUTF8Text(self.handle),
                    Some(_) => capi::TessBaseAPIGetTsvText(self.handle, 0),
                };
                if text.is_null() {
                    Err(OcrError::Engine("Tesseract returned no text".into()))
                } else {
                    let mut read = CStr::from_ptr(text).to_string_lossy().into_owned();
                    capi::TessDeleteText(text);
                    if let Some(region) = within {
                        let (w, h) = (
                            capi::pixGetWidth(pix) as f32,
                            capi::pixGetHeight(pix) as f32,
                        );
                        read = text_within(
                            &read,
                            (
                                (region.left * w) as i32,
                                (region.top * h) as i32,
                                (region.right * w) as i32,
                                (region.bottom * h) as i32,
                            ),
                        );
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_words_touching_the_region_are_kept_line_by_line() {
        // level page block par line word left top width height conf text
        let tsv = [
            "1\t1\t0\t0\t0\t0\t0\t0\t1100\t694\t-1\t",
            "5\t1\t1\t1\t1\t1\t10\t100\t40\t30\t40\tOK",
            "5\t1\t1\t1\t1\t2\t90\t100\t300\t30\t95\t850324-56-4597",
            "5\t1\t1\t1\t2\t1\t10\t200\t50\t30\t30\tWD",
            "5\t1\t1\t1\t2\t2\t90\t200\t120\t30\t96\tSITI",
            "5\t1\t1\t1\t2\t3\t230\t200\t200\t30\t96\tAMINAH",
            "5\t1\t1\t1\t2\t4\t500\t200\t40\t30\t35\tPA",
            "5\t1\t1\t1\t2\t5\t1050\t200\t40\t30\t20\tJS.",
            // Short but read with confidence: a word of the document.
            "5\t1\t1\t1\t3\t1\t90\t250\t120\t30\t93\tBIN",
            "5\t1\t1\t1\t3\t2\t230\t250\t120\t30\t91\tALI",
            // A word across the edge is the document's (a first digit near the border).
            "5\t1\t2\t1\t1\t1\t60\t300\t100\t30\t90\tLELAKI",
            "5\t1\t3\t1\t1\t1\t10\t600\t40\t30\t20\tBY",
        ]
        .join("\n");
        assert_eq!(
            text_within(&tsv, (72, 45, 1028, 649)),
            "850324-56-4597\nSITI AMINAH\nBIN ALI\nLELAKI"
        );
        assert_eq!(text_within("not tsv", (0, 0, 10, 10)), "");
    }
}
