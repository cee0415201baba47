//! JUnit XML for CI systems: one `<testsuite>` per run or checked history, one
//! `<testcase>` per check (linearizability, fencing), a `<failure>` for `invalid` with the
//! reason, an `<error>` for `unknown` (a limit stopped the check: not a pass) and for a
//! run that failed before it could be judged. Built from the results JSON alone.

use std::fmt::Write;

use serde_json::Value;

use super::summary::{fencing_violations, unknown_limit, Cex, Checks};

/// Escapes text for XML content and attributes; drops control characters XML 1.0 forbids.
pub fn xml_esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// How a test case ended.
pub enum CaseResult {
    Pass,
    Failure {
        message: String,
        detail: String,
    },
    /// `kind` is the `type` attribute (`error`, `unknown`).
    Error {
        kind: &'static str,
        message: String,
    },
}

/// One `<testcase>`.
pub struct Case {
    pub name: String,
    pub time_s: f64,
    pub result: CaseResult,
}

fn ms_to_s(v: Option<&Value>) -> f64 {
    v.and_then(Value::as_u64).unwrap_or(0) as f64 / 1000.0
}

fn linear_case(model: Option<&str>, lin: &Value) -> Case {
    let name = format!("linearizability ({})", model.unwrap_or("?"));
    let time_s = ms_to_s(lin.get("stats").and_then(|s| s.get("elapsed_ms")));
    let result = match lin.get("verdict").and_then(Value::as_str) {
        Some("valid") => CaseResult::Pass,
        Some("invalid") => match Cex::from_json(lin) {
            Some(cex) => {
                let mut detail = String::new();
                let _ = writeln!(
                    detail,
                    "cannot take effect next: {} (op {})",
                    cex.failed, cex.failed.id
                );
                for op in &cex.pending {
                    let _ = writeln!(detail, "nor can pending: {op} (op {})", op.id);
                }
                let _ = writeln!(
                    detail,
                    "possible states after the prefix: {}",
                    cex.states.join(", ")
                );
                let n = cex.prefix.len();
                let _ = writeln!(detail, "longest linearizable prefix: {n} ops, the last:");
                for op in &cex.prefix[n.saturating_sub(10)..] {
                    let _ = writeln!(detail, "  {op} (op {})", op.id);
                }
                CaseResult::Failure {
                    message: cex.headline(),
                    detail,
                }
            }
            None => CaseResult::Failure {
                message: "not linearizable".into(),
                detail: String::new(),
            },
        },
        Some("unknown") => CaseResult::Error {
            kind: "unknown",
            message: format!(
                "unknown: stopped by {}",
                unknown_limit(lin).unwrap_or("a limit")
            ),
        },
        other => CaseResult::Error {
            kind: "unknown",
            message: format!("unexpected verdict {other:?}"),
        },
    };
    Case {
        name,
        time_s,
        result,
    }
}

fn fencing_case(f: &Value) -> Case {
    let result = if f.get("valid").and_then(Value::as_bool) == Some(true) {
        CaseResult::Pass
    } else {
        let total = f
            .get("violations_total")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let vs = fencing_violations(f);
        CaseResult::Failure {
            message: format!("fencing: {total} violation(s)"),
            detail: vs.join("\n"),
        }
    };
    Case {
        name: "fencing".into(),
        time_s: 0.0,
        result,
    }
}

/// The JUnit XML for one result. `suite` names the test suite (the test's name, or the
/// history file); the suite's time is the run's `total_ms` when it has one.
pub fn render(suite: &str, results: &Value) -> String {
    let checks = Checks::from_json(results);
    let mut cases = Vec::new();
    if let Some(lin) = checks.linear {
        cases.push(linear_case(checks.model.as_deref(), lin));
    }
    if let Some(f) = checks.fencing {
        cases.push(fencing_case(f));
    }
    if cases.is_empty() || checks.error.is_some() {
        cases.push(Case {
            name: "run".into(),
            time_s: 0.0,
            result: match &checks.error {
                Some(e) => CaseResult::Error {
                    kind: "error",
                    message: format!("the run failed: {e}"),
                },
                None if checks.verdict == "valid" => CaseResult::Pass,
                None => CaseResult::Error {
                    kind: "error",
                    message: format!("verdict {} without checks", checks.verdict),
                },
            },
        });
    }
    let total_s = results
        .get("total_ms")
        .map(|v| ms_to_s(Some(v)))
        .unwrap_or_else(|| cases.iter().map(|c| c.time_s).sum());
    let mut props: Vec<(&str, String)> = vec![("verdict", checks.verdict.clone())];
    if let Some(seed) = results.get("seed") {
        props.push(("seed", seed.to_string()));
    }
    if let Some(dir) = results.get("run_dir").and_then(Value::as_str) {
        props.push(("run_dir", dir.to_string()));
    }
    if let Some(h) = results.get("history").and_then(Value::as_str) {
        props.push(("history", h.to_string()));
    }
    render_suite(suite, total_s, &props, &cases)
}

/// The JUnit XML for one suite of `cases`, with `props` as its properties.
pub fn render_suite(suite: &str, total_s: f64, props: &[(&str, String)], cases: &[Case]) -> String {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.result, CaseResult::Failure { .. }))
        .count();
    let errors = cases
        .iter()
        .filter(|c| matches!(c.result, CaseResult::Error { .. }))
        .count();
    let suite = xml_esc(suite);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        r#"<testsuites name="faultline" tests="{}" failures="{failures}" errors="{errors}" time="{total_s:.3}">"#,
        cases.len()
    );
    let _ = writeln!(
        out,
        r#"  <testsuite name="{suite}" tests="{}" failures="{failures}" errors="{errors}" skipped="0" time="{total_s:.3}">"#,
        cases.len()
    );
    out.push_str("    <properties>\n");
    for (k, v) in props {
        let _ = writeln!(
            out,
            r#"      <property name="{k}" value="{}"/>"#,
            xml_esc(v)
        );
    }
    out.push_str("    </properties>\n");
    for c in cases {
        let _ = write!(
            out,
            r#"    <testcase classname="{suite}" name="{}" time="{:.3}""#,
            xml_esc(&c.name),
            c.time_s
        );
        match &c.result {
            CaseResult::Pass => out.push_str("/>\n"),
            CaseResult::Failure { message, detail } => {
                let _ = writeln!(
                    out,
                    ">\n      <failure type=\"invalid\" message=\"{}\">{}</failure>\n    </testcase>",
                    xml_esc(message),
                    xml_esc(detail)
                );
            }
            CaseResult::Error { kind, message } => {
                let _ = writeln!(
                    out,
                    ">\n      <error type=\"{kind}\" message=\"{}\"/>\n    </testcase>",
                    xml_esc(message)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_drops_control_characters() {
        assert_eq!(xml_esc("a<b>&\"'\u{1}\n"), "a&lt;b&gt;&amp;&quot;&apos;\n");
    }
}
