//! Locks that recover from poisoning.
//!
//! A lock is poisoned when a thread panicked while holding it. Everything
//! guarded by the exporter's locks is plain data (maps, counters,
//! configurations) that each critical section leaves consistent at every
//! step it could panic in, and a panic in one poll or one request must not
//! take down every later poll, scrape or reload with it. So a poisoned lock
//! is taken as it is, everywhere, through these two traits instead of
//! `.lock().unwrap_or_else(|e| e.into_inner())` written out each time.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// [`Mutex::lock`], recovering from poisoning (see the module doc).
pub trait MutexExt<T: ?Sized> {
    fn lock_or_recover(&self) -> MutexGuard<'_, T>;
    /// [`Mutex::try_lock`]: `None` only while another thread holds it.
    fn try_lock_or_recover(&self) -> Option<MutexGuard<'_, T>>;
}

impl<T: ?Sized> MutexExt<T> for Mutex<T> {
    fn lock_or_recover(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn try_lock_or_recover(&self) -> Option<MutexGuard<'_, T>> {
        match self.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// [`RwLock::read`] and [`RwLock::write`], recovering from poisoning (see
/// the module doc).
pub trait RwLockExt<T: ?Sized> {
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T>;
    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLockExt<T> for RwLock<T> {
    fn read_or_recover(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_or_recover(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_taken_as_it_is() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let r = std::sync::Arc::new(RwLock::new(2));
        let (m2, r2) = (m.clone(), r.clone());
        let _ = std::thread::spawn(move || {
            let _m = m2.lock().unwrap();
            let _r = r2.write().unwrap();
            panic!("poison both");
        })
        .join();
        assert!(m.is_poisoned() && r.is_poisoned());
        *m.lock_or_recover() += 1;
        *r.write_or_recover() += 1;
        assert_eq!((*m.lock_or_recover(), *r.read_or_recover()), (2, 3));
        let held = m.try_lock_or_recover().expect("poisoned, not held");
        assert!(m.try_lock_or_recover().is_none(), "held");
        drop(held);
    }
}
