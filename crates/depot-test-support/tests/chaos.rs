//! The chaos harness in `npm test`: a fixed slice of seeds on every store, plus a slice chosen by
//! the commit being tested (so every change explores seeds no run saw before). Random workloads with
//! injected store faults, on a simulated clock, checked against an in-memory SQLite oracle after
//! every fault; any divergence fails and prints the command that replays the seed.

use depot_test_support::chaos::{
    run_plan, run_seed, shrink, ChaosBackend, ChaosReport, Plan, PlantedBug, Target, FAULTS,
};

fn replay_hint(backend: ChaosBackend, seed: u64, ops: usize) -> String {
    format!("npm run soak -- --store {} --first-seed {seed} --seeds 1 --ops {ops}", backend.name())
}

/// Runs `seeds` of `ops` steps on `target`; a diverging seed fails with its replay command.
fn run(target: &Target, seeds: impl IntoIterator<Item = u64>, ops: usize) -> ChaosReport {
    let mut total = ChaosReport::default();
    for seed in seeds {
        let report = run_plan(seed, &Plan::generate(seed, ops), target);
        assert!(
            report.divergences.is_empty(),
            "seed {seed} diverged: {:#?}\nreplay (and shrink) it with: {}",
            report.divergences,
            replay_hint(target.backend, seed, ops)
        );
        total.merge(report);
    }
    eprintln!("{:?}: {total:?}", target.backend);
    total
}

/// On a simulated clock a store call that works is never late: any unavailable call or open with
/// no fault armed is a bug, not a slow machine.
fn assert_no_spurious_failures(r: &ChaosReport) {
    assert_eq!(r.deadline_misses, 0, "calls failed with no fault armed: {r:?}");
    assert_eq!(r.open_retries, 0, "opens failed with no fault armed: {r:?}");
}

fn assert_every_fault_fired(r: &ChaosReport) {
    for kind in FAULTS {
        assert!(r.faults.get(*kind).copied().unwrap_or(0) > 0, "fault {kind} never fired: {:?}", r.faults);
    }
    // Interactive transactions paused past their timeout (on the simulated clock) were rolled back.
    assert!(r.timeouts > 0, "no interactive transaction timed out: {r:?}");
    // Restores and forks ran (each checked against the oracle's state at its point).
    assert!(r.restores > 0 && r.forks > 0, "no restore or fork was made: {r:?}");
    // Reads ran on the caller's thread too, and were compared like the others.
    assert!(r.caller_reads > 0, "no read ran on the caller's thread: {r:?}");
}

/// The first seed of this commit's slice: from the commit hash (`DEPOT_SOAK_COMMIT`, else `git
/// rev-parse HEAD`), so the slice moves with every change; a fixed seed where neither is known.
fn commit_seed() -> u64 {
    let hash = std::env::var("DEPOT_SOAK_COMMIT").ok().or_else(|| {
        let out = std::process::Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    let prefix = hash.as_deref().and_then(|h| u64::from_str_radix(&h[..h.len().min(12)], 16).ok());
    // Far from the fixed slices' seeds.
    1_000_000 + prefix.unwrap_or(0) % 1_000_000_000
}

#[test]
fn chaos_seeds_on_the_memory_store_never_diverge() {
    let r = run(&Target::new(ChaosBackend::Memory), 1..41, 250);
    assert_no_spurious_failures(&r);
    assert_every_fault_fired(&r);
}

#[test]
fn chaos_seeds_on_the_file_store_never_diverge() {
    let r = run(&Target::new(ChaosBackend::File), 100..116, 200);
    assert_no_spurious_failures(&r);
    assert_every_fault_fired(&r);
}

#[test]
fn chaos_seeds_on_the_postgres_store_never_diverge() {
    let url = std::env::var("DEPOT_TEST_PG_URL")
        .expect("the postgres feature is on but DEPOT_TEST_PG_URL is not set: run `npm test`, or export DEPOT_TEST_PG_URL=$(scripts/pg.sh start)");
    let r = run(&Target::postgres(&url), 200..210, 200);
    // A real server may still fail a call for real: tolerated rarely, and each one is recovered and
    // checked like a fault.
    assert!(r.deadline_misses <= 3, "PostgreSQL calls kept failing with no fault armed: {r:?}");
    assert_every_fault_fired(&r);
}

#[test]
fn chaos_seeds_chosen_by_the_commit_never_diverge() {
    let first = commit_seed();
    eprintln!("this commit's slice starts at seed {first}");
    let r = run(&Target::new(ChaosBackend::Memory), first..first + 20, 250);
    assert_no_spurious_failures(&r);
    let r = run(&Target::new(ChaosBackend::File), first..first + 6, 200);
    assert_no_spurious_failures(&r);
}

#[test]
fn a_seed_replays_the_same_way_twice() {
    let target = Target::new(ChaosBackend::Memory);
    let plan = Plan::generate(7, 200);
    let (a, b) = (run_plan(7, &plan, &target), run_plan(7, &plan, &target));
    assert!(a.faults.values().sum::<u64>() > 0, "{a:?}");
    assert_eq!(a.faults, b.faults);
    assert_eq!(
        (a.operations, a.reopens, a.checks, a.unknown_outcomes, a.simulated),
        (b.operations, b.reopens, b.checks, b.unknown_outcomes, b.simulated)
    );
}

#[test]
fn a_plan_round_trips_through_its_text() {
    let plan = Plan::generate(3, 300);
    assert!(plan.steps.iter().any(|s| s.fault.is_some()) && plan.steps.iter().any(|s| s.reopen));
    assert_eq!(Plan::from_text(&plan.to_text()).unwrap(), plan);
    assert!(Plan::from_text("-\tno-such-fault\tSELECT 1").unwrap_err().contains("unknown fault"));
    assert!(Plan::from_text("just one field").unwrap_err().contains("three tab-separated fields"));
}

#[test]
fn hangs_cost_no_wall_time() {
    // 250 steps arm about 30 faults, a third of them hangs or crashes of 300 ms (three deadlines)
    // each; in real time that alone was seconds. Simulated, the run's virtual clock moves by at
    // least the hangs while the wall clock does not have to.
    let r = run_seed(5, 250, ChaosBackend::Memory);
    let hangs = r.faults.get("store-call-hangs").copied().unwrap_or(0);
    assert!(hangs > 0, "{r:?}");
    assert!(r.simulated >= std::time::Duration::from_millis(100) * hangs as u32, "{r:?}");
}

/// The harness catches a planted bug (a store that acknowledges a commit before applying it, and
/// loses it when its next call fails) within the CI slice, and shrinks a diverging seed to a short
/// plan that still diverges when replayed from its text.
#[test]
fn the_ci_slice_catches_a_commit_acknowledged_before_it_was_applied() {
    let target = Target { planted: Some(PlantedBug::AckBeforeApply), ..Target::new(ChaosBackend::Memory) };
    let diverging: Vec<u64> = (1..13)
        .filter(|&seed| !run_plan(seed, &Plan::generate(seed, 250), &target).divergences.is_empty())
        .collect();
    assert!(!diverging.is_empty(), "no seed of the slice caught the planted bug");
    let seed = diverging[0];
    let plan = Plan::generate(seed, 250);
    let small = shrink(seed, &plan, &target, 150);
    eprintln!(
        "{} of 12 seeds caught it; seed {seed} shrunk from {} to {} steps",
        diverging.len(),
        plan.steps.len(),
        small.steps.len()
    );
    assert!(
        small.steps.len() < plan.steps.len() / 4,
        "shrunk to {} of {} steps",
        small.steps.len(),
        plan.steps.len()
    );
    // No fault needed: the dumps run on a snapshot reader, which reads what the store applied,
    // so a commit acknowledged but not yet applied shows at the first check.
    let replayed = Plan::from_text(&small.to_text()).unwrap();
    assert!(!run_plan(seed, &replayed, &target).divergences.is_empty(), "the shrunk plan no longer diverges");
    // The same plan without the bug is clean: the divergence is the bug's, not the plan's.
    assert!(run_plan(seed, &replayed, &Target::new(ChaosBackend::Memory)).divergences.is_empty());
}
