//! `report.html` as one string: the verdict and config at the top, the checks, op
//! statistics, the timeline, latency and throughput plots, and for an `invalid` verdict
//! the counterexample with a zoomed timeline. Self-contained: inline CSS, inline SVG and a
//! few lines of inline script, nothing fetched.
//!
//! Drawing is bounded: the timeline shows at most [`MAX_DRAWN`] ops (a window around the
//! counterexample, or the first ones) and the scatter at most [`MAX_DRAWN`] points; the
//! page says when it shows less than everything.

use std::collections::HashMap;
use std::fmt::Write;

use faultline_checker::{stats, Counterexample, History, Op};
use serde_json::Value;

use super::html::esc;
use super::ops::Timeline;
use super::summary::{counterexample as cex_of, fencing_violations, headline, unknown_limit};
use super::svg::{self, Mark, XAxis};
use crate::results::Results;

/// Most ops drawn in one timeline, and most points in the scatter.
pub const MAX_DRAWN: usize = 10_000;
/// Most ops drawn in the counterexample's zoomed timeline.
const MAX_ZOOMED: usize = 300;
/// Prefix ops listed in the counterexample table (the last ones).
const SHOWN_PREFIX: usize = 30;

/// What a report is made from.
#[derive(Clone, Debug)]
pub struct ReportInput {
    /// `raftkv-register 20261123T112233`, or the history file for `check`.
    pub title: String,
    /// The run's `config.json`, or what `check` was asked (model, format, ...).
    pub config: Value,
    /// The run's `results.json`, or what `check` concluded.
    pub results: Results,
    /// The history, or why it could not be read.
    pub history: Result<History, String>,
    /// Files beside the report to link to (paths relative to it).
    pub files: Vec<String>,
}

const CSS: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;margin:0 24px 40px;color:#212529;background:#fff}
h1{font-size:22px;margin:18px 0 6px} h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #dee2e6;padding-bottom:4px}
.verdict{display:inline-block;padding:4px 14px;border-radius:4px;color:#fff;font-weight:700;font-size:18px;text-transform:uppercase;letter-spacing:.05em}
.v-valid{background:#2f9e44}.v-invalid{background:#c92a2a}.v-unknown{background:#f08c00}.v-error{background:#495057}
.reason{margin:8px 0;font-size:15px}
table{border-collapse:collapse;margin:6px 0} td,th{border:1px solid #dee2e6;padding:2px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f5} td.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#f8f9fa;padding:8px;overflow:auto;max-height:320px}
.note{background:#fff9db;border-left:4px solid #f08c00;padding:4px 10px;margin:6px 0}
.kvs{display:flex;flex-wrap:wrap;gap:4px 16px}.kv b{font-weight:600;color:#495057}
.legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin-right:4px;border-radius:2px}
svg.plot{display:block;max-width:100%;height:auto;margin:4px 0}
svg .tick{font-size:11px;fill:#495057} svg .oplabel{font-size:11px;fill:#000;pointer-events:none}
tr.failed td{background:#ffe3e3} tr.pending td{background:#f3f0ff}
#hover{position:fixed;right:12px;bottom:12px;background:#212529;color:#fff;padding:4px 8px;border-radius:3px;font-size:12px;display:none}
"#;

/// Marks every op for the browser test and shows op details on hover. Sets `data-ok`
/// on `<body>` last, so its presence proves the script ran to the end.
const SCRIPT: &str = r#"
(function(){
  var hover=document.getElementById('hover');
  document.addEventListener('mouseover',function(e){
    var t=e.target;
    if(t&&t.classList&&t.classList.contains('op')){
      var title=t.querySelector('title');
      hover.textContent=title?title.textContent:'';hover.style.display='block';
    }else{hover.style.display='none';}
  });
  var plots=document.querySelectorAll('svg.plot').length;
  var ops=document.querySelectorAll('svg.timeline rect.op').length;
  document.body.setAttribute('data-plots',String(plots));
  document.body.setAttribute('data-ops',String(ops));
  document.body.setAttribute('data-ok','1');
})();
"#;

/// The whole page.
pub fn render(input: &ReportInput) -> String {
    let verdict = input.results.verdict().name();
    let mut out = String::with_capacity(1 << 20);
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{verdict} — {}</title><style>{CSS}</style></head><body data-verdict="{verdict}">"#,
        esc(&input.title),
    );
    header(&mut out, input);
    config(&mut out, input);
    let timeline = match &input.history {
        Ok(h) => Timeline::from_history(h).map_err(|e| e.to_string()),
        Err(e) => Err(e.clone()),
    };
    let cex = input.results.linearizable().and_then(cex_of);
    match &timeline {
        Ok(tl) => {
            if let Some(cex) = &cex {
                counterexample(&mut out, tl, cex);
            }
            if let Ok(h) = &input.history {
                op_stats(&mut out, h);
            }
            plots(&mut out, tl, cex);
        }
        Err(e) => {
            let _ = write!(
                out,
                r#"<h2>History</h2><p class="note">The history could not be read: {}</p>"#,
                esc(e)
            );
            if let Some(cex) = &cex {
                let _ = write!(
                    out,
                    r#"<section id="counterexample"><h2>Counterexample</h2><p>{}</p></section>"#,
                    esc(&headline(cex))
                );
            }
        }
    }
    let _ = write!(
        out,
        r#"<div id="hover"></div><script>{SCRIPT}</script></body></html>"#
    );
    out
}

fn header(out: &mut String, input: &ReportInput) {
    let results = &input.results;
    let v = results.verdict().name();
    let _ = write!(
        out,
        r#"<header><h1>{}</h1><span id="verdict" class="verdict v-{v}">{v}</span>"#,
        esc(&input.title)
    );
    let mut reasons: Vec<String> = Vec::new();
    if let Some(e) = results.error() {
        reasons.push(format!("the run failed: {e}"));
    }
    if let Some(lin) = results.linearizable() {
        let mut r = format!(
            "linearizable ({}): {}",
            results.model().as_deref().unwrap_or("?"),
            lin.verdict.name()
        );
        if let Some(l) = unknown_limit(lin) {
            r.push_str(&format!(", stopped by {l}"));
        }
        let s = &lin.stats;
        r.push_str(&format!(
            " — searched {} of {} ops in {} partitions, {} states, {} ms",
            s.ops_searched, s.ops, s.partitions, s.states_explored, s.elapsed_ms
        ));
        reasons.push(r);
    }
    if let Results::Check(c) = results {
        if let Some(reading) = &c.reading {
            reasons.push(format!("read as: {reading}"));
        }
    }
    if let Some(f) = results.fencing() {
        reasons.push(format!(
            "fencing: {} — {} tokens granted, {} writes accepted, {} rejected as stale{}",
            if f.valid { "valid" } else { "invalid" },
            f.acquires_ok,
            f.writes_accepted,
            f.writes_rejected,
            if f.valid {
                String::new()
            } else {
                format!(", {} violation(s)", f.violations_total)
            }
        ));
    }
    for r in &reasons {
        let _ = write!(out, r#"<p class="reason">{}</p>"#, esc(r));
    }
    if let Some(x) = results.exercised() {
        let c = &x.counts;
        let _ = write!(
            out,
            r#"<p>ops invoked {}: ok {}, fail {}, info {}; nemesis events {}{}</p>"#,
            c.invoke,
            c.ok,
            c.fail,
            c.info,
            c.nemesis,
            if x.cancelled {
                " — the run was cancelled"
            } else {
                ""
            }
        );
        if let Some(o) = &x.online {
            let _ = write!(out, r#"<p id="online">{}</p>"#, esc(&online_line(o)));
        }
        for (kind, why) in &x.faults_skipped {
            let _ = write!(
                out,
                r#"<p class="note">The {} fault was skipped: {}. This run is no evidence about it.</p>"#,
                esc(kind),
                esc(why)
            );
        }
    }
    if let Some(f) = results.fencing() {
        let vs = fencing_violations(f);
        if !vs.is_empty() {
            out.push_str(r#"<section id="fencing"><h2>Fencing violations</h2><ul>"#);
            for v in vs {
                let _ = write!(out, r#"<li class="mono">{}</li>"#, esc(&v));
            }
            out.push_str("</ul></section>");
        }
    }
    if !input.files.is_empty() {
        out.push_str("<p>Files: ");
        for (i, f) in input.files.iter().enumerate() {
            let _ = write!(
                out,
                r#"{}<a href="{}">{}</a>"#,
                if i > 0 { " · " } else { "" },
                esc(f),
                esc(f)
            );
        }
        out.push_str("</p>");
    }
    out.push_str("</header>");
}

fn config(out: &mut String, input: &ReportInput) {
    out.push_str(r#"<section id="config"><h2>Configuration</h2><div class="kvs">"#);
    if let Some(obj) = input.config.as_object() {
        for (k, v) in obj {
            let text = match v {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            let _ = write!(
                out,
                r#"<span class="kv"><b>{}</b> <code>{}</code></span>"#,
                esc(k),
                esc(&text)
            );
        }
    }
    out.push_str("</div></section>");
}

fn op_stats(out: &mut String, history: &History) {
    let Ok(s) = stats::compute(history) else {
        return;
    };
    out.push_str(
        r#"<section id="stats"><h2>Operations</h2><table><tr><th>f</th><th>outcome</th><th>count</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th><th>ops/s</th></tr>"#,
    );
    let ms = |ns: u64| format!("{:.2}", ns as f64 / 1e6);
    for g in &s.groups {
        let (p50, p90, p99, max) = match &g.latency {
            Some(l) => (ms(l.p50_ns), ms(l.p90_ns), ms(l.p99_ns), ms(l.max_ns)),
            None => Default::default(),
        };
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td><span class="sw" style="background:{}"></span>{}</td><td class="n">{}</td><td class="n">{p50}</td><td class="n">{p90}</td><td class="n">{p99}</td><td class="n">{max}</td><td class="n">{}</td></tr>"#,
            esc(&g.f),
            svg::outcome_colour(g.outcome),
            svg::outcome_name(g.outcome),
            g.count,
            g.throughput_per_s
                .map_or(String::new(), |t| format!("{t:.1}"))
        );
    }
    out.push_str("</table></section>");
}

fn legend(out: &mut String, shading: bool) {
    out.push_str(r#"<p class="legend">"#);
    for o in [
        faultline_checker::Outcome::Ok,
        faultline_checker::Outcome::Fail,
        faultline_checker::Outcome::Info,
    ] {
        let _ = write!(
            out,
            r#"<span><i class="sw" style="background:{}"></i>{}</span>"#,
            svg::outcome_colour(o),
            svg::outcome_name(o)
        );
    }
    if shading {
        out.push_str(r#"<span><i class="sw" style="background:#868e96;opacity:.35"></i>nemesis fault in effect</span>"#);
    }
    out.push_str("</p>");
}

/// The bars of the counterexample's ops, and the time window around them.
struct CexView {
    marks: HashMap<usize, Mark>,
    failed: Option<usize>,
    window: Option<(f64, f64)>,
}

fn cex_view(tl: &Timeline, cex: &Counterexample) -> CexView {
    let mut marks = HashMap::new();
    for op in &cex.prefix {
        if let Some(i) = tl.find(op) {
            marks.insert(i, Mark::Prefix);
        }
    }
    for op in &cex.pending {
        if let Some(i) = tl.find(op) {
            marks.insert(i, Mark::Pending);
        }
    }
    let failed = tl.find(&cex.failed);
    if let Some(i) = failed {
        marks.insert(i, Mark::Failed);
    }
    // From the last few prefix ops to the end of the ops that cannot follow them.
    let focus: Vec<usize> = cex
        .prefix
        .iter()
        .rev()
        .take(3)
        .chain(cex.pending.iter())
        .chain(std::iter::once(&cex.failed))
        .filter_map(|op| tl.find(op))
        .collect();
    let window = if focus.is_empty() {
        None
    } else {
        let a = focus
            .iter()
            .map(|&i| tl.bars[i].start)
            .fold(f64::MAX, f64::min);
        let b = focus
            .iter()
            .map(|&i| {
                let bar = &tl.bars[i];
                if bar.completed {
                    bar.end
                } else {
                    bar.start
                }
            })
            .fold(f64::MIN, f64::max);
        let pad = ((b - a) * 0.1).max(if tl.timed { 0.001 } else { 1.0 });
        Some((a - pad, b + pad))
    };
    CexView {
        marks,
        failed,
        window,
    }
}

fn op_row(out: &mut String, op: &Op, class: &str, tl: &Timeline) {
    let t = |ns: Option<u64>, idx: Option<usize>| match (tl.timed, ns, idx) {
        (true, Some(ns), _) => format!("{:.6} s", ns as f64 / 1e9),
        (_, _, Some(i)) => format!("event {i}"),
        _ => "never".to_string(),
    };
    let _ = write!(
        out,
        r#"<tr class="{class}"><td class="n">{}</td><td>p{}</td><td class="mono">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
        op.id,
        op.process,
        esc(&op.to_string()),
        svg::outcome_name(op.outcome),
        t(op.invoke_ns, Some(op.invoke)),
        t(op.complete_ns, op.complete)
    );
}

fn counterexample(out: &mut String, tl: &Timeline, cex: &Counterexample) {
    let view = cex_view(tl, cex);
    let _ = write!(
        out,
        r#"<section id="counterexample"><h2>Counterexample</h2><p class="reason">{}</p>"#,
        esc(&headline(cex))
    );
    out.push_str("<h3>Ops that cannot be linearized</h3><table><tr><th>op</th><th>process</th><th>operation</th><th>outcome</th><th>invoked</th><th>completed</th></tr>");
    op_row(out, &cex.failed, "failed", tl);
    for op in &cex.pending {
        op_row(out, op, "pending", tl);
    }
    out.push_str("</table><p>The first row completed although no state reachable after the prefix lets it take effect; the others were pending at that moment and cannot follow the prefix either.</p>");
    out.push_str(r#"<h3>Possible states after the prefix</h3><ul id="states">"#);
    for s in &cex.states {
        let _ = write!(out, r#"<li class="mono">{}</li>"#, esc(s));
    }
    out.push_str("</ul>");
    let n = cex.prefix.len();
    let _ = write!(
        out,
        "<h3>Longest linearizable prefix ({n} ops, in linearization order)</h3>"
    );
    if n > SHOWN_PREFIX {
        let _ = write!(
            out,
            r#"<p class="note">Showing the last {SHOWN_PREFIX} of {n} prefix ops.</p>"#
        );
    }
    out.push_str(r#"<table id="prefix"><tr><th>op</th><th>process</th><th>operation</th><th>outcome</th><th>invoked</th><th>completed</th></tr>"#);
    for op in &cex.prefix[n.saturating_sub(SHOWN_PREFIX)..] {
        op_row(out, op, "prefix", tl);
    }
    out.push_str("</table>");
    if let Some((a, b)) = view.window {
        // The partition's ops in the window, nearest the failed op first when too many.
        let mut shown: Vec<usize> = tl
            .bars
            .iter()
            .enumerate()
            .filter(|(_, bar)| cex.key.is_none() || bar.key == cex.key)
            .filter(|(_, bar)| bar.start <= b && bar.end >= a)
            .map(|(i, _)| i)
            .collect();
        let zoom_note = if shown.len() > MAX_ZOOMED {
            let centre = view.failed.unwrap_or(shown[shown.len() / 2]);
            shown.sort_by_key(|&i| i.abs_diff(centre));
            shown.truncate(MAX_ZOOMED);
            shown.sort_unstable();
            format!(" (the {MAX_ZOOMED} ops nearest the failed one)")
        } else {
            String::new()
        };
        let _ = write!(
            out,
            r#"<h3>Timeline of the window{}{}</h3><p class="legend"><span><i class="sw" style="border:2.5px solid #000"></i>cannot be linearized</span><span><i class="sw" style="border:2px solid #7048e8"></i>pending then</span><span><i class="sw" style="border:1px solid #1c7ed6"></i>in the prefix</span></p>"#,
            cex.key
                .as_ref()
                .map_or(String::new(), |k| format!(": key {}", esc(k))),
            zoom_note
        );
        out.push_str(r#"<div id="cex-timeline">"#);
        out.push_str(&svg::timeline(
            tl,
            &shown,
            XAxis::new(a, b),
            &view.marks,
            None,
            true,
        ));
        out.push_str("</div>");
    }
    out.push_str("</section>");
}

fn plots(out: &mut String, tl: &Timeline, cex: Option<&Counterexample>) {
    let n = tl.bars.len();
    let view = cex.map(|c| cex_view(tl, c));
    let full = XAxis::new(0.0, tl.end);
    out.push_str(r#"<section id="timeline"><h2>Timeline</h2>"#);
    legend(out, !tl.periods.is_empty());
    if n == 0 {
        out.push_str("<p>No client operations.</p>");
    }
    let (shown, axis): (Vec<usize>, XAxis) = if n <= MAX_DRAWN {
        ((0..n).collect(), full)
    } else {
        let centre = view.as_ref().and_then(|v| v.failed);
        let lo = centre.map_or(0, |c| c.saturating_sub(MAX_DRAWN / 2));
        let hi = (lo + MAX_DRAWN).min(n);
        let lo = hi - MAX_DRAWN;
        let x0 = tl.bars[lo].start;
        let x1 = tl.bars[lo..hi]
            .iter()
            .filter(|b| b.completed)
            .map(|b| b.end)
            .fold(tl.bars[hi - 1].start, f64::max);
        let _ = write!(
            out,
            r#"<p class="note" id="timeline-window">{n} ops: drawing ops {lo}..{hi} only ({} {}–{} {}), {}. Latency and throughput below cover the whole run.</p>"#,
            fmt_x(x0, tl.timed),
            tl.unit(),
            fmt_x(x1, tl.timed),
            tl.unit(),
            if centre.is_some() {
                "the window around the counterexample"
            } else {
                "the first ones"
            }
        );
        ((lo..hi).collect(), XAxis::new(x0, x1))
    };
    if n > 0 {
        let window = view.as_ref().and_then(|v| v.window);
        let empty = HashMap::new();
        let marks = view.as_ref().map_or(&empty, |v| &v.marks);
        out.push_str(&svg::timeline(tl, &shown, axis, marks, window, false));
    }
    out.push_str("</section>");
    if !tl.timed {
        out.push_str(r#"<section id="latency"><h2>Latency and throughput</h2><p class="note">This history has no times, so there is no latency or throughput to plot.</p></section>"#);
        return;
    }
    if n == 0 {
        return;
    }
    let (scatter, drawn) = svg::latency(tl, full, MAX_DRAWN);
    let timed_ops = tl.bars.iter().filter(|b| b.latency_ms.is_some()).count();
    out.push_str(r#"<section id="latency"><h2>Latency</h2>"#);
    legend(out, !tl.periods.is_empty());
    let _ = write!(
        out,
        r#"<p class="legend"><span><i class="sw" style="background:#1c7ed6"></i>p50</span><span><i class="sw" style="background:#7048e8"></i>p95</span><span><i class="sw" style="background:#e64980"></i>p99</span> of completed ops by invoke time</p>"#
    );
    if drawn < timed_ops {
        let _ = write!(
            out,
            r#"<p class="note" id="latency-sample">{timed_ops} completed ops: drawing an even sample of {drawn} points; the quantile lines use all of them.</p>"#
        );
    }
    out.push_str(&scatter);
    out.push_str(r#"</section><section id="throughput"><h2>Throughput</h2><p>Completions per second, by outcome.</p>"#);
    out.push_str(&svg::throughput(tl, full));
    out.push_str("</section>");
}

fn fmt_x(x: f64, timed: bool) -> String {
    if timed {
        format!("{x:.3}")
    } else {
        format!("{x:.0}")
    }
}

/// One sentence on what the online check (the history checked while the test ran) found.
fn online_line(o: &crate::results::OnlineSummary) -> String {
    let mut line = match &o.violation {
        Some(v) => {
            let latency = v
                .latency_ms()
                .map(|l| format!(", {l} ms after the op completed"))
                .unwrap_or_default();
            let key = v
                .key
                .as_ref()
                .map(|k| format!(" on key {k}"))
                .unwrap_or_default();
            format!(
                "Online check: violation found {:.1} s into the run{latency} (check {}, {} \
                 events in): {}{key}.",
                v.found_at_ms as f64 / 1000.0,
                o.checks,
                v.events,
                v.op,
            )
        }
        None => format!(
            "Online check: no violation in {} checks of up to {} events while the test ran.",
            o.checks, o.events_checked
        ),
    };
    if o.stopped_run {
        line.push_str(" The run stopped early (--stop-on-violation).");
    }
    if let Some(e) = &o.error {
        line.push_str(&format!(" The online check stopped: {e}."));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
