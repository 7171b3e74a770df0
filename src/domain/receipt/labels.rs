//! What a receipt line is, from the words in front of its amount (English and Malay).
//!
//! Classification works on [`label_words`](super::text::label_words) output, so case, colons,
//! `RM`, hyphens and `T0TAL`-style OCR slips are already gone. Order matters: the specific
//! families (counts, points, "TOTAL GST", "TOTAL BEFORE ROUNDING") are checked before the
//! plain `TOTAL` they start with, because a wrong "total" is the costliest mistake.

use super::model::TaxKind;

/// Which kind of total a line claims to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TotalKind {
    /// TOTAL PAYABLE, GRAND TOTAL, NET TOTAL, JUMLAH BESAR, TOTAL INCL. GST, AMOUNT DUE.
    Payable,
    /// TOTAL (ROUNDED), TOTAL AFTER ROUNDING.
    Rounded,
    /// TOTAL, JUMLAH, TOTAL AMOUNT.
    Plain,
    /// TOTAL BEFORE ROUNDING: never the amount paid when a rounded one exists.
    Unrounded,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TenderKind {
    Cash,
    /// Card, e-wallet, voucher: paid exactly, so no change.
    NonCash,
    /// "PAID", "AMOUNT TENDERED": could be either.
    Unspecified,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Label {
    Total(TotalKind),
    Subtotal,
    Tax(TaxKind),
    /// "TOTAL GST", "JUMLAH CUKAI": a sum of tax lines, used only when no tax line is printed.
    TaxTotal,
    ServiceCharge,
    Discount,
    /// "TOTAL DISCOUNT": a sum of discounts, used only when no discount line is printed.
    DiscountTotal,
    Rounding,
    Tender(TenderKind),
    Change,
    /// Counts, points, savings: numbers that look like money but are not part of the sale.
    Ignored,
    /// Header and metadata (date, cashier, receipt no, card approval): never an item.
    Info,
    /// "GST SUMMARY", "TAX CODE AMOUNT GST": the start of a tax summary table.
    SummaryHeader,
    /// "QTY DESCRIPTION PRICE AMOUNT": an item table header.
    ItemHeader,
    /// No known label: possibly an item.
    Unlabelled,
}

impl Label {
    /// Labels whose amount the totals logic uses; such a label may have its amount on the
    /// next line when OCR splits columns.
    pub fn carries_amount(self) -> bool {
        self.is_sum_part() || matches!(self, Label::Total(_) | Label::Tender(_) | Label::Change)
    }

    /// A label of an amount the total is the sum of.
    pub fn is_sum_part(self) -> bool {
        matches!(
            self,
            Label::Subtotal
                | Label::Tax(_)
                | Label::TaxTotal
                | Label::ServiceCharge
                | Label::Discount
                | Label::DiscountTotal
                | Label::Rounding
        )
    }
}

const ROUNDING_WORDS: &[&str] = &["ROUNDING", "RNDG", "PEMBUNDARAN", "PELARASAN", "ROUNDED"];
const DISCOUNT_WORDS: &[&str] = &["DISC", "DISCOUNT", "DISKAUN", "POTONGAN", "REBATE"];
const TAX_WORDS: &[&str] = &["TAX", "GST", "SST", "CUKAI", "VAT"];
const INCL_WORDS: &[&str] = &["INCL", "INCLUSIVE", "INCLUDING", "INC", "TERMASUK"];
const EXCL_WORDS: &[&str] = &[
    "EXCL",
    "EXCLUSIVE",
    "EXCLUDING",
    "EXC",
    "BEFORE",
    "SEBELUM",
    "GROSS",
    "KASAR",
];
const PAYABLE_WORDS: &[&str] = &[
    "PAYABLE",
    "DUE",
    "BESAR",
    "BAYAR",
    "DIBAYAR",
    "BAYARAN",
    "BERSIH",
    "NETT",
    "NET",
    "KESELURUHAN",
];
const COUNT_WORDS: &[&str] = &[
    "QTY", "QUANTITY", "KUANTITI", "ITEM", "ITEMS", "BARANG", "UNIT", "UNITS", "PCS", "PIECES",
    "NO", "BIL", "LINES",
];
const NON_CASH_TENDERS: &[&str] = &[
    "CARD",
    "VISA",
    "MASTER",
    "MASTERCARD",
    "AMEX",
    "DEBIT",
    "CREDIT",
    "MYDEBIT",
    "MEPS",
    "TNG",
    "TOUCH",
    "TOUCHNGO",
    "EWALLET",
    "GRABPAY",
    "BOOST",
    "SHOPEEPAY",
    "DUITNOW",
    "ALIPAY",
    "WECHAT",
    "QR",
    "VOUCHER",
    "BAUCAR",
    "COUPON",
    "KUPON",
];
const INFO_FIRST_WORDS: &[&str] = &[
    "DATE",
    "TARIKH",
    "TIME",
    "MASA",
    "CASHIER",
    "JURUWANG",
    "TEL",
    "TELEPHONE",
    "PHONE",
    "FAX",
    "TERMINAL",
    "APPR",
    "APPROVAL",
    "BATCH",
    "TID",
    "MID",
    "TRACE",
    "RRN",
    "AUTH",
    "INVOICE",
    "INVOIS",
    "RECEIPT",
    "RESIT",
    "DOC",
    "TRANS",
    "TXN",
    "REF",
    "COUNTER",
    "THANK",
    "TERIMA",
];
const ITEM_HEADER_WORDS: &[&str] = &[
    "QTY",
    "QUANTITY",
    "KUANTITI",
    "ITEM",
    "ITEMS",
    "DESCRIPTION",
    "DESC",
    "PRICE",
    "UNIT",
    "U",
    "UP",
    "AMOUNT",
    "AMT",
    "TOTAL",
    "TTL",
    "BARANG",
    "HARGA",
    "JUMLAH",
    "PERKARA",
    "NO",
    "CODE",
    "DISC",
    "TAX",
    "GST",
    "SST",
    "PRODUCT",
    "SKU",
    "EA",
    "EACH",
    "PER",
    "X",
];
const ITEM_HEADER_KEYS: &[&str] = &[
    "QTY",
    "QUANTITY",
    "KUANTITI",
    "ITEM",
    "ITEMS",
    "DESCRIPTION",
    "DESC",
    "PRICE",
    "HARGA",
    "PERKARA",
    "BARANG",
    "PRODUCT",
];

/// Words that start a label; used to find a label that OCR merged into the middle of a
/// line. Words that also occur in item names ("HAIR NET") are deliberately absent.
const LABEL_HEADS: &[&str] = &[
    "TOTAL",
    "JUMLAH",
    "GRANDTOTAL",
    "SUBTOTAL",
    "CASH",
    "TUNAI",
    "CHANGE",
    "BAKI",
    "ROUNDING",
];

/// Classifies a line from its label words (see module doc).
pub(crate) fn classify(words: &[String]) -> Label {
    // Leading numbers ("10% SERVICE CHARGE", a stray count) say nothing about the label.
    let start = words
        .iter()
        .position(|w| !w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or(words.len());
    let words = &words[start..];
    let label = classify_words(words);
    if !matches!(label, Label::Unlabelled | Label::Info | Label::Ignored) {
        return label;
    }
    // OCR merges columns: "Total Qty: 5   Total Incl GST: 160.80", "Bil. Item: 2  Jumlah:
    // 24.00". The last label head owns the amount that follows.
    (1..words.len())
        .rev()
        .filter(|&j| LABEL_HEADS.contains(&words[j].as_str()))
        .map(|j| classify_words(&words[j..]))
        .find(|l| l.carries_amount())
        .unwrap_or(label)
}

fn classify_words(words: &[String]) -> Label {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let Some(&first) = w.first() else {
        return Label::Unlabelled;
    };
    let second = w.get(1).copied().unwrap_or("");
    let any = |set: &[&str]| w.iter().any(|x| set.contains(x));

    if any(&["SUMMARY", "RINGKASAN"])
        || (any(&["CODE", "KOD"]) && any(&["TAX", "GST", "SST", "CUKAI"]))
    {
        return Label::SummaryHeader;
    }
    if any(&["POINT", "POINTS", "PTS", "MATA", "GANJARAN"])
        || any(&["SAVING", "SAVINGS", "SAVED", "SAVE", "JIMAT", "PENJIMATAN"])
    {
        return Label::Ignored;
    }
    let header_keys = w.iter().filter(|x| ITEM_HEADER_KEYS.contains(x)).count();
    let starts_like_total = matches!(first, "TOTAL" | "TTL" | "JUMLAH");
    if w.len() >= 2
        && w.iter().all(|x| ITEM_HEADER_WORDS.contains(x))
        && (header_keys >= 2 || (header_keys == 1 && !starts_like_total))
    {
        return Label::ItemHeader;
    }
    if matches!(first, "QTY" | "QUANTITY" | "KUANTITI")
        || (matches!(first, "ITEM" | "ITEMS") && matches!(second, "" | "COUNT" | "S" | "QTY"))
        || (first == "NO" && second == "OF")
    {
        return Label::Ignored;
    }
    if matches!(first, "TOTAL" | "TTL" | "TOT" | "JUMLAH" | "GRANDTOTAL") {
        return classify_total_family(&w, first, second);
    }
    match first {
        "SUBTOTAL" | "SUBTTL" | "SUBTOT" | "GROSS" => return Label::Subtotal,
        "NET" | "NETT"
            if matches!(
                second,
                "" | "TOTAL" | "AMOUNT" | "AMT" | "PAYABLE" | "SALES"
            ) =>
        {
            return Label::Total(TotalKind::Payable)
        }
        // Card-terminal slips: "AMOUNT: MYR 98.55", "SALE AMOUNT 98.55".
        "AMOUNT" | "AMT" if second.is_empty() => return Label::Total(TotalKind::Plain),
        "SALE" | "SALES" if matches!(second, "AMOUNT" | "AMT") && w.len() == 2 => {
            return Label::Total(TotalKind::Plain)
        }
        "AMOUNT" | "AMT" if matches!(second, "DUE" | "PAYABLE") => {
            return Label::Total(TotalKind::Payable)
        }
        "AMOUNT" | "AMT" if matches!(second, "PAID" | "TENDERED" | "RECEIVED") => {
            return Label::Tender(TenderKind::Unspecified)
        }
        "BALANCE" if second == "DUE" => return Label::Total(TotalKind::Payable),
        "PAYABLE" => return Label::Total(TotalKind::Payable),
        "FINAL" if second == "TOTAL" => return Label::Total(TotalKind::Payable),
        "ROUNDED" if second == "TOTAL" => return Label::Total(TotalKind::Rounded),
        "CHANGE" | "BAKI" | "KEMBALIAN" | "KEMBALI" | "BALANCE" => return Label::Change,
        "CASH" | "TUNAI" => {
            return if matches!(
                second,
                "BILL" | "SALE" | "SALES" | "RECEIPT" | "INVOICE" | "REGISTER"
            ) {
                Label::Info
            } else if any(ROUNDING_WORDS) {
                Label::Rounding
            } else {
                Label::Tender(TenderKind::Cash)
            };
        }
        "PAID" | "TENDER" | "TENDERED" | "PAYMENT" | "BAYARAN" | "DIBAYAR" => {
            return Label::Tender(TenderKind::Unspecified)
        }
        _ => {}
    }
    if NON_CASH_TENDERS.contains(&first) && !any(DISCOUNT_WORDS) {
        return Label::Tender(TenderKind::NonCash);
    }
    if any(ROUNDING_WORDS) || matches!(first, "ADJ" | "ADJUSTMENT" | "ROUND") {
        return Label::Rounding;
    }
    if first == "SC" || second == "SC" {
        return Label::ServiceCharge;
    }
    if any(TAX_WORDS) {
        return classify_tax(&w);
    }
    // "DISC 10%", "MEMBER DISC", "Birthday Disc 10%", "LESS": any discount word names one.
    if any(DISCOUNT_WORDS) || first == "LESS" {
        return Label::Discount;
    }
    if INFO_FIRST_WORDS.contains(&first) {
        return Label::Info;
    }
    Label::Unlabelled
}

fn classify_total_family(w: &[&str], first: &str, second: &str) -> Label {
    let any = |set: &[&str]| w.iter().any(|x| set.contains(x));
    if COUNT_WORDS.contains(&second) {
        return Label::Ignored; // TOTAL QTY, TOTAL ITEMS, JUMLAH BARANG, TOTAL NO. OF ITEMS
    }
    if any(ROUNDING_WORDS) || any(&["ROUND", "ADJ"]) {
        if any(&["BEFORE", "SEBELUM", "UNROUNDED"]) {
            return Label::Total(TotalKind::Unrounded);
        }
        if any(&["AFTER", "SELEPAS", "ROUNDED"]) {
            return Label::Total(TotalKind::Rounded);
        }
        return Label::Rounding;
    }
    if any(&["PAID", "TENDERED", "RECEIVED", "TENDER"]) {
        return Label::Tender(TenderKind::Unspecified);
    }
    if any(&["CHANGE", "BAKI"]) {
        return Label::Change;
    }
    if any(DISCOUNT_WORDS) {
        return Label::DiscountTotal;
    }
    if any(&["SC"]) {
        return Label::ServiceCharge;
    }
    if any(TAX_WORDS) && !any(INCL_WORDS) && !any(EXCL_WORDS) && !any(&["AFTER", "WITH"]) {
        return Label::TaxTotal;
    }
    if any(EXCL_WORDS) {
        return Label::Subtotal; // TOTAL EXCL. GST, TOTAL BEFORE TAX, TOTAL SALES (EXCLUDING GST)
    }
    if first == "JUMLAH" && second == "KECIL" {
        return Label::Subtotal;
    }
    if any(INCL_WORDS) || any(PAYABLE_WORDS) || first == "GRANDTOTAL" {
        return Label::Total(TotalKind::Payable);
    }
    Label::Total(TotalKind::Plain)
}

fn classify_tax(w: &[&str]) -> Label {
    let any = |set: &[&str]| w.iter().any(|x| set.contains(x));
    // Registration numbers and the "TAX INVOICE" title carry no amount of the sale.
    if any(&[
        "INVOICE",
        "INVOIS",
        "ID",
        "REG",
        "REGISTRATION",
        "NO",
        "CODE",
        "KOD",
        "PENDAFTARAN",
    ]) {
        return Label::Info;
    }
    let kind = if any(&["SERVICE", "PERKHIDMATAN"]) {
        TaxKind::ServiceTax
    } else if any(&["SALES", "SALE", "JUALAN"]) {
        TaxKind::SalesTax
    } else if any(&["GST"]) {
        TaxKind::Gst
    } else if any(&["SST"]) {
        TaxKind::Sst
    } else {
        TaxKind::Other
    };
    Label::Tax(kind)
}

/// Tax codes that open the rows of a GST/SST summary table ("SR @6% 42.45 2.55").
pub(crate) fn is_tax_code(word: &str) -> bool {
    matches!(
        word,
        "SR" | "ZR"
            | "ZRL"
            | "ZRE"
            | "S"
            | "Z"
            | "E"
            | "ES"
            | "OS"
            | "TX"
            | "IM"
            | "NS"
            | "RS"
            | "GS"
            | "ST"
            | "SV"
    )
}

#[cfg(test)]
mod tests {
    use super::super::text::label_words;
    use super::*;

    fn label(s: &str) -> Label {
        classify(&label_words(s))
    }

    #[test]
    fn totals_in_english_and_malay() {
        use TotalKind::*;
        assert_eq!(label("TOTAL"), Label::Total(Plain));
        assert_eq!(label("Total (RM):"), Label::Total(Plain));
        assert_eq!(label("T0TAL"), Label::Total(Plain));
        assert_eq!(label("JUMLAH"), Label::Total(Plain));
        assert_eq!(label("TOTAL PAYABLE"), Label::Total(Payable));
        assert_eq!(label("Grand Total"), Label::Total(Payable));
        assert_eq!(label("NET TOTAL"), Label::Total(Payable));
        assert_eq!(label("Nett"), Label::Total(Payable));
        assert_eq!(label("JUMLAH BESAR"), Label::Total(Payable));
        assert_eq!(label("Jumlah Perlu Dibayar"), Label::Total(Payable));
        assert_eq!(label("TOTAL INCL. GST"), Label::Total(Payable));
        assert_eq!(
            label("Total Sales (Inclusive of GST)"),
            Label::Total(Payable)
        );
        assert_eq!(label("Amount Due"), Label::Total(Payable));
        assert_eq!(label("Final Total"), Label::Total(Payable));
        assert_eq!(label("AMOUNT:"), Label::Total(Plain));
        assert_eq!(label("Sale Amount"), Label::Total(Plain));
        assert_eq!(label("TOTAL (ROUNDED)"), Label::Total(Rounded));
        assert_eq!(label("Total After Rounding"), Label::Total(Rounded));
        assert_eq!(label("Total Before Rounding"), Label::Total(Unrounded));
        assert_eq!(label("Jumlah Sebelum Pembundaran"), Label::Total(Unrounded));
    }

    #[test]
    fn subtotals() {
        for s in [
            "SUBTOTAL",
            "SUB-TOTAL",
            "Sub Total",
            "JUMLAH KECIL",
            "TOTAL EXCL. GST",
            "Total Sales (Excluding GST)",
            "Total Before Tax",
            "GROSS",
        ] {
            assert_eq!(label(s), Label::Subtotal, "{s}");
        }
    }

    #[test]
    fn not_totals() {
        for s in [
            "TOTAL QTY",
            "Total Items",
            "TOTAL NO. OF ITEMS",
            "JUMLAH BARANG",
            "QTY",
            "Item(s)",
            "Total Points",
            "Points Earned",
            "TOTAL SAVINGS",
            "You Saved",
        ] {
            assert_eq!(label(s), Label::Ignored, "{s}");
        }
        assert_eq!(label("TOTAL GST"), Label::TaxTotal);
        assert_eq!(label("JUMLAH CUKAI"), Label::TaxTotal);
        assert_eq!(label("TOTAL DISCOUNT"), Label::DiscountTotal);
        assert_eq!(label("Total Paid"), Label::Tender(TenderKind::Unspecified));
    }

    #[test]
    fn payments() {
        assert_eq!(label("CASH"), Label::Tender(TenderKind::Cash));
        assert_eq!(label("Tunai"), Label::Tender(TenderKind::Cash));
        assert_eq!(label("VISA"), Label::Tender(TenderKind::NonCash));
        assert_eq!(
            label("Touch 'n Go eWallet"),
            Label::Tender(TenderKind::NonCash)
        );
        assert_eq!(label("GrabPay"), Label::Tender(TenderKind::NonCash));
        assert_eq!(label("CHANGE"), Label::Change);
        assert_eq!(label("Baki"), Label::Change);
        assert_eq!(label("CASH BILL"), Label::Info);
        assert_eq!(label("CASHIER"), Label::Info);
    }

    #[test]
    fn rounding_tax_service_discount() {
        for s in [
            "ROUNDING",
            "Rounding Adj",
            "ROUNDING ADJUSTMENT",
            "PELARASAN",
            "Pelarasan Pembundaran",
            "Cash Rounding",
            "Adj",
        ] {
            assert_eq!(label(s), Label::Rounding, "{s}");
        }
        assert_eq!(label("SST 6%"), Label::Tax(TaxKind::Sst));
        assert_eq!(label("Sales Tax 10%"), Label::Tax(TaxKind::SalesTax));
        assert_eq!(label("Service Tax @ 8%"), Label::Tax(TaxKind::ServiceTax));
        assert_eq!(
            label("Cukai Perkhidmatan 8%"),
            Label::Tax(TaxKind::ServiceTax)
        );
        assert_eq!(label("GST @6%"), Label::Tax(TaxKind::Gst));
        assert_eq!(label("GST ID"), Label::Info);
        assert_eq!(label("SST REG NO"), Label::Info);
        assert_eq!(label("TAX INVOICE"), Label::Info);
        assert_eq!(label("Service Charge 10%"), Label::ServiceCharge);
        assert_eq!(label("SVC CHG"), Label::ServiceCharge);
        assert_eq!(label("S/C 10%"), Label::ServiceCharge);
        assert_eq!(label("Caj Perkhidmatan 10%"), Label::ServiceCharge);
        assert_eq!(label("DISC 10%"), Label::Discount);
        assert_eq!(label("Diskaun"), Label::Discount);
        assert_eq!(label("Member Discount"), Label::Discount);
        assert_eq!(label("Birthday Disc 10%"), Label::Discount);
    }

    #[test]
    fn labels_merged_into_one_line_by_ocr() {
        assert_eq!(
            label("Total Qty: 5        Total Incl GST:"),
            Label::Total(TotalKind::Payable)
        );
        assert_eq!(
            label("Bil. Item: 2   Jumlah:"),
            Label::Total(TotalKind::Plain)
        );
        assert_eq!(
            label("Juruwang: Ali  Tunai"),
            Label::Tender(TenderKind::Cash)
        );
        assert_eq!(label("10% SERVICE CHARGE"), Label::ServiceCharge);
        // A label word inside an item name is not a label.
        assert_eq!(label("HAIR NET"), Label::Unlabelled);
        assert_eq!(label("TOTAL SAVINGS"), Label::Ignored);
        assert_eq!(
            label("Jumlah Keseluruhan"),
            Label::Total(TotalKind::Payable)
        );
        assert_eq!(label("Kembali"), Label::Change);
    }

    #[test]
    fn headers_and_items() {
        assert_eq!(label("QTY DESCRIPTION AMOUNT"), Label::ItemHeader);
        assert_eq!(label("Item Qty U.Price Total"), Label::ItemHeader);
        assert_eq!(label("CODE DESCRIPTION QTY AMOUNT"), Label::ItemHeader);
        assert_eq!(label("GST SUMMARY"), Label::SummaryHeader);
        assert_eq!(label("Tax Code  Amount(RM)  GST(RM)"), Label::SummaryHeader);
        assert_eq!(label("NASI LEMAK AYAM"), Label::Unlabelled);
        assert_eq!(label("CASHEW NUTS"), Label::Unlabelled);
        assert_eq!(label("DATE"), Label::Info);
        assert!(is_tax_code("SR"));
        assert!(!is_tax_code("NASI"));
    }
}
