//! Signing a request the way botocore does, for clients of Berth (the `berth` CLI, tests).

use sha2::{Digest, Sha256};

use super::{canonical_request, format_amz_date, Credentials, Scope, ALGORITHM};

/// The parts of a request SigV4 covers, as they will go on the wire.
#[derive(Debug, Clone, Copy)]
pub struct ToSign<'a> {
    pub method: &'a str,
    /// The path, already percent-encoded.
    pub path: &'a str,
    /// The query string without the `?`, already encoded.
    pub query: &'a str,
    /// The headers to sign besides `X-Amz-Date`, which `sign` adds; `host` must be among
    /// them, exactly as the `Host` header will carry it. Names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// The two headers a signed request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub amz_date: String,
    pub authorization: String,
}

/// Signs `req` for `region` and `service` at `unix_secs`.
pub fn sign(
    req: &ToSign,
    creds: &Credentials,
    region: &str,
    service: &str,
    unix_secs: i64,
) -> Signature {
    let amz_date = format_amz_date(unix_secs);
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    headers.push(("x-amz-date".to_owned(), amz_date.clone()));
    let mut names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let payload_hash = hex::encode(Sha256::digest(req.body));
    let canonical = canonical_request(
        req.method,
        req.path,
        req.query,
        &headers,
        &names,
        &payload_hash,
    );
    let scope = Scope {
        date: &amz_date[..8],
        region,
        service,
    };
    let signature = scope.signature(&creds.secret_access_key, &amz_date, &canonical);
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={signature}",
        creds.access_key_id,
        scope.credential_scope(),
        names.join(";"),
    );
    Signature {
        amz_date,
        authorization,
    }
}
