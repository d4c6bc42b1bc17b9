//! Authentication against the simulator's gateway and IAM: AK/SK signing,
//! temporary credentials, password tokens, rotated secret files, the
//! back-off that protects an access key from the gateway's lock-out, and
//! secrets kept out of logs, pages and metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use functiongraph_exporter::api::Endpoint;
use functiongraph_exporter::api::sign::{SigningInput, sdk_date, sign};
use functiongraph_exporter::simulator::{FunctionSpec, Invocation, SimStatus, Simulator};
use functiongraph_exporter::timefmt::now_unix;
use tokio_util::sync::CancellationToken;

use crate::util::{
    Exposition, Harness, REGION, SecretFiles, Setup, log_text, serve_simulator, simulator_in,
    write_secret,
};

const AK: &str = "AKTESTACCESSKEY00001";
const SK: &str = "sk-test-SECRET-9f8e7d6c5b4a39281706";
const SECURITY_TOKEN: &str = "sts-test-SECURITY-TOKEN-2b3c4d5e6f";
const PASSWORD: &str = "pw-test-PASSWORD-7a6b5c4d";

/// The auth table of AK/SK read from the files `ak` and `sk`, then `extra`.
fn aksk(secrets: &SecretFiles, extra: &str) -> String {
    format!(
        "type = \"aksk\"\naccess_key_file = \"{}\"\nsecret_key_file = \"{}\"\n{extra}",
        secrets.path("ak"),
        secrets.path("sk")
    )
}

fn auth_failures(m: &Exposition, project: &str) -> f64 {
    m.get(
        "functiongraph_exporter_auth_failures_total",
        &[("project_id", project)],
    )
}

/// No authentication failure of `project`, and no request answered 401.
fn assert_never_refused(m: &Exposition, project: &str) {
    assert_eq!(auth_failures(m, project), 0.0);
    assert_eq!(
        m.matching(
            "functiongraph_exporter_api_requests_total",
            &[("code", "401")]
        )
        .count(),
        0
    );
}

/// A full cycle signed with AK/SK, an alias-qualified URN (`!` in the
/// path) and time-window query parameters (`:` in the query), verified by
/// the simulator's own implementation of the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aksk_signs_every_request() {
    let project = "a0000000000000000000000000000001";
    let sim = simulator_in(project, &["default:f1"]);
    sim.add_function(
        project,
        FunctionSpec::new("default", "f2")
            .version("v1")
            .alias("prod", "v1"),
    );
    sim.add_access_key(AK, SK);
    sim.set_tokens(&[]);
    let secrets = SecretFiles::new(&[("ak", AK), ("sk", SK)]);
    let alias = format!("urn:fss:{REGION}:{project}:function:default:f2:!prod");
    let h = Harness::start_ready(
        &sim,
        Setup {
            auth: Some(aksk(&secrets, "")),
            ..Setup::of(project, &["default:f1", &alias])
        },
    )
    .await;
    let now = now_unix();
    let inv = Invocation::new("new-1", SimStatus::Fail, now - 2, Some(now - 1)).through("!prod");
    assert!(sim.add_invocation(project, "default", "f2", inv));
    h.poll().await;
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 1.0);
    assert_eq!(m.up("f2"), 1.0);
    assert_eq!(m.invocations("f2", "FAIL"), 1.0);
    assert_never_refused(&m, project);
    assert!(sim.requests_to(Endpoint::AsyncInvocations) >= 4);
    h.stop().await;
}

/// A wrong secret: one request reaches the gateway, one failure is logged,
/// nothing more goes out during the back-off, and fixing the secret file is
/// enough to recover once the back-off is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_backs_off_and_recovers_when_the_file_is_fixed() {
    let project = "a0000000000000000000000000000002";
    let logs_before = log_text().len();
    let functions = ["default:f1", "default:f2", "default:f3"];
    let sim = simulator_in(project, &functions);
    sim.add_access_key(AK, SK);
    let secrets = SecretFiles::new(&[("ak", AK), ("sk", "not-the-secret")]);
    let (h, clock) = Harness::start_clocked(
        &sim,
        project,
        &functions,
        aksk(&secrets, "failure_backoff = \"10m\""),
    )
    .await;
    assert_eq!(sim.requests(), 1, "only the probe reaches the gateway");
    let m = h.metrics().await;
    for f in ["f1", "f2", "f3"] {
        assert_eq!(m.up(f), 0.0);
    }
    assert_eq!(auth_failures(&m, project), 1.0);
    h.assert_page_shows("verify aksk signature fail").await;

    // Within the back-off: nothing is sent, however often we poll, even
    // with the secret fixed.
    h.poll().await;
    write_secret(&secrets.dir.path().join("sk"), SK);
    h.poll().await;
    assert_eq!(sim.requests(), 1);

    clock.advance(Duration::from_secs(11 * 60));
    h.poll().await;
    let m = h.metrics().await;
    for f in ["f1", "f2", "f3"] {
        assert_eq!(m.up(f), 1.0, "{f} recovered");
    }
    assert_eq!(auth_failures(&m, project), 1.0);

    let logs = log_text()[logs_before..].to_owned();
    let failures: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(project) && l.contains("WARN"))
        .collect();
    assert_eq!(
        failures.len(),
        1,
        "one warning for the failure: {failures:#?}"
    );
    assert!(failures[0].contains("authentication failed") && failures[0].contains("APIGW.0301"));
    assert!(
        logs.lines()
            .any(|l| l.contains(project) && l.contains("authentication recovered"))
    );
    h.stop().await;
}

/// The gateway refuses signatures dated more than 15 minutes from its clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_beyond_fifteen_minutes_is_refused() {
    let project = "a0000000000000000000000000000003";
    let secrets = SecretFiles::new(&[("ak", AK), ("sk", SK)]);
    for (skew_minutes, expect_up) in [(16, 0.0), (14, 1.0)] {
        let sim = simulator_in(project, &["default:f1"]);
        sim.add_access_key(AK, SK);
        sim.advance_clock(Duration::from_secs(skew_minutes * 60));
        let h = Harness::start_ready(
            &sim,
            Setup {
                auth: Some(aksk(&secrets, "")),
                ..Setup::of(project, &["default:f1"])
            },
        )
        .await;
        let m = h.metrics().await;
        assert_eq!(m.up("f1"), expect_up, "skew {skew_minutes} min");
        if expect_up == 0.0 {
            h.assert_page_shows("signature expired").await;
        }
        h.stop().await;
    }
}

/// Five consecutive failures lock the key, even for a good signature, until
/// the lock-out period is over. (The simulator's side of what the
/// exporter's back-off protects against.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_locks_a_key_after_five_failures() {
    let project = "a0000000000000000000000000000004";
    let sim = simulator_in(project, &["default:f1"]);
    sim.add_access_key(AK, SK);
    let shutdown = CancellationToken::new();
    let addr = serve_simulator(&sim, &shutdown).await;
    let host = addr.to_string();
    let http = reqwest::Client::new();
    let path = format!("/v2/{project}/fgs/functions/default%3Af1/code");
    // Requests are dated by the simulator's clock, which the test moves.
    let offset = Arc::new(AtomicI64::new(0));
    let send = |secret: &'static str| {
        let (http, host, path) = (http.clone(), host.clone(), path.clone());
        let offset = Arc::clone(&offset);
        async move {
            let date = sdk_date(now_unix() + offset.load(Ordering::Relaxed));
            let signed = sign(
                AK,
                secret,
                &SigningInput {
                    method: "GET",
                    host: &host,
                    path: &path,
                    canonical_query: "",
                    headers: &[("content-type", "application/json")],
                    body: b"",
                    sdk_date: &date,
                },
            );
            let r = http
                .get(format!("http://{host}{path}"))
                .header("content-type", "application/json")
                .header("x-sdk-date", date)
                .header("authorization", signed.authorization)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(send(SK).await.0, 200);
    for _ in 0..5 {
        let (status, body) = send("wrong").await;
        assert_eq!(status, 401);
        assert!(body.contains("verify aksk signature fail"), "{body}");
    }
    let (status, body) = send(SK).await;
    assert_eq!(status, 401);
    assert!(
        body.contains("AK access failed to reach the limit"),
        "{body}"
    );
    sim.advance_clock(Duration::from_secs(5 * 60 + 1));
    offset.store(5 * 60 + 1, Ordering::Relaxed);
    assert_eq!(send(SK).await.0, 200);
    shutdown.cancel();
}

/// Temporary credentials: the security token is sent and signed; without
/// it the gateway refuses the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_credentials_send_a_signed_security_token() {
    let project = "a0000000000000000000000000000005";
    let secrets = SecretFiles::new(&[("ak", AK), ("sk", SK), ("sts", SECURITY_TOKEN)]);
    for (extra, expect_up) in [
        (
            format!("security_token_file = \"{}\"", secrets.path("sts")),
            1.0,
        ),
        (String::new(), 0.0),
    ] {
        let sim = simulator_in(project, &["default:f1"]);
        sim.add_temporary_access_key(AK, SK, SECURITY_TOKEN);
        let h = Harness::start_ready(
            &sim,
            Setup {
                auth: Some(aksk(&secrets, &extra)),
                ..Setup::of(project, &["default:f1"])
            },
        )
        .await;
        assert_eq!(h.metrics().await.up("f1"), expect_up, "{extra:?}");
        h.stop().await;
    }
}

fn password_auth(secrets: &SecretFiles, extra: &str) -> String {
    format!(
        "type = \"password\"\nuser_name = \"exporter\"\ndomain_name = \"acme\"\npassword_file = \"{}\"\niam_endpoint = \"{{endpoint}}\"\n{extra}",
        secrets.path("password")
    )
}

/// A password token is fetched once, shared by all requests, and refreshed
/// ahead of its expiry: no poll ever fails for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_tokens_are_refreshed_before_they_expire() {
    let project = "a0000000000000000000000000000006";
    let functions = ["default:f1", "default:f2"];
    let sim = simulator_in(project, &functions);
    sim.add_iam_user("acme", "exporter", PASSWORD);
    sim.set_token_ttl(Duration::from_secs(10 * 60));
    let secrets = SecretFiles::new(&[("password", PASSWORD)]);
    let (h, clock) =
        Harness::start_clocked(&sim, project, &functions, password_auth(&secrets, "")).await;
    assert_eq!(sim.requests_to(Endpoint::IamTokens), 1);
    h.poll().await;
    assert_eq!(
        sim.requests_to(Endpoint::IamTokens),
        1,
        "the token is reused"
    );

    // Six minutes later, four are left: less than the five-minute margin.
    clock.advance(Duration::from_secs(6 * 60));
    sim.advance_clock(Duration::from_secs(6 * 60));
    h.poll().await;
    assert_eq!(
        sim.requests_to(Endpoint::IamTokens),
        2,
        "refreshed once, ahead of expiry"
    );
    let m = h.metrics().await;
    for f in ["f1", "f2"] {
        assert_eq!(m.up(f), 1.0);
    }
    assert_never_refused(&m, project);
    h.stop().await;
}

/// A token the gateway says has expired (here: its clock ran ahead) is
/// replaced once, for all the requests that were refused, and they succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_as_expired_is_refreshed_once() {
    let project = "a0000000000000000000000000000007";
    let functions = ["default:f1", "default:f2", "default:f3"];
    let sim = simulator_in(project, &functions);
    sim.add_iam_user("acme", "exporter", PASSWORD);
    sim.set_token_ttl(Duration::from_secs(10 * 60));
    let secrets = SecretFiles::new(&[("password", PASSWORD)]);
    let h = Harness::start_ready(
        &sim,
        Setup {
            auth: Some(password_auth(&secrets, "")),
            ..Setup::of(project, &functions)
        },
    )
    .await;
    sim.advance_clock(Duration::from_secs(11 * 60));
    h.poll().await;
    assert_eq!(sim.requests_to(Endpoint::IamTokens), 2);
    let m = h.metrics().await;
    for f in ["f1", "f2", "f3"] {
        assert_eq!(m.up(f), 1.0, "{f}: the refused requests were retried");
    }
    h.stop().await;
}

/// A wrong password is an authentication failure too: IAM is asked once
/// per back-off period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_backs_off() {
    let project = "a0000000000000000000000000000008";
    let sim = simulator_in(project, &["default:f1", "default:f2"]);
    sim.add_iam_user("acme", "exporter", PASSWORD);
    let secrets = SecretFiles::new(&[("password", "wrong-password")]);
    let h = Harness::start_ready(
        &sim,
        Setup {
            auth: Some(password_auth(&secrets, "")),
            ..Setup::of(project, &["default:f1", "default:f2"])
        },
    )
    .await;
    h.poll().await;
    assert_eq!(sim.requests_to(Endpoint::IamTokens), 1);
    assert_eq!(sim.requests(), 1);
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 0.0);
    assert_eq!(auth_failures(&m, project), 1.0);
    h.assert_page_shows("The username or password is wrong")
        .await;
    h.stop().await;
}

/// The exporter on `default:f1` of `project`, ready, with the token
/// `token-one` read from the file `token` of the secrets returned.
async fn start_with_token_file(project: &str) -> (Simulator, SecretFiles, Harness) {
    let sim = simulator_in(project, &["default:f1"]);
    sim.set_tokens(&["token-one"]);
    let secrets = SecretFiles::new(&[("token", "token-one")]);
    let h = Harness::start_ready(
        &sim,
        Setup {
            auth: Some(format!(
                "type = \"token\"\ntoken_file = \"{}\"",
                secrets.path("token")
            )),
            ..Setup::of(project, &["default:f1"])
        },
    )
    .await;
    (sim, secrets, h)
}

/// A token file replaced on disk is used from the next request on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_file_needs_no_restart() {
    let project = "a0000000000000000000000000000009";
    let (sim, secrets, h) = start_with_token_file(project).await;
    sim.set_tokens(&["token-two-rotated"]);
    write_secret(&secrets.dir.path().join("token"), "token-two-rotated\n");
    h.poll().await;
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 1.0);
    assert_eq!(auth_failures(&m, project), 0.0);
    h.stop().await;
}

/// A secret file that disappears while the exporter runs: the error names
/// the configuration file and key, as a start-up error would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_secret_file_is_named_by_file_and_key() {
    let project = "a000000000000000000000000000000b";
    let (_sim, secrets, h) = start_with_token_file(project).await;
    std::fs::remove_file(secrets.dir.path().join("token")).unwrap();
    h.poll().await;
    let m = h.metrics().await;
    assert_eq!(m.up("f1"), 0.0);
    let page = h.status_page().await;
    assert!(
        page.contains(&format!(
            "reading credentials: test.toml: projects[0].auth.token_file: {}",
            secrets.path("token")
        )),
        "{page}"
    );
    h.stop().await;
}

/// A cycle in every mode at trace level: no secret appears in the logs,
/// the pages or the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_pages_or_metrics() {
    let project = "a000000000000000000000000000000a";
    let _ = crate::util::captured_logs();
    let secrets = SecretFiles::new(&[
        ("ak", AK),
        ("sk", SK),
        ("sts", SECURITY_TOKEN),
        ("password", PASSWORD),
        ("token", "static-TOKEN-5e4d3c2b1a"),
    ]);
    let modes = [
        aksk(
            &secrets,
            &format!("security_token_file = \"{}\"", secrets.path("sts")),
        ),
        password_auth(&secrets, ""),
        format!(
            "type = \"token\"\ntoken_file = \"{}\"",
            secrets.path("token")
        ),
        // And a refused one, whose errors are logged and shown.
        aksk(&secrets, ""),
    ];
    let mut shown = String::new();
    for auth in modes {
        let sim = simulator_in(project, &["default:f1"]);
        sim.add_temporary_access_key(AK, SK, SECURITY_TOKEN);
        sim.add_iam_user("acme", "exporter", PASSWORD);
        sim.set_tokens(&["static-TOKEN-5e4d3c2b1a"]);
        let h = Harness::start_ready(
            &sim,
            Setup {
                auth: Some(auth),
                ..Setup::of(project, &["default:f1"])
            },
        )
        .await;
        h.poll().await;
        shown.push_str(&h.metrics().await.text);
        shown.push_str(&h.status_page().await);
        h.stop().await;
    }
    let logs = log_text();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "logs were captured at trace level"
    );
    for secret in [
        SK,
        SECURITY_TOKEN,
        PASSWORD,
        "static-TOKEN-5e4d3c2b1a",
        "MIIsim",
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs");
        assert!(
            !shown.contains(secret),
            "{secret} on a page or in the metrics"
        );
    }
}
