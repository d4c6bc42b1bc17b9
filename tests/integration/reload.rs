//! Reloading the configuration of the running binary: `POST /-/reload`
//! (with `--web.enable-lifecycle`) and SIGHUP apply a valid new file without losing counters, and refuse an
//! invalid one while the old configuration keeps running.

use std::process::Child;

use functiongraph_exporter::simulator::{Invocation, SimStatus, Simulator};
use functiongraph_exporter::timefmt::now_unix;
use tokio_util::sync::CancellationToken;

use crate::util::{BinaryFiles, Exposition, PROJECT, body_of, scrape_until, simulator};

struct Exporter {
    child: Child,
    addr: String,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn scrape(http: &reqwest::Client, addr: &str) -> Exposition {
    let body = body_of(http.get(format!("http://{addr}/metrics"))).await;
    Exposition::parse(&body)
}

/// The binary polling a simulator with `default:f1` and `default:f2`.
struct Run {
    sim: Simulator,
    /// Its configuration, polling f1 at the start.
    files: BinaryFiles,
    http: reqwest::Client,
    exporter: Exporter,
    shutdown: CancellationToken,
}

impl Drop for Run {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts the binary with `config_flag FILE` and `args`, and waits until it
/// has `default:f1` up.
async fn start_f1(config_flag: &str, args: &[&str]) -> Run {
    let sim = simulator(&["default:f1", "default:f2"]);
    let shutdown = CancellationToken::new();
    let files = BinaryFiles::serve(&sim, &shutdown, &["default:f1"]).await;
    let config = files.config_path();
    let args = [&[config_flag, config.as_str()], args].concat();
    let (child, addr) = crate::util::spawn_binary(&args);
    let exporter = Exporter { child, addr };
    let http = reqwest::Client::new();
    scrape_until(&http, &exporter.addr, "f1 up", |m| {
        m.value("functiongraph_up", &[("function", "f1")]) == Some(1.0)
    })
    .await;
    Run {
        sim,
        files,
        http,
        exporter,
        shutdown,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_valid_files_and_refuses_invalid_ones() {
    let run = start_f1("--config", &["--web.enable-lifecycle"]).await;
    let (sim, files, http, addr) = (&run.sim, &run.files, &run.http, &run.exporter.addr);

    // A failure counted before the reloads.
    let now = now_unix();
    assert!(sim.add_invocation(
        PROJECT,
        "default",
        "f1",
        Invocation::new("x", SimStatus::Fail, now - 1, Some(now))
    ));
    let failed = |m: &Exposition| {
        m.value(
            "functiongraph_async_invocations_total",
            &[("function", "f1"), ("status", "FAIL")],
        )
    };
    scrape_until(http, addr, "the failure counted", |m| {
        failed(m) == Some(1.0)
    })
    .await;

    // POST /-/reload with a second function.
    files.write(&["default:f1", "default:f2"]);
    let r = http
        .post(format!("http://{addr}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let m = scrape_until(http, addr, "f2 up", |m| {
        m.value("functiongraph_up", &[("function", "f2")]) == Some(1.0)
    })
    .await;
    assert_eq!(failed(&m), Some(1.0), "counters survive a reload");

    // An invalid file is refused; the running configuration stays.
    std::fs::write(&files.config, "[polling]\nintervall = \"1s\"\n").unwrap();
    let r = http
        .post(format!("http://{addr}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert!(body.contains("unknown field `intervall`"), "{body}");
    let m = scrape(http, addr).await;
    assert_eq!(
        m.value("functiongraph_up", &[("function", "f2")]),
        Some(1.0)
    );
    assert_eq!(
        http.get(format!("http://{addr}/-/reload"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );

    // SIGHUP with f2 removed: its series go.
    files.write(&["default:f1"]);
    crate::util::send_signal(&run.exporter.child, "-HUP");
    let m = scrape_until(http, addr, "f2 removed", |m| {
        m.value("functiongraph_up", &[("function", "f2")]).is_none()
    })
    .await;
    assert_eq!(failed(&m), Some(1.0));
    assert_eq!(
        m.value("functiongraph_up", &[("function", "f1")]),
        Some(1.0)
    );
    drop(run);
}

/// `--config.auto-reload-interval`: a changed file is applied without a
/// signal or request (a Kubernetes ConfigMap update reaches the pod that
/// way); an invalid one changes nothing, and the next valid one applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_reloaded_on_its_own() {
    let run = start_f1("--config.file", &["--config.auto-reload-interval=200ms"]).await;
    let (files, http, addr) = (&run.files, &run.http, &run.exporter.addr);

    // Replaced as kubelet replaces a ConfigMap's file: a new file renamed
    // over the old one.
    let replace = |text: String| {
        let next = files.dir().join("config.toml.next");
        std::fs::write(&next, text).unwrap();
        std::fs::rename(&next, &files.config).unwrap();
    };
    replace(files.text(&["default:f1", "default:f2"]));
    scrape_until(http, addr, "f2 added", |m| {
        m.value("functiongraph_up", &[("function", "f2")]) == Some(1.0)
    })
    .await;
    replace("[polling]\nintervall = \"1s\"\n".to_owned());
    replace(files.text(&["default:f2"]));
    let m = scrape_until(http, addr, "f1 removed", |m| {
        m.value("functiongraph_up", &[("function", "f1")]).is_none()
    })
    .await;
    assert_eq!(
        m.value("functiongraph_up", &[("function", "f2")]),
        Some(1.0)
    );
    drop(run);
}
