//! Malaysian states and federal territories, with the spellings people and receipts use.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::person::UnknownVariant;

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

    /// The official name, as the product displays and stores it.
    pub const fn name(self) -> &'static str {
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

    /// Other spellings seen on addresses and in user input, compared after folding case and
    /// dropping dots, so "W.P. Kuala Lumpur" and "wilayah persekutuan kuala lumpur" match.
    const fn aliases(self) -> &'static [&'static str] {
        match self {
            MalaysianState::Johor => &["johor darul takzim", "johore"],
            MalaysianState::Kedah => &["kedah darul aman"],
            MalaysianState::Kelantan => &["kelantan darul naim"],
            MalaysianState::Melaka => &["malacca", "melaka bandaraya bersejarah"],
            MalaysianState::NegeriSembilan => &["n sembilan", "negeri sembilan darul khusus", "ns"],
            MalaysianState::Pahang => &["pahang darul makmur"],
            MalaysianState::PulauPinang => &["penang", "pinang", "p pinang"],
            MalaysianState::Perak => &["perak darul ridzuan"],
            MalaysianState::Perlis => &["perlis indera kayangan"],
            MalaysianState::Selangor => &["selangor darul ehsan"],
            MalaysianState::Terengganu => &["terengganu darul iman", "trengganu"],
            MalaysianState::Sabah => &["sabah negeri di bawah bayu"],
            MalaysianState::Sarawak => &["sarawak bumi kenyalang"],
            MalaysianState::KualaLumpur => &[
                "kuala lumpur",
                "kl",
                "wilayah persekutuan kuala lumpur",
                "wp kl",
                "federal territory of kuala lumpur",
            ],
            MalaysianState::Labuan => &[
                "labuan",
                "wilayah persekutuan labuan",
                "federal territory of labuan",
            ],
            MalaysianState::Putrajaya => &[
                "putrajaya",
                "wilayah persekutuan putrajaya",
                "federal territory of putrajaya",
            ],
        }
    }

    /// Recognizes a state by its name or an alias; `None` when unknown.
    pub fn from_name(input: &str) -> Option<MalaysianState> {
        let folded = fold(input);
        MalaysianState::ALL.into_iter().find(|state| {
            fold(state.name()) == folded || state.aliases().iter().any(|a| *a == folded)
        })
    }
}

fn fold(input: &str) -> String {
    input
        .chars()
        .filter(|c| *c != '.')
        .map(|c| if c == '-' || c == ',' { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for MalaysianState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MalaysianState {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MalaysianState::from_name(s).ok_or_else(|| UnknownVariant {
            what: "state",
            value: s.to_string(),
            expected: "Johor, Kedah, Kelantan, Melaka, Negeri Sembilan, Pahang, Pulau Pinang, Perak, \
                       Perlis, Selangor, Terengganu, Sabah, Sarawak, WP Kuala Lumpur, WP Labuan, WP Putrajaya",
        })
    }
}

impl Serialize for MalaysianState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for MalaysianState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for state in MalaysianState::ALL {
            assert_eq!(MalaysianState::from_name(state.name()), Some(state));
            assert_eq!(state.to_string().parse::<MalaysianState>(), Ok(state));
        }
    }

    #[test]
    fn aliases_and_noise() {
        assert_eq!(
            MalaysianState::from_name("PENANG"),
            Some(MalaysianState::PulauPinang)
        );
        assert_eq!(
            MalaysianState::from_name("W.P. Kuala  Lumpur"),
            Some(MalaysianState::KualaLumpur)
        );
        assert_eq!(
            MalaysianState::from_name("Malacca"),
            Some(MalaysianState::Melaka)
        );
        assert_eq!(
            MalaysianState::from_name("N. Sembilan"),
            Some(MalaysianState::NegeriSembilan)
        );
        assert_eq!(MalaysianState::from_name("Singapore"), None);
        assert!("Atlantis".parse::<MalaysianState>().is_err());
    }
}
