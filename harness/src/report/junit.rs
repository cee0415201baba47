//! JUnit XML for CI systems: one `<testsuite>` per run or checked history, one
//! `<testcase>` per check (linearizability, fencing), a `<failure>` for `invalid` with the
//! reason, an `<error>` for `unknown` (a limit stopped the check: not a pass) and for a
//! run that failed before it could be judged. Built from the results JSON alone.

use std::fmt::Write;

use faultline_checker::fencing::FencingReport;
use faultline_checker::{CheckResult, Verdict};

use super::summary::{fencing_violations, headline};
use crate::results::{Results, Verdict as ResultVerdict};

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
    /// A pass with a note for the reader (a detection rate), written as `<system-out>`.
    PassNoted {
        note: String,
    },
    Failure {
        message: String,
        detail: String,
    },
    /// `kind` is the `type` attribute (`error`, `unknown`).
    Error {
        kind: &'static str,
        message: String,
    },
    /// Not evidence either way (a fault that could not be injected).
    Skipped {
        message: String,
    },
}

/// One `<testcase>`.
pub struct Case {
    pub name: String,
    pub time_s: f64,
    pub result: CaseResult,
}

fn ms_to_s(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn linear_case(model: Option<&str>, lin: &CheckResult) -> Case {
    let name = format!("linearizability ({})", model.unwrap_or("?"));
    let time_s = ms_to_s(lin.stats.elapsed_ms);
    let result = match &lin.verdict {
        Verdict::Valid => CaseResult::Pass,
        Verdict::Invalid(cex) => {
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
                message: headline(cex),
                detail,
            }
        }
        Verdict::Unknown { limit } => CaseResult::Error {
            kind: "unknown",
            message: format!("unknown: stopped by {limit}"),
        },
    };
    Case {
        name,
        time_s,
        result,
    }
}

fn fencing_case(f: &FencingReport) -> Case {
    let result = if f.valid {
        CaseResult::Pass
    } else {
        CaseResult::Failure {
            message: format!("fencing: {} violation(s)", f.violations_total),
            detail: fencing_violations(f).join("\n"),
        }
    };
    Case {
        name: "fencing".into(),
        time_s: 0.0,
        result,
    }
}

/// One `<testsuite>`.
pub struct Suite {
    pub name: String,
    pub time_s: f64,
    pub props: Vec<(&'static str, String)>,
    pub cases: Vec<Case>,
}

/// The suite of one result: a case per check. `name` is the test's name, or the history
/// file; the suite's time is the run's `total_ms` when it has one.
pub fn suite(name: &str, results: &Results) -> Suite {
    let mut cases = Vec::new();
    if let Some(lin) = results.linearizable() {
        cases.push(linear_case(results.model().as_deref(), lin));
    }
    if let Some(f) = results.fencing() {
        cases.push(fencing_case(f));
    }
    let verdict = results.verdict();
    if cases.is_empty() || results.error().is_some() {
        cases.push(Case {
            name: "run".into(),
            time_s: 0.0,
            result: match results.error() {
                Some(e) => CaseResult::Error {
                    kind: "error",
                    message: format!("the run failed: {e}"),
                },
                None if verdict == ResultVerdict::Valid => CaseResult::Pass,
                None => CaseResult::Error {
                    kind: "error",
                    message: format!("verdict {} without checks", verdict.name()),
                },
            },
        });
    }
    let mut props = vec![("verdict", verdict.name().to_string())];
    let time_s = match results {
        Results::Run(r) => {
            props.push(("seed", r.seed.to_string()));
            if !r.run_dir.as_os_str().is_empty() {
                props.push(("run_dir", r.run_dir.display().to_string()));
            }
            ms_to_s(r.total_ms)
        }
        Results::Check(c) => {
            props.push(("history", c.history.display().to_string()));
            if let Some(reading) = &c.reading {
                props.push(("reading", reading.clone()));
            }
            cases.iter().map(|c| c.time_s).sum()
        }
    };
    Suite {
        name: name.to_string(),
        time_s,
        props,
        cases,
    }
}

/// The JUnit XML for one result.
pub fn render(name: &str, results: &Results) -> String {
    render_suites(&[suite(name, results)])
}

/// The JUnit XML for several results (histories checked together), one suite each.
pub fn render_many(results: &[(String, Results)]) -> String {
    let suites: Vec<Suite> = results.iter().map(|(n, r)| suite(n, r)).collect();
    render_suites(&suites)
}

/// The JUnit XML for one suite of `cases`, with `props` as its properties.
pub fn render_suite(
    name: &str,
    time_s: f64,
    props: &[(&'static str, String)],
    cases: Vec<Case>,
) -> String {
    render_suites(&[Suite {
        name: name.to_string(),
        time_s,
        props: props.to_vec(),
        cases,
    }])
}

fn count(cases: &[Case], f: impl Fn(&CaseResult) -> bool) -> usize {
    cases.iter().filter(|c| f(&c.result)).count()
}

/// The JUnit XML document for `suites`.
pub fn render_suites(suites: &[Suite]) -> String {
    let all: Vec<&Case> = suites.iter().flat_map(|s| &s.cases).collect();
    let failures = all
        .iter()
        .filter(|c| matches!(c.result, CaseResult::Failure { .. }))
        .count();
    let errors = all
        .iter()
        .filter(|c| matches!(c.result, CaseResult::Error { .. }))
        .count();
    let total_s: f64 = suites.iter().map(|s| s.time_s).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        r#"<testsuites name="faultline" tests="{}" failures="{failures}" errors="{errors}" time="{total_s:.3}">"#,
        all.len()
    );
    for s in suites {
        write_suite(&mut out, s);
    }
    out.push_str("</testsuites>\n");
    out
}

fn write_suite(out: &mut String, s: &Suite) {
    let failures = count(&s.cases, |r| matches!(r, CaseResult::Failure { .. }));
    let errors = count(&s.cases, |r| matches!(r, CaseResult::Error { .. }));
    let skipped = count(&s.cases, |r| matches!(r, CaseResult::Skipped { .. }));
    let name = xml_esc(&s.name);
    let _ = writeln!(
        out,
        r#"  <testsuite name="{name}" tests="{}" failures="{failures}" errors="{errors}" skipped="{skipped}" time="{:.3}">"#,
        s.cases.len(),
        s.time_s
    );
    out.push_str("    <properties>\n");
    for (k, v) in &s.props {
        let _ = writeln!(
            out,
            r#"      <property name="{k}" value="{}"/>"#,
            xml_esc(v)
        );
    }
    out.push_str("    </properties>\n");
    for c in &s.cases {
        let _ = write!(
            out,
            r#"    <testcase classname="{name}" name="{}" time="{:.3}""#,
            xml_esc(&c.name),
            c.time_s
        );
        match &c.result {
            CaseResult::Pass => out.push_str("/>\n"),
            CaseResult::PassNoted { note } => {
                let _ = writeln!(
                    out,
                    ">\n      <system-out>{}</system-out>\n    </testcase>",
                    xml_esc(note)
                );
            }
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
            CaseResult::Skipped { message } => {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml_esc(message)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_drops_control_characters() {
        assert_eq!(xml_esc("a<b>&\"'\u{1}\n"), "a&lt;b&gt;&amp;&quot;&apos;\n");
    }
}
