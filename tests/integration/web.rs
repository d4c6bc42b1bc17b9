//! The web side: `--web.config.file` (basic authentication, TLS with
//! certificate rotation, mutual TLS, start-up validation, the shipped
//! example and promtool), OpenMetrics negotiation and gzip on `/metrics`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION};

use crate::util::{
    DEADLINE, Exposition, Harness, body_of, captured_logs, log_text, run_binary, simulator,
};

const F: &str = "default:web-func";

/// Prometheus 3's default scrape `Accept` header.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
const OM_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn manifest(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A bcrypt hash, cheap (cost 4) so tests stay fast.
fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// Writes `content` to `path` the way rotations do: a new file renamed
/// over the old one.
fn replace_file(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A fresh client (so a fresh connection) with a deadline, that neither
/// decompresses nor asks for gzip on its own.
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(DEADLINE)
        .no_gzip()
        .build()
        .unwrap()
}

#[tokio::test]
async fn basic_auth_protects_every_path_and_follows_the_file() {
    captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let password = "correct horse:battery";
    std::fs::write(
        &web,
        format!(
            "basic_auth_users:\n  alice: \"{}\"\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n",
            bcrypt_hash(password)
        ),
    )
    .unwrap();
    let h = Harness::start_web(&[F], web.clone()).await;
    h.ready().await;
    let http = plain_client();

    for path in [
        "/metrics",
        "/",
        "/failures",
        "/-/healthy",
        "/-/ready",
        "/nowhere",
    ] {
        let r = http.get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without credentials");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Basic realm=\"functiongraph_exporter\""
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    for (user, pass) in [("alice", "wrong"), ("bob", password), ("alice", "")] {
        let r = http
            .get(h.url("/metrics"))
            .header(AUTHORIZATION, basic(user, pass))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{user}:{pass}");
    }
    let r = http
        .get(h.url("/metrics"))
        .header(AUTHORIZATION, "Bearer something")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    for (path, status) in [
        ("/metrics", 200),
        ("/", 200),
        ("/failures", 200),
        ("/-/healthy", 200),
        ("/-/ready", 200),
        ("/nowhere", 404),
    ] {
        // Twice: the second answer comes from the verification cache.
        for _ in 0..2 {
            let r = http
                .get(h.url(path))
                .header(AUTHORIZATION, basic("alice", password))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), status, "{path} with credentials");
            assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        }
    }
    let body = body_of(
        http.get(h.url("/metrics"))
            .header(AUTHORIZATION, basic("alice", password)),
    )
    .await;
    assert_eq!(
        Exposition::parse(&body).get("functiongraph_up", &[("function", "web-func")]),
        1.0
    );

    // A new user list applies from the next new connection on.
    replace_file(
        &web,
        &format!(
            "basic_auth_users:\n  carol: \"{}\"\n",
            bcrypt_hash("carol-pw")
        ),
    );
    let fresh = plain_client();
    let status = |client: reqwest::Client, user: &'static str, pass: &'static str| {
        let url = h.url("/metrics");
        async move {
            client
                .get(url)
                .header(AUTHORIZATION, basic(user, pass))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(fresh.clone(), "carol", "carol-pw").await, 200);
    assert_eq!(
        status(fresh.clone(), "alice", "correct horse:battery").await,
        401
    );

    // An invalid file keeps the last good configuration, logged once.
    replace_file(&web, "basic_auth_users:\n  dave: not-a-hash\n");
    for _ in 0..3 {
        assert_eq!(status(plain_client(), "carol", "carol-pw").await, 200);
    }
    let logs = log_text();
    let web_name = web.display().to_string();
    let errors = logs
        .lines()
        .filter(|l| l.contains("not reloaded") && l.contains(&web_name))
        .count();
    assert_eq!(errors, 1, "{logs}");
    assert!(
        logs.contains("basic_auth_users.dave: not a bcrypt hash"),
        "{logs}"
    );
    // Passwords never reach the log.
    assert!(
        !logs.contains("carol-pw") && !logs.contains("battery"),
        "{logs}"
    );
    h.stop().await;
}

/// A CA, and server certificates it signs for 127.0.0.1 and localhost.
struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "functiongraph test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate: (certificate PEM, key PEM, certificate DER).
    fn leaf(&self, common_name: &str, names: &[&str]) -> (String, String, Vec<u8>) {
        let mut params =
            CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    /// A client identity: a leaf certificate and its key.
    fn identity(&self, common_name: &str, names: &[&str]) -> reqwest::Identity {
        let (cert, key, _) = self.leaf(common_name, names);
        reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap()
    }

    fn client(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .timeout(DEADLINE)
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap()])
            .tls_info(true)
    }

    /// GETs `url` on a new connection from a [`Pki::client`], presenting
    /// `identity` if given.
    async fn get(
        &self,
        url: &str,
        identity: Option<reqwest::Identity>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut client = self.client();
        if let Some(identity) = identity {
            client = client.identity(identity);
        }
        client.build().unwrap().get(url).send().await
    }
}

/// The certificate the server presented on `r`'s connection.
fn peer_certificate(r: &reqwest::Response) -> Vec<u8> {
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("tls info on the response")
        .to_vec()
}

#[tokio::test]
async fn tls_serves_rotated_certificates_on_new_connections() {
    captured_logs();
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert1, key1, der1) = pki.leaf("exporter-1", &["127.0.0.1", "localhost"]);
    std::fs::write(dir.path().join("tls.crt"), &cert1).unwrap();
    std::fs::write(dir.path().join("tls.key"), &key1).unwrap();
    let web = dir.path().join("web.yml");
    // Relative paths: relative to the web configuration's directory.
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  min_version: TLS12\n",
    )
    .unwrap();
    let h = Harness::start_web(&[F], web.clone()).await;
    h.ready().await;
    let url = format!("https://{}/metrics", h.exporter.local_addr());
    // The log says where, with the scheme actually served.
    assert!(
        log_text().contains(&format!("serving metrics on {url}")),
        "{}",
        log_text()
    );

    let first = pki.client().build().unwrap();
    let r = first.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(peer_certificate(&r), der1);
    let body = r.text().await.unwrap();
    assert_eq!(
        Exposition::parse(&body).get("functiongraph_up", &[("function", "web-func")]),
        1.0
    );
    // Plain HTTP on the TLS port gets nothing.
    let plain = plain_client().get(h.url("/metrics")).send().await;
    assert!(
        plain.as_ref().map_or(true, |r| r.status() != 200),
        "{plain:?}"
    );
    // A client that does not trust the CA is refused.
    let untrusting = reqwest::Client::builder()
        .timeout(DEADLINE)
        .tls_certs_only([reqwest::Certificate::from_pem(Pki::new().ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    assert!(untrusting.get(&url).send().await.is_err());

    // Rotate: a new certificate, a new key, no restart.
    let (cert2, key2, der2) = pki.leaf("exporter-2", &["127.0.0.1"]);
    assert_ne!(der1, der2);
    replace_file(&dir.path().join("tls.key"), &key2);
    replace_file(&dir.path().join("tls.crt"), &cert2);
    let r = pki.get(&url, None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        peer_certificate(&r),
        der2,
        "a new connection gets the new certificate"
    );

    // A broken certificate file: the last good pair stays in force.
    replace_file(&dir.path().join("tls.crt"), "not a certificate\n");
    for _ in 0..2 {
        let r = pki.get(&url, None).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(peer_certificate(&r), der2);
    }
    let logs = log_text();
    let errors = logs
        .lines()
        .filter(|l| l.contains("not reloaded") && l.contains(&web.display().to_string()))
        .count();
    assert_eq!(errors, 1, "{logs}");
    assert!(logs.contains("no CERTIFICATE block found"), "{logs}");
    drop(first);
    h.stop().await;
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = pki.leaf("exporter", &["127.0.0.1"]);
    std::fs::write(dir.path().join("tls.crt"), &cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), &key).unwrap();
    std::fs::write(dir.path().join("ca.crt"), &pki.ca_pem).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS13\n",
    )
    .unwrap();
    let h = Harness::start_web(&[F], web).await;
    let url = format!("https://{}/-/healthy", h.exporter.local_addr());

    assert!(pki.get(&url, None).await.is_err());
    let identity = pki.identity("prometheus", &["prometheus.example"]);
    let r = pki.get(&url, Some(identity)).await.unwrap();
    assert_eq!(r.status(), 200);
    // A certificate from another CA is refused.
    let identity = Pki::new().identity("intruder", &["intruder.example"]);
    let refused = pki.get(&url, Some(identity)).await;
    assert!(refused.is_err(), "{refused:?}");
    h.stop().await;
}

#[test]
fn invalid_web_config_stops_the_exporter_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown.yml",
            "tls_server_confg:\n  cert_file: a\n",
            "unknown field `tls_server_confg`",
        ),
        (
            "missing.yml",
            "tls_server_config:\n  cert_file: nowhere.crt\n  key_file: nowhere.key\n",
            "tls_server_config.cert_file",
        ),
        (
            "hash.yml",
            "basic_auth_users:\n  alice: secret\n",
            "basic_auth_users.alice: not a bcrypt hash",
        ),
        (
            "mode.yml",
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n",
            "RequireAnyClientCert is not supported",
        ),
    ];
    for (name, content, problem) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let path = path.display().to_string();
        // Checked before anything starts (the demo would otherwise serve).
        let (code, _, stderr) = run_binary(&[
            "--demo",
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.config.file",
            &path,
        ]);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&path) && stderr.contains(problem),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("secret"), "{stderr}");

        let (code, _, stderr) =
            run_binary(&["--demo", "--check-config", "--web.config.file", &path]);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(&path) && stderr.contains(problem),
            "{name}: {stderr}"
        );
    }
    // A missing file.
    let missing = dir.path().join("absent.yml").display().to_string();
    let (code, _, stderr) =
        run_binary(&["--demo", "--check-config", "--web.config.file", &missing]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(&missing) && stderr.contains("reading the web configuration"),
        "{stderr}"
    );
}

#[test]
fn shipped_example_is_valid() {
    let example = manifest("config/web-config.example.yml");
    let (code, stdout, stderr) = run_binary(&[
        "--demo",
        "--check-config",
        "--web.config.file",
        &example.display().to_string(),
    ]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("web configuration is valid: TLS on, basic authentication on (1 users)"),
        "{stdout}"
    );
}

#[test]
#[cfg_attr(not(has_promtool), ignore = "no promtool: apt install prometheus")]
fn promtool_accepts_the_shipped_example() {
    let promtool = option_env!("FGE_PROMTOOL").unwrap_or("promtool");
    let out = Command::new(promtool)
        .args(["check", "web-config"])
        .arg(manifest("config/web-config.example.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn scrape(h: &Harness, headers: &[(reqwest::header::HeaderName, &str)]) -> reqwest::Response {
    let mut req = plain_client().get(h.url("/metrics"));
    for (k, v) in headers {
        req = req.header(k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    r
}

fn content_type(r: &reqwest::Response) -> String {
    r.headers()["content-type"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn metrics_negotiate_openmetrics_and_text() {
    let h = Harness::start(simulator(&[F]), &[F]).await;
    h.ready().await;

    let r = scrape(&h, &[(ACCEPT, PROMETHEUS_ACCEPT)]).await;
    assert_eq!(content_type(&r), OM_CONTENT_TYPE);
    let om = r.text().await.unwrap();
    assert!(om.ends_with("\n# EOF\n"), "{om}");
    assert_eq!(om.matches("# EOF").count(), 1);
    // Counters are counter families (named without `_total`, samples
    // with it), the invocation counter among them.
    assert!(
        om.contains("\n# TYPE functiongraph_async_invocation_records gauge\n"),
        "{om}"
    );
    assert!(
        om.contains("\n# TYPE functiongraph_async_invocations counter\n"),
        "{om}"
    );
    assert!(!om.contains(" unknown\n"), "{om}");
    assert!(
        om.contains("\n# TYPE functiongraph_exporter_api_requests counter\n"),
        "{om}"
    );
    assert!(
        om.contains("\nfunctiongraph_exporter_api_requests_total{"),
        "{om}"
    );
    assert!(om.contains("le=\"1.0\""), "{om}");
    assert!(om.contains("le=\"+Inf\""), "{om}");

    for headers in [
        &[(ACCEPT, "text/plain")][..],
        &[][..],
        &[(ACCEPT, "application/openmetrics-text;version=0.0.1")][..],
        &[(ACCEPT, "*/*")][..],
    ] {
        let r = scrape(&h, headers).await;
        assert_eq!(content_type(&r), TEXT_CONTENT_TYPE, "{headers:?}");
        let text = r.text().await.unwrap();
        assert!(!text.contains("# EOF"));
        assert!(text.contains("\n# TYPE functiongraph_async_invocations_total counter\n"));
    }

    // Both formats carry the same series.
    let text = scrape(&h, &[]).await.text().await.unwrap();
    let (om, text) = (Exposition::parse(&om), Exposition::parse(&text));
    assert_eq!(om.names(), text.names());
    assert_eq!(
        om.get("functiongraph_up", &[("function", "web-func")]),
        text.get("functiongraph_up", &[("function", "web-func")])
    );
    h.stop().await;
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut out)
        .unwrap();
    out
}

/// The lines that cannot change between two scrapes with no poll in
/// between (process metrics move on their own).
fn stable(body: &str) -> Vec<&str> {
    body.lines()
        .filter(|l| !l.starts_with("process_"))
        .collect()
}

/// A compressed body asked for many times a second is sent, from some
/// request on, whole from a memory file with `sendfile`
/// (`MIRROR_AFTER`): every response, on connections side by side and many
/// on each, is the whole exposition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_asked_for_often_arrives_whole() {
    let h = Harness::start(simulator(&[F]), &[F]).await;
    h.ready().await;
    let asked = [(ACCEPT, PROMETHEUS_ACCEPT), (ACCEPT_ENCODING, "gzip")];
    let reference = gunzip(&scrape(&h, &asked).await.bytes().await.unwrap());
    assert!(reference.ends_with("# EOF\n"));
    let reference = stable(&reference)
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let client = plain_client();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (client, url) = (client.clone(), h.url("/metrics"));
        tasks.push(tokio::spawn(async move {
            let mut bodies = Vec::new();
            for _ in 0..40 {
                let r = client
                    .get(&url)
                    .header(ACCEPT, PROMETHEUS_ACCEPT)
                    .header(ACCEPT_ENCODING, "gzip")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                assert_eq!(r.headers()["content-encoding"], "gzip");
                bodies.push(r.bytes().await.unwrap());
            }
            bodies
        }));
    }
    for task in tasks {
        for body in task.await.unwrap() {
            let text = gunzip(&body);
            assert!(text.ends_with("# EOF\n"), "a whole exposition");
            assert_eq!(stable(&text), reference);
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn metrics_are_gzipped_when_asked() {
    let h = Harness::start(simulator(&[F]), &[F]).await;
    h.ready().await;
    for (accept, eof) in [(None, false), (Some(PROMETHEUS_ACCEPT), true)] {
        let mut headers = vec![(ACCEPT_ENCODING, "gzip")];
        if let Some(a) = accept {
            headers.push((ACCEPT, a));
        }
        let r = scrape(&h, &headers).await;
        assert_eq!(r.headers()["content-encoding"], "gzip");
        assert_eq!(r.headers()["vary"], "Accept, Accept-Encoding");
        let gzipped = r.bytes().await.unwrap();
        let unzipped = gunzip(&gzipped);
        // The same generation, uncompressed.
        headers.remove(0);
        let r = scrape(&h, &headers).await;
        assert!(r.headers().get("content-encoding").is_none());
        assert_eq!(r.headers()["vary"], "Accept, Accept-Encoding");
        let plain = r.text().await.unwrap();
        // Compressed (pieces at level 1 take about a third of a body this
        // small, 6 % of one of 1,000 functions).
        assert!(
            gzipped.len() < plain.len() / 2,
            "{} vs {}",
            gzipped.len(),
            plain.len()
        );
        assert_eq!(stable(&unzipped), stable(&plain));
        assert_eq!(unzipped.ends_with("# EOF\n"), eof);
        assert!(unzipped.contains("functiongraph_up{"), "{unzipped}");
    }
    // Refused gzip is not sent.
    let r = scrape(&h, &[(ACCEPT_ENCODING, "gzip;q=0, identity")]).await;
    assert!(r.headers().get("content-encoding").is_none());
    // After a poll (a new generation), the compressed body follows.
    h.poll().await;
    let r = scrape(&h, &[(ACCEPT_ENCODING, "gzip")]).await;
    let unzipped = gunzip(&r.bytes().await.unwrap());
    let plain = scrape(&h, &[]).await.text().await.unwrap();
    assert_eq!(stable(&unzipped), stable(&plain));
    h.stop().await;
}
