//! Integration tests, one binary with a module per area (it links once).
//!
//! - `auth`: AK/SK, temporary credentials, password tokens, rotation,
//!   back-off, secrets kept out of logs.
//! - `config`: configuration fixtures and the documented example.
//! - `containment`: one failure stays one failure, and costs once:
//!   permission denials, not-applicable snapshots, back-off per collector,
//!   tolerant decoding, gone functions, hanging functions (issue 11).
//! - `counting`: async invocations counted exactly once against the
//!   simulator's ground truth: busy functions, late records, a skewed API
//!   clock, long invocations, implausible dates, restarts with a state file.
//! - `docs`: README and docs/: the README's size, links and anchors that
//!   resolve, the documented flags the binary accepts.
//! - `deploy`: the files under `deploy/`: alert rules (promtool, a real
//!   Prometheus), the dashboard's queries, example configurations, probes.
//! - `exporter`: the simulator and the exporter end to end over loopback HTTP.
//! - `cli`: the built binary: `--check-config`, `--demo`, signals, promtool,
//!   listen addresses, telemetry path, systemd socket activation.
//! - `reload`: SIGHUP, `POST /-/reload` and `--config.auto-reload-interval`
//!   on the running binary.
//! - `scale`: discovery, sharding, several projects, API cost, rate limit,
//!   statistics and quotas.
//! - `security`: issue 10's probes: redirects elsewhere, the lifecycle
//!   endpoint, hostile upstream data and its caps, odd secret files,
//!   broken pipes, a password-guessing flood.
//! - `failures`: exemplars (checked by a strict OpenMetrics parser),
//!   failures by error code, the `/failures` page, one log line per failure.
//! - `faults`: retries, throttling, hangs, huge bodies, staleness, hostile
//!   names, the function cap, overruns, many scrapers.
//! - `golden`: a fixed scenario's exposition against a checked-in file.
//! - `web`: `--web.config.file` (basic auth, TLS and certificate rotation,
//!   mutual TLS, start-up validation), OpenMetrics negotiation, gzip.

mod auth;
mod cli;
mod config;
mod containment;
mod counting;
mod deploy;
mod docs;
mod exporter;
mod failures;
mod faults;
mod golden;
mod reload;
mod scale;
mod security;
mod util;
mod web;
