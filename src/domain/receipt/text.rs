//! Line splitting and tokenising shared by the other receipt modules.
//!
//! Matching is done on an ASCII-uppercased copy of each line. ASCII-only uppercasing keeps
//! byte offsets identical to the original, so an offset found in the copy slices the original
//! (which keeps the customer's casing for names) without any risk of cutting a UTF-8 char.

/// One trimmed OCR line.
#[derive(Clone, Debug)]
pub(crate) struct Line<'a> {
    /// Position among all lines, blank ones included.
    pub index: usize,
    pub raw: &'a str,
    pub upper: String,
}

impl Line<'_> {
    pub fn is_blank(&self) -> bool {
        self.raw.is_empty()
    }
}

/// Splits OCR text into trimmed lines. `\r\n`, `\r` and `\n` all end a line because OCR
/// output comes from several engines and platforms.
pub(crate) fn lines(text: &str) -> Vec<Line<'_>> {
    text.split('\n')
        .flat_map(|line| line.strip_suffix('\r').unwrap_or(line).split('\r'))
        .enumerate()
        .map(|(index, raw)| {
            let raw = raw.trim();
            Line {
                index,
                raw,
                upper: raw.to_ascii_uppercase(),
            }
        })
        .collect()
}

/// A lexical token of a line with its byte span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokKind {
    /// A run of ASCII digits.
    Num,
    /// A run of ASCII letters.
    Word,
    /// A run of whitespace.
    Space,
    /// Any other single character (punctuation, or one non-ASCII char).
    Sep(char),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Tok<'a> {
    pub kind: TokKind,
    pub text: &'a str,
    pub start: usize,
    pub end: usize,
}

/// Tokenises `s` (usually an uppercased line) into digit runs, letter runs, spaces and
/// single punctuation characters.
pub(crate) fn tokens(s: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let class = |c: char| {
            if c.is_ascii_digit() {
                0
            } else if c.is_ascii_alphabetic() {
                1
            } else if c.is_whitespace() {
                2
            } else {
                3
            }
        };
        let kind_class = class(c);
        let mut end = start + c.len_utf8();
        if kind_class < 3 {
            while let Some(&(i, next)) = chars.peek() {
                if class(next) != kind_class {
                    break;
                }
                end = i + next.len_utf8();
                chars.next();
            }
        }
        let kind = match kind_class {
            0 => TokKind::Num,
            1 => TokKind::Word,
            2 => TokKind::Space,
            _ => TokKind::Sep(c),
        };
        out.push(Tok {
            kind,
            text: &s[start..end],
            start,
            end,
        });
    }
    out
}

/// The words of a label, uppercased, for classification: `"Sub-Total (RM):"` gives
/// `["SUBTOTAL"]`, `"GST @6%"` gives `["GST", "6"]`. Currency words are dropped, a few
/// split spellings are joined, and `0` inside an otherwise alphabetic word is read as `O`
/// (OCR writes `T0TAL`).
pub(crate) fn label_words(s: &str) -> Vec<String> {
    let mut words: Vec<String> = s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| fix_ocr_zero(&w.to_ascii_uppercase()))
        .filter(|w| w != "RM" && w != "MYR")
        .collect();
    let mut i = 0;
    while i + 1 < words.len() {
        let joined = match (words[i].as_str(), words[i + 1].as_str()) {
            ("SUB", "TOTAL" | "TTL" | "TOT") => Some("SUBTOTAL"),
            ("GRAND", "TOTAL") => Some("GRANDTOTAL"),
            ("E", "WALLET") => Some("EWALLET"),
            ("S", "C") => Some("SC"),
            ("SVC", "CHG" | "CHARGE" | "CHRG") => Some("SC"),
            ("SERVICE", "CHARGE" | "CHG" | "CHRG") => Some("SC"),
            ("SERV", "CHARGE" | "CHG" | "CHRG") => Some("SC"),
            ("CAJ", "PERKHIDMATAN") => Some("SC"),
            ("ROUNDING", "ADJ" | "ADJUSTMENT") => Some("ROUNDING"),
            _ => None,
        };
        match joined {
            Some(j) => {
                words[i] = j.to_string();
                words.remove(i + 1);
            }
            None => i += 1,
        }
    }
    words
}

fn fix_ocr_zero(word: &str) -> String {
    let letters = word.bytes().filter(u8::is_ascii_alphabetic).count();
    let only_zero_digits = word.bytes().filter(u8::is_ascii_digit).all(|b| b == b'0');
    if letters >= 2 && only_zero_digits {
        word.replace('0', "O")
    } else {
        word.to_string()
    }
}

/// Collapses runs of whitespace to one space, for names read from columned OCR text.
pub(crate) fn collapse_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `upper` contains `word` delimited by non-alphanumeric characters.
pub(crate) fn has_word(upper: &str, word: &str) -> bool {
    upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w == word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_words_normalise_spelling_and_ocr() {
        assert_eq!(label_words("Sub-Total (RM):"), vec!["SUBTOTAL"]);
        assert_eq!(label_words("SUB TOTAL"), vec!["SUBTOTAL"]);
        assert_eq!(label_words("GST @6%"), vec!["GST", "6"]);
        assert_eq!(label_words("T0TAL"), vec!["TOTAL"]);
        assert_eq!(label_words("S/C 10%"), vec!["SC", "10"]);
        assert_eq!(label_words("Caj Perkhidmatan"), vec!["SC"]);
        assert_eq!(label_words("Rounding Adj."), vec!["ROUNDING"]);
        // Pure numbers keep their zeros.
        assert_eq!(label_words("TABLE 10"), vec!["TABLE", "10"]);
    }

    #[test]
    fn tokens_cover_input_and_keep_spans() {
        let s = "12/03/2025 Räm";
        let toks = tokens(s);
        let rebuilt: String = toks.iter().map(|t| t.text).collect();
        assert_eq!(rebuilt, s);
        assert_eq!(toks[0].kind, TokKind::Num);
        assert_eq!(toks[1].kind, TokKind::Sep('/'));
        assert!(toks.iter().any(|t| t.kind == TokKind::Sep('ä')));
    }

    #[test]
    fn lines_trim_and_keep_blank_positions() {
        let ls = lines("  A \r\n\r\nB\rC");
        assert_eq!(ls.len(), 4);
        assert_eq!(ls[0].raw, "A");
        assert!(ls[1].is_blank());
        assert_eq!(ls[2].upper, "B");
        assert_eq!(ls[3].index, 3);
        assert_eq!(ls[3].raw, "C");
    }

    #[test]
    fn has_word_needs_boundaries() {
        assert!(has_word("GST ID: 123", "GST"));
        assert!(!has_word("CASHIER", "CASH"));
    }
}
