//! Build facts for `functiongraph_exporter_build_info` and `--version`
//! (git revision, rustc version), and whether `promtool`, `prometheus` and
//! Python's `prometheus_client` (a strict OpenMetrics parser) are installed,
//! so the tests that need them are reported as ignored, not passed, without
//! them.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=.git/HEAD");
    println!("cargo::rerun-if-changed=.git/refs/heads");
    println!("cargo::rerun-if-env-changed=FGE_REVISION");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=FGE_REQUIRE_PROMTOOL");

    let revision = std::env::var("FGE_REVISION")
        .ok()
        .or_else(|| output("git", &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env=FGE_REVISION={revision}");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc_version = output(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env=FGE_RUSTC_VERSION={rustc_version}");

    // Tests that need Prometheus' tools are compiled as ignored where the
    // tools are missing. CI sets FGE_REQUIRE_PROMTOOL so that a missing
    // tool fails the build instead.
    for (tool, cfg, env) in [
        ("promtool", "has_promtool", "FGE_PROMTOOL"),
        ("prometheus", "has_prometheus", "FGE_PROMETHEUS"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        match find(tool) {
            Some(path) => {
                println!("cargo::rustc-cfg={cfg}");
                println!("cargo::rustc-env={env}={path}");
            }
            None if std::env::var_os("FGE_REQUIRE_PROMTOOL").is_some() => {
                panic!("FGE_REQUIRE_PROMTOOL is set but {tool} is not on PATH");
            }
            None => {
                println!("cargo::warning={tool} not found: the tests that need it will be ignored");
            }
        }
    }
    // kubectl (its built-in kustomize) builds the Kubernetes manifests in
    // a test; optional everywhere.
    println!("cargo::rustc-check-cfg=cfg(has_kubectl)");
    if let Some(path) = find("kubectl") {
        println!("cargo::rustc-cfg=has_kubectl");
        println!("cargo::rustc-env=FGE_KUBECTL={path}");
    }
    println!("cargo::rustc-check-cfg=cfg(has_openmetrics_parser)");
    if has_openmetrics_parser() {
        println!("cargo::rustc-cfg=has_openmetrics_parser");
    } else if std::env::var_os("FGE_REQUIRE_PROMTOOL").is_some() {
        panic!(
            "FGE_REQUIRE_PROMTOOL is set but python3 cannot import prometheus_client (pip install prometheus-client)"
        );
    } else {
        println!(
            "cargo::warning=python3 prometheus_client not found: the strict OpenMetrics checks will be ignored"
        );
    }
}

/// Whether Python's `prometheus_client` (its strict OpenMetrics parser,
/// used by `tests/tools/openmetrics_check.py`) can be imported.
fn has_openmetrics_parser() -> bool {
    Command::new("python3")
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn find(binary: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
        .and_then(|p| p.to_str().map(str::to_owned))
        .filter(|p| Path::new(p).is_absolute())
}
