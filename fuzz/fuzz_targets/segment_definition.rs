//! Segment definitions as the API takes them: a definition or a typed error, never a panic;
//! a definition that parses renders back to JSON that parses to the same definition.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sembang::domain::segment::SegmentDefinition;

fuzz_target!(|text: &str| {
    if let Ok(definition) = SegmentDefinition::from_json_str(text) {
        let rendered = serde_json::to_string(&definition).expect("renders");
        let again = SegmentDefinition::from_json_str(&rendered).expect("its rendering parses");
        assert_eq!(again, definition);
    }
});
