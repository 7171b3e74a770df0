//! Finding the document (a card or a receipt) in a phone photo and undoing its perspective.
//! Customers photograph a card lying on a table at an angle: the document is a convex
//! quadrilateral, not a rectangle, and it is not always the brightest thing in the photo
//! (a white receipt on white granite, a card on light wood). So the outline is looked for
//! in several masks, each good where another fails: the bright region (Otsu), the region of
//! the colour at the photo's centre (where people put what they photograph), each main
//! colour, and closed edges; every convex four-cornered outline of plausible size and shape
//! is scored by how plainly its sides are the document's edge, and the best is warped to a
//! flat, upright document of a fixed resolution. Where no mask separates the document (a
//! white card on granite, whose flecks break every region apart), outlines are made of
//! the photo's long straight edges instead.

use opencv::core::{self, Mat, Point, Point2f, Scalar, Size, Vector};
use opencv::imgproc;
use opencv::prelude::*;

use super::OcrError;

/// Detection runs on a copy this long on its long side: outlines need no more, and every
/// mask costs a few milliseconds at this size (at 640 px detection took most of the
/// preparation's time for the same accuracy).
const DETECT_SIDE: f64 = 512.0;
/// A document smaller than this share of the photo is not looked for (a third of the frame
/// is the smallest customers send; a far smaller outline is a coin, a check of a tablecloth).
const MIN_AREA_SHARE: f64 = 0.08;
/// An outline covering nearly the whole photo is the photo's own edge.
const MAX_AREA_SHARE: f64 = 0.97;
/// Corner angles of a photographed rectangle: 25° of tilt and 15° of rotation keep them
/// well inside this.
const CORNER_DEGREES: std::ops::RangeInclusive<f64> = 50.0..=130.0;
/// An outline whose weakest side is an edge at fewer of its points than this is not the
/// document's (it cuts through the document, or runs through the table).
const MIN_SIDE_SUPPORT: f64 = 0.6;
/// Long side over short side, as photographed: a card is 1.59 level; receipts are long.
const MAX_ELONGATION: f64 = 8.0;

/// The outline is widened by this factor about its centre before the warp. An outline
/// found inside the document's edge (its darker side under uneven light) clips the first
/// letter or digit of every line, and every preparation of the card then agrees on the
/// same wrong number: at 1.06 the hard corpus had 5 such (7 read as 1, 6 as 5); at 1.15
/// none of them.
const MARGIN: f32 = 1.15;

/// The outline's area in a rectified document: what lies outside it is the margin, the
/// table around the document (its words are not the document's).
pub fn outline_region() -> crate::ocr::engine::Region {
    crate::ocr::engine::Region::inset((1.0 - 1.0 / MARGIN) / 2.0)
}
/// The rectified card: ID-1's 85.6 x 54 mm at the width the card preparation reads best.
pub const CARD_SIZE: (i32, i32) = (1_100, 694);
/// A card-shaped outline, long side over short side, as a tilted photo shows it.
const CARD_OUTLINE: std::ops::RangeInclusive<f64> = 1.25..=2.1;
/// The rectified receipt's width (its length follows its outline).
pub const RECEIPT_WIDTH: i32 = 900;

/// A document's four corners in the photo: top-left, top-right, bottom-right, bottom-left.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quad(pub [Point2f; 4]);

/// One side of a quad: where it starts, its vector to the next corner, and its unit normal
/// pointing out of the quad.
struct Side {
    start: Point2f,
    along: (f32, f32),
    out: (f32, f32),
}

impl Side {
    /// `count` points evenly along the middle `span` of the side, starting `from` its start
    /// (shares of its length): each with its share `t` and where it lies.
    fn points(&self, count: usize, from: f32, span: f32) -> impl Iterator<Item = (f32, Point2f)> {
        let (a, (dx, dy)) = (self.start, self.along);
        (0..count).map(move |k| {
            let t = from + span * (k as f32 + 0.5) / count as f32;
            (t, Point2f::new(a.x + dx * t, a.y + dy * t))
        })
    }
}

impl Quad {
    fn centre(&self) -> Point2f {
        let sum = self
            .0
            .iter()
            .fold((0.0, 0.0), |(x, y), p| (x + p.x, y + p.y));
        Point2f::new(sum.0 / 4.0, sum.1 / 4.0)
    }

    fn sides(&self) -> [Side; 4] {
        let centre = self.centre();
        std::array::from_fn(|i| {
            let (a, b) = (self.0[i], self.0[(i + 1) % 4]);
            let (dx, dy) = (b.x - a.x, b.y - a.y);
            let length = dx.hypot(dy).max(1e-3);
            let (mut nx, mut ny) = (dy / length, -dx / length);
            let (mx, my) = ((a.x + b.x) / 2.0, (a.y + b.y) / 2.0);
            if (mx - centre.x) * nx + (my - centre.y) * ny < 0.0 {
                (nx, ny) = (-nx, -ny);
            }
            Side {
                start: a,
                along: (dx, dy),
                out: (nx, ny),
            }
        })
    }

    /// The shortest of its four sides, in pixels.
    fn short_side(&self) -> f32 {
        let c = self.0;
        distance(c[0], c[1])
            .min(distance(c[1], c[2]))
            .min(distance(c[2], c[3]))
            .min(distance(c[3], c[0])) as f32
    }

    /// Width and height as photographed: the longer of each pair of opposite sides.
    fn size(&self) -> (f64, f64) {
        let [tl, tr, br, bl] = self.0;
        (
            distance(tl, tr).max(distance(bl, br)),
            distance(tl, bl).max(distance(tr, br)),
        )
    }
}

/// What was found, for the reading's record and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Found {
    /// A four-cornered outline, perspective undone.
    Outline,
    /// No clean outline: the largest bright region, straightened and cropped.
    Region,
    /// Nothing: the whole photo.
    #[default]
    Nothing,
}

fn cv(e: opencv::Error) -> OcrError {
    OcrError::Image(e.message)
}

/// The document's outline in `color` (BGR), in its coordinates, or `None`.
pub fn find(color: &Mat) -> Result<Option<Quad>, OcrError> {
    let long = f64::from(color.cols().max(color.rows()));
    let factor = (DETECT_SIDE / long).min(1.0);
    let mut small = Mat::default();
    imgproc::resize(
        color,
        &mut small,
        Size::new(0, 0),
        factor,
        factor,
        imgproc::INTER_AREA,
    )
    .map_err(cv)?;
    let mut smooth = Mat::default();
    // Wood grain, granite speckle and print are finer than a document's edge.
    imgproc::median_blur(&small, &mut smooth, 5).map_err(cv)?;
    let mut gray = Mat::default();
    imgproc::cvt_color(&smooth, &mut gray, imgproc::COLOR_BGR2GRAY, 0).map_err(cv)?;

    let mut edges = Mat::default();
    imgproc::canny(&gray, &mut edges, 40.0, 120.0, 3, false).map_err(cv)?;
    let mut masks = vec![
        bright_mask(&gray)?,
        evenly_bright_mask(&gray)?,
        centre_colour_mask(&smooth)?,
        edge_mask(&edges)?,
    ];
    masks.extend(colour_masks(&smooth)?);
    let area = f64::from(small.cols()) * f64::from(small.rows());
    let scene = Scene::new(&small, gray, edges)?;
    let mut regions = Vec::new();
    for mask in &masks {
        regions.extend(outlines(mask, area)?);
    }
    let mut best = best_outline(regions, &scene)?;
    // Straight edges only where no region stood out: on a checked cloth the checks' lines
    // make larger, equally well-edged outlines than the card that the masks found.
    if best.is_none() {
        best = best_outline(line_quads(&scene, area)?, &scene)?;
    }
    Ok(best.map(|quad| {
        let scale = (1.0 / factor) as f32;
        Quad(quad.0.map(|p| Point2f::new(p.x * scale, p.y * scale)))
    }))
}

/// The highest-scoring of `quads` that can be a document at all (the first of equals).
fn best_outline(quads: Vec<Quad>, scene: &Scene) -> Result<Option<Quad>, OcrError> {
    let mut best: Option<(f64, Quad)> = None;
    for quad in quads {
        let score = score(&quad, scene)?;
        if score > 0.0 && best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, quad));
        }
    }
    Ok(best.map(|(_, quad)| quad))
}

/// The document warped flat and upright: a card to [`CARD_SIZE`], anything else to
/// [`RECEIPT_WIDTH`] wide and as long as its outline says. Also returns width over height
/// of the result.
pub fn rectify(gray: &Mat, quad: &Quad) -> Result<(Mat, f64), OcrError> {
    // A margin around the outline (see MARGIN).
    let c = quad.centre();
    let widened = quad
        .0
        .map(|p| Point2f::new(c.x + (p.x - c.x) * MARGIN, c.y + (p.y - c.y) * MARGIN));
    let quad = &Quad(widened);
    let (width, height) = quad.size();
    let (out_w, out_h) = if (height > 0.0) && CARD_OUTLINE.contains(&(width / height)) {
        CARD_SIZE
    } else {
        let out_w = RECEIPT_WIDTH;
        let out_h = (f64::from(out_w) * height / width.max(1.0)).round() as i32;
        (out_w, out_h.clamp(64, out_w * 20))
    };
    let source = Vector::<Point2f>::from_slice(&quad.0);
    let target = Vector::<Point2f>::from_slice(&[
        Point2f::new(0.0, 0.0),
        Point2f::new(out_w as f32 - 1.0, 0.0),
        Point2f::new(out_w as f32 - 1.0, out_h as f32 - 1.0),
        Point2f::new(0.0, out_h as f32 - 1.0),
    ]);
    let transform =
        imgproc::get_perspective_transform(&source, &target, core::DECOMP_LU).map_err(cv)?;
    let mut flat = Mat::default();
    imgproc::warp_perspective(
        gray,
        &mut flat,
        &transform,
        Size::new(out_w, out_h),
        imgproc::INTER_LINEAR,
        core::BORDER_REPLICATE,
        Scalar::default(),
    )
    .map_err(cv)?;
    Ok((flat, f64::from(out_w) / f64::from(out_h)))
}

/// Darker than this is a screen's bezel (or a black table).
const BEZEL_GRAY: f32 = 60.0;

/// How far across a side (share of the document's short side, out of it positive) the
/// gray profile is taken: far enough in to reach the card shown past a phone's dark screen
/// margin, far enough out to reach the table past its bezel and body.
const PROFILE: std::ops::RangeInclusive<i32> = -40..=50;
/// A bezel starts this near the outline (share of the short side): the outline found is
/// the card on the screen, the screen, or the phone.
const BEZEL_NEAR: f32 = 0.12;
/// A bezel is at least this thick (share of the short side): a card's shadow, its rim or a
/// dark line of print is thinner.
const BEZEL_THICK: f32 = 0.02;

/// Points along each side where a screen's frame is looked for, away from the corners.
const FRAME_SAMPLES: usize = 16;

/// Samples (hundredths of the short side) past a bezel that must all be lighter than it.
const LIGHTER_RUN: usize = 3;

/// Whether the document is shown on a phone's or monitor's screen rather than lying on a
/// table: a dark frame around it (the bezel) that something lighter lies beyond. Either
/// test of the frame is enough: a steady band wherever it lies near the outline
/// ([`steady_bezel`]), or a near-black band right at it ([`framed`]: outside, or inside
/// when the outline found is the phone's own). A photo of a screen is no proof of holding
/// the card.
pub fn on_a_screen(gray: &Mat, quad: &Quad) -> bool {
    steady_bezel(gray, quad)
        || framed(gray, quad, 1.0, [0.35, 0.5])
        || framed(gray, quad, -1.0, [0.25, 0.35])
}

/// Across each side, a dark band (the bezel, with the screen's dark margin or the phone's
/// body beside it) starts within [`BEZEL_NEAR`] of the outline, at least [`BEZEL_THICK`]
/// thick, at a steady distance, on three sides or more; and on two sides or more it ends
/// at a steady distance in something lighter on the far side from the document: the table
/// beyond the phone when the band is outside the outline, the card on the screen when the
/// outline is the phone's and the band inside it. A card on a black table has the band but
/// no end to it; a checked cloth's squares and a dark granite's flecks come and go at any
/// distance.
fn steady_bezel(gray: &Mat, quad: &Quad) -> bool {
    let short = quad.short_side();
    let (mut dark_sides, mut bounded_sides) = (0, 0);
    for side in quad.sides() {
        let (nx, ny) = side.out;
        // Per sample across the side: the dark band's edge nearer the document, and its
        // far edge when something lighter lies past it.
        let (mut near, mut far) = (Vec::new(), Vec::new());
        for (t, Point2f { x: px, y: py }) in side.points(FRAME_SAMPLES, 0.15, 0.7) {
            let profile: Vec<(f32, Option<f32>)> = PROFILE
                .map(|step| {
                    let offset = step as f32 / 100.0;
                    let v = gray_at(gray, px + nx * short * offset, py + ny * short * offset);
                    (offset, v)
                })
                .collect();
            if let Some(band) = bezel(&profile) {
                near.push((t, band.near));
                if band.bounded {
                    far.push((t, band.far));
                }
            }
        }
        // A bezel runs along the side at a steady distance, and ends at one; a checked
        // cloth's squares or a dark granite's flecks come and go at any distance.
        dark_sides +=
            u32::from(near.len() * 10 >= FRAME_SAMPLES * 6 && spread(&near) <= BEZEL_STEADY);
        bounded_sides +=
            u32::from(far.len() * 10 >= FRAME_SAMPLES * 4 && spread(&far) <= BEZEL_STEADY);
    }
    // Three sides are enough: an outline found a little off (a shadow taken in) misses the
    // band along one; the ends of a phone show the screen's dark margin beyond its bezel.
    dark_sides >= 3 && bounded_sides >= 2
}

/// How far (t, value) points stray from the straight line through them: the
/// interquartile range of their residuals (a side found a little askew tilts the line,
/// which is no wandering). Infinite for fewer than three points.
fn spread(points: &[(f32, f32)]) -> f32 {
    let n = points.len();
    if n < 3 {
        return f32::MAX;
    }
    let mean_t = points.iter().map(|p| p.0).sum::<f32>() / n as f32;
    let mean_v = points.iter().map(|p| p.1).sum::<f32>() / n as f32;
    let (mut tv, mut tt) = (0.0, 0.0);
    for (t, v) in points {
        tv += (t - mean_t) * (v - mean_v);
        tt += (t - mean_t) * (t - mean_t);
    }
    let slope = if tt > 0.0 { tv / tt } else { 0.0 };
    let mut residuals: Vec<f32> = points
        .iter()
        .map(|(t, v)| v - mean_v - slope * (t - mean_t))
        .collect();
    residuals.sort_by(f32::total_cmp);
    residuals[(3 * n) / 4] - residuals[n / 4]
}

/// How much a bezel's edges may wander across one side (share of the short side): a
/// photo's perspective moves them little.
const BEZEL_STEADY: f32 = 0.03;

/// A dark band across one side, as shares of the short side from the outline.
struct Band {
    /// Its edge nearer the document's content.
    near: f32,
    /// Its edge away from it.
    far: f32,
    /// Something lighter lies past `far` for a stretch.
    bounded: bool,
}

/// The dark band in a gray `profile` across a side ((offset, gray) from inside out), if
/// one starts near the outline and is thick enough.
fn bezel(profile: &[(f32, Option<f32>)]) -> Option<Band> {
    let is_dark = |v: Option<f32>| v.is_some_and(|v| v < BEZEL_GRAY);
    let seed = profile
        .iter()
        .position(|(offset, v)| offset.abs() <= BEZEL_NEAR && is_dark(*v))?;
    let first = profile[..seed]
        .iter()
        .rposition(|(_, v)| !is_dark(*v))
        .map_or(0, |i| i + 1);
    let last = profile[seed..]
        .iter()
        .position(|(_, v)| !is_dark(*v))
        .map_or(profile.len() - 1, |i| seed + i - 1);
    let (from, to) = (profile[first].0, profile[last].0);
    if to - from < BEZEL_THICK {
        return None;
    }
    let band: Vec<f32> = profile[first..=last]
        .iter()
        .filter_map(|(_, v)| *v)
        .collect();
    let mean = band.iter().sum::<f32>() / band.len().max(1) as f32;
    // Away from the document: outward for a band mostly outside the outline, inward for
    // one inside it (the outline is the phone's).
    let outward = from + to >= 0.0;
    let beyond = if outward {
        &profile[last + 1..]
    } else {
        &profile[..first]
    };
    // Lighter for a stretch: a fleck of a dark granite table is not the table's end.
    let bounded = beyond
        .split(|(_, v)| !v.is_some_and(|v| v - mean > 40.0))
        .any(|run| run.len() >= LIGHTER_RUN);
    let (near, far) = if outward { (from, to) } else { (to, from) };
    Some(Band { near, far, bounded })
}

/// A dark band along three sides or more of `quad` (80 % of its samples near-black), just
/// outside it (`direction` 1) or just inside (-1), with a lighter band at `beyond` (shares
/// of the short side) on two sides or more.
fn framed(gray: &Mat, quad: &Quad, direction: f32, beyond: [f32; 2]) -> bool {
    let short = quad.short_side();
    let at = |x: f32, y: f32| gray_at(gray, x, y);
    let (mut dark_sides, mut lighter_beyond) = (0, 0);
    for side in quad.sides() {
        let (nx, ny) = (side.out.0 * direction, side.out.1 * direction);
        let (mut side_near, mut side_far, mut far_seen) = (0.0f32, 0.0f32, 0u32);
        let (mut side_seen, mut side_dark) = (0u32, 0u32);
        for (_, Point2f { x: px, y: py }) in side.points(FRAME_SAMPLES, 0.15, 0.7) {
            for offset in [0.015, 0.03, 0.045] {
                if let Some(v) = at(px + nx * short * offset, py + ny * short * offset) {
                    side_seen += 1;
                    side_near += v;
                    side_dark += u32::from(v < BEZEL_GRAY);
                }
            }
            for offset in beyond {
                if let Some(v) = at(px + nx * short * offset, py + ny * short * offset) {
                    far_seen += 1;
                    side_far += v;
                }
            }
        }
        dark_sides += u32::from(side_seen > 0 && side_dark * 5 >= side_seen * 4);
        if side_seen > 0 && far_seen > 0 {
            let (near_mean, far_mean) = (side_near / side_seen as f32, side_far / far_seen as f32);
            lighter_beyond += u32::from(far_mean - near_mean > 40.0);
        }
    }
    // Three sides are enough: an outline found a little off (a shadow taken in) misses the
    // band along one.
    dark_sides >= 3 && lighter_beyond >= 2
}

/// The gray level of the 8-bit `gray` at (x, y), rounded to a pixel; `None` off the image.
fn gray_at(gray: &Mat, x: f32, y: f32) -> Option<f32> {
    let (x, y) = (x.round() as i32, y.round() as i32);
    if x < 0 || y < 0 || x >= gray.cols() || y >= gray.rows() {
        return None;
    }
    gray.at_2d::<u8>(y, x).ok().map(|v| f32::from(*v))
}

fn distance(a: Point2f, b: Point2f) -> f64 {
    f64::from((a.x - b.x).hypot(a.y - b.y))
}

/// The bright region: a card or a receipt on a darker table.
fn bright_mask(gray: &Mat) -> Result<Mat, OcrError> {
    let mut mask = Mat::default();
    imgproc::threshold(
        gray,
        &mut mask,
        0.0,
        255.0,
        imgproc::THRESH_BINARY | imgproc::THRESH_OTSU,
    )
    .map_err(cv)?;
    close(&mask, 9)
}

/// The region bright on average over a few text lines: paper against a speckled or
/// grained table of the same white (granite, laminate), whose dark flecks lower its mean
/// more than print lowers the paper's.
fn evenly_bright_mask(gray: &Mat) -> Result<Mat, OcrError> {
    let mut mean = Mat::default();
    imgproc::blur(
        gray,
        &mut mean,
        Size::new(21, 21),
        Point::new(-1, -1),
        core::BORDER_REPLICATE,
    )
    .map_err(cv)?;
    bright_mask(&mean)
}

/// Pixels whose colour is near the photo's centre (in Lab, where distance follows what the
/// eye sees): the document on a table of another colour, however bright the table.
fn centre_colour_mask(smooth: &Mat) -> Result<Mat, OcrError> {
    let mut lab = Mat::default();
    imgproc::cvt_color(smooth, &mut lab, imgproc::COLOR_BGR2Lab, 0).map_err(cv)?;
    let (cols, rows) = (lab.cols(), lab.rows());
    let patch = core::Rect::new(
        cols * 2 / 5,
        rows * 2 / 5,
        (cols / 5).max(1),
        (rows / 5).max(1),
    );
    // The median of the centre patch: print on the document does not move it.
    let roi = Mat::roi(&lab, patch).map_err(cv)?.try_clone().map_err(cv)?;
    let pixels = roi.data_bytes().map_err(cv)?;
    let mut centre = [0u8; 3];
    for (channel, value) in centre.iter_mut().enumerate() {
        let mut values: Vec<u8> = pixels.iter().skip(channel).step_by(3).copied().collect();
        values.sort_unstable();
        *value = values.get(values.len() / 2).copied().unwrap_or(0);
    }
    let lab = if lab.is_continuous() {
        lab
    } else {
        lab.try_clone().map_err(cv)?
    };
    let bytes = lab.data_bytes().map_err(cv)?;
    let mut distance =
        Mat::new_rows_cols_with_default(rows, cols, core::CV_8UC1, Scalar::all(0.0)).map_err(cv)?;
    {
        let out = distance.data_bytes_mut().map_err(cv)?;
        for (pixel, value) in bytes.chunks_exact(3).zip(out.iter_mut()) {
            let d: f32 = pixel
                .iter()
                .zip(centre)
                .map(|(a, b)| {
                    let d = f32::from(*a) - f32::from(b);
                    d * d
                })
                .sum::<f32>()
                .sqrt();
            *value = d.min(255.0) as u8;
        }
    }
    let mut near = Mat::default();
    imgproc::threshold(
        &distance,
        &mut near,
        0.0,
        255.0,
        imgproc::THRESH_BINARY_INV | imgproc::THRESH_OTSU,
    )
    .map_err(cv)?;
    close(&near, 15)
}

/// Colours in a photo of a document on a table: a few (the document, the table's one or
/// two, what lies around).
const COLOURS: usize = 4;

/// One mask per main colour of the photo (k-means in Lab): the document where it is
/// neither the brightest thing nor at the centre (a card at the edge of a checked cloth).
/// Written out rather than OpenCV's `kmeans`, which seeds from a shared random state:
/// the same photo must always be read the same way.
fn colour_masks(smooth: &Mat) -> Result<Vec<Mat>, OcrError> {
    // Colours need no detail: a quarter of the pixels, the masks scaled back.
    let mut half = Mat::default();
    imgproc::resize(
        smooth,
        &mut half,
        Size::new(0, 0),
        0.5,
        0.5,
        imgproc::INTER_AREA,
    )
    .map_err(cv)?;
    let mut lab = Mat::default();
    imgproc::cvt_color(&half, &mut lab, imgproc::COLOR_BGR2Lab, 0).map_err(cv)?;
    let lab = if lab.is_continuous() {
        lab
    } else {
        lab.try_clone().map_err(cv)?
    };
    let pixels: Vec<[f32; 3]> = lab
        .data_bytes()
        .map_err(cv)?
        .chunks_exact(3)
        .map(|p| [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])])
        .collect();
    let centres = kmeans(&pixels, COLOURS);
    let labels: Vec<usize> = pixels.iter().map(|p| nearest(p, &centres)).collect();
    let mut masks = Vec::with_capacity(centres.len());
    for cluster in 0..centres.len() {
        let mut mask = Mat::new_rows_cols_with_default(
            lab.rows(),
            lab.cols(),
            core::CV_8UC1,
            Scalar::all(0.0),
        )
        .map_err(cv)?;
        for (value, label) in mask.data_bytes_mut().map_err(cv)?.iter_mut().zip(&labels) {
            *value = if *label == cluster { 255 } else { 0 };
        }
        let mut full = Mat::default();
        imgproc::resize(
            &close(&mask, 5)?,
            &mut full,
            smooth.size().map_err(cv)?,
            0.0,
            0.0,
            imgproc::INTER_NEAREST,
        )
        .map_err(cv)?;
        masks.push(full);
    }
    Ok(masks)
}

/// Lloyd's k-means on every 3rd pixel, seeded by lightness quantiles (deterministic).
fn kmeans(pixels: &[[f32; 3]], k: usize) -> Vec<[f32; 3]> {
    let samples: Vec<[f32; 3]> = pixels.iter().step_by(3).copied().collect();
    if samples.len() < k {
        return samples;
    }
    let mut by_lightness = samples.clone();
    by_lightness.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let mut centres: Vec<[f32; 3]> = (0..k)
        .map(|i| by_lightness[(2 * i + 1) * by_lightness.len() / (2 * k)])
        .collect();
    for _ in 0..8 {
        let mut sums = vec![[0f32; 4]; k];
        for p in &samples {
            let sum = &mut sums[nearest(p, &centres)];
            sum[0] += p[0];
            sum[1] += p[1];
            sum[2] += p[2];
            sum[3] += 1.0;
        }
        for (centre, sum) in centres.iter_mut().zip(&sums) {
            if sum[3] > 0.0 {
                *centre = [sum[0] / sum[3], sum[1] / sum[3], sum[2] / sum[3]];
            }
        }
    }
    centres
}

/// The index of the centre nearest to `p` (the first of equals).
fn nearest(p: &[f32; 3], centres: &[[f32; 3]]) -> usize {
    let mut best = (f32::MAX, 0);
    for (i, c) in centres.iter().enumerate() {
        let d = (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2) + (p[2] - c[2]).powi(2);
        if d < best.0 {
            best = (d, i);
        }
    }
    best.1
}

/// Closed edges (of the Canny `edges`): the document's outline where neither its
/// brightness nor its colour sets it apart, only the step at its edge.
fn edge_mask(edges: &Mat) -> Result<Mat, OcrError> {
    let kernel =
        imgproc::get_structuring_element(imgproc::MORPH_RECT, Size::new(3, 3), Point::new(-1, -1))
            .map_err(cv)?;
    let mut thick = Mat::default();
    imgproc::dilate(
        edges,
        &mut thick,
        &kernel,
        Point::new(-1, -1),
        2,
        core::BORDER_CONSTANT,
        imgproc::morphology_default_border_value().map_err(cv)?,
    )
    .map_err(cv)?;
    Ok(thick)
}

/// A closing with a `size` square: fills the print inside a document's region.
fn close(mask: &Mat, size: i32) -> Result<Mat, OcrError> {
    let kernel = imgproc::get_structuring_element(
        imgproc::MORPH_RECT,
        Size::new(size, size),
        Point::new(-1, -1),
    )
    .map_err(cv)?;
    let mut out = Mat::default();
    imgproc::morphology_ex(
        mask,
        &mut out,
        imgproc::MORPH_CLOSE,
        &kernel,
        Point::new(-1, -1),
        1,
        core::BORDER_CONSTANT,
        imgproc::morphology_default_border_value().map_err(cv)?,
    )
    .map_err(cv)?;
    Ok(out)
}

/// Convex four-cornered outlines of the mask's regions that are large enough.
fn outlines(mask: &Mat, area: f64) -> Result<Vec<Quad>, OcrError> {
    let mut contours = Vector::<Vector<Point>>::new();
    imgproc::find_contours(
        mask,
        &mut contours,
        imgproc::RETR_LIST,
        imgproc::CHAIN_APPROX_SIMPLE,
        Point::new(0, 0),
    )
    .map_err(cv)?;
    let mut quads = Vec::new();
    for contour in contours.iter() {
        let contour_area = imgproc::contour_area(&contour, false).map_err(cv)?;
        if contour_area < area * MIN_AREA_SHARE || contour_area > area * MAX_AREA_SHARE {
            continue;
        }
        let mut hull = Vector::<Point>::new();
        imgproc::convex_hull(&contour, &mut hull, false, true).map_err(cv)?;
        let hull_area = imgproc::contour_area(&hull, false).map_err(cv)?;
        // A region much smaller than its hull is not one document (a document with the
        // table's texture attached, two documents).
        if contour_area < hull_area * 0.8 {
            continue;
        }
        let perimeter = imgproc::arc_length(&hull, true).map_err(cv)?;
        let mut approx = Vector::<Point>::new();
        imgproc::approx_poly_dp(&hull, &mut approx, 0.02 * perimeter, true).map_err(cv)?;
        let polygon: Vec<Point2f> = approx
            .iter()
            .map(|p| Point2f::new(p.x as f32, p.y as f32))
            .collect();
        let Some(corners) = four_corners(polygon) else {
            continue;
        };
        let quad = ordered(corners);
        let outline = Vector::<Point2f>::from_slice(&quad.0);
        if !imgproc::is_contour_convex(&outline).map_err(cv)? {
            continue;
        }
        let quad_area = imgproc::contour_area(&outline, false).map_err(cv)?;
        // The outline must be the region, not cut through it or far around it.
        if (0.85..=1.15).contains(&(hull_area / quad_area.max(1.0))) {
            quads.push(quad);
        }
    }
    Ok(quads)
}

/// A straight edge in the photo: the longest of the Hough segments along it.
#[derive(Clone, Copy, Debug)]
struct EdgeLine {
    a: Point2f,
    b: Point2f,
    /// Direction in radians, in [0, pi).
    direction: f32,
    /// Total length of the segments found along it.
    length: f32,
}

impl EdgeLine {
    fn distance_to(&self, p: Point2f) -> f32 {
        let (dx, dy) = (self.b.x - self.a.x, self.b.y - self.a.y);
        ((p.x - self.a.x) * dy - (p.y - self.a.y) * dx).abs() / dx.hypot(dy).max(1e-3)
    }
}

/// The angle between two directions in [0, pi), in degrees (0 to 90).
fn angle_between(a: f32, b: f32) -> f32 {
    let d = (a - b).abs().to_degrees() % 180.0;
    d.min(180.0 - d)
}

/// Segments closer than this in direction (degrees) and offset (pixels at detection size)
/// are one edge, broken by a fleck or a glare.
const SAME_LINE: (f32, f32) = (3.0, 4.0);
/// A Hough segment this long (share of the photo's long side) can be part of a document's
/// side; a table's flecks give none so long.
const MIN_SEGMENT_SHARE: f64 = 0.08;
/// Edge pixels on a Hough segment, at least; and the gap (pixels at detection size) a
/// segment bridges, a fleck lying across the document's side or a glare along it.
const HOUGH_VOTES: i32 = 30;
const HOUGH_GAP: f64 = 8.0;
/// The longest edges kept for quads: a document's four sides are among the longest
/// straight edges in a photo of it.
const MAX_LINES: usize = 12;
/// Opposite sides of a photographed rectangle differ in direction by at most this
/// (degrees): 25° of perspective leaves them well inside.
const OPPOSITE_DEGREES: f32 = 30.0;

/// Four-cornered outlines made of the photo's long straight edges, two roughly parallel
/// pairs meeting at near right angles: the document where no mask separates it as one
/// region (a white card on granite, whose flecks break every mask into pieces) but its
/// sides are still long straight steps.
fn line_quads(scene: &Scene, area: f64) -> Result<Vec<Quad>, OcrError> {
    let lines = edge_lines(&scene.edges)?;
    let pairs: Vec<(EdgeLine, EdgeLine)> = lines
        .iter()
        .enumerate()
        .flat_map(|(i, x)| lines[i + 1..].iter().map(move |y| (*x, *y)))
        .filter(|(x, y)| angle_between(x.direction, y.direction) <= OPPOSITE_DEGREES)
        .collect();
    let meet = |p: &EdgeLine, q: &EdgeLine| intersection(p.a, p.b, q.a, q.b);
    let mut quads = Vec::new();
    for (i, (top, bottom)) in pairs.iter().enumerate() {
        for (left, right) in &pairs[i + 1..] {
            if angle_between(top.direction, left.direction) < 90.0 - OPPOSITE_DEGREES {
                continue;
            }
            let (Some(c0), Some(c1), Some(c2), Some(c3)) = (
                meet(top, left),
                meet(top, right),
                meet(bottom, right),
                meet(bottom, left),
            ) else {
                continue;
            };
            let outline = Vector::<Point2f>::from_slice(&[c0, c1, c2, c3]);
            if !imgproc::is_contour_convex(&outline).map_err(cv)? {
                continue;
            }
            let share = imgproc::contour_area(&outline, false).map_err(cv)? / area;
            if (MIN_AREA_SHARE..=MAX_AREA_SHARE).contains(&share) {
                quads.push(ordered([c0, c1, c2, c3]));
            }
        }
    }
    Ok(quads)
}

/// The [`MAX_LINES`] longest straight edges among the Canny `edges`: Hough segments, those
/// along one line (broken by a fleck or a glare) merged.
fn edge_lines(edges: &Mat) -> Result<Vec<EdgeLine>, OcrError> {
    let long = f64::from(edges.cols().max(edges.rows()));
    let mut segments = Vector::<core::Vec4i>::new();
    imgproc::hough_lines_p(
        edges,
        &mut segments,
        1.0,
        std::f64::consts::PI / 180.0,
        HOUGH_VOTES,
        long * MIN_SEGMENT_SHARE,
        HOUGH_GAP,
    )
    .map_err(cv)?;
    let mut found: Vec<EdgeLine> = segments
        .iter()
        .map(|s| {
            let (a, b) = (
                Point2f::new(s[0] as f32, s[1] as f32),
                Point2f::new(s[2] as f32, s[3] as f32),
            );
            EdgeLine {
                a,
                b,
                direction: (b.y - a.y)
                    .atan2(b.x - a.x)
                    .rem_euclid(std::f32::consts::PI),
                length: (b.x - a.x).hypot(b.y - a.y),
            }
        })
        .collect();
    found.sort_by(|x, y| y.length.total_cmp(&x.length));
    let mut lines: Vec<EdgeLine> = Vec::new();
    for segment in found {
        let middle = Point2f::new(
            (segment.a.x + segment.b.x) / 2.0,
            (segment.a.y + segment.b.y) / 2.0,
        );
        match lines.iter_mut().find(|line| {
            angle_between(line.direction, segment.direction) < SAME_LINE.0
                && line.distance_to(middle) < SAME_LINE.1
        }) {
            Some(line) => line.length += segment.length,
            None => lines.push(segment),
        }
    }
    lines.sort_by(|x, y| y.length.total_cmp(&x.length));
    lines.truncate(MAX_LINES);
    Ok(lines)
}

/// A convex polygon reduced to four corners: its shortest side is dropped and the two
/// sides beside it extended to meet, until four are left. A document's corner clipped by a
/// shadow, a thumb or its rounding comes back where its edges meet.
fn four_corners(mut polygon: Vec<Point2f>) -> Option<[Point2f; 4]> {
    while polygon.len() > 4 {
        let n = polygon.len();
        let shortest = (0..n).min_by(|&i, &j| {
            let side = |k: usize| distance(polygon[k], polygon[(k + 1) % n]);
            side(i).total_cmp(&side(j))
        })?;
        let (before, from, to, after) = (
            polygon[(shortest + n - 1) % n],
            polygon[shortest],
            polygon[(shortest + 1) % n],
            polygon[(shortest + 2) % n],
        );
        let corner = intersection(before, from, to, after)?;
        polygon[shortest] = corner;
        polygon.remove((shortest + 1) % n);
    }
    (polygon.len() == 4).then(|| [polygon[0], polygon[1], polygon[2], polygon[3]])
}

/// Where the line through `a`, `b` meets the line through `c`, `d`; `None` when they are
/// (nearly) parallel.
fn intersection(a: Point2f, b: Point2f, c: Point2f, d: Point2f) -> Option<Point2f> {
    let (r, s) = ((b.x - a.x, b.y - a.y), (d.x - c.x, d.y - c.y));
    let cross = r.0 * s.1 - r.1 * s.0;
    if cross.abs() < 1e-3 * (r.0.hypot(r.1) * s.0.hypot(s.1)).max(1e-6) {
        return None;
    }
    let t = ((c.x - a.x) * s.1 - (c.y - a.y) * s.0) / cross;
    Some(Point2f::new(a.x + t * r.0, a.y + t * r.1))
}

/// Corners in reading order: top-left has the smallest x + y, bottom-right the largest;
/// top-right the smallest y - x, bottom-left the largest. Holds for a document turned by
/// less than 45°, which is what the quarter turns leave.
fn ordered(points: [Point2f; 4]) -> Quad {
    let by = |key: fn(&Point2f) -> f32, largest: bool| {
        let mut best = points[0];
        for p in points {
            let better = if largest {
                key(&p) > key(&best)
            } else {
                key(&p) < key(&best)
            };
            if better {
                best = p;
            }
        }
        best
    };
    Quad([
        by(|p| p.x + p.y, false),
        by(|p| p.y - p.x, false),
        by(|p| p.x + p.y, true),
        by(|p| p.y - p.x, true),
    ])
}

/// What outlines are scored against: the photo at detection size.
struct Scene {
    gray: Mat,
    mean_gray: f64,
    /// Lab, blurred over a few text lines: the mean colour of a patch, print and table
    /// texture averaged out. Continuous, 3 bytes a pixel.
    lab: Mat,
    /// Canny edges of `gray`: a document's side is one sharp step even where the colours
    /// either side of it differ little (a white card on white laminate, under glare).
    edges: Mat,
    /// The gray level's gradient (x, y; Sobel, f32): an edge belongs to a side only where
    /// it runs along it, not a fleck's rim that the side happens to cross.
    gradient: (Mat, Mat),
    area: f64,
    centre: Point2f,
}

impl Scene {
    fn new(small: &Mat, gray: Mat, edges: Mat) -> Result<Scene, OcrError> {
        let mut lab = Mat::default();
        imgproc::cvt_color(small, &mut lab, imgproc::COLOR_BGR2Lab, 0).map_err(cv)?;
        let mut blurred = Mat::default();
        imgproc::blur(
            &lab,
            &mut blurred,
            Size::new(9, 9),
            Point::new(-1, -1),
            core::BORDER_REPLICATE,
        )
        .map_err(cv)?;
        let sobel = |dx: i32, dy: i32| -> Result<Mat, OcrError> {
            let mut out = Mat::default();
            imgproc::sobel(
                &gray,
                &mut out,
                core::CV_32F,
                dx,
                dy,
                3,
                1.0,
                0.0,
                core::BORDER_REPLICATE,
            )
            .map_err(cv)?;
            Ok(out)
        };
        let gradient = (sobel(1, 0)?, sobel(0, 1)?);
        Ok(Scene {
            mean_gray: core::mean(&gray, &core::no_array()).map_err(cv)?[0],
            gradient,
            area: f64::from(small.cols()) * f64::from(small.rows()),
            centre: Point2f::new(small.cols() as f32 / 2.0, small.rows() as f32 / 2.0),
            gray,
            lab: blurred,
            edges,
        })
    }

    /// The gray level just inside (x, y) minus just outside, across the side with inward
    /// normal (nx, ny).
    fn step_across(&self, x: f32, y: f32, (nx, ny): (f32, f32)) -> Option<f32> {
        let at = |x: f32, y: f32| gray_at(&self.gray, x, y);
        let reach = EDGE_REACH as f32;
        Some(at(x + nx * reach, y + ny * reach)? - at(x - nx * reach, y - ny * reach)?)
    }

    /// Whether an edge pixel running along the side lies within [`EDGE_REACH`] of (x, y)
    /// along the side's normal (nx, ny): its gradient points across the side.
    fn edge_across(&self, x: f32, y: f32, (nx, ny): (f32, f32)) -> bool {
        (-EDGE_REACH..=EDGE_REACH).any(|step| {
            let (px, py) = (
                (x + nx * step as f32).round() as i32,
                (y + ny * step as f32).round() as i32,
            );
            if px < 0 || py < 0 || px >= self.edges.cols() || py >= self.edges.rows() {
                return false;
            }
            if !self.edges.at_2d::<u8>(py, px).is_ok_and(|v| *v > 0) {
                return false;
            }
            let (Ok(gx), Ok(gy)) = (
                self.gradient.0.at_2d::<f32>(py, px),
                self.gradient.1.at_2d::<f32>(py, px),
            ) else {
                return false;
            };
            (gx * nx + gy * ny).abs() >= EDGE_ALIGNMENT * gx.hypot(*gy)
        })
    }

    fn lab_at(&self, x: f32, y: f32) -> Option<[f32; 3]> {
        let (x, y) = (x.round() as i32, y.round() as i32);
        if x < 0 || y < 0 || x >= self.lab.cols() || y >= self.lab.rows() {
            return None;
        }
        let pixel = self.lab.at_2d::<core::Vec3b>(y, x).ok()?;
        Some([
            f32::from(pixel[0]),
            f32::from(pixel[1]),
            f32::from(pixel[2]),
        ])
    }
}

/// Points sampled along each side, away from the (often rounded) corners.
const SIDE_SAMPLES: usize = 24;
/// How far inside and outside a side its two colours are taken, at detection size.
const SIDE_OFFSET: f32 = 6.0;
/// Colour difference (Lab, blurred) across a side where it is the document's edge.
const EDGE_CONTRAST: f32 = 14.0;
/// How far from a side, in pixels at detection size, an edge found by Canny still counts
/// as that side's: a corner placed a pixel or two off tilts the side by as much.
const EDGE_REACH: i32 = 3;
/// The least gray step across an edge, the document's way, for it to count as the side's.
const MIN_EDGE_STEP: f32 = 3.0;
/// The least cosine between an edge's gradient and a side's normal for the edge to run
/// along the side (within about 35°).
const EDGE_ALIGNMENT: f32 = 0.8;

/// The share of points along the quad's weakest side where the colour just inside differs
/// from the colour just outside, or an edge runs along it: near 1 for a document's real
/// edge all along, low for an outline that cuts through the document or runs through an
/// even table, 0 for one along the photo's border.
fn side_support(quad: &Quad, scene: &Scene) -> f64 {
    let mut weakest = 1.0f64;
    for side in quad.sides() {
        // The side's normal pointing inside.
        let (nx, ny) = (-side.out.0, -side.out.1);
        // Per sample: colours differ plainly, or an edge is there with its step (inside
        // minus outside) measured.
        let mut samples: Vec<(bool, Option<f32>)> = Vec::with_capacity(SIDE_SAMPLES);
        for (_, Point2f { x: px, y: py }) in side.points(SIDE_SAMPLES, 0.1, 0.8) {
            let inside = scene.lab_at(px + nx * SIDE_OFFSET, py + ny * SIDE_OFFSET);
            let outside = scene.lab_at(px - nx * SIDE_OFFSET, py - ny * SIDE_OFFSET);
            let (Some(inside), Some(outside)) = (inside, outside) else {
                continue; // the side runs off the photo here
            };
            let difference = inside
                .iter()
                .zip(outside)
                .map(|(p, q)| (p - q) * (p - q))
                .sum::<f32>()
                .sqrt();
            let step = scene
                .edge_across(px, py, (nx, ny))
                .then(|| scene.step_across(px, py, (nx, ny)))
                .flatten();
            samples.push((difference > EDGE_CONTRAST, step));
        }
        // A side along the photo's border is no edge of a document: customers photograph
        // the whole card or receipt, and a region cut off by the frame is the table.
        if samples.len() < SIDE_SAMPLES / 2 {
            return 0.0;
        }
        // A document's side steps the same way all along (paper brighter than the table,
        // or darker); an outline run through a speckled table meets edges stepping both
        // ways.
        let sign = samples.iter().filter_map(|s| s.1).sum::<f32>().signum();
        let supported = samples
            .iter()
            .filter(|(contrasted, step)| {
                *contrasted || step.is_some_and(|step| step * sign >= MIN_EDGE_STEP)
            })
            .count();
        weakest = weakest.min(supported as f64 / samples.len() as f64);
    }
    weakest
}

/// How far beyond the photo (share of its long side) a corner may lie: a rounded corner's
/// sides meet just outside the document, and a document's corner may touch the frame.
const CORNER_SLACK: f32 = 0.02;

/// How much an outline looks like the document: its share of the photo, weighed by how
/// clearly its weakest side is an edge, and down when its corners are not near right
/// angles, it is not brighter than the photo (paper is), or it misses the photo's centre.
/// 0 for an outline that cannot be a document.
fn score(quad: &Quad, scene: &Scene) -> Result<f64, OcrError> {
    let corners = quad.0;
    let distinct = corners
        .iter()
        .enumerate()
        .all(|(i, a)| corners[i + 1..].iter().all(|b| distance(*a, *b) > 8.0));
    // Customers photograph the whole document: an outline with a corner beyond the photo
    // (sides extended to meet there) is a region the frame cut off, the table's.
    let (cols, rows) = (scene.gray.cols() as f32, scene.gray.rows() as f32);
    let slack = cols.max(rows) * CORNER_SLACK;
    let in_frame = |p: &Point2f| {
        (-slack..=cols + slack).contains(&p.x) && (-slack..=rows + slack).contains(&p.y)
    };
    if !distinct || !corners.iter().all(in_frame) {
        return Ok(0.0);
    }
    for i in 0..4 {
        let (prev, at, next) = (corners[(i + 3) % 4], corners[i], corners[(i + 1) % 4]);
        let (ax, ay) = (f64::from(prev.x - at.x), f64::from(prev.y - at.y));
        let (bx, by) = (f64::from(next.x - at.x), f64::from(next.y - at.y));
        let cos = (ax * bx + ay * by) / ((ax.hypot(ay) * bx.hypot(by)).max(1e-9));
        if !CORNER_DEGREES.contains(&cos.clamp(-1.0, 1.0).acos().to_degrees()) {
            return Ok(0.0);
        }
    }
    let (width, height) = quad.size();
    if width.max(height) / width.min(height).max(1.0) > MAX_ELONGATION {
        return Ok(0.0);
    }
    let support = side_support(quad, scene);
    if support < MIN_SIDE_SUPPORT {
        return Ok(0.0);
    }
    let outline = Vector::<Point2f>::from_slice(&corners);
    let share = imgproc::contour_area(&outline, false).map_err(cv)? / scene.area;
    let gray = &scene.gray;
    let mut inside =
        Mat::new_rows_cols_with_default(gray.rows(), gray.cols(), core::CV_8UC1, Scalar::all(0.0))
            .map_err(cv)?;
    let polygon: Vector<Point> = corners
        .iter()
        .map(|p| Point::new(p.x.round() as i32, p.y.round() as i32))
        .collect();
    imgproc::fill_convex_poly(
        &mut inside,
        &polygon,
        Scalar::all(255.0),
        imgproc::LINE_8,
        0,
    )
    .map_err(cv)?;
    let inside_gray = core::mean(gray, &inside).map_err(cv)?[0];
    let brighter = if inside_gray >= scene.mean_gray {
        1.0
    } else {
        0.5
    };
    let centred = if imgproc::point_polygon_test(&outline, scene.centre, false).map_err(cv)? >= 0.0
    {
        1.0
    } else {
        0.6
    };
    Ok(share * support * support * brighter * centred)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A light card, tilted in perspective, on a darker textured table: the outline found
    /// is within a few pixels (at detection size) of the card's corners.
    #[test]
    fn finds_a_tilted_card_on_a_textured_table() {
        let (w, h) = (1200, 900);
        let mut photo = Mat::new_rows_cols_with_default(
            h,
            w,
            core::CV_8UC3,
            Scalar::new(60.0, 90.0, 130.0, 0.0),
        )
        .unwrap();
        // Wood-like stripes.
        for y in (0..h).step_by(7) {
            imgproc::line(
                &mut photo,
                Point::new(0, y),
                Point::new(w, y + 30),
                Scalar::new(50.0, 75.0, 115.0, 0.0),
                2,
                imgproc::LINE_8,
                0,
            )
            .unwrap();
        }
        let corners = [
            Point::new(330, 250),
            Point::new(900, 290),
            Point::new(860, 660),
            Point::new(300, 620),
        ];
        let polygon = Vector::<Point>::from_slice(&corners);
        imgproc::fill_convex_poly(
            &mut photo,
            &polygon,
            Scalar::new(240.0, 228.0, 214.0, 0.0),
            imgproc::LINE_8,
            0,
        )
        .unwrap();
        let quad = find(&photo).unwrap().expect("the card is found");
        assert_near(&quad, corners);
        let mut gray = Mat::default();
        imgproc::cvt_color(&photo, &mut gray, imgproc::COLOR_BGR2GRAY, 0).unwrap();
        let (flat, aspect) = rectify(&gray, &quad).unwrap();
        assert_eq!((flat.cols(), flat.rows()), CARD_SIZE);
        assert!((aspect - 1.585).abs() < 0.01);
    }

    /// A light card drawn at `card` on a `table` grey, inside a `bezel` grey frame 12 % of
    /// its short side wide when given.
    fn scene(table: f64, bezel: Option<f64>) -> (Mat, Quad) {
        let mut photo =
            Mat::new_rows_cols_with_default(900, 1200, core::CV_8UC1, Scalar::all(table)).unwrap();
        if let Some(bezel) = bezel {
            imgproc::rectangle(
                &mut photo,
                core::Rect::new(264, 214, 672, 472),
                Scalar::all(bezel),
                -1,
                imgproc::LINE_8,
                0,
            )
            .unwrap();
        }
        imgproc::rectangle(
            &mut photo,
            core::Rect::new(300, 250, 600, 400),
            Scalar::all(225.0),
            -1,
            imgproc::LINE_8,
            0,
        )
        .unwrap();
        let p = |x: f32, y: f32| Point2f::new(x, y);
        let quad = Quad([
            p(300.0, 250.0),
            p(899.0, 250.0),
            p(899.0, 649.0),
            p(300.0, 649.0),
        ]);
        (photo, quad)
    }

    #[test]
    fn a_card_framed_by_a_bezel_is_on_a_screen_and_one_on_a_black_table_is_not() {
        let (photo, quad) = scene(170.0, Some(15.0));
        assert!(on_a_screen(&photo, &quad));
        // The phone's outline found instead of the screen's: the bezel is inside it.
        let p = |x: f32, y: f32| Point2f::new(x, y);
        let phone = Quad([
            p(264.0, 214.0),
            p(935.0, 214.0),
            p(935.0, 685.0),
            p(264.0, 685.0),
        ]);
        assert!(on_a_screen(&photo, &phone));
        let (photo, quad) = scene(20.0, None);
        assert!(!on_a_screen(&photo, &quad), "a black table is no bezel");
        let (photo, quad) = scene(120.0, None);
        assert!(!on_a_screen(&photo, &quad));
    }

    #[test]
    fn a_bezel_well_inside_an_outline_drawn_around_the_phone_is_found() {
        // The outline found runs 24 px (6 % of the card's short side) outside the phone
        // and a little askew: the bezel is inside it, further in than `framed` looks.
        let (photo, _) = scene(170.0, Some(15.0));
        let p = |x: f32, y: f32| Point2f::new(x, y);
        let around = Quad([
            p(240.0, 186.0),
            p(960.0, 194.0),
            p(960.0, 712.0),
            p(240.0, 706.0),
        ]);
        assert!(steady_bezel(&photo, &around));
        assert!(!framed(&photo, &around, -1.0, [0.25, 0.35]));
        assert!(on_a_screen(&photo, &around));
    }

    #[test]
    fn a_card_on_a_checked_cloth_is_not_on_a_screen() {
        // Dark and light squares 30 px wide (7.5 % of the card's short side): a dark one
        // lies near every point of the card's edge, at a distance that comes and goes.
        let (mut photo, quad) = scene(220.0, None);
        for row in 0..30 {
            for col in 0..40 {
                let (x, y) = (col * 30 + 13, row * 30 + 7);
                let inside_card = (300..900).contains(&x) && (250..650).contains(&y);
                if (row + col) % 2 == 0 && !inside_card {
                    imgproc::rectangle(
                        &mut photo,
                        core::Rect::new(x, y, 30, 30),
                        Scalar::all(30.0),
                        -1,
                        imgproc::LINE_8,
                        0,
                    )
                    .unwrap();
                }
            }
        }
        assert!(!steady_bezel(&photo, &quad));
        assert!(!on_a_screen(&photo, &quad));
    }

    #[test]
    fn a_straight_trend_is_no_spread() {
        let askew: Vec<(f32, f32)> = (0..10)
            .map(|i| (i as f32 / 10.0, 0.05 * i as f32))
            .collect();
        assert!(spread(&askew) < 1e-4);
        let wandering: Vec<(f32, f32)> = (0..10)
            .map(|i| (i as f32 / 10.0, if i % 2 == 0 { 0.0 } else { 0.1 }))
            .collect();
        assert!(spread(&wandering) > 0.05);
        assert_eq!(spread(&askew[..2]), f32::MAX, "two points say nothing");
    }

    #[test]
    fn a_photo_of_nothing_in_particular_has_no_outline() {
        let photo =
            Mat::new_rows_cols_with_default(600, 800, core::CV_8UC3, Scalar::all(128.0)).unwrap();
        assert_eq!(find(&photo).unwrap(), None);
    }

    #[test]
    fn a_clipped_corner_is_restored_where_the_edges_meet() {
        let p = |x: f32, y: f32| Point2f::new(x, y);
        // A 400 x 250 card with its bottom-left corner cut off diagonally.
        let clipped = vec![
            p(0.0, 0.0),
            p(400.0, 0.0),
            p(400.0, 250.0),
            p(30.0, 250.0),
            p(0.0, 220.0),
        ];
        let corners = four_corners(clipped).unwrap();
        assert!(corners
            .iter()
            .any(|c| c.x.abs() < 0.01 && (c.y - 250.0).abs() < 0.01));
        assert_eq!(
            four_corners(vec![p(0.0, 0.0), p(1.0, 0.0), p(0.0, 1.0)]),
            None
        );
    }

    #[test]
    fn corners_are_put_in_reading_order() {
        let p = |x: f32, y: f32| Point2f::new(x, y);
        let quad = ordered([p(90.0, 80.0), p(10.0, 12.0), p(12.0, 70.0), p(95.0, 5.0)]);
        assert_eq!(
            quad.0,
            [p(10.0, 12.0), p(95.0, 5.0), p(90.0, 80.0), p(12.0, 70.0)]
        );
    }

    /// A card barely lighter than its table (10 grey levels) but with a thin dark rim
    /// along its sides, as a card's edge photographs: found at its corners. (The real
    /// photos where only the edges set the card apart are in tests/ocr.rs.)
    #[test]
    fn a_card_barely_lighter_than_its_table_is_found_by_its_edges() {
        let (mut photo, corners) = faint_card();
        let polygon = Vector::<Point>::from_slice(&corners);
        let mut outline = Vector::<Vector<Point>>::new();
        outline.push(polygon);
        imgproc::polylines(
            &mut photo,
            &outline,
            true,
            Scalar::all(120.0),
            2,
            imgproc::LINE_8,
            0,
        )
        .unwrap();
        let quad = find(&photo).unwrap().expect("the card is found");
        assert_near(&quad, corners);
    }

    /// Each corner found within 20 px of the true one: found at detection size and scaled
    /// back, within ~1.5 % of the photo.
    fn assert_near(quad: &Quad, corners: [Point; 4]) {
        for (found, truth) in quad.0.iter().zip(corners) {
            let off = (found.x - truth.x as f32).hypot(found.y - truth.y as f32);
            assert!(off < 20.0, "{quad:?} against {corners:?}");
        }
    }

    /// The same card without its rim: neither its colours (10 grey levels) nor an edge
    /// set it apart, and no outline is made up.
    #[test]
    fn the_same_card_without_edges_is_not_found() {
        let (photo, _) = faint_card();
        assert_eq!(find(&photo).unwrap(), None);
    }

    /// A card 10 grey levels lighter than its table, tilted in perspective, and its
    /// corners.
    fn faint_card() -> (Mat, [Point; 4]) {
        let mut photo =
            Mat::new_rows_cols_with_default(900, 1200, core::CV_8UC3, Scalar::all(205.0)).unwrap();
        let corners = [
            Point::new(330, 250),
            Point::new(900, 290),
            Point::new(860, 660),
            Point::new(300, 620),
        ];
        imgproc::fill_convex_poly(
            &mut photo,
            &Vector::<Point>::from_slice(&corners),
            Scalar::all(215.0),
            imgproc::LINE_8,
            0,
        )
        .unwrap();
        (photo, corners)
    }

    #[test]
    fn segments_along_one_edge_are_one_line_and_directions_wrap() {
        assert!((angle_between(0.0, std::f32::consts::PI - 0.01).abs() - 0.57).abs() < 0.01);
        assert!((angle_between(0.0, std::f32::consts::FRAC_PI_2) - 90.0).abs() < 1e-3);
        let mut edges =
            Mat::new_rows_cols_with_default(384, 512, core::CV_8UC1, Scalar::all(0.0)).unwrap();
        // One side broken by a gap wider than the Hough gap, and a second, crossing line.
        for (from, to) in [
            ((40, 100), (200, 120)),
            ((240, 125), (420, 148)),
            ((300, 20), (320, 360)),
        ] {
            imgproc::line(
                &mut edges,
                Point::new(from.0, from.1),
                Point::new(to.0, to.1),
                Scalar::all(255.0),
                1,
                imgproc::LINE_8,
                0,
            )
            .unwrap();
        }
        let lines = edge_lines(&edges).unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines
            .iter()
            .any(|l| l.length > 320.0 && angle_between(l.direction, 0.125) < 2.0));
    }
}
