//! Reloading the configuration of the running binary: `POST /-/reload`
//! (with `--web.enable-lifecycle`) and SIGHUP apply a valid new file without losing counters, and refuse an
//! invalid one while the old configuration keeps running.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use functiongraph_exporter::simulator::{Invocation, SimStatus};
use functiongraph_exporter::timefmt::now_unix;
use tokio_util::sync::CancellationToken;

use crate::util::{DEADLINE, Exposition, PROJECT, REGION, TOKEN, serve_simulator, simulator};

fn config(endpoint: &str, token_file: &str, functions: &str) -> String {
    format!(
        r#"
[web]
listen_address = "127.0.0.1:0"
[polling]
interval = "1s"
timeout = "1s"
[[projects]]
project_id = "{PROJECT}"
region = "{REGION}"
endpoint = "{endpoint}"
functions = [{functions}]
[projects.auth]
type = "token"
token_file = "{token_file}"
"#
    )
}

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
    let body = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Exposition::parse(&body)
}

/// Scrapes until `check` holds, within the deadline (the exporter polls
/// every second; this waits for a state, not for a time).
async fn until(
    http: &reqwest::Client,
    addr: &str,
    what: &str,
    check: impl Fn(&Exposition) -> bool,
) -> Exposition {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let m = scrape(http, addr).await;
        if check(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen within {DEADLINE:?}:\n{}",
            m.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_valid_files_and_refuses_invalid_ones() {
    let sim = simulator(&["default:f1", "default:f2"]);
    let shutdown = CancellationToken::new();
    let sim_addr = serve_simulator(&sim, &shutdown).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let config_file = dir.path().join("config.toml");
    let endpoint = format!("http://{sim_addr}");
    let token_path = token_file.display().to_string();
    std::fs::write(
        &config_file,
        config(&endpoint, &token_path, "\"default:f1\""),
    )
    .unwrap();

    let config_path = config_file.display().to_string();
    let (child, addr) =
        crate::util::spawn_binary(&["--config", &config_path, "--web.enable-lifecycle"]);
    let exporter = Exporter { child, addr };
    let http = reqwest::Client::new();
    let addr = exporter.addr.clone();

    // A failure counted before the reloads.
    until(&http, &addr, "f1 up", |m| {
        m.value("functiongraph_up", &[("function", "f1")]) == Some(1.0)
    })
    .await;
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
    until(&http, &addr, "the failure counted", |m| {
        failed(m) == Some(1.0)
    })
    .await;

    // POST /-/reload with a second function.
    std::fs::write(
        &config_file,
        config(&endpoint, &token_path, "\"default:f1\", \"default:f2\""),
    )
    .unwrap();
    let r = http
        .post(format!("http://{addr}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let m = until(&http, &addr, "f2 up", |m| {
        m.value("functiongraph_up", &[("function", "f2")]) == Some(1.0)
    })
    .await;
    assert_eq!(failed(&m), Some(1.0), "counters survive a reload");

    // An invalid file is refused; the running configuration stays.
    std::fs::write(&config_file, "[polling]\nintervall = \"1s\"\n").unwrap();
    let r = http
        .post(format!("http://{addr}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert!(body.contains("unknown field `intervall`"), "{body}");
    let m = scrape(&http, &addr).await;
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
    std::fs::write(
        &config_file,
        config(&endpoint, &token_path, "\"default:f1\""),
    )
    .unwrap();
    let pid = exporter.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let m = until(&http, &addr, "f2 removed", |m| {
        m.value("functiongraph_up", &[("function", "f2")]).is_none()
    })
    .await;
    assert_eq!(failed(&m), Some(1.0));
    assert_eq!(
        m.value("functiongraph_up", &[("function", "f1")]),
        Some(1.0)
    );
    drop(exporter);
    shutdown.cancel();
}

/// `--config.auto-reload-interval`: a changed file is applied without a
/// signal or request (a Kubernetes ConfigMap update reaches the pod that
/// way); an invalid one changes nothing, and the next valid one applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_reloaded_on_its_own() {
    let sim = simulator(&["default:f1", "default:f2"]);
    let shutdown = CancellationToken::new();
    let sim_addr = serve_simulator(&sim, &shutdown).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let config_file = dir.path().join("config.toml");
    let endpoint = format!("http://{sim_addr}");
    let token_path = token_file.display().to_string();
    std::fs::write(
        &config_file,
        config(&endpoint, &token_path, "\"default:f1\""),
    )
    .unwrap();
    let config_path = config_file.display().to_string();
    let (child, addr) = crate::util::spawn_binary(&[
        "--config.file",
        &config_path,
        "--config.auto-reload-interval=200ms",
    ]);
    let exporter = Exporter { child, addr };
    let http = reqwest::Client::new();
    let addr = exporter.addr.clone();
    until(&http, &addr, "f1 up", |m| {
        m.value("functiongraph_up", &[("function", "f1")]) == Some(1.0)
    })
    .await;

    // Replaced as kubelet replaces a ConfigMap's file: a new file renamed
    // over the old one.
    let replace = |text: String| {
        let next = dir.path().join("config.toml.next");
        std::fs::write(&next, text).unwrap();
        std::fs::rename(&next, &config_file).unwrap();
    };
    replace(config(
        &endpoint,
        &token_path,
        "\"default:f1\", \"default:f2\"",
    ));
    until(&http, &addr, "f2 added", |m| {
        m.value("functiongraph_up", &[("function", "f2")]) == Some(1.0)
    })
    .await;
    replace("[polling]\nintervall = \"1s\"\n".to_owned());
    replace(config(&endpoint, &token_path, "\"default:f2\""));
    let m = until(&http, &addr, "f1 removed", |m| {
        m.value("functiongraph_up", &[("function", "f1")]).is_none()
    })
    .await;
    assert_eq!(
        m.value("functiongraph_up", &[("function", "f2")]),
        Some(1.0)
    );
    drop(exporter);
    shutdown.cancel();
}
