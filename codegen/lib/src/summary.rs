//! A readable protocol summary: counts, then one block per method (params, result, events,
//! errors) and per event. Snapshot-tested, so a protocol change shows up as a readable diff.

use std::fmt::Write as _;

use serde_json::Value;

use crate::spec::Spec;
use crate::typescript::ts_type;

/// The counts line block printed by `flynn-codegen summary` and checked by the tests.
pub fn counts(spec: &Spec) -> String {
    let document = spec.document_methods().count();
    let extensions = spec.methods.iter().filter(|m| m.extension).count();
    let discover = spec.method("rpc.discover").map_or(0, |_| 1);
    let doc_events = spec.events.iter().filter(|e| !e.extension).count();
    let method_examples: usize = spec.methods.iter().map(|m| m.examples.len()).sum();
    let event_examples: usize = spec.events.iter().map(|e| e.examples.len()).sum();
    format!(
        "methods: {} ({document} from the protocol document, {discover} rpc.discover, {extensions} extension)\n\
         events: {} ({doc_events} from the protocol document, {} extension)\n\
         error codes: {}\n\
         examples: {} ({method_examples} method, {event_examples} event, {} wire)\n",
        spec.methods.len(),
        spec.events.len(),
        spec.events.len() - doc_events,
        spec.errors.len(),
        spec.example_count(),
        spec.example_count() - method_examples - event_examples,
    )
}

/// The full summary.
pub fn render(spec: &Spec) -> String {
    let mut out = format!(
        "{} {} (protocol version {})\n{}\n",
        spec.title,
        spec.version,
        spec.protocol_version,
        counts(spec)
    );
    for m in &spec.methods {
        let _ = writeln!(
            out,
            "## {}{}",
            m.name,
            if m.extension { " (extension)" } else { "" }
        );
        let _ = writeln!(out, "  {}", m.summary);
        let _ = writeln!(out, "  scope: {}", m.scope);
        if m.params.is_empty() {
            let _ = writeln!(out, "  params: none");
        } else {
            let _ = writeln!(out, "  params:");
            for p in &m.params {
                let _ = writeln!(
                    out,
                    "    {}{}: {}",
                    p.name,
                    if p.required { "" } else { "?" },
                    one_line(&p.schema, spec)
                );
            }
        }
        let _ = writeln!(out, "  result: {}", expand(&m.result, spec));
        let _ = writeln!(
            out,
            "  events: {}",
            if m.events.is_empty() {
                "none".to_owned()
            } else {
                m.events.join(", ")
            }
        );
        let errors: Vec<String> = m
            .errors
            .iter()
            .map(|name| {
                let code = spec
                    .errors
                    .iter()
                    .find(|e| &e.name == name)
                    .map_or(0, |e| e.code);
                format!("{name} ({code})")
            })
            .collect();
        let _ = writeln!(
            out,
            "  errors: {}\n",
            if errors.is_empty() {
                "none".to_owned()
            } else {
                errors.join(", ")
            }
        );
    }
    for e in &spec.events {
        let _ = writeln!(
            out,
            "## event {}{}",
            e.name,
            if e.extension { " (extension)" } else { "" }
        );
        let _ = writeln!(out, "  {}", e.description);
        let _ = writeln!(out, "  data: {}\n", expand(&e.data, spec));
    }
    let _ = writeln!(out, "## error codes");
    for e in &spec.errors {
        let _ = writeln!(out, "  {:>3} {}: {}", e.code, e.name, e.message);
    }
    out
}

/// A schema on one line, TypeScript-like.
fn one_line(schema: &Value, _spec: &Spec) -> String {
    ts_type(schema, "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Name { field: type, optional?: type }` for a named schema.
fn expand(name: &str, spec: &Spec) -> String {
    let Some(schema) = spec.schemas.get(name) else {
        return name.to_owned();
    };
    let Some(props) = schema["properties"].as_object() else {
        return format!("{name} = {}", one_line(schema, spec));
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let fields: Vec<String> = props
        .iter()
        .map(|(k, v)| {
            let opt = if required.contains(&k.as_str()) {
                ""
            } else {
                "?"
            };
            format!("{k}{opt}: {}", one_line(v, spec))
        })
        .collect();
    format!("{name} {{ {} }}", fields.join(", "))
}
