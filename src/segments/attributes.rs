//! Posting lists of retailer attributes (`attributes.<key>`): per key, who has it and with
//! which JSON kind, plus a bitmap per text value, per text element of a list and per boolean
//! while the key has few distinct values. A key past [`MAX_VALUES`] distinct texts (a free
//! text field) keeps only its kind bitmaps, and queries on it check the contacts of that
//! kind exactly; past [`MAX_KEYS`] keys, a new key is not indexed at all.

use std::collections::HashMap;

use roaring::{MultiOps, RoaringBitmap};
use serde_json::Value;

use super::postings::Postings;
use crate::domain::segment::fold_case;

/// Distinct texts per key kept in bitmaps.
pub const MAX_VALUES: usize = 1_000;
/// Keys indexed per partition.
pub const MAX_KEYS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonKind {
    Text,
    Number,
    Bool,
    List,
    Object,
}

impl JsonKind {
    pub fn of(value: &Value) -> Option<JsonKind> {
        Some(match value {
            Value::Null => return None,
            Value::String(_) => JsonKind::Text,
            Value::Number(_) => JsonKind::Number,
            Value::Bool(_) => JsonKind::Bool,
            Value::Array(_) => JsonKind::List,
            Value::Object(_) => JsonKind::Object,
        })
    }
}

/// Bitmaps per folded text; `None` once the key has too many distinct texts.
type TextPostings = Option<HashMap<String, RoaringBitmap>>;

#[derive(Clone, Debug, Default)]
pub struct AttributeKey {
    pub kinds: Postings<JsonKind>,
    pub texts: TextPostings,
    /// Text elements of list values (`contains` on a list).
    pub elements: TextPostings,
    pub bools: Postings<bool>,
}

impl AttributeKey {
    fn new() -> Self {
        AttributeKey {
            texts: Some(HashMap::new()),
            elements: Some(HashMap::new()),
            ..Default::default()
        }
    }

    pub fn present(&self) -> RoaringBitmap {
        self.kinds.union_where(|_| true)
    }

    pub fn kind(&self, kind: JsonKind) -> RoaringBitmap {
        self.kinds.get(&kind).cloned().unwrap_or_default()
    }

    fn post(&mut self, value: &Value, id: u32, add: bool) {
        let Some(kind) = JsonKind::of(value) else {
            return;
        };
        if add {
            self.kinds.insert(kind, id);
        } else {
            self.kinds.remove(&kind, id);
        }
        match value {
            Value::String(text) => post_text(&mut self.texts, text, id, add),
            Value::Bool(b) if add => self.bools.insert(*b, id),
            Value::Bool(b) => self.bools.remove(b, id),
            Value::Array(items) => {
                for item in items {
                    if let Value::String(text) = item {
                        post_text(&mut self.elements, text, id, add);
                    }
                }
            }
            _ => {}
        }
    }

    pub fn bytes(&self) -> usize {
        let texts = |t: &TextPostings| {
            t.iter()
                .flat_map(|m| m.iter())
                .map(|(k, s)| k.len() + s.serialized_size())
                .sum::<usize>()
        };
        self.kinds.bytes() + self.bools.bytes() + texts(&self.texts) + texts(&self.elements)
    }
}

fn post_text(postings: &mut TextPostings, text: &str, id: u32, add: bool) {
    let Some(map) = postings else {
        return;
    };
    let folded = fold_case(text);
    if add {
        if !map.contains_key(&folded) && map.len() >= MAX_VALUES {
            // Too many distinct values to be worth bitmaps: queries check contacts instead.
            *postings = None;
            return;
        }
        map.entry(folded).or_default().insert(id);
    } else if let Some(set) = map.get_mut(&folded) {
        set.remove(id);
        if set.is_empty() {
            map.remove(&folded);
        }
    }
}

/// The union of the text bitmaps whose (folded) text passes `keep`.
pub fn texts_where(
    postings: &HashMap<String, RoaringBitmap>,
    keep: impl Fn(&str) -> bool,
) -> RoaringBitmap {
    postings
        .iter()
        .filter(|(text, _)| keep(text))
        .map(|(_, s)| s)
        .union()
}

#[derive(Clone, Debug, Default)]
pub struct Attributes {
    keys: HashMap<String, AttributeKey>,
}

impl Attributes {
    pub fn post(&mut self, attributes: &[(Box<str>, Value)], id: u32, add: bool) {
        for (key, value) in attributes {
            let key: &str = key;
            if !self.keys.contains_key(key) {
                if !add || self.keys.len() >= MAX_KEYS {
                    continue;
                }
                self.keys.insert(key.to_string(), AttributeKey::new());
            }
            if let Some(postings) = self.keys.get_mut(key) {
                postings.post(value, id, add);
            }
        }
    }

    /// The key's postings; `None` when the key is not indexed (queries check every contact).
    pub fn key(&self, key: &str) -> Option<&AttributeKey> {
        self.keys.get(key)
    }

    /// Whether a key has been seen but not indexed because of [`MAX_KEYS`]: then its
    /// absence from `keys` says nothing about contacts.
    pub fn full(&self) -> bool {
        self.keys.len() >= MAX_KEYS
    }

    pub fn bytes(&self) -> usize {
        self.keys.iter().map(|(k, p)| k.len() + p.bytes()).sum()
    }
}
