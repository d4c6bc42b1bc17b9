//! A FunctionGraph API simulator, for `--demo` and for the tests.
//!
//! It serves list functions and the four endpoints the exporter polls, as
//! the reference describes them: field names, time formats, pagination
//! (`marker`, `limit`/`maxitems`, `next_marker`, `count`), status and time
//! window filters, `X-Auth-Token` checking with the gateway's 401 body, 404
//! `FSS.1051` for unknown functions and 400 for bad parameters. Functions can
//! generate traffic over time (the demo), or be driven step by step by a
//! test through this handle, which also injects faults (per function and
//! endpoint, applying even once the function is deleted, so a test can
//! choose how a deleted function answers) and counts requests (per
//! endpoint, and per function with the most in flight at once).
//!
//! The simulator is its own implementation of the server side: it shares
//! URN parsing and time formatting with the exporter, but builds its JSON
//! independently of the client's decoding types, verifies signatures with
//! its own implementation ([`gateway`]) and serves on its own accept loop.
//!
//! It is compiled only with the `demo` cargo feature (on by default); a
//! production build can leave it out (`--no-default-features`).

mod auth;
mod body;
pub mod gateway;
mod http;
mod recorder;
mod serve;
mod world;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use recorder::{Recorded, Recorder};
pub use world::{Activity, Fault, FunctionSpec, Invocation, SimStatus, Truth};

use crate::api::Endpoint;
use crate::sync::MutexExt;
use world::{Project, World};

/// A handle on a simulated account; clones share it.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    world: Mutex<World>,
    auth: Mutex<auth::AuthState>,
    requests: Mutex<BTreeMap<Endpoint, u64>>,
    request_ids: AtomicU64,
    /// Seconds added to the real clock (clock skew, token expiry tests).
    clock_offset: AtomicI64,
    /// Arrival times, when recording (rate-limit tests).
    times: Mutex<Option<Vec<Instant>>>,
    /// Added before every answer, in microseconds (benchmarks).
    latency_us: AtomicU64,
    /// Per function (`package:name`): requests received, requests in
    /// flight now, and the most in flight at once.
    per_function: Mutex<BTreeMap<String, FunctionLoad>>,
}

/// Requests to one function.
#[derive(Debug, Clone, Copy, Default)]
struct FunctionLoad {
    received: u64,
    in_flight: u64,
    max_in_flight: u64,
}

/// A request in flight to one function; counted out when dropped.
pub(crate) struct InFlight {
    sim: Simulator,
    function: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(load) = self.sim.lock_per_function().get_mut(&self.function) {
            load.in_flight = load.in_flight.saturating_sub(1);
        }
    }
}

/// What [`Simulator::set_fault`] does to one endpoint of one function.
#[derive(Debug, Clone)]
pub enum FaultSetting {
    /// Answer normally again.
    Heal,
    /// Misbehave on every request.
    Always(Fault),
    /// Misbehave on the next this many requests, then answer normally.
    Times(Fault, u32),
}

impl From<Fault> for FaultSetting {
    fn from(fault: Fault) -> Self {
        FaultSetting::Always(fault)
    }
}

impl From<Option<Fault>> for FaultSetting {
    fn from(fault: Option<Fault>) -> Self {
        fault.map_or(FaultSetting::Heal, FaultSetting::Always)
    }
}

impl Simulator {
    /// An empty account accepting the static token `token`.
    pub fn new(token: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                world: Mutex::new(World::new(0x5eed)),
                auth: Mutex::new(auth::AuthState::new(token)),
                requests: Mutex::new(BTreeMap::new()),
                request_ids: AtomicU64::new(0),
                clock_offset: AtomicI64::new(0),
                times: Mutex::new(None),
                latency_us: AtomicU64::new(0),
                per_function: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Replaces the static tokens accepted (revoking the others).
    pub fn set_tokens(&self, tokens: &[&str]) {
        self.auth().set_static_tokens(tokens);
    }

    /// Accepts an access key pair (AK/SK signing).
    pub fn add_access_key(&self, access_key: &str, secret_key: &str) {
        self.auth().add_key(access_key, secret_key, None);
    }

    /// Accepts temporary credentials: requests must also carry
    /// `security_token` in a signed `X-Security-Token`.
    pub fn add_temporary_access_key(
        &self,
        access_key: &str,
        secret_key: &str,
        security_token: &str,
    ) {
        self.auth()
            .add_key(access_key, secret_key, Some(security_token));
    }

    /// Accepts an IAM user (password authentication).
    pub fn add_iam_user(&self, domain: &str, user: &str, password: &str) {
        self.auth().add_user(domain, user, password);
    }

    /// Lifetime of the IAM tokens issued from now on (default 24 hours).
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.auth().token_ttl = ttl.as_secs() as i64;
    }

    /// Moves the simulator's clock (skew, expiry) forward by `by`.
    pub fn advance_clock(&self, by: Duration) {
        self.inner
            .clock_offset
            .fetch_add(by.as_secs() as i64, Ordering::Relaxed);
    }

    /// Moves the simulator's clock backward by `by`.
    pub fn rewind_clock(&self, by: Duration) {
        self.inner
            .clock_offset
            .fetch_sub(by.as_secs() as i64, Ordering::Relaxed);
    }

    /// An account of one project with the demo's functions (see
    /// `crate::demo`), with an hour of traffic history already generated.
    pub fn demo(token: &str, project_id: &str, region: &str) -> Self {
        let sim = Self::new(token);
        sim.add_project(project_id, region);
        for spec in world::demo_functions() {
            sim.add_function(project_id, spec);
        }
        sim.backfill(Duration::from_secs(3600));
        sim
    }

    pub fn add_project(&self, project_id: &str, region: &str) {
        self.world().projects.insert(
            project_id.to_owned(),
            Project {
                region: region.to_owned(),
                functions: BTreeMap::new(),
            },
        );
    }

    pub fn add_function(&self, project_id: &str, spec: FunctionSpec) {
        let now = self.now();
        self.world().add_function(project_id, spec, now);
    }

    pub fn remove_function(&self, project_id: &str, package: &str, name: &str) -> bool {
        self.world()
            .projects
            .get_mut(project_id)
            .and_then(|p| p.functions.remove(&(package.to_owned(), name.to_owned())))
            .is_some()
    }

    /// Adds an invocation record; false when the function does not exist.
    pub fn add_invocation(
        &self,
        project_id: &str,
        package: &str,
        name: &str,
        inv: Invocation,
    ) -> bool {
        self.with_function(project_id, package, name, |f| f.invocations.push(inv))
            .is_some()
    }

    /// Starts, changes or stops (`None`) a function's generated traffic;
    /// false when the function does not exist.
    pub fn set_activity(
        &self,
        project_id: &str,
        package: &str,
        name: &str,
        activity: Option<Activity>,
    ) -> bool {
        self.with_function(project_id, package, name, |f| f.spec.activity = activity)
            .is_some()
    }

    /// What a function's generated traffic really did so far: invocations
    /// that reached each terminal status, and those still pending.
    pub fn truth(&self, project_id: &str, package: &str, name: &str) -> Option<Truth> {
        self.with_function(project_id, package, name, |f| f.truth)
    }

    /// The simulator's clock, Unix seconds (real time plus the offset set
    /// by [`Simulator::advance_clock`] and [`Simulator::rewind_clock`]).
    pub fn clock(&self) -> i64 {
        self.now()
    }

    /// Changes a record's status (and end time); false when not found.
    pub fn set_invocation_status(
        &self,
        project_id: &str,
        package: &str,
        name: &str,
        request_id: &str,
        status: SimStatus,
        end: Option<i64>,
    ) -> bool {
        self.with_function(project_id, package, name, |f| {
            let inv = f
                .invocations
                .iter_mut()
                .find(|i| i.request_id == request_id)?;
            let updated = Invocation::new(request_id, status, inv.start, end);
            inv.status = updated.status;
            inv.error_code = updated.error_code;
            inv.error_message = updated.error_message;
            inv.end = updated.end;
            Some(())
        })
        .flatten()
        .is_some()
    }

    /// Deploys new code: digest, size and last_modified change.
    pub fn set_code(
        &self,
        project_id: &str,
        package: &str,
        name: &str,
        digest: &str,
        size: u64,
        last_modified: i64,
    ) -> bool {
        self.with_function(project_id, package, name, |f| {
            f.digest = digest.to_owned();
            f.spec.code_size = size;
            f.last_modified = last_modified;
        })
        .is_some()
    }

    /// Sets the snapshot state and switch of a function.
    pub fn set_snapshot(
        &self,
        project_id: &str,
        package: &str,
        name: &str,
        state: &str,
        enabled: bool,
    ) -> bool {
        self.with_function(project_id, package, name, |f| {
            f.spec.snapshot_state = state.to_owned();
            f.spec.snapshot_enabled = enabled;
        })
        .is_some()
    }

    /// Makes one endpoint of one function misbehave: always, for the next
    /// few requests, or no longer (see [`FaultSetting`]).
    pub fn set_fault(
        &self,
        project_id: &str,
        package: &str,
        name: &str,
        endpoint: Endpoint,
        setting: impl Into<FaultSetting>,
    ) {
        let key = (
            project_id.to_owned(),
            package.to_owned(),
            name.to_owned(),
            endpoint,
        );
        let rule = match setting.into() {
            FaultSetting::Heal => None,
            FaultSetting::Always(fault) => Some((fault, None)),
            FaultSetting::Times(fault, times) => Some((fault, Some(times))),
        };
        let mut w = self.world();
        match rule {
            Some((fault, remaining)) => {
                w.faults.insert(key, world::FaultRule { fault, remaining });
            }
            None => {
                w.faults.remove(&key);
            }
        }
    }

    /// Heals every fault, of every function and project, and of IAM.
    pub fn clear_faults(&self) {
        let mut w = self.world();
        w.faults.clear();
        w.project_faults.clear();
        w.iam_fault = None;
    }

    /// Makes IAM's token endpoint misbehave (`None` heals it), e.g. with a
    /// [`Fault::Redirect`].
    pub fn set_iam_fault(&self, fault: Option<Fault>) {
        self.world().iam_fault = fault.map(|fault| world::FaultRule {
            fault,
            remaining: None,
        });
    }

    /// Adds `count` quota types to every project's quotas answer, named
    /// `t<n>` padded with `x` to `name_len` characters.
    pub fn add_quota_types(&self, count: usize, name_len: usize) {
        let mut w = self.world();
        for i in 0..count {
            let base = format!("t{i}");
            let pad = "x".repeat(name_len.saturating_sub(base.len()));
            w.extra_quotas
                .push((format!("{base}{pad}"), 1000, i as u64));
        }
    }

    /// Makes IAM state an `expires_at` of now plus `seconds` (negative: in
    /// the past) in its token answers, while the tokens themselves keep
    /// their lifetime at the gateway (a clock out of step); `None` restores
    /// the real expiry.
    pub fn set_stated_token_expiry(&self, seconds: Option<i64>) {
        self.world().stated_token_expiry = seconds;
    }

    /// Makes every endpoint of a project misbehave (`None` heals it).
    pub fn set_project_fault(&self, project_id: &str, fault: Option<Fault>) {
        let mut w = self.world();
        match fault {
            Some(fault) => {
                w.project_faults.insert(
                    project_id.to_owned(),
                    world::FaultRule {
                        fault,
                        remaining: None,
                    },
                );
            }
            None => {
                w.project_faults.remove(project_id);
            }
        }
    }

    /// Adds `count` functions named `<prefix>0000`, `<prefix>0001`, ... in
    /// package `default` (scale tests and benchmarks).
    pub fn generate_functions(&self, project_id: &str, prefix: &str, count: usize) {
        let now = self.now();
        let mut w = self.world();
        for i in 0..count {
            w.add_function(
                project_id,
                FunctionSpec::new("default", &format!("{prefix}{i:04}")),
                now,
            );
        }
    }

    /// Answers every request only after `latency` (benchmarks: a fixed
    /// service time, like a remote API's).
    pub fn set_latency(&self, latency: Duration) {
        self.inner
            .latency_us
            .store(latency.as_micros() as u64, Ordering::Relaxed);
    }

    fn latency(&self) -> Duration {
        Duration::from_micros(self.inner.latency_us.load(Ordering::Relaxed))
    }

    /// Starts or stops keeping the arrival time of every request.
    pub fn record_request_times(&self, on: bool) {
        let mut times = self.lock_times();
        *times = on.then(Vec::new);
    }

    /// Arrival times of the requests since recording started.
    pub fn request_times(&self) -> Vec<Instant> {
        self.lock_times().clone().unwrap_or_default()
    }

    /// Requests received so far, all endpoints.
    pub fn requests(&self) -> u64 {
        self.lock_requests().values().sum()
    }

    /// Requests received so far by one endpoint.
    pub fn requests_to(&self, endpoint: Endpoint) -> u64 {
        self.lock_requests().get(&endpoint).copied().unwrap_or(0)
    }

    /// Requests received so far for one function (`package`, `name`), all
    /// endpoints and qualifiers.
    pub fn requests_of(&self, package: &str, name: &str) -> u64 {
        self.lock_per_function()
            .get(&format!("{package}:{name}"))
            .map_or(0, |l| l.received)
    }

    /// The most requests for one function that were in flight at once. A
    /// request whose answer never completes (a hang) counts as in flight
    /// until the client closes its connection.
    pub fn max_in_flight_of(&self, package: &str, name: &str) -> u64 {
        self.lock_per_function()
            .get(&format!("{package}:{name}"))
            .map_or(0, |l| l.max_in_flight)
    }

    pub(crate) fn start_request(&self, function: String) -> InFlight {
        let mut map = self.lock_per_function();
        let load = map.entry(function.clone()).or_default();
        load.received += 1;
        load.in_flight += 1;
        load.max_in_flight = load.max_in_flight.max(load.in_flight);
        drop(map);
        InFlight {
            sim: self.clone(),
            function,
        }
    }

    fn lock_per_function(&self) -> MutexGuard<'_, BTreeMap<String, FunctionLoad>> {
        self.inner.per_function.lock_or_recover()
    }

    /// Generates the traffic of the last `span`, as if the simulator had
    /// been running: the lookback window is full from the start.
    pub fn backfill(&self, span: Duration) {
        let now = self.now();
        let mut w = self.world();
        let mut t = now - span.as_secs() as i64;
        while t < now {
            t += 10;
            w.step(t.min(now), 10.0);
        }
    }

    /// Advances generated traffic to now.
    pub fn step(&self, elapsed: Duration) {
        let now = self.now();
        let mut w = self.world();
        w.step(now, elapsed.as_secs_f64());
        // About one deploy per ten minutes across the account.
        w.maybe_deploy(now, elapsed.as_secs_f64() / 600.0);
    }

    /// Generates traffic every `tick` until `shutdown`.
    pub async fn run_activity(&self, tick: Duration, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(tick);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = interval.tick() => self.step(tick),
            }
        }
    }

    /// Serves the API (and IAM's token endpoint) on `listener` until
    /// `shutdown`.
    pub async fn serve(&self, listener: TcpListener, shutdown: CancellationToken) {
        let sim = self.clone();
        serve::serve(listener, shutdown, move |req| {
            let sim = sim.clone();
            async move { http::handle(&sim, req).await }
        })
        .await
    }

    fn with_function<T>(
        &self,
        project_id: &str,
        package: &str,
        name: &str,
        f: impl FnOnce(&mut world::Function) -> T,
    ) -> Option<T> {
        self.world().function_mut(project_id, package, name).map(f)
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.inner.world.lock_or_recover()
    }

    fn lock_requests(&self) -> MutexGuard<'_, BTreeMap<Endpoint, u64>> {
        self.inner.requests.lock_or_recover()
    }

    fn count(&self, endpoint: Endpoint) {
        *self.lock_requests().entry(endpoint).or_insert(0) += 1;
        if let Some(times) = self.lock_times().as_mut() {
            times.push(Instant::now());
        }
    }

    fn lock_times(&self) -> MutexGuard<'_, Option<Vec<Instant>>> {
        self.inner.times.lock_or_recover()
    }

    fn auth(&self) -> MutexGuard<'_, auth::AuthState> {
        self.inner.auth.lock_or_recover()
    }

    /// The simulator's clock: real time plus the offset.
    fn now(&self) -> i64 {
        world::now() + self.inner.clock_offset.load(Ordering::Relaxed)
    }

    fn next_request_id(&self) -> String {
        let n = self.inner.request_ids.fetch_add(1, Ordering::Relaxed) + 1;
        format!("sim-{n:016x}")
    }
}
