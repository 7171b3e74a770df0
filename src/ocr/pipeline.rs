//! One image from bytes to a reading: media checks, OpenCV preparation (on the blocking
//! pool: it is CPU work), Tesseract in the worker pool, then classification and parsing.
//! `sembang ocr` and the OCR role both go through [`process`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use thiserror::Error;

use crate::media::{check, CheckedMedia, MediaError, MediaLimits};
use crate::topics::ocr::OcrKind;

use super::document::Found;
use super::engine::Rect;
use super::preprocess::{self, Binarization, Framing, Straightened, Turn};
use super::rows::row_text;
use super::words::Word;
use super::{read_text, OcrError, OcrPool, Reading, Recognized};
use crate::domain::mykad::card::{read_card, CardReading};
use crate::metrics::catalog;

#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Ocr(#[from] OcrError),
}

impl PipelineError {
    /// A stable name for metrics and events.
    pub fn kind(&self) -> &'static str {
        match self {
            PipelineError::Media(e) => e.kind(),
            PipelineError::Ocr(OcrError::Image(_)) => "undecodable",
            PipelineError::Ocr(OcrError::Deadline { .. }) => "deadline",
            PipelineError::Ocr(_) => "ocr_engine",
        }
    }

    /// What the customer is told: a fixed phrase per kind of failure, never the technical
    /// detail (bytes of the file, engine messages), which goes to the log and dead letters.
    pub fn customer_reason(&self) -> &'static str {
        match self {
            PipelineError::Media(MediaError::TooLarge { .. }) => "the photo is too large",
            PipelineError::Media(MediaError::TooManyPixels { .. }) => {
                "the photo has too many pixels"
            }
            PipelineError::Media(MediaError::Misshapen { .. }) => {
                "the photo is too long and narrow for a card or receipt"
            }
            PipelineError::Ocr(OcrError::Deadline { .. }) => "the photo took too long to read",
            PipelineError::Media(MediaError::UnsupportedFormat { .. }) => {
                "the file is not a JPEG, PNG or WebP photo"
            }
            PipelineError::Media(MediaError::Corrupt { .. })
            | PipelineError::Ocr(OcrError::Image(_)) => "the photo is damaged",
            _ => "the photo could not be read",
        }
    }
}

#[derive(Debug)]
pub struct OcrOutput {
    pub media: CheckedMedia,
    /// The text of the pass whose reading is kept.
    pub recognized: Recognized,
    pub reading: Reading,
    /// How the kept pass binarized the image.
    pub binarization: Binarization,
    /// How the kept pass turned the image (a photo taken sideways or upside down).
    pub turn: Turn,
    /// How the kept pass found the document in the photo.
    pub document: Found,
    /// For a card: whether its number was confirmed (and how), or why it was refused.
    pub card_check: Option<CardCheck>,
    /// Tesseract runs: 1 when the first reading validates; more for second binarizations
    /// and turns.
    pub passes: u8,
    pub prepare_time: Duration,
    /// Tesseract's time over all passes.
    pub recognize_time: Duration,
    pub total_time: Duration,
}

/// How a card's number was confirmed before it is accepted, or why it was not. One reading
/// is never enough: OCR misreads single digits into other valid numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardCheck {
    /// Two preparations read the same number, and the gender word printed on the card,
    /// when read (`gender_word`), agrees with its last digit.
    Confirmed { gender_word: bool, by: ConfirmedBy },
    /// The preparations read different numbers (or only one read a number).
    ReadingsDisagree,
    /// The printed gender word contradicts the number read.
    GenderDisagrees,
    /// The card was photographed on a screen, not lying on a table.
    OnAScreen,
}

/// What read a card's number the second time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmedBy {
    /// The number's line alone, in another preparation: the usual way, in a fraction of a
    /// whole reading's time.
    NumberLine,
    /// Another reading of the whole card (the line was misread or not where it was looked
    /// for).
    WholeCard,
}

/// Each image's budget of work on one core (preparation and recognition, not the wait for
/// a worker): an extra pass (a turn, another binarization) starts only when the time so far
/// plus the longest pass so far stays within it; otherwise the best reading so far is kept.
/// Tesseract is stopped at what is left of it, and a pass whose preparation spent it is
/// not recognized, so only a preparation already under way can take an image past it.
pub const BUDGET: Duration = Duration::from_secs(5);

/// How far a Tesseract pass runs past its deadline: it checks it between words, and its
/// words are taken and read after it (up to 30 ms measured on the phone corpus).
const TESSERACT_OVERRUN: Duration = Duration::from_millis(60);

/// The least time Tesseract is given for an image's first pass, whatever the budget.
const FIRST_PASS: Duration = Duration::from_millis(200);

/// [`process`] within `deadline` of wall-clock time, the wait for a worker included: past
/// it the photo is answered as unreadable. Tesseract cannot be interrupted, so a worker may
/// finish the pass it is in after that; the bounds on image size keep that pass short.
pub async fn process_within(
    pool: &OcrPool,
    bytes: Vec<u8>,
    limits: &MediaLimits,
    reference: NaiveDate,
    deadline: Duration,
) -> Result<OcrOutput, PipelineError> {
    tokio::time::timeout(deadline, process(pool, bytes, limits, reference))
        .await
        .unwrap_or_else(|_| {
            Err(OcrError::Deadline {
                ms: deadline.as_millis(),
            }
            .into())
        })
}

pub async fn process(
    pool: &OcrPool,
    bytes: Vec<u8>,
    limits: &MediaLimits,
    reference: NaiveDate,
) -> Result<OcrOutput, PipelineError> {
    process_with_budget(pool, bytes, limits, reference, BUDGET).await
}

/// [`process`] with another budget for extra passes than [`BUDGET`].
pub async fn process_with_budget(
    pool: &OcrPool,
    bytes: Vec<u8>,
    limits: &MediaLimits,
    reference: NaiveDate,
    budget: Duration,
) -> Result<OcrOutput, PipelineError> {
    let started = Instant::now();
    let media = check(&bytes, limits)?;
    if media.format == crate::media::MediaFormat::Pdf {
        return Err(OcrError::Image("PDF documents are not read yet; send a photo".into()).into());
    }
    let bytes = Arc::new(bytes);
    let mut spent = Spent::new(budget);
    let mut kept = read_oriented(pool, &bytes, Turn::None, reference, &mut spent).await?;
    // Nothing recognizable upright, and garbled: the photo may be sideways or upside down
    // (how the garble breaks up says which turns to try first); failing that, the other
    // binarization may read it upright. Legible text that is neither card nor receipt (a
    // screenshot, a flyer) is not turned.
    if is_unrecognized(&kept.reading) && kept.recognized.confidence < GARBLED_BELOW {
        let turns = if is_fragmented(&kept.recognized.text) {
            [Turn::Quarter, Turn::ThreeQuarters, Turn::Half]
        } else {
            [Turn::Half, Turn::Quarter, Turn::ThreeQuarters]
        };
        let mut found = false;
        for turn in turns {
            if !spent.has_time() {
                break;
            }
            let attempt = read_oriented(pool, &bytes, turn, reference, &mut spent).await?;
            if !is_unrecognized(&attempt.reading) {
                kept = attempt;
                found = true;
                break;
            }
        }
        if !found && spent.has_time() {
            let other = Some(kept.binarization.other());
            let last = read_pass(
                pool,
                &bytes,
                Look::whole(Turn::None, other),
                reference,
                &mut spent,
            )
            .await?;
            if !is_unrecognized(&last.reading) {
                kept = last;
            }
        }
    }
    let (kept, card_check) = confirm_card(pool, &bytes, kept, reference, &mut spent).await?;
    let (prepare_time, recognize_time, passes) = (spent.prepare, spent.recognize, spent.passes);
    let Pass {
        recognized,
        reading,
        binarization,
        turn,
        document,
        ..
    } = kept;
    let total_time = started.elapsed();
    catalog::OCR_SECONDS
        .histogram(&[reading.kind().as_str().into()])
        .record(total_time.as_secs_f64());
    catalog::OCR_CONFIDENCE
        .histogram(&[])
        .record(f64::from(recognized.confidence));
    Ok(OcrOutput {
        media,
        recognized,
        reading,
        binarization,
        turn,
        document,
        card_check,
        passes,
        prepare_time,
        recognize_time,
        total_time,
    })
}

/// A card is accepted only when two preparations of the photo read the same number and
/// no reading's printed gender word contradicts it; further preparations (while the
/// budget lasts) break a tie. A card read from its outline that is not settled so is read
/// again from the largest bright region, outline or not: an outline of only part of the
/// card (ending at the photo printed on it) reads its words but not its number, and a
/// number that two views of the photo agree on is confirmed by both. An unconfirmed card
/// becomes a rejection that asks for a clearer photo: a missed card costs the customer a
/// second photo, a wrong number links them to someone else's identity.
async fn confirm_card(
    pool: &OcrPool,
    bytes: &Arc<Vec<u8>>,
    kept: Pass,
    reference: NaiveDate,
    spent: &mut Spent,
) -> Result<(Pass, Option<CardCheck>), OcrError> {
    let read_a_number = matches!(kept.reading, Reading::MyKad(_));
    let read_card_words = matches!(
        kept.reading,
        Reading::Rejected {
            read_as: OcrKind::Ic,
            ..
        }
    );
    if !read_a_number && !read_card_words {
        return Ok((kept, None));
    }
    if kept.on_a_screen {
        let mut kept = kept;
        kept.reading = Reading::Rejected {
            read_as: OcrKind::Ic,
            reason: "a photo of a screen is not accepted: photograph the card itself".into(),
        };
        return Ok((kept, Some(CardCheck::OnAScreen)));
    }
    let turn = kept.turn;
    let mut attempts: std::collections::VecDeque<Attempt> = if read_a_number {
        confirmations(&kept, reference).into()
    } else {
        Default::default()
    };
    if kept.document == Found::Outline {
        attempts.push_back(Attempt {
            look: Look {
                framing: Framing::Region,
                ..Look::whole(turn, None)
            },
            always: false,
        });
    }
    let mut passes = vec![kept];
    let mut check = None;
    while let Some(Attempt { look, always }) = attempts.pop_front() {
        // A card's first confirmation runs while there is time to prepare it; one that
        // finds the budget spent leaves the card unconfirmed (refused), never the budget
        // overrun.
        let may_run = if always {
            spent.can_start()
        } else {
            spent.has_time()
        };
        if !may_run {
            break;
        }
        let mut pass = read_pass(pool, bytes, look, reference, spent).await?;
        if look.binarization.is_none() && pass.card().is_some() {
            // The new view's first reading of a number, confirmed like the first view's
            // while the budget lasts.
            attempts.extend(
                confirmations(&pass, reference)
                    .into_iter()
                    .map(|attempt| Attempt {
                        always: false,
                        ..attempt
                    }),
            );
        }
        if let (Extent::NumberLine(_), Reading::MyKad(card)) = (look.extent, &mut pass.reading) {
            // The line holds only the number: the gender word is the card's, read with it.
            card.printed_gender = passes
                .iter()
                .filter_map(Pass::card)
                .find_map(|card| card.printed_gender);
        }
        passes.push(pass);
        check = agreement(&passes);
        if check.is_some() {
            break;
        }
    }
    let number = agreed_number(&passes);
    let agrees = |p: &Pass| p.card().is_some_and(|c| Some(c.ic.normalized()) == number);
    if let Some(CardCheck::Confirmed { .. }) = check {
        if let Some(look) = for_the_name(&passes, agrees).filter(|_| spent.has_time()) {
            let pass = read_pass(pool, bytes, look, reference, spent).await?;
            passes.push(pass);
            // Its gender word may yet contradict the number.
            check = agreement(&passes);
        }
    }
    if let Some(CardCheck::Confirmed { .. }) = check {
        // Of the agreeing readings, the one that read the most of the rest of the card.
        let best = passes
            .into_iter()
            .filter(agrees)
            .max_by_key(|p| {
                let rest = p.card().map_or(0, |c| {
                    usize::from(c.name.is_some()) * 2 + usize::from(c.postcode.is_some())
                });
                (rest, p.extent == Extent::Document)
            })
            .expect("an agreement has readings");
        return Ok((best, check));
    }
    let mut first = passes.swap_remove(0);
    if !read_a_number {
        // No number to refuse: the first reading's own reason stands.
        return Ok((first, check));
    }
    let check = check.unwrap_or(CardCheck::ReadingsDisagree);
    first.reading = Reading::Rejected {
        read_as: OcrKind::Ic,
        reason: match check {
            CardCheck::GenderDisagrees => {
                "the IC number and the gender printed on the card do not agree".into()
            }
            _ => "the IC number could not be read with certainty".into(),
        },
    };
    Ok((first, Some(check)))
}

/// A card whose number is confirmed but whose name no agreeing reading read: the whole
/// card once more, in another preparation than the first whole reading's (if not read so
/// already), for the name.
fn for_the_name(passes: &[Pass], agrees: impl Fn(&Pass) -> bool) -> Option<Look> {
    if passes
        .iter()
        .any(|p| agrees(p) && p.card().is_some_and(|c| c.name.is_some()))
    {
        return None;
    }
    let source = passes
        .iter()
        .find(|p| agrees(p) && p.extent == Extent::Document)?;
    let look = Look {
        framing: source.framing,
        ..Look::whole(source.turn, Some(source.binarization.confirmations()[0]))
    };
    let done = passes.iter().any(|p| {
        p.extent == Extent::Document
            && p.framing == look.framing
            && Some(p.binarization) == look.binarization
    });
    (!done).then_some(look)
}

/// How one pass reads the photo.
#[derive(Clone, Copy, Debug)]
struct Look {
    turn: Turn,
    framing: Framing,
    /// `None`: by the document's shape.
    binarization: Option<Binarization>,
    extent: Extent,
}

impl Look {
    /// The whole document, found by its outline in the photo turned by `turn`.
    fn whole(turn: Turn, binarization: Option<Binarization>) -> Look {
        Look {
            turn,
            framing: Framing::Outline,
            binarization,
            extent: Extent::Document,
        }
    }
}

/// One more reading of a card to confirm its number.
struct Attempt {
    look: Look,
    /// Runs even when the budget is spent (a card's first confirmation).
    always: bool,
}

/// What a pass reads: the whole document, or a card's number alone on its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Extent {
    Document,
    /// The line where a reading of the whole card found the number: read again alone, in
    /// another preparation, it confirms the number in a fraction of a whole reading's time.
    NumberLine(Rect),
}

/// The readings that may confirm the number `pass` read (turned and framed as it was),
/// best first, the first always run: its number's line alone in each other preparation,
/// then the whole card in two of them (when the line was not where the number was looked
/// for, or misread it).
fn confirmations(pass: &Pass, reference: NaiveDate) -> Vec<Attempt> {
    let others = pass.binarization.confirmations();
    let lines = pass
        .card()
        .and_then(|card| number_line(&pass.recognized.rows, &card.ic.digits(), reference))
        .map(|line| others.map(|binarization| (binarization, Extent::NumberLine(line))));
    lines
        .into_iter()
        .flatten()
        .chain(others[..2].iter().map(|b| (*b, Extent::Document)))
        .enumerate()
        .map(|(index, (binarization, extent))| Attempt {
            look: Look {
                turn: pass.turn,
                framing: pass.framing,
                binarization: Some(binarization),
                extent,
            },
            always: index == 0,
        })
        .collect()
}

/// Around the words of the number's line a margin of this many word heights above and
/// below, and twice as much left and right (a digit cut off is a digit misread).
const LINE_MARGIN: f64 = 0.35;

/// Where `number` (12 digits) lies in `rows`: the box of its row's words that hold digits,
/// with a margin.
fn number_line(rows: &[Vec<Word>], number: &str, reference: NaiveDate) -> Option<Rect> {
    let row = rows.iter().find(|row| {
        let text = row_text(row);
        read_card(&text, reference).is_ok_and(|card| card.ic.digits() == number)
            || text
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
                == number
    })?;
    let digits: Vec<&Word> = row
        .iter()
        .filter(|word| word.text.chars().any(|c| c.is_ascii_digit()))
        .collect();
    let left = digits.iter().map(|w| w.left).min()?;
    let right = digits.iter().map(|w| w.right()).max()?;
    let top = digits.iter().map(|w| w.top).min()?;
    let bottom = digits.iter().map(|w| w.top + w.height).max()?;
    let margin = (f64::from(bottom - top) * LINE_MARGIN).round() as i32;
    Some(Rect {
        left: left - 2 * margin,
        top: top - margin,
        width: right - left + 4 * margin,
        height: bottom - top + 2 * margin,
    })
}

/// The number two card readings agree on, if any.
fn agreed_number(passes: &[Pass]) -> Option<String> {
    let numbers: Vec<String> = passes
        .iter()
        .filter_map(|p| p.card().map(|card| card.ic.normalized()))
        .collect();
    numbers
        .iter()
        .find(|n| numbers.iter().filter(|m| m == n).count() >= 2)
        .cloned()
}

/// Whether the readings so far settle the card: two agree on a number and none of those
/// contradicts it by its gender word (`Confirmed`), or they agree and one does
/// (`GenderDisagrees`); `None` while no two agree.
fn agreement(passes: &[Pass]) -> Option<CardCheck> {
    let number = agreed_number(passes)?;
    let agreeing: Vec<(&CardReading, Extent)> = passes
        .iter()
        .filter_map(|pass| pass.card().map(|card| (card, pass.extent)))
        .filter(|(card, _)| card.ic.normalized() == number)
        .collect();
    Some(if agreeing.iter().any(|(c, _)| c.gender_disagrees()) {
        CardCheck::GenderDisagrees
    } else {
        CardCheck::Confirmed {
            gender_word: agreeing.iter().any(|(c, _)| c.printed_gender.is_some()),
            by: if agreeing
                .iter()
                .any(|(_, extent)| matches!(extent, Extent::NumberLine(_)))
            {
                ConfirmedBy::NumberLine
            } else {
                ConfirmedBy::WholeCard
            },
        }
    })
}

struct Pass {
    recognized: Recognized,
    reading: Reading,
    binarization: Binarization,
    turn: Turn,
    document: Found,
    on_a_screen: bool,
    framing: Framing,
    extent: Extent,
}

impl Pass {
    /// The card this pass read, if it read one.
    fn card(&self) -> Option<&CardReading> {
        match &self.reading {
            Reading::MyKad(card) => Some(card),
            _ => None,
        }
    }
}

/// Mean word confidence under which an unrecognized reading is garble. Measured on the
/// generated corpora: turned photos read upright at 35-56, upright hard photos at 77 or more.
const GARBLED_BELOW: f32 = 65.0;

/// Sideways text reads as many fragments: about 0.6 words per letter or digit, against
/// 0.2-0.3 for text upright or upside down (measured on the same corpora).
fn is_fragmented(text: &str) -> bool {
    let alphanumeric = text.chars().filter(char::is_ascii_alphanumeric).count();
    let words = text.split_whitespace().count();
    alphanumeric > 0 && words as f64 / alphanumeric as f64 > 0.4
}

/// Time and Tesseract runs over all passes, and the budget for extra ones.
struct Spent {
    /// Each turn's and framing's straightened document, found once and binarized by every
    /// pass.
    straightened: std::collections::HashMap<(Turn, Framing), Straightened>,
    budget: Duration,
    prepare: Duration,
    recognize: Duration,
    longest_pass: Duration,
    longest_preparation: Duration,
    passes: u8,
}

impl Spent {
    fn new(budget: Duration) -> Self {
        Spent {
            straightened: std::collections::HashMap::new(),
            budget,
            prepare: Duration::ZERO,
            recognize: Duration::ZERO,
            longest_pass: Duration::ZERO,
            longest_preparation: Duration::ZERO,
            passes: 0,
        }
    }

    /// How long Tesseract may take on the next pass: what is left of the budget (nothing
    /// once it is spent: the pass is then not recognized at all), except that the first
    /// pass is always given [`FIRST_PASS`] (under a budget too small to read anything).
    fn deadline(&self) -> Duration {
        let left = self
            .budget
            .saturating_sub(self.prepare + self.recognize + TESSERACT_OVERRUN);
        if self.passes == 0 {
            left.max(FIRST_PASS)
        } else {
            left
        }
    }

    /// A pass that must run (a card's first confirmation) can start: a preparation as
    /// long as the longest so far would leave Tesseract some of the budget.
    fn can_start(&self) -> bool {
        self.deadline() > self.longest_preparation
    }

    /// Another optional pass, as long as the longest so far, fits in the budget.
    fn has_time(&self) -> bool {
        self.prepare + self.recognize + self.longest_pass <= self.budget
    }
}

/// Neither a card nor a receipt was found in the text (as opposed to one found and not
/// validated).
fn is_unrecognized(reading: &Reading) -> bool {
    matches!(
        reading,
        Reading::Rejected {
            read_as: OcrKind::Unknown,
            ..
        }
    )
}

/// Reads the image turned by `turn`. Tesseract's confidence says little; a reading that
/// does not validate does: when the first binarization's reading found a card or a
/// receipt but did not validate, the other binarization often reads what it could not (a
/// card under a shadow, a receipt photographed at a card's proportions). A reading that
/// found nothing is not read again here: the image may be turned.
async fn read_oriented(
    pool: &OcrPool,
    bytes: &Arc<Vec<u8>>,
    turn: Turn,
    reference: NaiveDate,
    spent: &mut Spent,
) -> Result<Pass, OcrError> {
    let first = read_pass(pool, bytes, Look::whole(turn, None), reference, spent).await?;
    // A card is read again anyway, to confirm its number (`confirm_card`).
    let worth_another =
        !first.reading.is_trusted() && !is_unrecognized(&first.reading) && spent.has_time();
    if !worth_another {
        return Ok(first);
    }
    let other = Some(first.binarization.other());
    let second = read_pass(pool, bytes, Look::whole(turn, other), reference, spent).await?;
    let improves = second.reading.is_trusted()
        || (matches!(first.reading, Reading::Rejected { .. })
            && !matches!(second.reading, Reading::Rejected { .. }));
    Ok(if improves { second } else { first })
}

/// Prepares (on the blocking pool: it is CPU work), recognizes and reads the image once.
async fn read_pass(
    pool: &OcrPool,
    bytes: &Arc<Vec<u8>>,
    look: Look,
    reference: NaiveDate,
    spent: &mut Spent,
) -> Result<Pass, OcrError> {
    let Look {
        turn,
        framing,
        binarization,
        extent,
    } = look;
    let bytes = bytes.clone();
    let started = Instant::now();
    let cached = spent.straightened.remove(&(turn, framing));
    let (straightened, prepared) = tokio::task::spawn_blocking(move || {
        let straightened = match cached {
            Some(straightened) => straightened,
            None => preprocess::straighten(&bytes, turn, framing)?,
        };
        let prepared = preprocess::binarize(&straightened, binarization)?;
        Ok::<_, OcrError>((straightened, prepared))
    })
    .await
    .map_err(|e| OcrError::Engine(format!("preprocessing task: {e}")))??;
    spent.straightened.insert((turn, framing), straightened);
    let preparing = started.elapsed();
    spent.prepare += preparing;
    spent.longest_preparation = spent.longest_preparation.max(preparing);
    let deadline = spent.deadline();
    let recognized = match extent {
        // The preparation spent the budget: nothing is read, as if Tesseract ran out of
        // time (the budget is a promise, not an estimate).
        _ if deadline.is_zero() => Recognized::out_of_time(Duration::ZERO),
        Extent::Document => {
            pool.recognize(prepared.png, deadline, prepared.document_region)
                .await?
        }
        Extent::NumberLine(line) => pool.recognize_line(prepared.png, deadline, line).await?,
    };
    spent.recognize += recognized.took;
    spent.longest_pass = spent.longest_pass.max(preparing + recognized.took);
    if !deadline.is_zero() {
        spent.passes += 1;
    }
    let reading = match extent {
        Extent::Document => read_text(&recognized.text, reference),
        // Only a number is there to read: it is a card's, or nothing.
        Extent::NumberLine(_) => match read_card(&recognized.text, reference) {
            Ok(card) => Reading::MyKad(Box::new(card)),
            Err(e) => Reading::Rejected {
                read_as: OcrKind::Ic,
                reason: e.to_string(),
            },
        },
    };
    Ok(Pass {
        recognized,
        reading,
        binarization: prepared.binarization,
        turn,
        document: prepared.document,
        on_a_screen: prepared.on_a_screen,
        framing,
        extent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, left: i32, top: i32, width: i32) -> Word {
        Word {
            text: text.into(),
            left,
            top,
            width,
            height: 40,
            confidence: 90.0,
            line: (1, 1, 1),
        }
    }

    #[test]
    fn the_budget_spent_leaves_no_time_to_recognize_and_no_confirmation_to_start() {
        let ms = Duration::from_millis;
        let mut spent = Spent::new(ms(1_000) + TESSERACT_OVERRUN);
        assert_eq!(
            spent.deadline(),
            ms(1_000),
            "less what Tesseract overruns by"
        );
        spent.prepare = ms(990);
        assert_eq!(
            spent.deadline(),
            FIRST_PASS,
            "the first pass is always given time"
        );
        spent.passes = 1;
        assert_eq!(spent.deadline(), ms(10));
        spent.longest_preparation = ms(10);
        assert!(
            !spent.can_start(),
            "its preparation would spend what is left"
        );
        spent.longest_preparation = ms(9);
        assert!(spent.can_start());
        spent.recognize = ms(20);
        assert_eq!(spent.deadline(), Duration::ZERO);
        assert!(!spent.can_start());
        spent.longest_pass = ms(300);
        assert!(!spent.has_time(), "no optional pass either");
    }

    #[test]
    fn a_numbers_line_is_the_box_of_its_digits_with_a_margin() {
        let day = NaiveDate::from_ymd_opt(2025, 11, 25).unwrap();
        let rows = vec![
            vec![word("KAD", 100, 50, 90), word("PENGENALAN", 200, 50, 300)],
            // Split by OCR, a speck of the card's pattern after it.
            vec![
                word("850324", 100, 150, 200),
                word("-", 305, 152, 10),
                word("56-4597", 320, 150, 230),
                word("ee", 700, 140, 30),
            ],
            vec![word("SITI", 100, 250, 100), word("AMINAH", 210, 250, 200)],
        ];
        // Margin: 0.35 of the 40 px height (14 px) above and below, twice that aside.
        assert_eq!(
            number_line(&rows, "850324564597", day),
            Some(Rect {
                left: 72,
                top: 136,
                width: 506,
                height: 68,
            })
        );
        assert_eq!(number_line(&rows, "850324564598", day), None);
        // Letters read for digits are found as the card reader finds them.
        let repaired = vec![vec![word("85O324-56-4597", 100, 150, 450)]];
        assert!(number_line(&repaired, "850324564597", day).is_some());
    }

    #[test]
    fn sideways_garble_is_fragmented_and_upright_text_is_not() {
        let upright = "AEON BIG\nRECEIPT NO: 1234\nSUBTOTAL 10.00\nTOTAL 10.60\n";
        let sideways = "i ! ' a - ; = 1 ] 7 . , i l : ' - ~ \" a 8 ; 1 |";
        assert!(!is_fragmented(upright));
        assert!(is_fragmented(sideways));
        assert!(!is_fragmented(""), "no text is not evidence of anything");
    }
}
