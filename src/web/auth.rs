//! HTTP basic authentication against `basic_auth_users` bcrypt hashes.
//!
//! bcrypt is slow on purpose (about 70 ms at cost 10), too slow to pay on
//! every scrape. So a successful verification is remembered: the cache
//! holds an HMAC-SHA256, under a key drawn at start-up, of user, hash and
//! password, never the password. A changed hash or password misses the
//! cache; a removed user is refused before the cache is consulted.
//! Failures are not cached (the cache stays bounded whatever a client
//! sends).
//!
//! bcrypt runs on the blocking pool, one verification at a time (as in
//! exporter-toolkit), so guessing passwords costs an attacker at most one
//! core of ours. An unknown user is checked against a dummy hash, so the
//! response time does not tell which users exist. The final comparison is
//! the bcrypt crate's, in constant time; the cache lookup compares keyed
//! MACs, whose timing reveals nothing about the password.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use hmac::{Hmac, Mac};
use hyper::header::HeaderValue;
use sha2::Sha256;
use tokio::sync::Semaphore;

use crate::secret::Secret;

/// The `WWW-Authenticate` challenge of a 401.
pub const CHALLENGE: &str = "Basic realm=\"functiongraph_exporter\"";

/// Successful verifications remembered at most; the cache is emptied when
/// full.
const MAX_CACHED: usize = 1024;

/// Cost of the dummy hash unknown users are checked against.
const DUMMY_COST: u32 = 10;

/// Users and their bcrypt hashes. `Debug` shows user names only.
pub struct Users(BTreeMap<String, Secret>);

impl Users {
    pub fn new(users: BTreeMap<String, Secret>) -> Self {
        Self(users)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Checks credentials and remembers the good ones.
pub struct Verifier {
    key: [u8; 32],
    ok: Mutex<HashSet<[u8; 32]>>,
    gate: Semaphore,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    pub fn new() -> Self {
        Self {
            key: rand::random(),
            ok: Mutex::new(HashSet::new()),
            gate: Semaphore::new(1),
        }
    }

    /// Whether the `Authorization` header holds the credentials of one of
    /// `users`.
    pub async fn check(&self, users: &Arc<Users>, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let hash = users.0.get(&user).map(|h| h.expose().to_owned());
        let mac = hash.as_ref().map(|h| self.mac(&user, h, &password));
        if mac.as_ref().is_some_and(|m| self.remembered(m)) {
            return true;
        }
        let Ok(_permit) = self.gate.acquire().await else {
            return false;
        };
        // Another request may have verified the same credentials meanwhile.
        if mac.as_ref().is_some_and(|m| self.remembered(m)) {
            return true;
        }
        let verified = tokio::task::spawn_blocking(move || match hash {
            Some(hash) => bcrypt::verify(&password, &hash).unwrap_or(false),
            None => {
                // As long as for a known user, and never a success.
                if let Some(dummy) = dummy_hash() {
                    let _ = bcrypt::verify(&password, dummy);
                }
                false
            }
        })
        .await
        .unwrap_or(false);
        if let (true, Some(mac)) = (verified, mac) {
            let mut cache = self.ok.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(mac);
            return true;
        }
        false
    }

    fn remembered(&self, mac: &[u8; 32]) -> bool {
        self.ok
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(mac)
    }

    /// HMAC of user, hash and password, each length-prefixed.
    fn mac(&self, user: &str, hash: &str, password: &[u8]) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            // HMAC takes keys of any length; unreachable.
            return [0; 32];
        };
        for part in [user.as_bytes(), hash.as_bytes(), password] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// A bcrypt hash of a random password, made once.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let password: [u8; 16] = rand::random();
            bcrypt::hash(password, DUMMY_COST).ok()
        })
        .as_deref()
}

/// User and password from `Basic base64(user:password)`.
fn parse_basic(value: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let value = value.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = std::str::from_utf8(decoded.get(..colon)?).ok()?.to_owned();
    let password = decoded.get(colon + 1..)?.to_vec();
    Some((user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn users() -> Arc<Users> {
        let mut m = BTreeMap::new();
        m.insert(
            "alice".to_owned(),
            Secret::new(bcrypt::hash("s3cret:x", 4).unwrap()),
        );
        Arc::new(Users::new(m))
    }

    #[test]
    fn parses_basic_credentials() {
        assert_eq!(
            parse_basic(&header("alice", "pa:ss")),
            Some(("alice".to_owned(), b"pa:ss".to_vec()))
        );
        assert_eq!(
            parse_basic(&HeaderValue::from_static("bAsIc YTo=")),
            Some(("a".to_owned(), Vec::new()))
        );
        for bad in ["Bearer abc", "Basic", "Basic !!!", "Basic YWxpY2U=", ""] {
            assert_eq!(parse_basic(&HeaderValue::from_static(bad)), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn verifies_and_caches_only_successes() {
        let v = Verifier::new();
        let users = users();
        assert!(!v.check(&users, None).await);
        assert!(!v.check(&users, Some(&header("alice", "wrong"))).await);
        assert!(!v.check(&users, Some(&header("mallory", "s3cret:x"))).await);
        assert!(v.ok.lock().unwrap().is_empty());
        assert!(v.check(&users, Some(&header("alice", "s3cret:x"))).await);
        assert_eq!(v.ok.lock().unwrap().len(), 1);
        assert!(v.check(&users, Some(&header("alice", "s3cret:x"))).await);
        assert_eq!(v.ok.lock().unwrap().len(), 1);

        // A new hash for alice: the remembered success does not apply.
        let mut m = BTreeMap::new();
        m.insert(
            "alice".to_owned(),
            Secret::new(bcrypt::hash("other", 4).unwrap()),
        );
        let rotated = Arc::new(Users::new(m));
        assert!(!v.check(&rotated, Some(&header("alice", "s3cret:x"))).await);
        // Removed: refused even though remembered.
        let none = Arc::new(Users::new(BTreeMap::new()));
        assert!(!v.check(&none, Some(&header("alice", "s3cret:x"))).await);
        assert_eq!(format!("{:?}", users), "{\"alice\"}");
    }
}
