//! Image preparation for Tesseract with OpenCV: decode, grayscale, scale small images up,
//! straighten a skewed photo, and binarize with an adaptive threshold (even light matters
//! more than anything on phone photos of cards and receipts).

use opencv::core::{self, Mat, Point2f, Scalar, Size, Vector};
use opencv::imgcodecs;
use opencv::imgproc;
use opencv::prelude::*;

use super::OcrError;

/// Text is read best at about 30 px per line: images narrower than this are scaled up.
const MIN_WIDTH: i32 = 1_200;

fn cv(e: opencv::Error) -> OcrError {
    OcrError::Image(e.message)
}

/// The image as a binarized PNG, ready for Tesseract.
pub fn prepare(bytes: &[u8]) -> Result<Vec<u8>, OcrError> {
    let buffer = Vector::<u8>::from_slice(bytes);
    let gray = imgcodecs::imdecode(&buffer, imgcodecs::IMREAD_GRAYSCALE).map_err(cv)?;
    if gray.empty() || gray.cols() < 16 || gray.rows() < 16 {
        return Err(OcrError::Image("the image could not be decoded".into()));
    }
    let scaled = if gray.cols() < MIN_WIDTH {
        let factor = f64::from(MIN_WIDTH) / f64::from(gray.cols());
        let mut out = Mat::default();
        imgproc::resize(
            &gray,
            &mut out,
            Size::new(0, 0),
            factor,
            factor,
            imgproc::INTER_CUBIC,
        )
        .map_err(cv)?;
        out
    } else {
        gray
    };
    let straight = deskew(&scaled)?;
    let mut binary = Mat::default();
    imgproc::adaptive_threshold(
        &straight,
        &mut binary,
        255.0,
        imgproc::ADAPTIVE_THRESH_GAUSSIAN_C,
        imgproc::THRESH_BINARY,
        31,
        15.0,
    )
    .map_err(cv)?;
    let mut png = Vector::<u8>::new();
    imgcodecs::imencode(".png", &binary, &mut png, &Vector::new()).map_err(cv)?;
    Ok(png.to_vec())
}

/// Rotates the document so its text lines are level, and crops to it: the document (a
/// card or a receipt) is the largest bright region of the photo, and the angle of its
/// minimum-area rectangle is the skew. Applied when the region is a good part of the photo
/// and the angle between 0.3 and 20 degrees.
fn deskew(gray: &Mat) -> Result<Mat, OcrError> {
    let mut bright = Mat::default();
    imgproc::threshold(
        gray,
        &mut bright,
        0.0,
        255.0,
        imgproc::THRESH_BINARY | imgproc::THRESH_OTSU,
    )
    .map_err(cv)?;
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
        return Ok(gray.clone());
    };
    if area < image_area * 0.2 {
        return Ok(gray.clone());
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
            imgproc::INTER_CUBIC,
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
    // A margin around the document, so text at its very edge is not clipped.
    let (w, h) = (w * 1.04 + 8.0, h * 1.04 + 8.0);
    let x = (rect.center.x - w / 2.0).max(0.0) as i32;
    let y = (rect.center.y - h / 2.0).max(0.0) as i32;
    let width = (w as i32).min(rotated.cols() - x);
    let height = (h as i32).min(rotated.rows() - y);
    if width < 64 || height < 64 {
        return Ok(rotated);
    }
    let roi = Mat::roi(&rotated, core::Rect::new(x, y, width, height)).map_err(cv)?;
    roi.try_clone().map_err(cv)
}
