//! The OCR pipeline (OpenCV + Tesseract) on the committed synthetic photos of
//! tests/fixtures/ocr (made by loadtest/ocr_corpus.py, truth in truth.json), and on bad
//! images: corrupt, oversized, and a decompression bomb.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::Value;

use sembang::media::{MediaError, MediaLimits};
use sembang::ocr::document::Found;
use sembang::ocr::pipeline::{CardCheck, ConfirmedBy};
use sembang::ocr::preprocess::{Binarization, Turn};
use sembang::ocr::{process, process_with_budget, OcrError, OcrPool, PipelineError, Reading};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ocr")
}

fn truth() -> Vec<Value> {
    truth_in(&fixtures())
}

/// The generator's truth.json in `dir`.
fn truth_in(dir: &std::path::Path) -> Vec<Value> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap()
}

/// Every photo of `dir`'s truth.json read through a pool, with its truth.
async fn read_each(dir: &std::path::Path) -> Vec<(Value, sembang::ocr::OcrOutput)> {
    let pool = OcrPool::start(2, 4, None, "eng+msa").unwrap();
    let mut read = Vec::new();
    for expected in truth_in(dir) {
        let bytes = std::fs::read(dir.join(expected["file"].as_str().unwrap())).unwrap();
        let output = process(&pool, bytes, &MediaLimits::default(), day())
            .await
            .unwrap();
        read.push((expected, output));
    }
    read
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 11, 25).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_every_committed_card_and_receipt_exactly() {
    let pool = OcrPool::start(2, 4, None, "eng+msa").unwrap();
    for expected in truth() {
        let file = expected["file"].as_str().unwrap();
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        let output = process(&pool, bytes, &MediaLimits::default(), day())
            .await
            .unwrap();
        match (&output.reading, expected["kind"].as_str().unwrap()) {
            (Reading::MyKad(card), "ic") => {
                // Confirmed by its number's line read alone in a second preparation, and
                // by the printed gender word.
                assert_eq!(
                    output.card_check,
                    Some(CardCheck::Confirmed {
                        gender_word: true,
                        by: ConfirmedBy::NumberLine
                    }),
                    "{file}"
                );
                assert_eq!(output.passes, 2, "{file}: read, then confirmed");
                assert_eq!(output.document, Found::Outline, "{file}");
                assert_eq!(card.ic.digits(), expected["ic"], "{file}");
                assert_eq!(card.name.as_deref(), expected["name"].as_str(), "{file}");
                assert_eq!(card.ic.gender().as_str(), expected["gender"], "{file}");
                assert_eq!(
                    card.postcode.as_deref(),
                    expected["postcode"].as_str(),
                    "{file}"
                );
            }
            (Reading::Receipt(receipt), "receipt") => {
                assert_eq!(output.binarization, Binarization::Adaptive, "{file}");
                assert_eq!(output.card_check, None, "{file}");
                assert_eq!(
                    output.passes, 1,
                    "{file}: a clean receipt validates on the first read"
                );
                assert_eq!(receipt.total().to_string(), expected["total"], "{file}");
                let date = receipt.details().date.map(|d| d.to_string());
                assert_eq!(date.as_deref(), expected["date"].as_str(), "{file}");
            }
            (other, kind) => panic!(
                "{file}: expected {kind}, read {other:?}\n{}",
                output.recognized.text
            ),
        }
        assert!(output.recognized.confidence > 50.0, "{file}");
        assert_eq!(output.turn, Turn::None, "{file}");
        assert_eq!(output.media.sha256.len(), 64);
    }
}

/// `photo` turned clockwise by `degrees`, as a JPEG (a phone held sideways or upside down).
fn turned(photo: &[u8], degrees: u16) -> Vec<u8> {
    use opencv::core::{self, Mat, Vector, VectorToVec};
    use opencv::imgcodecs;
    let image = imgcodecs::imdecode(&Vector::from_slice(photo), imgcodecs::IMREAD_COLOR).unwrap();
    let code = match degrees {
        90 => core::ROTATE_90_CLOCKWISE,
        180 => core::ROTATE_180,
        270 => core::ROTATE_90_COUNTERCLOCKWISE,
        _ => unreachable!(),
    };
    let mut out = Mat::default();
    core::rotate(&image, &mut out, code).unwrap();
    let mut jpeg = Vector::<u8>::new();
    imgcodecs::imencode(".jpg", &out, &mut jpeg, &Vector::new()).unwrap();
    jpeg.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_photos_taken_sideways_and_upside_down() {
    let pool = OcrPool::start(2, 4, None, "eng+msa").unwrap();
    let all = truth();
    for file in ["card-0001.jpg", "receipt-0001.jpg"] {
        let expected = all.iter().find(|t| t["file"] == file).unwrap();
        let photo = std::fs::read(fixtures().join(file)).unwrap();
        for (degrees, correction) in [
            (90, Turn::ThreeQuarters),
            (180, Turn::Half),
            (270, Turn::Quarter),
        ] {
            // A budget no debug build on a busy machine runs out of: the turns are tested
            // here, the budget below.
            let output = process_with_budget(
                &pool,
                turned(&photo, degrees),
                &MediaLimits::default(),
                day(),
                Duration::from_secs(120),
            )
            .await
            .unwrap();
            let case = format!("{file} turned {degrees}");
            match &output.reading {
                Reading::MyKad(card) => {
                    assert_eq!(card.ic.digits(), expected["ic"], "{case}");
                    assert_eq!(card.name.as_deref(), expected["name"].as_str(), "{case}");
                }
                Reading::Receipt(receipt) => {
                    assert_eq!(receipt.total().to_string(), expected["total"], "{case}");
                }
                other => panic!("{case}: read {other:?}\n{}", output.recognized.text),
            }
            assert_eq!(output.turn, correction, "{case}");
            assert!(output.passes >= 2, "{case}: the upright reading came first");
        }
    }
}

/// With no budget left after the first pass, no turn is tried: the best reading so far
/// (nothing, for a receipt photographed sideways) is the answer, not a wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_stops_extra_passes() {
    let pool = OcrPool::start(1, 1, None, "eng+msa").unwrap();
    let photo = std::fs::read(fixtures().join("receipt-0001.jpg")).unwrap();
    let output = process_with_budget(
        &pool,
        turned(&photo, 90),
        &MediaLimits::default(),
        day(),
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(output.passes, 1);
    assert_eq!(output.turn, Turn::None);
    assert!(matches!(output.reading, Reading::Rejected { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_images_are_typed_errors_not_crashes() {
    let pool = OcrPool::start(1, 1, None, "eng").unwrap();
    // A JPEG header over garbage.
    let mut corrupt = vec![0xFF, 0xD8, 0xFF, 0xE0];
    corrupt.extend(std::iter::repeat_n(0x42u8, 4_000));
    let err = process(&pool, corrupt, &MediaLimits::default(), day())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PipelineError::Ocr(OcrError::Image(_))
                | PipelineError::Media(MediaError::Corrupt { .. })
        ),
        "{err:?}"
    );
    // Over the byte limit.
    let photo = std::fs::read(fixtures().join("card-0001.jpg")).unwrap();
    let small = MediaLimits {
        max_bytes: 10_000,
        ..MediaLimits::default()
    };
    let err = process(&pool, photo, &small, day()).await.unwrap_err();
    assert_eq!(err.kind(), "too_large");
    // A PNG whose header claims 50,000 x 50,000 pixels: refused before decoding.
    let bomb = support::png_header(50_000, 50_000, 0);
    let err = process(&pool, bomb, &MediaLimits::default(), day())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "too_many_pixels");
    // Not an image at all.
    let err = process(
        &pool,
        b"<html>hi</html>".to_vec(),
        &MediaLimits::default(),
        day(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), "unsupported_format");
    // A strip of 60 x 1,000,000: under the pixel limit, but scaled to a readable width it
    // would be 13.5 gigapixels. Refused from its header.
    let strip = support::png_header(60, 1_000_000, 0);
    let err = process(&pool, strip, &MediaLimits::default(), day())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "misshapen");
    // A real, decodable strip (8 x 400) meets the same refusal from the decoder's size.
    let real_strip = {
        use opencv::core::{Mat, Scalar, Vector, VectorToVec, CV_8UC1};
        use opencv::imgcodecs;
        let image = Mat::new_rows_cols_with_default(400, 8, CV_8UC1, Scalar::all(255.0)).unwrap();
        let mut png = Vector::<u8>::new();
        imgcodecs::imencode(".png", &image, &mut png, &Vector::new()).unwrap();
        png.to_vec()
    };
    let err = process(&pool, real_strip, &MediaLimits::default(), day())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "misshapen");
}

/// Past its deadline a photo is answered as unreadable (a typed error), whatever the pool
/// is doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_not_read_within_its_deadline_is_a_typed_error() {
    use sembang::ocr::process_within;
    let pool = OcrPool::start(1, 1, None, "eng+msa").unwrap();
    let photo = std::fs::read(fixtures().join("receipt-0001.jpg")).unwrap();
    let err = process_within(
        &pool,
        photo.clone(),
        &MediaLimits::default(),
        day(),
        std::time::Duration::from_millis(1),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), "deadline");
    assert!(matches!(
        err,
        PipelineError::Ocr(OcrError::Deadline { ms: 1 })
    ));
    // With time enough, the same photo reads.
    process_within(
        &pool,
        photo,
        &MediaLimits::default(),
        day(),
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap();
}

#[test]
fn sembang_ocr_prints_the_fields_of_ic_parse_and_receipt_parse() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sembang"))
        .args(["ocr", "--json", "--on", "2025-11-25"])
        .arg(fixtures().join("card-0001.jpg"))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["kind"], "ic");
    let expected = &truth()[0];
    assert_eq!(
        report["ic"]["normalized"]
            .as_str()
            .map(|s| s.replace('-', "")),
        expected["ic"].as_str().map(String::from)
    );
    for field in [
        "masked",
        "birth_date",
        "age",
        "gender",
        "place_of_birth_code",
    ] {
        assert!(!report["ic"][field].is_null(), "{field}");
    }
    let receipt = std::process::Command::new(env!("CARGO_BIN_EXE_sembang"))
        .args(["ocr", "--json"])
        .arg(fixtures().join("receipt-0001.jpg"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&receipt.stdout).unwrap();
    assert_eq!(report["kind"], "receipt");
    for field in ["merchant", "date", "total", "subtotal", "confidence"] {
        assert!(report["receipt"].get(field).is_some(), "{field}");
    }
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_sembang"))
        .args(["ocr", "/nonexistent.jpg"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

/// The committed phone photos (tests/fixtures/ocr-phone, `loadtest/ocr_corpus.py --phone
/// --cards 6 --receipts 6 --refuse 3 --seed 31`, not chosen by how they read): cards and
/// receipts on tables, in perspective, under glare and shadows, recompressed; and a blank
/// card, a card on a phone's screen and a card with its number covered. Nothing is ever
/// accepted wrong: a card's number is right or refused, a trusted total is right, and no
/// photo that must be refused gives an accepted card. Most are read (the benchmark has the
/// rates on 430 such photos).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_photos_are_read_or_refused_never_accepted_wrong() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ocr-phone");
    let (mut cards_right, mut totals_right, mut refused) = (0, 0, 0);
    for (expected, output) in read_each(&dir).await {
        let file = expected["file"].as_str().unwrap();
        let case = format!("{file}: {:?}\n{}", output.reading, output.recognized.text);
        match expected["kind"].as_str().unwrap() {
            "ic" => {
                if let Reading::MyKad(card) = &output.reading {
                    assert_eq!(card.ic.digits(), expected["ic"], "accepted wrong: {case}");
                    assert!(matches!(
                        output.card_check,
                        Some(CardCheck::Confirmed { .. })
                    ));
                    cards_right += 1;
                }
            }
            "receipt" => {
                if output.reading.is_trusted() {
                    let Reading::Receipt(receipt) = &output.reading else {
                        panic!("{case}")
                    };
                    assert_eq!(
                        receipt.total().to_string(),
                        expected["total"],
                        "trusted wrong: {case}"
                    );
                    totals_right += 1;
                }
            }
            _ => {
                assert!(
                    !matches!(output.reading, Reading::MyKad(_)),
                    "{} must be refused: {case}",
                    expected["case"]
                );
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 3);
    assert!(cards_right >= 5, "{cards_right} of 6 cards read");
    assert!(
        totals_right >= 5,
        "{totals_right} of 6 receipt totals trusted and right"
    );
}

/// Tesseract gives up at its deadline (its progress monitor), so no photo holds a worker
/// longer than the pipeline's budget; given time, the same image reads.
#[test]
fn the_engine_gives_up_at_its_deadline() {
    use sembang::ocr::engine::{Engine, Outcome};
    use sembang::ocr::preprocess::prepare;
    let photo = std::fs::read(fixtures().join("receipt-0001.jpg")).unwrap();
    let prepared = prepare(&photo, None, Turn::None).unwrap();
    let mut engine = Engine::new(None, "eng+msa").unwrap();
    assert_eq!(
        engine
            .recognize(&prepared.png, Duration::from_millis(1), None)
            .unwrap(),
        Outcome::TimedOut
    );
    match engine
        .recognize(&prepared.png, Duration::from_secs(60), None)
        .unwrap()
    {
        Outcome::Read {
            text,
            confidence,
            rows,
        } => {
            assert!(text.contains("TOTAL"), "{text}");
            assert!(confidence > 50.0);
            assert_eq!(rows.len(), text.lines().count(), "a row per line");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        engine.recognize(b"not an image", Duration::from_secs(1), None),
        Err(OcrError::Image(_))
    ));
}

/// A card's number is read again from its line alone (how a card is confirmed): the line
/// found by reading the whole card reads the same number in another preparation, the
/// engine goes back to whole documents after it, and a line outside the image reads
/// nothing rather than failing.
#[test]
fn a_line_of_the_card_is_read_alone() {
    use sembang::ocr::engine::{Engine, Outcome, Rect};
    use sembang::ocr::preprocess::prepare;
    let photo = std::fs::read(fixtures().join("card-0001.jpg")).unwrap();
    let expected = truth()
        .into_iter()
        .find(|t| t["file"] == "card-0001.jpg")
        .unwrap();
    let number = expected["ic"].as_str().unwrap();
    let mut engine = Engine::new(None, "eng+msa").unwrap();
    let read = |engine: &mut Engine, binarization| {
        let prepared = prepare(&photo, Some(binarization), Turn::None).unwrap();
        let outcome = engine
            .recognize(&prepared.png, Duration::from_secs(60), None)
            .unwrap();
        (prepared, outcome)
    };
    let (_, Outcome::Read { rows, .. }) = read(&mut engine, Binarization::EvenedOtsu) else {
        panic!("read");
    };
    let row = rows
        .iter()
        .find(|row| {
            let digits: String = row
                .iter()
                .flat_map(|w| w.text.chars())
                .filter(char::is_ascii_digit)
                .collect();
            digits == number
        })
        .expect("the number's row");
    let (left, top) = (row[0].left, row.iter().map(|w| w.top).min().unwrap());
    let right = row.iter().map(|w| w.right()).max().unwrap();
    let bottom = row.iter().map(|w| w.top + w.height).max().unwrap();
    let line = Rect {
        left: left - 10,
        top: top - 5,
        width: right - left + 20,
        height: bottom - top + 10,
    };
    let (other, _) = read(&mut engine, Binarization::EvenedWide);
    match engine
        .recognize_line(&other.png, Duration::from_secs(10), line)
        .unwrap()
    {
        Outcome::Read { text, rows, .. } => {
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            assert_eq!(digits, number, "{text}");
            assert!(!text.contains('\n'), "one line: {text}");
            assert!(rows.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // The whole card again: not only the line's rectangle.
    let (_, again) = read(&mut engine, Binarization::EvenedOtsu);
    let Outcome::Read { text, .. } = again else {
        panic!("read");
    };
    assert!(text.lines().count() >= 4, "{text}");
    let outside = Rect {
        left: 100_000,
        top: 100_000,
        width: 50,
        height: 50,
    };
    let Outcome::Read { text, .. } = engine
        .recognize_line(&other.png, Duration::from_secs(10), outside)
        .unwrap()
    else {
        panic!("read");
    };
    assert_eq!(text, "");
}

/// The document's outline is found at its true corners (the generator's truth, within
/// 2.5 % of the photo's long side; 5 % for a curled receipt, whose sides bow) in every
/// committed phone photo of a card or a receipt, and in photos that once defeated it
/// (tests/fixtures/ocr-outline, from the benchmark's seed-21 corpus): a white card on
/// white laminate under glare, whose colours barely differ from the table's (its sides are
/// edges all along), and a card on a checked cloth, whose checks make straight-edged
/// outlines larger than the card. The third, a white card on white granite, is only found
/// approximately; its reading is checked in the next test.
#[test]
fn documents_are_found_at_their_corners_in_phone_photos() {
    use opencv::core::Mat;
    use opencv::imgcodecs;
    use sembang::ocr::document::find;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for dir in ["ocr-phone", "ocr-outline"] {
        let dir = root.join(dir);
        let truth = truth_in(&dir);
        for expected in truth
            .iter()
            .filter(|e| e["kind"] != "refuse" && e.get("outline").is_none())
        {
            let file = expected["file"].as_str().unwrap();
            let path = dir.join(file);
            let photo: Mat =
                imgcodecs::imread(path.to_str().unwrap(), imgcodecs::IMREAD_COLOR).unwrap();
            let size = expected["size"].as_array().unwrap();
            let long = size.iter().map(|v| v.as_f64().unwrap()).fold(0.0, f64::max);
            let tolerance = if expected["curled"] == true {
                0.05
            } else {
                0.025
            };
            let quad = find(&photo)
                .unwrap()
                .unwrap_or_else(|| panic!("{file}: no outline"));
            for corner in expected["corners"].as_array().unwrap() {
                let (x, y) = (corner[0].as_f64().unwrap(), corner[1].as_f64().unwrap());
                let off = quad
                    .0
                    .iter()
                    .map(|p| (f64::from(p.x) - x).hypot(f64::from(p.y) - y))
                    .fold(f64::MAX, f64::min);
                assert!(
                    off < tolerance * long,
                    "{file}: corner ({x:.0}, {y:.0}) is {off:.0} px from the outline found, {quad:?}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 14);
}

/// The photos that once defeated the outline (tests/fixtures/ocr-outline) are read: each
/// card's number right and confirmed, from its outline. Before straight edges and
/// edge-supported sides, the two white cards went to the region fallback and were refused;
/// the checked cloth guards against straight edges taking over where a region was found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_on_white_and_checked_tables_are_read() {
    for (file, output) in read_confirmed_cards("ocr-outline").await {
        assert_eq!(output.document, Found::Outline, "{file}");
    }
}

/// Every card of a fixture directory read, its number right and confirmed; with each
/// file's name.
async fn read_confirmed_cards(fixtures: &str) -> Vec<(String, sembang::ocr::OcrOutput)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixtures);
    let mut read = Vec::new();
    for (expected, output) in read_each(&dir).await {
        let file = expected["file"].as_str().unwrap().to_string();
        let Reading::MyKad(card) = &output.reading else {
            panic!("{file}: {:?}\n{}", output.reading, output.recognized.text)
        };
        assert_eq!(card.ic.digits(), expected["ic"], "{file}");
        assert!(
            matches!(output.card_check, Some(CardCheck::Confirmed { .. })),
            "{file}: {:?}",
            output.card_check
        );
        read.push((file, output));
    }
    read
}

/// Cards whose outline gives no confirmed number (an outline of only part of the card; a
/// whole card read poorly) are read again from the largest bright region, and confirmed
/// by the two views together. Both were refused before the second view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_unsettled_by_their_outline_are_read_from_a_second_view() {
    assert_eq!(read_confirmed_cards("ocr-second-view").await.len(), 2);
}

/// Photos of a phone showing a card (tests/fixtures/ocr-screen) are refused as screens,
/// whatever the number read; one of them was accepted before, its bezel lying further
/// inside the outline than the frame was looked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_of_a_card_on_a_phone_screen_are_refused_as_screens() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ocr-screen");
    for (expected, output) in read_each(&dir).await {
        let file = expected["file"].as_str().unwrap();
        assert!(
            matches!(output.reading, Reading::Rejected { .. }),
            "{file}: {:?}",
            output.reading
        );
        assert_eq!(output.card_check, Some(CardCheck::OnAScreen), "{file}");
    }
}

/// No committed photo of a card lying on a table (on wood, granite, laminate, cloth and
/// checked cloths) is taken for a screen.
#[test]
fn cards_on_tables_are_not_taken_for_screens() {
    use opencv::core::Mat;
    use opencv::imgcodecs;
    use opencv::imgproc;
    use sembang::ocr::document::{find, on_a_screen};
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for dir in ["ocr-phone", "ocr-outline", "ocr-second-view"] {
        let dir = root.join(dir);
        for expected in truth_in(&dir).iter().filter(|e| e["kind"] == "ic") {
            let file = expected["file"].as_str().unwrap();
            let path = dir.join(file);
            let photo: Mat =
                imgcodecs::imread(path.to_str().unwrap(), imgcodecs::IMREAD_COLOR).unwrap();
            let mut gray = Mat::default();
            imgproc::cvt_color(&photo, &mut gray, imgproc::COLOR_BGR2GRAY, 0).unwrap();
            if let Some(quad) = find(&photo).unwrap() {
                assert!(!on_a_screen(&gray, &quad), "{file}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} cards had an outline");
}
