//! Secrets: a value that never prints, where it is read from, and files
//! that are re-read when they change.
//!
//! [`Secret`] redacts itself in `Debug` and `Display`, so a config or a
//! client can be logged at any level without leaking a token. The only way
//! to the bytes is [`Secret::expose`], which call sites use right where the
//! value goes on the wire. [`SecretCell`] holds a secret read from its
//! [`SecretSource`] and, for a file, notices when the file was replaced
//! (a rotated Kubernetes Secret, a new token written by a sidecar), so a
//! rotation needs no restart.
//!
//! Files (secrets, and the configuration through [`read_bounded`]) are read
//! only when they are regular files, up to a size limit and within a
//! timeout: a FIFO, a device such as `/dev/zero` or a directory is refused
//! at once, never read.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::sync::MutexExt;

/// The largest secret file read (IAM tokens can be 100,000 characters).
pub const MAX_SECRET_BYTES: u64 = 1024 * 1024;
/// A file read that takes longer than this (a hung network file system)
/// fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A credential that must not reach logs, metrics, pages or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Implements `Debug` for a struct showing only the named fields, and
/// `..` for the rest: those hold secrets, or state that says nothing in a
/// log. One place to audit what a struct lets out when it is logged.
macro_rules! debug_only {
    ($name:ident: $($field:ident),+ $(,)?) => {
        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($name))
                    $(.field(stringify!($field), &self.$field))+
                    .finish_non_exhaustive()
            }
        }
    };
}

pub(crate) use debug_only;

/// Where a secret comes from. Resolved when a client is built, so that a
/// missing variable or unreadable file is reported before polling starts.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable, by name.
    Env(String),
    /// A file whose content, trimmed of surrounding whitespace, is the secret.
    File(PathBuf),
    /// A value given directly (the demo and the tests; never from a file).
    Inline(Secret),
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: file is empty", .0.display())]
    FileEmpty(PathBuf),
    /// A secret that could be read at start-up and no longer can: named by
    /// the configuration file and key it comes from.
    #[error("{name}: {source}")]
    Named {
        name: String,
        #[source]
        source: Box<SecretError>,
    },
}

impl SecretSource {
    /// For a secret file that users other than the exporter's own can read
    /// (world-readable, or group-readable by a group the process is not
    /// in): what to say about it. A group the exporter belongs to, such as
    /// the pod's `fsGroup` in Kubernetes, is its own. The run logs it and
    /// `--check-config` prints it.
    pub fn readability_warning(&self) -> Option<String> {
        #[cfg(unix)]
        if let SecretSource::File(path) = self {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let m = std::fs::metadata(path).ok()?;
            let mode = m.permissions().mode() & 0o777;
            let whom = if mode & 0o004 != 0 {
                "every user".to_owned()
            } else if mode & 0o040 != 0 && !own_groups().contains(&m.gid()) {
                format!("the members of group {}", m.gid())
            } else {
                return None;
            };
            return Some(format!(
                "secret file {} (mode {mode:o}) is readable by {whom}; consider chmod 600 (in Kubernetes: defaultMode 0440 with the pod's fsGroup)",
                path.display()
            ));
        }
        None
    }

    /// Reads the secret now.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(v) if v.trim().is_empty() => Err(SecretError::EnvEmpty(name.clone())),
                Ok(v) => Ok(Secret::new(v.trim())),
                Err(_) => Err(SecretError::EnvMissing(name.clone())),
            },
            SecretSource::File(path) => read_file(path),
            SecretSource::Inline(s) => Ok(s.clone()),
        }
    }
}

fn read_file(path: &Path) -> Result<Secret, SecretError> {
    let content = read_bounded(path, MAX_SECRET_BYTES).map_err(|source| SecretError::File {
        path: path.to_owned(),
        source,
    })?;
    let value = content.trim();
    if value.is_empty() {
        return Err(SecretError::FileEmpty(path.to_owned()));
    }
    Ok(Secret::new(value))
}

/// Reads a regular file of at most `max` bytes of UTF-8 text, within
/// [`READ_TIMEOUT`]. Anything that is not a regular file (after following
/// symbolic links) is refused before it is opened for reading: a FIFO would
/// block, `/dev/zero` would never end.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<String> {
    let owned = path.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("read-file".into())
        .spawn(move || {
            let _ = tx.send(read_regular(&owned, max));
        })?;
    match rx.recv_timeout(READ_TIMEOUT) {
        Ok(result) => result,
        // The thread stays blocked in the kernel; nothing else waits for it.
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "not read within {}",
                humantime::format_duration(READ_TIMEOUT)
            ),
        )),
    }
}

fn read_regular(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind};
    check_regular(&std::fs::metadata(path)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Never blocks in open(), even if the path was swapped for a FIFO
    // since the check above; the check below then refuses it.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    let meta = file.metadata()?;
    check_regular(&meta)?;
    if meta.len() > max {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!(
                "file is {} bytes, more than the limit of {max} bytes",
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("file is more than the limit of {max} bytes"),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| Error::new(ErrorKind::InvalidData, "file is not UTF-8 text"))
}

/// Refuses anything but a regular file, naming what it is.
fn check_regular(meta: &std::fs::Metadata) -> std::io::Result<()> {
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    let what = if t.is_dir() {
        "a directory"
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if t.is_fifo() {
                "a FIFO"
            } else if t.is_char_device() {
                "a character device"
            } else if t.is_block_device() {
                "a block device"
            } else if t.is_socket() {
                "a socket"
            } else {
                "not a regular file"
            }
        }
        #[cfg(not(unix))]
        {
            "not a regular file"
        }
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("not a regular file ({what}); only regular files are read"),
    ))
}

/// What identifies a version of a file: a rewrite or a replacement
/// (rename, symlink swap) changes at least one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        let m = std::fs::metadata(path)?;
        Ok(Self {
            modified: m.modified().ok(),
            len: m.len(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&m),
        })
    }
}

/// A secret and where it came from; a file is re-read when it changes.
pub struct SecretCell {
    source: SecretSource,
    current: Mutex<(Option<FileStamp>, Secret)>,
    /// The configuration file and key it comes from, for run-time errors.
    name: Option<String>,
}

impl SecretCell {
    /// Reads the secret now, so that a missing one is reported at start-up.
    pub fn load(source: SecretSource) -> Result<Self, SecretError> {
        let stamp = match &source {
            SecretSource::File(path) => FileStamp::of(path).ok(),
            _ => None,
        };
        let secret = source.resolve()?;
        Ok(Self {
            source,
            current: Mutex::new((stamp, secret)),
            name: None,
        })
    }

    /// Names the secret by where it is configured (`file.toml:
    /// projects[0].auth.access_key_file`): the errors of [`SecretCell::get`]
    /// begin with it.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The current secret: for a file whose stamp changed since it was
    /// last read, the new content. If the new content cannot be read (the
    /// file is being replaced), the error is returned and the next call
    /// tries again.
    pub fn get(&self) -> Result<Secret, SecretError> {
        self.read().map_err(|e| match &self.name {
            Some(name) => SecretError::Named {
                name: name.clone(),
                source: Box::new(e),
            },
            None => e,
        })
    }

    fn read(&self) -> Result<Secret, SecretError> {
        let SecretSource::File(path) = &self.source else {
            return Ok(self.lock().1.clone());
        };
        let stamp = FileStamp::of(path).map_err(|source| SecretError::File {
            path: path.clone(),
            source,
        })?;
        let mut current = self.lock();
        if current.0.as_ref() != Some(&stamp) {
            let secret = read_file(path)?;
            tracing::info!(file = %path.display(), "secret file changed; using its new content");
            *current = (Some(stamp), secret);
        }
        Ok(current.1.clone())
    }

    pub fn source(&self) -> &SecretSource {
        &self.source
    }

    /// Warns when a secret file can be read by other users (see
    /// [`SecretSource::readability_warning`]).
    pub fn warn_if_world_readable(&self) {
        if let Some(warning) = self.source.readability_warning() {
            tracing::warn!("{warning}");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<FileStamp>, Secret)> {
        self.current.lock_or_recover()
    }
}

impl fmt::Debug for SecretCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretCell({:?})", self.source)
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "env {name}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Inline(_) => f.write_str("inline <redacted>"),
        }
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The process's group ids (effective and supplementary), from
/// `/proc/self/status`; empty where that cannot be read.
#[cfg(unix)]
fn own_groups() -> std::collections::HashSet<u32> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .filter_map(|l| l.strip_prefix("Gid:").or_else(|| l.strip_prefix("Groups:")))
        .flat_map(|rest| rest.split_whitespace())
        .filter_map(|g| g.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2-token");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        let src = SecretSource::Inline(s.clone());
        assert!(!format!("{src:?} {src}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-token");
    }

    #[test]
    fn file_secrets_are_trimmed_and_empty_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  abc\n").unwrap();
        assert_eq!(
            SecretSource::File(path.clone()).resolve().unwrap().expose(),
            "abc"
        );
        std::fs::write(&path, "\n").unwrap();
        let err = SecretSource::File(path.clone()).resolve().unwrap_err();
        assert!(err.to_string().ends_with("file is empty"), "{err}");
        let missing = dir.path().join("missing");
        let err = SecretSource::File(missing).resolve().unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn a_cell_rereads_a_replaced_file_and_never_prints_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first").unwrap();
        let cell = SecretCell::load(SecretSource::File(path.clone())).unwrap();
        assert_eq!(cell.get().unwrap().expose(), "first");
        // Replaced the way Kubernetes and most tools do it: write and rename.
        let tmp = dir.path().join("token.new");
        std::fs::write(&tmp, "second-value").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(cell.get().unwrap().expose(), "second-value");
        assert!(!format!("{cell:?}").contains("second"));
        std::fs::remove_file(&path).unwrap();
        assert!(cell.get().is_err());
    }

    #[cfg(unix)]
    #[test]
    fn files_readable_by_others_are_named() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "t").unwrap();
        let source = SecretSource::File(path.clone());
        let mode = |m| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
        mode(0o600);
        assert_eq!(source.readability_warning(), None);
        mode(0o644);
        let w = source.readability_warning().unwrap();
        assert!(w.contains("(mode 644) is readable by every user"), "{w}");
        // Group-readable by the exporter's own group (Kubernetes' fsGroup):
        // nobody else.
        mode(0o640);
        let own = std::fs::metadata(&path).unwrap().gid();
        assert!(own_groups().contains(&own));
        assert_eq!(source.readability_warning(), None);
        // By a group the exporter is not in: its members can read it.
        let other = (60_000..65_000)
            .find(|g| !own_groups().contains(g))
            .unwrap();
        if std::os::unix::fs::chown(&path, None, Some(other)).is_ok() {
            let w = source.readability_warning().unwrap();
            assert!(
                w.contains(&format!("readable by the members of group {other}")),
                "{w}"
            );
        }
    }

    #[test]
    fn missing_env_var_names_the_variable() {
        let err = SecretSource::Env("FGE_TEST_SURELY_UNSET_VARIABLE".into())
            .resolve()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable FGE_TEST_SURELY_UNSET_VARIABLE is not set"
        );
    }
}
