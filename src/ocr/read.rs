//! What OCR text is: a MyKad front, a receipt, or neither; validated, not trusted.

use chrono::NaiveDate;

use crate::domain::mykad::card::{card_cues, read_card, CardError, CardReading};
use crate::domain::receipt::{parse_receipt, Receipt, ReceiptError};
use crate::topics::ocr::OcrKind;

#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    MyKad(Box<CardReading>),
    Receipt(Box<Receipt>),
    /// `reason` says what failed, for the reply.
    Rejected {
        read_as: OcrKind,
        reason: String,
    },
}

/// Receipts whose own arithmetic checks out less than this are not counted without review.
pub const RECEIPT_TRUSTED_FROM: f64 = 0.5;

impl Reading {
    /// Validated enough to act on: a card's number passed the MyKad parser; a receipt's
    /// totals agree with each other and it has a date.
    pub fn is_trusted(&self) -> bool {
        match self {
            Reading::MyKad(_) => true,
            Reading::Receipt(receipt) => {
                let details = receipt.details();
                details.confidence >= RECEIPT_TRUSTED_FROM && details.date.is_some()
            }
            Reading::Rejected { .. } => false,
        }
    }

    pub fn kind(&self) -> OcrKind {
        match self {
            Reading::MyKad(_) => OcrKind::Ic,
            Reading::Receipt(_) => OcrKind::Receipt,
            Reading::Rejected { read_as, .. } => *read_as,
        }
    }
}

/// Classifies and reads `text`. A card's printed cues (KAD PENGENALAN, MyKad, MALAYSIA,
/// IDENTITY CARD, WARGANEGARA) or a valid IC number without a receipt total make it a
/// card; a total found by the receipt parser makes it a receipt.
pub fn read_text(text: &str, reference: NaiveDate) -> Reading {
    let cues = card_cues(text);
    let card = read_card(text, reference);
    let receipt = parse_receipt(text).map(|receipt| without_future_date(receipt, reference));
    match (card, receipt) {
        (Ok(card), Err(_)) => Reading::MyKad(Box::new(card)),
        (Ok(card), Ok(_)) if cues >= 2 => Reading::MyKad(Box::new(card)),
        (_, Ok(receipt)) => Reading::Receipt(Box::new(receipt)),
        (Err(CardError::InvalidNumber(e)), Err(_)) if cues >= 1 => Reading::Rejected {
            read_as: OcrKind::Ic,
            reason: e.to_string(),
        },
        (Err(_), Err(_)) if cues >= 2 => Reading::Rejected {
            read_as: OcrKind::Ic,
            reason: "the IC number could not be read".into(),
        },
        (Err(_), Err(ReceiptError::NoTotal { .. })) if looks_like_receipt(text) => {
            Reading::Rejected {
                read_as: OcrKind::Receipt,
                reason: "the total could not be read".into(),
            }
        }
        (Err(_), Err(_)) => Reading::Rejected {
            read_as: OcrKind::Unknown,
            reason: "it does not look like a MyKad or a receipt".into(),
        },
    }
}

/// A receipt dated after `reference` (a day's grace for time zones) was misread (2025 read
/// as 2029): its date is dropped, so the receipt is not trusted and goes to review.
fn without_future_date(receipt: Receipt, reference: NaiveDate) -> Receipt {
    let mut details = receipt.into_details();
    if details
        .date
        .is_some_and(|date| date > reference + chrono::Days::new(1))
    {
        details.date = None;
    }
    details.require_total().expect("a receipt keeps its total")
}

fn looks_like_receipt(text: &str) -> bool {
    let upper = text.to_uppercase();
    [
        "RECEIPT", "RESIT", "INVOICE", "CASH", "TUNAI", "SUBTOTAL", "RM",
    ]
    .iter()
    .filter(|w| upper.contains(*w))
    .count()
        >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 11, 25).unwrap()
    }

    #[test]
    fn a_receipt_from_the_future_keeps_its_total_but_not_its_date_nor_trust() {
        let text = "AEON BIG\nDATE: 23/08/2029\nSUBTOTAL 10.00\nSST 6% 0.60\nTOTAL 10.60\nCASH 20.00\nCHANGE 9.40\n";
        let Reading::Receipt(receipt) = read_text(text, day()) else {
            panic!("a receipt");
        };
        assert_eq!(receipt.details().date, None);
        assert_eq!(receipt.total().to_string(), "10.60");
        assert!(!Reading::Receipt(receipt).is_trusted());
        let today = text.replace("23/08/2029", "25/11/2025");
        let reading = read_text(&today, day());
        assert!(reading.is_trusted(), "{reading:?}");
        let tomorrow = text.replace("23/08/2029", "26/11/2025");
        assert!(read_text(&tomorrow, day()).is_trusted(), "a day's grace");
    }

    #[test]
    fn tells_cards_receipts_and_the_rest_apart() {
        let card =
            "KAD PENGENALAN MyKad\nMALAYSIA\nIDENTITY CARD\n900101-14-5678\nSITI BINTI ALI\n";
        assert_eq!(read_text(card, day()).kind(), OcrKind::Ic);
        let receipt = "AEON BIG\nRECEIPT NO: 1234\nDATE: 10/01/2025\nSUBTOTAL 10.00\nSST 6% 0.60\nTOTAL 10.60\nCASH 20.00\nCHANGE 9.40\n";
        assert_eq!(read_text(receipt, day()).kind(), OcrKind::Receipt);
        let blurry_card = "KAD PENGENALAN\nMALAYSIA\n9OO23O-l4-5678\n";
        match read_text(blurry_card, day()) {
            Reading::Rejected {
                read_as: OcrKind::Ic,
                reason,
            } => assert!(reason.contains("date"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let cropped = "RESIT\nRECEIPT NO 5\nCASH\n";
        assert!(matches!(
            read_text(cropped, day()),
            Reading::Rejected {
                read_as: OcrKind::Receipt,
                ..
            }
        ));
        assert!(matches!(
            read_text("a cat on a sofa", day()),
            Reading::Rejected {
                read_as: OcrKind::Unknown,
                ..
            }
        ));
    }
}
