//! Signature Version 4, both ways: `verify` checks what clients sign (the control plane),
//! `sign` signs what the `berth` CLI sends. One canonical request for both, so the CLI can
//! never sign something the control plane would refuse.
//!
//! Hand-rolled on hmac + sha2 rather than `aws-sigv4`, which would add about fifteen crates
//! (among them second versions of hmac, sha2 and digest) for what is a page of code here;
//! every request shape is checked against signatures made by real botocore (`fixtures/`).
//! It mirrors botocore's quirks: the path is normalised and then encoded again (so `%20` is
//! signed as `%2520`), and query parameters it signs as `%20` go on the wire as `+`.

mod date;
mod sign;
mod verify;

#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub use date::{format_amz_date, format_iso8601_ms, parse_amz_date};
pub use sign::{sign, Signature, ToSign};
pub use verify::{verify, SigV4Error, SignedRequest, VerifiedIdentity};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SCOPE_TERMINATOR: &str = "aws4_request";

/// An access key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// The date, region and service a signature is scoped to.
#[derive(Debug, Clone, Copy)]
struct Scope<'a> {
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl Scope<'_> {
    fn credential_scope(&self) -> String {
        format!(
            "{}/{}/{}/{SCOPE_TERMINATOR}",
            self.date, self.region, self.service
        )
    }

    /// The hex signature of `canonical_request`, signed at `amz_date` with `secret`.
    fn signature(&self, secret: &str, amz_date: &str, canonical_request: &str) -> String {
        let string_to_sign = format!(
            "{ALGORITHM}\n{amz_date}\n{}\n{}",
            self.credential_scope(),
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let k_date = hmac(format!("AWS4{secret}").as_bytes(), self.date.as_bytes());
        let k_region = hmac(&k_date, self.region.as_bytes());
        let k_service = hmac(&k_region, self.service.as_bytes());
        let key = hmac(&k_service, SCOPE_TERMINATOR.as_bytes());
        hex::encode(hmac(&key, string_to_sign.as_bytes()))
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn header_values<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The canonical request over `headers` (lowercase names, any order; the ones named in
/// `signed_headers`, in that order, are signed).
fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    signed_headers: &[&str],
    payload_hash: &str,
) -> String {
    let mut out = String::new();
    out.push_str(method);
    out.push('\n');
    out.push_str(&canonical_uri(path));
    out.push('\n');
    out.push_str(&canonical_query(query));
    out.push('\n');
    for name in signed_headers {
        let values: Vec<String> = header_values(headers, name)
            .into_iter()
            .map(|v| v.split_ascii_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let _ = writeln!(out, "{name}:{}", values.join(","));
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// botocore (and every non-S3 service) removes dot segments and empty segments from the raw
/// path, then percent-encodes it again, so an escape like `%20` is signed as `%2520`.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let mut normalized = String::new();
    if path.starts_with('/') {
        normalized.push('/');
    }
    normalized.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    uri_encode(normalized.as_bytes(), b"/")
}

/// Decodes each name and value, encodes it the RFC 3986 way and sorts by name, then value.
/// `+` decodes to a space: botocore signs a space as `%20` but sends it as `+`.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(name), b""),
                uri_encode(&percent_decode(value), b""),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes every byte but RFC 3986's unreserved ones and those in `keep`, in uppercase hex.
fn uri_encode(bytes: &[u8], keep: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Query-string decoding; a `%` not followed by two hex digits stays literal.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(byte) = bytes.get(i + 1..i + 3).and_then(hex_byte) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    out
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    // from_str_radix alone would also take a sign, as in "%+5".
    if !pair.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()
}
