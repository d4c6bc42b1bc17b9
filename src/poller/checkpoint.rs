//! The durable counting state: `[state] path`.
//!
//! After every poll of a function, what its counters need (counter values,
//! pending invocations, digests of the settled ones a listing may still
//! return, the window position) is written to one file, atomically: a
//! temporary file beside it is written and `fsync`ed, renamed over the old
//! one, and the directory `fsync`ed. Writes are coalesced: polls that end
//! while a write is under way go into the next one together.
//!
//! A poll's results are published (and so scraped) only once they are in
//! the file. Otherwise a crash could bring back counters lower than
//! Prometheus has already seen, which it would take for a counter reset and
//! count the whole value again.
//!
//! At start-up the file is read once. A missing, unreadable, corrupt,
//! foreign (another format or another shard) or too old (saved more than
//! the lookback ago) file gives one warning, and every function starts from
//! a fresh baseline; nothing is counted twice either way.
//!
//! File layout: the magic `FGESTATE`, a format version (u32 LE), the CRC32
//! of the payload (u32 LE), then the payload in postcard.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::{Shard, TrackerState};
use crate::clock::Clock;
use crate::sync::MutexExt;

const MAGIC: &[u8; 8] = b"FGESTATE";
const FORMAT_VERSION: u32 = 1;
/// Writes are spaced by at least this many times the last write's
/// duration, so a large state cannot keep the disk busy.
const SPACING_FACTOR: u32 = 4;
/// Longest pause between two writes when polls keep ending.
const MAX_SPACING: Duration = Duration::from_secs(2);

/// What is kept of one function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionState {
    pub tracker: TrackerState,
    /// Code digest changes counted so far.
    pub code_changes: u64,
}

/// The file's payload.
#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    shard_index: u32,
    shard_count: u32,
    /// Unix seconds, local clock.
    saved_at: i64,
    /// Function URN, and its [`FunctionState`] in postcard.
    functions: Vec<(String, Vec<u8>)>,
}

/// Why a state file was not used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("it does not exist yet")]
    Missing,
    #[error("reading it: {0}")]
    Read(std::io::Error),
    #[error("it is not a state file of this exporter")]
    Foreign,
    #[error("it has format version {0}, this exporter reads version {FORMAT_VERSION}")]
    Version(u32),
    #[error("it is corrupt ({0})")]
    Corrupt(String),
    #[error("it belongs to shard {found_index} of {found_count}, this is shard {index} of {count}")]
    OtherShard {
        found_index: u32,
        found_count: u32,
        index: u32,
        count: u32,
    },
    #[error("it was saved {0} ago, longer than polling.async_lookback")]
    TooOld(String),
}

/// Keeps the state file of this exporter (this shard).
pub struct Checkpoint {
    path: PathBuf,
    shard: Shard,
    clock: Arc<dyn Clock>,
    /// What the file was read with, handed out once per function.
    loaded: Mutex<HashMap<String, FunctionState>>,
    entries: Mutex<Entries>,
    wake: Notify,
    /// The newest version of `entries` that is on disk.
    durable: watch::Sender<u64>,
}

#[derive(Default)]
struct Entries {
    /// Function URN to its state in postcard.
    functions: BTreeMap<String, Arc<[u8]>>,
    /// Bumped by every change.
    version: u64,
    /// The last write failed (logged once per change).
    failing: bool,
}

impl Checkpoint {
    /// Reads the state file at `path` (`{shard}` replaced by this shard's
    /// index). A file that cannot be used is reported once at WARN and
    /// ignored: counting starts from a fresh baseline. A directory where the
    /// file cannot be written is an error: better to refuse to start than
    /// to promise durability and not keep it.
    pub fn open(
        path: &Path,
        shard: Shard,
        max_age: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, std::io::Error> {
        let path = writable(path, shard)?;
        let loaded = match read(&path, shard, max_age, clock.unix()) {
            Ok(functions) => {
                tracing::info!(
                    path = %path.display(),
                    functions = functions.len(),
                    "counting state restored; counters carry on from it"
                );
                functions
            }
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    "state file not used: {e}; counting starts from a fresh baseline"
                );
                HashMap::new()
            }
        };
        let (durable, _) = watch::channel(0);
        Ok(Self {
            path,
            shard,
            clock,
            loaded: Mutex::new(loaded),
            entries: Mutex::new(Entries::default()),
            wake: Notify::new(),
            durable,
        })
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The restored state of a function, once.
    pub fn take(&self, urn: &str) -> Option<FunctionState> {
        lock(&self.loaded).remove(urn)
    }

    /// Records a function's state and returns once it is on disk (or the
    /// write failed, which is logged).
    pub async fn save(&self, urn: &str, state: &FunctionState) {
        let bytes = match postcard::to_allocvec(state) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(function = urn, error = %e, "encoding the counting state");
                return;
            }
        };
        let version = {
            let mut entries = lock(&self.entries);
            entries.functions.insert(urn.to_owned(), bytes.into());
            entries.version += 1;
            entries.version
        };
        self.wait_durable(version).await;
    }

    /// Forgets a function that is no longer monitored (at the next write).
    pub fn forget(&self, urn: &str) {
        let mut entries = lock(&self.entries);
        if entries.functions.remove(urn).is_some() {
            entries.version += 1;
            drop(entries);
            self.wake.notify_one();
        }
    }

    async fn wait_durable(&self, version: u64) {
        let mut rx = self.durable.subscribe();
        self.wake.notify_one();
        // The writer only stops with the process; an error means it did.
        let _ = rx.wait_for(|v| *v >= version).await;
    }

    /// Writes the file whenever something changed, until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut written = 0;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
            }
            let (version, functions) = {
                let entries = lock(&self.entries);
                (entries.version, entries.functions.clone())
            };
            if version == written {
                continue;
            }
            let started = Instant::now();
            let this = Arc::clone(&self);
            let result = tokio::task::spawn_blocking(move || this.write(&functions))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            self.settle(&result);
            written = version;
            self.durable.send_replace(version);
            let pause = started
                .elapsed()
                .saturating_mul(SPACING_FACTOR)
                .min(MAX_SPACING);
            if !pause.is_zero() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
            // Changes made meanwhile are written next.
            if lock(&self.entries).version != written {
                self.wake.notify_one();
            }
        }
    }

    /// Logs a write's outcome once per change. After a failure the old file
    /// is removed: a restart from it would bring back lower counters.
    fn settle(&self, result: &std::io::Result<()>) {
        let mut entries = lock(&self.entries);
        match result {
            Ok(()) if entries.failing => {
                entries.failing = false;
                tracing::info!(path = %self.path.display(), "counting state written again");
            }
            Ok(()) => {}
            Err(e) => {
                if !entries.failing {
                    entries.failing = true;
                    tracing::error!(
                        path = %self.path.display(),
                        error = %e,
                        "writing the counting state failed; a restart now starts from a fresh baseline"
                    );
                }
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }

    fn write(&self, functions: &BTreeMap<String, Arc<[u8]>>) -> std::io::Result<()> {
        let saved_at = self.clock.unix().floor() as i64;
        let file = StateFile {
            shard_index: self.shard.index,
            shard_count: self.shard.count,
            saved_at,
            functions: functions
                .iter()
                .map(|(urn, bytes)| (urn.clone(), bytes.to_vec()))
                .collect(),
        };
        let payload = postcard::to_allocvec(&file).map_err(std::io::Error::other)?;
        let mut out = Vec::with_capacity(payload.len() + 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&zlib_rs::crc32::crc32(0, &payload).to_le_bytes());
        out.extend_from_slice(&payload);
        write_atomically(&self.path, &out)
    }
}

/// The state file of `shard` (`{shard}` in `path` replaced by its index),
/// once a file could be written beside it.
pub fn writable(path: &Path, shard: Shard) -> Result<PathBuf, std::io::Error> {
    let path = PathBuf::from(
        path.to_string_lossy()
            .replace("{shard}", &shard.index.to_string()),
    );
    let probe = temporary(&path);
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot write beside {}: {e}", path.display()),
            )
        })?;
    Ok(path)
}

/// The directory a file is in.
fn directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The temporary file a new state is written to before the rename.
fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_owned());
    directory(path).join(format!(".{name}.tmp"))
}

/// Write, `fsync`, rename, `fsync` the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = directory(path);
    let tmp = temporary(path);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(&dir)?.sync_all()
}

fn read(
    path: &Path,
    shard: Shard,
    max_age: Duration,
    now: f64,
) -> Result<HashMap<String, FunctionState>, LoadError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::Missing),
        Err(e) => return Err(LoadError::Read(e)),
    };
    if !meta.is_file() {
        return Err(LoadError::Foreign);
    }
    let bytes = std::fs::read(path).map_err(LoadError::Read)?;
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err(LoadError::Foreign);
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = word(8);
    if version != FORMAT_VERSION {
        return Err(LoadError::Version(version));
    }
    let payload = &bytes[16..];
    if zlib_rs::crc32::crc32(0, payload) != word(12) {
        return Err(LoadError::Corrupt("checksum mismatch".to_owned()));
    }
    let file: StateFile =
        postcard::from_bytes(payload).map_err(|e| LoadError::Corrupt(e.to_string()))?;
    if (file.shard_index, file.shard_count) != (shard.index, shard.count) {
        return Err(LoadError::OtherShard {
            found_index: file.shard_index,
            found_count: file.shard_count,
            index: shard.index,
            count: shard.count,
        });
    }
    let age = (now - file.saved_at as f64).max(0.0);
    if age > max_age.as_secs_f64() {
        return Err(LoadError::TooOld(
            humantime::format_duration(Duration::from_secs(age as u64)).to_string(),
        ));
    }
    file.functions
        .into_iter()
        .map(|(urn, bytes)| {
            postcard::from_bytes(&bytes)
                .map(|state| (urn.clone(), state))
                .map_err(|e| LoadError::Corrupt(format!("function {urn}: {e}")))
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock_or_recover()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard() -> Shard {
        Shard { index: 0, count: 1 }
    }

    #[test]
    fn unusable_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let day = Duration::from_secs(86_400);
        let now = 1_700_000_000.0;
        assert!(matches!(
            read(&path, shard(), day, now),
            Err(LoadError::Missing)
        ));
        std::fs::write(&path, b"hello, world, this is not it").unwrap();
        assert!(matches!(
            read(&path, shard(), day, now),
            Err(LoadError::Foreign)
        ));
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(b"garbage");
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            read(&path, shard(), day, now),
            Err(LoadError::Corrupt(_))
        ));
    }
}
