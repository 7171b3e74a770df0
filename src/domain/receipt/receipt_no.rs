//! The receipt / invoice / bill number.

use super::text::{tokens, Line, Tok, TokKind};

/// Label word sequences, most specific first. `#` stands for the `#` sign.
const KEYS: &[&[&str]] = &[
    &["INVOICE", "NO"],
    &["INVOICE", "NUMBER"],
    &["INVOICE", "#"],
    &["INV", "NO"],
    &["INV", "#"],
    &["RECEIPT", "NO"],
    &["RECEIPT", "NUMBER"],
    &["RECEIPT", "#"],
    &["RCPT", "NO"],
    &["RCPT", "#"],
    &["BILL", "NO"],
    &["BILL", "#"],
    &["BIL", "NO"],
    &["NO", "BIL"],
    &["RESIT", "NO"],
    &["NO", "RESIT"],
    &["INVOIS", "NO"],
    &["NO", "INVOIS"],
    &["DOC", "NO"],
    &["DOCUMENT", "NO"],
    &["TRANS", "NO"],
    &["TRANSACTION", "NO"],
    &["TXN", "NO"],
    &["CHECK", "NO"],
    &["CHECK", "#"],
    &["ORDER", "NO"],
    &["ORDER", "#"],
];

/// Bare words that name the number only when followed by `:` or `#` ("Receipt: 12345").
const BARE_KEYS: &[&str] = &["INVOICE", "RECEIPT", "BILL", "RESIT", "INVOIS"];

/// The first labelled receipt number in the text. The value is the token after the label
/// (`INV-000123`, `R/0042`); it must contain a digit, so a "TAX INVOICE" title never matches.
pub(crate) fn find_receipt_no(lines: &[Line<'_>]) -> Option<String> {
    let from_keys = lines.iter().find_map(|line| {
        let toks = tokens(&line.upper);
        (0..toks.len()).find_map(|i| {
            KEYS.iter()
                .find_map(|key| match_key(&toks, i, key))
                .and_then(|after| value_at(line.raw, &toks, after))
        })
    });
    from_keys.or_else(|| {
        lines.iter().find_map(|line| {
            let toks = tokens(&line.upper);
            (0..toks.len()).find_map(|i| {
                let t = toks[i];
                if t.kind != TokKind::Word || !BARE_KEYS.contains(&t.text) || !word_start(&toks, i)
                {
                    return None;
                }
                let next = skip_blank(&toks, i + 1);
                match toks.get(next).map(|t| t.kind) {
                    Some(TokKind::Sep(':' | '#')) => value_at(line.raw, &toks, next),
                    _ => None,
                }
            })
        })
    })
}

fn word_start(toks: &[Tok<'_>], i: usize) -> bool {
    i == 0 || toks[i - 1].kind != TokKind::Word
}

fn skip_blank(toks: &[Tok<'_>], mut i: usize) -> usize {
    while toks.get(i).is_some_and(|t| t.kind == TokKind::Space) {
        i += 1;
    }
    i
}

/// Matches `key` at token `i` (words separated by spaces, `.` or `:`); returns the index
/// just after the key.
fn match_key(toks: &[Tok<'_>], i: usize, key: &[&str]) -> Option<usize> {
    if !word_start(toks, i) {
        return None;
    }
    let mut at = i;
    for (n, part) in key.iter().enumerate() {
        if n > 0 {
            while toks
                .get(at)
                .is_some_and(|t| matches!(t.kind, TokKind::Space | TokKind::Sep('.' | ':')))
            {
                at += 1;
            }
        }
        let t = toks.get(at)?;
        let ok = match *part {
            "#" => t.kind == TokKind::Sep('#'),
            word => t.kind == TokKind::Word && t.text == word,
        };
        if !ok {
            return None;
        }
        at += 1;
    }
    Some(at)
}

/// The value token after a label: skips `:`, `.`, `#`, `-`, `=` and spaces, then takes
/// letters, digits and inner `-`/`/` up to the next space.
fn value_at(raw: &str, toks: &[Tok<'_>], mut at: usize) -> Option<String> {
    while toks.get(at).is_some_and(|t| {
        matches!(
            t.kind,
            TokKind::Space | TokKind::Sep(':' | '.' | '#' | '-' | '=')
        )
    }) {
        at += 1;
    }
    let start = toks.get(at)?.start;
    let mut end = start;
    while let Some(t) = toks.get(at) {
        match t.kind {
            TokKind::Num | TokKind::Word | TokKind::Sep('-' | '/') => end = t.end,
            _ => break,
        }
        at += 1;
    }
    let value = raw.get(start..end)?.trim_end_matches(['-', '/']);
    (value.bytes().any(|b| b.is_ascii_digit()) && value.len() <= 40).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::text::lines;
    use super::*;

    fn no(text: &str) -> Option<String> {
        find_receipt_no(&lines(text))
    }

    #[test]
    fn labelled_numbers() {
        assert_eq!(no("INVOICE NO: INV-000123"), Some("INV-000123".into()));
        assert_eq!(no("Receipt No : 12345"), Some("12345".into()));
        assert_eq!(no("Bill No 0042  Table 5"), Some("0042".into()));
        assert_eq!(no("No. Resit: R0012"), Some("R0012".into()));
        assert_eq!(no("Inv#: cs10023"), Some("cs10023".into()));
        assert_eq!(no("Doc No.: CS/2017/0099"), Some("CS/2017/0099".into()));
        assert_eq!(no("Receipt: 778812"), Some("778812".into()));
        assert_eq!(no("Order #A-1042   Dine In"), Some("A-1042".into()));
        assert_eq!(
            no("Date 01/02/2025   Receipt No: 5566"),
            Some("5566".into())
        );
    }

    #[test]
    fn titles_and_unlabelled_numbers_are_not_receipt_numbers() {
        assert_eq!(no("TAX INVOICE"), None);
        assert_eq!(no("TAX INVOICE\nTEL 03-1234 5678"), None);
        assert_eq!(no("INVOICE NO: ----"), None);
        assert_eq!(no("PREINVOICE NO 123"), None);
    }

    #[test]
    fn specific_key_beats_bare_key() {
        assert_eq!(
            no("RECEIPT: 11\nINVOICE NO 22"),
            Some("22".into()),
            "a labelled number anywhere beats a bare 'RECEIPT:'"
        );
    }
}
