//! Image preparation for Tesseract with OpenCV: decode, grayscale, scale small images up,
//! find the document, straighten and crop to it, and binarize it the way its shape calls
//! for (even light matters more than anything on phone photos of cards and receipts).

use opencv::core::{self, Mat, Point2f, Scalar, Size, Vector};
use opencv::imgcodecs;
use opencv::imgproc;
use opencv::prelude::*;

use super::document::{self, Found};
use super::OcrError;

/// Images narrower than this are scaled up. Receipt photos ~780 px wide read as well at
/// 900 as at 1,200, in 30 % fewer pixels (BENCHMARKS.md); at 700 second passes and misses
/// come back.
const MIN_WIDTH: i32 = 900;
/// Images wider than this are scaled down: Tesseract's time grows with the pixels, and a
/// MyKad photographed at 1,100 px still prints its smallest text ~25 px tall.
const MAX_WIDTH: i32 = 1_100;
/// Wider than any text stroke on a card at that scale (the bold IC number's are ~8 px): a
/// closing with this square erases the text and leaves the background with its shadows.
const BACKGROUND_KERNEL: i32 = 15;
/// The wider background of [`Binarization::EvenedWide`].
const WIDE_BACKGROUND_KERNEL: i32 = 25;
/// Width over height of a level ID-1 card (85.6 x 54 mm) is 1.59; a photo's perspective
/// moves it a little. Receipts are taller than wide.
const CARD_ASPECT: std::ops::RangeInclusive<f64> = 1.35..=1.85;

/// The most pixels an image may have at any step of its preparation: the widths above keep a
/// photo near 1,100 px wide, and the intake check keeps it within 1:20, so ~24 MP at most.
const MAX_WORKING_PIXELS: i64 = 25_000_000;
/// What a decoder may hand back: the intake limit's default (media.max_pixels).
const MAX_DECODED_PIXELS: u64 = 60_000_000;

/// Refuses an image grown past [`MAX_WORKING_PIXELS`] (checked after every step that sizes
/// one), so no input can make preparation allocate without bound.
fn bounded(image: Mat) -> Result<Mat, OcrError> {
    let pixels = i64::from(image.cols()) * i64::from(image.rows());
    if pixels > MAX_WORKING_PIXELS {
        return Err(OcrError::Image(format!(
            "{}x{} pixels while preparing, over {MAX_WORKING_PIXELS}",
            image.cols(),
            image.rows()
        )));
    }
    Ok(image)
}

fn cv(e: opencv::Error) -> OcrError {
    OcrError::Image(e.message)
}

/// How the straightened grayscale document becomes black text on white.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binarization {
    /// Light evened out (the image divided by its background), then one global Otsu
    /// threshold: cards, whose tinted, patterned background and shadow edges make a local
    /// threshold draw lines and speckles through the text.
    EvenedOtsu,
    /// A local (Gaussian adaptive) threshold: thin receipt print under blur keeps its
    /// strokes, which one global threshold thickens until 0 reads as 6 or 8.
    Adaptive,
    /// One global Otsu threshold on the light as photographed: a third, independent
    /// preparation to settle a card's number when the other two disagree.
    Otsu,
    /// Light evened over a wider background (and specks smoothed first), then Otsu: close
    /// enough to `EvenedOtsu` to read a card under uneven light as well, different enough
    /// that its misreads are not the same ones; a card's usual confirmation.
    EvenedWide,
}

impl Binarization {
    pub const ALL: [Binarization; 4] = [
        Binarization::EvenedOtsu,
        Binarization::Adaptive,
        Binarization::Otsu,
        Binarization::EvenedWide,
    ];

    /// The preparations that may confirm a card first read with this one, best first.
    pub fn confirmations(self) -> [Binarization; 3] {
        use Binarization::*;
        match self {
            EvenedOtsu => [EvenedWide, Adaptive, Otsu],
            EvenedWide => [EvenedOtsu, Adaptive, Otsu],
            Adaptive => [EvenedOtsu, EvenedWide, Otsu],
            Otsu => [EvenedOtsu, EvenedWide, Adaptive],
        }
    }

    /// The other method, for a second pass when the first reading does not validate.
    pub fn other(self) -> Self {
        match self {
            Binarization::EvenedOtsu | Binarization::Otsu | Binarization::EvenedWide => {
                Binarization::Adaptive
            }
            Binarization::Adaptive => Binarization::EvenedOtsu,
        }
    }
}

/// Clockwise quarter turns that bring a photo taken sideways or upside down upright.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Turn {
    #[default]
    None,
    Quarter,
    Half,
    ThreeQuarters,
}

impl Turn {
    pub const fn degrees(self) -> u16 {
        match self {
            Turn::None => 0,
            Turn::Quarter => 90,
            Turn::Half => 180,
            Turn::ThreeQuarters => 270,
        }
    }

    fn rotate_code(self) -> Option<i32> {
        match self {
            Turn::None => None,
            Turn::Quarter => Some(core::ROTATE_90_CLOCKWISE),
            Turn::Half => Some(core::ROTATE_180),
            Turn::ThreeQuarters => Some(core::ROTATE_90_COUNTERCLOCKWISE),
        }
    }
}

/// Where a pass looks for the document in the photo.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Framing {
    /// By its outline, and failing one, the largest bright region.
    #[default]
    Outline,
    /// The largest bright region, outline or not: a second view of a card whose outline
    /// gave no confirmed number (an outline of only part of the card, ending at the
    /// photo's frame printed on it).
    Region,
}

/// A prepared image, how it was binarized, and how the document was found.
#[derive(Debug)]
pub struct Prepared {
    pub png: Vec<u8>,
    pub binarization: Binarization,
    pub document: Found,
    /// The document's outline is framed by a screen's bezel (see `document::on_a_screen`).
    pub on_a_screen: bool,
    /// Where the document lies in the image, when its outline was found: words outside it
    /// are the table's.
    pub document_region: Option<crate::ocr::engine::Region>,
}

/// Photos with more pixels than this are decoded at half or a quarter of their size: the
/// rectified document is at most 1,100 px wide, and a full-size colour decode of a 60 MP
/// image would take 180 MB.
const FULL_DECODE_PIXELS: u64 = 6_000_000;

/// The image as a binarized PNG, ready for Tesseract, after `turn`. The document is found
/// by its outline and warped flat and upright; failing an outline, the largest bright
/// region is straightened and cropped. `binarization: None` chooses by the document's
/// shape: evened-out Otsu for a card-shaped document, adaptive otherwise.
pub fn prepare(
    bytes: &[u8],
    binarization: Option<Binarization>,
    turn: Turn,
) -> Result<Prepared, OcrError> {
    binarize(&straighten(bytes, turn, Framing::Outline)?, binarization)
}

/// The document found, flat and upright, in grayscale: what every binarization of a photo
/// (turned one way) starts from, so a second or third pass does not find it again.
#[derive(Debug)]
pub struct Straightened {
    gray: Mat,
    /// Width over height, when a document was found.
    aspect: Option<f64>,
    pub document: Found,
    pub on_a_screen: bool,
}

/// Decodes `bytes`, turns the image by `turn`, finds the document as `framing` says and
/// straightens it.
pub fn straighten(bytes: &[u8], turn: Turn, framing: Framing) -> Result<Straightened, OcrError> {
    let color = turned(decode(bytes)?, turn)?;
    let mut gray = Mat::default();
    imgproc::cvt_color(&color, &mut gray, imgproc::COLOR_BGR2GRAY, 0).map_err(cv)?;
    let mut on_a_screen = false;
    let outline = match framing {
        Framing::Outline => document::find(&color)?,
        Framing::Region => None,
    };
    let (straight, aspect, document) = match outline {
        Some(quad) => {
            on_a_screen = document::on_a_screen(&gray, &quad);
            let (flat, aspect) = document::rectify(&gray, &quad)?;
            (flat, Some(aspect), Found::Outline)
        }
        None => {
            let scaled = if gray.cols() < MIN_WIDTH {
                resize(&gray, f64::from(MIN_WIDTH) / f64::from(gray.cols()))?
            } else if gray.cols() > MAX_WIDTH {
                resize(&gray, f64::from(MAX_WIDTH) / f64::from(gray.cols()))?
            } else {
                gray
            };
            let (straight, aspect) = deskew(&bounded(scaled)?)?;
            let found = if aspect.is_some() {
                Found::Region
            } else {
                Found::Nothing
            };
            (straight, aspect, found)
        }
    };
    Ok(Straightened {
        gray: bounded(straight)?,
        aspect,
        document,
        on_a_screen,
    })
}

/// The straightened document binarized (`None`: by its shape) and encoded for Tesseract.
pub fn binarize(
    straightened: &Straightened,
    binarization: Option<Binarization>,
) -> Result<Prepared, OcrError> {
    let straight = &straightened.gray;
    let card_shaped = straightened
        .aspect
        .is_some_and(|aspect| CARD_ASPECT.contains(&aspect));
    let binarization = binarization.unwrap_or(if card_shaped {
        Binarization::EvenedOtsu
    } else {
        Binarization::Adaptive
    });
    let mut binary = match binarization {
        Binarization::EvenedOtsu => evened_otsu(straight, BACKGROUND_KERNEL)?,
        Binarization::EvenedWide => {
            let mut smoothed = Mat::default();
            imgproc::median_blur(straight, &mut smoothed, 3).map_err(cv)?;
            evened_otsu(&smoothed, WIDE_BACKGROUND_KERNEL)?
        }
        Binarization::Adaptive => adaptive(straight)?,
        Binarization::Otsu => otsu(straight)?,
    };
    // A white frame: Leptonica's PBM reader skips whitespace after the header, so a first
    // data byte of 0x20 or 0x0A (black pixels in the image's top-left corner) misaligned
    // every row and the image was refused; a white first row makes it 0x00.
    let frame = core::Rect::new(0, 0, binary.cols(), binary.rows());
    imgproc::rectangle(
        &mut binary,
        frame,
        Scalar::all(255.0),
        1,
        imgproc::LINE_8,
        0,
    )
    .map_err(cv)?;
    let mut png = Vector::<u8>::new();
    imgcodecs::imencode(".pbm", &binary, &mut png, &Vector::new()).map_err(cv)?;
    Ok(Prepared {
        png: png.to_vec(),
        binarization,
        document: straightened.document,
        on_a_screen: straightened.on_a_screen,
        document_region: (straightened.document == Found::Outline).then(document::outline_region),
    })
}

/// Decodes in colour (the document is found by colour as well as brightness), reduced
/// for photos over [`FULL_DECODE_PIXELS`].
fn decode(bytes: &[u8]) -> Result<Mat, OcrError> {
    let pixels = crate::media::sniff::sniff(bytes)
        .ok()
        .and_then(|format| {
            crate::media::sniff::dimensions(format, bytes)
                .ok()
                .flatten()
        })
        .map(|(w, h)| w * h);
    let mode = match pixels {
        Some(p) if p > FULL_DECODE_PIXELS * 4 => imgcodecs::IMREAD_REDUCED_COLOR_4,
        Some(p) if p > FULL_DECODE_PIXELS => imgcodecs::IMREAD_REDUCED_COLOR_2,
        _ => imgcodecs::IMREAD_COLOR,
    };
    let buffer = Vector::<u8>::from_slice(bytes);
    let decoded = imgcodecs::imdecode(&buffer, mode).map_err(cv)?;
    if decoded.empty() || decoded.cols() < 16 || decoded.rows() < 16 {
        return Err(OcrError::Image("the image could not be decoded".into()));
    }
    // The header was checked at intake; the decoder's own idea of the size is checked too.
    crate::media::sniff::check_pixels(
        decoded.cols() as u64,
        decoded.rows() as u64,
        MAX_DECODED_PIXELS,
    )
    .map_err(|e| OcrError::Image(e.to_string()))?;
    Ok(decoded)
}

fn turned(image: Mat, turn: Turn) -> Result<Mat, OcrError> {
    match turn.rotate_code() {
        None => Ok(image),
        Some(code) => {
            let mut out = Mat::default();
            core::rotate(&image, &mut out, code).map_err(cv)?;
            Ok(out)
        }
    }
}

fn resize(gray: &Mat, factor: f64) -> Result<Mat, OcrError> {
    // Area averaging shrinks without aliasing; cubic enlarges smoothly.
    let interpolation = if factor < 1.0 {
        imgproc::INTER_AREA
    } else {
        imgproc::INTER_CUBIC
    };
    let mut out = Mat::default();
    imgproc::resize(
        gray,
        &mut out,
        Size::new(0, 0),
        factor,
        factor,
        interpolation,
    )
    .map_err(cv)?;
    Ok(out)
}

fn adaptive(gray: &Mat) -> Result<Mat, OcrError> {
    let mut binary = Mat::default();
    imgproc::adaptive_threshold(
        gray,
        &mut binary,
        255.0,
        imgproc::ADAPTIVE_THRESH_GAUSSIAN_C,
        imgproc::THRESH_BINARY,
        31,
        15.0,
    )
    .map_err(cv)?;
    Ok(binary)
}

fn otsu(gray: &Mat) -> Result<Mat, OcrError> {
    let mut binary = Mat::default();
    imgproc::threshold(
        gray,
        &mut binary,
        0.0,
        255.0,
        imgproc::THRESH_BINARY | imgproc::THRESH_OTSU,
    )
    .map_err(cv)?;
    Ok(binary)
}

/// Divides the image by its background (a morphological closing erases the dark text and
/// keeps shadow edges where they are, which a blur would smear into lines), so the paper is
/// evenly white, then thresholds once with Otsu.
fn evened_otsu(gray: &Mat, kernel_size: i32) -> Result<Mat, OcrError> {
    let kernel = imgproc::get_structuring_element(
        imgproc::MORPH_RECT,
        Size::new(kernel_size, kernel_size),
        core::Point::new(-1, -1),
    )
    .map_err(cv)?;
    let mut background = Mat::default();
    imgproc::morphology_ex(
        gray,
        &mut background,
        imgproc::MORPH_CLOSE,
        &kernel,
        core::Point::new(-1, -1),
        1,
        core::BORDER_REPLICATE,
        Scalar::default(),
    )
    .map_err(cv)?;
    let mut evened = Mat::default();
    core::divide2(gray, &background, &mut evened, 255.0, -1).map_err(cv)?;
    otsu(&evened)
}

/// Rotates the document so its text lines are level, and crops to it: the document (a
/// card or a receipt) is the largest bright region of the photo, and the angle of its
/// minimum-area rectangle is the skew. Applied when the region is a good part of the photo
/// and the angle between 0.3 and 20 degrees. Also returns the level document's width over
/// its height, when a document was found.
fn deskew(gray: &Mat) -> Result<(Mat, Option<f64>), OcrError> {
    let bright = otsu(gray)?;
    let mut contours = Vector::<Vector<core::Point>>::new();
    imgproc::find_contours(
        &bright,
        &mut contours,
        imgproc::RETR_EXTERNAL,
        imgproc::CHAIN_APPROX_SIMPLE,
        core::Point::new(0, 0),
    )
    .map_err(cv)?;
    let mut largest: Option<(f64, Vector<core::Point>)> = None;
    for contour in contours.iter() {
        let area = imgproc::contour_area(&contour, false).map_err(cv)?;
        if largest.as_ref().is_none_or(|(a, _)| area > *a) {
            largest = Some((area, contour));
        }
    }
    let image_area = f64::from(gray.cols()) * f64::from(gray.rows());
    let Some((area, contour)) = largest else {
        return Ok((gray.clone(), None));
    };
    if area < image_area * 0.2 {
        return Ok((gray.clone(), None));
    }
    let rect = imgproc::min_area_rect(&contour).map_err(cv)?;
    let mut angle = f64::from(rect.angle);
    // OpenCV reports [0, 90); fold to the small correction (-45, 45]. The rectangle's width
    // runs along its angle, so a folded angle swaps width and height once level.
    let folded = angle > 45.0;
    if folded {
        angle -= 90.0;
    }
    let rotated = if angle.abs() < 0.3 || angle.abs() > 20.0 {
        gray.clone()
    } else {
        let center = Point2f::new(gray.cols() as f32 / 2.0, gray.rows() as f32 / 2.0);
        let rotation = imgproc::get_rotation_matrix_2d(center, angle, 1.0).map_err(cv)?;
        let mut out = Mat::default();
        imgproc::warp_affine(
            gray,
            &mut out,
            &rotation,
            gray.size().map_err(cv)?,
            // A few degrees of rotation: bilinear reads the same, at half of cubic's cost.
            imgproc::INTER_LINEAR,
            core::BORDER_REPLICATE,
            Scalar::default(),
        )
        .map_err(cv)?;
        out
    };
    // Crop to the document (its rectangle, now level), so the desk is not read as text.
    let (w, h) = if folded {
        (rect.size.height, rect.size.width)
    } else {
        (rect.size.width, rect.size.height)
    };
    let aspect = (h > 0.0).then(|| f64::from(w / h));
    // A margin around the document, so text at its very edge is not clipped.
    let (w, h) = (w * 1.04 + 8.0, h * 1.04 + 8.0);
    let x = (rect.center.x - w / 2.0).max(0.0) as i32;
    let y = (rect.center.y - h / 2.0).max(0.0) as i32;
    let width = (w as i32).min(rotated.cols() - x);
    let height = (h as i32).min(rotated.rows() - y);
    if width < 64 || height < 64 {
        return Ok((rotated, aspect));
    }
    let roi = Mat::roi(&rotated, core::Rect::new(x, y, width, height)).map_err(cv)?;
    Ok((roi.try_clone().map_err(cv)?, aspect))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A photo whose top-left pixels binarize to the byte 0x20 (`..#.....`) still gives a
    /// PBM that Tesseract's image reader takes (it once read that byte as whitespace).
    #[test]
    fn a_dark_top_left_corner_still_gives_a_readable_image() {
        let mut image =
            Mat::new_rows_cols_with_default(300, 900, core::CV_8UC1, Scalar::all(255.0)).unwrap();
        for y in 0..300 {
            *image.at_2d_mut::<u8>(y, 2).unwrap() = 0;
        }
        let mut png = Vector::<u8>::new();
        imgcodecs::imencode(".png", &image, &mut png, &Vector::new()).unwrap();
        for binarization in Binarization::ALL {
            let prepared = prepare(png.as_slice(), Some(binarization), Turn::None).unwrap();
            let mut tesseract = crate::ocr::engine::Engine::new(None, "eng").unwrap();
            assert!(
                tesseract
                    .recognize(&prepared.png, std::time::Duration::from_secs(30), None)
                    .is_ok(),
                "{binarization:?}"
            );
        }
    }
}
