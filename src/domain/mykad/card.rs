//! Reading the text of a MyKad's front (as OCR gives it): the IC number, the name (one or
//! two lines), the address with its postcode, city and state, and the religion where
//! printed. Gender and date of birth come from the number, never from the printed words.
//!
//! OCR confuses letters and digits (O/0, I/l/1, S/5, B/8, Z/2, G/6). They are repaired only
//! inside a run shaped like an IC number, and a repaired run is accepted only when it is a
//! valid number; an unrepaired valid run always wins over a repaired one.

use chrono::NaiveDate;
use serde::Serialize;
use thiserror::Error;

use super::{MyKad, MyKadError};
use crate::domain::person::Gender;
use crate::domain::state::MalaysianState;

/// Printed words that are no part of the name or address.
const CARD_WORDS: [&str; 9] = [
    "KAD PENGENALAN",
    "MYKAD",
    "MALAYSIA",
    "IDENTITY CARD",
    "WARGANEGARA",
    "LELAKI",
    "PEREMPUAN",
    "ISLAM",
    "BUKAN WARGANEGARA",
];
/// Words that start an address line.
const ADDRESS_WORDS: [&str; 12] = [
    "NO", "LOT", "JALAN", "JLN", "LORONG", "LRG", "TAMAN", "TMN", "KAMPUNG", "KG", "BLOK", "BATU",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardReading {
    #[serde(skip)]
    pub ic: MyKad,
    /// Whether letters had to be read as digits to get a valid number.
    pub repaired: bool,
    pub name: Option<String>,
    pub address_lines: Vec<String>,
    pub postcode: Option<String>,
    pub city: Option<String>,
    pub state: Option<MalaysianState>,
    pub religion: Option<String>,
    /// The gender word printed on the card (LELAKI, PEREMPUAN), when read: an independent
    /// check of the number, whose last digit says the same.
    pub printed_gender: Option<Gender>,
    /// How many of the card's printed cues (KAD PENGENALAN, MyKad, ...) were read: a
    /// classification signal.
    pub cues: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CardError {
    #[error("no IC number could be read on the card")]
    NoNumber,
    /// A number-shaped run was read but is not a valid IC number.
    #[error("the IC number read is not valid: {0}")]
    InvalidNumber(MyKadError),
}

impl CardError {
    pub const fn kind(&self) -> &'static str {
        match self {
            CardError::NoNumber => "no_number",
            CardError::InvalidNumber(e) => e.kind(),
        }
    }
}

/// How many card cues `text` carries (for telling cards from receipts): the card's
/// printed words, the gender words included (no receipt prints them).
pub fn card_cues(text: &str) -> usize {
    let upper = text.to_uppercase();
    CARD_WORDS[..7]
        .iter()
        .filter(|w| upper.contains(*w))
        .count()
}

pub fn read_card(text: &str, reference: NaiveDate) -> Result<CardReading, CardError> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let (line_index, ic, repaired) = find_number(&lines, reference)?;
    // Lines after the number, cleaned of specks; lines that were only specks are gone.
    let cleaned: Vec<String> = lines[line_index + 1..]
        .iter()
        .map(|l| clean(l))
        .filter(|l| !is_noise(l) && !is_card_word(l))
        .collect();
    let mut rest = cleaned.iter().map(String::as_str);

    // Name: up to two lines without digits that do not look like an address.
    let mut name_lines = Vec::new();
    let mut pending: Option<&str> = None;
    for line in rest.by_ref() {
        if name_lines.len() < 2 && !line.chars().any(|c| c.is_ascii_digit()) && !is_address(line) {
            name_lines.push(repair_name(&trim_single_letters(trim_marks(line))));
        } else {
            pending = Some(line);
            break;
        }
    }
    // Address: until (and including) the line with the 5-digit postcode; the state is on
    // that line or the next.
    let mut address_lines = Vec::new();
    let mut postcode = None;
    let mut city = None;
    let mut state = None;
    for line in pending.into_iter().chain(rest.by_ref()) {
        if let Some((code, after)) = postcode_in(line) {
            postcode = Some(code);
            let (city_text, state_text) = split_state(after);
            city = (!city_text.is_empty()).then(|| clean(city_text));
            state = state_text;
            address_lines.push(clean(line));
            break;
        }
        address_lines.push(clean(line));
    }
    if postcode.is_some() && state.is_none() {
        state = rest.next().and_then(leading_state);
    }
    let religion = lines
        .iter()
        .any(|l| l.trim().eq_ignore_ascii_case("ISLAM"))
        .then(|| "ISLAM".to_string());
    Ok(CardReading {
        ic,
        repaired,
        name: (!name_lines.is_empty()).then(|| name_lines.join(" ")),
        address_lines: if postcode.is_some() {
            address_lines
        } else {
            Vec::new()
        },
        postcode,
        city,
        state,
        religion,
        printed_gender: printed_gender(&lines),
        cues: card_cues(text),
    })
}

impl CardReading {
    /// The printed gender word contradicts the number's last digit: one of them was misread.
    pub fn gender_disagrees(&self) -> bool {
        self.printed_gender.is_some_and(|g| g != self.ic.gender())
    }
}

/// The gender word, read with OCR's usual slips (one wrong letter in LELAKI, two in
/// PEREMPUAN; I read as 1, l, | or !, O as 0); `None` when neither or both are read.
fn printed_gender(lines: &[&str]) -> Option<Gender> {
    let mut male = false;
    let mut female = false;
    for word in lines.iter().flat_map(|l| l.split_whitespace()) {
        let word: String = word
            .chars()
            .filter(|c| !matches!(c, '.' | ',' | ':' | ';'))
            .map(|c| match c {
                '1' | 'l' | '|' | '!' => 'I',
                '0' => 'O',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        male |= strsim::levenshtein(&word, "LELAKI") <= 1;
        female |= strsim::levenshtein(&word, "PEREMPUAN") <= 2;
    }
    match (male, female) {
        (true, false) => Some(Gender::Male),
        (false, true) => Some(Gender::Female),
        _ => None,
    }
}

/// The first valid number: unrepaired runs first, then repaired ones.
fn find_number(lines: &[&str], reference: NaiveDate) -> Result<(usize, MyKad, bool), CardError> {
    let mut first_error = None;
    for repair in [false, true] {
        for (index, line) in lines.iter().enumerate() {
            for run in number_runs(line, repair) {
                match MyKad::parse(&run, reference) {
                    Ok(ic) => return Ok((index, ic, repair)),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
    }
    Err(first_error.map_or(CardError::NoNumber, CardError::InvalidNumber))
}

/// Runs shaped `DDDDDD[-]DD[-]DDDD` in a line, as 12 digits; with `repair`, confusable
/// letters count as the digits they resemble.
fn number_runs(line: &str, repair: bool) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let digit = |c: char| -> Option<char> {
        if c.is_ascii_digit() {
            return Some(c);
        }
        if !repair {
            return None;
        }
        match c {
            'O' | 'o' | 'D' | 'Q' => Some('0'),
            'I' | 'l' | '|' | 'i' | '!' => Some('1'),
            'Z' | 'z' => Some('2'),
            'S' | 's' => Some('5'),
            'G' | 'b' => Some('6'),
            'T' => Some('7'),
            'B' => Some('8'),
            'g' | 'q' => Some('9'),
            _ => None,
        }
    };
    let mut runs = Vec::new();
    for start in 0..chars.len() {
        // A run must not continue a longer number on its left.
        if start > 0 && digit(chars[start - 1]).is_some() {
            continue;
        }
        let mut out = String::with_capacity(12);
        let mut i = start;
        for (group, size) in [6usize, 2, 4].into_iter().enumerate() {
            if group > 0 && i < chars.len() && (chars[i] == '-' || chars[i] == ' ') {
                i += 1;
            }
            for _ in 0..size {
                match chars.get(i).copied().and_then(digit) {
                    Some(d) => {
                        out.push(d);
                        i += 1;
                    }
                    None => break,
                }
            }
        }
        let ends_clean = chars.get(i).copied().and_then(digit).is_none();
        if out.len() == 12 && ends_clean {
            runs.push(out);
        }
    }
    runs
}

fn is_card_word(line: &str) -> bool {
    let upper = line.to_uppercase();
    CARD_WORDS.iter().any(|w| upper == *w)
}

fn is_address(line: &str) -> bool {
    let upper = line.to_uppercase();
    let first = upper
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| !w.is_empty())
        .unwrap_or("");
    ADDRESS_WORDS.contains(&first)
}

/// A 5-digit Malaysian postcode standing alone in the line, and the text after it.
fn postcode_in(line: &str) -> Option<(String, &str)> {
    let bytes = line.as_bytes();
    (0..bytes.len().saturating_sub(4)).find_map(|i| {
        let run = &bytes[i..i + 5];
        let alone_left = i == 0 || !bytes[i - 1].is_ascii_digit();
        let alone_right = bytes.get(i + 5).is_none_or(|b| !b.is_ascii_digit());
        (run.iter().all(u8::is_ascii_digit) && alone_left && alone_right)
            .then(|| (line[i..i + 5].to_string(), line[i + 5..].trim()))
    })
}

/// `SHAH ALAM SELANGOR` → ("SHAH ALAM", Selangor): the longest state name at the end.
fn split_state(text: &str) -> (&str, Option<MalaysianState>) {
    let words: Vec<&str> = text.split_whitespace().collect();
    for take in (1..=words.len().min(4)).rev() {
        let tail = words[words.len() - take..].join(" ");
        if let Some(state) = MalaysianState::from_name(&tail) {
            let cut = text
                .rfind(words[words.len() - take])
                .map_or(text.len(), |i| i);
            return (text[..cut].trim_end_matches([',', ' ']).trim(), Some(state));
        }
    }
    (text, None)
}

/// Whitespace collapsed, and tokens with no letter or digit (`|`, `[`, `—`: the photo's
/// frame and specks read as text) dropped.
/// Specks read as a line (`i 1`): fewer than three letters and digits in all.
fn is_noise(line: &str) -> bool {
    line.chars().filter(|c| c.is_alphanumeric()).count() < 3
}

/// Marks at either end of a name line (quotes, brackets, dots: specks or the card's edge
/// read as text); a name starts and ends with a letter.
fn trim_marks(line: &str) -> &str {
    line.trim_matches(|c: char| !c.is_alphanumeric())
}

/// Single letters at either end of a name line are the card's frame or specks, not a name.
fn trim_single_letters(line: &str) -> String {
    let mut tokens: Vec<&str> = line.split_whitespace().collect();
    while tokens.last().is_some_and(|t| t.chars().count() == 1) {
        tokens.pop();
    }
    while tokens.first().is_some_and(|t| t.chars().count() == 1) {
        tokens.remove(0);
    }
    tokens.join(" ")
}

/// Names on a MyKad are capital letters: in a word with letters, the marks OCR reads for
/// J's descender (`]`, `)`, `}`) and for a thin I (`!`, `|`, `l`) are those letters, and a
/// lower-case letter is its capital. `]` at the end of BINT is BINTI's I.
fn repair_name(line: &str) -> String {
    line.split(' ')
        .map(|word| {
            if !word.chars().any(|c| c.is_ascii_alphabetic()) {
                return word.to_string();
            }
            let mut repaired = String::with_capacity(word.len());
            for c in word.chars() {
                let letter = match c {
                    // J's descender read on its own, after the J itself.
                    ']' | ')' | '}' if repaired.ends_with('J') => continue,
                    ']' | ')' | '}' => 'J',
                    '!' | '|' | 'l' => 'I',
                    other => other.to_ascii_uppercase(),
                };
                repaired.push(letter);
            }
            match repaired.as_str() {
                "BINTJ" => "BINTI".to_string(),
                _ => repaired,
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A state named by the first words of a line (`SABAH —- 4` → Sabah).
fn leading_state(line: &str) -> Option<MalaysianState> {
    let words: Vec<&str> = line.split_whitespace().collect();
    (1..=words.len().min(4))
        .rev()
        .find_map(|take| MalaysianState::from_name(&words[..take].join(" ")))
}

fn clean(line: &str) -> String {
    line.split_whitespace()
        .filter(|token| token.chars().any(char::is_alphanumeric))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 11, 25).unwrap()
    }

    const CARD: &str = "KAD PENGENALAN\nMyKad\nMALAYSIA\nIDENTITY CARD\n\
        900101-14-5678\n\
        SITI NURHALIZA BINTI\nTARUDIN\n\
        NO 12 JALAN SS 2/24\nTAMAN BAHAGIA\n47300 PETALING JAYA\nSELANGOR\n\
        WARGANEGARA\nISLAM\nPEREMPUAN\n";

    #[test]
    fn the_printed_gender_word_is_read_through_ocr_slips_and_checked() {
        let card = read_card(CARD, day()).unwrap();
        assert_eq!(card.printed_gender, Some(Gender::Female));
        assert!(!card.gender_disagrees());
        // 5678 is even (female); LELAKI read with a slip contradicts it.
        let male_word = CARD.replace("PEREMPUAN", "LELAK1");
        let card = read_card(&male_word, day()).unwrap();
        assert_eq!(card.printed_gender, Some(Gender::Male));
        assert!(card.gender_disagrees());
        let slipped = CARD.replace("PEREMPUAN", "PEREMPUAM");
        assert_eq!(
            read_card(&slipped, day()).unwrap().printed_gender,
            Some(Gender::Female)
        );
        // Unread, or both read: no evidence either way.
        let none = CARD.replace("PEREMPUAN", "");
        assert_eq!(read_card(&none, day()).unwrap().printed_gender, None);
        let both = CARD.replace("PEREMPUAN", "LELAKI PEREMPUAN");
        assert_eq!(read_card(&both, day()).unwrap().printed_gender, None);
    }

    #[test]
    fn marks_at_a_name_lines_ends_are_not_the_name() {
        let text = CARD.replace("SITI NURHALIZA", "\u{201c}SITI NURHALIZA");
        let text = text.replace("TARUDIN\n", "TARUDIN.\n");
        let card = read_card(&text, day()).unwrap();
        assert_eq!(card.name.as_deref(), Some("SITI NURHALIZA BINTI TARUDIN"));
    }

    #[test]
    fn reads_every_field_of_a_clean_card() {
        let card = read_card(CARD, day()).unwrap();
        assert_eq!(card.ic.masked(), "900101-**-****");
        assert!(!card.repaired);
        assert_eq!(card.ic.gender(), Gender::Female);
        assert_eq!(card.name.as_deref(), Some("SITI NURHALIZA BINTI TARUDIN"));
        assert_eq!(
            card.address_lines,
            vec![
                "NO 12 JALAN SS 2/24",
                "TAMAN BAHAGIA",
                "47300 PETALING JAYA"
            ]
        );
        assert_eq!(card.postcode.as_deref(), Some("47300"));
        assert_eq!(card.city.as_deref(), Some("PETALING JAYA"));
        assert_eq!(card.state, Some(MalaysianState::Selangor));
        assert_eq!(card.religion.as_deref(), Some("ISLAM"));
        assert_eq!(card.cues, 6);
    }

    #[test]
    fn repairs_the_marks_ocr_reads_for_j_and_i_in_a_name() {
        for (read, name) in [
            ("LIM RA] BIN OTHMAN", "LIM RAJ BIN OTHMAN"),
            ("RAJ] MEI LING BIN OTHMAN", "RAJ MEI LING BIN OTHMAN"),
            ("RA) AISYAH BIN AHMAD", "RAJ AISYAH BIN AHMAD"),
            ("WONG RA} KAH HOE", "WONG RAJ KAH HOE"),
            ("DEV! SITI BINT] HASSAN", "DEVI SITI BINTI HASSAN"),
            ("WONG DEVi SIEW LAN", "WONG DEVI SIEW LAN"),
            ("ME| LING A/P RAMASAMY", "MEI LING A/P RAMASAMY"),
            ("KUMAR A/L MUTHU", "KUMAR A/L MUTHU"),
        ] {
            let text = CARD.replace("SITI NURHALIZA BINTI\nTARUDIN", read);
            let card = read_card(&text, day()).unwrap();
            assert_eq!(card.name.as_deref(), Some(name), "{read}");
        }
    }

    #[test]
    fn repairs_confusions_only_where_a_valid_number_results() {
        let text = CARD.replace("900101-14-5678", "9OO1O1-l4-S678");
        let card = read_card(&text, day()).unwrap();
        assert!(card.repaired);
        assert_eq!(card.ic.normalized(), "900101-14-5678");
        // Frame edges read as bars around the name, lines of specks, junk after the state.
        let text = CARD
            .replace("TARUDIN", "| TARUDIN |\n| |")
            .replace("900101-14-5678", "900101-14-5678 |\n|\ni 1")
            .replace("SITI", "l SITI")
            .replace("\nSELANGOR\n", "\nSELANGOR —--- — 4\n");
        assert_eq!(
            read_card(&text, day()).unwrap().state,
            Some(MalaysianState::Selangor)
        );
        assert_eq!(
            read_card(&text, day()).unwrap().name.as_deref(),
            Some("SITI NURHALIZA BINTI TARUDIN")
        );
        // A state and city on the postcode line; one-line name; no religion.
        let text = "KAD PENGENALAN\n850505-10-1235\nAHMAD BIN ALI\nLOT 5 KG BARU\n43000 KAJANG, SELANGOR\nLELAKI\n";
        let card = read_card(text, day()).unwrap();
        assert_eq!(card.name.as_deref(), Some("AHMAD BIN ALI"));
        assert_eq!(card.city.as_deref(), Some("KAJANG"));
        assert_eq!(card.state, Some(MalaysianState::Selangor));
        assert_eq!(card.religion, None);
        assert_eq!(card.ic.gender(), Gender::Male);
    }

    #[test]
    fn invalid_or_missing_numbers_are_typed_errors() {
        // 30 February: shaped like a number, never valid, even repaired.
        let text = CARD.replace("900101-14-5678", "900230-14-5678");
        assert!(matches!(
            read_card(&text, day()),
            Err(CardError::InvalidNumber(_))
        ));
        assert_eq!(
            read_card("TOTAL RM 12.30\nTHANK YOU", day()),
            Err(CardError::NoNumber)
        );
        // 13 digits is a longer number, not an IC.
        assert_eq!(read_card("9001011456789", day()), Err(CardError::NoNumber));
        // Never-issued place-of-birth code 00.
        let text = CARD.replace("900101-14-5678", "900101-00-5678");
        let err = read_card(&text, day()).unwrap_err();
        assert_eq!(err.kind(), "never_issued_place_of_birth");
    }

    #[test]
    fn never_panics_on_any_text() {
        use proptest::prelude::*;
        proptest!(|(text in "\\PC{0,200}")| {
            let _ = read_card(&text, day());
        });
    }
}
