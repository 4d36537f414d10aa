//! Signature Version 4 checks on API requests: raw request in, the signer or an AWS-style error out.
//!
//! Mirrors what botocore signs (see `fixtures/make_sigv4_fixtures.py`), including its quirks:
//! the path is normalised and then encoded again (so `%20` becomes `%2520`), and query
//! parameters it encodes as `%20` go on the wire as `+`.

use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SCOPE_TERMINATOR: &str = "aws4_request";
/// AWS rejects a request signed more than this far from its own clock, in either direction.
const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

/// One HTTP request as received, before anything parses its body.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The raw path, as on the wire (still percent-encoded).
    pub path: &'a str,
    /// The raw query string, as on the wire, without the `?`.
    pub query: &'a str,
    /// Lowercase names, raw values, in wire order. HTTP/2's `:authority` must be passed as `host`.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// An access key pair as the credential store holds it.
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

/// Who signed a request, and the scope they signed it for. Checking that region and service
/// are the ones this endpoint serves is up to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
}

/// Why a request was not authenticated; `Display` is the message AWS would send.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigV4Error {
    /// Request is missing Authentication Token
    #[error("Request is missing Authentication Token")]
    Missing,
    /// The Authorization header or the date it relies on is malformed; the text says how.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The security token included in the request is invalid.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey(String),
    /// The request signature we calculated does not match the signature you provided.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. \
         Consult the service documentation for details."
    )]
    SignatureMismatch,
    /// The request was signed more than 15 minutes before or after `now_unix`.
    #[error("{}", skew_message(amz_date, *signed_unix, *now_unix))]
    Expired {
        amz_date: String,
        signed_unix: i64,
        now_unix: i64,
    },
}

impl SigV4Error {
    /// The `__type` of the AWS JSON error body.
    #[must_use]
    pub fn aws_error_type(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "MissingAuthenticationTokenException",
            SigV4Error::IncompleteSignature(_) => "IncompleteSignatureException",
            SigV4Error::UnknownAccessKey(_) => "UnrecognizedClientException",
            SigV4Error::SignatureMismatch | SigV4Error::Expired { .. } => {
                "InvalidSignatureException"
            }
        }
    }

    /// The `message` of the AWS JSON error body.
    #[must_use]
    pub fn message(&self) -> String {
        self.to_string()
    }
}

fn skew_message(amz_date: &str, signed_unix: i64, now_unix: i64) -> String {
    if signed_unix < now_unix {
        format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            format_amz_date(now_unix - MAX_CLOCK_SKEW_SECS),
            format_amz_date(now_unix),
        )
    } else {
        format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            format_amz_date(now_unix + MAX_CLOCK_SKEW_SECS),
            format_amz_date(now_unix),
        )
    }
}

/// Verifies `req`'s `Authorization` header. `lookup` maps an access key id to its secret;
/// `now_unix` is the current time in seconds since the epoch.
pub fn verify(
    req: &SignedRequest,
    lookup: impl Fn(&str) -> Option<String>,
    now_unix: i64,
) -> Result<VerifiedIdentity, SigV4Error> {
    let authorization = match header_values(req.headers, "authorization").as_slice() {
        [] => return Err(SigV4Error::Missing),
        [one] => *one,
        _ => {
            return Err(SigV4Error::IncompleteSignature(
                "Only one Authorization header is allowed.".to_owned(),
            ))
        }
    };
    let auth = Authorization::parse(authorization)?;

    let amz_date = match header_values(req.headers, "x-amz-date").as_slice() {
        [one] => one.trim(),
        [] => {
            return Err(SigV4Error::IncompleteSignature(format!(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
                 header. Authorization={authorization}"
            )))
        }
        _ => {
            return Err(SigV4Error::IncompleteSignature(
                "Only one X-Amz-Date header is allowed.".to_owned(),
            ))
        }
    };
    let signed_unix = parse_amz_date(amz_date).ok_or_else(|| {
        SigV4Error::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. \
             See http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })?;
    // The signing key is derived from the scope's date, the string to sign carries the
    // header's: a request whose two dates disagree was not signed the way AWS signs.
    if amz_date[..8] != *auth.date {
        return Err(SigV4Error::SignatureMismatch);
    }

    let secret = lookup(auth.access_key_id)
        .ok_or_else(|| SigV4Error::UnknownAccessKey(auth.access_key_id.to_owned()))?;

    if now_unix.saturating_sub(signed_unix).saturating_abs() > MAX_CLOCK_SKEW_SECS {
        return Err(SigV4Error::Expired {
            amz_date: amz_date.to_owned(),
            signed_unix,
            now_unix,
        });
    }

    let payload_hash = payload_hash(req)?;
    let canonical = canonical_request(req, &auth.signed_headers, &payload_hash);
    let scope = format!(
        "{}/{}/{}/{SCOPE_TERMINATOR}",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = signing_key(&secret, auth.date, auth.region, auth.service);
    let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));

    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(VerifiedIdentity {
            access_key_id: auth.access_key_id.to_owned(),
            region: auth.region.to_owned(),
            service: auth.service.to_owned(),
        })
    } else {
        Err(SigV4Error::SignatureMismatch)
    }
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug)]
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    /// Verbatim from the header: the signer's order and spelling are what it signed.
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    fn parse(header: &'a str) -> Result<Self, SigV4Error> {
        let incomplete = |what: String| SigV4Error::IncompleteSignature(what);
        let header = header.trim();
        let (algorithm, params) = header.split_once(' ').unwrap_or((header, ""));
        if algorithm != ALGORITHM {
            return Err(incomplete(format!(
                "Unsupported AWS 'algorithm': '{algorithm}'. Authorization={header}"
            )));
        }

        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for param in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match param.split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed_headers = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => {
                    return Err(incomplete(format!(
                        "'{param}' not a valid key=value pair (missing equal-sign) in \
                         Authorization header: '{header}'."
                    )))
                }
            }
        }
        let [Some(credential), Some(signature), Some(signed_headers)] =
            [credential, signature, signed_headers].map(|v| v.filter(|v| !v.is_empty()))
        else {
            let mut missing = String::new();
            for (name, value) in [
                ("Credential", credential),
                ("Signature", signature),
                ("SignedHeaders", signed_headers),
            ] {
                if value.is_none_or(str::is_empty) {
                    let _ = write!(
                        missing,
                        "Authorization header requires '{name}' parameter. "
                    );
                }
            }
            return Err(incomplete(format!("{missing}Authorization={header}")));
        };

        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, terminator] = scope[..] else {
            return Err(incomplete(format!(
                "Credential should be of the form \
                 <access key id>/<YYYYMMDD>/<region>/<service>/{SCOPE_TERMINATOR}, \
                 not '{credential}'. Authorization={header}"
            )));
        };
        if terminator != SCOPE_TERMINATOR {
            return Err(incomplete(format!(
                "Credential should be scoped with a valid terminator: '{SCOPE_TERMINATOR}', \
                 not '{terminator}'."
            )));
        }
        if [access_key_id, date, region, service].contains(&"") {
            return Err(incomplete(format!(
                "Credential has an empty component: '{credential}'. Authorization={header}"
            )));
        }

        let signed_headers: Vec<&str> = signed_headers.split(';').collect();
        // Without the host signed, a request signed for another endpoint could be replayed here.
        if !signed_headers.contains(&"host") {
            return Err(incomplete(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
                    .to_owned(),
            ));
        }

        Ok(Authorization {
            access_key_id,
            date,
            region,
            service,
            signed_headers,
            signature,
        })
    }
}

fn header_values<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The hash line of the canonical request. Clients may send it as `x-amz-content-sha256`;
/// the signature then covers the header, not the body, so the header is checked against the body.
fn payload_hash(req: &SignedRequest) -> Result<String, SigV4Error> {
    let actual = hex::encode(Sha256::digest(req.body));
    match header_values(req.headers, "x-amz-content-sha256").as_slice() {
        [] => Ok(actual),
        // Also refuses UNSIGNED-PAYLOAD and the streaming forms: no ECS call needs them.
        [claimed] if claimed.trim().eq_ignore_ascii_case(&actual) => Ok(claimed.trim().to_owned()),
        _ => Err(SigV4Error::SignatureMismatch),
    }
}

fn canonical_request(req: &SignedRequest, signed_headers: &[&str], payload_hash: &str) -> String {
    let mut out = String::new();
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.path));
    out.push('\n');
    out.push_str(&canonical_query(req.query));
    out.push('\n');
    for name in signed_headers {
        let values: Vec<String> = header_values(req.headers, name)
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

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, SCOPE_TERMINATOR.as_bytes())
}

/// Parses ISO 8601 basic format, `YYYYMMDDTHHMMSSZ`, into seconds since the epoch.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    // ASCII first, so that slicing below cannot split a character.
    if !s.is_ascii() || b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = &s[range];
        if digits.bytes().all(|c| c.is_ascii_digit()) {
            digits.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn format_amz_date(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, 1970-01-01 is day 0).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Signed by botocore; regenerate with `fixtures/make_sigv4_fixtures.py`.
    const FIXTURES: [(&str, &str); 7] = [
        (
            "list_clusters",
            include_str!("fixtures/sigv4_list_clusters.json"),
        ),
        (
            "create_cluster",
            include_str!("fixtures/sigv4_create_cluster.json"),
        ),
        (
            "query_string",
            include_str!("fixtures/sigv4_query_string.json"),
        ),
        ("path", include_str!("fixtures/sigv4_path.json")),
        (
            "content_sha256",
            include_str!("fixtures/sigv4_content_sha256.json"),
        ),
        (
            "repeated_header",
            include_str!("fixtures/sigv4_repeated_header.json"),
        ),
        (
            "boto3_list_clusters",
            include_str!("fixtures/sigv4_boto3_list_clusters.json"),
        ),
    ];

    struct Fixture {
        name: &'static str,
        json: Value,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        now: i64,
    }

    impl Fixture {
        fn load(name: &'static str, text: &str) -> Self {
            let json: Value = serde_json::from_str(text).unwrap();
            let headers = json["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    // The caller lowercases names; values stay as received.
                    let name = h[0].as_str().unwrap().to_ascii_lowercase();
                    (name, h[1].as_str().unwrap().to_owned())
                })
                .collect();
            let body = json["body"].as_str().unwrap().as_bytes().to_vec();
            let now = json["now_unix"].as_i64().unwrap();
            Fixture {
                name,
                json,
                headers,
                body,
                now,
            }
        }

        fn get(&self, key: &str) -> &str {
            self.json[key].as_str().unwrap()
        }

        fn request<'a>(
            &'a self,
            headers: &'a [(String, String)],
            body: &'a [u8],
        ) -> SignedRequest<'a> {
            SignedRequest {
                method: self.get("method"),
                path: self.get("path"),
                query: self.get("query"),
                headers,
                body,
            }
        }

        fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
            move |akid| {
                (akid == self.get("access_key_id"))
                    .then(|| self.get("secret_access_key").to_owned())
            }
        }

        fn verify_with(
            &self,
            headers: &[(String, String)],
            body: &[u8],
        ) -> Result<VerifiedIdentity, SigV4Error> {
            verify(&self.request(headers, body), self.lookup(), self.now)
        }

        fn verify_at(&self, now: i64) -> Result<VerifiedIdentity, SigV4Error> {
            verify(&self.request(&self.headers, &self.body), self.lookup(), now)
        }

        fn verify(&self) -> Result<VerifiedIdentity, SigV4Error> {
            self.verify_at(self.now)
        }

        fn with_header(&self, name: &str, value: impl Fn(&str) -> String) -> Vec<(String, String)> {
            let mut headers = self.headers.clone();
            let slot = headers.iter_mut().find(|(n, _)| n == name).unwrap();
            slot.1 = value(&slot.1);
            headers
        }
    }

    fn fixtures() -> Vec<Fixture> {
        FIXTURES
            .iter()
            .map(|(name, text)| Fixture::load(name, text))
            .collect()
    }

    fn list_clusters() -> Fixture {
        Fixture::load(FIXTURES[0].0, FIXTURES[0].1)
    }

    #[test]
    fn every_botocore_fixture_verifies() {
        for f in fixtures() {
            let identity = f.verify().unwrap_or_else(|e| panic!("{}: {e:?}", f.name));
            assert_eq!(
                identity,
                VerifiedIdentity {
                    access_key_id: "AKIDEXAMPLE".into(),
                    region: "us-east-1".into(),
                    service: "ecs".into(),
                },
                "{}",
                f.name
            );
        }
    }

    #[test]
    fn canonical_request_is_byte_for_byte_botocores() {
        for f in fixtures() {
            let authorization = header_values(&f.headers, "authorization")[0];
            let auth = Authorization::parse(authorization).unwrap();
            let req = f.request(&f.headers, &f.body);
            let ours = canonical_request(&req, &auth.signed_headers, &payload_hash(&req).unwrap());
            assert_eq!(ours, f.get("canonical_request"), "{}", f.name);
        }
    }

    #[test]
    fn a_flipped_body_byte_is_a_signature_mismatch() {
        for f in fixtures().into_iter().filter(|f| !f.body.is_empty()) {
            for i in [0, f.body.len() / 2, f.body.len() - 1] {
                let mut body = f.body.clone();
                body[i] ^= 0x01;
                assert_eq!(
                    f.verify_with(&f.headers, &body),
                    Err(SigV4Error::SignatureMismatch),
                    "{} byte {i}",
                    f.name
                );
            }
        }
    }

    #[test]
    fn a_wrong_secret_is_a_signature_mismatch() {
        let f = list_clusters();
        let req = f.request(&f.headers, &f.body);
        let result = verify(&req, |_| Some("not-the-secret".to_owned()), f.now);
        assert_eq!(result, Err(SigV4Error::SignatureMismatch));
        let err = result.unwrap_err();
        assert_eq!(err.aws_error_type(), "InvalidSignatureException");
        assert!(err
            .message()
            .starts_with("The request signature we calculated does not match"));
    }

    #[test]
    fn an_unknown_access_key_is_unrecognized() {
        let f = list_clusters();
        let req = f.request(&f.headers, &f.body);
        let err = verify(&req, |_| None, f.now).unwrap_err();
        assert_eq!(err, SigV4Error::UnknownAccessKey("AKIDEXAMPLE".into()));
        assert_eq!(err.aws_error_type(), "UnrecognizedClientException");
        assert_eq!(
            err.message(),
            "The security token included in the request is invalid."
        );
    }

    #[test]
    fn no_authorization_header_is_missing() {
        let f = list_clusters();
        let headers: Vec<_> = f
            .headers
            .iter()
            .filter(|(n, _)| n != "authorization")
            .cloned()
            .collect();
        let err = f.verify_with(&headers, &f.body).unwrap_err();
        assert_eq!(err, SigV4Error::Missing);
        assert_eq!(err.aws_error_type(), "MissingAuthenticationTokenException");
        assert_eq!(err.message(), "Request is missing Authentication Token");
    }

    #[test]
    fn a_garbled_authorization_header_is_incomplete() {
        let f = list_clusters();
        let sig = "Signature=".to_owned() + &"0".repeat(64);
        let v4 = |credential: &str, rest: &str| {
            format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{credential}{rest}")
        };
        let scope = "20240501/us-east-1/ecs/aws4_request";
        let algorithm = "Unsupported AWS 'algorithm'";
        let cases = [
            (String::new(), algorithm),
            ("garbage".to_owned(), algorithm),
            (
                v4(scope, &format!(", SignedHeaders=host, {sig}")).replace("256", "1"),
                algorithm,
            ),
            (
                "AWS4-HMAC-SHA256".to_owned(),
                "requires 'Credential' parameter",
            ),
            (
                v4(scope, ", SignedHeaders=host;x-amz-date"),
                "requires 'Signature' parameter",
            ),
            (
                v4(scope, &format!(", SignedHeaders=, {sig}")),
                "requires 'SignedHeaders' parameter",
            ),
            (
                v4(scope, &format!(" SignedHeaders=host {sig}")),
                "requires 'Signature' parameter",
            ),
            (
                v4(scope, &format!(", SignedHeaders, {sig}")),
                "not a valid key=value pair",
            ),
            (
                v4(
                    "20240501/us-east-1/aws4_request",
                    &format!(", SignedHeaders=host, {sig}"),
                ),
                "should be of the form",
            ),
            (
                v4(
                    "20240501/us-east-1/ecs/aws5_request",
                    &format!(", SignedHeaders=host, {sig}"),
                ),
                "valid terminator",
            ),
            (
                v4(
                    "/us-east-1/ecs/aws4_request",
                    &format!(", SignedHeaders=host, {sig}"),
                ),
                "empty component",
            ),
            (
                v4(scope, &format!(", SignedHeaders=x-amz-date, {sig}")),
                "'Host' or ':authority'",
            ),
        ];
        for (authorization, expected) in cases {
            let headers = f.with_header("authorization", |_| authorization.clone());
            match f.verify_with(&headers, &f.body) {
                Err(err @ SigV4Error::IncompleteSignature(_)) => {
                    assert!(err.message().contains(expected), "{authorization:?}: {err}");
                    assert_eq!(err.aws_error_type(), "IncompleteSignatureException");
                }
                other => panic!("{authorization:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn two_authorization_headers_are_incomplete() {
        let f = list_clusters();
        let mut headers = f.headers.clone();
        headers.push(
            f.headers
                .iter()
                .find(|(n, _)| n == "authorization")
                .unwrap()
                .clone(),
        );
        assert!(matches!(
            f.verify_with(&headers, &f.body),
            Err(SigV4Error::IncompleteSignature(_))
        ));
    }

    #[test]
    fn a_missing_or_malformed_x_amz_date_is_incomplete() {
        let f = list_clusters();
        let headers: Vec<_> = f
            .headers
            .iter()
            .filter(|(n, _)| n != "x-amz-date")
            .cloned()
            .collect();
        let err = f.verify_with(&headers, &f.body).unwrap_err();
        assert!(
            err.message().contains("'X-Amz-Date' or a 'Date' header"),
            "{err}"
        );
        for bad in [
            "2024-05-01T12:00:00Z",
            "20240501T120000",
            "20240501 120000Z",
            "20240230T120000Z",
            "20240501T126000Z",
            "2024050+T120000Z",
        ] {
            let headers = f.with_header("x-amz-date", |_| bad.to_owned());
            let err = f.verify_with(&headers, &f.body).unwrap_err();
            assert!(
                err.message()
                    .starts_with("Date must be in ISO-8601 'basic format'"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn an_x_amz_date_on_another_day_than_the_scope_is_a_mismatch() {
        let f = list_clusters();
        let headers = f.with_header("x-amz-date", |_| "20240502T000000Z".to_owned());
        assert_eq!(
            f.verify_with(&headers, &f.body),
            Err(SigV4Error::SignatureMismatch)
        );
    }

    #[test]
    fn more_than_15_minutes_of_skew_either_way_is_expired() {
        let f = list_clusters();
        assert!(f.verify_at(f.now + 15 * 60).is_ok());
        assert!(f.verify_at(f.now - 15 * 60).is_ok());

        let late = f.verify_at(f.now + 16 * 60).unwrap_err();
        assert_eq!(
            late,
            SigV4Error::Expired {
                amz_date: "20240501T120000Z".into(),
                signed_unix: f.now,
                now_unix: f.now + 16 * 60
            }
        );
        assert_eq!(late.aws_error_type(), "InvalidSignatureException");
        assert_eq!(
            late.message(),
            "Signature expired: 20240501T120000Z is now earlier than 20240501T120100Z \
             (20240501T121600Z - 15 min.)"
        );

        let early = f.verify_at(f.now - 16 * 60).unwrap_err();
        assert_eq!(
            early.message(),
            "Signature not yet current: 20240501T120000Z is still later than 20240501T115900Z \
             (20240501T114400Z + 15 min.)"
        );
    }

    #[test]
    fn header_order_does_not_matter() {
        // Stable sorts on a seeded hash of the name: any order, except that repeated headers
        // keep their relative order, which is part of what was signed.
        let shuffle_key = |name: &str, seed: u64| {
            name.bytes().fold(0xcbf2_9ce4_8422_2325 ^ seed, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            })
        };
        for f in fixtures() {
            for seed in 0..32 {
                let mut headers = f.headers.clone();
                headers.sort_by_key(|(name, _)| shuffle_key(name, seed));
                assert!(
                    f.verify_with(&headers, &f.body).is_ok(),
                    "{} seed {seed}",
                    f.name
                );
            }
        }
    }

    #[test]
    fn repeated_headers_keep_their_relative_order() {
        let f = Fixture::load(FIXTURES[5].0, FIXTURES[5].1);
        let mut headers = f.headers.clone();
        let notes: Vec<usize> = (0..headers.len())
            .filter(|&i| headers[i].0 == "x-berth-note")
            .collect();
        headers.swap(notes[0], notes[1]);
        assert_eq!(
            f.verify_with(&headers, &f.body),
            Err(SigV4Error::SignatureMismatch)
        );
    }

    #[test]
    fn unsigned_headers_are_ignored() {
        let f = list_clusters();
        let mut headers = f.headers.clone();
        headers.insert(0, ("x-forwarded-for".into(), "10.0.0.1".into()));
        headers.push(("user-agent".into(), "something else".into()));
        headers.push(("x-amzn-trace-id".into(), "Root=1-abc".into()));
        assert!(f.verify_with(&headers, &f.body).is_ok());
    }

    #[test]
    fn changing_a_signed_part_is_a_signature_mismatch() {
        let f = list_clusters();
        let target = f.with_header("x-amz-target", |_| {
            "AmazonEC2ContainerServiceV20141113.DeleteCluster".into()
        });
        assert_eq!(
            f.verify_with(&target, &f.body),
            Err(SigV4Error::SignatureMismatch)
        );
        let host = f.with_header("host", |_| "127.0.0.1:8081".into());
        assert_eq!(
            f.verify_with(&host, &f.body),
            Err(SigV4Error::SignatureMismatch)
        );
        let mut extra_value = f.headers.clone();
        extra_value.push((
            "x-amz-target".into(),
            "AmazonEC2ContainerServiceV20141113.DeleteCluster".into(),
        ));
        assert_eq!(
            f.verify_with(&extra_value, &f.body),
            Err(SigV4Error::SignatureMismatch)
        );

        let q = Fixture::load(FIXTURES[2].0, FIXTURES[2].1);
        let mut req = q.request(&q.headers, &q.body);
        let query = format!("{}&extra=1", q.get("query"));
        req.query = &query;
        assert_eq!(
            verify(&req, q.lookup(), q.now),
            Err(SigV4Error::SignatureMismatch)
        );
        let mut req = q.request(&q.headers, &q.body);
        req.path = "/other";
        assert_eq!(
            verify(&req, q.lookup(), q.now),
            Err(SigV4Error::SignatureMismatch)
        );
    }

    #[test]
    fn x_amz_content_sha256_must_match_the_body() {
        let f = Fixture::load(FIXTURES[4].0, FIXTURES[4].1);
        let upper = f.with_header("x-amz-content-sha256", str::to_ascii_uppercase);
        assert_eq!(
            f.verify_with(&upper, &f.body),
            Err(SigV4Error::SignatureMismatch),
            "header is signed verbatim"
        );
        let unsigned = f.with_header("x-amz-content-sha256", |_| "UNSIGNED-PAYLOAD".into());
        assert_eq!(
            f.verify_with(&unsigned, &f.body),
            Err(SigV4Error::SignatureMismatch)
        );
        // A replayed request whose body was swapped keeps a valid signature over the header.
        assert_eq!(
            f.verify_with(&f.headers, b"{\"cluster\": \"prod\"}"),
            Err(SigV4Error::SignatureMismatch)
        );
    }

    #[test]
    fn amz_dates_parse_to_unix_seconds() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20240501T120000Z"), Some(1_714_564_800));
        assert_eq!(parse_amz_date("20000229T235959Z"), Some(951_868_799));
        assert_eq!(parse_amz_date("19000229T000000Z"), None);
        assert_eq!(parse_amz_date("20240501t120000z"), None);
        assert_eq!(parse_amz_date("2024\u{e9}501T12000Z"), None);
        for unix in (-86_400 * 800..86_400 * 365 * 500).step_by(86_400 * 7 + 3_607) {
            assert_eq!(parse_amz_date(&format_amz_date(unix)), Some(unix), "{unix}");
        }
    }

    #[test]
    fn paths_are_normalised_then_encoded_again() {
        for (path, canonical) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/a/b/", "/a/b/"),
            ("/a/./b/../c", "/a/c"),
            ("/../a", "/a"),
            ("/a%2Fb", "/a%252Fb"),
            ("/caf\u{e9} x", "/caf%C3%A9%20x"),
        ] {
            assert_eq!(canonical_uri(path), canonical, "{path:?}");
        }
    }

    #[test]
    fn query_strings_are_decoded_reencoded_and_sorted() {
        for (query, canonical) in [
            ("", ""),
            ("b&a=1", "a=1&b="),
            ("a=2&a=10&&", "a=10&a=2"),
            ("k=%zz&j=%4", "j=%254&k=%25zz"),
            ("s=a+b%2Bc%20d", "s=a%20b%2Bc%20d"),
            ("t=%7e%7E~&u=%2a", "t=~~~&u=%2A"),
            ("p=%+5", "p=%25%205"),
        ] {
            assert_eq!(canonical_query(query), canonical, "{query:?}");
        }
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "s3cr3t".into(),
        };
        let shown = format!("{creds:?}");
        assert!(
            shown.contains("AKIDEXAMPLE") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }
}
