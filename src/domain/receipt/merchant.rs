//! The merchant's name, from the receipt header.
//!
//! The header is the lines above the first amount. Titles ("TAX INVOICE"), addresses,
//! phone and registration lines are skipped; a line naming a company ("... SDN BHD",
//! "RESTORAN ...") wins over a brand line above it, as the registered name is what the
//! receipt is legally issued by (and what SROIE labels as the company).

use super::amounts::scan_amounts;
use super::dates::{dates_in, times_in};
use super::labels::{classify, Label};
use super::text::{collapse_spaces, has_word, label_words, Line};

/// Lines read before giving up on finding a name.
const HEADER_LINES: usize = 10;

const TITLE_WORDS: &[&str] = &[
    "INVOICE",
    "RECEIPT",
    "RESIT",
    "INVOIS",
    "BILL",
    "WELCOME",
    "SELAMAT",
    "COPY",
    "REPRINT",
    "DUPLICATE",
    "SALES",
    "OFFICIAL",
    "RASMI",
    "ORDER",
    "MERCHANT",
    "CUSTOMER",
];
const CONTACT_WORDS: &[&str] = &[
    "TEL", "FAX", "EMAIL", "MAIL", "HTTP", "HTTPS", "WWW", "COM", "HP", "PHONE", "WHATSAPP", "GST",
    "SST", "REG", "ROC",
];
/// Street markers: a line with one is an address even if it names a shop.
const STREET_WORDS: &[&str] = &[
    "JALAN",
    "JLN",
    "LORONG",
    "LRG",
    "TAMAN",
    "TMN",
    "LOT",
    "BLOK",
    "BLOCK",
    "PERSIARAN",
    "LEBUH",
    "SEKSYEN",
    "SECTION",
    "LEVEL",
    "ARAS",
    "FLOOR",
];
/// Place names: an address line unless the line names a shop ("RESTORAN D'SELERA KAMPUNG").
const PLACE_WORDS: &[&str] = &[
    "KAMPUNG",
    "KG",
    "BANDAR",
    "SELANGOR",
    "KUALA",
    "LUMPUR",
    "JOHOR",
    "PENANG",
    "PINANG",
    "PERAK",
    "KEDAH",
    "KELANTAN",
    "TERENGGANU",
    "PAHANG",
    "MELAKA",
    "NEGERI",
    "SABAH",
    "SARAWAK",
    "PERLIS",
    "PUTRAJAYA",
    "LABUAN",
    "WILAYAH",
    "PETALING",
    "SHAH",
    "ALAM",
    "KLANG",
    "SUBANG",
    "CHERAS",
    "AMPANG",
    "PUCHONG",
];
/// Identity-card text is sent to the same number; its lines are never a merchant.
const PERSON_WORDS: &[&str] = &[
    "BIN",
    "BINTI",
    "MYKAD",
    "PENGENALAN",
    "IDENTITY",
    "WARGANEGARA",
    "LELAKI",
    "PEREMPUAN",
    "ISLAM",
];
/// Words of a registered business name ("SDN BHD", "ENTERPRISE"): the issuer of the receipt.
const LEGAL_WORDS: &[&str] = &[
    "SDN",
    "BHD",
    "BERHAD",
    "PLT",
    "ENTERPRISE",
    "ENTERPRISES",
    "TRADING",
];
/// Words of a shop's trading name: better than a bare brand line, below a legal name.
const COMPANY_WORDS: &[&str] = &[
    "RESTORAN",
    "RESTAURANT",
    "PASAR",
    "PASARAYA",
    "MINIMARKET",
    "CAFE",
    "KEDAI",
    "PHARMACY",
    "FARMASI",
    "MART",
    "SUPERMARKET",
    "HYPERMARKET",
    "STORE",
    "STATION",
    "STESEN",
    "CLINIC",
    "KLINIK",
    "BAKERY",
];

/// The merchant name, or `None` when the header has no plausible one.
pub(crate) fn find_merchant(lines: &[Line<'_>]) -> Option<String> {
    let mut candidates = Vec::new();
    for line in lines.iter().filter(|l| !l.is_blank()).take(HEADER_LINES) {
        if !scan_amounts(line.raw).is_empty() {
            break;
        }
        if let Some(name) = candidate(line) {
            candidates.push((name, rank(&line.upper)));
        }
    }
    // Highest rank wins; among equals, the topmost line.
    let best = candidates.iter().map(|c| c.1).max()?;
    candidates.into_iter().find(|c| c.1 == best).map(|c| c.0)
}

/// 2 for a registered name, 1 for a shop-type name, 0 otherwise.
fn rank(upper: &str) -> u8 {
    if LEGAL_WORDS.iter().any(|w| has_word(upper, w)) {
        2
    } else if is_company(upper) {
        1
    } else {
        0
    }
}

fn is_company(upper: &str) -> bool {
    COMPANY_WORDS
        .iter()
        .chain(LEGAL_WORDS)
        .any(|w| has_word(upper, w))
}

fn candidate(line: &Line<'_>) -> Option<String> {
    let upper = &line.upper;
    let words = label_words(upper);
    let any = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
    let letters = upper.chars().filter(|c| c.is_alphabetic()).count();
    let visible = upper.chars().filter(|c| !c.is_whitespace()).count();
    if letters < 3 || letters * 2 < visible {
        return None; // separators, reg numbers, phone numbers
    }
    if !dates_in(upper).is_empty() || !times_in(upper).is_empty() {
        return None;
    }
    let title_only = words.iter().all(|w| {
        TITLE_WORDS.contains(&w.as_str()) || matches!(w.as_str(), "TAX" | "CASH" | "SIMPLIFIED")
    });
    if title_only
        || any(CONTACT_WORDS)
        || any(STREET_WORDS)
        || (any(PLACE_WORDS) && !is_company(upper))
        || any(PERSON_WORDS)
        || has_postcode(upper)
        || upper.starts_with("NO ")
        || upper.starts_with("NO.")
        || upper.contains('@')
        || upper.contains(" A/L ")
        || upper.contains(" A/P ")
        || words == ["MALAYSIA"]
    {
        return None;
    }
    if !matches!(classify(&words), Label::Unlabelled) && !is_company(upper) {
        return None;
    }
    let name = strip_registration(&collapse_spaces(line.raw));
    let name = name.trim_matches(|c: char| !c.is_alphanumeric() && c != ')' && c != '&');
    (!name.is_empty()).then(|| name.to_string())
}

/// A five-digit Malaysian postcode marks an address line.
fn has_postcode(upper: &str) -> bool {
    upper
        .split(|c: char| !c.is_ascii_digit())
        .any(|d| d.len() == 5)
}

/// Drops a registration number in brackets: "KEDAI ABC SDN BHD (123456-X)".
fn strip_registration(name: &str) -> String {
    let mut out = name.to_string();
    while let Some(open) = out.rfind('(') {
        let close = out[open..].find(')').map_or(out.len(), |c| open + c + 1);
        let inner = &out[open..close];
        if inner.bytes().any(|b| b.is_ascii_digit()) {
            out.replace_range(open..close, "");
            out = collapse_spaces(&out);
        } else {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::text::lines;
    use super::*;

    fn merchant(text: &str) -> Option<String> {
        find_merchant(&lines(text))
    }

    #[test]
    fn first_plausible_header_line() {
        let text = "TAX INVOICE\nKedai Makan Selera Kita\nNo 12, Jalan SS2/24\n47300 Petaling Jaya\nTel: 03-7876 1234\nNASI LEMAK 5.00";
        assert_eq!(merchant(text), Some("Kedai Makan Selera Kita".into()));
    }

    #[test]
    fn registered_company_beats_brand_line() {
        let text = "PETRONAS\nSTESEN MINYAK MAJU JAYA SDN BHD (654321-K)\nGST ID: 001234567890\nRON95 50.00";
        assert_eq!(
            merchant(text),
            Some("STESEN MINYAK MAJU JAYA SDN BHD".into())
        );
    }

    #[test]
    fn place_names_inside_shop_names_are_kept() {
        let text = "RESTORAN D'SELERA KAMPUNG\nNo. 3, Jalan Masjid, 15000 Kota Bharu, Kelantan\nTOTAL 5.00";
        assert_eq!(merchant(text), Some("RESTORAN D'SELERA KAMPUNG".into()));
        let text = "SELERA KAMPUNG\nTOTAL 5.00";
        assert_eq!(merchant(text), None, "a place name alone is not a merchant");
    }

    #[test]
    fn legal_name_beats_shop_name() {
        let text = "SEGAR JAYA MART\nSEGAR JAYA HOLDINGS SDN BHD\nTOTAL 5.00";
        assert_eq!(merchant(text), Some("SEGAR JAYA HOLDINGS SDN BHD".into()));
        let text = "MAYBANK\nMERCHANT COPY\nBANGSAR VILLAGE PHARMACY\nTOTAL: MYR 5.00";
        assert_eq!(merchant(text), Some("BANGSAR VILLAGE PHARMACY".into()));
    }

    #[test]
    fn no_merchant_in_identity_card_or_amount_first_text() {
        let mykad = "KAD PENGENALAN\nMALAYSIA\nIDENTITY CARD\n900101-14-5678\nAHMAD BIN ALI\nNO 12 JALAN MAWAR\n47300 PETALING JAYA\nSELANGOR\nWARGANEGARA\nLELAKI";
        assert_eq!(merchant(mykad), None);
        assert_eq!(merchant("12.50\nSHOP"), None);
        assert_eq!(merchant("----------\n*****"), None);
    }
}
