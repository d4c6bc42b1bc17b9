//! What the benchmark and soak drivers share: finding the exporter's release
//! binary next to the example and starting it as its own process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The exporter binary built beside this example
/// (`target/release/examples/x` -> `target/release/functiongraph_exporter`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("functiongraph_exporter"))
        .expect("target directory")
}

/// Starts the binary with `--config config` and `args`, hands every line it
/// logs to `on_line`, and returns it with the address it says it serves on.
pub fn spawn_exporter(
    config: &Path,
    args: &[&str],
    mut on_line: impl FnMut(&str) + Send + 'static,
) -> Res<(Child, String)> {
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn,functiongraph_exporter=info")
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
