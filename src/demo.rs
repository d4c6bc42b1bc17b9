//! `--demo`: the simulator on loopback and the exporter pointed at it, with
//! no configuration file and no cloud account.
//!
//! This file owns the demo account (its project, region, credentials and
//! the functions it monitors) and the configuration that polls it; the
//! simulator serves that account. The simulator is in the build only with
//! the `demo` cargo feature (on by default): without it, `--demo` is
//! refused with exit code 2 ([`Error::DemoUnavailable`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use clap::ValueEnum;

use crate::Error;
use crate::config::{
    AuthConfig, AuthMethod, CollectorsConfig, Config, DEFAULT_AUTH_BACKOFF, FailuresConfig,
    Intervals, PollingConfig, ProjectConfig, ShardingConfig, StateConfig, WebConfig,
};
use crate::secret::{Secret, SecretSource};
use crate::urn::FunctionUrn;

/// Whether this build has the simulator, and so `--demo` (the `demo` cargo
/// feature).
pub const AVAILABLE: bool = cfg!(feature = "demo");
/// The project of the demo account.
pub const DEMO_PROJECT_ID: &str = "demo0123456789abcdef0123456789ab";
/// The region of the demo account.
pub const DEMO_REGION: &str = "ap-southeast-1";

/// Where the demo serves `/metrics` unless `--web.listen-address` says
/// otherwise: loopback, as befits a demo.
pub const DEMO_LISTEN_ADDRESS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 10054);
/// The demo polls often, so changes show up while you watch.
pub const DEMO_INTERVAL: Duration = Duration::from_secs(15);
/// The demo's credentials (not secrets: they exist only in this process).
const DEMO_TOKEN: &str = "demo-token";
const DEMO_ACCESS_KEY: &str = "DEMOACCESSKEY0000000";
const DEMO_SECRET_KEY: &str = "demo-secret-key-0123456789abcdefghijklmn";
const DEMO_DOMAIN: &str = "demo-account";
const DEMO_USER: &str = "exporter";
const DEMO_PASSWORD: &str = "demo-password";

/// `--demo.auth`: how the demo exporter authenticates to its simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DemoAuth {
    /// Every request signed with an access key pair.
    #[default]
    Aksk,
    /// IAM tokens obtained with a password.
    Password,
    /// A static IAM token.
    Token,
}

/// Starts the simulator on an ephemeral loopback port, generating traffic
/// until `shutdown`, and returns the configuration that polls it.
#[cfg(feature = "demo")]
pub async fn start_simulator(
    listen_address: SocketAddr,
    auth: DemoAuth,
    shutdown: CancellationToken,
) -> Result<Config, Error> {
    let sim = crate::simulator::Simulator::demo(DEMO_TOKEN, DEMO_PROJECT_ID, DEMO_REGION);
    sim.add_access_key(DEMO_ACCESS_KEY, DEMO_SECRET_KEY);
    sim.add_iam_user(DEMO_DOMAIN, DEMO_USER, DEMO_PASSWORD);
    let listener = crate::app::bind(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)).await?;
    let sim_addr = listener.local_addr().map_err(Error::Io)?;
    tokio::spawn({
        let sim = sim.clone();
        let shutdown = shutdown.clone();
        async move { sim.serve(listener, shutdown).await }
    });
    tokio::spawn(async move { sim.run_activity(Duration::from_secs(1), shutdown).await });
    tracing::info!(
        "demo: FunctionGraph simulator on http://{sim_addr}, project {DEMO_PROJECT_ID}, auth {auth:?}"
    );
    Ok(config(&format!("http://{sim_addr}"), listen_address, auth))
}

/// Without the simulator in the build: [`Error::DemoUnavailable`].
#[cfg(not(feature = "demo"))]
pub async fn start_simulator(
    _listen_address: SocketAddr,
    _auth: DemoAuth,
    _shutdown: CancellationToken,
) -> Result<Config, Error> {
    Err(Error::DemoUnavailable)
}

/// The monitored references of the demo account, as a user would write
/// them in `functions = [...]` (the simulator's demo functions, named in
/// every form a reference can take).
fn function_refs() -> Vec<String> {
    vec![
        "default:image-resize".to_owned(),
        "default:payment-webhook".to_owned(),
        format!("{DEMO_PROJECT_ID}:orders:order-processor:v2"),
        "etl:nightly-report".to_owned(),
        format!("urn:fss:{DEMO_REGION}:{DEMO_PROJECT_ID}:function:default:thumbnail:!prod"),
    ]
}

/// The demo configuration for a simulator at `endpoint`.
pub fn config(endpoint: &str, listen_address: SocketAddr, auth: DemoAuth) -> Config {
    let inline = |s: &str| SecretSource::Inline(Secret::new(s));
    let method = match auth {
        DemoAuth::Aksk => AuthMethod::AkSk {
            access_key: inline(DEMO_ACCESS_KEY),
            secret_key: inline(DEMO_SECRET_KEY),
            security_token: None,
        },
        DemoAuth::Password => AuthMethod::Password {
            user_name: DEMO_USER.to_owned(),
            domain_name: DEMO_DOMAIN.to_owned(),
            password: inline(DEMO_PASSWORD),
            iam_endpoint: endpoint.to_owned(),
        },
        DemoAuth::Token => AuthMethod::Token(inline(DEMO_TOKEN)),
    };
    let functions = function_refs()
        .iter()
        .map(|r| {
            FunctionUrn::parse_in(r, DEMO_REGION, DEMO_PROJECT_ID)
                .expect("demo references are valid")
        })
        .collect();
    Config {
        origin: "--demo".to_owned(),
        web: WebConfig { listen_address },
        polling: PollingConfig {
            interval: DEMO_INTERVAL,
            intervals: Intervals {
                // Everything changes quickly in the demo.
                versions: DEMO_INTERVAL * 4,
                code: DEMO_INTERVAL * 4,
                snapshot: DEMO_INTERVAL * 4,
                quotas: DEMO_INTERVAL * 4,
                ..Intervals::defaults(DEMO_INTERVAL)
            },
            ..PollingConfig::default()
        },
        // The demo shows the optional collectors too.
        collectors: CollectorsConfig {
            statistics: true,
            quotas: true,
            ..CollectorsConfig::default()
        },
        sharding: ShardingConfig::default(),
        state: StateConfig::default(),
        failures: FailuresConfig::default(),
        projects: vec![ProjectConfig {
            project_id: DEMO_PROJECT_ID.to_owned(),
            region: DEMO_REGION.to_owned(),
            endpoint: endpoint.to_owned(),
            functions,
            max_requests_per_second: 50,
            discovery: None,
            auth: AuthConfig {
                method,
                failure_backoff: DEFAULT_AUTH_BACKOFF,
            },
            allow_insecure_http: false,
        }],
    }
}
