//! `bench -- accuracy`: counted against true, per status, for streams of
//! async invocations whose truth the simulator knows.
//!
//! Each scenario starts the exporter on an empty account (its baseline),
//! then lets the simulator generate traffic in simulated time, ten seconds
//! (or the scenario's tick) at a time, polling after every step; then it
//! stops the traffic, lets every invocation finish and show, and compares
//! the exporter's counters with the simulator's truth. The in-process
//! scenarios run on a manual clock; `sigkill` runs the release binary in
//! real time against a simulator whose clock runs ten times faster, and
//! kills it with SIGKILL every two simulated minutes.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use functiongraph_exporter::api::Endpoint;
use functiongraph_exporter::app::{self, Running};
use functiongraph_exporter::clock::ManualClock;
use functiongraph_exporter::config::Config;
use functiongraph_exporter::simulator::{
    Activity, FunctionSpec, Invocation, SimStatus, Simulator, Truth,
};
use tokio_util::sync::CancellationToken;

use super::support::{
    REGION, Res, config_toml, metrics_text, spawn_exporter, token_dir, write_config,
};
use super::{PROJECT, TOKEN, start_in_process, wait_ready};

/// One stream of invocations and how the exporter polls it.
struct Scenario {
    name: &'static str,
    functions: usize,
    activity: Activity,
    /// Simulated seconds of traffic.
    traffic: u64,
    /// Simulated seconds between polls (the polling interval).
    tick: u64,
    /// `[polling]` lines beyond the interval.
    polling: &'static str,
    /// The API's clock minus the exporter's, seconds.
    skew: i64,
    /// Restart the exporter (in process, same state file) this often.
    restart_every: Option<u64>,
    /// Odd records added once the traffic starts.
    oddities: bool,
}

impl Scenario {
    fn new(name: &'static str, activity: Activity) -> Self {
        Self {
            name,
            functions: 1,
            activity,
            traffic: 60,
            tick: 10,
            polling: "",
            skew: 0,
            restart_every: None,
            oddities: false,
        }
    }
}

fn activity(per_second: f64, run: (i64, i64)) -> Activity {
    Activity {
        fail_ratio: 0.04,
        discard_ratio: 0.01,
        ..Activity::steady("latest", per_second * 60.0, run)
    }
}

fn scenarios(filter: Option<&str>) -> Vec<Scenario> {
    let all = vec![
        Scenario {
            polling: "async_lookback = \"1m\"",
            ..Scenario::new(
                "busy: 10/s, 40 s each, interval 10s, lookback 1m",
                Activity {
                    discard_ratio: 0.0,
                    ..activity(10.0, (40, 40))
                },
            )
        },
        Scenario {
            traffic: 600,
            polling: "async_lookback = \"1m\"",
            ..Scenario::new(
                "busy, sustained: 10/s for 10 min, 40 s each, interval 10s, lookback 1m",
                Activity {
                    discard_ratio: 0.0,
                    ..activity(10.0, (40, 40))
                },
            )
        },
        Scenario {
            traffic: 300,
            ..Scenario::new(
                "late: records visible 45-120 s after start",
                Activity {
                    visibility_lag: (45, 120),
                    ..activity(1.0, (1, 5))
                },
            )
        },
        Scenario {
            traffic: 300,
            skew: -120,
            ..Scenario::new("API clock 2 min behind", activity(1.0, (1, 30)))
        },
        Scenario {
            traffic: 300,
            skew: 120,
            ..Scenario::new("API clock 2 min ahead", activity(1.0, (1, 30)))
        },
        Scenario {
            traffic: 300,
            polling: "async_lookback = \"1m\"\nasync_late_visibility = \"1m\"",
            ..Scenario::new(
                "long: 2-10 min each, longer than lookback and late window",
                activity(1.0, (120, 600)),
            )
        },
        Scenario {
            traffic: 300,
            restart_every: Some(120),
            ..Scenario::new(
                "restart every 2 min with [state] path",
                activity(2.0, (1, 90)),
            )
        },
        Scenario {
            traffic: 120,
            oddities: true,
            ..Scenario::new(
                "oddities: dated 0001-01-01, a day ahead, DISCARD without end_time",
                activity(1.0, (1, 10)),
            )
        },
        Scenario {
            traffic: 600,
            ..Scenario::new("heavy: 50/s, 1 s to 15 min each", activity(50.0, (1, 900)))
        },
        Scenario {
            functions: 1000,
            traffic: 300,
            tick: 60,
            ..Scenario::new(
                "1,000 functions at 1/s each, interval 60s",
                activity(1.0, (1, 30)),
            )
        },
    ];
    all.into_iter()
        .filter(|s| filter.is_none_or(|f| s.name.contains(f)))
        .collect()
}

/// Runs the scenarios (those whose name contains `filter`) and `sigkill`.
pub async fn run(filter: Option<&str>) -> Res<()> {
    for s in scenarios(filter) {
        in_process(&s).await?;
    }
    if filter.is_none_or(|f| "sigkill".contains(f)) {
        sigkill().await?;
    }
    Ok(())
}

fn names(functions: usize) -> Vec<String> {
    (0..functions).map(|i| format!("acc-{i:04}")).collect()
}

async fn serve(sim: &Simulator) -> Res<(SocketAddr, CancellationToken)> {
    let stop = CancellationToken::new();
    let addr = super::support::serve(sim, &stop).await?;
    Ok((addr, stop))
}

fn config(sim: SocketAddr, functions: usize, token: &Path, polling: &str, state: &Path) -> String {
    let list: Vec<String> = names(functions)
        .iter()
        .map(|n| format!("default:{n}"))
        .collect();
    let polling = format!(
        "{polling}\nconcurrency = 16\nmax_functions = 100000\n[state]\npath = \"{}\"",
        state.display()
    );
    let rate = "max_requests_per_second = 1000000";
    config_toml(&polling, PROJECT, sim, &list, rate, token)
}

/// What the exporter counted, summed over functions.
fn counted(running: &Running) -> [u64; 3] {
    running
        .store()
        .functions()
        .iter()
        .fold([0; 3], |mut acc, f| {
            for (a, c) in acc.iter_mut().zip(f.async_counters.terminal) {
                *a += c;
            }
            acc
        })
}

fn truth(sim: &Simulator, functions: usize) -> Truth {
    names(functions)
        .iter()
        .fold(Truth::default(), |mut acc, n| {
            let t = sim.truth(PROJECT, "default", n).unwrap_or_default();
            for (a, c) in acc.terminal.iter_mut().zip(t.terminal) {
                *a += c;
            }
            acc.pending += t.pending;
            acc
        })
}

async fn start(config: &Config, clock: &Arc<ManualClock>) -> Res<Running> {
    let options = app::Options {
        clock: clock.clone(),
        ..app::Options::default()
    };
    let running = start_in_process(config, options).await?;
    running.poller().wait_ready().await?;
    Ok(running)
}

async fn in_process(s: &Scenario) -> Res<()> {
    let sim = Simulator::new(TOKEN);
    sim.add_project(PROJECT, REGION);
    for n in names(s.functions) {
        sim.add_function(PROJECT, FunctionSpec::new("default", &n));
    }
    if s.skew > 0 {
        sim.advance_clock(Duration::from_secs(s.skew as u64));
    } else {
        sim.rewind_clock(Duration::from_secs(s.skew.unsigned_abs()));
    }
    let (sim_addr, stop) = serve(&sim).await?;
    let (dir, token) = token_dir(TOKEN)?;
    let polling = format!(
        "interval = \"{}s\"\ntimeout = \"5s\"\n{}",
        s.tick, s.polling
    );
    let config = Config::from_toml(
        &config(
            sim_addr,
            s.functions,
            &token,
            &polling,
            &dir.path().join("state"),
        ),
        "accuracy",
    )?;
    let clock = Arc::new(ManualClock::new());
    let mut running = start(&config, &clock).await?;
    let mut restarts = 0;
    for n in names(s.functions) {
        sim.set_activity(PROJECT, "default", &n, Some(s.activity.clone()));
    }
    if s.oddities {
        let t = sim.clock();
        let n = &names(1)[0];
        for inv in [
            Invocation::new("ancient", SimStatus::Fail, t, Some(t))
                .with_raw_times("0001-01-01T00:00:00", "0001-01-01T00:00:01")
                .pinned(),
            Invocation::new("ahead", SimStatus::Fail, t + 86_400, Some(t + 86_401))
                .visible_from(t)
                .pinned(),
            Invocation::new("no-end", SimStatus::Discard, t - 5, None),
        ] {
            sim.add_invocation(PROJECT, "default", n, inv);
        }
    }
    let mut elapsed = 0;
    let mut polls = 0u64;
    let mut requests = 0u64;
    let mut max_requests = 0u64;
    let mut stopped = false;
    let settle = 330 / s.tick + 3;
    let mut settled = 0;
    loop {
        let d = Duration::from_secs(s.tick);
        sim.advance_clock(d);
        sim.step(d);
        clock.advance(d);
        elapsed += s.tick;
        if let Some(every) = s.restart_every {
            if elapsed % every == 0 {
                running.stop().await;
                running = start(&config, &clock).await?;
                restarts += 1;
            }
        }
        let before = sim.requests_to(Endpoint::AsyncInvocations);
        running.poller().run_cycle().await?;
        let made = sim.requests_to(Endpoint::AsyncInvocations) - before;
        polls += 1;
        requests += made;
        max_requests = max_requests.max(made);
        if !stopped && elapsed >= s.traffic {
            for n in names(s.functions) {
                sim.set_activity(PROJECT, "default", &n, None);
            }
            stopped = true;
        }
        if stopped && truth(&sim, s.functions).pending == 0 {
            settled += 1;
            if settled > settle {
                break;
            }
        }
    }
    let mut truth = truth(&sim, s.functions);
    if s.oddities {
        truth.terminal[1] += 2;
        truth.terminal[2] += 1;
    }
    report(
        s.name,
        counted(&running),
        truth,
        requests as f64 / polls as f64 / s.functions as f64,
        max_requests as f64 / s.functions as f64,
        restarts,
    );
    running.stop().await;
    stop.cancel();
    Ok(())
}

fn report(name: &str, counted: [u64; 3], truth: Truth, mean: f64, max: f64, restarts: u32) {
    let cell = |i: usize| {
        let ratio = if truth.terminal[i] == 0 {
            if counted[i] == 0 { 1.0 } else { f64::INFINITY }
        } else {
            counted[i] as f64 / truth.terminal[i] as f64
        };
        format!("{}/{} ({ratio:.3})", counted[i], truth.terminal[i])
    };
    let double: u64 = (0..3)
        .map(|i| counted[i].saturating_sub(truth.terminal[i]))
        .sum();
    let restarts = if restarts > 0 {
        format!(" | restarts {restarts}")
    } else {
        String::new()
    };
    println!(
        "accuracy | {name} | SUCCESS {} | FAIL {} | DISCARD {} | double counts {double} | async requests per function-poll mean {mean:.1}, max {max:.1}{restarts}",
        cell(0),
        cell(1),
        cell(2),
    );
}

/// The release binary, killed with SIGKILL every two simulated minutes,
/// against a simulator whose clock runs ten times faster than real time.
async fn sigkill() -> Res<()> {
    const SPEED: u64 = 10;
    let functions = 20;
    let sim = Simulator::new(TOKEN);
    sim.add_project(PROJECT, REGION);
    for n in names(functions) {
        sim.add_function(PROJECT, FunctionSpec::new("default", &n));
    }
    let (sim_addr, stop) = serve(&sim).await?;
    let (dir, token) = token_dir(TOKEN)?;
    let polling = "interval = \"1s\"\ntimeout = \"1s\"";
    let state = dir.path().join("state");
    let path = write_config(
        dir.path(),
        &config(sim_addr, functions, &token, polling, &state),
    )?;
    let start = || spawn_exporter(&path, &["--log.level", "warn"], |_| {});
    let http = reqwest::Client::new();
    let (mut child, mut addr) = start()?;
    wait_ready(&addr).await?;
    for n in names(functions) {
        sim.set_activity(PROJECT, "default", &n, Some(activity(1.0, (1, 90))));
    }
    // Ten simulated minutes of traffic, a kill every two.
    let mut kills = 0;
    let mut last: Vec<f64> = Vec::new();
    let mut decreases = 0;
    for second in 1..=120u64 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let d = Duration::from_secs(SPEED);
        sim.advance_clock(d);
        sim.step(d);
        if second <= 60 && second % 12 == 0 {
            child.kill()?;
            child.wait()?;
            kills += 1;
            (child, addr) = start()?;
        }
        if second == 60 {
            for n in names(functions) {
                sim.set_activity(PROJECT, "default", &n, None);
            }
        }
        if let Ok(now) = scrape_totals(&http, &addr, functions).await {
            if now.iter().zip(&last).any(|(n, l)| n < l) {
                decreases += 1;
            }
            last = now;
        }
    }
    let totals = scrape_totals(&http, &addr, functions).await?;
    let counted = [0, 1, 2].map(|i| totals[i] as u64);
    let truth = truth(&sim, functions);
    println!(
        "accuracy | sigkill: {functions} functions at 1/s, 1-90 s each, SIGKILL every 2 simulated min, [state] path | SUCCESS {}/{} | FAIL {}/{} | DISCARD {}/{} | double counts {} | counter decreases seen {decreases} | kills {kills} | pending at end {}",
        counted[0],
        truth.terminal[0],
        counted[1],
        truth.terminal[1],
        counted[2],
        truth.terminal[2],
        (0..3)
            .map(|i| counted[i].saturating_sub(truth.terminal[i]))
            .sum::<u64>(),
        truth.pending,
    );
    let _ = child.kill();
    let _ = child.wait();
    stop.cancel();
    Ok(())
}

/// `functiongraph_async_invocations_total` by status, summed over functions.
async fn scrape_totals(http: &reqwest::Client, addr: &str, functions: usize) -> Res<Vec<f64>> {
    let body = metrics_text(http, addr).await?;
    let mut totals = vec![0.0; 3];
    let mut seen = 0;
    for line in body.lines() {
        let Some(rest) = line.strip_prefix("functiongraph_async_invocations_total{") else {
            continue;
        };
        let value: f64 = rest
            .rsplit_once(' ')
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_default();
        for (i, status) in ["SUCCESS", "FAIL", "DISCARD"].iter().enumerate() {
            if rest.contains(&format!("status=\"{status}\"")) {
                totals[i] += value;
                seen += 1;
            }
        }
    }
    if seen < functions * 3 {
        return Err("not every function polled yet".into());
    }
    Ok(totals)
}
