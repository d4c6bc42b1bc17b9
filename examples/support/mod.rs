//! What the benchmark and soak drivers share: finding the exporter's release
//! binary next to the example and starting it as its own process, serving
//! the simulator, the exporter's configuration and reading its `/metrics`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use functiongraph_exporter::simulator::Simulator;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The region of every simulated project.
pub const REGION: &str = "ap-southeast-1";

/// Serves `sim` on a loopback port until `stop`.
pub async fn serve(sim: &Simulator, stop: &CancellationToken) -> Res<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (s, t) = (sim.clone(), stop.clone());
    tokio::spawn(async move { s.serve(listener, t).await });
    Ok(addr)
}

/// A new temporary directory (for a run's files) holding the file `token`
/// with `token` in it, and that file's path.
pub fn token_dir(token: &str) -> Res<(TempDir, PathBuf)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("token");
    std::fs::write(&path, token)?;
    Ok((dir, path))
}

/// An exporter configuration: `polling` under `[polling]` (further tables
/// may follow it), then one project `project_id` served by the simulator
/// at `sim` watching `functions` (`package:name`), with the extra lines
/// `project` and its token read from `token_file`.
pub fn config_toml(
    polling: &str,
    project_id: &str,
    sim: SocketAddr,
    functions: &[String],
    project: &str,
    token_file: &Path,
) -> String {
    let list: Vec<String> = functions.iter().map(|f| format!("{f:?}")).collect();
    format!(
        r#"
[web]
listen_address = "127.0.0.1:0"
[polling]
{polling}
[[projects]]
project_id = "{project_id}"
region = "{REGION}"
endpoint = "http://{sim}"
functions = [{}]
{project}
[projects.auth]
type = "token"
token_file = "{}"
"#,
        list.join(", "),
        token_file.display()
    )
}

/// A `[polling.intervals]` table: versions, code and snapshot state polled
/// every `seconds`.
pub fn collector_intervals(seconds: u64) -> String {
    let s = format!("\"{seconds}s\"");
    format!("[polling.intervals]\nversions = {s}\ncode = {s}\nsnapshot = {s}")
}

/// Writes `toml` to `config.toml` in `dir`, and returns that file's path.
pub fn write_config(dir: &Path, toml: &str) -> Res<PathBuf> {
    let path = dir.join("config.toml");
    std::fs::write(&path, toml)?;
    Ok(path)
}

/// The body of `http://{addr}/metrics`.
pub async fn metrics_text(http: &reqwest::Client, addr: &str) -> Res<String> {
    let url = format!("http://{addr}/metrics");
    Ok(http.get(url).send().await?.text().await?)
}

/// The exporter binary the next start runs, when set (`bench -- ab`
/// runs several builds side by side).
pub static BINARY: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

/// The exporter binary built beside this example
/// (`target/release/examples/x` -> `target/release/functiongraph_exporter`).
pub fn binary() -> PathBuf {
    if let Some(path) = BINARY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
    {
        return path;
    }
    // FGE_BENCH_BINARY runs another build (or a wrapper, for profiling).
    if let Some(path) = std::env::var_os("FGE_BENCH_BINARY") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("own path");
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("functiongraph_exporter"))
        .expect("target directory");
    // `cargo run --example` does not rebuild the binary: measuring an old
    // one would measure other code.
    let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok();
    let newest_source = newest(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    if let (Some(built), Some(source)) = (built, newest_source) {
        assert!(
            built >= source,
            "{} is older than the sources: run `cargo build --release` first",
            binary.display()
        );
    }
    binary
}

/// The newest modification time of the files under `dir`.
fn newest(dir: &Path) -> Option<std::time::SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            if m.is_dir() {
                newest(&e.path())
            } else {
                m.modified().ok()
            }
        })
        .max()
}

/// Starts the binary with `--config config` and `args`, hands every line it
/// logs to `on_line`, and returns it with the address it says it serves on.
pub fn spawn_exporter(
    config: &Path,
    args: &[&str],
    on_line: impl FnMut(&str) + Send + 'static,
) -> Res<(Child, String)> {
    spawn_exporter_logging(config, args, "warn,functiongraph_exporter=info", on_line)
}

/// [`spawn_exporter`] with `RUST_LOG` set to `rust_log` (unless
/// `FGE_BENCH_RUST_LOG` says otherwise).
pub fn spawn_exporter_logging(
    config: &Path,
    args: &[&str],
    rust_log: &str,
    mut on_line: impl FnMut(&str) + Send + 'static,
) -> Res<(Child, String)> {
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("FGE_BENCH_RUST_LOG").unwrap_or_else(|_| rust_log.to_owned()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            on_line(&line);
            if let Some(rest) = line.split("serving metrics on http://").nth(1) {
                let _ = tx.send(rest.split("/metrics").next().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60))?;
    Ok((child, addr))
}
