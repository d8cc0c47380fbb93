//! Chaos soak on a simulated clock (see `depot_test_support::chaos`); `npm run soak` wraps it.
//!
//! ```text
//! soak [--seeds N] [--ops M] [--store memory|file|postgres] [--first-seed S] [--threads T]
//!      [--shrink-runs R] [--planted ack-before-apply]
//! soak --replay FILE [--seed S] [--store ...]
//! ```
//! Prints progress as seeds finish (seeds done, faults fired by kind, divergences). A diverging seed
//! is shrunk to a smaller plan that still diverges, written to `target/soak-repro-SEED.txt`, and the
//! command that replays it is printed. PostgreSQL reads its URL from `DEPOT_TEST_PG_URL`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use depot_test_support::chaos::{run_plan, shrink, ChaosBackend, ChaosReport, Plan, PlantedBug, Target};

struct Args {
    seeds: u64,
    ops: usize,
    first: u64,
    threads: usize,
    shrink_runs: usize,
    replay: Option<String>,
    target: Target,
}

fn usage(problem: &str) -> ! {
    eprintln!("soak: {problem}");
    eprintln!(
        "usage: soak [--seeds N] [--ops M] [--store memory|file|postgres] [--first-seed S] [--threads T] \
         [--shrink-runs R] [--planted ack-before-apply] | soak --replay FILE [--seed S] [--store ...]"
    );
    std::process::exit(2)
}

fn parse() -> Args {
    let mut args = Args {
        seeds: 100,
        ops: 1000,
        first: 1,
        threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        shrink_runs: 300,
        replay: None,
        target: Target::new(ChaosBackend::Memory),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        fn number<T: std::str::FromStr>(flag: &str, v: String) -> T {
            v.parse().unwrap_or_else(|_| usage(&format!("{flag}: '{v}' is not a number")))
        }
        match flag.as_str() {
            "--seeds" => args.seeds = number(&flag, value()),
            "--ops" => args.ops = number(&flag, value()),
            "--first-seed" | "--seed" => args.first = number(&flag, value()),
            "--threads" => args.threads = number::<usize>(&flag, value()).max(1),
            "--shrink-runs" => args.shrink_runs = number(&flag, value()),
            "--replay" => args.replay = Some(value()),
            "--store" => {
                let v = value();
                args.target.backend =
                    ChaosBackend::parse(&v).unwrap_or_else(|| usage(&format!("unknown store '{v}'")));
            }
            "--planted" => match value().as_str() {
                "ack-before-apply" => args.target.planted = Some(PlantedBug::AckBeforeApply),
                other => usage(&format!("unknown planted bug '{other}'")),
            },
            other => usage(&format!("unknown argument '{other}'")),
        }
    }
    if args.target.backend == ChaosBackend::Postgres {
        match std::env::var("DEPOT_TEST_PG_URL") {
            Ok(url) => args.target.postgres_url = Some(url),
            Err(_) => usage("--store postgres needs DEPOT_TEST_PG_URL (scripts/pg.sh start prints one)"),
        }
    }
    args
}

fn replay_command(file: &str, seed: u64, target: &Target) -> String {
    let planted = match target.planted {
        Some(PlantedBug::AckBeforeApply) => " --planted ack-before-apply",
        None => "",
    };
    format!("npm run soak -- --replay {file} --seed {seed} --store {}{planted}", target.backend.name())
}

fn summary(total: &ChaosReport, started: Instant) {
    println!(
        "seeds: {}, operations: {}, reopens: {}, checks: {}, reads on the caller's thread: {}, simulated time: {:.0} s, elapsed: {:.1} s",
        total.seeds,
        total.operations,
        total.reopens,
        total.checks,
        total.caller_reads,
        total.simulated.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let args = parse();
    let started = Instant::now();
    if let Some(file) = &args.replay {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| usage(&format!("cannot read {file}: {e}")));
        let plan = Plan::from_text(&text).unwrap_or_else(|e| usage(&format!("{file}: {e}")));
        let report = run_plan(args.first, &plan, &args.target);
        println!("replayed {} steps of {file} on the {} store", plan.steps.len(), args.target.backend.name());
        println!("faults fired: {:?}", report.faults);
        println!("divergences: {}", report.divergences.len());
        for d in &report.divergences {
            println!("  {d}");
        }
        std::process::exit(if report.divergences.is_empty() { 0 } else { 1 });
    }

    let next = AtomicU64::new(args.first);
    let end = args.first + args.seeds;
    let total = Mutex::new(ChaosReport::default());
    let diverging = Mutex::new(Vec::new());
    let last_print = Mutex::new(Instant::now());
    std::thread::scope(|scope| {
        for _ in 0..args.threads.min(args.seeds.max(1) as usize) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= end {
                    break;
                }
                let report = run_plan(seed, &Plan::generate(seed, args.ops), &args.target);
                if !report.divergences.is_empty() {
                    eprintln!(
                        "seed {seed}: {} divergences; first: {}",
                        report.divergences.len(),
                        report.divergences[0]
                    );
                    diverging.lock().unwrap().push(seed);
                }
                let mut total = total.lock().unwrap();
                total.merge(report);
                let mut last = last_print.lock().unwrap();
                if last.elapsed().as_secs() >= 5 || total.seeds == args.seeds {
                    *last = Instant::now();
                    eprintln!(
                        "[{:>6.1} s] seeds {}/{}, operations {}, divergences {}, faults {:?}",
                        started.elapsed().as_secs_f64(),
                        total.seeds,
                        args.seeds,
                        total.operations,
                        total.divergences.len(),
                        total.faults
                    );
                }
            });
        }
    });
    let total = total.into_inner().unwrap();
    println!("store: {}", args.target.backend.name());
    summary(&total, started);
    println!("faults fired: {:?}", total.faults);
    println!("unknown commit outcomes resolved: {}", total.unknown_outcomes);
    println!("interactive transactions timed out (simulated clock): {}", total.timeouts);
    println!(
        "restores and forks made (each checked against the oracle): {} and {}",
        total.restores, total.forks
    );
    println!(
        "calls failed unavailable with no fault armed: {}, open retries: {}",
        total.deadline_misses, total.open_retries
    );
    println!("divergences: {}", total.divergences.len());
    let mut diverging = diverging.into_inner().unwrap();
    diverging.sort_unstable();
    for seed in diverging.iter().take(3) {
        let plan = Plan::generate(*seed, args.ops);
        eprintln!(
            "seed {seed}: shrinking its {} steps (at most {} runs)...",
            plan.steps.len(),
            args.shrink_runs
        );
        let small = shrink(*seed, &plan, &args.target, args.shrink_runs);
        let file = format!("target/soak-repro-{seed}.txt");
        let _ = std::fs::create_dir_all("target");
        match std::fs::write(&file, small.to_text()) {
            Ok(()) => println!(
                "seed {seed}: diverges in {} steps; replay with: {}",
                small.steps.len(),
                replay_command(&file, *seed, &args.target)
            ),
            Err(e) => println!("seed {seed}: could not write {file}: {e}"),
        }
    }
    if !total.divergences.is_empty() {
        std::process::exit(1);
    }
}
