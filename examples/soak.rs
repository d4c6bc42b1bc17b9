//! Soak test: the exporter binary against a simulator with 1,000 functions
//! with live traffic and random faults, for 10 minutes (see BENCHMARKS.md).
//!
//! ```sh
//! cargo build --release && cargo run --release --example soak -- 1000 10
//! ```
//!
//! Every poll interval it scrapes `/metrics` and checks: the process is
//! alive and has not panicked, no counter ever decreased, and resident
//! memory. Faults stop early enough for the longest back-off of a failing
//! collector (16 intervals) to run out before the end; from then, every
//! function must be back up within that back-off (plus one interval).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use functiongraph_exporter::api::Endpoint;
use functiongraph_exporter::simulator::{Activity, Fault, FaultSetting, FunctionSpec, Simulator};
use rand::Rng;
use tokio_util::sync::CancellationToken;

const PROJECT: &str = "50a40000000000000000000000000001";
const TOKEN: &str = "soak-token";
const INTERVAL: Duration = Duration::from_secs(15);
/// The longest back-off of a failing collector, and one interval more.
const RECOVERY: Duration = Duration::from_secs(15 * 17);

mod support;

use support::{
    REGION, Res, collector_intervals, config_toml, metrics_text, serve, spawn_exporter, token_dir,
    write_config,
};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let functions = args.first().copied().unwrap_or(1000);
    let minutes = args.get(1).copied().unwrap_or(10) as u64;
    let total = Duration::from_secs(minutes * 60);
    // A collector that kept failing is tried again at most 16 intervals
    // later: leave that, and an interval more, after the faults.
    let recovery = RECOVERY.max(Duration::from_secs(120));
    let faults_until = total.saturating_sub(recovery);

    let sim = Simulator::new(TOKEN);
    sim.add_project(PROJECT, REGION);
    let names: Vec<String> = (0..functions).map(|i| format!("soak-{i:04}")).collect();
    for name in &names {
        sim.add_function(
            PROJECT,
            FunctionSpec::new("default", name).activity(Activity {
                qualifier: "latest".into(),
                per_minute: 2.0,
                fail_ratio: 0.1,
                discard_ratio: 0.02,
                wait: (0, 20),
                run: (1, 30),
                visibility_lag: (0, 0),
            }),
        );
    }
    // An hour of history: the exporter's lookback window is full from the
    // start, so memory after warm-up reflects a steady state.
    sim.backfill(Duration::from_secs(3600));
    let stop = CancellationToken::new();
    let sim_addr = serve(&sim, &stop).await?;
    {
        let (s, t) = (sim.clone(), stop.clone());
        tokio::spawn(async move { s.run_activity(Duration::from_secs(1), t).await });
    }

    let (dir, token) = token_dir(TOKEN)?;
    let list: Vec<String> = names.iter().map(|n| format!("default:{n}")).collect();
    let polling = format!(
        "interval = \"{}s\"\ntimeout = \"5s\"\nconcurrency = 32\n{}",
        INTERVAL.as_secs(),
        collector_intervals(INTERVAL.as_secs() * 2)
    );
    let rate = "max_requests_per_second = 100000";
    let toml = config_toml(&polling, PROJECT, sim_addr, &list, rate, &token);
    let config = write_config(dir.path(), &toml)?;

    let panics = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&panics);
    let (mut child, addr) = spawn_exporter(&config, &[], move |line| {
        if line.contains("panicked") {
            counted.fetch_add(1, Ordering::Relaxed);
            eprintln!("{line}");
        }
    })?;
    let started = Instant::now();

    // Random faults until `faults_until`; then the time they were healed.
    let (healed_tx, healed_rx) = tokio::sync::oneshot::channel::<Instant>();
    {
        let (sim, names, stop) = (sim.clone(), names.clone(), stop.clone());
        tokio::spawn(async move {
            let endpoints = [
                Endpoint::AsyncInvocations,
                Endpoint::Versions,
                Endpoint::Code,
                Endpoint::SnapshotState,
            ];
            while started.elapsed() < faults_until && !stop.is_cancelled() {
                for _ in 0..names.len() / 20 {
                    let (name, endpoint, fault, times) = {
                        let mut rng = rand::rng();
                        let name = names[rng.random_range(0..names.len())].clone();
                        let endpoint = endpoints[rng.random_range(0..endpoints.len())];
                        let fault = match rng.random_range(0..9) {
                            0 => Fault::error(500, "FSS.0500", "internal error"),
                            1 => Fault::error(503, "FSS.0503", "unavailable"),
                            2 => Fault::throttle("APIGW.0308", Some(1)),
                            3 => Fault::throttle("FSS.0429", None),
                            4 => Fault::Hang,
                            5 => Fault::Reset,
                            6 => Fault::Stall,
                            7 => Fault::Body("{\"invocations\": 7}".into()),
                            _ => Fault::Huge(40 * 1024 * 1024),
                        };
                        (name, endpoint, fault, rng.random_range(1..4))
                    };
                    sim.set_fault(
                        PROJECT,
                        "default",
                        &name,
                        endpoint,
                        FaultSetting::Times(fault, times),
                    );
                }
                let left = faults_until.saturating_sub(started.elapsed());
                tokio::time::sleep(left.min(Duration::from_secs(5))).await;
            }
            sim.clear_faults();
            let _ = healed_tx.send(Instant::now());
        });
    }
    let mut healed_rx = Some(healed_rx);
    let mut healed_at: Option<Instant> = None;

    let http = reqwest::Client::new();
    let mut counters: HashMap<String, f64> = HashMap::new();
    let mut decreases = 0usize;
    let mut rss: Vec<(u64, f64)> = Vec::new();
    let mut all_up_after: Option<Duration> = None;
    let mut down_after_recovery_window = 0usize;
    while started.elapsed() < total {
        // Every interval; every second between the healing and recovery.
        let fine = healed_at.is_some() && all_up_after.is_none();
        tokio::time::sleep(if fine {
            Duration::from_secs(1)
        } else {
            INTERVAL
        })
        .await;
        if let Some(rx) = healed_rx.as_mut() {
            if let Ok(at) = rx.try_recv() {
                healed_at = Some(at);
                healed_rx = None;
            }
        }
        if let Some(status) = child.try_wait()? {
            return Err(format!("exporter exited: {status}").into());
        }
        let body = metrics_text(&http, &addr).await?;
        let mut up = 0usize;
        let mut total_up = 0usize;
        for line in body.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let value: f64 = value.parse().unwrap_or(f64::NAN);
            if series.starts_with("functiongraph_up{") {
                total_up += 1;
                if value == 1.0 {
                    up += 1;
                }
            }
            let name = series.split('{').next().unwrap_or_default();
            if name.ends_with("_total") || name.ends_with("_count") || name.ends_with("_bucket") {
                if let Some(before) = counters.insert(series.to_owned(), value) {
                    if value < before {
                        decreases += 1;
                        eprintln!("counter decreased: {series} {before} -> {value}");
                    }
                }
            }
            if series == "process_resident_memory_bytes" {
                rss.push((started.elapsed().as_secs(), value / 1048576.0));
            }
        }
        let elapsed = started.elapsed();
        if let Some(at) = healed_at {
            if up == total_up && all_up_after.is_none() {
                all_up_after = Some(at.elapsed());
            }
            if at.elapsed() > RECOVERY && up < total_up {
                down_after_recovery_window += 1;
            }
        }
        println!(
            "t={:>4}s up {up}/{total_up} rss {:.1} MiB counters {} decreases {decreases} panics {}",
            elapsed.as_secs(),
            rss.last().map_or(0.0, |r| r.1),
            counters.len(),
            panics.load(Ordering::Relaxed)
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    stop.cancel();

    let warm = rss.len() / 4;
    let after: Vec<f64> = rss.iter().skip(warm).map(|r| r.1).collect();
    let (min, max) = after
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    println!("---");
    println!(
        "functions {functions}, {minutes} min, faults for the first {} s",
        faults_until.as_secs()
    );
    println!("panics: {}", panics.load(Ordering::Relaxed));
    println!(
        "counter decreases: {decreases} (over {} counter series)",
        counters.len()
    );
    println!("resident memory after warm-up: min {min:.1} MiB, max {max:.1} MiB");
    println!(
        "all functions up {} after faults stopped (interval {} s, longest back-off 16 intervals); samples still down after 17 intervals: {down_after_recovery_window}",
        all_up_after.map_or("never".to_owned(), |d| format!("{:.1} s", d.as_secs_f64())),
        INTERVAL.as_secs()
    );
    Ok(())
}
