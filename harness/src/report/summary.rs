//! Reading a check result back from its JSON: the same code serves a run's
//! `results.json` (checks under `judgement`) and `faultline check --json` output (checks at
//! the top level), so the report and JUnit output can be rebuilt from files alone.

use faultline_checker::Op;
use serde_json::Value;

/// The checks a result holds.
#[derive(Clone, Debug, Default)]
pub struct Checks<'a> {
    /// `valid`, `invalid`, `unknown` or `error`.
    pub verdict: String,
    /// Why the run or check itself failed, for `error`.
    pub error: Option<String>,
    /// The linearizability model's name.
    pub model: Option<String>,
    /// The linearizability result (`CheckResult` as JSON).
    pub linear: Option<&'a Value>,
    /// The fencing result (`FencingReport` as JSON).
    pub fencing: Option<&'a Value>,
}

impl<'a> Checks<'a> {
    pub fn from_json(results: &'a Value) -> Checks<'a> {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let mut c = Checks {
            verdict: s(results.get("verdict")).unwrap_or_else(|| "error".into()),
            error: s(results.get("error")),
            ..Checks::default()
        };
        if let Some(j) = results.get("judgement").filter(|j| j.is_object()) {
            c.model = s(j.get("model"));
            c.linear = j.get("linearizable").filter(|v| v.is_object());
            c.fencing = j.get("fencing").filter(|v| v.is_object());
        } else if results.get("model").and_then(Value::as_str) == Some("fencing") {
            c.fencing = results.get("fencing").filter(|v| v.is_object());
        } else if results.get("stats").is_some() {
            c.model = s(results.get("model"));
            c.linear = Some(results);
        }
        c
    }
}

/// Why a linearizability check said `invalid`: `Counterexample` read back from JSON.
#[derive(Clone, Debug)]
pub struct Cex {
    pub key: Option<String>,
    pub prefix: Vec<Op>,
    pub states: Vec<String>,
    pub failed: Op,
    pub pending: Vec<Op>,
}

impl Cex {
    /// The counterexample of an `invalid` linearizability result; `None` otherwise (or
    /// when the JSON does not have the expected shape).
    pub fn from_json(linear: &Value) -> Option<Cex> {
        if linear.get("verdict")?.as_str()? != "invalid" {
            return None;
        }
        let ops = |name: &str| -> Option<Vec<Op>> {
            serde_json::from_value(linear.get(name).cloned().unwrap_or(Value::Array(vec![]))).ok()
        };
        Some(Cex {
            key: linear
                .get("key")
                .and_then(Value::as_str)
                .map(str::to_string),
            prefix: ops("prefix")?,
            states: serde_json::from_value(linear.get("states")?.clone()).ok()?,
            failed: serde_json::from_value(linear.get("failed")?.clone()).ok()?,
            pending: ops("pending")?,
        })
    }

    /// One line: which key, which op.
    pub fn headline(&self) -> String {
        let key = match &self.key {
            Some(k) => format!("key {k:?} is not linearizable"),
            None => "the history is not linearizable".to_string(),
        };
        format!(
            "{key}: op {} ({}) cannot take effect after the longest linearizable prefix ({} ops); possible states then: {}",
            self.failed.id,
            self.failed,
            self.prefix.len(),
            self.states.join(", ")
        )
    }
}

/// A violation's field in words: an op reference as `op 3 (p1 fenced-write token 2)`,
/// a hold as its acquire and release, a list item by item, anything else as JSON.
fn describe(x: &Value) -> String {
    if let Some(op) = x.get("op").and_then(Value::as_u64) {
        let s = |k: &str| {
            x.get(k)
                .map(|v| v.to_string().trim_matches('"').to_string())
        };
        let mut out = format!(
            "op {op} (p{} {}",
            s("process").unwrap_or_default(),
            s("f").unwrap_or_default()
        );
        if let Some(t) = s("token") {
            out.push_str(&format!(" token {t}"));
        }
        out.push(')');
        return out;
    }
    if let (Some(a), Some(r)) = (x.get("acquire"), x.get("release")) {
        return format!("[acquired by {}, released by {}]", describe(a), describe(r));
    }
    if let Some(items) = x.as_array() {
        return format!(
            "[{}]",
            items.iter().map(describe).collect::<Vec<_>>().join(", ")
        );
    }
    x.to_string()
}

/// The `limit` of an `unknown` result.
pub fn unknown_limit(linear: &Value) -> Option<&str> {
    linear.get("limit").and_then(Value::as_str)
}

/// Short descriptions of a fencing result's violations (`kind` and the lock or resource).
pub fn fencing_violations(fencing: &Value) -> Vec<String> {
    fencing
        .get("violations")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .map(|v| {
                    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("violation");
                    let on = v
                        .get("lock")
                        .or_else(|| v.get("resource"))
                        .and_then(Value::as_str)
                        .unwrap_or("?");
                    let fields: Vec<String> = v
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(k, _)| !matches!(k.as_str(), "kind" | "lock" | "resource"))
                        .map(|(k, x)| format!("{k} {}", describe(x)))
                        .collect();
                    format!("{kind} on {on:?}: {}", fields.join("; "))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn run_results_and_check_output_read_alike() {
        let run = json!({"verdict": "valid", "judgement": {"model": "kv",
            "linearizable": {"verdict": "valid", "stats": {}}, "fencing": {"valid": true}}});
        let c = Checks::from_json(&run);
        assert_eq!(c.verdict, "valid");
        assert_eq!(c.model.as_deref(), Some("kv"));
        assert!(c.linear.is_some() && c.fencing.is_some());

        let check =
            json!({"model": "register", "verdict": "unknown", "limit": "timeout 1s", "stats": {}});
        let c = Checks::from_json(&check);
        assert_eq!(unknown_limit(c.linear.unwrap()), Some("timeout 1s"));
        assert!(c.fencing.is_none());

        let fencing = json!({"model": "fencing", "verdict": "invalid", "fencing": {"valid": false,
            "violations": [{"kind": "duplicate-token", "lock": "l0", "token": 3}]}});
        let c = Checks::from_json(&fencing);
        assert!(c.linear.is_none());
        let v = fencing_violations(c.fencing.unwrap());
        assert!(v[0].starts_with("duplicate-token on \"l0\""), "{v:?}");

        let error = json!({"verdict": "error", "error": "no leader"});
        let c = Checks::from_json(&error);
        assert_eq!(c.error.as_deref(), Some("no leader"));
    }
}
