//! Signature Version 4 signing of the CLI's own requests: `POST /` with a JSON body, the
//! headers botocore signs for AWS JSON 1.1 (`content-type;host;x-amz-date;x-amz-target`).
//!
//! Hand-rolled on hmac + sha2 (already in the workspace) rather than `aws-sigv4`, which
//! would add about fifteen crates, among them second versions of hmac, sha2 and digest,
//! for one fixed request shape. The tests check it against botocore's signatures and
//! against the control plane's verifier.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// An access key pair, as `aws.env` gives it.
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

/// One request to sign. Only `POST /` with no query string: the only shape AWS JSON 1.1 uses.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `host[:port]` exactly as the `Host` header will carry it.
    pub host: &'a str,
    pub content_type: &'a str,
    pub target: &'a str,
    pub body: &'a [u8],
}

/// The `X-Amz-Date` and `Authorization` header values for `req`, signed at `unix_secs`.
pub fn sign(
    req: &Request,
    creds: &Credentials,
    region: &str,
    service: &str,
    unix_secs: i64,
) -> (String, String) {
    let amz_date = format_amz_date(unix_secs);
    let date = &amz_date[..8];
    // Sorted by name, as the canonical request requires; values have no runs of spaces.
    let headers = [
        ("content-type", req.content_type.trim()),
        ("host", req.host.trim()),
        ("x-amz-date", amz_date.as_str()),
        ("x-amz-target", req.target.trim()),
    ];
    let signed_headers = headers.map(|(n, _)| n).join(";");
    let mut canonical = String::from("POST\n/\n\n");
    for (name, value) in headers {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed_headers);
    canonical.push('\n');
    canonical.push_str(&hex::encode(Sha256::digest(req.body)));

    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id
    );
    (amz_date, authorization)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
pub fn format_amz_date(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_controlplane::api::sigv4 as verifier;
    use serde_json::Value;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../controlplane/src/api/fixtures"
    );

    fn header<'a>(f: &'a Value, name: &str) -> &'a str {
        f["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
            .and_then(|h| h[1].as_str())
            .unwrap()
    }

    /// Every botocore fixture of the shape we send: our headers must be botocore's, byte for byte.
    #[test]
    fn matches_botocore_signatures() {
        let mut checked = 0;
        for name in ["sigv4_list_clusters.json", "sigv4_create_cluster.json"] {
            let f: Value =
                serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/{name}")).unwrap())
                    .unwrap();
            let creds = Credentials {
                access_key_id: f["access_key_id"].as_str().unwrap().into(),
                secret_access_key: f["secret_access_key"].as_str().unwrap().into(),
            };
            let req = Request {
                host: header(&f, "host"),
                content_type: header(&f, "content-type"),
                target: header(&f, "x-amz-target"),
                body: f["body"].as_str().unwrap().as_bytes(),
            };
            let (date, auth) = sign(
                &req,
                &creds,
                f["region"].as_str().unwrap(),
                f["service"].as_str().unwrap(),
                f["now_unix"].as_i64().unwrap(),
            );
            assert_eq!(date, header(&f, "x-amz-date"), "{name}");
            assert_eq!(auth, header(&f, "authorization"), "{name}");
            checked += 1;
        }
        assert_eq!(checked, 2);
    }

    fn verify(
        req: &Request,
        date: &str,
        auth: &str,
        secret: &str,
        now: i64,
    ) -> Result<verifier::VerifiedIdentity, verifier::SigV4Error> {
        let headers: Vec<(String, String)> = [
            ("host", req.host),
            ("content-type", req.content_type),
            ("x-amz-target", req.target),
            ("x-amz-date", date),
            ("authorization", auth),
            ("content-length", &req.body.len().to_string()),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        let signed = verifier::SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: req.body,
        };
        verifier::verify(&signed, |_| Some(secret.to_owned()), now)
    }

    #[test]
    fn the_control_plane_accepts_what_we_sign() {
        let creds = Credentials {
            access_key_id: "AKIABERTHTEST".into(),
            secret_access_key: "s3cr3t/with+odd=chars".into(),
        };
        let bodies: [&[u8]; 3] = [
            b"{}",
            b"{\"cluster\":\"prod\",\"tasks\":[\"a b\"]}",
            "{\"x\":\"caf\u{e9}\"}".as_bytes(),
        ];
        for (i, body) in bodies.into_iter().enumerate() {
            let now = 1_714_564_800 + i64::try_from(i).unwrap() * 86_399;
            let req = Request {
                host: "127.0.0.1:8500",
                content_type: "application/x-amz-json-1.1",
                target: "AmazonEC2ContainerServiceV20141113.DescribeTasks",
                body,
            };
            let (date, auth) = sign(&req, &creds, "eu-west-3", "ecs", now);
            let who = verify(&req, &date, &auth, &creds.secret_access_key, now).unwrap();
            assert_eq!(who.access_key_id, "AKIABERTHTEST");
            assert_eq!(
                (who.region.as_str(), who.service.as_str()),
                ("eu-west-3", "ecs")
            );
            assert_eq!(
                verify(&req, &date, &auth, "wrong", now),
                Err(verifier::SigV4Error::SignatureMismatch)
            );
        }
    }

    #[test]
    fn amz_dates_are_utc_basic_format() {
        assert_eq!(format_amz_date(0), "19700101T000000Z");
        assert_eq!(format_amz_date(1_714_564_800), "20240501T120000Z");
        assert_eq!(format_amz_date(951_868_799), "20000229T235959Z");
        assert_eq!(format_amz_date(4_107_542_399), "21000228T235959Z");
        assert_eq!(format_amz_date(-1), "19691231T235959Z");
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let c = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "s3cr3t".into(),
        };
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
