//! Which transcript requests each `x-http` endpoint, and with which statuses. Every route of
//! `x-http.endpoints` is listed (read from the spec, so a route added there shows up as a gap
//! until a transcript covers it or `coverage-exceptions.json` says why it cannot);
//! `authExceptions` and `protectedExtras` hold routes not built yet and are not required.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::coverage_exceptions::Exceptions;
use crate::spec::Spec;
use crate::transcript::{StepKind, Transcript};

/// The `x-http` list whose routes must be covered.
const REQUIRED_LIST: &str = "endpoints";

/// One endpoint and who covers it.
#[derive(Debug, Clone)]
pub struct RouteCoverage {
    pub method: String,
    /// As declared (`/webhooks/:name`).
    pub path: String,
    /// Transcript name -> the statuses its steps expect from this route.
    pub covered_by: BTreeMap<String, BTreeSet<u16>>,
}

/// Coverage of the HTTP surface, routes in the spec's order.
#[derive(Debug, Clone, Default)]
pub struct HttpCoverage {
    pub routes: Vec<RouteCoverage>,
}

impl HttpCoverage {
    pub fn compute(spec: &Spec, transcripts: &[Transcript]) -> Self {
        let mut routes: Vec<RouteCoverage> = spec
            .http
            .routes
            .iter()
            .filter(|r| r.list == REQUIRED_LIST)
            .map(|r| RouteCoverage {
                method: r.method.clone(),
                path: r.path.clone(),
                covered_by: BTreeMap::new(),
            })
            .collect();
        for t in transcripts {
            for step in &t.steps {
                let StepKind::Http(http) = &step.kind else {
                    continue;
                };
                let Some(route) = spec.http.find(&http.request.method, &http.request.path) else {
                    continue;
                };
                if let Some(rc) = routes
                    .iter_mut()
                    .find(|rc| rc.method == route.method && rc.path == route.path)
                {
                    rc.covered_by
                        .entry(t.name().to_owned())
                        .or_default()
                        .insert(http.status);
                }
            }
        }
        Self { routes }
    }

    /// Uncovered endpoints that are not excepted, and exceptions that are no longer needed or
    /// name no endpoint.
    pub fn gaps(&self, exceptions: &Exceptions) -> Vec<String> {
        let mut gaps = Vec::new();
        for rc in &self.routes {
            let excepted = exceptions.route_reason(&rc.method, &rc.path).is_some();
            if rc.covered_by.is_empty() && !excepted {
                gaps.push(format!(
                    "route `{} {}`: no transcript requests it",
                    rc.method, rc.path
                ));
            }
            if !rc.covered_by.is_empty() && excepted {
                gaps.push(format!(
                    "route `{} {}`: excepted as not coverable, but a transcript requests it; drop the exception",
                    rc.method, rc.path
                ));
            }
        }
        for e in &exceptions.routes {
            let known = self
                .routes
                .iter()
                .any(|rc| rc.method.eq_ignore_ascii_case(&e.method) && rc.path == e.path);
            if !known {
                gaps.push(format!(
                    "route exception `{} {}`: x-http.endpoints declares no such route; drop the exception",
                    e.method, e.path
                ));
            }
        }
        gaps
    }

    /// The `## HTTP routes` section of COVERAGE.md.
    pub fn write_markdown(&self, out: &mut String, exceptions: &Exceptions) {
        out.push_str("\n## HTTP routes\n\n");
        out.push_str("Every route of the spec's `x-http.endpoints`, with the transcripts that request it and the statuses they expect.\n\n");
        out.push_str("| method | path | requested in (statuses) |\n| --- | --- | --- |\n");
        for rc in &self.routes {
            let cell = if rc.covered_by.is_empty() {
                match exceptions.route_reason(&rc.method, &rc.path) {
                    Some(reason) => format!("not coverable: {reason}"),
                    None => "**none**".to_owned(),
                }
            } else {
                rc.covered_by
                    .iter()
                    .map(|(name, statuses)| {
                        let statuses: Vec<String> = statuses.iter().map(u16::to_string).collect();
                        format!("`{name}` ({})", statuses.join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(out, "| {} | `{}` | {cell} |", rc.method, rc.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage_exceptions::RouteException;
    use std::path::Path;

    #[test]
    fn endpoints_are_listed_with_their_transcripts_and_statuses() {
        let spec = Spec::load().unwrap();
        let t = Transcript::parse(
            Path::new("t.jsonl"),
            concat!(
                r#"{"type":"header","name":"h"}"#,
                "\n",
                r#"{"type":"http","request":{"method":"GET","path":"/health"},"response":{"status":200}}"#,
                "\n",
                r#"{"type":"http","request":{"method":"GET","path":"/health","headers":{}},"response":{"status":401}}"#,
                "\n",
                r#"{"type":"http","undeclared":true,"request":{"method":"GET","path":"/nope"},"response":{"status":404}}"#,
                "\n",
            ),
        )
        .unwrap();
        let c = HttpCoverage::compute(&spec, &[t]);
        let health = c.routes.iter().find(|r| r.path == "/health").unwrap();
        assert_eq!(
            health.covered_by["h"].iter().copied().collect::<Vec<_>>(),
            [200, 401]
        );
        let gaps = c.gaps(&Exceptions::default());
        assert!(
            gaps.iter().any(|g| g.contains("`GET /metrics`")),
            "{gaps:?}"
        );
        assert!(
            !gaps.iter().any(|g| g.contains("`GET /health`")),
            "{gaps:?}"
        );
        let exceptions = Exceptions {
            codes: Vec::new(),
            routes: vec![
                RouteException {
                    method: "GET".into(),
                    path: "/metrics".into(),
                    reason: "r".into(),
                },
                RouteException {
                    method: "GET".into(),
                    path: "/health".into(),
                    reason: "r".into(),
                },
                RouteException {
                    method: "PUT".into(),
                    path: "/gone".into(),
                    reason: "r".into(),
                },
            ],
        };
        let gaps = c.gaps(&exceptions);
        assert!(
            !gaps.iter().any(|g| g.contains("`GET /metrics`: no")),
            "{gaps:?}"
        );
        assert!(
            gaps.iter().any(|g| g.contains("`GET /health`: excepted")),
            "{gaps:?}"
        );
        assert!(gaps.iter().any(|g| g.contains("`PUT /gone`")), "{gaps:?}");
        let mut md = String::new();
        c.write_markdown(&mut md, &exceptions);
        assert!(md.contains("| GET | `/health` | `h` (200, 401) |"), "{md}");
        assert!(
            md.contains("| GET | `/metrics` | not coverable: r |"),
            "{md}"
        );
    }
}
