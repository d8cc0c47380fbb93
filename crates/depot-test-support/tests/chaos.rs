//! Fixed seeds of the chaos harness: random workloads with injected store faults, checked against an
//! in-memory SQLite oracle after every fault. Any divergence fails.

use depot_test_support::chaos::{run_seed, ChaosBackend, ChaosReport, FAULTS};

fn run(backend: ChaosBackend, seeds: std::ops::Range<u64>, ops: usize) -> ChaosReport {
    let mut total = ChaosReport::default();
    for seed in seeds {
        total.merge(run_seed(seed, ops, backend));
    }
    eprintln!("{backend:?}: {total:?}");
    total
}

/// No divergence, and calls that missed their deadline with no fault armed (each still checked for
/// a whole state) stay rare: a slow spell of the machine is tolerated, a store that keeps missing
/// its deadlines is not. Open retries are not counted here: an open routinely waits behind a call
/// that a hang fault left sleeping (on PostgreSQL, for a pooled connection).
fn assert_clean(r: &ChaosReport) {
    assert!(r.divergences.is_empty(), "{:#?}", r.divergences);
    assert!(r.deadline_misses <= 3, "store calls kept missing their deadline: {r:?}");
}

#[test]
fn chaos_seeds_on_the_memory_store_never_diverge() {
    let r = run(ChaosBackend::Memory, 1..13, 250);
    assert_clean(&r);
    for kind in FAULTS {
        assert!(r.faults.get(*kind).copied().unwrap_or(0) > 0, "fault {kind} never fired: {:?}", r.faults);
    }
}

#[test]
fn chaos_seeds_on_the_file_store_never_diverge() {
    let r = run(ChaosBackend::File, 100..104, 200);
    assert_clean(&r);
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
    eprintln!("Postgres: {total:?}");
    assert_clean(&total);
    assert!(total.faults.values().sum::<u64>() > 0, "faults fired: {:?}", total.faults);
}
