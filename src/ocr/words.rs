//! The words Tesseract found, with their boxes: its TSV output parsed.

/// One recognized word and where it lies in the image, in pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    pub text: String,
    pub left: i32,
    pub top: i32,
    pub width: i32,
    pub height: i32,
    /// Tesseract's confidence in the word, 0-100.
    pub confidence: f32,
    /// The (block, paragraph, line) Tesseract put the word in.
    pub line: (i32, i32, i32),
}

impl Word {
    pub fn center_x(&self) -> f64 {
        f64::from(self.left) + f64::from(self.width) / 2.0
    }

    pub fn center_y(&self) -> f64 {
        f64::from(self.top) + f64::from(self.height) / 2.0
    }

    pub fn right(&self) -> i32 {
        self.left.saturating_add(self.width)
    }

    /// Whether the word's box touches `region` (left, top, right, bottom in pixels).
    pub fn touches(&self, region: (i32, i32, i32, i32)) -> bool {
        let (left, top, right, bottom) = region;
        !(self.left > right
            || self.right() < left
            || self.top > bottom
            || self.top.saturating_add(self.height) < top)
    }
}

/// The words of Tesseract's TSV output (level 5 rows: level, page, block, paragraph, line,
/// word, left, top, width, height, confidence, text), in Tesseract's order. Rows that are
/// not words, or do not parse, are skipped: the text is Tesseract's, but a malformed row
/// must not take the others with it.
pub fn parse_tsv(tsv: &str) -> Vec<Word> {
    tsv.lines()
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('\t').collect();
            if cells.len() < 12 || cells[0] != "5" {
                return None;
            }
            let number = |i: usize| cells[i].trim().parse::<i32>().ok();
            let text = cells[11].trim();
            if text.is_empty() {
                return None;
            }
            Some(Word {
                text: text.to_string(),
                left: number(6)?,
                top: number(7)?,
                width: number(8)?.max(0),
                height: number(9)?.max(0),
                confidence: cells[10].trim().parse::<f32>().unwrap_or(0.0),
                line: (number(2)?, number(3)?, number(4)?),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_come_with_their_boxes_and_lines_and_the_rest_is_skipped() {
        let tsv = [
            "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext",
            "1\t1\t0\t0\t0\t0\t0\t0\t1100\t694\t-1\t",
            "4\t1\t1\t1\t1\t0\t10\t100\t400\t30\t-1\t",
            "5\t1\t1\t1\t1\t1\t10\t100\t40\t30\t40.5\tOK",
            "5\t1\t1\t1\t1\t2\t90\t100\t300\t30\t95\t850324-56-4597",
            "5\t1\t1\t1\t1\t3\t90\t100\t300\t30\t95\t ",
            "5\t1\t1\t1\t1\t4\tx\t100\t300\t30\t95\tbroken",
            "5\t1\t1",
        ]
        .join("\n");
        let words = parse_tsv(&tsv);
        assert_eq!(words.len(), 2, "{words:?}");
        assert_eq!(
            words[0],
            Word {
                text: "OK".into(),
                left: 10,
                top: 100,
                width: 40,
                height: 30,
                confidence: 40.5,
                line: (1, 1, 1),
            }
        );
        assert_eq!(words[1].text, "850324-56-4597");
        assert_eq!(words[1].center_x(), 240.0);
        assert_eq!(words[1].center_y(), 115.0);
        assert!(words[1].touches((380, 0, 500, 100)));
        assert!(!words[1].touches((391, 0, 500, 100)));
        assert!(!words[1].touches((0, 131, 500, 200)));
        assert!(parse_tsv("not tsv").is_empty());
    }
}
