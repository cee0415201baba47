//! Batches on the index page: the `<test>/batch-<ts>/batch.json` folders that
//! `faultline test --test-count N` writes. Each batch is shown as one group: its verdict
//! (the worst of its runs'), the count of each verdict, why it stopped early when it did,
//! its summary files, and a table of its runs linking each run's report. The runs
//! themselves are also listed in the main table, marked with their batch.

use std::collections::HashMap;
use std::path::Path;

use crate::report::html::esc;
use crate::results::{read_batch, BatchResults, Verdict};

use super::runs::{encode_segment, pretty_ms, pretty_ts, verdict_colour};

/// At most this many batches are listed (the newest).
pub const MAX_BATCHES: usize = 500;

/// Prefix of a batch folder's name.
pub const BATCH_PREFIX: &str = "batch-";

/// One batch folder and what it holds.
#[derive(Debug)]
pub struct Batch {
    pub test: String,
    /// The folder name, `batch-YYYYmmddTHHMMSS[-n]`.
    pub folder: String,
    /// `batch.json`, or why it could not be read.
    pub results: Result<BatchResults, String>,
}

impl Batch {
    /// The folder's timestamp part.
    pub fn ts(&self) -> &str {
        let rest = self
            .folder
            .strip_prefix(BATCH_PREFIX)
            .unwrap_or(&self.folder);
        rest.get(..15).unwrap_or(rest)
    }

    /// `(test, ts)` of each run folder of the batch, as the index names runs.
    fn run_keys(&self) -> Vec<(String, String)> {
        let Ok(b) = &self.results else {
            return Vec::new();
        };
        b.runs.iter().filter_map(|r| run_key(&r.run_dir)).collect()
    }
}

/// A run folder `.../<test>/<ts>` as `(test, ts)`.
fn run_key(dir: &Path) -> Option<(String, String)> {
    let ts = dir.file_name()?.to_str()?.to_string();
    let test = dir.parent()?.file_name()?.to_str()?.to_string();
    Some((test, ts))
}

/// Every batch under `root`, newest first.
pub fn list(root: &Path) -> Vec<Batch> {
    let mut batches = Vec::new();
    for test in super::runs::subdirs(root) {
        for folder in super::runs::subdirs(&root.join(&test)) {
            if !folder.starts_with(BATCH_PREFIX) {
                continue;
            }
            let path = root.join(&test).join(&folder).join("batch.json");
            if !path.is_file() {
                continue;
            }
            let results = read_batch(&path).map_err(|e| e.to_string());
            batches.push(Batch {
                test: test.clone(),
                folder,
                results,
            });
        }
    }
    batches.sort_by(|a, b| b.folder.cmp(&a.folder).then_with(|| a.test.cmp(&b.test)));
    batches.truncate(MAX_BATCHES);
    batches
}

/// For each run folder `(test, ts)` that belongs to a batch, that batch's folder name.
pub fn membership(batches: &[Batch]) -> HashMap<(String, String), String> {
    let mut of = HashMap::new();
    for b in batches {
        for key in b.run_keys() {
            of.insert(key, b.folder.clone());
        }
    }
    of
}

/// The batches section of the index page (empty when there are none).
pub fn render(batches: &[Batch]) -> String {
    if batches.is_empty() {
        return String::new();
    }
    let mut out = format!(
        r#"<h2>Batches</h2><p class="muted">{} batch(es) of repeated runs (<code>--test-count</code>), newest first.</p>"#,
        batches.len()
    );
    out.push('\n');
    for b in batches {
        out.push_str(&render_one(b));
    }
    out
}

fn render_one(b: &Batch) -> String {
    let base = format!(
        "/runs/{}/{}/",
        encode_segment(&b.test),
        encode_segment(&b.folder)
    );
    let links: String = ["batch.txt", "batch.json", "batch.xml"]
        .iter()
        .map(|f| format!(r#"<a href="{}{f}">{f}</a> "#, esc(&base)))
        .collect();
    let results = match &b.results {
        Ok(r) => r,
        Err(e) => {
            return format!(
                concat!(
                    r#"<details class="batch" data-test="{test}" data-batch="{folder}" data-verdict="unreadable">"#,
                    r#"<summary>{test} &middot; {time} &middot; "#,
                    r#"<span class="verdict" style="background:{colour}">unreadable</span> {why}</summary>"#,
                    r#"<p class="files">{links}</p></details>"#,
                    "\n"
                ),
                test = esc(&b.test),
                folder = esc(&b.folder),
                time = esc(&pretty_ts(b.ts())),
                colour = verdict_colour("unreadable"),
                why = esc(e),
                links = links,
            );
        }
    };
    let verdict = results.verdict().name();
    let mut rows = String::new();
    for run in &results.runs {
        let report = match run_key(&run.run_dir) {
            Some((test, ts)) => format!(
                r#"<a href="/runs/{}/{}/{}">{}</a>"#,
                esc(&encode_segment(&test)),
                esc(&encode_segment(&ts)),
                crate::report::REPORT_FILE,
                esc(&pretty_ts(&ts))
            ),
            None => esc(&run.run_dir.display().to_string()),
        };
        let mut note = String::new();
        if !run.faults_skipped.is_empty() {
            note.push_str(&format!("skipped: {}", run.faults_skipped.join(", ")));
        }
        if let Some(e) = &run.error {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(e);
        }
        rows.push_str(&format!(
            concat!(
                r#"<tr class="batch-run" data-seed="{seed}" data-verdict="{verdict}">"#,
                r#"<td class="num">{seed}</td>"#,
                r#"<td><span class="verdict" style="background:{colour}">{verdict}</span></td>"#,
                r#"<td class="num">{ops}</td><td class="num">{faults}</td>"#,
                r#"<td class="num">{check}</td><td class="num">{total}</td><td>{report}</td><td>{note}</td></tr>"#,
                "\n"
            ),
            seed = run.seed,
            verdict = esc(run.verdict.name()),
            colour = verdict_colour(run.verdict.name()),
            ops = run.ops,
            faults = run.faults,
            check = esc(&pretty_ms(run.check_ms)),
            total = esc(&pretty_ms(run.total_ms)),
            report = report,
            note = esc(&note),
        ));
    }
    let stopped = results
        .stopped
        .as_ref()
        .map(|s| format!(" &middot; stopped: {}", esc(s)))
        .unwrap_or_default();
    format!(
        concat!(
            r#"<details class="batch" data-test="{test}" data-batch="{folder}" data-verdict="{verdict}"{open}>"#,
            r#"<summary>{test} &middot; {time} &middot; "#,
            r#"<span class="verdict" style="background:{colour}">{verdict}</span> "#,
            r#"{n} of {requested} run(s), seeds {first}&ndash;: {valid} valid, {invalid} invalid, "#,
            r#"{unknown} unknown, {error} error{stopped}</summary>"#,
            r#"<p class="files">{links}</p>"#,
            r#"<table><thead><tr><th>seed</th><th>verdict</th><th>ops</th><th>faults</th>"#,
            r#"<th>check</th><th>duration</th><th>run</th><th>note</th></tr></thead><tbody>"#,
            "\n{rows}</tbody></table></details>\n"
        ),
        test = esc(&b.test),
        folder = esc(&b.folder),
        verdict = esc(verdict),
        // A batch that did not pass opens by itself.
        open = if results.verdict() == Verdict::Valid {
            ""
        } else {
            " open"
        },
        time = esc(&pretty_ts(b.ts())),
        colour = verdict_colour(verdict),
        n = results.runs.len(),
        requested = results.requested,
        first = results.first_seed,
        valid = results.count(Verdict::Valid),
        invalid = results.count(Verdict::Invalid),
        unknown = results.count(Verdict::Unknown),
        error = results.count(Verdict::Error),
        stopped = stopped,
        links = links,
        rows = rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{BatchRun, RunResults, SCHEMA_VERSION};

    fn batch_run(dir: &Path, seed: u64, verdict: Verdict) -> BatchRun {
        let mut r = RunResults::failed("t", dir.to_path_buf(), seed, String::new());
        r.verdict = verdict;
        r.error = None;
        BatchRun::of(&r)
    }

    #[test]
    fn a_batch_is_listed_as_one_group_and_marks_its_runs() {
        let root = tempfile::tempdir().unwrap();
        let runs = [
            (root.path().join("t/20260101T000001"), 7, Verdict::Valid),
            (root.path().join("t/20260101T000002"), 8, Verdict::Invalid),
        ];
        let batch = BatchResults {
            schema_version: SCHEMA_VERSION,
            test: "t".into(),
            first_seed: 7,
            requested: 5,
            keep_going: false,
            stopped: Some("seed 8 was invalid".into()),
            runs: runs.iter().map(|(d, s, v)| batch_run(d, *s, *v)).collect(),
            total_ms: 1000,
        };
        let folder = root.path().join("t/batch-20260101T000000");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("batch.json"),
            serde_json::to_vec(&batch).unwrap(),
        )
        .unwrap();
        // A batch folder whose summary does not read is still listed, saying why.
        let broken = root.path().join("t/batch-20250101T000000");
        std::fs::create_dir_all(&broken).unwrap();
        std::fs::write(broken.join("batch.json"), "{").unwrap();

        let batches = list(root.path());
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].folder, "batch-20260101T000000");
        assert_eq!(batches[0].ts(), "20260101T000000");
        let of = membership(&batches);
        assert_eq!(
            of.get(&("t".to_string(), "20260101T000002".to_string())),
            Some(&"batch-20260101T000000".to_string())
        );
        let html = render(&batches);
        assert!(
            html.contains(r#"data-batch="batch-20260101T000000" data-verdict="invalid" open"#),
            "{html}"
        );
        assert!(html.contains("2 of 5 run(s)"), "{html}");
        assert!(html.contains("1 valid, 1 invalid"), "{html}");
        assert!(html.contains("stopped: seed 8 was invalid"), "{html}");
        assert!(
            html.contains("/runs/t/20260101T000002/report.html"),
            "{html}"
        );
        assert!(
            html.contains("/runs/t/batch-20260101T000000/batch.txt"),
            "{html}"
        );
        assert!(html.contains(r#"data-verdict="unreadable""#), "{html}");
    }
}
