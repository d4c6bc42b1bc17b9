//! A Prometheus exporter for Huawei Cloud FunctionGraph.
//!
//! It polls, for every monitored function, four FunctionGraph APIs
//! (asynchronous invocation records, versions, code information, snapshot
//! state) in the background, and serves what it found on `/metrics` from
//! memory, however often it is scraped.
//!
//! # Layout
//!
//! - [`cli`]: flags, modes (`--demo`, `--check-config`) and exit codes.
//! - [`config`]: the TOML file, parsed and validated into [`config::Config`].
//! - [`app`]: wiring; starts the poller and the server from a config.
//! - [`api`]: the FunctionGraph client (requests, pagination, errors,
//!   tolerant decoding). Knows nothing of Prometheus.
//! - [`poller`]: the schedule and the per-function collectors' polling
//!   logic; publishes reports to the [`state::Store`].
//! - [`state`]: the plain-data reports that connect the poller and the
//!   exposition.
//! - [`exposition`]: reports and self-metrics to the Prometheus exposition.
//!   Knows nothing of HTTP.
//! - [`server`]: `/metrics` (format negotiation, gzip), `/`, `/-/healthy`,
//!   `/-/ready`; graceful shutdown.
//! - [`web`]: `--web.config.file` (exporter-toolkit format): TLS, basic
//!   authentication, reloading the file when it changes.
//! - `simulator`: a FunctionGraph API simulator for `--demo` and tests,
//!   in builds with the `demo` cargo feature (on by default).
//! - [`buckets`]: the bounds of the async duration histogram, checked
//!   from the configuration.
//! - [`caps`]: the bounds on upstream data (string lengths, list sizes)
//!   and the counts of what they dropped, as plain data.
//! - [`sync`]: locks that recover from poisoning, and why.
//! - [`mirror`]: bytes also kept in a sealed memory file, which the server
//!   sends with `sendfile` rather than copying (expositions served many
//!   times a second).
//! - [`demo`], [`telemetry`], [`shutdown`], [`secret`], [`urn`], [`timefmt`],
//!   [`clock`]: the demo set-up, logging, signals, redacted secrets (and
//!   secret files that are re-read when they change), function URNs, the
//!   API's time formats, and a clock tests can move; `named`, the macro
//!   for enums whose variants are label values.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod accept;
pub mod api;
pub mod app;
pub mod buckets;
pub mod caps;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod exposition;
pub mod mirror;
mod named;
pub mod poller;
pub mod secret;
pub mod server;
pub mod shutdown;
#[cfg(test)]
mod signing_vectors;
#[cfg(feature = "demo")]
pub mod simulator;
pub mod state;
pub mod sync;
pub mod telemetry;
pub mod timefmt;
pub mod urn;
pub mod web;

use std::net::SocketAddr;

/// Why the exporter could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(
        "no configuration: pass --config.file FILE, create {}, or try --demo",
        config::DEFAULT_CONFIG_PATH
    )]
    NoConfig,
    #[error("project {project_id}: reading credentials: {source}")]
    Secret {
        project_id: String,
        #[source]
        source: secret::SecretError,
    },
    #[error(transparent)]
    Client(#[from] api::BuildError),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("sharding: {0}")]
    Shard(String),
    #[error("--web.systemd-socket: {0}")]
    SystemdSocket(String),
    #[error("state.path: {0}")]
    State(std::io::Error),
    #[error("the exporter is shutting down")]
    Stopped,
    #[error("reload: {0}")]
    Reload(String),
    #[error("{0}")]
    Io(std::io::Error),
    #[error(
        "--demo: this binary was built without the simulator (cargo feature `demo`); build it with the default features (`cargo build --release`) to run the demo"
    )]
    DemoUnavailable,
}

impl Error {
    /// The process exit code for this error: 2 for configuration problems,
    /// 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_)
            | Error::NoConfig
            | Error::Secret { .. }
            | Error::Shard(_)
            | Error::State(_)
            | Error::DemoUnavailable => 2,
            Error::Client(_)
            | Error::Bind { .. }
            | Error::SystemdSocket(_)
            | Error::Io(_)
            | Error::Stopped
            | Error::Reload(_) => 1,
        }
    }
}
