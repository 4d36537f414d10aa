//! Checking a request's signature: raw request in, the signer or an AWS-style error out.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    canonical_request, format_amz_date, header_values, parse_amz_date, Scope, ALGORITHM,
    SCOPE_TERMINATOR,
};

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

/// Who signed a request, and the scope they signed it for. Checking that region and service
/// are ones this endpoint serves is up to the caller.
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
    /// The error code AWS answers with (`__type` in JSON, `Code` in XML).
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
    if amz_date[..8] != *auth.scope.date {
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
    let canonical = canonical_request(
        req.method,
        req.path,
        req.query,
        req.headers,
        &auth.signed_headers,
        &payload_hash,
    );
    let expected = auth.scope.signature(&secret, amz_date, &canonical);

    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(VerifiedIdentity {
            access_key_id: auth.access_key_id.to_owned(),
            region: auth.scope.region.to_owned(),
            service: auth.scope.service.to_owned(),
        })
    } else {
        Err(SigV4Error::SignatureMismatch)
    }
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug)]
pub(super) struct Authorization<'a> {
    access_key_id: &'a str,
    scope: Scope<'a>,
    /// Verbatim from the header: the signer's order and spelling are what it signed.
    pub(super) signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    pub(super) fn parse(header: &'a str) -> Result<Self, SigV4Error> {
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

        let parts: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, terminator] = parts[..] else {
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
            scope: Scope {
                date,
                region,
                service,
            },
            signed_headers,
            signature,
        })
    }
}

/// The hash line of the canonical request. Clients may send it as `x-amz-content-sha256`;
/// the signature then covers the header, not the body, so the header is checked against the body.
pub(super) fn payload_hash(req: &SignedRequest) -> Result<String, SigV4Error> {
    let actual = hex::encode(Sha256::digest(req.body));
    match header_values(req.headers, "x-amz-content-sha256").as_slice() {
        [] => Ok(actual),
        // Also refuses UNSIGNED-PAYLOAD and the streaming forms: no call Berth serves needs them.
        [claimed] if claimed.trim().eq_ignore_ascii_case(&actual) => Ok(claimed.trim().to_owned()),
        _ => Err(SigV4Error::SignatureMismatch),
    }
}
