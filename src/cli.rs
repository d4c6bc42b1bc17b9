//! The command line: flags, exit codes, and what each mode does.
//!
//! Exit codes: 0 after a clean shutdown or a valid `--check-config`; 2 for
//! a configuration problem (including usage errors, as clap reports them);
//! 1 for anything else that stops the exporter from starting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DEFAULT_CONFIG_PATH, parse_listen_address};
use crate::demo::DemoAuth;
use crate::server::{DEFAULT_TELEMETRY_PATH, ReloadRequest, parse_telemetry_path};
use crate::telemetry::{self, LogFormat, LogLevel};
use crate::web::{LiveWebConfig, WebConfigError};
use crate::{Error, app, demo, shutdown};

const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("FGE_REVISION"),
    ", rustc ",
    env!("FGE_RUSTC_VERSION"),
    ")"
);

/// Prometheus exporter for Huawei Cloud FunctionGraph.
///
/// Polls asynchronous invocation records, versions, code information and
/// snapshot state of the configured functions in the background and serves
/// them on /metrics.
#[derive(Debug, Parser)]
#[command(name = "functiongraph_exporter", version = LONG_VERSION)]
pub struct Cli {
    /// Configuration file (TOML) [default: config/functiongraph_exporter.toml, if it exists]
    #[arg(long = "config.file", visible_alias = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Re-read the configuration file this often and reload it when its content changed (as SIGHUP does), e.g. 30s: for a Kubernetes ConfigMap, whose updates reach the pod without a signal; 0s: off
    #[arg(long = "config.auto-reload-interval", value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub auto_reload_interval: std::time::Duration,

    /// Run against the built-in FunctionGraph simulator: no configuration file or cloud account needed
    #[arg(long, conflicts_with = "config")]
    pub demo: bool,

    /// How the demo authenticates to its simulator
    #[arg(long = "demo.auth", value_enum, default_value_t = DemoAuth::Aksk, requires = "demo")]
    pub demo_auth: DemoAuth,

    /// Validate the configuration, print a summary (never secrets) and exit: 0 if valid, 2 if not
    #[arg(long = "check-config")]
    pub check_config: bool,

    /// Address to serve metrics on, HOST:PORT or :PORT (every IPv4 interface); repeat to listen on several; overrides [web] listen_address (demo default: 127.0.0.1:10054)
    #[arg(long = "web.listen-address", value_name = "[HOST]:PORT", value_parser = parse_listen_address)]
    pub listen_address: Vec<SocketAddr>,

    /// Serve on the sockets systemd passes (socket activation, LISTEN_FDS) instead of --web.listen-address
    #[arg(long = "web.systemd-socket", conflicts_with = "listen_address")]
    pub systemd_socket: bool,

    /// Path under which to expose metrics
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = DEFAULT_TELEMETRY_PATH, value_parser = parse_telemetry_path)]
    pub telemetry_path: String,

    /// Web configuration file (Prometheus exporter-toolkit format): TLS and basic authentication
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Enable reloading over HTTP (POST /-/reload), as in Prometheus; SIGHUP reloads either way
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// This replica's shard, 0-based; overrides [sharding] index [default: the host name's StatefulSet ordinal when --shard.count > 1]
    #[arg(long = "shard.index", value_name = "N")]
    pub shard_index: Option<u32>,

    /// Number of replicas sharing the functions; overrides [sharding] count
    #[arg(long = "shard.count", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub shard_count: Option<u32>,

    /// Lowest level of log events written to standard error
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Format of log events
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_level, cli.log_format);
    if cli.demo && !demo::AVAILABLE {
        telemetry::err(&Error::DemoUnavailable.to_string());
        return ExitCode::from(Error::DemoUnavailable.exit_code());
    }
    if cli.check_config {
        return check_config(&cli);
    }
    let web = match web_config(&cli) {
        Ok(web) => web,
        Err(e) => {
            tracing::error!(error = %e, "invalid web configuration");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // A scrape that has segments to encode runs on the blocking pool.
        // With tokio's default (10 s), every scrape at Prometheus' usual
        // intervals started a new thread, which set up its compressor and
        // allocator pages afresh: 6 ms instead of 1 ms of CPU per scrape
        // at 500 functions. Idle threads cost only their stacks.
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "starting the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, web)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "exporter stopped");
            ExitCode::from(e.exit_code())
        }
    }
}

/// How long an idle thread of the blocking pool is kept: longer than any
/// sensible scrape interval.
const BLOCKING_THREAD_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(600);

/// Loads `--web.config.file`, if given; an invalid file is a
/// configuration problem (exit code 2).
fn web_config(cli: &Cli) -> Result<Option<Arc<LiveWebConfig>>, WebConfigError> {
    cli.web_config_file
        .as_ref()
        .map(|p| LiveWebConfig::load(p).map(Arc::new))
        .transpose()
}

async fn run(cli: Cli, web: Option<Arc<LiveWebConfig>>) -> Result<(), Error> {
    let token = CancellationToken::new();
    tokio::spawn(shutdown::cancel_on_signal(token.clone()));
    let config = if cli.demo {
        let listen = cli
            .listen_address
            .first()
            .copied()
            .unwrap_or(demo::DEMO_LISTEN_ADDRESS);
        demo::start_simulator(listen, cli.demo_auth, token.clone()).await?
    } else {
        Config::load(&config_path(&cli)?)?
    };
    let config = with_flags(&cli, config);
    let mut listeners = if cli.systemd_socket {
        app::systemd_listeners()?
    } else {
        let mut listeners = Vec::new();
        for addr in listen_addresses(&cli, &config) {
            listeners.push(app::bind(addr).await?);
        }
        listeners
    };
    let first = listeners.remove(0);
    let scheme = match &web {
        Some(w) if w.tls_enabled() => "https",
        _ => "http",
    };
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel::<ReloadRequest>(4);
    let options = app::Options {
        web,
        // POST /-/reload only when asked for; SIGHUP always.
        reload: cli.enable_lifecycle.then(|| reload_tx.clone()),
        extra_listeners: listeners,
        telemetry_path: cli.telemetry_path.clone(),
        ..app::Options::default()
    };
    let running = app::start_with(&config, first, token.clone(), options).await?;
    if cli.demo {
        tracing::info!(
            "demo: open {scheme}://{}{} (landing page at /)",
            running.local_addr(),
            cli.telemetry_path
        );
    }
    if !cli.demo && !cli.auto_reload_interval.is_zero() {
        tokio::spawn(reload_on_change(
            config_path(&cli)?,
            cli.auto_reload_interval,
            reload_tx.clone(),
            token.clone(),
        ));
    }
    tokio::spawn(shutdown::reload_on_sighup(reload_tx, token.clone()));
    // Reloads, from SIGHUP or POST /-/reload, one at a time, until shutdown.
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            Some(reply) = reload_rx.recv() => {
                let outcome = reload(&cli, &running).await;
                match &outcome {
                    Ok(()) => tracing::info!("configuration reloaded"),
                    Err(e) => tracing::error!(error = %e, "reload refused; the running configuration is kept"),
                }
                let _ = reply.send(outcome.map_err(|e| e.to_string()));
            }
        }
    }
    running.wait().await;
    Ok(())
}

/// `--config.auto-reload-interval`: reads the configuration file every
/// `every` and asks for a reload when its content differs from the last
/// content seen (a digest, so a ConfigMap's symlink swap or a touched file
/// with the same content changes nothing). An unreadable file (mid-swap) is
/// skipped until the next check; an invalid one is refused once by the
/// reload, as SIGHUP's would be, and not retried until it changes again.
async fn reload_on_change(
    path: PathBuf,
    every: std::time::Duration,
    reloads: tokio::sync::mpsc::Sender<ReloadRequest>,
    token: CancellationToken,
) {
    use sha2::Digest;
    let digest = |path: &Path| {
        crate::secret::read_bounded(path, crate::config::MAX_CONFIG_BYTES)
            .map(|text| sha2::Sha256::digest(text.as_bytes()))
    };
    let mut last = digest(&path).ok();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let Ok(now) = digest(&path) else {
            continue;
        };
        if last.as_ref() == Some(&now) {
            continue;
        }
        last = Some(now);
        tracing::info!(file = %path.display(), "configuration file changed; reloading");
        let (reply, _outcome) = tokio::sync::oneshot::channel();
        if reloads.send(reply).await.is_err() {
            return;
        }
    }
}

/// Re-reads the configuration file and applies it.
async fn reload(cli: &Cli, running: &app::Running) -> Result<(), Error> {
    if cli.demo {
        return Err(Error::Reload(
            "the demo has no configuration file to reload".into(),
        ));
    }
    let config = Config::load(&config_path(cli)?)?;
    running.reload(&with_flags(cli, config)).await
}

/// Where to listen: every `--web.listen-address`, or the configuration's.
fn listen_addresses(cli: &Cli, config: &Config) -> Vec<SocketAddr> {
    if cli.listen_address.is_empty() {
        vec![config.web.listen_address]
    } else {
        cli.listen_address.clone()
    }
}

/// `--config`, or the default path when that file exists.
fn config_path(cli: &Cli) -> Result<PathBuf, Error> {
    if let Some(p) = &cli.config {
        return Ok(p.clone());
    }
    let default = Path::new(DEFAULT_CONFIG_PATH);
    if default.exists() {
        Ok(default.to_owned())
    } else {
        Err(Error::NoConfig)
    }
}

/// `--web.listen-address` (the first) and `--shard.*` override `[web]`
/// and `[sharding]`.
fn with_flags(cli: &Cli, mut config: Config) -> Config {
    if let Some(addr) = cli.listen_address.first() {
        config.web.listen_address = *addr;
    }
    if let Some(count) = cli.shard_count {
        config.sharding.count = count;
    }
    if let Some(index) = cli.shard_index {
        config.sharding.index = Some(index);
    }
    config
}

fn check_config(cli: &Cli) -> ExitCode {
    let (origin, config) = if cli.demo {
        let listen = cli
            .listen_address
            .first()
            .copied()
            .unwrap_or(demo::DEMO_LISTEN_ADDRESS);
        (
            "--demo".to_owned(),
            demo::config("http://127.0.0.1:0", listen, cli.demo_auth),
        )
    } else {
        let loaded = config_path(cli).and_then(|p| {
            let c = Config::load(&p)?;
            Ok((p.display().to_string(), c))
        });
        match loaded {
            Ok(c) => c,
            Err(e) => {
                telemetry::err(&e.to_string());
                return ExitCode::from(2);
            }
        }
    };
    let config = with_flags(cli, config);
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    match crate::app::shard(&config) {
        Err(e) => problems.push(format!("{origin}: {e}")),
        Ok(shard) => {
            // Only a warning: the directory may not exist before the first
            // start (systemd's StateDirectory, a volume mounted at run time).
            if let Some(path) = &config.state.path {
                if let Err(e) = crate::poller::checkpoint::writable(path, shard) {
                    warnings.push(format!(
                        "{origin}: warning: state.path: {e}; the exporter refuses to start until it can write there"
                    ));
                }
            }
        }
    }
    for (i, project) in config.projects.iter().enumerate() {
        for (what, source) in project.auth.sources() {
            if let Err(e) = source.resolve() {
                problems.push(format!("{origin}: projects[{i}].auth: {what}: {e}"));
            } else if let Some(w) = source.readability_warning() {
                // As the run warns.
                warnings.push(format!(
                    "{origin}: projects[{i}].auth: {what}: warning: {w}"
                ));
            }
        }
    }
    let web = match web_config(cli) {
        Ok(web) => web,
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    for w in &warnings {
        telemetry::err(w);
    }
    if !problems.is_empty() {
        for p in problems {
            telemetry::err(&p);
        }
        return ExitCode::from(2);
    }
    // Written so that a closed stdout (`--check-config | head -1`) ends
    // the output, not the process with a panic.
    telemetry::out(&format!("{origin}: configuration is valid\n"));
    telemetry::out(&config.summary());
    if let Some(web) = web {
        let active = web.current();
        telemetry::out(&format!(
            "{}: web configuration is valid: TLS {}, basic authentication {}\n",
            web.path().display(),
            if web.tls_enabled() { "on" } else { "off" },
            match &active.users {
                Some(users) => format!("on ({} users)", users.len()),
                None => "off".to_owned(),
            }
        ));
    }
    ExitCode::SUCCESS
}
