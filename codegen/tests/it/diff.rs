//! `diff` on crafted spec pairs: each mutation of a small base spec is classified as expected.

use flynn_codegen_lib::diff::{Severity, diff, is_breaking};
use flynn_codegen_lib::{Spec, rust};
use serde_json::{Value, json};

fn base() -> Value {
    json!({
        "openrpc": "1.3.2",
        "info": {"title": "t", "version": "1.0.0"},
        "x-protocol-version": 1,
        "x-scopes": [{"name": "read", "description": "r"}, {"name": "chat", "description": "c"}],
        "x-events": [{"name": "done", "description": "d", "data": {"$ref": "#/components/schemas/DoneEventData"}}],
        "methods": [
            {"name": "sessions.list", "summary": "s", "paramStructure": "by-name", "x-scope": "read",
             "params": [
                {"name": "limit", "required": false, "schema": {"type": "integer", "minimum": 1}},
                {"name": "mode", "required": false, "schema": {"type": "string", "enum": ["a", "b"]}}
             ],
             "result": {"name": "r", "schema": {"$ref": "#/components/schemas/SessionsListResult"}}},
            {"name": "system.info", "summary": "s", "paramStructure": "by-name", "x-scope": "read", "params": [],
             "result": {"name": "r", "schema": {"$ref": "#/components/schemas/SystemInfoResult"}}}
        ],
        "components": {
            "schemas": {
                "SessionsListResult": {"type": "object", "required": ["total"], "properties": {
                    "total": {"type": "integer"},
                    "state": {"type": "string", "enum": ["on", "off"]},
                    "ratio": {"type": "number"}
                }},
                "SystemInfoResult": {"type": "object", "properties": {"version": {"type": "string"}}},
                "DoneEventData": {"type": "object", "required": ["content"], "properties": {"content": {"type": "string"}}}
            },
            "errors": {"InternalError": {"code": 5, "message": "x"}}
        }
    })
}

fn arr(v: &mut Value) -> &mut Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => panic!("not an array: {other}"),
    }
}

fn obj(v: &mut Value) -> &mut serde_json::Map<String, Value> {
    v.as_object_mut().unwrap_or_else(|| panic!("not an object"))
}

fn classify(edit: impl FnOnce(&mut Value)) -> Vec<(Severity, String)> {
    let old = Spec::from_value(base()).unwrap_or_else(|e| panic!("{e}"));
    let mut new = base();
    edit(&mut new);
    let new = Spec::from_value(new).unwrap_or_else(|e| panic!("{e}"));
    diff(&old, &new)
        .into_iter()
        .map(|c| (c.severity, format!("{}: {}", c.at, c.what)))
        .collect()
}

fn assert_breaking(edit: impl FnOnce(&mut Value), expect: &str) {
    let changes = classify(edit);
    assert!(
        changes
            .iter()
            .any(|(s, w)| *s == Severity::Breaking && w.contains(expect)),
        "expected a breaking change mentioning {expect:?}, got {changes:?}"
    );
}

fn assert_compatible(edit: impl FnOnce(&mut Value), expect: &str) {
    let changes = classify(edit);
    assert!(
        changes.iter().all(|(s, _)| *s == Severity::Compatible),
        "expected only compatible changes, got {changes:?}"
    );
    assert!(
        changes.iter().any(|(_, w)| w.contains(expect)),
        "expected a change mentioning {expect:?}, got {changes:?}"
    );
}

#[test]
fn identical_specs_have_no_changes() {
    assert!(classify(|_| {}).is_empty());
}

#[test]
fn removing_a_method_is_breaking() {
    assert_breaking(
        |s| {
            arr(&mut s["methods"]).remove(1);
        },
        "system.info: method removed",
    );
}

#[test]
fn adding_a_method_is_compatible() {
    assert_compatible(
        |s| {
            let mut m = s["methods"][1].clone();
            m["name"] = json!("system.other");
            arr(&mut s["methods"]).push(m);
        },
        "system.other: method added",
    );
}

#[test]
fn removing_a_result_field_is_breaking() {
    assert_breaking(
        |s| {
            obj(&mut s["components"]["schemas"]["SessionsListResult"]["properties"])
                .remove("ratio");
        },
        "sessions.list result.ratio: field removed",
    );
}

#[test]
fn removing_a_param_is_breaking() {
    assert_breaking(
        |s| {
            arr(&mut s["methods"][0]["params"]).remove(1);
        },
        "params.mode: field removed",
    );
}

#[test]
fn making_a_param_required_is_breaking() {
    assert_breaking(
        |s| s["methods"][0]["params"][0]["required"] = json!(true),
        "params.limit: field made required",
    );
}

#[test]
fn adding_an_optional_param_is_compatible() {
    assert_compatible(
        |s| {
            arr(&mut s["methods"][0]["params"])
                .push(json!({"name": "offset", "schema": {"type": "integer"}}));
        },
        "params.offset: field added",
    );
}

#[test]
fn adding_a_required_param_is_breaking() {
    assert_breaking(
        |s| {
            arr(&mut s["methods"][0]["params"])
                .push(json!({"name": "offset", "required": true, "schema": {"type": "integer"}}));
        },
        "params.offset: required field added",
    );
}

#[test]
fn narrowing_a_param_type_is_breaking() {
    assert_breaking(
        |s| s["methods"][0]["params"][0]["schema"]["minimum"] = json!(10),
        "minimum narrowed",
    );
    assert_breaking(
        |s| s["methods"][0]["params"][0]["schema"]["type"] = json!("string"),
        "type changed",
    );
}

#[test]
fn constraints_that_codify_an_enforced_rule_are_compatible() {
    let constrain = |s: &mut Value, codifies: bool| {
        let schema = &mut s["methods"][0]["params"][1]["schema"];
        *schema = json!({"type": "string", "maxLength": 8, "pattern": "^[a-z]*$"});
        if codifies {
            schema["x-codifies"] = json!("mode-rule");
        }
    };
    assert_breaking(|s| constrain(s, false), "maxLength narrowed");
    assert_breaking(|s| constrain(s, false), "pattern added");
    assert_compatible(
        |s| constrain(s, true),
        "maxLength narrowed (none -> 8) (a rule the gateway enforced before: decision mode-rule)",
    );
    assert_compatible(|s| constrain(s, true), "pattern added or changed (a rule");
}

#[test]
fn narrowing_a_result_type_is_compatible_and_widening_is_breaking() {
    assert_compatible(
        |s| {
            s["components"]["schemas"]["SessionsListResult"]["properties"]["ratio"]["type"] =
                json!("integer")
        },
        "type narrowed from number to integer",
    );
    assert_breaking(
        |s| {
            s["components"]["schemas"]["SessionsListResult"]["properties"]["total"]["type"] =
                json!("number")
        },
        "type widened from integer to number",
    );
}

/// The spec writes a nullable value as `oneOf: [{type: T}, {type: "null"}]`; the diff reads the
/// branches' types, so making a result nullable this way is seen (and breaking), and rewriting a
/// `[T, "null"]` type array in this form is no change.
#[test]
fn nullable_written_as_one_of_is_typed() {
    let nullable = json!({"oneOf": [{"type": "integer"}, {"type": "null"}]});
    let n = nullable.clone();
    assert_breaking(
        move |s| s["components"]["schemas"]["SessionsListResult"]["properties"]["total"] = n,
        "type widened from integer to integer|null",
    );
    let with_total = |schema: Value| {
        let mut s = base();
        s["components"]["schemas"]["SessionsListResult"]["properties"]["total"] = schema;
        Spec::from_value(s).unwrap_or_else(|e| panic!("{e}"))
    };
    let array_form = with_total(json!({"type": ["integer", "null"]}));
    let one_of_form = with_total(nullable);
    assert!(diff(&array_form, &one_of_form).is_empty());
    let narrowed = diff(&one_of_form, &with_total(json!({"type": "integer"})));
    assert!(!is_breaking(&narrowed), "{narrowed:?}");
    assert!(
        narrowed
            .iter()
            .any(|c| c.what == "type narrowed from integer|null to integer"),
        "{narrowed:?}"
    );
}

#[test]
fn removing_an_enum_value_is_breaking() {
    assert_breaking(
        |s| s["methods"][0]["params"][1]["schema"]["enum"] = json!(["a"]),
        "enum value \"b\" removed",
    );
    assert_breaking(
        |s| {
            s["components"]["schemas"]["SessionsListResult"]["properties"]["state"]["enum"] =
                json!(["on"])
        },
        "enum value \"off\" removed",
    );
}

#[test]
fn adding_an_enum_value_breaks_only_results() {
    assert_compatible(
        |s| s["methods"][0]["params"][1]["schema"]["enum"] = json!(["a", "b", "c"]),
        "enum value \"c\" added",
    );
    assert_breaking(
        |s| {
            s["components"]["schemas"]["SessionsListResult"]["properties"]["state"]["enum"] =
                json!(["on", "off", "x"])
        },
        "enum value \"x\" added",
    );
}

#[test]
fn event_changes_are_classified() {
    assert_breaking(|s| s["x-events"] = json!([]), "event done: event removed");
    assert_breaking(
        |s| {
            s["components"]["schemas"]["DoneEventData"]["required"] = json!([]);
        },
        "event done data.content: field no longer always present",
    );
}

#[test]
fn verdict_is_breaking_when_any_change_is() {
    let old = Spec::from_value(base()).unwrap_or_else(|e| panic!("{e}"));
    let mut new = base();
    arr(&mut new["methods"]).remove(0);
    let new = Spec::from_value(new).unwrap_or_else(|e| panic!("{e}"));
    assert!(is_breaking(&diff(&old, &new)));
}

/// The working spec against the last released one (`spec/released/<version>.json`): a breaking
/// change needs a new major version, so reviewers see it named before it lands.
#[test]
fn no_breaking_change_since_the_last_release_without_a_major_bump() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/released");
    let mut released: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    let version = |p: &std::path::Path| -> Vec<u64> {
        p.file_stem()
            .and_then(|s| s.to_str())
            .map(|s| s.split('.').filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_default()
    };
    released.sort_by_key(|p| version(p));
    let last = released
        .last()
        .unwrap_or_else(|| panic!("no released spec in {dir}"));
    let read = |p: &std::path::Path| {
        let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        Spec::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let old = read(last);
    let new = read(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../spec/flynn.openrpc.json"
    )));
    let major = |v: &str| {
        v.split('.')
            .next()
            .and_then(|m| m.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let changes = diff(&old, &new);
    if major(&new.version) <= major(&old.version) {
        let breaking: Vec<String> = changes
            .iter()
            .filter(|c| c.severity == Severity::Breaking)
            .map(ToString::to_string)
            .collect();
        assert!(
            breaking.is_empty(),
            "breaking changes since {} without a major version bump:\n{}",
            last.display(),
            breaking.join("\n")
        );
    }
}

#[test]
fn changing_a_scope_is_breaking_and_declaring_one_is_compatible() {
    assert_breaking(
        |s| s["methods"][1]["x-scope"] = json!("chat"),
        "system.info: scope changed from `read` to `chat`",
    );
    // From a document without scopes (released 1.1.0) to one with them.
    let mut old = base();
    obj(&mut old).remove("x-scopes");
    for m in arr(&mut old["methods"]) {
        obj(m).remove("x-scope");
    }
    let old = Spec::from_value(old).expect("a spec without scopes still parses for diffing");
    let new = Spec::from_value(base()).expect("base parses");
    let changes = diff(&old, &new);
    assert!(!is_breaking(&changes), "{changes:?}");
    assert!(
        changes
            .iter()
            .any(|c| c.to_string().contains("scope `read` declared")),
        "{changes:?}"
    );
    // Once a document has scopes, a method without one is refused.
    let mut missing = base();
    obj(&mut missing["methods"][0]).remove("x-scope");
    let error = Spec::from_value(missing)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("x-scope") && error.contains("missing"),
        "{error}"
    );
}

/// `base()` with its methods tagged and the tags declared in `components.tags`.
fn tagged() -> Value {
    let mut spec = base();
    spec["methods"][0]["tags"] = json!([{"name": "sessions"}]);
    spec["methods"][1]["tags"] = json!([{"name": "system"}]);
    spec["components"]["tags"] = json!({
        "sessions": {"name": "sessions", "description": "Sessions."},
        "system": {"name": "system", "description": "The gateway itself."}
    });
    spec
}

fn refusal(spec: Value) -> String {
    Spec::from_value(spec)
        .map(|_| ())
        .expect_err("the spec is refused")
        .to_string()
}

#[test]
fn moving_a_method_to_another_tag_is_compatible() {
    let old = Spec::from_value(tagged()).expect("tagged parses");
    let mut new = tagged();
    new["methods"][1]["tags"] = json!([{"name": "sessions"}]);
    obj(&mut new["components"]["tags"]).remove("system");
    let new = Spec::from_value(new).expect("retagged parses");
    let changes = diff(&old, &new);
    assert!(!is_breaking(&changes), "{changes:?}");
    assert!(
        changes.iter().any(|c| c
            .to_string()
            .contains("system.info: tag changed from `system` to `sessions`")),
        "{changes:?}"
    );
}

#[test]
fn tags_are_declared_described_and_used() {
    let spec = Spec::from_value(tagged()).expect("tagged parses");
    let names: Vec<&str> = spec.tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["sessions", "system"]);
    assert_eq!(spec.tag_methods("system").count(), 1);

    let mut undeclared = tagged();
    undeclared["methods"][1]["tags"] = json!([{"name": "insights"}]);
    let error = refusal(undeclared);
    assert!(
        error.contains("system.info") && error.contains("`insights` is not declared"),
        "{error}"
    );

    let mut unused = tagged();
    unused["components"]["tags"]["canvas"] = json!({"name": "canvas", "description": "Canvas."});
    let error = refusal(unused);
    assert!(
        error.contains("components.tags.canvas") && error.contains("no method"),
        "{error}"
    );

    let mut undescribed = tagged();
    obj(&mut undescribed["components"]["tags"]["system"]).remove("description");
    let error = refusal(undescribed);
    assert!(
        error.contains("components.tags.system.description"),
        "{error}"
    );

    let mut misnamed = tagged();
    misnamed["components"]["tags"]["system"]["name"] = json!("System");
    assert!(refusal(misnamed).contains("components.tags.system.name"));
}

/// Generation needs the tags (one handler trait per tag); a document without them, like the
/// released 1.1.0, is still read for diffing.
#[test]
fn generation_requires_declared_tags() {
    let untagged = Spec::from_value(base()).expect("a spec without tags parses for diffing");
    assert!(untagged.tags.is_empty());
    let error = rust::generate(&untagged).expect_err("no tags").to_string();
    assert!(error.contains("components.tags"), "{error}");
}
