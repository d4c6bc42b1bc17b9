//! `--web.config.file`: TLS and basic authentication for the HTTP server,
//! in the Prometheus exporter-toolkit's web configuration format, so the
//! same file (and `promtool check web-config`) works here as for any Go
//! exporter. The file's keys are described in [`config`].
//!
//! [`LiveWebConfig`] owns the file. It is read and fully validated (YAML,
//! bcrypt hashes, certificates, key, client CA) at start-up, where any
//! problem stops the exporter. After that, like exporter-toolkit, it is
//! re-read so that a rotated certificate needs no restart, but at most once
//! per new connection, not per request: each new connection stats the web
//! configuration file and the certificate, key and client CA files it names
//! (size, modification and change times, inode), and only when one of them
//! changed are they read again. A rotated certificate is thus served from
//! the next new connection on; a changed user list applies to every
//! request from the next new connection on. If the new content is invalid,
//! the last good configuration stays in force and the error is logged once
//! (until the files change again). Whether the server speaks TLS at all is
//! fixed at start-up: a reload that turns TLS on or off is refused, as
//! exporter-toolkit does not switch either.

pub mod auth;
pub mod config;
pub mod tls;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::secret::debug_only;
use crate::sync::MutexExt;
use hyper::header::{HeaderName, HeaderValue};

pub use config::{WebConfig, WebConfigError};

/// The largest web configuration file read.
const MAX_WEB_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// The web configuration in force: what a connection and its requests use.
pub struct Active {
    /// The TLS server configuration; `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Basic authentication users; `None`: no authentication.
    pub users: Option<Arc<auth::Users>>,
    /// Extra headers for every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl fmt::Debug for Active {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Active")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users)
            .field("headers", &self.headers)
            .finish()
    }
}

/// A web configuration file, loaded and re-read when it changes.
pub struct LiveWebConfig {
    path: PathBuf,
    tls: bool,
    state: Mutex<State>,
    /// Whether the active configuration has users, kept beside `state`
    /// so that reading it (at every scrape) takes no lock.
    basic_auth: AtomicBool,
    verifier: auth::Verifier,
}

debug_only!(LiveWebConfig: path, tls);

struct State {
    /// The files as they were when last read (good or not).
    stamp: Vec<Option<FileStamp>>,
    /// The files the last readable configuration named.
    files: Vec<PathBuf>,
    active: Arc<Active>,
}

/// What tells that a file changed without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64, i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            len: m.len(),
            modified: m.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (m.dev(), m.ino(), m.ctime(), m.ctime_nsec())
            },
        })
    }
}

fn stamps(path: &Path, files: &[PathBuf]) -> Vec<Option<FileStamp>> {
    std::iter::once(path)
        .chain(files.iter().map(PathBuf::as_path))
        .map(FileStamp::of)
        .collect()
}

/// One reading of the configuration: the stamps taken before reading, the
/// files it names, and the result.
struct Attempt {
    stamp: Vec<Option<FileStamp>>,
    files: Vec<PathBuf>,
    result: Result<(Active, Vec<String>), WebConfigError>,
}

fn attempt(path: &Path, previous_files: &[PathBuf]) -> Attempt {
    let config_stamp = FileStamp::of(path);
    let text = match crate::secret::read_bounded(path, MAX_WEB_CONFIG_BYTES) {
        Ok(t) => t,
        Err(source) => {
            return Attempt {
                stamp: std::iter::once(config_stamp)
                    .chain(previous_files.iter().map(|f| FileStamp::of(f)))
                    .collect(),
                files: previous_files.to_vec(),
                result: Err(WebConfigError::Read {
                    path: path.display().to_string(),
                    source,
                }),
            };
        }
    };
    let parsed = WebConfig::parse(&text, path);
    let files = match &parsed {
        Ok(c) => c.tls.as_ref().map(|t| t.files()).unwrap_or_default(),
        Err(_) => previous_files.to_vec(),
    };
    let stamp = std::iter::once(config_stamp)
        .chain(files.iter().map(|f| FileStamp::of(f)))
        .collect();
    let result = parsed.and_then(|c| {
        let tls = match &c.tls {
            Some(settings) => {
                Some(tls::server_config(settings).map_err(|d| WebConfigError::invalid(path, d))?)
            }
            None => None,
        };
        let users = (!c.users.is_empty()).then(|| Arc::new(auth::Users::new(c.users)));
        Ok((
            Active {
                tls,
                users,
                headers: c.headers,
            },
            c.warnings,
        ))
    });
    Attempt {
        stamp,
        files,
        result,
    }
}

impl LiveWebConfig {
    /// Reads and validates the file and everything it names. An error here
    /// should stop the exporter (exit code 2).
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, WebConfigError> {
        let path = path.into();
        let Attempt {
            stamp,
            files,
            result,
        } = attempt(&path, &[]);
        let (active, warnings) = result?;
        for w in &warnings {
            tracing::warn!(file = %path.display(), "web configuration: {w}");
        }
        tracing::info!(
            file = %path.display(),
            tls = active.tls.is_some(),
            basic_auth_users = active.users.as_ref().map_or(0, |u| u.len()),
            "web configuration loaded"
        );
        Ok(Self {
            path,
            tls: active.tls.is_some(),
            basic_auth: AtomicBool::new(active.users.is_some()),
            state: Mutex::new(State {
                stamp,
                files,
                active: Arc::new(active),
            }),
            verifier: auth::Verifier::new(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the server speaks TLS (fixed at start-up).
    pub fn tls_enabled(&self) -> bool {
        self.tls
    }

    /// Whether requests need basic authentication under the configuration
    /// in force.
    pub fn basic_auth_enabled(&self) -> bool {
        self.basic_auth.load(Ordering::Acquire)
    }

    /// The configuration for a new connection: re-reads the files if any
    /// of them changed since they were last read.
    pub fn refresh(&self) -> Arc<Active> {
        let mut state = self.state.lock_or_recover();
        if stamps(&self.path, &state.files) == state.stamp {
            return Arc::clone(&state.active);
        }
        let Attempt {
            stamp,
            files,
            result,
        } = attempt(&self.path, &state.files);
        state.stamp = stamp;
        state.files = files;
        let result = result.and_then(|(active, warnings)| {
            if active.tls.is_some() == self.tls {
                Ok((active, warnings))
            } else {
                Err(WebConfigError::invalid(
                    &self.path,
                    "turning TLS on or off needs a restart",
                ))
            }
        });
        match result {
            Ok((active, warnings)) => {
                for w in &warnings {
                    tracing::warn!(file = %self.path.display(), "web configuration: {w}");
                }
                if state.active.users.is_some() && active.users.is_none() {
                    // Never silent: every path is now open to anyone who can
                    // reach the port (also visible in
                    // functiongraph_exporter_web_basic_auth_enabled).
                    tracing::warn!(
                        file = %self.path.display(),
                        "web configuration reloaded WITHOUT basic authentication: it was on and is now off; every path is open to anyone who can reach the port"
                    );
                } else {
                    tracing::info!(
                        file = %self.path.display(),
                        basic_auth_users = active.users.as_ref().map_or(0, |u| u.len()),
                        "web configuration reloaded"
                    );
                }
                self.basic_auth
                    .store(active.users.is_some(), Ordering::Release);
                state.active = Arc::new(active);
            }
            Err(e) => tracing::error!(
                error = %e,
                "web configuration not reloaded; keeping the last good one"
            ),
        }
        Arc::clone(&state.active)
    }

    /// The configuration in force, without looking at the files.
    pub fn current(&self) -> Arc<Active> {
        Arc::clone(&self.state.lock_or_recover().active)
    }

    /// Whether a request from `client` with this `Authorization` header may
    /// proceed under `active`: always when no users are configured.
    pub async fn authorize(
        &self,
        active: &Active,
        authorization: Option<&HeaderValue>,
        client: std::net::IpAddr,
    ) -> auth::Verdict {
        match &active.users {
            None => auth::Verdict::Allowed,
            Some(users) => self.verifier.check(users, authorization, client).await,
        }
    }
}
