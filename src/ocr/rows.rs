//! A document's rows: Tesseract's lines, with an amount moved to the row it lies on.
//!
//! Tesseract's line finder joins a receipt's label to an amount far to its right. On curled
//! paper it sometimes joins it to the wrong row, and then the rows below it too (SUBTOTAL
//! given the tax, TOTAL the cash tendered, CASH the change), though the photo shows
//! plainly where each amount lies. Its lines are right far more often than not (it follows
//! a keystone's steep slope better than a fit of word boxes does), so they are kept, and
//! only a part of a line far right of its start is checked: it is moved to another line
//! when that line's start, continued both at the slope measured nearby and level, reaches
//! it plainly nearer than its own line's start does.

use super::words::{parse_tsv, Word};

/// Words of one Tesseract line at most this many word heights apart stay together (an
/// item's quantity, price and amount); beyond it, the right-hand part is checked.
const CHUNK_GAP: f64 = 2.5;

/// A part lies on a row when it is within this many word heights of where the row's start,
/// continued at the text's slope or level, reaches it. Receipt rows are 1.3-1.7 heights
/// apart.
const ON_ROW: f64 = 0.5;

/// A part moves only when another row is nearer than its own by this many word heights.
const MOVE_MARGIN: f64 = 0.3;

/// Text on a rectified document is near level: a steeper pair is two rows, not a slope.
const MAX_SLOPE: f64 = 0.15;

/// Phrases within this many word heights above or below a point give the slope there (a
/// keystone the rectification left changes it down the page).
const SLOPE_REACH: f64 = 8.0;

/// The words in rows, top to bottom, each row left to right. `words` are in Tesseract's
/// order (its lines top to bottom, each left to right).
pub fn rows(words: Vec<Word>) -> Vec<Vec<Word>> {
    let height = median(
        words
            .iter()
            .map(|w| f64::from(w.height))
            .filter(|h| *h > 0.0),
    )
    .unwrap_or(1.0);
    // Each line as chunks, the first one its start.
    let lines: Vec<Vec<Chunk>> = lines(words)
        .into_iter()
        .map(|line| chunks(line, height))
        .collect();
    let samples = phrase_slopes(&lines.iter().flatten().collect::<Vec<_>>(), height);
    let slope_at = |y: f64| {
        let near = samples
            .iter()
            .filter(|s| (s.y - y).abs() <= SLOPE_REACH * height)
            .map(|s| s.slope);
        median(near)
            .or_else(|| median(samples.iter().map(|s| s.slope)))
            .unwrap_or(0.0)
    };

    // Where each later chunk belongs, decided on the lines as Tesseract gave them, so that
    // a whole column shifted by a row moves back together. A chunk moves only when another
    // line's start is plainly nearer than its own both at the measured slope and level (the
    // slope is measured on few phrases; level is right for most photos, and where the two
    // disagree, as on a steep keystone, Tesseract's line stands).
    // The row each chunk goes to, by line and chunk: its own line unless moved.
    let mut row_of: Vec<Vec<usize>> = lines
        .iter()
        .enumerate()
        .map(|(own, line)| vec![own; line.len()])
        .collect();
    for (own, line) in lines.iter().enumerate() {
        for (index, chunk) in line.iter().enumerate().skip(1) {
            let distance = |to: usize, slope: f64| {
                let start = &lines[to][0];
                (start.right < chunk.left).then(|| {
                    let at = start.y + slope * (chunk.x - start.x);
                    (chunk.y - at).abs()
                })
            };
            let nearest = |slope: f64| {
                let off = distance(own, slope)?;
                let (to, d) = (0..lines.len())
                    .filter(|&to| to != own)
                    .filter_map(|to| distance(to, slope).map(|d| (to, d)))
                    .min_by(|a, b| a.1.total_cmp(&b.1))?;
                (off - d >= MOVE_MARGIN * height).then_some((to, d))
            };
            if let (Some((to, sloped)), Some((level_to, level))) =
                (nearest(slope_at(chunk.y)), nearest(0.0))
            {
                if to == level_to && sloped.min(level) <= ON_ROW * height {
                    row_of[own][index] = to;
                }
            }
        }
    }
    let mut rows: Vec<Vec<Word>> = vec![Vec::new(); lines.len()];
    for (line, rows_of_line) in lines.into_iter().zip(row_of) {
        for (chunk, to) in line.into_iter().zip(rows_of_line) {
            rows[to].extend(chunk.words);
        }
    }
    rows.into_iter()
        .filter(|row| !row.is_empty())
        .map(|mut row| {
            row.sort_by_key(|w| w.left);
            row
        })
        .collect()
}

/// The text of Tesseract's TSV output, a line per row of the document (by the words'
/// geometry, see [`rows`]), from the words whose box touches `region` (in pixels: left,
/// top, right, bottom) when one is given.
pub fn document_text(tsv: &str, region: Option<(i32, i32, i32, i32)>) -> String {
    rows_text(&document_rows(tsv, region))
}

/// The rows of [`document_text`], with their words: specks at a row's ends left out, and
/// rows left empty dropped, so that row `i` is the text's line `i`.
pub fn document_rows(tsv: &str, region: Option<(i32, i32, i32, i32)>) -> Vec<Vec<Word>> {
    let words = parse_tsv(tsv)
        .into_iter()
        .filter(|word| region.is_none_or(|region| word.touches(region)))
        .collect();
    rows(words)
        .into_iter()
        .map(|mut words| {
            // Specks and the card's pattern read as a short word at a row's end, with
            // little confidence: not text of the document.
            let speck = |word: &Word| {
                word.text.chars().count() <= SPECK_CHARS && word.confidence < SPECK_CONFIDENCE
            };
            while words.last().is_some_and(speck) {
                words.pop();
            }
            // At a row's start, a short capitalized word that runs on into the next one is
            // a word (the first of a name, ONG, MEI, LEE, read doubtfully at the card's
            // edge), not a speck.
            while words.first().is_some_and(speck)
                && !words.get(1).is_some_and(|next| runs_on(&words[0], next))
            {
                words.remove(0);
            }
            words
        })
        .filter(|words| !words.is_empty())
        .collect()
}

/// The text of rows, a line per row.
pub fn rows_text(rows: &[Vec<Word>]) -> String {
    rows.iter()
        .map(|row| row_text(row))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One row's words, a space between them.
pub fn row_text(row: &[Word]) -> String {
    row.iter()
        .map(|word| word.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A word this short at a line's end, read with less confidence than this (0-100), is
/// taken for a speck.
const SPECK_CHARS: usize = 3;
const SPECK_CONFIDENCE: f32 = 60.0;

/// A gap between two words of a phrase is at most this many word heights: 0.26-0.65
/// between a name's words on the phone corpus, 0.8 or more before a speck.
const WORD_GAP: f64 = 0.7;

/// Whether `word` is two or more capital letters followed, within a word gap, by `next`.
fn runs_on(word: &Word, next: &Word) -> bool {
    word.text.chars().count() >= 2
        && word.text.chars().all(|c| c.is_ascii_uppercase())
        && f64::from(next.left - word.right()) <= WORD_GAP * f64::from(word.height)
}

/// Tesseract's lines, in its order.
pub fn lines(words: Vec<Word>) -> Vec<Vec<Word>> {
    let mut out: Vec<Vec<Word>> = Vec::new();
    for word in words {
        match out.last_mut() {
            Some(line) if line[0].line == word.line => line.push(word),
            _ => out.push(vec![word]),
        }
    }
    out
}

/// Words of a line close together, and where they lie: the middle of their extent, and
/// their mean height.
struct Chunk {
    words: Vec<Word>,
    left: f64,
    right: f64,
    x: f64,
    y: f64,
}

/// A line cut where its words are far apart.
fn chunks(line: Vec<Word>, height: f64) -> Vec<Chunk> {
    let mut parts: Vec<Vec<Word>> = Vec::new();
    for word in line {
        let joins = parts
            .last()
            .and_then(|part| part.last())
            .is_some_and(|last| {
                let gap = f64::from(word.left) - f64::from(last.right());
                gap <= CHUNK_GAP * height
            });
        match parts.last_mut() {
            Some(part) if joins => part.push(word),
            _ => parts.push(vec![word]),
        }
    }
    parts
        .into_iter()
        .map(|words| {
            let left = words
                .iter()
                .map(|w| f64::from(w.left))
                .fold(f64::INFINITY, f64::min);
            let right = words
                .iter()
                .map(|w| f64::from(w.right()))
                .fold(f64::NEG_INFINITY, f64::max);
            let y = words.iter().map(Word::center_y).sum::<f64>() / words.len() as f64;
            Chunk {
                words,
                left,
                right,
                x: (left + right) / 2.0,
                y,
            }
        })
        .collect()
}

/// The slope of a phrase, between its first and last words, at its middle.
#[derive(Clone, Copy, Debug)]
struct Sample {
    y: f64,
    slope: f64,
}

/// Phrases long enough to measure a slope on: word boxes are a few pixels ragged, so a
/// run of a word or two would measure their raggedness, not the slope.
const SLOPE_RUN: f64 = 6.0;

/// The slope of every phrase at least [`SLOPE_RUN`] heights long, between its first and
/// last words read with confidence, of a common height (a box swollen by a speck is not)
/// and not steep. Specks and the table's texture read as words would measure noise.
fn phrase_slopes(chunks: &[&Chunk], height: f64) -> Vec<Sample> {
    let sure = |w: &&Word| {
        (0.6 * height..=1.4 * height).contains(&f64::from(w.height))
            && w.confidence >= SURE_CONFIDENCE
            && w.text.chars().filter(char::is_ascii_alphanumeric).count() >= 2
    };
    chunks
        .iter()
        .filter_map(|chunk| {
            let first = chunk.words.iter().find(sure)?;
            let last = chunk.words.iter().rev().find(sure)?;
            let run = last.center_x() - first.center_x();
            let slope = (last.center_y() - first.center_y()) / run;
            (run >= SLOPE_RUN * height && slope.abs() <= MAX_SLOPE).then_some(Sample {
                y: (first.center_y() + last.center_y()) / 2.0,
                slope,
            })
        })
        .collect()
}

/// Words read with less confidence (0-100) do not measure the slope.
const SURE_CONFIDENCE: f32 = 80.0;

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, left: i32, top: i32, line: i32) -> Word {
        Word {
            text: text.into(),
            left,
            top,
            width: 20 * text.len() as i32,
            height: 28,
            confidence: 90.0,
            line: (1, 1, line),
        }
    }

    /// A word with its box as Tesseract gave it.
    fn b(text: &str, left: i32, top: i32, width: i32, height: i32, line: i32) -> Word {
        Word {
            text: text.into(),
            left,
            top,
            width,
            height,
            confidence: 95.0,
            line: (1, 1, line),
        }
    }

    fn texts(rows: &[Vec<Word>]) -> Vec<String> {
        rows.iter()
            .map(|row| {
                row.iter()
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn amounts_go_back_to_the_row_they_lie_on_when_tesseract_shifted_a_column() {
        // A curled receipt's totals block rising 2 px per 100 px to the right: each amount
        // lies 11 px above its label's height, and Tesseract gave each label the amount of
        // the row below (the first to a dashed rule), as on a real photo.
        let words = vec![
            word("-----", 92, 813, 1),
            word("209.23", 653, 843, 1),
            word("SUBTOTAL", 92, 854, 2),
            word("12.55", 678, 884, 2),
            word("SST", 92, 895, 3),
            word("6%", 170, 895, 3),
            word("0.02", 700, 925, 3),
            word("ROUNDING", 92, 936, 4),
            word("221.80", 658, 966, 4),
            word("TOTAL", 92, 977, 5),
            word("230.00", 660, 1007, 5),
            word("CASH", 95, 1018, 6),
            word("8.20", 706, 1048, 6),
            word("CHANGE", 95, 1059, 7),
            word("THANK", 90, 1141, 8),
            word("YOU,", 220, 1139, 8),
            word("PLEASE", 320, 1136, 8),
            word("COME", 470, 1134, 8),
            word("AGAIN", 570, 1131, 8),
        ];
        assert_eq!(
            texts(&rows(words)),
            [
                "-----",
                "SUBTOTAL 209.23",
                "SST 6% 12.55",
                "ROUNDING 0.02",
                "TOTAL 221.80",
                "CASH 230.00",
                "CHANGE 8.20",
                "THANK YOU, PLEASE COME AGAIN",
            ]
        );
    }

    #[test]
    fn a_bowed_receipt_is_followed_band_by_band_not_averaged_to_one_slope() {
        // Read off a curled receipt photographed at an angle (boxes as Tesseract gave
        // them): the left of the paper slopes down to the right, its right side up, so the
        // amounts on the right lie 8-12 px above their labels. One slope for the whole
        // width (the left's, where most phrases are) would put each amount a row apart.
        let words = vec![
            b("NO", 68, 175, 44, 31, 1),
            b("4", 137, 178, 21, 30, 1),
            b("JALAN", 183, 179, 114, 33, 1),
            b("IPOH", 323, 183, 88, 31, 1),
            b("SST", 69, 227, 66, 32, 2),
            b("ID:", 163, 230, 59, 32, 2),
            b("W10-2746-15946245", 252, 233, 388, 33, 2),
            b("DATE:", 71, 383, 107, 33, 3),
            b("16/02/2025", 211, 387, 225, 35, 3),
            b("09:41", 487, 390, 110, 30, 3),
            b("SUBTOTAL", 73, 1159, 183, 32, 4),
            b("343.00", 667, 1149, 132, 35, 4),
            b("SST", 73, 1210, 67, 31, 5),
            b("6%", 167, 1212, 43, 30, 5),
            b("20.58", 690, 1200, 108, 34, 5),
            b("ROUNDING", 73, 1262, 182, 31, 6),
            b("0.02", 712, 1251, 86, 32, 6),
            b("TOTAL", 73, 1313, 114, 31, 7),
            b("363.60", 667, 1301, 131, 35, 7),
            b("CASH", 74, 1365, 88, 30, 8),
            b("370.00", 666, 1352, 132, 35, 8),
            b("CHANGE", 74, 1416, 134, 31, 9),
            b("6.40", 712, 1403, 86, 32, 9),
            b("THANK", 73, 1518, 115, 31, 10),
            b("YOU,", 211, 1519, 84, 34, 10),
            b("PLEASE", 327, 1517, 134, 32, 10),
            b("COME", 488, 1514, 87, 32, 10),
            b("AGAIN", 598, 1508, 112, 34, 10),
        ];
        assert_eq!(
            texts(&rows(words)),
            [
                "NO 4 JALAN IPOH",
                "SST ID: W10-2746-15946245",
                "DATE: 16/02/2025 09:41",
                "SUBTOTAL 343.00",
                "SST 6% 20.58",
                "ROUNDING 0.02",
                "TOTAL 363.60",
                "CASH 370.00",
                "CHANGE 6.40",
                "THANK YOU, PLEASE COME AGAIN",
            ]
        );
    }

    #[test]
    fn a_steep_keystone_keeps_tesseracts_rows_though_each_amount_lies_a_row_up() {
        // Read off a receipt whose rectification left a keystone (boxes as Tesseract gave
        // them): the text rises 10 px per 100 px at the bottom, so each amount lies ~50 px
        // above its label's height, more than the 42 px between rows. Tesseract followed the
        // slope; a level reading would pair every amount with the label above.
        let words = vec![
            b("SUBTOTAL", 89, 1488, 182, 38, 1),
            b("591.52", 676, 1443, 127, 32, 1),
            b("SST", 88, 1539, 67, 30, 2),
            b("6%", 182, 1534, 43, 26, 2),
            b("35.49", 699, 1484, 104, 31, 2),
            b("ROUNDING", 88, 1572, 182, 40, 3),
            b("-0.01", 702, 1525, 103, 29, 3),
            b("TOTAL", 87, 1621, 113, 34, 4),
            b("627.00", 678, 1566, 127, 34, 4),
            b("CASH", 89, 1665, 86, 31, 5),
            b("630.00", 678, 1608, 127, 33, 5),
            b("CHANGE", 88, 1704, 134, 36, 6),
            b("3.00", 721, 1649, 84, 31, 6),
            b("THANK", 85, 1791, 116, 36, 7),
            b("YOU,", 224, 1783, 84, 30, 7),
            b("PLEASE", 341, 1765, 133, 37, 7),
            b("COME", 501, 1754, 85, 31, 7),
            b("AGAIN", 611, 1740, 109, 35, 7),
        ];
        assert_eq!(
            texts(&rows(words)),
            [
                "SUBTOTAL 591.52",
                "SST 6% 35.49",
                "ROUNDING -0.01",
                "TOTAL 627.00",
                "CASH 630.00",
                "CHANGE 3.00",
                "THANK YOU, PLEASE COME AGAIN",
            ]
        );
    }

    #[test]
    fn level_text_keeps_its_rows_and_their_order() {
        let words = vec![
            word("KAD", 100, 100, 1),
            word("PENGENALAN", 180, 101, 1),
            word("850324-56-4597", 100, 300, 2),
            word("SITI", 100, 400, 3),
            word("AMINAH", 200, 399, 3),
            word("BIN", 100, 440, 4),
            word("ALI", 170, 441, 4),
        ];
        assert_eq!(
            texts(&rows(words)),
            ["KAD PENGENALAN", "850324-56-4597", "SITI AMINAH", "BIN ALI"]
        );
    }

    #[test]
    fn a_part_between_two_rows_stays_where_tesseract_put_it_and_no_words_are_no_rows() {
        // Level text (no phrase long enough to measure a slope: level is assumed); the
        // amount lies half a row below its label, as near one row as the other.
        let words = vec![
            word("TOTAL", 92, 976, 1),
            word("221.80", 658, 990, 1),
            word("CASH", 95, 1017, 2),
            word("230.00", 660, 1017, 2),
        ];
        assert_eq!(texts(&rows(words)), ["TOTAL 221.80", "CASH 230.00"]);
        // The same amount on the next row's height is moved there.
        let words = vec![
            word("TOTAL", 92, 976, 1),
            word("221.80", 658, 1017, 1),
            word("CASH", 95, 1017, 2),
        ];
        assert_eq!(texts(&rows(words)), ["TOTAL", "CASH 221.80"]);
        assert!(rows(Vec::new()).is_empty());
    }

    #[test]
    fn only_words_touching_the_region_are_kept_row_by_row() {
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
            document_text(&tsv, Some((72, 45, 1028, 649))),
            "850324-56-4597\nSITI AMINAH\nBIN ALI\nLELAKI"
        );
        assert_eq!(document_text("not tsv", None), "");
    }

    #[test]
    fn a_doubtful_first_word_that_runs_on_into_the_next_is_kept() {
        // level page block par line word left top width height conf text
        let tsv = [
            // A name's first word, read doubtfully, a word gap before the next: kept.
            "5\t1\t1\t1\t1\t1\t90\t100\t60\t30\t41\tONG",
            "5\t1\t1\t1\t1\t2\t165\t100\t60\t30\t92\tLIM",
            // The same word well apart from the next: a speck.
            "5\t1\t1\t1\t2\t1\t90\t200\t60\t30\t41\tONG",
            "5\t1\t1\t1\t2\t2\t190\t200\t60\t30\t92\tLIM",
            // Close to the next word but not a capitalized word: a speck.
            "5\t1\t1\t1\t3\t1\t90\t300\t20\t30\t10\tj",
            "5\t1\t1\t1\t3\t2\t115\t300\t40\t30\t30\t.-",
            "5\t1\t1\t1\t3\t3\t160\t300\t100\t30\t95\tTAMAN",
        ]
        .join("\n");
        assert_eq!(document_text(&tsv, None), "ONG LIM\nLIM\nTAMAN");
    }
}
