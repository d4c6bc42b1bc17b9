//! Bytes kept twice: in memory as usual, and in a sealed memory file
//! (`memfd`) that a socket writer can hand to the kernel with `sendfile`
//! instead of copying them into the socket (see `server::sendfile`).
//!
//! For a body sent many times unchanged, such as an exposition under many
//! scrapers a second (`exposition::MIRROR_AFTER`), copying it into each
//! socket is most of what a
//! response costs (at 10,000 functions about half the exporter's CPU per
//! request). `sendfile` from a memory file lends the file's pages to the
//! socket instead, as a web server serving a static file does.
//!
//! A mirrored buffer is found by its address: while its [`Bytes`] is
//! alive the region is registered, and its owner unregisters it before
//! the memory is freed, so an address found in the registry always has
//! the file's bytes behind it. The file is sealed against writes, so
//! what the kernel sends from it is what the buffer holds. Costs one copy
//! into the file when made, and the file's pages (shared memory, not part
//! of the process's resident set, since the file is never mapped).

use bytes::Bytes;

#[cfg(target_os = "linux")]
mod linux {
    use std::io::Write;
    use std::os::fd::OwnedFd;
    use std::sync::{Arc, RwLock};

    use bytes::Bytes;
    use rustix::fs::{MemfdFlags, SealFlags};

    use crate::sync::RwLockExt;

    /// A buffer whose bytes are also in `file`.
    struct Region {
        start: usize,
        len: usize,
        file: Arc<OwnedFd>,
    }

    /// The mirrored buffers alive (a few: one per compacted view).
    static REGIONS: RwLock<Vec<Region>> = RwLock::new(Vec::new());

    /// Owns a mirrored buffer; unregisters it before freeing it.
    struct Owner(Vec<u8>);

    impl AsRef<[u8]> for Owner {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }

    impl Drop for Owner {
        fn drop(&mut self) {
            let start = self.0.as_ptr() as usize;
            REGIONS.write_or_recover().retain(|r| r.start != start);
        }
    }

    /// A sealed memory file holding `bytes`.
    fn sealed_copy(bytes: &[u8]) -> std::io::Result<OwnedFd> {
        let fd = rustix::fs::memfd_create(
            "functiongraph-exporter-body",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        let mut file = std::fs::File::from(fd);
        file.write_all(bytes)?;
        let fd = OwnedFd::from(file);
        rustix::fs::fcntl_add_seals(
            &fd,
            SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
        )?;
        Ok(fd)
    }

    /// `bytes` mirrored, or given back with why not.
    pub(super) fn mirrored(bytes: Vec<u8>) -> Result<Bytes, (Vec<u8>, std::io::Error)> {
        let fd = match sealed_copy(&bytes) {
            Ok(fd) => fd,
            Err(e) => return Err((bytes, e)),
        };
        REGIONS.write_or_recover().push(Region {
            start: bytes.as_ptr() as usize,
            len: bytes.len(),
            file: Arc::new(fd),
        });
        Ok(Bytes::from_owner(Owner(bytes)))
    }

    /// Whether a region starts at `start`.
    #[cfg(test)]
    pub(super) fn registered(start: usize) -> bool {
        REGIONS.read_or_recover().iter().any(|r| r.start == start)
    }

    pub(super) fn find(slice: &[u8]) -> Option<(Arc<OwnedFd>, u64)> {
        if slice.is_empty() {
            return None;
        }
        let start = slice.as_ptr() as usize;
        let end = start.checked_add(slice.len())?;
        REGIONS.read_or_recover().iter().find_map(|r| {
            (r.start <= start && end <= r.start + r.len)
                .then(|| (Arc::clone(&r.file), (start - r.start) as u64))
        })
    }
}

/// `bytes`, mirrored in a memory file when the system has them (else, or
/// if making one fails, only in memory: the body is sent the usual way).
pub fn mirrored(bytes: Vec<u8>) -> Bytes {
    #[cfg(target_os = "linux")]
    if !bytes.is_empty() {
        // A failure (no memfd, out of memory) costs the copies it would
        // have saved, nothing else.
        return linux::mirrored(bytes).unwrap_or_else(|(bytes, e)| {
            tracing::debug!(error = %e, len = bytes.len(), "could not mirror a body in a memory file");
            Bytes::from(bytes)
        });
    }
    Bytes::from(bytes)
}

/// The memory file holding `slice` and where in it `slice` starts, if
/// `slice` lies within a mirrored buffer.
#[cfg(target_os = "linux")]
pub fn find(slice: &[u8]) -> Option<(std::sync::Arc<std::os::fd::OwnedFd>, u64)> {
    linux::find(slice)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};

    fn file_bytes(fd: &std::os::fd::OwnedFd, offset: u64, len: usize) -> Vec<u8> {
        let mut f = std::fs::File::from(fd.try_clone().unwrap());
        f.seek(SeekFrom::Start(offset)).unwrap();
        let mut out = vec![0; len];
        f.read_exact(&mut out).unwrap();
        out
    }

    #[test]
    fn a_mirrored_buffer_is_found_by_any_part_of_it_until_dropped() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let bytes = mirrored(data.clone());
        assert_eq!(&bytes[..], &data[..]);
        let part = &bytes[1000..5000];
        let (fd, offset) = find(part).expect("a part of a mirrored buffer");
        assert_eq!(offset, 1000);
        assert_eq!(file_bytes(&fd, offset, part.len()), part);
        // Sealed: nobody can change what the kernel sends.
        let mut f = std::fs::File::from(fd.try_clone().unwrap());
        assert!(std::io::Write::write_all(&mut f, b"x").is_err());
        // The whole, a clone, a slice of the clone.
        assert_eq!(find(&bytes).unwrap().1, 0);
        let clone = bytes.slice(10..);
        drop(bytes);
        assert_eq!(find(&clone).unwrap().1, 10);
        // Not: other memory, a range running past the end, nothing.
        assert!(find(&data).is_none());
        assert!(find(&[]).is_none());
        let start = clone.as_ptr() as usize - 10;
        assert!(linux::registered(start));
        drop(clone);
        // Unregistered once the last reference is gone.
        assert!(!linux::registered(start));
        let again = mirrored(Vec::new());
        assert!(again.is_empty() && find(&again).is_none());
    }
}
