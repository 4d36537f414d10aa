//! Certificate Manager (`CertificateManager`, JSON 1.1): `ImportCertificate`,
//! `DescribeCertificate`, `GetCertificate`, `ListCertificates` and `DeleteCertificate`,
//! for the certificates HTTPS listeners serve (`--certificates CertificateArn=...`).

use std::sync::Arc;

use base64::Engine as _;
use berth_aws::{AwsError, AwsService, Call, JsonProtocol, JsonVersion, ServiceInfo};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::acm::{Certificate, CertificateError, Certificates, Import};
use crate::lb::LoadBalancing;

pub struct Acm {
    certificates: Arc<Certificates>,
    /// Listeners name certificates: what uses one, and what may not be deleted.
    load_balancing: Arc<LoadBalancing>,
    clock: Arc<dyn crate::state::Clock>,
}

impl Acm {
    pub fn new(
        certificates: Arc<Certificates>,
        load_balancing: Arc<LoadBalancing>,
        clock: Arc<dyn crate::state::Clock>,
    ) -> Self {
        Self {
            certificates,
            load_balancing,
            clock,
        }
    }

    /// The listeners serving `arn`.
    fn in_use_by(&self, arn: &str) -> Vec<String> {
        self.load_balancing
            .snapshot()
            .listeners
            .values()
            .filter(|l| l.certificates.iter().any(|c| c == arn))
            .map(|l| l.load_balancer_arn.clone())
            .collect()
    }
}

const INFO: ServiceInfo = ServiceInfo {
    signing_name: "acm",
    json: Some(JsonProtocol {
        target_prefix: "CertificateManager",
        version: JsonVersion::V1_1,
        query_compatible: false,
    }),
    query: None,
};

impl From<CertificateError> for AwsError {
    fn from(e: CertificateError) -> Self {
        match e {
            CertificateError::Validation(m) => AwsError::client("ValidationException", m),
            CertificateError::NotFound(_) => {
                AwsError::client("ResourceNotFoundException", e.to_string())
            }
            CertificateError::Store(m) => AwsError::internal(m),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportInput {
    certificate_arn: Option<String>,
    certificate: String,
    private_key: String,
    certificate_chain: Option<String>,
    #[serde(default)]
    tags: Vec<TagInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagInput {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArnInput {
    certificate_arn: String,
}

/// A JSON blob member: base64 of the PEM text.
fn pem(name: &str, b64: &str) -> Result<String, AwsError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| {
            AwsError::client(
                "ValidationException",
                format!("{name} is not valid base64: {e}"),
            )
        })?;
    String::from_utf8(bytes)
        .map_err(|_| AwsError::client("ValidationException", format!("{name} must be PEM text.")))
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, AwsError> {
    serde_json::from_slice(body)
        .map_err(|e| AwsError::serialization(format!("Invalid request: {e}")))
}

impl Acm {
    fn detail(&self, call: &Call<'_>, c: &Certificate) -> Value {
        let f = &c.facts;
        json!({
            "CertificateArn": c.arn,
            "DomainName": f.domain_name,
            "SubjectAlternativeNames": f.subject_alternative_names,
            "Serial": f.serial,
            "Subject": f.subject,
            "Issuer": f.issuer,
            "ImportedAt": call.timestamp(c.imported_at_ms),
            "Status": "ISSUED",
            "NotBefore": call.timestamp(f.not_before_ms),
            "NotAfter": call.timestamp(f.not_after_ms),
            "KeyAlgorithm": f.key_algorithm,
            "InUseBy": self.in_use_by(&c.arn),
            "Type": "IMPORTED",
            "RenewalEligibility": "INELIGIBLE",
        })
    }

    fn dispatch(&self, call: &Call<'_>) -> Result<Value, AwsError> {
        let body = call.json_body()?;
        match call.operation {
            "ImportCertificate" => {
                let req: ImportInput = parse(body)?;
                let import = Import {
                    arn: req.certificate_arn,
                    certificate: pem("Certificate", &req.certificate)?,
                    chain: req.certificate_chain.map(|c| pem("CertificateChain", &c)).transpose()?,
                    private_key: pem("PrivateKey", &req.private_key)?,
                    tags: req.tags.into_iter().map(|t| (t.key, t.value.unwrap_or_default())).collect(),
                };
                let c = self.certificates.import(call.region, import, self.clock.now_ms())?;
                Ok(json!({"CertificateArn": c.arn}))
            }
            "DescribeCertificate" => {
                let c = self.certificates.get(&parse::<ArnInput>(body)?.certificate_arn)?;
                Ok(json!({"Certificate": self.detail(call, &c)}))
            }
            "GetCertificate" => {
                let c = self.certificates.get(&parse::<ArnInput>(body)?.certificate_arn)?;
                Ok(json!({"Certificate": c.certificate_pem, "CertificateChain": c.chain_pem}))
            }
            "ListCertificates" => {
                let list: Vec<Value> = self
                    .certificates
                    .list()
                    .iter()
                    .map(|c| {
                        json!({
                            "CertificateArn": c.arn,
                            "DomainName": c.facts.domain_name,
                            "SubjectAlternativeNameSummaries": c.facts.subject_alternative_names,
                            "Type": "IMPORTED",
                            "Status": "ISSUED",
                            "KeyAlgorithm": c.facts.key_algorithm,
                            "InUse": !self.in_use_by(&c.arn).is_empty(),
                            "NotBefore": call.timestamp(c.facts.not_before_ms),
                            "NotAfter": call.timestamp(c.facts.not_after_ms),
                            "ImportedAt": call.timestamp(c.imported_at_ms),
                        })
                    })
                    .collect();
                Ok(json!({"CertificateSummaryList": list}))
            }
            "DeleteCertificate" => {
                let arn = parse::<ArnInput>(body)?.certificate_arn;
                let used = self.in_use_by(&arn);
                self.certificates.delete(&arn, !used.is_empty()).map_err(|e| match e {
                    CertificateError::Validation(m) => AwsError::client("ResourceInUseException", m),
                    other => other.into(),
                })?;
                Ok(json!({}))
            }
            op => Err(AwsError::unknown_operation(format!(
                "Operation '{op}' is not served by Berth's Certificate Manager: ImportCertificate, DescribeCertificate, GetCertificate, ListCertificates and DeleteCertificate are."
            ))),
        }
    }
}

impl AwsService for Acm {
    fn info(&self) -> &ServiceInfo {
        &INFO
    }

    fn call(&self, call: &Call<'_>) -> Result<Value, AwsError> {
        self.dispatch(call)
    }
}
