//! Snapshots of everything generated from the real spec: every protocol change is reviewed as a
//! diff of these files (`cargo insta review`).

use flynn_codegen_lib::{Spec, rust, summary, typescript};

fn spec() -> Spec {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/flynn.openrpc.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    Spec::from_json(&text).unwrap_or_else(|e| panic!("the spec does not load: {e}"))
}

#[test]
fn generated_rust() {
    let code = rust::generate(&spec()).unwrap_or_else(|e| panic!("{e}"));
    insta::assert_snapshot!("generated_rust", code);
}

#[test]
fn generated_typescript() {
    insta::assert_snapshot!("generated_typescript", typescript::generate(&spec()));
}

#[test]
fn protocol_summary() {
    let spec = spec();
    let text = summary::render(&spec);
    println!("{}", summary::counts(&spec));
    insta::assert_snapshot!("protocol_summary", text);
}

/// The counts match the protocol document: 39 methods and 7 event types, plus `rpc.discover`.
#[test]
fn counts_match_the_protocol_document() {
    let spec = spec();
    assert_eq!(
        spec.document_methods().count(),
        39,
        "methods of the protocol document"
    );
    assert!(
        spec.method("rpc.discover").is_some(),
        "rpc.discover is part of the spec"
    );
    assert_eq!(
        spec.events.iter().filter(|e| !e.extension).count(),
        7,
        "event types of the protocol document"
    );
    assert_eq!(
        spec.errors.iter().filter(|e| !e.extension).count(),
        10,
        "error codes of the protocol document's table"
    );
    for m in &spec.methods {
        assert!(!m.examples.is_empty(), "method {} has no example", m.name);
    }
}

/// The checked-in TypeScript client module is what the generator writes now.
#[test]
fn checked_in_typescript_is_fresh() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../",
        "clients/typescript/src/generated/protocol.ts"
    );
    let current = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        current == typescript::generate(&spec()),
        "{path} differs from a fresh generation: run `cargo run -p flynn-codegen -- typescript` and commit it"
    );
}
