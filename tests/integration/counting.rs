//! Exactly-once counting of async invocations against the simulator's
//! ground truth, in the hard cases: a busy function with invocations longer
//! than the poll interval, records that appear late, a skewed API clock,
//! invocations longer than the lookback, implausible dates, a DISCARD
//! without end time, and restarts with `[state] path`.
//!
//! Time is simulated: the simulator's clock and the exporter's manual clock
//! move together by whole poll intervals, and every poll is driven by the
//! test, so nothing waits on wall-clock time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use functiongraph_exporter::api::Endpoint;
use functiongraph_exporter::clock::ManualClock;
use functiongraph_exporter::simulator::{Activity, Invocation, SimStatus, Simulator, Truth};

use crate::util::{Exposition, Harness, PROJECT, Setup, captured_logs, log_text, simulator};

const F: &str = "default:busy";

/// An exporter on a manual clock, and the simulator it polls.
struct Run {
    h: Harness,
    sim: Simulator,
    clock: Arc<ManualClock>,
    /// Async requests of the most expensive poll so far.
    max_requests: u64,
}

impl Run {
    async fn start(polling: &str) -> Run {
        Self::start_in(simulator(&[F]), polling).await
    }

    async fn start_in(sim: Simulator, polling: &str) -> Run {
        let setup = Setup {
            functions: &[F],
            polling,
            ..Setup::default()
        };
        let (h, clock) = Harness::start_on_clock(&sim, setup).await;
        Run {
            h,
            sim,
            clock,
            max_requests: 0,
        }
    }

    /// Moves both clocks by `seconds`, lets the simulated traffic happen,
    /// and polls.
    async fn tick(&mut self, seconds: u64) {
        let d = Duration::from_secs(seconds);
        self.sim.advance_clock(d);
        self.sim.step(d);
        self.clock.advance(d);
        let before = self.sim.requests_to(Endpoint::AsyncInvocations);
        self.h.poll().await;
        let made = self.sim.requests_to(Endpoint::AsyncInvocations) - before;
        self.max_requests = self.max_requests.max(made);
    }

    fn truth(&self) -> Truth {
        self.sim.truth(PROJECT, "default", "busy").unwrap()
    }

    fn traffic(&self, activity: Option<Activity>) {
        assert!(self.sim.set_activity(PROJECT, "default", "busy", activity));
    }

    /// Stops the traffic and polls until every invocation has finished and
    /// had time to show, `settle` seconds at a time.
    async fn drain(&mut self, settle: u64, extra_polls: usize) {
        self.traffic(None);
        let mut left = 10_000;
        while self.truth().pending > 0 {
            self.tick(settle).await;
            left -= 1;
            assert!(left > 0, "the simulated traffic never finished");
        }
        for _ in 0..extra_polls {
            self.tick(settle).await;
        }
    }

    fn add(&self, inv: Invocation) {
        assert!(self.sim.add_invocation(PROJECT, "default", "busy", inv));
    }

    fn now(&self) -> i64 {
        self.sim.clock()
    }
}

fn totals(m: &Exposition) -> [f64; 3] {
    ["SUCCESS", "FAIL", "DISCARD"].map(|s| m.invocations("busy", s))
}

fn histogram_count(m: &Exposition) -> f64 {
    m.get(
        "functiongraph_async_invocation_duration_seconds_count",
        &[("function", "busy")],
    )
}

fn window(m: &Exposition, status: &str) -> f64 {
    m.records("busy", status)
}

fn truth_totals(t: Truth) -> [f64; 3] {
    t.terminal.map(|n| n as f64)
}

/// 10 invocations a second, each running 40 s, polled every 10 s with a
/// one-minute lookback: every one counted, at most 12 async requests a poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_function_with_long_invocations_counts_exactly() {
    let mut run = Run::start("interval = \"10s\"\ntimeout = \"5s\"\nasync_lookback = \"1m\"").await;
    run.traffic(Some(Activity {
        fail_ratio: 0.04,
        ..Activity::steady("latest", 600.0, (40, 40))
    }));
    for _ in 0..6 {
        run.tick(10).await;
    }
    run.drain(10, 3).await;
    let truth = run.truth();
    assert_eq!(truth.terminal.iter().sum::<u64>(), 600, "{truth:?}");
    let m = run.h.metrics().await;
    assert_eq!(totals(&m), truth_totals(truth));
    assert_eq!(histogram_count(&m), 600.0);
    assert_eq!(
        m.get(
            "functiongraph_async_invocation_duration_seconds_sum",
            &[("function", "busy")]
        ),
        truth.duration_sum as f64
    );
    assert!(
        run.max_requests <= 12,
        "{} async requests in one poll",
        run.max_requests
    );
    run.h.stop().await;
}

/// Records that show in listings 45 to 120 s after their start time are
/// counted, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_appear_late_are_counted() {
    let mut run = Run::start("interval = \"10s\"\ntimeout = \"5s\"").await;
    let t = run.now();
    for (id, status, lag) in [
        ("late-1", SimStatus::Success, 45),
        ("late-2", SimStatus::Success, 80),
        ("late-3", SimStatus::Success, 120),
        ("late-4", SimStatus::Fail, 100),
    ] {
        run.add(Invocation::new(id, status, t + 1, Some(t + 3)).visible_from(t + 1 + lag));
    }
    for _ in 0..18 {
        run.tick(10).await;
    }
    let m = run.h.metrics().await;
    assert_eq!(totals(&m), [3.0, 1.0, 0.0]);
    assert_eq!(histogram_count(&m), 4.0);
    run.h.stop().await;
}

/// With the API's clock two minutes behind or ahead of the exporter's,
/// nothing is lost, and the offset is exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_api_clock_loses_nothing() {
    for ahead in [false, true] {
        let sim = simulator(&[F]);
        let skew = Duration::from_secs(120);
        if ahead {
            sim.advance_clock(skew);
        } else {
            sim.rewind_clock(skew);
        }
        let mut run = Run::start_in(sim, "interval = \"10s\"\ntimeout = \"5s\"").await;
        for (i, status) in [SimStatus::Success, SimStatus::Success, SimStatus::Fail]
            .into_iter()
            .enumerate()
        {
            let t = run.now();
            run.add(Invocation::new(
                &format!("skew-{i}"),
                status,
                t - 2,
                Some(t - 1),
            ));
            run.tick(10).await;
        }
        run.tick(10).await;
        let m = run.h.metrics().await;
        assert_eq!(totals(&m), [2.0, 1.0, 0.0], "API ahead: {ahead}");
        let offset = m.get(
            "functiongraph_exporter_api_clock_offset_seconds",
            &[("project_id", PROJECT)],
        );
        let expected = if ahead { 120.0 } else { -120.0 };
        assert!(
            (offset - expected).abs() <= 1.5,
            "offset {offset}, expected {expected}"
        );
        run.h.stop().await;
    }
}

/// An invocation still running when it leaves a one-minute lookback is
/// tracked until it finishes, then counted once with its whole duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_longer_than_the_lookback_is_counted_when_it_ends() {
    let mut run = Run::start(
        "interval = \"10s\"\ntimeout = \"5s\"\nasync_lookback = \"1m\"\nasync_late_visibility = \"30s\"",
    )
    .await;
    let t = run.now();
    run.add(Invocation::new("long", SimStatus::Running, t, None));
    for _ in 0..30 {
        run.tick(10).await;
    }
    let m = run.h.metrics().await;
    assert_eq!(totals(&m), [0.0, 0.0, 0.0]);
    assert_eq!(window(&m, "RUNNING"), 0.0, "out of the one-minute window");
    let end = run.now();
    assert!(run.sim.set_invocation_status(
        PROJECT,
        "default",
        "busy",
        "long",
        SimStatus::Success,
        Some(end)
    ));
    run.tick(10).await;
    run.tick(10).await;
    let m = run.h.metrics().await;
    assert_eq!(totals(&m), [1.0, 0.0, 0.0]);
    assert_eq!(histogram_count(&m), 1.0);
    let sum = m.get(
        "functiongraph_async_invocation_duration_seconds_sum",
        &[("function", "busy")],
    );
    assert_eq!(sum, (end - t) as f64);
    assert!(sum > 300.0, "longer than the lookback: {sum}");
    run.h.stop().await;
}

/// A record dated 0001-01-01 that the API sends in every listing is counted
/// once, and is kept out of the window; one dated a day ahead too, and it
/// does not become the last failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implausible_dates_are_counted_once_and_kept_out_of_the_window() {
    captured_logs();
    let mut run = Run::start("interval = \"10s\"\ntimeout = \"5s\"").await;
    let t = run.now();
    run.add(
        Invocation::new("ancient", SimStatus::Fail, t, Some(t))
            .with_raw_times("0001-01-01T00:00:00", "0001-01-01T00:00:01")
            .pinned(),
    );
    run.add(
        Invocation::new("future", SimStatus::Fail, t + 86_400, Some(t + 86_401))
            .visible_from(t)
            .pinned(),
    );
    run.add(Invocation::new("real", SimStatus::Fail, t - 5, Some(t - 4)));
    for _ in 0..8 {
        run.tick(10).await;
    }
    let m = run.h.metrics().await;
    assert_eq!(totals(&m), [0.0, 3.0, 0.0]);
    assert_eq!(window(&m, "FAIL"), 1.0, "only the plausible record");
    assert_eq!(histogram_count(&m), 1.0);
    assert_eq!(
        m.get(
            "functiongraph_async_invocation_last_failure_timestamp_seconds",
            &[("function", "busy")]
        ),
        (t - 5) as f64
    );
    assert_eq!(
        m.get(
            "functiongraph_exporter_async_implausible_records_total",
            &[]
        ),
        2.0
    );
    let logs = log_text();
    assert_eq!(
        logs.matches("request_id=ancient").count(),
        1,
        "logged once:\n{logs}"
    );
    run.h.stop().await;
}

/// A DISCARD record without an end time is in the duration histogram, like
/// every counted invocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discard_without_end_time_is_in_the_histogram() {
    let mut run = Run::start("interval = \"10s\"\ntimeout = \"5s\"").await;
    let t = run.now();
    run.add(Invocation::new("queued", SimStatus::Wait, t - 20, None));
    run.tick(10).await;
    assert!(run.sim.set_invocation_status(
        PROJECT,
        "default",
        "busy",
        "queued",
        SimStatus::Discard,
        None
    ));
    run.tick(10).await;
    let m = run.h.metrics().await;
    assert_eq!(totals(&m), [0.0, 0.0, 1.0]);
    assert_eq!(histogram_count(&m), 1.0);
    run.h.stop().await;
}

/// The state file written by one run is continued by the next: counters
/// carry on, what finished while the exporter was down is counted once, and
/// nothing already counted is counted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_continue_across_a_restart_with_a_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let polling = state_polling(&state);
    let sim = simulator(&[F]);
    let mut run = Run::start_in(sim.clone(), &polling).await;
    run.traffic(Some(Activity {
        fail_ratio: 0.1,
        ..Activity::steady("latest", 120.0, (5, 60))
    }));
    for _ in 0..6 {
        run.tick(10).await;
    }
    let before = totals(&run.h.metrics().await);
    assert!(before[0] > 0.0);
    let clock = Arc::clone(&run.clock);
    run.h.stop().await;

    // Down for 40 s while traffic goes on.
    for _ in 0..4 {
        let d = Duration::from_secs(10);
        sim.advance_clock(d);
        sim.step(d);
        clock.advance(d);
    }
    let h = Harness::start_ready(
        &sim,
        Setup {
            functions: &[F],
            polling: &polling,
            clock: Some(Arc::clone(&clock)),
            ..Setup::default()
        },
    )
    .await;
    let after_restart = totals(&h.metrics().await);
    for i in 0..3 {
        assert!(
            after_restart[i] >= before[i],
            "{after_restart:?} < {before:?}"
        );
    }
    let mut run = Run {
        h,
        sim,
        clock,
        max_requests: 0,
    };
    run.drain(10, 3).await;
    let m = run.h.metrics().await;
    assert_eq!(totals(&m), truth_totals(run.truth()));
    run.h.stop().await;
}

/// A corrupt, foreign or too old state file is reported and ignored: the
/// exporter starts from a fresh baseline and writes a good file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_state_file_gives_a_warning_and_a_fresh_baseline() {
    captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::write(&state, b"FGESTATE\x01\0\0\0\0\0\0\0not postcard at all").unwrap();
    let mut run = Run::start(&state_polling(&state)).await;
    assert!(
        log_text().contains("state file not used: it is corrupt"),
        "{}",
        log_text()
    );
    let t = run.now();
    run.add(Invocation::new("x", SimStatus::Fail, t - 1, Some(t)));
    run.tick(10).await;
    assert_eq!(totals(&run.h.metrics().await), [0.0, 1.0, 0.0]);
    run.h.stop().await;
    let written = std::fs::read(&state).unwrap();
    assert!(written.starts_with(b"FGESTATE"));

    // The same file, for another shard: not used.
    let run = Run::start(&format!(
        "{}\n[sharding]\ncount = 2\nindex = 1",
        state_polling(&state)
    ))
    .await;
    assert!(log_text().contains("it belongs to shard 0 of 1, this is shard 1 of 2"));
    run.h.stop().await;
}

/// `[polling]` lines (and a `[state]` table) for a run keeping its state in
/// `path`.
fn state_polling(path: &Path) -> String {
    format!(
        "interval = \"10s\"\ntimeout = \"5s\"\n[state]\npath = {:?}",
        path.display().to_string()
    )
}

/// The binary killed with SIGKILL while invocations finish, and started
/// again on the same state file: counters never go back, and every
/// invocation is counted exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_lose_nothing_and_count_nothing_twice() {
    let sim = simulator(&[F]);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let sim_addr = crate::util::serve_simulator(&sim, &shutdown).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, crate::util::TOKEN).unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[state]\npath = {:?}\n",
            crate::util::config_text(
                &[F],
                &format!("http://{sim_addr}"),
                PROJECT,
                &format!(
                    "type = \"token\"\ntoken_file = {:?}",
                    token_file.display().to_string()
                ),
                "interval = \"1s\"\ntimeout = \"1s\"",
            ),
            state.display().to_string()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let http = reqwest::Client::new();
    let success = |m: &Exposition| {
        m.value(
            "functiongraph_async_invocations_total",
            &[("function", "busy"), ("status", "SUCCESS")],
        )
    };
    let add = |id: &str, status, end: Option<i64>| {
        let t = sim.clock();
        assert!(sim.add_invocation(
            PROJECT,
            "default",
            "busy",
            Invocation::new(id, status, t - 1, end.map(|e| t + e))
        ));
    };

    let (mut child, addr) = crate::util::spawn_binary(&["--config", &config]);
    scrape_until_up(&http, &addr).await;
    add("done-1", SimStatus::Success, Some(0));
    add("long-1", SimStatus::Running, None);
    add("long-2", SimStatus::Running, None);
    let before =
        crate::util::scrape_until(&http, &addr, "done-1 counted", |m| success(m) == Some(1.0))
            .await;
    child.kill().unwrap();
    child.wait().unwrap();

    // While it is down: the long ones finish, a new one starts and ends.
    for id in ["long-1", "long-2"] {
        assert!(sim.set_invocation_status(
            PROJECT,
            "default",
            "busy",
            id,
            SimStatus::Success,
            Some(sim.clock())
        ));
    }
    add("done-2", SimStatus::Success, Some(0));

    let (mut child, addr) = crate::util::spawn_binary(&["--config", &config]);
    let first = crate::util::scrape_until(&http, &addr, "the restarted exporter's counters", |m| {
        success(m).is_some()
    })
    .await;
    assert!(
        success(&first) >= success(&before),
        "counters went back: {:?} after {:?}",
        success(&first),
        success(&before)
    );
    crate::util::scrape_until(&http, &addr, "all four counted", |m| {
        success(m) == Some(4.0)
    })
    .await;
    // A few more polls later: still four.
    let polled = sim.requests_to(Endpoint::AsyncInvocations);
    crate::util::scrape_until(&http, &addr, "three more polls", |_| {
        sim.requests_to(Endpoint::AsyncInvocations) >= polled + 3
    })
    .await;
    assert_eq!(success(&run_scrape(&http, &addr).await), Some(4.0));
    child.kill().unwrap();
    child.wait().unwrap();
    shutdown.cancel();
}

async fn scrape_until_up(http: &reqwest::Client, addr: &str) {
    crate::util::scrape_until(http, addr, "the function up", |m| {
        m.value("functiongraph_up", &[("function", "busy")]) == Some(1.0)
    })
    .await;
}

async fn run_scrape(http: &reqwest::Client, addr: &str) -> Exposition {
    crate::util::scrape_until(http, addr, "a scrape", |_| true).await
}

/// A state file where none can be written stops the start (exit code 2),
/// rather than promising durability and not keeping it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_state_directory_is_refused_at_start() {
    let text = crate::util::config_text(
        &[F],
        "http://127.0.0.1:9",
        PROJECT,
        "type = \"token\"\ntoken_env = \"FGE_TEST_UNUSED_TOKEN\"",
        "",
    );
    let text = format!("{text}\n[state]\npath = \"/nonexistent/dir/state\"\n");
    let config = functiongraph_exporter::config::Config::from_toml(&text, "test.toml").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let err = match functiongraph_exporter::app::start(&config, listener, shutdown).await {
        Err(e) => e,
        Ok(_) => panic!("started without a writable state directory"),
    };
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string()
            .starts_with("state.path: cannot write beside /nonexistent/dir/state"),
        "{err}"
    );
}

/// `--check-config` warns about a state directory it cannot write (it may
/// not exist before the first start) without failing.
#[test]
fn check_config_warns_about_an_unwritable_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t").unwrap();
    let text = crate::util::config_text(
        &[F],
        "http://127.0.0.1:9",
        PROJECT,
        &format!(
            "type = \"token\"\ntoken_file = {:?}",
            token.display().to_string()
        ),
        "",
    );
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        format!("{text}\n[state]\npath = \"/nonexistent/dir/state\"\n"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_functiongraph_exporter"))
        .arg("--config")
        .arg(&file)
        .arg("--check-config")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: state.path: cannot write beside /nonexistent/dir/state"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("state: kept in /nonexistent/dir/state"));
}

/// A reload keeps counting state and the state file; a file saved longer
/// ago than the lookback is not used (one warning, a fresh baseline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_state_and_an_old_file_is_not_used() {
    captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let token = dir.path().join("token");
    std::fs::write(&token, crate::util::TOKEN).unwrap();
    let auth = format!(
        "type = \"token\"\ntoken_file = {:?}",
        token.display().to_string()
    );
    let polling = state_polling(&state);
    let sim = simulator(&[F]);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let endpoint = format!(
        "http://{}",
        crate::util::serve_simulator(&sim, &shutdown).await
    );
    let clock = Arc::new(ManualClock::new());
    let setup = || Setup {
        functions: &[F],
        polling: &polling,
        endpoint: Some(endpoint.clone()),
        auth: Some(auth.clone()),
        clock: Some(Arc::clone(&clock)),
        ..Setup::default()
    };
    let h = Harness::start_ready(&sim, setup()).await;
    let mut run = Run {
        h,
        sim: sim.clone(),
        clock: Arc::clone(&clock),
        max_requests: 0,
    };
    let t = run.now();
    run.add(Invocation::new("a", SimStatus::Fail, t - 1, Some(t)));
    run.tick(10).await;
    let config = functiongraph_exporter::config::Config::from_toml(
        &crate::util::config_text(&[F], &endpoint, PROJECT, &auth, &polling),
        "reload.toml",
    )
    .unwrap();
    run.h.exporter.reload(&config).await.unwrap();
    let t = run.now();
    run.add(Invocation::new("b", SimStatus::Fail, t - 1, Some(t)));
    run.tick(10).await;
    assert_eq!(totals(&run.h.metrics().await), [0.0, 2.0, 0.0]);
    run.h.stop().await;

    // Restarted on the same file: it carries on.
    let h = Harness::start_ready(&sim, setup()).await;
    assert_eq!(totals(&h.metrics().await), [0.0, 2.0, 0.0]);
    h.stop().await;

    // Two hours later (the lookback is one): the file is too old.
    clock.advance(Duration::from_secs(7200));
    sim.advance_clock(Duration::from_secs(7200));
    let h = Harness::start_ready(&sim, setup()).await;
    assert!(
        log_text().contains("state file not used: it was saved 2h"),
        "{}",
        log_text()
    );
    assert_eq!(totals(&h.metrics().await), [0.0, 0.0, 0.0]);
    h.stop().await;
    shutdown.cancel();
}

/// Beyond `polling.max_tracked_invocations`, the oldest records are
/// forgotten and counted as the `tracked_invocations` cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracked_records_cap_is_counted() {
    let mut run =
        Run::start("interval = \"10s\"\ntimeout = \"5s\"\nmax_tracked_invocations = 100").await;
    let t = run.now();
    for i in 0..250 {
        run.add(Invocation::new(
            &format!("r{i}"),
            SimStatus::Running,
            t - 1,
            None,
        ));
    }
    run.tick(10).await;
    let m = run.h.metrics().await;
    assert_eq!(
        m.get(
            "functiongraph_exporter_capped_total",
            &[("cap", "tracked_invocations")]
        ),
        150.0
    );
    assert_eq!(
        m.get(
            "functiongraph_exporter_async_abandoned_invocations_total",
            &[]
        ),
        150.0
    );
    run.h.stop().await;
}
