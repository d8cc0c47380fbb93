//! Fixed seeds of the chaos harness: random workloads with injected store faults, checked against an
//! in-memory SQLite oracle after every fault. Any divergence fails.

use std::sync::atomic::Ordering;

use depot_test_support::chaos::{run_seed, ChaosBackend, ChaosReport, FAULTS, OPEN_RETRIES};

fn run(backend: ChaosBackend, seeds: std::ops::Range<u64>, ops: usize) -> ChaosReport {
    let mut total = ChaosReport::default();
    for seed in seeds {
        total.merge(run_seed(seed, ops, backend));
    }
    eprintln!(
        "{backend:?}: {total:?}, open retries in this process so far: {}",
        OPEN_RETRIES.load(Ordering::Relaxed)
    );
    total
}

#[test]
fn chaos_seeds_on_the_memory_store_never_diverge() {
    let r = run(ChaosBackend::Memory, 1..13, 250);
    assert!(r.divergences.is_empty(), "{:#?}", r.divergences);
    for kind in FAULTS {
        assert!(r.faults.get(*kind).copied().unwrap_or(0) > 0, "fault {kind} never fired: {:?}", r.faults);
    }
}

#[test]
fn chaos_seeds_on_the_file_store_never_diverge() {
    let r = run(ChaosBackend::File, 100..104, 200);
    assert!(r.divergences.is_empty(), "{:#?}", r.divergences);
    for kind in FAULTS {
        assert!(r.faults.get(*kind).copied().unwrap_or(0) > 0, "fault {kind} never fired: {:?}", r.faults);
    }
}

#[test]
fn chaos_seeds_on_the_postgres_store_never_diverge() {
    let url = std::env::var("DEPOT_TEST_PG_URL")
        .expect("the postgres feature is on but DEPOT_TEST_PG_URL is not set: run `npm test`, or export DEPOT_TEST_PG_URL=$(scripts/pg.sh start)");
    let mut total = ChaosReport::default();
    for seed in 200..203 {
        total.merge(depot_test_support::chaos::run_seed_postgres(seed, 150, &url));
    }
    eprintln!(
        "Postgres: {total:?}, open retries in this process so far: {}",
        OPEN_RETRIES.load(Ordering::Relaxed)
    );
    assert!(total.divergences.is_empty(), "{:#?}", total.divergences);
    assert!(total.faults.values().sum::<u64>() > 0, "faults fired: {:?}", total.faults);
}
