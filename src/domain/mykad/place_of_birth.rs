//! The MyKad place-of-birth code (digits 7–8), from the National Registration Department's
//! table. Every one of the 100 two-digit codes is classified, so no code falls through.

use serde::Serialize;

use crate::domain::state::MalaysianState;

/// Where a holder was born, as the two-digit code says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlaceOfBirth {
    State(MalaysianState),
    /// Code 82: born in Malaysia, state not recorded.
    UnknownState,
    Foreign(ForeignRegion),
    /// Code 98.
    Stateless,
    /// Code 99.
    Unspecified,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForeignRegion {
    Brunei,
    Indonesia,
    Cambodia,
    Laos,
    Myanmar,
    Philippines,
    Singapore,
    Thailand,
    Vietnam,
    /// Codes 71 and 72: born outside Malaysia, recorded before per-country codes.
    AbroadOldCode,
    China,
    India,
    Pakistan,
    SaudiArabia,
    SriLanka,
    Bangladesh,
    AsiaPacificOceania,
    SouthAmerica,
    Africa,
    Europe,
    BritainIreland,
    MiddleEast,
    FarEast,
    CaribbeanCentralAmerica,
    NorthAmerica,
    EasternEurope,
    /// Code 93: other countries (Hong Kong, Macau, Nepal, ...).
    Other,
}

impl ForeignRegion {
    pub const fn name(self) -> &'static str {
        match self {
            ForeignRegion::Brunei => "Brunei",
            ForeignRegion::Indonesia => "Indonesia",
            ForeignRegion::Cambodia => "Cambodia",
            ForeignRegion::Laos => "Laos",
            ForeignRegion::Myanmar => "Myanmar",
            ForeignRegion::Philippines => "Philippines",
            ForeignRegion::Singapore => "Singapore",
            ForeignRegion::Thailand => "Thailand",
            ForeignRegion::Vietnam => "Vietnam",
            ForeignRegion::AbroadOldCode => "Outside Malaysia",
            ForeignRegion::China => "China",
            ForeignRegion::India => "India",
            ForeignRegion::Pakistan => "Pakistan",
            ForeignRegion::SaudiArabia => "Saudi Arabia",
            ForeignRegion::SriLanka => "Sri Lanka",
            ForeignRegion::Bangladesh => "Bangladesh",
            ForeignRegion::AsiaPacificOceania => "Asia-Pacific/Oceania",
            ForeignRegion::SouthAmerica => "South America",
            ForeignRegion::Africa => "Africa",
            ForeignRegion::Europe => "Europe",
            ForeignRegion::BritainIreland => "Britain/Ireland",
            ForeignRegion::MiddleEast => "Middle East",
            ForeignRegion::FarEast => "Far East",
            ForeignRegion::CaribbeanCentralAmerica => "Caribbean/Central America",
            ForeignRegion::NorthAmerica => "North America",
            ForeignRegion::EasternEurope => "Eastern Europe/former USSR",
            ForeignRegion::Other => "Other countries",
        }
    }
}

impl PlaceOfBirth {
    /// Classifies a code from 0 to 99; `None` for codes never issued (00, 17–20, 69, 70, 73,
    /// 80, 81, 94–97) and for anything above 99.
    pub fn from_code(code: u8) -> Option<PlaceOfBirth> {
        use ForeignRegion as F;
        use MalaysianState as S;
        use PlaceOfBirth::{Foreign, State};
        let place = match code {
            1 | 21..=24 => State(S::Johor),
            2 | 25..=27 => State(S::Kedah),
            3 | 28 | 29 => State(S::Kelantan),
            4 | 30 => State(S::Melaka),
            5 | 31 | 59 => State(S::NegeriSembilan),
            6 | 32 | 33 => State(S::Pahang),
            7 | 34 | 35 => State(S::PulauPinang),
            8 | 36..=39 => State(S::Perak),
            9 | 40 => State(S::Perlis),
            10 | 41..=44 => State(S::Selangor),
            11 | 45 | 46 => State(S::Terengganu),
            12 | 47..=49 => State(S::Sabah),
            13 | 50..=53 => State(S::Sarawak),
            14 | 54..=57 => State(S::KualaLumpur),
            15 | 58 => State(S::Labuan),
            16 => State(S::Putrajaya),
            60 => Foreign(F::Brunei),
            61 => Foreign(F::Indonesia),
            62 => Foreign(F::Cambodia),
            63 => Foreign(F::Laos),
            64 => Foreign(F::Myanmar),
            65 => Foreign(F::Philippines),
            66 => Foreign(F::Singapore),
            67 => Foreign(F::Thailand),
            68 => Foreign(F::Vietnam),
            71 | 72 => Foreign(F::AbroadOldCode),
            74 => Foreign(F::China),
            75 => Foreign(F::India),
            76 => Foreign(F::Pakistan),
            77 => Foreign(F::SaudiArabia),
            78 => Foreign(F::SriLanka),
            79 => Foreign(F::Bangladesh),
            82 => PlaceOfBirth::UnknownState,
            83 => Foreign(F::AsiaPacificOceania),
            84 => Foreign(F::SouthAmerica),
            85 => Foreign(F::Africa),
            86 => Foreign(F::Europe),
            87 => Foreign(F::BritainIreland),
            88 => Foreign(F::MiddleEast),
            89 => Foreign(F::FarEast),
            90 => Foreign(F::CaribbeanCentralAmerica),
            91 => Foreign(F::NorthAmerica),
            92 => Foreign(F::EasternEurope),
            93 => Foreign(F::Other),
            98 => PlaceOfBirth::Stateless,
            99 => PlaceOfBirth::Unspecified,
            _ => return None,
        };
        Some(place)
    }

    /// The state or country/region name; `None` for codes that name no place (82, 98, 99).
    pub fn name(self) -> Option<&'static str> {
        match self {
            PlaceOfBirth::State(state) => Some(state.name()),
            PlaceOfBirth::Foreign(region) => Some(region.name()),
            PlaceOfBirth::UnknownState | PlaceOfBirth::Stateless | PlaceOfBirth::Unspecified => {
                None
            }
        }
    }

    /// A stable machine-readable category for APIs and analytics.
    pub const fn kind(self) -> &'static str {
        match self {
            PlaceOfBirth::State(_) => "malaysian_state",
            PlaceOfBirth::UnknownState => "unknown_state",
            PlaceOfBirth::Foreign(_) => "foreign",
            PlaceOfBirth::Stateless => "stateless",
            PlaceOfBirth::Unspecified => "unspecified",
        }
    }

    pub fn state(self) -> Option<MalaysianState> {
        match self {
            PlaceOfBirth::State(state) => Some(state),
            _ => None,
        }
    }
}
