//! Shared test harness: the simulator and the exporter on `127.0.0.1:0`,
//! talking real HTTP, and a small reader of the exposition format.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use functiongraph_exporter::app::{self, Running};
use functiongraph_exporter::config::Config;
use functiongraph_exporter::simulator::{FunctionSpec, Simulator};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const PROJECT: &str = "0123456789abcdef0123456789abcdef";
pub const REGION: &str = "ap-southeast-1";
pub const TOKEN: &str = "test-token-s3cr3t";

/// A bound on anything a test waits for, so a bug fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A simulator with one project and the given functions (`package:name`,
/// Python, latest only).
pub fn simulator(functions: &[&str]) -> Simulator {
    let sim = Simulator::new(TOKEN);
    sim.add_project(PROJECT, REGION);
    for f in functions {
        let (package, name) = f.split_once(':').expect("package:name");
        sim.add_function(PROJECT, FunctionSpec::new(package, name));
    }
    sim
}

/// Serves `sim` on an ephemeral loopback port until `shutdown`.
pub async fn serve_simulator(sim: &Simulator, shutdown: &CancellationToken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sim = sim.clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move { sim.serve(listener, shutdown).await });
    addr
}

/// An exporter polling a simulator (which the test keeps a handle on).
pub struct Harness {
    pub exporter: Running,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    _dir: TempDir,
}

/// What to start the exporter with.
pub struct Setup<'a> {
    /// Function references, as written in `functions = [...]`.
    pub functions: &'a [&'a str],
    /// The token the exporter sends.
    pub token: &'a str,
    /// Extra `[polling]` lines.
    pub polling: &'a str,
    /// Override of the project's endpoint (default: the simulator).
    pub endpoint: Option<String>,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Self {
            functions: &[],
            token: TOKEN,
            polling: "",
            endpoint: None,
        }
    }
}

impl Harness {
    /// Starts the exporter against `sim` and waits for its first cycle.
    pub async fn start(sim: Simulator, functions: &[&str]) -> Harness {
        Self::start_with(
            sim,
            Setup {
                functions,
                ..Setup::default()
            },
        )
        .await
    }

    /// Starts the exporter without waiting for readiness.
    pub async fn start_with(sim: Simulator, setup: Setup<'_>) -> Harness {
        let shutdown = CancellationToken::new();
        let sim_addr = serve_simulator(&sim, &shutdown).await;
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{}\n", setup.token)).unwrap();
        let endpoint = setup
            .endpoint
            .unwrap_or_else(|| format!("http://{sim_addr}"));
        let config = config_text(setup.functions, &endpoint, &token_file, setup.polling);
        let config = Config::from_toml(&config, "test.toml").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let exporter = app::start(&config, listener, shutdown.clone())
            .await
            .unwrap();
        Harness {
            exporter,
            http: reqwest::Client::new(),
            shutdown,
            _dir: dir,
        }
    }

    pub async fn ready(&self) {
        tokio::time::timeout(DEADLINE, self.exporter.poller().wait_ready())
            .await
            .expect("first poll cycle within the deadline")
            .unwrap();
    }

    /// Runs one complete poll cycle now.
    pub async fn poll(&self) {
        tokio::time::timeout(DEADLINE, self.exporter.poller().poll_now())
            .await
            .expect("poll cycle within the deadline")
            .unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.exporter.local_addr())
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// Scrapes `/metrics`.
    pub async fn metrics(&self) -> Exposition {
        let r = self.get("/metrics").await;
        assert_eq!(r.status(), 200);
        Exposition::parse(&r.text().await.unwrap())
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(DEADLINE, self.exporter.wait())
            .await
            .expect("exporter stops within the deadline");
    }
}

/// A test configuration polling `functions` at `endpoint` with a token file.
/// The interval is long: the tests drive cycles themselves.
pub fn config_text(functions: &[&str], endpoint: &str, token_file: &Path, polling: &str) -> String {
    let functions: Vec<String> = functions.iter().map(|f| format!("{f:?}")).collect();
    format!(
        r#"
[web]
listen_address = "127.0.0.1:0"

[polling]
interval = "1h"
{polling}

[[projects]]
project_id = "{PROJECT}"
region = "{REGION}"
endpoint = "{endpoint}"
functions = [{}]
[projects.auth]
type = "token"
token_file = "{}"
"#,
        functions.join(", "),
        token_file.display()
    )
}

/// A parsed text exposition: samples by name and labels.
pub struct Exposition {
    pub text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Exposition {
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(parse_sample)
            .collect();
        Self {
            text: text.to_owned(),
            samples,
        }
    }

    /// The value of the one sample of `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<f64> = self.matching(name, labels).map(|(_, _, v)| *v).collect();
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} samples",
            found.len()
        );
        found.first().copied()
    }

    /// Like [`Exposition::value`], but the sample must exist.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in:\n{}", self.text))
    }

    /// Samples of `name` whose labels include `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a (String, BTreeMap<String, String>, f64)> + 'a {
        self.samples.iter().filter(move |(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// Metric names present (sample names, with suffixes).
    pub fn names(&self) -> std::collections::BTreeSet<&str> {
        self.samples.iter().map(|(n, _, _)| n.as_str()).collect()
    }
}

fn parse_sample(line: &str) -> (String, BTreeMap<String, String>, f64) {
    let (series, value) = line.rsplit_once(' ').expect("sample has a value");
    let value: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("bad value in {line}"));
    let Some((name, rest)) = series.split_once('{') else {
        return (series.to_owned(), BTreeMap::new(), value);
    };
    let body = rest.strip_suffix('}').expect("closing brace");
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(
            chars.next(),
            Some('"'),
            "label value starts with a quote in {line}"
        );
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => panic!("dangling escape in {line}"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        if chars.peek() == Some(&',') {
            chars.next();
        }
        labels.insert(key.trim().to_owned(), value);
    }
    (name.to_owned(), labels, value)
}
