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

/// Rotates the page so its text lines are level: the angle of the minimum-area rectangle
/// around the dark (ink) pixels, applied when it is between 0.3 and 15 degrees.
fn deskew(gray: &Mat) -> Result<Mat, OcrError> {
    let mut ink = Mat::default();
    imgproc::threshold(
        gray,
        &mut ink,
        0.0,
        255.0,
        imgproc::THRESH_BINARY_INV | imgproc::THRESH_OTSU,
    )
    .map_err(cv)?;
    let mut points = Mat::default();
    core::find_non_zero(&ink, &mut points).map_err(cv)?;
    if points.rows() < 100 {
        return Ok(gray.clone());
    }
    let rect = imgproc::min_area_rect(&points).map_err(cv)?;
    let mut angle = f64::from(rect.angle);
    // OpenCV reports (0, 90]; fold to the small correction (-45, 45].
    if angle > 45.0 {
        angle -= 90.0;
    }
    if angle.abs() < 0.3 || angle.abs() > 15.0 {
        return Ok(gray.clone());
    }
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
    Ok(out)
}
