//! Benchmarks of the linearizability check: the whole Porcupine corpus in
//! `tests/data/porcupine` (the 52 etcd logs with the cas-register model, under Knossos's
//! reading and under Porcupine's; the 4 kv histories with the kv model), and generated kv
//! histories of 10k, 100k and 1M ops (10 keys, 10 and 50 clients, 1% info ops). Inputs
//! are read and generated outside the timed loop: this measures the check alone.
//! Run: `cargo bench -p faultline-checker --bench check`. The 1M-op case takes about a
//! minute; `faultline check` on a file from `--example gen_history` measures it end to
//! end (reading included) and its peak memory.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use faultline_checker::format::{read_path, Format};
use faultline_checker::gen::{kv_history, GenConfig};
use faultline_checker::{check, History, Limits, ModelKind, ModelSpec, Reading, Value};

/// The histories in `tests/data/porcupine/<sub>`, part of the repository.
fn corpus(sub: &str) -> Vec<History> {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/porcupine")
        .join(sub);
    let rd = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
        .iter()
        .map(|p| read_path(p, Format::Auto).expect("corpus file reads"))
        .collect()
}

fn bench_corpus(c: &mut Criterion) {
    let limits = Limits::default();
    let etcd = corpus("etcd");
    for reading in [Reading::Knossos, Reading::Porcupine] {
        let spec = reading.apply(ModelSpec::new(ModelKind::CasRegister));
        c.bench_function(&format!("corpus/etcd_{}_logs/{reading}", etcd.len()), |b| {
            b.iter(|| {
                for h in &etcd {
                    black_box(check(h, &spec, &limits).expect("checks"));
                }
            })
        });
    }
    let kv = corpus("kv");
    let spec =
        Reading::Porcupine.apply(ModelSpec::new(ModelKind::Kv).with_initial(Value::from("")));
    c.bench_function(&format!("corpus/kv_{}_files", kv.len()), |b| {
        b.iter(|| {
            for h in &kv {
                black_box(check(h, &spec, &limits).expect("checks"));
            }
        })
    });
}

fn bench_generated(c: &mut Criterion) {
    let limits = Limits::default();
    let spec = ModelSpec::new(ModelKind::Kv);
    let mut group = c.benchmark_group("generated_kv");
    // (ops, clients, samples): criterion's minimum of 10 samples for the big cases, taken
    // flat (one iteration each) so the 1M-op case stays near a minute.
    let cases = [
        (10_000usize, 10usize, 30usize),
        (10_000, 50, 30),
        (100_000, 10, 10),
        (100_000, 50, 10),
        (1_000_000, 50, 10),
    ];
    for (ops, clients, samples) in cases {
        let history = kv_history(&GenConfig {
            ops,
            keys: 10,
            clients,
            info_rate: 0.01,
            seed: 7,
        });
        group.sample_size(samples);
        if ops >= 100_000 {
            group.sampling_mode(SamplingMode::Flat);
            group.measurement_time(Duration::from_secs(if ops >= 1_000_000 { 40 } else { 10 }));
        }
        group.bench_function(format!("{ops}_ops/{clients}_clients"), |b| {
            b.iter(|| {
                let r = check(&history, &spec, &limits).expect("checks");
                assert!(r.verdict.is_valid(), "generated history must be valid");
                black_box(r)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_corpus, bench_generated);
criterion_main!(benches);
