//! Builds the rustls server configuration from validated
//! [`TlsSettings`]: reads the PEM certificate chain, private key and client
//! CA, with aws-lc-rs, the crypto provider reqwest already brings in.
//!
//! The server offers ALPN `http/1.1` only: hyper serves HTTP/1.1 here.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

use super::config::{ClientAuth, Pem, TlsSettings, TlsVersion};

/// The process's crypto provider: aws-lc-rs.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads the files `settings` names and builds the server configuration.
/// Errors name the key and file and never contain key material.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    const P: &str = "tls_server_config";
    let cert_pem = read(&settings.cert, P, "cert_file", "cert")?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "{}: not PEM certificates: {e}",
                what(&settings.cert, P, "cert_file", "cert")
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no CERTIFICATE block found",
            what(&settings.cert, P, "cert_file", "cert")
        ));
    }
    let key_pem = read(&settings.key, P, "key_file", "key")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!(
            "{}: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
            what(&settings.key, P, "key_file", "key")
        )
    })?;

    let provider = provider();
    let versions: Vec<&'static SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (settings.min_version..=settings.max_version).contains(v))
    .map(|(_, v)| v)
    .collect();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("{P}: TLS versions: {e}"))?;
    let builder = match (settings.client_auth, &settings.client_ca) {
        (ClientAuth::NoClientCert, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(ca)) => {
            let ca_pem = read(ca, P, "client_ca_file", "client_ca")?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&ca_pem) {
                let cert = cert.map_err(|e| {
                    format!(
                        "{}: not PEM certificates: {e}",
                        what(ca, P, "client_ca_file", "client_ca")
                    )
                })?;
                roots.add(cert).map_err(|e| {
                    format!(
                        "{}: unusable CA certificate: {e}",
                        what(ca, P, "client_ca_file", "client_ca")
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "{}: no CERTIFICATE block found",
                    what(ca, P, "client_ca_file", "client_ca")
                ));
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            if mode == ClientAuth::VerifyClientCertIfGiven {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| format!("{P}: client certificate verifier: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "{P}: certificate and key: {e} ({} and {})",
            what(&settings.cert, P, "cert_file", "cert"),
            what(&settings.key, P, "key_file", "key")
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// How to name a PEM source in a message: the key and the file, or the
/// inline key.
fn what(pem: &Pem, prefix: &str, file_key: &str, inline_key: &str) -> String {
    match pem {
        Pem::File(path) => format!("{prefix}.{file_key} {}", path.display()),
        Pem::Inline(_) => format!("{prefix}.{inline_key}"),
    }
}

fn read(pem: &Pem, prefix: &str, file_key: &str, inline_key: &str) -> Result<Vec<u8>, String> {
    match pem {
        // Regular files only, bounded: a PEM chain is a few kilobytes.
        Pem::File(path) => crate::secret::read_bounded(path, 1024 * 1024)
            .map(String::into_bytes)
            .map_err(|e| format!("{}: {e}", what(pem, prefix, file_key, inline_key))),
        Pem::Inline(text) => Ok(text.expose().as_bytes().to_vec()),
    }
}
