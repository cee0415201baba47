//! The index page: finds every run folder (`<test>/<ts>/` holding `results.json` or
//! `report.html`) under the results directory, reads its key figures from
//! `results.json`, and renders one self-contained HTML table, newest first. The
//! `latest` symlinks are skipped (they would list a run twice), and so is any other
//! symlink, so the listing never walks outside the directory.

use std::path::Path;

use crate::report::html::esc;
use crate::results::{read_run, RunResults};

/// At most this many runs are listed (the newest); older ones are still served.
pub const MAX_RUNS: usize = 5000;
/// At most this many files are linked per run.
pub const MAX_FILES_PER_RUN: usize = 64;

/// One run folder and what the index shows of it.
#[derive(Debug, Clone)]
pub struct Run {
    pub test: String,
    /// The folder name, `YYYYmmddTHHMMSS`.
    pub ts: String,
    /// From `results.json`: `None` when there is none, the error when it cannot be read.
    pub results: Option<Result<RunResults, String>>,
    /// Files in the folder, relative to it, `/`-separated, sorted.
    pub files: Vec<String>,
}

/// Subdirectories of `dir` that are real directories (not symlinks), sorted by name.
pub(super) fn subdirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Regular files under `dir` (up to `depth` levels down, symlinks skipped), relative.
fn files_in(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if out.len() >= MAX_FILES_PER_RUN {
            return;
        }
        let (Ok(kind), Ok(name)) = (e.file_type(), e.file_name().into_string()) else {
            continue;
        };
        let rel = format!("{prefix}{name}");
        if kind.is_file() {
            out.push(rel);
        } else if kind.is_dir() && depth > 0 {
            files_in(&e.path(), &format!("{rel}/"), depth - 1, out);
        }
    }
}

/// Every run under `root`, newest first (by folder timestamp, then test name).
pub fn list(root: &Path) -> Vec<Run> {
    let mut runs = Vec::new();
    for test in subdirs(root) {
        for ts in subdirs(&root.join(&test)) {
            let dir = root.join(&test).join(&ts);
            let results_path = dir.join("results.json");
            if !results_path.is_file() && !dir.join(crate::report::REPORT_FILE).is_file() {
                continue;
            }
            let results = results_path
                .is_file()
                .then(|| read_run(&results_path).map_err(|e| e.to_string()));
            let mut files = Vec::new();
            files_in(&dir, "", 2, &mut files);
            runs.push(Run {
                test: test.clone(),
                ts,
                results,
                files,
            });
        }
    }
    runs.sort_by(|a, b| b.ts.cmp(&a.ts).then_with(|| a.test.cmp(&b.test)));
    runs.truncate(MAX_RUNS);
    runs
}

/// `20261123T125557` as `2026-11-23 12:55:57`; anything else unchanged.
pub fn pretty_ts(ts: &str) -> String {
    let b = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() == 15 && b[8] == b'T' && digits(0..8) && digits(9..15) {
        format!(
            "{}-{}-{} {}:{}:{}",
            &ts[0..4],
            &ts[4..6],
            &ts[6..8],
            &ts[9..11],
            &ts[11..13],
            &ts[13..15]
        )
    } else {
        ts.to_string()
    }
}

/// Percent-encodes one URL path segment (everything but unreserved characters).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `a/b/c` with each segment encoded.
fn encode_path(p: &str) -> String {
    p.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

pub(super) fn verdict_colour(verdict: &str) -> &'static str {
    match verdict {
        "valid" => "#2f9e44",
        "invalid" => "#c92a2a",
        "unknown" => "#f08c00",
        _ => "#868e96",
    }
}

/// `1234` ms as `1.2 s`, `75000` as `1m15s`.
pub(super) fn pretty_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

const CSS: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:0 24px 40px;color:#212529;background:#fff}
h1{font-size:22px;margin:18px 0 6px} .muted{color:#868e96}
table{border-collapse:collapse;margin-top:12px} th,td{padding:4px 10px;border-bottom:1px solid #dee2e6;text-align:left;vertical-align:top}
th{background:#f8f9fa} td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600}
.files a{margin-right:8px;font-size:12px}
h2{font-size:17px;margin:20px 0 4px} details.batch{margin:6px 0} details.batch summary{cursor:pointer}
"#;

/// The index page for `runs` and `batches` found under `root`: the batches first, each as
/// one group, then every run, each marked with the batch it belongs to.
pub fn render(root: &Path, runs: &[Run], batches: &[super::batches::Batch]) -> String {
    let batch_of = super::batches::membership(batches);
    let mut rows = String::new();
    for run in runs {
        let batch = batch_of
            .get(&(run.test.clone(), run.ts.clone()))
            .map(|b| format!(r#" data-batch="{}""#, esc(b)))
            .unwrap_or_default();
        let r = run.results.as_ref().and_then(|r| r.as_ref().ok());
        let counts = r.and_then(|r| r.exercised.as_ref()).map(|x| x.counts);
        let count = |n: fn(&faultline_workloads::CountsSnapshot) -> u64| {
            counts
                .as_ref()
                .map_or_else(String::new, |c| n(c).to_string())
        };
        let verdict = match &run.results {
            Some(Ok(r)) => r.verdict.name(),
            Some(Err(_)) => "unreadable",
            None => "?",
        };
        let seed = r.map_or_else(String::new, |r| r.seed.to_string());
        let duration = r.map_or_else(String::new, |r| pretty_ms(r.total_ms));
        let why = match &run.results {
            Some(Err(e)) => format!(r#" title="{}""#, esc(e)),
            _ => String::new(),
        };
        let base = format!(
            "/runs/{}/{}/",
            encode_segment(&run.test),
            encode_segment(&run.ts)
        );
        let report = if run.files.iter().any(|f| f == crate::report::REPORT_FILE) {
            format!(
                r#"<a class="report" href="{}{}">report</a>"#,
                esc(&base),
                crate::report::REPORT_FILE
            )
        } else {
            r#"<span class="muted">no report</span>"#.to_string()
        };
        let files: String = run
            .files
            .iter()
            .map(|f| {
                format!(
                    r#"<a href="{}{}">{}</a>"#,
                    esc(&base),
                    esc(&encode_path(f)),
                    esc(f)
                )
            })
            .collect();
        rows.push_str(&format!(
            concat!(
                r#"<tr class="run" data-test="{test}" data-ts="{ts}" data-verdict="{verdict}"{batch}>"#,
                r#"<td>{test}</td><td>{time}</td>"#,
                r#"<td><span class="verdict" style="background:{colour}"{why}>{verdict}</span></td>"#,
                r#"<td class="num">{invoke}</td><td class="num">{ok}</td><td class="num">{fail}</td><td class="num">{info}</td>"#,
                r#"<td class="num">{seed}</td><td class="num">{duration}</td>"#,
                r#"<td>{report}</td><td class="files">{files}</td></tr>"#,
                "\n"
            ),
            test = esc(&run.test),
            ts = esc(&run.ts),
            batch = batch,
            time = esc(&pretty_ts(&run.ts)),
            verdict = esc(verdict),
            colour = verdict_colour(verdict),
            why = why,
            invoke = count(|c| c.invoke),
            ok = count(|c| c.ok),
            fail = count(|c| c.fail),
            info = count(|c| c.info),
            seed = esc(&seed),
            duration = esc(&duration),
            report = report,
            files = files,
        ));
    }
    let body = if runs.is_empty() {
        r#"<p id="empty" class="muted">No runs yet.</p>"#.to_string()
    } else {
        format!(
            concat!(
                r#"<table id="runs"><thead><tr><th>test</th><th>time</th><th>verdict</th>"#,
                r#"<th>ops</th><th>ok</th><th>fail</th><th>info</th><th>seed</th><th>duration</th>"#,
                r#"<th>report</th><th>files</th></tr></thead><tbody>"#,
                "\n{}</tbody></table>"
            ),
            rows
        )
    };
    format!(
        concat!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
            "<title>faultline runs</title><style>{css}</style></head><body>",
            "<h1>faultline runs</h1><p class=\"muted\">{n} run(s) in {root}, newest first.</p>",
            "{batches}<h2>Runs</h2>{body}</body></html>\n"
        ),
        css = CSS,
        n = runs.len(),
        root = esc(&root.display().to_string()),
        batches = super::batches::render(batches),
        body = body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_durations_read_well() {
        assert_eq!(pretty_ts("20261123T125557"), "2026-11-23 12:55:57");
        assert_eq!(pretty_ts("latest"), "latest");
        assert_eq!(pretty_ms(999), "999 ms");
        assert_eq!(pretty_ms(1500), "1.5 s");
        assert_eq!(pretty_ms(75_000), "1m15s");
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("a b/../c"), "a%20b%2F..%2Fc");
        assert_eq!(encode_path("nodes/n1/server.log"), "nodes/n1/server.log");
    }

    #[test]
    fn symlinked_runs_are_not_listed_twice() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("t/20260101T000000");
        std::fs::create_dir_all(&run).unwrap();
        let mut results = RunResults::failed("t", run.clone(), 3, String::new());
        results.verdict = crate::results::Verdict::Valid;
        results.error = None;
        std::fs::write(
            run.join("results.json"),
            serde_json::to_string(&results).unwrap(),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("t/20260102T000000")).unwrap();
        std::fs::write(dir.path().join("t/20260102T000000/results.json"), "{").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&run, dir.path().join("t/latest")).unwrap();
        let runs = list(dir.path());
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1].files, vec!["results.json".to_string()]);
        let page = render(dir.path(), &runs, &[]);
        assert!(page.contains(r#"data-verdict="valid""#), "{page}");
        // A results file that does not read says so, with the reason on hover.
        assert!(page.contains(r#"data-verdict="unreadable""#), "{page}");
        assert!(page.contains("not a faultline results file"), "{page}");
    }
}
