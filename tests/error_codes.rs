//! The error-code table covers every code this project meets: every code the emulator answers
//! or reports (read from its source), every code the spec extract mentions, and every code in
//! the client's error fixtures; each is classified, none as unknown.

use std::collections::BTreeSet;
use std::path::Path;

use twilio_delivery::{ErrorClass, ErrorCode};

/// The five-digit Twilio codes (20xxx, 21xxx, 30xxx, 35xxx, 63xxx) written in `text`.
fn codes_in(text: &str) -> BTreeSet<u32> {
    let pattern = regex::Regex::new(r"\b(2[01]\d{3}|3[05]\d{3}|63\d{3})\b").unwrap();
    pattern
        .find_iter(text)
        .filter_map(|m| m.as_str().parse().ok())
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn assert_classified(origin: &str, codes: &BTreeSet<u32>) {
    assert!(!codes.is_empty(), "no codes found in {origin}");
    for code in codes {
        let c = ErrorCode::new(*code);
        assert_ne!(
            c.class(),
            ErrorClass::Unknown,
            "{origin}: {code} is not in the table"
        );
        assert!(c.description().is_some_and(|d| !d.is_empty()));
    }
}

#[test]
fn every_code_the_emulator_uses_is_classified() {
    let mut codes = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("emulator/src")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            // Digits that are not error codes (ports, limits, years) never fall in the ranges
            // matched, except the ones listed here.
            codes.extend(
                codes_in(&read(&path))
                    .into_iter()
                    .filter(|c| ![36000].contains(c)),
            );
        }
    }
    assert_classified("emulator/src", &codes);
}

#[test]
fn every_code_in_the_spec_extract_and_the_client_fixtures_is_classified() {
    let spec = read(&root().join("tests/data/twilio-oai/messages_v2010.json"));
    let spec_codes: BTreeSet<u32> = codes_in(&spec)
        .into_iter()
        .filter(|c| *c != 36000)
        .collect();
    assert_classified("the spec extract", &spec_codes);
    let fixtures: serde_json::Value =
        serde_json::from_str(&read(&root().join("tests/data/twilio_errors.json"))).unwrap();
    let fixture_codes: BTreeSet<u32> = fixtures["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["body"]["code"].as_u64())
        .map(|c| c as u32)
        .collect();
    assert_classified("tests/data/twilio_errors.json", &fixture_codes);
}

#[test]
fn the_classes_say_what_to_do() {
    assert_eq!(ErrorCode::new(21610).class(), ErrorClass::OptedOut);
    assert_eq!(ErrorCode::new(30007).class(), ErrorClass::ContentFiltered);
    assert_eq!(
        ErrorCode::new(30006).class(),
        ErrorClass::PermanentForRecipient
    );
    assert_eq!(ErrorCode::new(20429).class(), ErrorClass::RetryLater);
    assert_eq!(ErrorCode::new(21608).class(), ErrorClass::Configuration);
    assert_eq!(ErrorCode::new(21602).class(), ErrorClass::InvalidRequest);
    let api = twilio_delivery::ApiError::new(400, Some(21610), "unsubscribed");
    assert_eq!(api.class(), ErrorClass::OptedOut);
    assert_eq!(
        twilio_delivery::ApiError::new(500, None, "x").class(),
        ErrorClass::Unknown
    );
}
