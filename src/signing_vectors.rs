//! The signing test vectors of the reference (appendix A), kept once as
//! data in `tests/fixtures/signing_vectors.toml`: the signer's tests
//! ([`crate::api::sign`]) reproduce them and the simulator's verifier's
//! tests (`simulator::gateway`) accept them, each with its own
//! implementation of the algorithm. The same file lists canonical URIs
//! both implementations must produce.

use std::sync::LazyLock;

use serde::Deserialize;

/// The access key of the vectors.
pub(crate) const AK: &str = "AKIDEXAMPLE0000000000";
/// Its secret key.
pub(crate) const SK: &str = "SKEXAMPLEsecretKey0123456789abcdefghijklm";
/// The vectors' `X-Sdk-Date`.
pub(crate) const DATE: &str = "20240102T030405Z";
/// `DATE` as Unix seconds.
pub(crate) const NOW: i64 = 1_704_164_645;
pub(crate) const HOST: &str = "functiongraph.ap-southeast-1.myhuaweicloud.com";
pub(crate) const PROJECT_ID: &str = "0123456789abcdef0123456789abcdef";

/// An Appendix A vector: the request as sent and what signing it gives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Vector {
    pub(crate) name: String,
    pub(crate) method: String,
    /// Path and query as on the wire request line.
    pub(crate) target: String,
    pub(crate) body: String,
    pub(crate) canonical_request: String,
    pub(crate) string_to_sign: String,
    pub(crate) authorization: String,
}

/// A path and its canonical form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CanonicalUri {
    pub(crate) path: String,
    pub(crate) canonical: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    vector: Vec<Vector>,
    canonical_uri: Vec<CanonicalUri>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    toml::from_str(include_str!("../tests/fixtures/signing_vectors.toml"))
        .expect("tests/fixtures/signing_vectors.toml is valid")
});

/// Appendix A, vectors A to F.
pub(crate) fn vectors() -> &'static [Vector] {
    &FIXTURE.vector
}

/// The vector called `name`.
pub(crate) fn vector(name: &str) -> &'static Vector {
    vectors()
        .iter()
        .find(|v| v.name == name)
        .expect("a vector of appendix A")
}

/// Paths and their canonical URIs.
pub(crate) fn canonical_uris() -> &'static [CanonicalUri] {
    &FIXTURE.canonical_uri
}
