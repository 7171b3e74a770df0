//! The 13 Malaysian states and 3 federal territories, as segment filters name them.
//!
//! `Contact::state` is free text (filled from the IC place-of-birth code or by an operator), so
//! both sides go through [`MalaysianState::from_name`]: case, dots and repeated spaces are
//! ignored and common alternative spellings are accepted ("Penang", "Malacca", "Kuala Lumpur",
//! "Wilayah Persekutuan Labuan"). A contact state that names none of the 16 is a present value
//! equal to no catalog state.

use std::fmt;
use std::str::FromStr;

use crate::domain::person::UnknownVariant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MalaysianState {
    Johor,
    Kedah,
    Kelantan,
    Melaka,
    NegeriSembilan,
    Pahang,
    PulauPinang,
    Perak,
    Perlis,
    Selangor,
    Terengganu,
    Sabah,
    Sarawak,
    KualaLumpur,
    Labuan,
    Putrajaya,
}

const EXPECTED: &str =
    "Johor, Kedah, Kelantan, Melaka, Negeri Sembilan, Pahang, Pulau Pinang, Perak, \
Perlis, Selangor, Terengganu, Sabah, Sarawak, WP Kuala Lumpur, WP Labuan, WP Putrajaya";

impl MalaysianState {
    pub const ALL: [MalaysianState; 16] = [
        MalaysianState::Johor,
        MalaysianState::Kedah,
        MalaysianState::Kelantan,
        MalaysianState::Melaka,
        MalaysianState::NegeriSembilan,
        MalaysianState::Pahang,
        MalaysianState::PulauPinang,
        MalaysianState::Perak,
        MalaysianState::Perlis,
        MalaysianState::Selangor,
        MalaysianState::Terengganu,
        MalaysianState::Sabah,
        MalaysianState::Sarawak,
        MalaysianState::KualaLumpur,
        MalaysianState::Labuan,
        MalaysianState::Putrajaya,
    ];

    /// The canonical name, as in the MyKad place-of-birth table.
    pub const fn as_str(self) -> &'static str {
        match self {
            MalaysianState::Johor => "Johor",
            MalaysianState::Kedah => "Kedah",
            MalaysianState::Kelantan => "Kelantan",
            MalaysianState::Melaka => "Melaka",
            MalaysianState::NegeriSembilan => "Negeri Sembilan",
            MalaysianState::Pahang => "Pahang",
            MalaysianState::PulauPinang => "Pulau Pinang",
            MalaysianState::Perak => "Perak",
            MalaysianState::Perlis => "Perlis",
            MalaysianState::Selangor => "Selangor",
            MalaysianState::Terengganu => "Terengganu",
            MalaysianState::Sabah => "Sabah",
            MalaysianState::Sarawak => "Sarawak",
            MalaysianState::KualaLumpur => "WP Kuala Lumpur",
            MalaysianState::Labuan => "WP Labuan",
            MalaysianState::Putrajaya => "WP Putrajaya",
        }
    }

    /// Recognizes a canonical name or an accepted alternative; `None` for anything else.
    pub fn from_name(name: &str) -> Option<MalaysianState> {
        let key = normalize(name);
        let key = ["wilayah persekutuan ", "wp "]
            .iter()
            .find_map(|prefix| key.strip_prefix(prefix))
            .unwrap_or(&key);
        let state = match key {
            "johor" | "johore" => MalaysianState::Johor,
            "kedah" => MalaysianState::Kedah,
            "kelantan" => MalaysianState::Kelantan,
            "melaka" | "malacca" => MalaysianState::Melaka,
            "negeri sembilan" | "negri sembilan" => MalaysianState::NegeriSembilan,
            "pahang" => MalaysianState::Pahang,
            "pulau pinang" | "penang" => MalaysianState::PulauPinang,
            "perak" => MalaysianState::Perak,
            "perlis" => MalaysianState::Perlis,
            "selangor" => MalaysianState::Selangor,
            "terengganu" | "trengganu" => MalaysianState::Terengganu,
            "sabah" => MalaysianState::Sabah,
            "sarawak" => MalaysianState::Sarawak,
            "kuala lumpur" | "kl" => MalaysianState::KualaLumpur,
            "labuan" => MalaysianState::Labuan,
            "putrajaya" => MalaysianState::Putrajaya,
            _ => return None,
        };
        Some(state)
    }
}

/// Lowercase, dots dropped, runs of whitespace collapsed to one space, trimmed.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for word in name.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(
            word.chars()
                .filter(|c| *c != '.')
                .flat_map(char::to_lowercase),
        );
    }
    out
}

impl fmt::Display for MalaysianState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MalaysianState {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MalaysianState::from_name(s).ok_or_else(|| UnknownVariant {
            what: "state",
            value: s.to_string(),
            expected: EXPECTED,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_round_trip() {
        for state in MalaysianState::ALL {
            assert_eq!(state.as_str().parse::<MalaysianState>(), Ok(state));
        }
    }

    #[test]
    fn alternative_spellings() {
        let cases = [
            ("selangor", MalaysianState::Selangor),
            ("  SELANGOR ", MalaysianState::Selangor),
            ("Penang", MalaysianState::PulauPinang),
            ("Malacca", MalaysianState::Melaka),
            ("Kuala Lumpur", MalaysianState::KualaLumpur),
            ("W.P. Kuala  Lumpur", MalaysianState::KualaLumpur),
            ("Wilayah Persekutuan Putrajaya", MalaysianState::Putrajaya),
            ("Labuan", MalaysianState::Labuan),
            ("Negri Sembilan", MalaysianState::NegeriSembilan),
        ];
        for (name, state) in cases {
            assert_eq!(MalaysianState::from_name(name), Some(state), "{name}");
        }
    }

    #[test]
    fn unknown_names() {
        assert_eq!(MalaysianState::from_name("Selangr"), None);
        assert_eq!(MalaysianState::from_name("Singapore"), None);
        assert_eq!(MalaysianState::from_name(""), None);
        assert_eq!(MalaysianState::from_name("wp"), None);
        let err = "Selangr".parse::<MalaysianState>().unwrap_err();
        assert_eq!(err.what, "state");
        assert!(err.to_string().contains("WP Putrajaya"));
    }
}
