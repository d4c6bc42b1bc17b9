//! `--demo`: the simulator on loopback and the exporter pointed at it, with
//! no configuration file and no cloud account.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::config::{AuthConfig, Config, PollingConfig, ProjectConfig, WebConfig};
use crate::secret::{Secret, SecretSource};
use crate::simulator::{DEMO_PROJECT_ID, DEMO_REGION, Simulator};
use crate::urn::FunctionUrn;

/// Where the demo serves `/metrics` unless `--web.listen-address` says
/// otherwise: loopback, as befits a demo.
pub const DEMO_LISTEN_ADDRESS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 10050);
/// The demo polls often, so changes show up while you watch.
pub const DEMO_INTERVAL: Duration = Duration::from_secs(15);
/// The token the demo's simulator accepts (not a secret: it exists only in
/// this process).
const DEMO_TOKEN: &str = "demo-token";

/// Starts the simulator on an ephemeral loopback port, generating traffic
/// until `shutdown`, and returns the configuration that polls it.
pub async fn start_simulator(
    listen_address: SocketAddr,
    shutdown: CancellationToken,
) -> Result<Config, Error> {
    let sim = Simulator::demo(DEMO_TOKEN);
    let listener = crate::app::bind(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)).await?;
    let sim_addr = listener.local_addr().map_err(Error::Io)?;
    tokio::spawn({
        let sim = sim.clone();
        let shutdown = shutdown.clone();
        async move { sim.serve(listener, shutdown).await }
    });
    tokio::spawn(async move { sim.run_activity(Duration::from_secs(1), shutdown).await });
    tracing::info!("demo: FunctionGraph simulator on http://{sim_addr}, project {DEMO_PROJECT_ID}");
    Ok(config(&format!("http://{sim_addr}"), listen_address))
}

/// The demo configuration for a simulator at `endpoint`.
pub fn config(endpoint: &str, listen_address: SocketAddr) -> Config {
    let functions = Simulator::demo_function_refs()
        .iter()
        .map(|r| {
            FunctionUrn::parse_in(r, DEMO_REGION, DEMO_PROJECT_ID)
                .expect("demo references are valid")
        })
        .collect();
    Config {
        web: WebConfig { listen_address },
        polling: PollingConfig {
            interval: DEMO_INTERVAL,
            ..PollingConfig::default()
        },
        projects: vec![ProjectConfig {
            project_id: DEMO_PROJECT_ID.to_owned(),
            region: DEMO_REGION.to_owned(),
            endpoint: endpoint.to_owned(),
            functions,
            auth: AuthConfig::token(SecretSource::Inline(Secret::new(DEMO_TOKEN))),
        }],
    }
}
