//! Wiring: builds clients, the poller, the store and the HTTP server from a
//! [`Config`], starts them, and stops them in order.
//!
//! [`start`] takes an already bound listener and a cancellation token, so
//! the binary, the demo and the tests all run the exporter the same way
//! (the tests on `127.0.0.1:0`). [`Running::reload`] applies a new
//! configuration to the running poller without losing counters.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::api::{
    ApiObserver, Client, ClientOptions, Concurrency, Credentials, PasswordTokens, http_client,
};
use crate::caps::{CapCounters, Caps};
use crate::clock::{Clock, SystemClock};
use crate::config::{AuthMethod, Config, MAX_AUTH_BACKOFF, ProjectConfig};
use crate::exposition::exporter::ServingSecurity;
use crate::exposition::{ExporterMetrics, Format, Renderer};
use crate::poller::{
    Checkpoint, Poller, PollerHandle, ProjectTarget, Settings, Shard, TrackerSettings,
};
use crate::secret::SecretCell;
use crate::server::{self, Readiness, ReloadRequest, ServerState};
use crate::state::Store;
use crate::sync::MutexExt;
use crate::web::LiveWebConfig;

/// A running exporter.
pub struct Running {
    local_addr: SocketAddr,
    poller: PollerHandle,
    store: Arc<Store>,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
    polling: JoinHandle<()>,
    /// What a reload builds new clients with.
    parts: Parts,
    /// The configuration in force (for what a reload cannot change).
    config: std::sync::Mutex<Config>,
    /// Each project's configuration and client, for a reload to carry over
    /// the state of credentials that did not change.
    clients: std::sync::Mutex<Vec<(ProjectConfig, Arc<Client>)>>,
}

/// What outlives a reload: the HTTP client, the exporter's own metrics and
/// the clock.
struct Parts {
    http: reqwest::Client,
    exporter: Arc<ExporterMetrics>,
    clock: Arc<dyn Clock>,
    /// The durable counting state, when `[state] path` is set.
    checkpoint: Option<Arc<Checkpoint>>,
}

impl Running {
    /// Where `/metrics` is served.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn poller(&self) -> &PollerHandle {
        &self.poller
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Applies a new configuration: secrets are read and clients built
    /// first, so an invalid configuration changes nothing; then functions
    /// are added and removed, and the others carry on with their counters.
    /// The listen address and the web configuration file are not changed by
    /// a reload (the latter is re-read on its own).
    ///
    /// A project whose endpoint and credentials did not change keeps its
    /// authentication state (the back-off after a refusal, the cached IAM
    /// token) and, if its rate did not change, its rate limiter: a reload
    /// must not let a refused access key be tried again early, which would
    /// count towards the gateway's lock-out.
    pub async fn reload(&self, config: &Config) -> Result<(), Error> {
        let previous = self.clients.lock_or_recover().clone();
        let (projects, settings) = build(config, &self.parts, &previous)?;
        let clients = clients_of(config, &projects);
        {
            let current = self.config.lock_or_recover();
            if current.web.listen_address != config.web.listen_address {
                tracing::warn!(
                    running = %current.web.listen_address,
                    configured = %config.web.listen_address,
                    "web.listen_address changes take effect at the next restart"
                );
            }
            if current.state.path != config.state.path {
                tracing::warn!(
                    running = ?current.state.path,
                    configured = ?config.state.path,
                    "state.path changes take effect at the next restart"
                );
            }
        }
        self.poller
            .reconfigure(projects, settings)
            .await
            .map_err(|_| Error::Stopped)?;
        *self.config.lock_or_recover() = config.clone();
        *self.clients.lock_or_recover() = clients;
        Ok(())
    }

    /// Stops polling and serving (in-flight responses finish) and waits.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.wait().await;
    }

    /// Waits until the shutdown token given to [`start`] is cancelled and
    /// everything has stopped.
    pub async fn wait(self) {
        let _ = self.polling.await;
        let _ = self.server.await;
    }
}

/// What can be changed about how the exporter runs, beyond its config.
pub struct Options {
    /// Dates signatures and times credential expiry and back-off.
    pub clock: Arc<dyn Clock>,
    /// `--web.config.file`, loaded: TLS and basic authentication.
    pub web: Option<Arc<LiveWebConfig>>,
    /// Where `POST /-/reload` asks for a reload (the binary answers them);
    /// `None`, the lifecycle API is off and it answers 403.
    pub reload: Option<tokio::sync::mpsc::Sender<ReloadRequest>>,
    /// More listeners served like the first (repeated
    /// `--web.listen-address`, or several sockets from systemd).
    pub extra_listeners: Vec<TcpListener>,
    /// `--web.telemetry-path`: where the metrics are served.
    pub telemetry_path: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            web: None,
            reload: None,
            extra_listeners: Vec::new(),
            telemetry_path: server::DEFAULT_TELEMETRY_PATH.to_owned(),
        }
    }
}

/// Starts the exporter: every secret is read and every client built before
/// anything runs, so a bad credential source fails start-up, not the first
/// poll.
pub async fn start(
    config: &Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<Running, Error> {
    start_with(config, listener, shutdown, Options::default()).await
}

/// [`start`], with [`Options`].
pub async fn start_with(
    config: &Config,
    listener: TcpListener,
    shutdown: CancellationToken,
    options: Options,
) -> Result<Running, Error> {
    let local_addr = listener.local_addr().map_err(Error::Io)?;
    let caps = Arc::new(CapCounters::new());
    let checkpoint = match &config.state.path {
        Some(path) => {
            let checkpoint = Arc::new(
                Checkpoint::open(
                    path,
                    shard(config)?,
                    config.polling.async_lookback,
                    Arc::clone(&options.clock),
                )
                .map_err(Error::State)?,
            );
            tokio::spawn(Arc::clone(&checkpoint).run(shutdown.clone()));
            Some(checkpoint)
        }
        None => None,
    };
    let parts = Parts {
        http: http_client(config.polling.timeout)?,
        exporter: Arc::new(ExporterMetrics::with_caps(Arc::clone(&caps))),
        clock: Arc::clone(&options.clock),
        checkpoint,
    };
    parts.exporter.set_security(
        options
            .web
            .clone()
            .map(|w| Arc::new(WebSecurity(w)) as Arc<dyn ServingSecurity>),
    );
    let (projects, settings) = build(config, &parts, &[])?;
    let clients = clients_of(config, &projects);
    let store = Arc::new(Store::with_caps(caps));
    let (poller, handle) = Poller::new(projects, Arc::clone(&store), settings);
    let polling = tokio::spawn(poller.run(shutdown.clone()));
    let renderer = Arc::new(Renderer::new(
        Arc::clone(&store),
        Arc::clone(&parts.exporter),
    ));
    tokio::spawn(warm_up(
        Arc::clone(&renderer),
        handle.ready_signal(),
        shutdown.clone(),
    ));
    let state = Arc::new(ServerState {
        renderer,
        store: Arc::clone(&store),
        readiness: Readiness::new(handle.ready_signal()),
        interval: config.polling.interval,
        web: options.web.clone(),
        reload: options.reload.clone(),
        reload_limiter: server::reload_limiter(),
        telemetry_path: options.telemetry_path.clone(),
    });
    let scheme = match &options.web {
        Some(w) if w.tls_enabled() => "https",
        _ => "http",
    };
    let mut listeners = vec![listener];
    listeners.extend(options.extra_listeners);
    for l in &listeners {
        let address = l.local_addr().map_err(Error::Io)?;
        tracing::info!(%address, "serving metrics on {scheme}://{address}{}", options.telemetry_path);
    }
    let server = tokio::spawn(server::serve(listeners, state, shutdown.clone()));
    Ok(Running {
        local_addr,
        poller: handle,
        store,
        shutdown,
        server,
        polling,
        parts,
        config: std::sync::Mutex::new(config.clone()),
        clients: std::sync::Mutex::new(clients),
    })
}

/// Once the first cycle is complete, renders the body Prometheus asks for
/// (OpenMetrics, gzip) once in the background: the first scrape then
/// encodes only what changed since, instead of every function (at 10,000
/// functions, a few milliseconds instead of about 200).
async fn warm_up(
    renderer: Arc<Renderer>,
    mut ready: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = shutdown.cancelled() => return,
        ready = ready.wait_for(|ready| *ready) => if ready.is_err() { return },
    }
    let render = move || renderer.body(Format::OpenMetrics, true);
    if let Err(e) = tokio::task::spawn_blocking(render).await {
        tracing::warn!(error = %e, "rendering the first exposition in the background");
    }
}

/// Each project's configuration with the client built for it.
fn clients_of(config: &Config, targets: &[ProjectTarget]) -> Vec<(ProjectConfig, Arc<Client>)> {
    config
        .projects
        .iter()
        .zip(targets)
        .map(|(p, t)| (p.clone(), Arc::clone(&t.client)))
        .collect()
}

/// Reads every secret and builds every client a configuration needs;
/// a project in `previous` with the same endpoint and credentials hands its
/// authentication state (and rate limiter) on to the new client.
fn build(
    config: &Config,
    parts: &Parts,
    previous: &[(ProjectConfig, Arc<Client>)],
) -> Result<(Vec<ProjectTarget>, Settings), Error> {
    let observer: Arc<dyn ApiObserver> = parts.exporter.clone();
    let permits = Arc::new(Concurrency::new(config.polling.concurrency));
    let shard = shard(config)?;
    parts.exporter.set_shard(shard.index, shard.count);
    // With several projects, none may take more than half the slots, so a
    // project whose API hangs cannot stall the others.
    let max_in_flight = match config.projects.len() {
        0 | 1 => config.polling.concurrency,
        _ => config.polling.concurrency.div_ceil(2),
    };
    let mut targets = Vec::new();
    for project in &config.projects {
        parts.exporter.init_project(&project.project_id);
        let credentials = credentials(project, config, parts, &observer)?;
        let client = Client::new(
            ClientOptions {
                endpoint: project.endpoint.clone(),
                project_id: project.project_id.clone(),
                timeout: config.polling.timeout,
                max_body_bytes: config.polling.max_response_bytes,
                auth_backoff: project.auth.failure_backoff,
                max_auth_backoff: MAX_AUTH_BACKOFF,
                max_requests_per_second: project.max_requests_per_second,
                max_in_flight,
                retries: config.polling.retries,
                // A request and its retries end within half a cycle, so a
                // poll does not run into the next one.
                retry_budget: config.polling.intervals.cycle() / 2,
            },
            parts.http.clone(),
            credentials,
            Arc::clone(&parts.clock),
            Arc::clone(&permits),
            Arc::clone(&observer),
        )?;
        let same = previous.iter().find(|(p, _)| {
            p.project_id == project.project_id
                && p.endpoint == project.endpoint
                && p.auth == project.auth
                && p.allow_insecure_http == project.allow_insecure_http
        });
        let client = match same {
            Some((p, old)) => {
                tracing::debug!(project_id = %project.project_id, "credentials unchanged; keeping their state");
                client.inherit(
                    old,
                    p.max_requests_per_second == project.max_requests_per_second,
                )
            }
            None => client,
        };
        tracing::info!(
            project_id = %project.project_id,
            endpoint = %project.endpoint,
            auth = %project.auth.describe(),
            functions = project.functions.len(),
            discovery = project.discovery.is_some(),
            "project configured"
        );
        targets.push(ProjectTarget {
            project_id: project.project_id.clone(),
            region: project.region.clone(),
            client: Arc::new(client),
            explicit: project.functions.clone(),
            discovery: project.discovery.clone(),
        });
    }
    let settings = Settings {
        intervals: config.polling.intervals.clone(),
        stale_after: config.polling.stale_after,
        max_functions: config.polling.max_functions,
        tracker: TrackerSettings {
            lookback: seconds(config.polling.async_lookback),
            late_visibility: seconds(config.polling.async_late_visibility),
            max_duration: seconds(config.polling.async_max_duration),
            max_records: config.polling.max_tracked_invocations,
            interval: seconds(config.polling.intervals.async_invocations),
            recent_failures: config.failures.keep,
            max_error_codes: config.failures.max_error_codes,
            log_failures: config.failures.log,
            buckets: config.polling.async_duration_buckets,
        },
        checkpoint: parts.checkpoint.clone(),
        statistics_period: config
            .collectors
            .statistics
            .then_some(config.collectors.statistics_period_minutes),
        quotas: config.collectors.quotas,
        concurrency: config.polling.concurrency,
        shard,
        clock: Arc::clone(&parts.clock),
        caps: Caps {
            max_label_length: config.polling.max_label_length,
            max_versions: config.polling.max_versions,
            max_quota_types: config.polling.max_quota_types,
        },
    };
    Ok((targets, settings))
}

fn seconds(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// This replica's shard: from the configuration (and flags), or from the
/// host name's StatefulSet ordinal when only the count is given.
pub fn shard(config: &Config) -> Result<Shard, Error> {
    let count = config.sharding.count;
    let index = match config.sharding.index {
        Some(i) => i,
        None if count <= 1 => 0,
        None => {
            let hostname = std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .unwrap_or_default();
            crate::poller::shard::ordinal_of(&hostname).ok_or_else(|| {
                Error::Shard(format!(
                    "sharding.count is {count} but no shard index was given and the host name {:?} has no StatefulSet ordinal (name-N); set --shard.index",
                    hostname.trim()
                ))
            })?
        }
    };
    if index >= count {
        return Err(Error::Shard(format!(
            "shard index {index} must be below the shard count {count}"
        )));
    }
    Ok(Shard { index, count })
}

/// Reads a project's secrets and builds its credentials.
fn credentials(
    project: &ProjectConfig,
    config: &Config,
    parts: &Parts,
    observer: &Arc<dyn ApiObserver>,
) -> Result<Credentials, Error> {
    let index = config
        .projects
        .iter()
        .position(|p| p.project_id == project.project_id)
        .unwrap_or_default();
    // `what` is the key in the file without its `_file`/`_env` ending.
    let load = |source: &crate::secret::SecretSource, what: &str| {
        let key = match source {
            crate::secret::SecretSource::File(_) => format!("{what}_file"),
            crate::secret::SecretSource::Env(_) => format!("{what}_env"),
            crate::secret::SecretSource::Inline(_) => what.to_owned(),
        };
        SecretCell::load(source.clone())
            .map(|cell| cell.named(format!("{}: projects[{index}].auth.{key}", config.origin)))
            .map_err(|source| Error::Secret {
                project_id: project.project_id.clone(),
                source,
            })
    };
    Ok(match &project.auth.method {
        AuthMethod::AkSk {
            access_key,
            secret_key,
            security_token,
        } => Credentials::AkSk {
            access_key: load(access_key, "access_key")?,
            secret_key: load(secret_key, "secret_key")?,
            security_token: security_token
                .as_ref()
                .map(|s| load(s, "security_token"))
                .transpose()?,
        },
        AuthMethod::Password {
            user_name,
            domain_name,
            password,
            iam_endpoint,
        } => Credentials::Password(PasswordTokens::new(
            user_name.clone(),
            domain_name.clone(),
            load(password, "password")?,
            iam_endpoint.clone(),
            project.project_id.clone(),
            parts.http.clone(),
            config.polling.timeout,
            Arc::clone(&parts.clock),
            Arc::clone(observer),
        )),
        AuthMethod::Token(source) => Credentials::Token(load(source, "token")?),
    })
}

/// `--web.systemd-socket`: the TCP sockets systemd passed to the process
/// (socket activation: `LISTEN_FDS`, for this process's `LISTEN_PID`).
pub fn systemd_listeners() -> Result<Vec<TcpListener>, Error> {
    let mut fds = listenfd::ListenFd::from_env();
    let mut listeners = Vec::new();
    for i in 0..fds.len() {
        let socket = fds
            .take_tcp_listener(i)
            .map_err(|e| Error::SystemdSocket(format!("socket {i}: {e}")))?;
        if let Some(socket) = socket {
            socket
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(socket))
                .map(|l| listeners.push(l))
                .map_err(|e| Error::SystemdSocket(format!("socket {i}: {e}")))?;
        }
    }
    if listeners.is_empty() {
        return Err(Error::SystemdSocket(
            "no TCP socket was passed (LISTEN_FDS unset, or LISTEN_PID is another process): start the exporter from a systemd .socket unit, or drop the flag".into(),
        ));
    }
    Ok(listeners)
}

/// The web configuration in force, as the exporter's own metrics report it
/// (`functiongraph_exporter_web_tls_enabled`,
/// `functiongraph_exporter_web_basic_auth_enabled`): wired here, so that
/// neither `web` nor `exposition` knows the other.
struct WebSecurity(Arc<LiveWebConfig>);

impl ServingSecurity for WebSecurity {
    fn tls(&self) -> bool {
        self.0.tls_enabled()
    }

    fn basic_auth(&self) -> bool {
        self.0.basic_auth_enabled()
    }
}

/// Binds the listen address with an error that names it.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}
