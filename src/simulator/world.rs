//! The simulated account: projects, functions, versions, code, snapshot
//! states and asynchronous invocation records, and how they change over
//! time. No HTTP here; `http.rs` answers requests from this state.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::api::Endpoint;
use crate::timefmt::now_unix;

/// How long the simulator keeps invocation records.
const RETENTION_SECONDS: i64 = 24 * 3600;

/// Status of a simulated asynchronous invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimStatus {
    Wait,
    Running,
    Success,
    Fail,
    Discard,
}

impl SimStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SimStatus::Wait => "WAIT",
            SimStatus::Running => "RUNNING",
            SimStatus::Success => "SUCCESS",
            SimStatus::Fail => "FAIL",
            SimStatus::Discard => "DISCARD",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            SimStatus::Wait,
            SimStatus::Running,
            SimStatus::Success,
            SimStatus::Fail,
            SimStatus::Discard,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SimStatus::Success | SimStatus::Fail | SimStatus::Discard
        )
    }
}

/// One asynchronous invocation record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub request_id: String,
    /// The qualifier it was invoked through (`latest`, `v1`, `!prod`).
    pub qualifier: String,
    pub status: SimStatus,
    pub error_code: i64,
    pub error_message: String,
    /// Unix seconds.
    pub start: i64,
    /// Unix seconds; `None` until finished.
    pub end: Option<i64>,
    /// Unix seconds from which listings show the record (the API's
    /// visibility lag); `start` unless set otherwise.
    pub visible_at: i64,
    /// Listed whatever the query's time window (a record the API's filter
    /// does not apply to, as a misbehaving upstream might send).
    pub pinned: bool,
    /// `start_time` / `end_time` as sent, instead of the formatted times
    /// (malformed or out-of-range dates).
    pub raw_times: Option<(String, String)>,
}

impl Invocation {
    /// A record through `latest`.
    pub fn new(request_id: &str, status: SimStatus, start: i64, end: Option<i64>) -> Self {
        let (error_code, error_message) = match status {
            SimStatus::Fail => (500, "function invocation exception".to_owned()),
            SimStatus::Discard => (408, "async message expired".to_owned()),
            _ => (0, String::new()),
        };
        Self {
            request_id: request_id.to_owned(),
            qualifier: "latest".to_owned(),
            status,
            error_code,
            error_message,
            start,
            end,
            visible_at: start,
            pinned: false,
            raw_times: None,
        }
    }

    /// The same record, visible in listings only from `at`.
    pub fn visible_from(mut self, at: i64) -> Self {
        self.visible_at = at;
        self
    }

    /// The same record, listed whatever the query's time window.
    pub fn pinned(mut self) -> Self {
        self.pinned = true;
        self
    }

    /// The same record, with `start_time` and `end_time` sent as given.
    pub fn with_raw_times(mut self, start: &str, end: &str) -> Self {
        self.raw_times = Some((start.to_owned(), end.to_owned()));
        self
    }

    /// The same record invoked through another qualifier.
    pub fn through(mut self, qualifier: &str) -> Self {
        self.qualifier = qualifier.to_owned();
        self
    }
}

/// Generated traffic of a function (demo and soak runs).
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// Qualifier the invocations go through.
    pub qualifier: String,
    pub per_minute: f64,
    pub fail_ratio: f64,
    pub discard_ratio: f64,
    /// Seconds spent in WAIT, min and max.
    pub wait: (i64, i64),
    /// Seconds spent RUNNING, min and max.
    pub run: (i64, i64),
    /// Seconds after its start before a record shows in listings, min and
    /// max (the API's visibility lag).
    pub visibility_lag: (i64, i64),
}

impl Activity {
    /// Invocations through `qualifier` at `per_minute`, none failing, each
    /// running `run` seconds (min, max), visible at once.
    pub fn steady(qualifier: &str, per_minute: f64, run: (i64, i64)) -> Self {
        Self {
            qualifier: qualifier.to_owned(),
            per_minute,
            fail_ratio: 0.0,
            discard_ratio: 0.0,
            wait: (0, 0),
            run,
            visibility_lag: (0, 0),
        }
    }
}

/// What a function's generated traffic really did: the ground truth an
/// exporter's counts are checked against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Truth {
    /// Generated invocations that reached SUCCESS, FAIL and DISCARD.
    pub terminal: [u64; 3],
    /// Sum of their `end - start`, seconds.
    pub duration_sum: i64,
    /// Generated invocations not yet terminal.
    pub pending: u64,
}

/// What a function looks like when it is created.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    pub package: String,
    pub name: String,
    pub runtime: String,
    pub code_type: String,
    pub code_size: u64,
    /// Published versions, oldest first (`latest` always exists).
    pub versions: Vec<String>,
    /// Alias name (without `!`) to version.
    pub aliases: Vec<(String, String)>,
    pub snapshot_state: String,
    pub snapshot_enabled: bool,
    pub max_instances: i64,
    pub activity: Option<Activity>,
}

impl FunctionSpec {
    pub fn new(package: &str, name: &str) -> Self {
        Self {
            package: package.to_owned(),
            name: name.to_owned(),
            runtime: "Python3.9".to_owned(),
            code_type: "zip".to_owned(),
            code_size: 2048,
            versions: Vec::new(),
            aliases: Vec::new(),
            snapshot_state: "enable".to_owned(),
            snapshot_enabled: true,
            max_instances: 400,
            activity: None,
        }
    }

    pub fn runtime(mut self, runtime: &str) -> Self {
        self.runtime = runtime.to_owned();
        self
    }

    pub fn code(mut self, code_type: &str, size: u64) -> Self {
        self.code_type = code_type.to_owned();
        self.code_size = size;
        self
    }

    pub fn version(mut self, version: &str) -> Self {
        self.versions.push(version.to_owned());
        self
    }

    pub fn alias(mut self, alias: &str, version: &str) -> Self {
        self.aliases.push((alias.to_owned(), version.to_owned()));
        self
    }

    pub fn snapshot(mut self, state: &str, enabled: bool) -> Self {
        self.snapshot_state = state.to_owned();
        self.snapshot_enabled = enabled;
        self
    }

    pub fn max_instances(mut self, n: i64) -> Self {
        self.max_instances = n;
        self
    }

    pub fn activity(mut self, activity: Activity) -> Self {
        self.activity = Some(activity);
        self
    }
}

/// A planned change of a generated invocation.
#[derive(Debug, Clone)]
struct Plan {
    run_at: i64,
    finish_at: i64,
    outcome: SimStatus,
}

#[derive(Debug, Clone)]
pub(super) struct Function {
    pub spec: FunctionSpec,
    pub digest: String,
    pub last_modified: i64,
    pub created: i64,
    pub invocations: Vec<Invocation>,
    plans: HashMap<String, Plan>,
    /// Fractional invocations carried between activity steps.
    carry: f64,
    pub truth: Truth,
}

impl Function {
    /// The version a qualifier points to, `None` when it names nothing.
    pub(crate) fn resolve(&self, qualifier: &str) -> Option<String> {
        if qualifier == "latest" {
            return Some("latest".to_owned());
        }
        if let Some(alias) = qualifier.strip_prefix('!') {
            return self
                .spec
                .aliases
                .iter()
                .find(|(a, _)| a == alias)
                .map(|(_, v)| v.clone());
        }
        self.spec.versions.iter().find(|v| *v == qualifier).cloned()
    }
}

#[derive(Debug, Clone)]
pub(super) struct Project {
    pub region: String,
    pub functions: BTreeMap<(String, String), Function>,
}

/// A misbehaviour injected for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and body.
    Status { status: u16, body: String },
    /// Answer 200 with this body (not JSON, wrong types, ...).
    Body(String),
    /// 429 with this `error_code` (`APIGW.0308` from the gateway,
    /// `FSS.0429` from FunctionGraph) and, if given, `Retry-After` seconds.
    Throttle {
        code: String,
        retry_after: Option<u32>,
    },
    /// Answer normally, but only after this long (longer than the
    /// exporter's timeout: a timeout).
    Delay(Duration),
    /// Never answer.
    Hang,
    /// Send the headers and half of a body, then nothing more.
    Stall,
    /// Close the connection without answering.
    Reset,
    /// 200 with a (valid JSON) body of about this many bytes.
    Huge(usize),
    /// A redirect: this status (301, 302, 303, 307, 308) with this
    /// `Location`, e.g. a [`super::Recorder`] on another port.
    Redirect { status: u16, location: String },
    /// Async invocations only: every page is full of records never seen
    /// before (SUCCESS, started now), with request ids this many characters
    /// long, and a `next_marker` that always goes on, without a `count`.
    EndlessRecords { request_id_len: usize },
}

impl Fault {
    /// A documented-looking error answer.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Fault::Status {
            status,
            body: serde_json::json!({"error_code": code, "error_msg": message}).to_string(),
        }
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        Fault::Redirect {
            status,
            location: location.to_owned(),
        }
    }

    /// A throttling answer.
    pub fn throttle(code: &str, retry_after: Option<u32>) -> Self {
        Fault::Throttle {
            code: code.to_owned(),
            retry_after,
        }
    }
}

/// A fault, for a number of requests or until healed.
#[derive(Debug, Clone)]
pub(super) struct FaultRule {
    pub fault: Fault,
    /// Requests it still applies to; `None`: all.
    pub remaining: Option<u32>,
}

impl FaultRule {
    /// The fault for this request, if it still applies (and counts it).
    pub(crate) fn take(&mut self) -> Option<Fault> {
        match &mut self.remaining {
            Some(0) => None,
            Some(n) => {
                *n -= 1;
                Some(self.fault.clone())
            }
            None => Some(self.fault.clone()),
        }
    }
}

/// Where a fault applies: one endpoint of one function.
pub(super) type FaultKey = (String, String, String, Endpoint);

pub(super) struct World {
    pub projects: BTreeMap<String, Project>,
    pub faults: HashMap<FaultKey, FaultRule>,
    /// Faults of every endpoint of a project.
    pub project_faults: HashMap<String, FaultRule>,
    /// Fault of IAM's token endpoint.
    pub iam_fault: Option<FaultRule>,
    /// Quota types answered besides the four real ones: (type, quota, used).
    pub extra_quotas: Vec<(String, u64, u64)>,
    /// Seconds from now to the `expires_at` IAM states in its answers
    /// (the token itself lasts `token_ttl`); `None`: the real expiry.
    pub stated_token_expiry: Option<i64>,
    rng: StdRng,
    ids: u64,
}

impl World {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            projects: BTreeMap::new(),
            faults: HashMap::new(),
            project_faults: HashMap::new(),
            iam_fault: None,
            extra_quotas: Vec::new(),
            stated_token_expiry: None,
            rng: StdRng::seed_from_u64(seed),
            ids: 0,
        }
    }

    /// A request id never used before, `len` characters long (at least 16).
    pub(crate) fn fresh_id(&mut self, len: usize) -> String {
        self.ids += 1;
        format!("{:0>len$x}", self.ids)
    }

    pub(crate) fn function_mut(
        &mut self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Option<&mut Function> {
        self.projects
            .get_mut(project)?
            .functions
            .get_mut(&(package.to_owned(), name.to_owned()))
    }

    pub(crate) fn add_function(&mut self, project: &str, spec: FunctionSpec, now: i64) {
        let digest = self.digest();
        let Some(p) = self.projects.get_mut(project) else {
            return;
        };
        let f = Function {
            digest,
            last_modified: now - 86_400,
            created: now - 30 * 86_400,
            invocations: Vec::new(),
            plans: HashMap::new(),
            carry: 0.0,
            truth: Truth::default(),
            spec,
        };
        p.functions
            .insert((f.spec.package.clone(), f.spec.name.clone()), f);
    }

    /// A fresh SHA-512-like hex digest.
    pub(crate) fn digest(&mut self) -> String {
        (0..8)
            .map(|_| format!("{:016x}", self.rng.random::<u64>()))
            .collect()
    }

    fn request_id(&mut self) -> String {
        self.ids += 1;
        let r: u64 = self.rng.random();
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            (r >> 32) as u32,
            (r >> 16) as u16,
            (r & 0xfff) as u16,
            (self.ids & 0xfff) as u16,
            self.ids
        )
    }

    /// Advances generated traffic to `now` (`elapsed` seconds since the
    /// previous step): new invocations, and WAIT → RUNNING → terminal.
    pub(crate) fn step(&mut self, now: i64, elapsed: f64) {
        let mut keys = Vec::new();
        for (pid, p) in &self.projects {
            for (k, f) in &p.functions {
                if f.spec.activity.is_some() {
                    keys.push((pid.clone(), k.clone()));
                }
            }
        }
        for (pid, (package, name)) in keys {
            let n = {
                let f = self
                    .function_mut(&pid, &package, &name)
                    .expect("listed above");
                let a = f.spec.activity.as_ref().expect("filtered above");
                f.carry += a.per_minute / 60.0 * elapsed;
                let n = f.carry.floor();
                f.carry -= n;
                n as usize
            };
            for _ in 0..n {
                let id = self.request_id();
                let a = self
                    .function_mut(&pid, &package, &name)
                    .and_then(|f| f.spec.activity.clone())
                    .expect("filtered above");
                // Spread the new invocations over the elapsed step.
                let spread = (elapsed.ceil() as i64).max(1) - 1;
                let start = now - self.rng.random_range(0..=spread);
                let wait = self.rng.random_range(a.wait.0..=a.wait.1.max(a.wait.0));
                let run = self.rng.random_range(a.run.0..=a.run.1.max(a.run.0));
                let lag = self
                    .rng
                    .random_range(a.visibility_lag.0..=a.visibility_lag.1.max(a.visibility_lag.0));
                let roll: f64 = self.rng.random();
                let outcome = if roll < a.discard_ratio {
                    SimStatus::Discard
                } else if roll < a.discard_ratio + a.fail_ratio {
                    SimStatus::Fail
                } else {
                    SimStatus::Success
                };
                let f = self
                    .function_mut(&pid, &package, &name)
                    .expect("listed above");
                f.invocations.push(
                    Invocation::new(&id, SimStatus::Wait, start, None)
                        .through(&a.qualifier)
                        .visible_from(start + lag),
                );
                f.truth.pending += 1;
                f.plans.insert(
                    id,
                    Plan {
                        run_at: start + wait,
                        finish_at: start + wait + run,
                        outcome,
                    },
                );
            }
        }
        for p in self.projects.values_mut() {
            for f in p.functions.values_mut() {
                advance(f, now);
            }
        }
    }

    /// Deploys new code to a function with activity, now and then.
    pub(crate) fn maybe_deploy(&mut self, now: i64, probability: f64) {
        if self.rng.random::<f64>() >= probability {
            return;
        }
        let keys: Vec<(String, (String, String))> = self
            .projects
            .iter()
            .flat_map(|(pid, p)| {
                p.functions
                    .iter()
                    .filter(|(_, f)| f.spec.activity.is_some())
                    .map(move |(k, _)| (pid.clone(), k.clone()))
            })
            .collect();
        if keys.is_empty() {
            return;
        }
        let (pid, (package, name)) = keys[self.rng.random_range(0..keys.len())].clone();
        let digest = self.digest();
        let delta = self.rng.random_range(0..4096u64);
        if let Some(f) = self.function_mut(&pid, &package, &name) {
            f.digest = digest;
            f.last_modified = now;
            f.spec.code_size = f.spec.code_size.saturating_add(delta);
        }
    }
}

fn advance(f: &mut Function, now: i64) {
    for inv in &mut f.invocations {
        if inv.status.is_terminal() {
            continue;
        }
        let Some(plan) = f.plans.get(&inv.request_id).cloned() else {
            continue;
        };
        if now >= plan.finish_at || (plan.outcome == SimStatus::Discard && now >= plan.run_at) {
            let end = if plan.outcome == SimStatus::Discard {
                plan.run_at
            } else {
                plan.finish_at
            };
            let done = Invocation::new(&inv.request_id, plan.outcome, inv.start, Some(end));
            inv.status = done.status;
            inv.error_code = done.error_code;
            inv.error_message = done.error_message;
            inv.end = done.end;
            f.plans.remove(&inv.request_id);
            let slot = match plan.outcome {
                SimStatus::Fail => 1,
                SimStatus::Discard => 2,
                _ => 0,
            };
            f.truth.terminal[slot] += 1;
            f.truth.duration_sum += end - inv.start;
            f.truth.pending = f.truth.pending.saturating_sub(1);
        } else if now >= plan.run_at {
            inv.status = SimStatus::Running;
        }
    }
    let oldest = now - RETENTION_SECONDS;
    f.invocations.retain(|i| i.start >= oldest);
}

/// The demo account: five functions in two packages with steady traffic,
/// one of them failing often, one with a backlog, versions, aliases and
/// snapshots.
pub(super) fn demo_functions() -> Vec<FunctionSpec> {
    let activity = |qualifier: &str, per_minute, fail_ratio, discard_ratio, wait, run| Activity {
        qualifier: qualifier.to_owned(),
        per_minute,
        fail_ratio,
        discard_ratio,
        wait,
        run,
        visibility_lag: (0, 0),
    };
    vec![
        FunctionSpec::new("default", "image-resize")
            .runtime("Python3.9")
            .code("zip", 184_320)
            .version("v20261101-090000")
            .activity(activity("latest", 30.0, 0.02, 0.0, (0, 2), (1, 8))),
        FunctionSpec::new("default", "payment-webhook")
            .runtime("Node.js18.15")
            .code("zip", 52_224)
            .max_instances(50)
            .activity(activity("latest", 12.0, 0.25, 0.0, (0, 1), (0, 3))),
        FunctionSpec::new("orders", "order-processor")
            .runtime("Java17")
            .code("jar", 12_582_912)
            .version("v1")
            .version("v2")
            .alias("prod", "v2")
            .snapshot("enable", true)
            .activity(activity("v2", 6.0, 0.05, 0.0, (0, 5), (2, 20))),
        FunctionSpec::new("etl", "nightly-report")
            .runtime("Go1.x")
            .code("zip", 8_388_608)
            .max_instances(-1)
            .activity(activity("latest", 2.0, 0.03, 0.05, (30, 300), (60, 600))),
        FunctionSpec::new("default", "thumbnail")
            .runtime("Python3.12")
            .code("zip", 98_304)
            .version("v1")
            .version("v2")
            .version("v3")
            .alias("prod", "v3")
            .activity(activity("!prod", 20.0, 0.01, 0.0, (0, 1), (0, 2))),
    ]
}

/// Default time source of the world.
pub(super) fn now() -> i64 {
    now_unix()
}
