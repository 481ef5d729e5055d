//! The repository's transcripts: valid against the spec, covering every method, event, error
//! code and required feature (COVERAGE.md is generated from them and must be current), and
//! configured consistently (every header's TOML is a part of `gateway.toml`, so one gateway
//! runs them all).

use crate::support;

use flynn_conformance::coverage::{Coverage, Exceptions};
use flynn_conformance::spec::Spec;
use flynn_conformance::validate::validate_all;
use serde_json::Value;
use support::{crate_dir, transcripts};

#[test]
fn every_transcript_is_valid_against_the_spec() {
    let spec = Spec::load().unwrap();
    let report = validate_all(&spec, &transcripts());
    assert!(report.passed(), "{}", report.to_text());
    assert!(report.summary.passed >= 30);
}

#[test]
fn coverage_is_complete_and_coverage_md_is_current() {
    let spec = Spec::load().unwrap();
    let exceptions = Exceptions::load(&crate_dir().join("coverage-exceptions.json")).unwrap();
    let coverage = Coverage::compute(&spec, &transcripts());
    let gaps = coverage.gaps(&exceptions);
    assert!(gaps.is_empty(), "uncovered:\n{}", gaps.join("\n"));
    let expected = coverage.to_markdown(&spec, &exceptions);
    let current = std::fs::read_to_string(crate_dir().join("COVERAGE.md")).unwrap_or_default();
    assert!(
        current == expected,
        "COVERAGE.md is out of date; regenerate it with\n  cargo run -p flynn-conformance -- coverage conformance/transcripts --exceptions conformance/coverage-exceptions.json --out conformance/COVERAGE.md"
    );
}

/// Whether every key of `part` is in `whole` with the same value (tables recursively).
fn is_part_of(part: &Value, whole: &Value) -> bool {
    match (part, whole) {
        (Value::Object(p), Value::Object(w)) => p
            .iter()
            .all(|(k, v)| w.get(k).is_some_and(|x| is_part_of(v, x))),
        _ => part == whole,
    }
}

#[test]
fn every_header_toml_is_part_of_gateway_toml() {
    let text = std::fs::read_to_string(crate_dir().join("gateway.toml")).unwrap();
    let whole: Value = serde_json::to_value(toml::from_str::<toml::Table>(&text).unwrap()).unwrap();
    for t in transcripts() {
        if let Some(extra) = &t.header.gateway.toml {
            let part: Value =
                serde_json::to_value(toml::from_str::<toml::Table>(extra).unwrap()).unwrap();
            assert!(
                is_part_of(&part, &whole),
                "{}: its gateway.toml {extra:?} is not in conformance/gateway.toml",
                t.name()
            );
        }
    }
    let bad: Value = serde_json::to_value(
        toml::from_str::<toml::Table>("[agent]\napproval_timeout_ms = 9").unwrap(),
    )
    .unwrap();
    assert!(!is_part_of(&bad, &whole), "the check can fail");
}

#[test]
fn every_transcript_is_reviewed_and_named_after_its_file() {
    for t in transcripts() {
        let stem = t.path.file_stem().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            t.name(),
            stem,
            "{}: the header name must match the file name",
            t.path.display()
        );
        assert!(
            t.header.description.len() > 40
                && !t
                    .header
                    .description
                    .contains("say what this transcript shows"),
            "{}: describe what the transcript shows",
            t.name()
        );
    }
}
