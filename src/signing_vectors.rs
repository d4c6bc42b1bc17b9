//! The signing test vectors of the reference (appendix A), kept once: the
//! signer's tests ([`crate::api::sign`]) reproduce them and the simulator's
//! verifier's tests (`simulator::gateway`) accept them, each with its own
//! implementation of the algorithm.

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
pub(crate) struct Vector {
    pub(crate) name: &'static str,
    pub(crate) method: &'static str,
    /// Path and query as on the wire request line.
    pub(crate) target: &'static str,
    pub(crate) body: &'static str,
    pub(crate) canonical_request: &'static str,
    pub(crate) string_to_sign: &'static str,
    pub(crate) authorization: &'static str,
}

/// Appendix A, vectors A to F, copied from the reference.
pub(crate) const VECTORS: &[Vector] = &[
    Vector {
        name: "A",
        method: "GET",
        target: "/v2/0123456789abcdef0123456789abcdef/fgs/functions?marker=0&maxitems=400",
        body: "",
        canonical_request: "GET\n\
            /v2/0123456789abcdef0123456789abcdef/fgs/functions/\n\
            marker=0&maxitems=400\n\
            content-type:application/json\n\
            host:functiongraph.ap-southeast-1.myhuaweicloud.com\n\
            x-project-id:0123456789abcdef0123456789abcdef\n\
            x-sdk-date:20240102T030405Z\n\
            \n\
            content-type;host;x-project-id;x-sdk-date\n\
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "SDK-HMAC-SHA256\n20240102T030405Z\nd2207b512bcb21d1d3fae7d31cfb8ff693d79f6ee0f0e5227b959a2794133cd7",
        authorization: "SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=d7d2dcd301f002cee481737422bf505d38a82eccf0927aace479a94b07d53163",
    },
    Vector {
        name: "B",
        method: "GET",
        target: "/v2/0123456789abcdef0123456789abcdef/fgs/functions/urn%3Afss%3Aap-southeast-1%3A0123456789abcdef0123456789abcdef%3Afunction%3Adefault%3Amy-func%3Alatest/code",
        body: "",
        canonical_request: "GET\n\
            /v2/0123456789abcdef0123456789abcdef/fgs/functions/urn%3Afss%3Aap-southeast-1%3A0123456789abcdef0123456789abcdef%3Afunction%3Adefault%3Amy-func%3Alatest/code/\n\
            \n\
            content-type:application/json\n\
            host:functiongraph.ap-southeast-1.myhuaweicloud.com\n\
            x-project-id:0123456789abcdef0123456789abcdef\n\
            x-sdk-date:20240102T030405Z\n\
            \n\
            content-type;host;x-project-id;x-sdk-date\n\
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "SDK-HMAC-SHA256\n20240102T030405Z\n8478aec731def410ff14a6f44ad32bd638ffd259441d6fdcd989c193d8289907",
        authorization: "SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=78c1553c77480323b9366d34d9f1c1ae0a483201cea0a8b0f314952549e68ab3",
    },
    Vector {
        name: "B2",
        method: "GET",
        target: "/v2/0123456789abcdef0123456789abcdef/fgs/functions/urn:fss:ap-southeast-1:0123456789abcdef0123456789abcdef:function:default:my-func:latest/code",
        body: "",
        canonical_request: "GET\n\
            /v2/0123456789abcdef0123456789abcdef/fgs/functions/urn%3Afss%3Aap-southeast-1%3A0123456789abcdef0123456789abcdef%3Afunction%3Adefault%3Amy-func%3Alatest/code/\n\
            \n\
            content-type:application/json\n\
            host:functiongraph.ap-southeast-1.myhuaweicloud.com\n\
            x-project-id:0123456789abcdef0123456789abcdef\n\
            x-sdk-date:20240102T030405Z\n\
            \n\
            content-type;host;x-project-id;x-sdk-date\n\
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "SDK-HMAC-SHA256\n20240102T030405Z\n8478aec731def410ff14a6f44ad32bd638ffd259441d6fdcd989c193d8289907",
        authorization: "SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=78c1553c77480323b9366d34d9f1c1ae0a483201cea0a8b0f314952549e68ab3",
    },
    Vector {
        name: "C",
        method: "GET",
        target: "/v2/0123456789abcdef0123456789abcdef/fgs/functions/urn%3Afss%3Aap-southeast-1%3A0123456789abcdef0123456789abcdef%3Afunction%3Adefault%3Amy-func%3Alatest/async-invocations?limit=100&marker=0&query_begin_time=2024-01-02T02%3A00%3A00&query_end_time=2024-01-02T03%3A00%3A00&status=FAIL",
        body: "",
        canonical_request: "GET\n\
            /v2/0123456789abcdef0123456789abcdef/fgs/functions/urn%3Afss%3Aap-southeast-1%3A0123456789abcdef0123456789abcdef%3Afunction%3Adefault%3Amy-func%3Alatest/async-invocations/\n\
            limit=100&marker=0&query_begin_time=2024-01-02T02%3A00%3A00&query_end_time=2024-01-02T03%3A00%3A00&status=FAIL\n\
            content-type:application/json\n\
            host:functiongraph.ap-southeast-1.myhuaweicloud.com\n\
            x-project-id:0123456789abcdef0123456789abcdef\n\
            x-sdk-date:20240102T030405Z\n\
            \n\
            content-type;host;x-project-id;x-sdk-date\n\
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "SDK-HMAC-SHA256\n20240102T030405Z\nf60ccfe90e28f59fb530da6b772f12b940fa0cd3ed4da0b3f04225413c4fba3f",
        authorization: "SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=5dfbf28440afe1b4e40ece01772190d28f245f3749830cf3edfd7aec4d889a81",
    },
    Vector {
        name: "D",
        method: "POST",
        target: "/v2/0123456789abcdef0123456789abcdef/fgs/functions/urn%3Afss%3Aap-southeast-1%3A0123456789abcdef0123456789abcdef%3Afunction%3Adefault%3Amy-func%3Alatest/snapshots/enableSnapshot",
        body: "{\"a\":1}",
        canonical_request: "POST\n\
            /v2/0123456789abcdef0123456789abcdef/fgs/functions/urn%3Afss%3Aap-southeast-1%3A0123456789abcdef0123456789abcdef%3Afunction%3Adefault%3Amy-func%3Alatest/snapshots/enableSnapshot/\n\
            \n\
            content-type:application/json\n\
            host:functiongraph.ap-southeast-1.myhuaweicloud.com\n\
            x-project-id:0123456789abcdef0123456789abcdef\n\
            x-sdk-date:20240102T030405Z\n\
            \n\
            content-type;host;x-project-id;x-sdk-date\n\
            015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862",
        string_to_sign: "SDK-HMAC-SHA256\n20240102T030405Z\nf37a5cf7f998214a8102f2205b2fd7d462cfb79d19c2d971802df3b9e330977c",
        authorization: "SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=59a851007ae6ab2e40849abdb978d049f3030bbb451b900ee6865223935e503e",
    },
    Vector {
        name: "E",
        method: "GET",
        target: "/v2/0123456789abcdef0123456789abcdef/fgs/functions?func_name=demo%20fn%2A1~%2Fx&marker=400&maxitems=400&package_name=default",
        body: "",
        canonical_request: "GET\n\
            /v2/0123456789abcdef0123456789abcdef/fgs/functions/\n\
            func_name=demo%20fn%2A1~%2Fx&marker=400&maxitems=400&package_name=default\n\
            content-type:application/json\n\
            host:functiongraph.ap-southeast-1.myhuaweicloud.com\n\
            x-project-id:0123456789abcdef0123456789abcdef\n\
            x-sdk-date:20240102T030405Z\n\
            \n\
            content-type;host;x-project-id;x-sdk-date\n\
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "SDK-HMAC-SHA256\n20240102T030405Z\n8dc791ea3dc01778f346e5569f4c07d279c43a4f100cbaa6fc35e6ad5ae1b4e4",
        authorization: "SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=470e46cc0e061f2f5948987eda037b5b9a61d6ada564e6df02978eea8a7bf6f1",
    },
    Vector {
        name: "F",
        method: "GET",
        target: "/v2/0123456789abcdef0123456789abcdef/fgs/functions/urn:fss:ap-southeast-1:0123456789abcdef0123456789abcdef:function:default:my-func:!prod/versions?marker=0&maxitems=20",
        body: "",
        canonical_request: "GET\n\
            /v2/0123456789abcdef0123456789abcdef/fgs/functions/urn%3Afss%3Aap-southeast-1%3A0123456789abcdef0123456789abcdef%3Afunction%3Adefault%3Amy-func%3A%21prod/versions/\n\
            marker=0&maxitems=20\n\
            content-type:application/json\n\
            host:functiongraph.ap-southeast-1.myhuaweicloud.com\n\
            x-project-id:0123456789abcdef0123456789abcdef\n\
            x-sdk-date:20240102T030405Z\n\
            \n\
            content-type;host;x-project-id;x-sdk-date\n\
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign: "SDK-HMAC-SHA256\n20240102T030405Z\ncf03dfbb8ee852e9a1ef9a633ff2097f8752dc352c92147e11a737da6f38824d",
        authorization: "SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=441cfacce6d2c028e67db1158f3f2acd0ae4a8dda14d190d2eb52009b426a4f7",
    },
];

/// The vector called `name`.
pub(crate) fn vector(name: &str) -> &'static Vector {
    VECTORS
        .iter()
        .find(|v| v.name == name)
        .expect("a vector of appendix A")
}
