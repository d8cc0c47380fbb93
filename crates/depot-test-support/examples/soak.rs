//! Chaos soak: `cargo run --release -p depot-test-support --example soak -- [SEEDS] [OPS] [memory|file]`
//! Runs SEEDS seeds of OPS random operations each with injected store faults, checked against an
//! in-memory SQLite oracle, and prints seeds, operations, faults fired and divergences.

use depot_test_support::chaos::{run_seed, ChaosBackend, ChaosReport};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
    let ops: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(300);
    let backend = match args.get(3).map(String::as_str) {
        Some("file") => ChaosBackend::File,
        _ => ChaosBackend::Memory,
    };
    let start = std::time::Instant::now();
    let mut total = ChaosReport::default();
    let first: u64 = std::env::var("SOAK_FIRST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    for seed in first..first + seeds {
        if std::env::var_os("SOAK_VERBOSE").is_some() {
            eprintln!("seed {seed}");
        }
        let r = run_seed(seed, ops, backend);
        if !r.divergences.is_empty() {
            eprintln!("seed {seed}: {} divergences", r.divergences.len());
        }
        total.merge(r);
    }
    println!(
        "backend: {backend:?}, seeds: {}, operations: {}, reopens: {}, checks: {}",
        total.seeds, total.operations, total.reopens, total.checks
    );
    println!("faults fired: {:?}", total.faults);
    println!("unknown commit outcomes resolved: {}", total.unknown_outcomes);
    println!("divergences: {}", total.divergences.len());
    for d in &total.divergences {
        println!("  {d}");
    }
    println!("elapsed: {:.1} s", start.elapsed().as_secs_f64());
    if !total.divergences.is_empty() {
        std::process::exit(1);
    }
}
