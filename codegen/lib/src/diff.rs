//! Classifies the changes between two versions of the spec as breaking or compatible.
//!
//! Direction matters. Params flow client -> server ("input"): narrowing them breaks existing
//! clients, widening is fine. Results and event data flow server -> client ("output"): widening
//! them (new enum values, a wider type, a field no longer guaranteed) breaks existing clients,
//! adding optional fields is fine because server-to-client objects are open.
//!
//! A schema may say that its constraints only write down a rule the gateway already enforced by
//! hand: `"x-codifies": "<decision id>"`. Constraints added to such a schema are then compatible
//! (clients were already refused outside the rule) and the change names the decision, which
//! must say how the old rule relates to the new one.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::spec::{Spec, schema_ref_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Compatible,
    Breaking,
}

/// One classified change, with the place it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub severity: Severity,
    /// Where, e.g. `sessions.list params.limit` or `event done data.content`.
    pub at: String,
    pub what: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Breaking => "BREAKING",
            Severity::Compatible => "compatible",
        };
        write!(f, "{tag:<10} {}: {}", self.at, self.what)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Input,
    Output,
}

struct Differ<'a> {
    old: &'a Spec,
    new: &'a Spec,
    changes: Vec<Change>,
    /// (old schema name, new schema name, flow) pairs already compared, against cycles.
    seen: BTreeSet<(String, String, bool)>,
}

impl Differ<'_> {
    fn push(&mut self, severity: Severity, at: &str, what: impl Into<String>) {
        self.changes.push(Change {
            severity,
            at: at.to_owned(),
            what: what.into(),
        });
    }

    /// Compares two schemas flowing in `flow` direction.
    fn schema(&mut self, at: &str, old: &Value, new: &Value, flow: Flow) {
        if let (Some(o), Some(n)) = (schema_ref_name(old), schema_ref_name(new)) {
            if !self
                .seen
                .insert((o.to_owned(), n.to_owned(), flow == Flow::Input))
            {
                return;
            }
            let (Some(os), Some(ns)) = (self.old.schemas.get(o), self.new.schemas.get(n)) else {
                return;
            };
            let (os, ns) = (os.clone(), ns.clone());
            return self.schema(at, &os, &ns, flow);
        }
        let old = self.resolve_old(old);
        let new = self.resolve_new(new);
        self.types(at, &old, &new, flow);
        self.enums(at, &old, &new, flow);
        if flow == Flow::Input {
            self.constraints(at, &old, &new);
        }
        self.properties(at, &old, &new, flow);
    }

    /// A changed type: breaking when it narrows params or widens results.
    fn types(&mut self, at: &str, old: &Value, new: &Value, flow: Flow) {
        use Severity::*;

        let (old_types, new_types) = (types(old), types(new));
        if old_types != new_types && !old_types.is_empty() && !new_types.is_empty() {
            let narrowed = old_types.iter().any(|t| !covers(&new_types, t));
            let widened = new_types.iter().any(|t| !covers(&old_types, t));
            let breaking = match flow {
                Flow::Input => narrowed,
                Flow::Output => widened,
            };
            let verb = if narrowed && !widened {
                "narrowed"
            } else if widened && !narrowed {
                "widened"
            } else {
                "changed"
            };
            self.push(
                if breaking { Breaking } else { Compatible },
                at,
                format!(
                    "type {verb} from {} to {}",
                    fmt_types(&old_types),
                    fmt_types(&new_types)
                ),
            );
        }
    }

    /// Enum values removed (always breaking) or added (breaking for results).
    fn enums(&mut self, at: &str, old: &Value, new: &Value, flow: Flow) {
        use Severity::*;
        let (old_enum, new_enum) = (enum_values(old), enum_values(new));
        if let (Some(oe), Some(ne)) = (&old_enum, &new_enum) {
            for removed in oe.difference(ne) {
                // A removed value breaks clients that send it; for output it can still be a
                // stored value echoed back by clients, so it is breaking both ways.
                self.push(Breaking, at, format!("enum value {removed} removed"));
            }
            for added in ne.difference(oe) {
                let sev = if flow == Flow::Output {
                    Breaking
                } else {
                    Compatible
                };
                self.push(sev, at, format!("enum value {added} added"));
            }
        } else if old_enum.is_none() && new_enum.is_some() && flow == Flow::Input {
            self.push(Breaking, at, "value restricted to an enum");
        }
    }

    /// Fields removed, added or made (non-)required, then each kept field and the items.
    fn properties(&mut self, at: &str, old: &Value, new: &Value, flow: Flow) {
        use Severity::*;
        let (old_props, new_props) = (props(old), props(new));
        let (old_req, new_req) = (required(old), required(new));
        for name in old_props.iter().filter(|p| !new_props.contains(*p)) {
            self.push(Breaking, &format!("{at}.{name}"), "field removed");
        }
        for name in new_props.iter().filter(|p| !old_props.contains(*p)) {
            let (sev, what) = match (flow, new_req.contains(name)) {
                (Flow::Input, true) => (Breaking, "required field added"),
                _ => (Compatible, "field added"),
            };
            self.push(sev, &format!("{at}.{name}"), what);
        }
        for name in old_props.iter().filter(|p| new_props.contains(*p)) {
            let path = format!("{at}.{name}");
            match (old_req.contains(name), new_req.contains(name), flow) {
                (false, true, Flow::Input) => self.push(Breaking, &path, "field made required"),
                (true, false, Flow::Output) => {
                    self.push(Breaking, &path, "field no longer always present")
                }
                (false, true, Flow::Output) | (true, false, Flow::Input) => {
                    self.push(Compatible, &path, "requiredness relaxed for this direction")
                }
                _ => {}
            }
            let (o, n) = (
                old["properties"][name].clone(),
                new["properties"][name].clone(),
            );
            self.schema(&path, &o, &n, flow);
        }
        if let (Some(oi), Some(ni)) = (old.get("items"), new.get("items")) {
            let (oi, ni) = (oi.clone(), ni.clone());
            self.schema(&format!("{at}[]"), &oi, &ni, flow);
        }
    }

    fn constraints(&mut self, at: &str, old: &Value, new: &Value) {
        let (severity, codified) = match new.get("x-codifies").and_then(Value::as_str) {
            Some(decision) => (
                Severity::Compatible,
                format!(" (a rule the gateway enforced before: decision {decision})"),
            ),
            None => (Severity::Breaking, String::new()),
        };
        for (key, tighter_when_larger) in [
            ("minimum", true),
            ("exclusiveMinimum", true),
            ("minLength", true),
            ("minItems", true),
            ("maximum", false),
            ("exclusiveMaximum", false),
            ("maxLength", false),
            ("maxItems", false),
        ] {
            let (o, n) = (old[key].as_f64(), new[key].as_f64());
            let narrowed = match (o, n) {
                (None, Some(_)) => true,
                (Some(o), Some(n)) => {
                    (tighter_when_larger && n > o) || (!tighter_when_larger && n < o)
                }
                _ => false,
            };
            if narrowed {
                self.push(
                    severity,
                    at,
                    format!(
                        "{key} narrowed ({} -> {}){codified}",
                        fmt_opt(o),
                        fmt_opt(n)
                    ),
                );
            }
        }
        if old.get("pattern") != new.get("pattern") && new.get("pattern").is_some() {
            self.push(severity, at, format!("pattern added or changed{codified}"));
        }
    }

    fn resolve_old(&self, v: &Value) -> Value {
        resolve(self.old, v)
    }

    fn resolve_new(&self, v: &Value) -> Value {
        resolve(self.new, v)
    }
}

fn resolve(spec: &Spec, v: &Value) -> Value {
    schema_ref_name(v)
        .and_then(|n| spec.schemas.get(n))
        .cloned()
        .unwrap_or_else(|| v.clone())
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("none".to_owned(), |v| v.to_string())
}

/// The JSON types a schema accepts: its `type` (a name or an array of names), or the union of
/// the `type`s of its `oneOf`/`anyOf` branches (the spec writes a nullable value as
/// `oneOf: [{type: T}, {type: "null"}]`). Empty when unknown (a `$ref` or untyped branch).
fn types(schema: &Value) -> BTreeSet<String> {
    match &schema["type"] {
        Value::String(t) => [t.clone()].into(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => {
            let Some(branches) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) else {
                return BTreeSet::new();
            };
            let mut all = BTreeSet::new();
            for branch in branches {
                let branch_types = types(branch);
                if branch_types.is_empty() {
                    return BTreeSet::new();
                }
                all.extend(branch_types);
            }
            all
        }
    }
}

/// Whether a value of JSON type `t` is accepted by a schema of `types` (integers are numbers).
fn covers(types: &BTreeSet<String>, t: &str) -> bool {
    types.contains(t) || (t == "integer" && types.contains("number"))
}

fn fmt_types(t: &BTreeSet<String>) -> String {
    t.iter().cloned().collect::<Vec<_>>().join("|")
}

fn enum_values(schema: &Value) -> Option<BTreeSet<String>> {
    schema["enum"]
        .as_array()
        .map(|vs| vs.iter().map(Value::to_string).collect())
}

fn props(schema: &Value) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn required(schema: &Value) -> BTreeSet<String> {
    schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// All changes from `old` to `new`, breaking first.
pub fn diff(old: &Spec, new: &Spec) -> Vec<Change> {
    let mut d = Differ {
        old,
        new,
        changes: Vec::new(),
        seen: BTreeSet::new(),
    };
    d.methods();
    d.events();
    d.errors();
    if old.protocol_version != new.protocol_version {
        d.push(
            Severity::Compatible,
            "x-protocol-version",
            format!("{} -> {}", old.protocol_version, new.protocol_version),
        );
    }
    let mut changes = d.changes;
    changes.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.at.cmp(&b.at)));
    changes
}

impl Differ<'_> {
    fn methods(&mut self) {
        let (old, new) = (self.old, self.new);
        for m in &old.methods {
            match new.method(&m.name) {
                None => self.push(Severity::Breaking, &m.name, "method removed"),
                Some(n) => self.method(m, n),
            }
        }
        for m in new.methods.iter().filter(|m| old.method(&m.name).is_none()) {
            self.push(Severity::Compatible, &m.name, "method added");
        }
    }

    /// One method in both versions: params, result, events, scope, tag.
    fn method(&mut self, m: &crate::spec::Method, n: &crate::spec::Method) {
        let params_at = format!("{} params", m.name);
        self.schema(
            &params_at,
            &m.params_schema(),
            &n.params_schema(),
            Flow::Input,
        );
        let (or, nr) = (ref_to(&m.result), ref_to(&n.result));
        self.schema(&format!("{} result", m.name), &or, &nr, Flow::Output);
        for e in n.events.iter().filter(|e| !m.events.contains(e)) {
            self.push(Severity::Breaking, &m.name, format!("may now emit `{e}`"));
        }
        match (m.scope.as_str(), n.scope.as_str()) {
            (old_scope, new_scope) if old_scope == new_scope => {}
            ("", new_scope) => self.push(
                Severity::Compatible,
                &m.name,
                format!(
                    "scope `{new_scope}` declared (server.token and an open gateway hold every scope)"
                ),
            ),
            (old_scope, new_scope) => self.push(
                Severity::Breaking,
                &m.name,
                format!(
                    "scope changed from `{old_scope}` to `{new_scope}`: tokens holding only `{old_scope}` lose access"
                ),
            ),
        }
        for e in m.events.iter().filter(|e| !n.events.contains(e)) {
            self.push(
                Severity::Compatible,
                &m.name,
                format!("no longer emits `{e}`"),
            );
        }
        if m.tag != n.tag {
            self.push(
                Severity::Compatible,
                &m.name,
                format!(
                    "tag changed from `{}` to `{}` (a group, not on the wire: decision method-tags)",
                    m.tag, n.tag
                ),
            );
        }
    }

    fn events(&mut self) {
        let (old, new) = (self.old, self.new);
        for e in &old.events {
            match new.event(&e.name) {
                None => self.push(
                    Severity::Breaking,
                    &format!("event {}", e.name),
                    "event removed",
                ),
                Some(n) => {
                    let (o, nn) = (ref_to(&e.data), ref_to(&n.data));
                    self.schema(&format!("event {} data", e.name), &o, &nn, Flow::Output);
                }
            }
        }
        for e in new.events.iter().filter(|e| old.event(&e.name).is_none()) {
            self.push(
                Severity::Compatible,
                &format!("event {}", e.name),
                "event added",
            );
        }
    }

    fn errors(&mut self) {
        let (old, new) = (self.old, self.new);
        for e in &old.errors {
            match new.errors.iter().find(|n| n.name == e.name) {
                None => self.push(
                    Severity::Breaking,
                    &format!("error {}", e.name),
                    "error code removed",
                ),
                Some(n) if n.code != e.code => self.push(
                    Severity::Breaking,
                    &format!("error {}", e.name),
                    format!("code changed from {} to {}", e.code, n.code),
                ),
                _ => {}
            }
        }
        for e in new
            .errors
            .iter()
            .filter(|n| !old.errors.iter().any(|o| o.name == n.name))
        {
            self.push(
                Severity::Compatible,
                &format!("error {}", e.name),
                format!("error code {} added", e.code),
            );
        }
    }
}

fn ref_to(name: &str) -> Value {
    serde_json::json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// True when any change is breaking.
pub fn is_breaking(changes: &[Change]) -> bool {
    changes.iter().any(|c| c.severity == Severity::Breaking)
}
