use super::*;
use serde_json::{Value, json};

fn check(expected: Value, actual: Value) -> Vec<Difference> {
    let p = Pattern::compile(&expected).unwrap();
    match_value(&p, &actual, &mut Captures::default())
}

#[test]
fn literals_and_open_objects() {
    assert!(
        check(
            json!({"id": 1, "result": {"a": 1}}),
            json!({"id": 1, "result": {"a": 1.0, "b": 2}})
        )
        .is_empty()
    );
    let d = check(
        json!({"id": 1, "result": {"a": 1}}),
        json!({"id": 1, "result": {"a": 2}}),
    );
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].path, "result.a");
    let d = check(json!({"a": 1, "$closed": true}), json!({"a": 1, "b": 2}));
    assert_eq!(d[0].path, "b");
}

#[test]
fn matchers() {
    assert!(check(json!({"u": {"$type": "integer"}}), json!({"u": 5})).is_empty());
    let d = check(
        json!({"result": {"uptime": {"$type": "integer"}}}),
        json!({"result": {"uptime": "soon"}}),
    );
    assert_eq!(d[0].path, "result.uptime");
    assert!(d[0].message.contains("expected integer, received string"));
    assert!(check(json!({"c": {"$regex": "^[A-Z]+$"}}), json!({"c": "ABC"})).is_empty());
    assert_eq!(
        check(json!({"c": {"$regex": "^[A-Z]+$"}}), json!({"c": "abc"})).len(),
        1
    );
    assert!(check(json!({"x": {"$any": true}}), json!({"x": [1]})).is_empty());
    assert_eq!(check(json!({"x": {"$any": true}}), json!({})).len(), 1);
    assert!(
        check(
            json!({"x": {"$optional": true, "$type": "string"}}),
            json!({})
        )
        .is_empty()
    );
    assert_eq!(
        check(json!({"x": {"$absent": true}}), json!({"x": 1})).len(),
        1
    );
    assert!(
        check(
            json!({"x": {"$each": {"$type": "integer"}}}),
            json!({"x": [1, 2]})
        )
        .is_empty()
    );
    assert_eq!(
        check(
            json!({"x": {"$each": {"$type": "integer"}}}),
            json!({"x": [1, "a"]})
        )[0]
        .path,
        "x[1]"
    );
    assert!(
        check(
            json!({"x": {"$literal": {"$type": 1}}}),
            json!({"x": {"$type": 1}})
        )
        .is_empty()
    );
    assert_eq!(
        check(json!({"a": {"b.c": 1}}), json!({"a": {"b.c": 2}}))[0].path,
        "a[\"b.c\"]"
    );
    let contains =
        json!({"x": {"$contains": [{"code": {"$capture": "c"}, "channel": "telegram"}]}});
    let p = Pattern::compile(&contains).unwrap();
    let mut caps = Captures::default();
    assert!(match_value(&p, &json!({"x": [{"code": "A", "channel": "slack"}, {"code": "B", "channel": "telegram"}]}), &mut caps).is_empty());
    assert_eq!(caps.get("c"), Some(&json!("B")));
    assert_eq!(
        check(contains, json!({"x": [{"code": "A", "channel": "slack"}]})).len(),
        1
    );
}

#[test]
fn a_name_captured_again_must_hold_the_same_value() {
    let p = Pattern::compile(&json!({"a": {"$capture": "n"}, "b": {"$capture": "n"}})).unwrap();
    let mut caps = Captures::default();
    assert!(match_value(&p, &json!({"a": 1, "b": 1}), &mut caps).is_empty());
    let mut caps = Captures::default();
    let diffs = match_value(&p, &json!({"a": 1, "b": 2}), &mut caps);
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!(diffs[0].path, "b");
    assert!(diffs[0].message.contains("was captured as 1"), "{diffs:?}");
    assert_eq!(caps.get("n"), Some(&json!(1)));
}

#[test]
fn captures_and_refs() {
    let mut caps = Captures::default();
    let p = Pattern::compile(&json!({"id": {"$capture": "s"}})).unwrap();
    assert!(match_value(&p, &json!({"id": "abc"}), &mut caps).is_empty());
    let r = Pattern::compile(&json!({"sessionId": {"$ref": "s"}})).unwrap();
    assert!(match_value(&r, &json!({"sessionId": "abc"}), &mut caps).is_empty());
    assert_eq!(
        match_value(&r, &json!({"sessionId": "xyz"}), &mut caps).len(),
        1
    );
    assert_eq!(substitute(&r, &caps).unwrap(), json!({"sessionId": "abc"}));
    assert!(
        substitute(
            &Pattern::compile(&json!({"a": {"$ref": "nope"}})).unwrap(),
            &caps
        )
        .is_err()
    );
}

#[test]
fn optional_objects() {
    let p = json!({"result": {"$optional": true, "a": 1}, "error": {"$optional": true, "code": 5, "$example": {"code": 5, "message": "m"}}});
    assert!(check(p.clone(), json!({"result": {"a": 1}})).is_empty());
    assert!(check(p.clone(), json!({"error": {"code": 5}})).is_empty());
    assert_eq!(
        check(p.clone(), json!({"error": {"code": 4}}))[0].path,
        "error.code"
    );
    let (v, holes) = concretize(&Pattern::compile(&p).unwrap(), &mut Captures::default());
    assert_eq!(v, json!({"error": {"code": 5, "message": "m"}}));
    assert!(holes.is_empty());
    assert!(Pattern::compile(&json!({"a": 1, "$type": "object"})).is_err());
}

#[test]
fn bad_matchers_are_rejected() {
    assert!(Pattern::compile(&json!({"$typo": 1})).is_err());
    assert!(Pattern::compile(&json!({"$type": "int"})).is_err());
    assert!(
        Pattern::compile(&json!({"a": {"$regex": "("}}))
            .unwrap_err()
            .path
            == "a"
    );
}

#[test]
fn concretize_uses_examples() {
    let p = Pattern::compile(&json!({"a": {"$type": "integer", "$example": 7}, "b": {"$any": true}, "c": {"$type": "string"}, "d": {"$optional": true}})).unwrap();
    let (v, holes) = concretize(&p, &mut Captures::default());
    assert_eq!(v, json!({"a": 7, "b": null, "c": ""}));
    assert_eq!(holes, vec!["b".to_owned()]);
}
