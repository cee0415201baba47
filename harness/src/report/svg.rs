//! The report's plots as inline SVG, built as strings: the per-process timeline of
//! operations, the latency scatter with quantile lines, and throughput. Every plot shares
//! one x axis (seconds, or event positions for untimed histories) and shades nemesis
//! periods. Callers decide how many ops to hand over; these functions draw what they get.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use faultline_checker::Outcome;

use super::html::esc;
use super::ops::{Bar, Flag, Period, Timeline};

pub const WIDTH: f64 = 1300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 34.0;

/// Buckets for quantile and throughput lines.
const BUCKETS: usize = 80;

pub fn outcome_colour(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "#2f9e44",
        Outcome::Fail => "#c92a2a",
        Outcome::Info => "#f08c00",
    }
}

pub fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
    }
}

/// How a bar is emphasised in a counterexample view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// The op that cannot take effect.
    Failed,
    /// An op pending then, which cannot follow the prefix either.
    Pending,
    /// In the longest linearizable prefix.
    Prefix,
}

impl Mark {
    fn stroke(self) -> (&'static str, f64) {
        match self {
            Mark::Failed => ("#000", 2.5),
            Mark::Pending => ("#7048e8", 2.0),
            Mark::Prefix => ("#1c7ed6", 1.5),
        }
    }
}

/// A plot's x range and its mapping to pixels.
#[derive(Clone, Copy, Debug)]
pub struct XAxis {
    pub x0: f64,
    pub x1: f64,
}

impl XAxis {
    pub fn new(x0: f64, x1: f64) -> XAxis {
        let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
        XAxis { x0, x1 }
    }

    fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)
    }
}

/// Round tick positions (1, 2, 5 times a power of ten) covering `lo..=hi`.
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi <= lo || n == 0 {
        return vec![lo];
    }
    let raw = (hi - lo) / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let first = (lo / step - 1e-9).ceil();
    let mut out = Vec::new();
    for k in 0..=(2 * n + 2) {
        let t = (first + k as f64) * step;
        if t > hi + step * 1e-9 {
            break;
        }
        out.push(t);
    }
    out
}

fn fmt_num(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        let s = format!("{x:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn open_svg(out: &mut String, class: &str, height: f64, label: &str) {
    let _ = write!(
        out,
        r#"<svg class="plot {class}" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{}">"#,
        esc(label)
    );
}

/// Flags (a violation found while the test ran) as dashed vertical lines.
fn flag(out: &mut String, axis: &XAxis, flags: &[Flag], height: f64) {
    for m in flags {
        if m.at < axis.x0 || m.at > axis.x1 {
            continue;
        }
        let x = axis.px(m.at);
        let _ = write!(
            out,
            r##"<line class="flag" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="#c92a2a" stroke-width="2" stroke-dasharray="6 3"><title>{}</title></line>"##,
            height - BOTTOM,
            esc(&m.label)
        );
    }
}

/// Nemesis periods as shaded bands over the plot area.
fn shade(out: &mut String, axis: &XAxis, periods: &[Period], height: f64) {
    for p in periods {
        if p.end < axis.x0 || p.start > axis.x1 {
            continue;
        }
        let a = axis.px(p.start.max(axis.x0));
        let b = axis.px(p.end.min(axis.x1));
        let _ = write!(
            out,
            r##"<rect class="nemesis" x="{a:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="#868e96" fill-opacity="0.18"><title>{}</title></rect>"##,
            (b - a).max(1.0),
            height - TOP - BOTTOM,
            esc(&p.label)
        );
    }
}

fn x_axis(out: &mut String, axis: &XAxis, height: f64, unit: &str) {
    let y = height - BOTTOM;
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{y}" x2="{:.1}" y2="{y}" stroke="#495057"/>"##,
        WIDTH - RIGHT
    );
    for t in ticks(axis.x0, axis.x1, 10) {
        let x = axis.px(t);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="{y}" x2="{x:.1}" y2="{:.1}" stroke="#495057"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"##,
            y + 4.0,
            y + 16.0,
            fmt_num(t)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{unit}</text>"#,
        WIDTH - RIGHT,
        height - 4.0
    );
}

/// The operations in `shown` (indexes into `tl.bars`) as bars, one row per process.
/// `window` outlines a region (the counterexample's) on the plot; `labels` writes each
/// op's text beside its bar (for small zoomed views).
pub fn timeline(
    tl: &Timeline,
    shown: &[usize],
    axis: XAxis,
    marks: &HashMap<usize, Mark>,
    window: Option<(f64, f64)>,
    labels: bool,
) -> String {
    let mut procs: Vec<u64> = shown.iter().map(|&i| tl.bars[i].process).collect();
    procs.sort_unstable();
    procs.dedup();
    let row_of: HashMap<u64, usize> = procs.iter().enumerate().map(|(r, &p)| (p, r)).collect();
    let rows = procs.len().max(1);
    let row_h: f64 = if labels {
        22.0
    } else {
        (600.0 / rows as f64).clamp(3.0, 18.0)
    };
    let height = TOP + BOTTOM + rows as f64 * row_h;
    let mut out = String::with_capacity(shown.len() * 160 + 4096);
    open_svg(
        &mut out,
        "timeline",
        height,
        "operations per process over time",
    );
    shade(&mut out, &axis, &tl.periods, height);
    flag(&mut out, &axis, &tl.flags, height);
    if row_h >= 9.0 {
        for (r, p) in procs.iter().enumerate() {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">p{p}</text>"#,
                LEFT - 6.0,
                TOP + r as f64 * row_h + row_h * 0.7
            );
        }
    } else {
        let _ = write!(
            out,
            r#"<text x="4" y="{:.1}" class="tick">{rows} processes</text>"#,
            TOP + 12.0
        );
    }
    let bar_h = (row_h * 0.7).max(2.0);
    for &i in shown {
        let b: &Bar = &tl.bars[i];
        let x = axis.px(b.start.max(axis.x0));
        let w = (axis.px(b.end.min(axis.x1)) - x).max(1.5);
        let y = TOP + row_of[&b.process] as f64 * row_h + (row_h - bar_h) / 2.0;
        let mut extra = String::new();
        if !b.completed {
            extra.push_str(r#" fill-opacity="0.45""#);
        }
        if let Some(m) = marks.get(&i) {
            let (stroke, width) = m.stroke();
            let _ = write!(extra, r#" stroke="{stroke}" stroke-width="{width}""#);
        }
        let _ = write!(
            out,
            r#"<rect class="op {}" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{bar_h:.1}" fill="{}"{extra}><title>op {}: {}{}</title></rect>"#,
            outcome_name(b.outcome),
            outcome_colour(b.outcome),
            b.id,
            esc(&b.label),
            b.latency_ms
                .map_or(String::new(), |l| format!(", {l:.2} ms"))
        );
        if labels {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" class="oplabel">{}</text>"#,
                x + 2.0,
                y + bar_h - 4.0,
                esc(&b.label)
            );
        }
    }
    if let Some((a, b)) = window {
        let xa = axis.px(a.max(axis.x0));
        let xb = axis.px(b.min(axis.x1));
        let _ = write!(
            out,
            r##"<rect class="cex-window" x="{xa:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#c92a2a" stroke-width="2" stroke-dasharray="6 3"><title>counterexample window</title></rect>"##,
            (xb - xa).max(2.0),
            height - TOP - BOTTOM
        );
    }
    x_axis(&mut out, &axis, height, tl.unit());
    out.push_str("</svg>");
    out
}

/// Nearest-rank quantile of sorted samples.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1]
}

/// Latency of completed ops against invoke time (log scale), at most `max_points` raw
/// points (a regular subsample when there are more), and p50/p95/p99 lines over time
/// computed from all of them. Returns the SVG and how many points were drawn.
pub fn latency(tl: &Timeline, axis: XAxis, max_points: usize) -> (String, usize) {
    const HEIGHT: f64 = 320.0;
    let pts: Vec<(f64, f64, Outcome)> = tl
        .bars
        .iter()
        .filter(|b| b.start >= axis.x0 && b.start <= axis.x1)
        .filter_map(|b| b.latency_ms.map(|l| (b.start, l.max(1e-3), b.outcome)))
        .collect();
    let mut out = String::with_capacity(pts.len().min(max_points) * 80 + 4096);
    open_svg(&mut out, "latency", HEIGHT, "latency over time");
    shade(&mut out, &axis, &tl.periods, HEIGHT);
    let (lo, hi) = pts.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let (llo, lhi) = if pts.is_empty() {
        (0.0, 1.0)
    } else {
        let a = lo.log10().floor();
        let b = hi.log10().ceil();
        (a, if b > a { b } else { a + 1.0 })
    };
    let py = |ms: f64| {
        let t = (ms.log10() - llo) / (lhi - llo);
        HEIGHT - BOTTOM - t * (HEIGHT - TOP - BOTTOM)
    };
    // Decades on the y axis.
    let mut d = llo;
    while d <= lhi + 1e-9 {
        let y = py(10f64.powf(d));
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#dee2e6"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{} ms</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(10f64.powf(d))
        );
        d += 1.0;
    }
    let stride = pts.len().div_ceil(max_points.max(1)).max(1);
    let mut drawn = 0;
    for (x, l, o) in pts.iter().step_by(stride) {
        let _ = write!(
            out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="{}" fill-opacity="0.55"/>"#,
            axis.px(*x),
            py(*l),
            outcome_colour(*o)
        );
        drawn += 1;
    }
    // Quantile lines per time bucket, over every point (not just the drawn ones).
    let width = (axis.x1 - axis.x0) / BUCKETS as f64;
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); BUCKETS];
    for (x, l, _) in &pts {
        let b = (((x - axis.x0) / width) as usize).min(BUCKETS - 1);
        buckets[b].push(*l);
    }
    for b in &mut buckets {
        b.sort_by(f64::total_cmp);
    }
    for (q, colour, name) in [
        (0.5, "#1c7ed6", "p50"),
        (0.95, "#7048e8", "p95"),
        (0.99, "#e64980", "p99"),
    ] {
        let mut path = String::new();
        for (i, b) in buckets.iter().enumerate() {
            if b.is_empty() {
                continue;
            }
            let x = axis.px(axis.x0 + (i as f64 + 0.5) * width);
            let _ = write!(
                path,
                "{}{x:.1},{:.1}",
                if path.is_empty() { "M" } else { " L" },
                py(quantile(b, q))
            );
        }
        if !path.is_empty() {
            let _ = write!(
                out,
                r#"<path class="quantile" d="{path}" fill="none" stroke="{colour}" stroke-width="2"><title>{name}</title></path>"#
            );
        }
    }
    x_axis(&mut out, &axis, HEIGHT, tl.unit());
    out.push_str("</svg>");
    (out, drawn)
}

/// Completions per second, one line per outcome.
pub fn throughput(tl: &Timeline, axis: XAxis) -> String {
    const HEIGHT: f64 = 240.0;
    let width = (axis.x1 - axis.x0) / BUCKETS as f64;
    let mut counts: BTreeMap<u8, (Outcome, Vec<u64>)> = BTreeMap::new();
    for b in &tl.bars {
        if !b.completed || b.end < axis.x0 || b.end > axis.x1 {
            continue;
        }
        let rank = match b.outcome {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
        };
        let c = counts
            .entry(rank)
            .or_insert_with(|| (b.outcome, vec![0; BUCKETS]));
        let i = (((b.end - axis.x0) / width) as usize).min(BUCKETS - 1);
        c.1[i] += 1;
    }
    let rate = |n: u64| n as f64 / width;
    let max = counts
        .values()
        .flat_map(|(_, v)| v.iter().map(|&n| rate(n)))
        .fold(0.0, f64::max);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let py = |r: f64| HEIGHT - BOTTOM - r / top * (HEIGHT - TOP - BOTTOM);
    let mut out = String::new();
    open_svg(&mut out, "throughput", HEIGHT, "throughput over time");
    shade(&mut out, &axis, &tl.periods, HEIGHT);
    for t in ticks(0.0, top, 4) {
        let y = py(t);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#dee2e6"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(t)
        );
    }
    for (outcome, v) in counts.values() {
        let mut path = String::new();
        for (i, &n) in v.iter().enumerate() {
            let x = axis.px(axis.x0 + (i as f64 + 0.5) * width);
            let _ = write!(
                path,
                "{}{x:.1},{:.1}",
                if path.is_empty() { "M" } else { " L" },
                py(rate(n))
            );
        }
        let _ = write!(
            out,
            r#"<path class="rate" d="{path}" fill="none" stroke="{}" stroke-width="2"><title>{} per {}</title></path>"#,
            outcome_colour(*outcome),
            outcome_name(*outcome),
            tl.unit()
        );
    }
    x_axis(&mut out, &axis, HEIGHT, tl.unit());
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(0.3, 0.9, 3);
        assert_eq!(t.len(), 3, "{t:?}");
        assert!(
            (t[0] - 0.4).abs() < 1e-9 && (t[2] - 0.8).abs() < 1e-9,
            "{t:?}"
        );
        assert_eq!(ticks(5.0, 5.0, 3), vec![5.0]);
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(12.345), "12.3");
    }
}
