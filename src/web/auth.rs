//! HTTP basic authentication against `basic_auth_users` bcrypt hashes.
//!
//! bcrypt is slow on purpose (about 70 ms at cost 10), too slow to pay on
//! every scrape. So a successful verification is remembered: the cache
//! holds an HMAC-SHA256, under a key drawn at start-up, of user, hash and
//! password, never the password. A changed hash or password misses the
//! cache; a removed user is refused before the cache is consulted. A
//! failed verification is remembered the same way, so repeating a wrong
//! password costs no bcrypt. Both caches are bounded (emptied when full).
//!
//! bcrypt runs on the blocking pool, one verification at a time (as in
//! exporter-toolkit), so guessing passwords costs an attacker at most one
//! core of ours. The verifications wait in one queue per client address,
//! served in turn (round robin), so a flood of guesses from some addresses
//! delays a login from another by one verification per flooding address,
//! not by everything they queued; a client may have a few verifications
//! waiting and all clients together a bounded number, beyond which an
//! attempt is answered "busy" (429) at once, without bcrypt. A credential
//! that has been verified is answered from the cache and never waits.
//!
//! An unknown user is checked against a dummy hash, so the response time
//! does not tell which users exist. The final comparison is the bcrypt
//! crate's, in constant time; the cache lookups compare keyed MACs, whose
//! timing reveals nothing about the password.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use hmac::{Hmac, Mac};
use hyper::header::HeaderValue;
use sha2::Sha256;

use crate::secret::Secret;
use crate::sync::MutexExt;

/// The `WWW-Authenticate` challenge of a 401.
pub const CHALLENGE: &str = "Basic realm=\"functiongraph_exporter\"";

/// Successful verifications remembered at most; the cache is emptied when
/// full.
const MAX_CACHED: usize = 1024;
/// Failed verifications remembered at most; emptied when full.
const MAX_FAILED: usize = 4096;
/// Verifications waiting, from one client address.
const MAX_WAITING_PER_CLIENT: usize = 4;
/// Verifications waiting, from all clients.
const MAX_WAITING: usize = 256;

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

/// The outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are those of a configured user.
    Allowed,
    /// They are not (or there were none).
    Denied,
    /// Too many verifications are waiting (from this client, or from all):
    /// not checked; try again later.
    Busy,
}

/// Checks credentials and remembers the outcome.
pub struct Verifier {
    key: [u8; 32],
    ok: Mutex<HashSet<[u8; 32]>>,
    failed: Mutex<HashSet<[u8; 32]>>,
    queue: Arc<Mutex<Queue>>,
}

/// Who verifies next: one verification runs at a time; the others wait in
/// their client's lane, and lanes take turns.
#[derive(Default)]
struct Queue {
    /// A verification is running.
    busy: bool,
    lanes: HashMap<IpAddr, VecDeque<tokio::sync::oneshot::Sender<()>>>,
    /// Lanes with someone waiting, in turn order.
    order: VecDeque<IpAddr>,
    waiting: usize,
}

/// The right to run one bcrypt verification; handed to the next in turn
/// when dropped (also when the request that asked for it went away).
struct Turn {
    queue: Arc<Mutex<Queue>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        hand_over(&self.queue);
    }
}

/// Gives the turn to the next lane's first waiter still waiting, or frees
/// it.
fn hand_over(queue: &Mutex<Queue>) {
    let mut q = queue.lock_or_recover();
    loop {
        let Some(client) = q.order.pop_front() else {
            q.busy = false;
            return;
        };
        let Some(lane) = q.lanes.get_mut(&client) else {
            continue;
        };
        let next = lane.pop_front();
        let more = !lane.is_empty();
        if more {
            q.order.push_back(client);
        } else {
            q.lanes.remove(&client);
        }
        if let Some(next) = next {
            q.waiting -= 1;
            if next.send(()).is_ok() {
                return;
            }
        }
    }
}

/// A waiter's place in its lane. Dropped after the turn was handed to it
/// but before it took it (its request went away), it passes the turn on.
struct Waiting {
    rx: Option<tokio::sync::oneshot::Receiver<()>>,
    queue: Arc<Mutex<Queue>>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                hand_over(&self.queue);
            }
        }
    }
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
            failed: Mutex::new(HashSet::new()),
            queue: Arc::new(Mutex::new(Queue::default())),
        }
    }

    /// Whether the `Authorization` header holds the credentials of one of
    /// `users`; `client` is the address the request came from (its lane).
    pub async fn check(
        &self,
        users: &Arc<Users>,
        authorization: Option<&HeaderValue>,
        client: IpAddr,
    ) -> Verdict {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return Verdict::Denied;
        };
        let hash = users.0.get(&user).map(|h| h.expose().to_owned());
        // An unknown user's MAC (empty hash) is never in the good cache.
        let mac = self.mac(&user, hash.as_deref().unwrap_or(""), &password);
        if let Some(verdict) = self.remembered(&mac, hash.is_some()) {
            return verdict;
        }
        let Some(turn) = self.turn(client).await else {
            return Verdict::Busy;
        };
        // Another request may have verified the same credentials meanwhile.
        if let Some(verdict) = self.remembered(&mac, hash.is_some()) {
            return verdict;
        }
        // The turn goes with the verification, so however many requests
        // give up while theirs runs, one bcrypt runs at a time.
        let verified = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            match hash {
                Some(hash) => bcrypt::verify(&password, &hash).unwrap_or(false),
                None => {
                    // As long as for a known user, and never a success.
                    if let Some(dummy) = dummy_hash() {
                        let _ = bcrypt::verify(&password, dummy);
                    }
                    false
                }
            }
        })
        .await
        .unwrap_or(false);
        let (cache, max) = if verified {
            (&self.ok, MAX_CACHED)
        } else {
            (&self.failed, MAX_FAILED)
        };
        let mut cache = cache.lock_or_recover();
        if cache.len() >= max {
            cache.clear();
        }
        cache.insert(mac);
        if verified {
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }

    /// The remembered outcome for these credentials, if any.
    fn remembered(&self, mac: &[u8; 32], known_user: bool) -> Option<Verdict> {
        let lock = |m: &Mutex<HashSet<[u8; 32]>>| m.lock_or_recover().contains(mac);
        if known_user && lock(&self.ok) {
            Some(Verdict::Allowed)
        } else if lock(&self.failed) {
            Some(Verdict::Denied)
        } else {
            None
        }
    }

    /// Waits for this client's turn to run a verification, or `None` when
    /// too many are waiting already.
    async fn turn(&self, client: IpAddr) -> Option<Turn> {
        let rx = {
            let mut q = self.queue.lock_or_recover();
            if !q.busy {
                q.busy = true;
                return Some(Turn {
                    queue: Arc::clone(&self.queue),
                });
            }
            if q.waiting >= MAX_WAITING {
                return None;
            }
            let lane = q.lanes.entry(client).or_default();
            if lane.len() >= MAX_WAITING_PER_CLIENT {
                return None;
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            lane.push_back(tx);
            if lane.len() == 1 {
                q.order.push_back(client);
            }
            q.waiting += 1;
            rx
        };
        let mut waiting = Waiting {
            rx: Some(rx),
            queue: Arc::clone(&self.queue),
        };
        let given = waiting.rx.as_mut()?.await;
        waiting.rx = None;
        given.ok().map(|()| Turn {
            queue: Arc::clone(&self.queue),
        })
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

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn verifies_and_caches_outcomes() {
        let v = Verifier::new();
        let users = users();
        let check = |h: Option<HeaderValue>, u: Arc<Users>| {
            let v = &v;
            async move { v.check(&u, h.as_ref(), HERE).await }
        };
        assert_eq!(check(None, users.clone()).await, Verdict::Denied);
        assert_eq!(
            check(Some(header("alice", "wrong")), users.clone()).await,
            Verdict::Denied
        );
        assert_eq!(
            check(Some(header("mallory", "s3cret:x")), users.clone()).await,
            Verdict::Denied
        );
        assert!(v.ok.lock().unwrap().is_empty());
        assert_eq!(v.failed.lock().unwrap().len(), 2);
        // The same wrong password again: answered from the cache.
        assert_eq!(
            check(Some(header("alice", "wrong")), users.clone()).await,
            Verdict::Denied
        );
        assert_eq!(v.failed.lock().unwrap().len(), 2);
        assert_eq!(
            check(Some(header("alice", "s3cret:x")), users.clone()).await,
            Verdict::Allowed
        );
        assert_eq!(v.ok.lock().unwrap().len(), 1);
        assert_eq!(
            check(Some(header("alice", "s3cret:x")), users.clone()).await,
            Verdict::Allowed
        );
        assert_eq!(v.ok.lock().unwrap().len(), 1);

        // A new hash for alice: the remembered success does not apply.
        let mut m = BTreeMap::new();
        m.insert(
            "alice".to_owned(),
            Secret::new(bcrypt::hash("other", 4).unwrap()),
        );
        let rotated = Arc::new(Users::new(m));
        assert_eq!(
            check(Some(header("alice", "s3cret:x")), rotated).await,
            Verdict::Denied
        );
        // Removed: refused even though remembered.
        let none = Arc::new(Users::new(BTreeMap::new()));
        assert_eq!(
            check(Some(header("alice", "s3cret:x")), none).await,
            Verdict::Denied
        );
        assert_eq!(format!("{:?}", users), "{\"alice\"}");
    }

    /// Lanes take turns: a second client's verification runs right after
    /// the one in progress, before the rest of the first client's queue;
    /// and a full lane answers busy at once.
    #[tokio::test]
    async fn client_lanes_take_turns_and_are_bounded() {
        let v = Arc::new(Verifier::new());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let running = v.turn(a).await.expect("free");
        let served = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        let queue = |client: IpAddr, name: &'static str| {
            let (v, served) = (Arc::clone(&v), Arc::clone(&served));
            tokio::spawn(async move {
                let turn = v.turn(client).await;
                served.lock().unwrap().push(name);
                turn.is_some()
            })
        };
        let waiting = |n: usize| {
            let v = Arc::clone(&v);
            async move {
                while v.queue.lock().unwrap().waiting < n {
                    tokio::task::yield_now().await;
                }
            }
        };
        for (i, name) in ["a1", "a2", "a3", "a4"].into_iter().enumerate() {
            tasks.push(queue(a, name));
            waiting(i + 1).await;
        }
        assert!(v.turn(a).await.is_none(), "a full lane is busy");
        tasks.push(queue(b, "b1"));
        waiting(5).await;
        drop(running);
        for t in tasks {
            assert!(t.await.unwrap());
        }
        assert_eq!(*served.lock().unwrap(), ["a1", "b1", "a2", "a3", "a4"]);
        assert!(!v.queue.lock().unwrap().busy);
    }
}
