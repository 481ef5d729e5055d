//! The generated dispatcher never panics, whatever arrives, and every generated type
//! round-trips through serde for the spec's examples.

use std::sync::Arc;

use flynn_protocol::types::*;
use flynn_protocol::wire::{
    self, Call, Dispatched, EventEmitter, EventJson, EventSink, Reply, RequestId, RpcError,
};
use flynn_protocol::{HandlerBase, Method, Scopes, dispatch};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Rejects every call: the dispatcher's own behaviour (routing, param decoding, encoding) is what
/// is under test.
/// Holds the scopes it was given.
struct Reject(Scopes);

struct NoEvents;
impl EventSink for NoEvents {
    fn send_event(&self, _: &RequestId, _: bool, _: &'static str, _: EventJson) {}
}

impl HandlerBase for Reject {
    type Connection = ();
    fn granted_scopes(&self, _: &()) -> Scopes {
        self.0
    }
    fn session_allowed(&self, _: &(), _: &str) -> bool {
        true
    }
}

macro_rules! reject_all {
    ($(($trait_:ident, $tag:literal, [$(($f:ident, $name:literal, $params:ident, $result:ident)),*])),*) => {
        $(
            impl flynn_protocol::$trait_ for Reject {
                $(
                    fn $f(&self, _: Call<()>, _: $params) -> Reply<'_, $result> {
                        Reply::ready(Err(RpcError::internal(concat!("test handler: ", $tag, " ", $name))))
                    }
                )*
            }
        )*
    };
}
flynn_protocol::for_each_tag!(reject_all);

/// Runs one frame through parsing and dispatch, returning the reply text.
fn handle(frame: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        match wire::parse_request(frame) {
            Err(rejected) => rejected.reply(),
            Ok(request) => {
                let call = Call::new(
                    Arc::new(()),
                    EventEmitter::new(request.id.clone(), Arc::new(NoEvents)),
                );
                let reply =
                    match dispatch(&Reject(Scopes::ALL), call, request.method, request.params) {
                        Dispatched::Ready(reply) => reply,
                        Dispatched::Later(reply) => reply.await,
                    };
                match reply {
                    Ok(reply) => reply,
                    Err(e) => wire::error_reply(Some(&request.id), request.jsonrpc, &e),
                }
            }
        }
    })
}

fn spec() -> Value {
    serde_json::from_str(flynn_protocol::SPEC_JSON).expect("spec parses")
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-zA-Z0-9:._ -]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn is_valid_reply(reply: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(reply) else {
        return false;
    };
    v.get("id").is_some() && (v.get("result").is_some() ^ v.get("error").is_some())
}

/// A request frame assembled from members that are right, wrong, repeated or escaped, so the
/// one-pass parser meets every case the careful one distinguishes: a mostly valid request, then
/// extra members (any name, any value) inserted anywhere, sometimes written as an array or
/// followed by stray text.
fn arb_frame() -> impl Strategy<Value = String> {
    fn pick(values: &[&'static str]) -> impl Strategy<Value = &'static str> + use<> {
        prop::sample::select(values.to_vec())
    }
    let any_value = || {
        pick(&[
            "1",
            "-5",
            "0",
            "1.5",
            "1e3",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
            "\"a\"",
            "\"\\u0061\"",
            "null",
            "true",
            "\"2.0\"",
            "\"1.0\"",
            "\"system.info\"",
            "\"sessions.list\"",
            "\"nope\"",
            "\"system.\\u0069nfo\"",
            "{}",
            "{\"limit\":2}",
            "[1]",
            "[]",
            "{\"a\":[1,{\"b\":null}]}",
        ])
    };
    let id = prop_oneof![
        4 => pick(&["1", "-5", "9223372036854775807", "\"a\"", "\"\\u0061\""]),
        1 => any_value(),
    ];
    let method = prop_oneof![
        4 => pick(&["\"system.info\"", "\"sessions.list\"", "\"agent.send\""]),
        1 => any_value(),
    ];
    let optional = |valid: &'static [&'static str]| {
        prop_oneof![
            2 => Just(None),
            2 => pick(valid).prop_map(Some),
            1 => any_value().prop_map(Some),
        ]
    };
    let jsonrpc = optional(&["\"2.0\""]);
    let params = optional(&["{}", "null", "{\"limit\":2}"]);
    let key = pick(&[
        "id", "jsonrpc", "method", "params", "extra", "i\\u0064", "ID",
    ]);
    let extras = prop::collection::vec((key, any_value(), any::<prop::sample::Index>()), 0..3);
    let shape = prop_oneof![8 => Just(""), 1 => pick(&["[", " ", "\n", "]", ",", "x"])];
    (id, method, jsonrpc, params, extras, shape).prop_map(
        |(id, method, jsonrpc, params, extras, shape)| {
            // In the order of a struct's fields, so an array reads as a plausible request.
            let mut members = vec![("id", id)];
            members.extend(jsonrpc.map(|v| ("jsonrpc", v)));
            members.push(("method", method));
            members.extend(params.map(|v| ("params", v)));
            for (k, v, at) in extras {
                members.insert(at.index(members.len() + 1), (k, v));
            }
            if shape == "[" {
                let values: Vec<&str> = members.iter().map(|(_, v)| *v).collect();
                return format!("[{}]", values.join(","));
            }
            let body: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            format!("{{{}}}{shape}", body.join(","))
        },
    )
}

/// A request as parsed (id, jsonrpc, method, params text).
type Accepted = (RequestId, bool, &'static str, Option<String>);
/// A refusal (id, jsonrpc, error).
type Refused = (Option<RequestId>, bool, RpcError);

/// What a parse decided, comparable across the two parsers.
fn decision(parsed: Result<wire::Request<'_>, wire::Rejected>) -> Result<Accepted, Refused> {
    parsed
        .map(|r| {
            let params = r.params.map(|p| p.get().to_owned());
            (r.id, r.jsonrpc, r.method.name(), params)
        })
        .map_err(|r| (r.id, r.jsonrpc, r.error))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The one-pass parser takes only frames the careful parser accepts, and reads them the same.
    #[test]
    fn the_fast_parse_agrees_with_the_careful_one(frame in arb_frame()) {
        prop_assert_eq!(
            decision(wire::parse_request(&frame)),
            decision(wire::parse_request_slow(&frame)),
            "frame {}", frame
        );
    }

    /// Arbitrary text never panics and always gets exactly one well-formed reply.
    #[test]
    fn arbitrary_text_gets_a_reply(text in ".{0,200}") {
        prop_assert!(is_valid_reply(&handle(&text)));
    }

    /// Arbitrary JSON as a frame.
    #[test]
    fn arbitrary_json_gets_a_reply(frame in arb_json()) {
        prop_assert!(is_valid_reply(&handle(&frame.to_string())));
    }

    /// Random params for every method: either -2 naming a path, or the handler is reached.
    #[test]
    fn random_params_for_every_method(index in 0usize..64, params in arb_json(), id in any::<i64>()) {
        let names = flynn_protocol::methods::ALL;
        let method = names[index % names.len()];
        let reply = handle(&json!({ "id": id, "method": method, "params": params }).to_string());
        prop_assert!(is_valid_reply(&reply));
        let v: Value = serde_json::from_str(&reply).unwrap_or_default();
        prop_assert_eq!(&v["id"], &json!(id));
        let code = v["error"]["code"].as_i64().unwrap_or(0);
        prop_assert!(code == -2 || code == 5, "unexpected reply {}", reply);
        if code == -2 {
            prop_assert!(v["error"]["data"]["path"].is_string(), "-2 without a path: {}", reply);
        }
    }
}

/// Every method example's params reach the handler (they decode), and params and results
/// round-trip: value -> type -> value -> type gives the same type.
/// The generated dispatcher refuses every method whose `x-scope` the connection lacks, with
/// ScopeRequired naming it, before the params are read (an empty params object would be -2 for
/// many methods), and lets the others through to the handler.
#[test]
fn dispatch_enforces_each_methods_scope() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let spec = spec();
    for method in Method::ALL {
        let declared = spec["methods"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["name"] == method.name()))
            .and_then(|m| m["x-scope"].as_str())
            .unwrap_or_else(|| panic!("{} declares x-scope", method.name()));
        assert_eq!(Scopes::name(method.scope()), declared, "{}", method.name());
        for held in Scopes::EVERY {
            let handler = Reject(Scopes::NONE.with(held));
            let call = Call::new(
                Arc::new(()),
                EventEmitter::new(RequestId::Number(1), Arc::new(NoEvents)),
            );
            let reply = runtime.block_on(async {
                match dispatch(&handler, call, method, None) {
                    Dispatched::Ready(reply) => reply,
                    Dispatched::Later(reply) => reply.await,
                }
            });
            let frame: Value = match reply {
                Ok(text) => serde_json::from_str(&text).expect("reply is JSON"),
                Err(e) => serde_json::to_value(&e).expect("error is JSON"),
            };
            let refused = frame["code"] == -6;
            assert_eq!(
                refused,
                held != method.scope(),
                "{} with only `{}`: {frame}",
                method.name(),
                Scopes::name(held)
            );
            if refused {
                assert_eq!(frame["data"]["scope"], declared);
                assert_eq!(frame["data"]["method"], method.name());
            }
        }
    }
}

/// `dispatch` routes each method to the trait of its tag (the test handler's message names the
/// trait's tag), `Method::tag` is the spec's tag, and `for_each_tag!` lists every method once.
#[test]
fn dispatch_routes_each_method_to_its_tags_trait() {
    let spec = spec();
    let mut routed = 0;
    for method in Method::ALL {
        let declared = spec["methods"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["name"] == method.name()))
            .and_then(|m| m["tags"][0]["name"].as_str())
            .unwrap_or_else(|| panic!("{} has a tag", method.name()));
        assert_eq!(method.tag(), declared, "{}", method.name());
        let reply = handle(&json!({"id": 1, "method": method.name()}).to_string());
        let want = format!("test handler: {declared} {}", method.name());
        // Methods with required params stop at -2 before the handler; the others reach it.
        if !reply.contains("\"code\":-2") {
            assert!(reply.contains(&want), "{}: {reply}", method.name());
            routed += 1;
        }
    }
    assert!(
        routed >= 20,
        "only {routed} methods reached a handler without params"
    );
    macro_rules! count_methods {
        ($(($trait_:ident, $tag:literal, [$(($f:ident, $name:literal, $params:ident, $result:ident)),*])),*) => {
            [$($((stringify!($trait_), $tag, $name)),*),*]
        };
    }
    let listed = flynn_protocol::for_each_tag!(count_methods);
    assert_eq!(
        listed.len(),
        Method::ALL.len(),
        "for_each_tag! lists every method once"
    );
    let distinct: std::collections::HashSet<&str> = listed.iter().map(|(_, _, n)| *n).collect();
    assert_eq!(
        distinct.len(),
        listed.len(),
        "for_each_tag! lists no method twice"
    );
    for (trait_, tag, name) in listed {
        let method = Method::from_name(name).unwrap_or_else(|| panic!("{name} is a method"));
        assert_eq!(method.tag(), tag, "{name} listed under {trait_}");
        assert!(
            trait_.to_lowercase() == format!("{tag}methods"),
            "{trait_} is the trait of {tag}"
        );
    }
}

#[test]
fn examples_round_trip_through_the_generated_types() {
    let spec = spec();
    let mut checked = 0;
    for method in spec["methods"].as_array().expect("methods") {
        let name = method["name"].as_str().expect("name");
        for example in method["examples"].as_array().expect("examples") {
            let params: serde_json::Map<String, Value> = example["params"]
                .as_array()
                .expect("params list")
                .iter()
                .map(|p| {
                    (
                        p["name"].as_str().expect("param name").to_owned(),
                        p["value"].clone(),
                    )
                })
                .collect();
            let result = example["result"]["value"].clone();
            round_trip(name, Value::Object(params), result);
            checked += 1;
        }
    }
    assert!(checked >= 41, "only {checked} examples checked");
}

macro_rules! round_trip_fn {
    ($(($f:ident, $name:literal, $params:ident, $result:ident)),*) => {
        fn round_trip(method: &str, params: Value, result: Value) {
            match method {
                $(
                    $name => {
                        let p: $params = serde_json::from_value(params.clone())
                            .unwrap_or_else(|e| panic!("{} example params do not decode: {e}: {params}", $name));
                        let again: $params = serde_json::from_value(serde_json::to_value(&p).expect("encode"))
                            .expect("decode again");
                        assert_eq!(p, again, "{} params round trip", $name);
                        let r: $result = serde_json::from_value(result.clone())
                            .unwrap_or_else(|e| panic!("{} example result does not decode: {e}: {result}", $name));
                        let again: $result = serde_json::from_value(serde_json::to_value(&r).expect("encode"))
                            .expect("decode again");
                        assert_eq!(r, again, "{} result round trip", $name);
                        // And the dispatcher accepts the params (reaches the handler).
                        let reply = handle(&json!({"id": 1, "method": $name, "params": params}).to_string());
                        assert!(reply.contains("test handler"), "{} example params rejected: {reply}", $name);
                    }
                )*
                other => panic!("example for unknown method {other}"),
            }
        }
    };
}
flynn_protocol::for_each_method!(round_trip_fn);

macro_rules! event_round_trip_fn {
    ($(($f:ident, $name:literal, $data:ident)),*) => {
        fn event_round_trip(event: &str, data: Value) {
            match event {
                $(
                    $name => {
                        let d: $data = serde_json::from_value(data.clone())
                            .unwrap_or_else(|e| panic!("{} example does not decode: {e}: {data}", $name));
                        let again: $data = serde_json::from_value(serde_json::to_value(&d).expect("encode")).expect("decode");
                        assert_eq!(d, again, "{} data round trip", $name);
                        let decoded = flynn_protocol::Event::decode($name, data).expect("Event::decode");
                        assert_eq!(decoded.name(), $name);
                    }
                )*
                other => panic!("example for unknown event {other}"),
            }
        }
    };
}
flynn_protocol::for_each_event!(event_round_trip_fn);

#[test]
fn event_examples_round_trip() {
    let spec = spec();
    let mut checked = 0;
    for event in spec["x-events"].as_array().expect("events") {
        let name = event["name"].as_str().expect("name");
        for example in event["examples"].as_array().expect("examples") {
            event_round_trip(name, example["value"].clone());
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} event examples checked");
}

/// Constraints the serde types cannot carry (here `maximum`) are enforced from the schema.
#[test]
fn schema_constraints_beyond_the_types_are_enforced() {
    let reply: Value = serde_json::from_str(&handle(
        r#"{"id":1,"method":"system.presence","params":{"limit":1001}}"#,
    ))
    .expect("reply is JSON");
    assert_eq!(reply["error"]["code"], -2, "{reply}");
    assert_eq!(reply["error"]["data"]["path"], "params.limit", "{reply}");
    let reply = handle(r#"{"id":2,"method":"system.presence","params":{"limit":1000}}"#);
    assert!(reply.contains("test handler"), "{reply}");
    // Nested paths are named the same way.
    let reply: Value = serde_json::from_str(&handle(
        r#"{"id":3,"method":"agent.send","params":{"message":"x","attachments":[{"mimeType":"image/png"}]}}"#,
    ))
    .expect("reply is JSON");
    assert_eq!(reply["error"]["code"], -2, "{reply}");
    assert!(
        reply["error"]["data"]["path"]
            .as_str()
            .unwrap_or("")
            .starts_with("params.attachments"),
        "{reply}"
    );
}
