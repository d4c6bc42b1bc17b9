//! Integration tests, one binary with a module per area (it links once).
//!
//! - `auth`: AK/SK, temporary credentials, password tokens, rotation,
//!   back-off, secrets kept out of logs.
//! - `config`: configuration fixtures and the documented example.
//! - `exporter`: the simulator and the exporter end to end over loopback HTTP.
//! - `cli`: the built binary: `--check-config`, `--demo`, signals, promtool.
//! - `golden`: a fixed scenario's exposition against a checked-in file.

mod auth;
mod cli;
mod config;
mod deploy;
mod exporter;
mod golden;
mod util;
