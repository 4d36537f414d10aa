//! What an agent's client certificate says beyond "signed by the cluster CA": the
//! container instance it is bound to and how long it is valid. Both sides read it here:
//! the control plane to check every call against the instance, the agent to know when
//! to renew.

/// The URI SAN an agent certificate carries: its container instance's ARN.
pub const INSTANCE_URI_PREFIX: &str = "arn:aws:ecs:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCertificate {
    /// The container instance ARN of the certificate's URI SAN; `None` for a
    /// certificate from before instances were bound (such an agent must join again).
    pub instance_arn: Option<String>,
    /// The common name of the CA that signed it.
    pub issuer: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("unreadable agent certificate: {0}")]
pub struct CertificateError(String);

impl AgentCertificate {
    /// Reads a DER certificate. It does not verify it: the TLS handshake has.
    pub fn parse(der: &[u8]) -> Result<Self, CertificateError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| CertificateError(e.to_string()))?;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| CertificateError(e.to_string()))?;
        let instance_arn = san
            .into_iter()
            .flat_map(|s| &s.value.general_names)
            .find_map(|n| match n {
                x509_parser::extensions::GeneralName::URI(u)
                    if u.starts_with(INSTANCE_URI_PREFIX) =>
                {
                    Some((*u).to_owned())
                }
                _ => None,
            });
        let issuer = cert
            .issuer()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned();
        let v = cert.validity();
        Ok(Self {
            instance_arn,
            issuer,
            not_before_ms: v.not_before.timestamp().saturating_mul(1000),
            not_after_ms: v.not_after.timestamp().saturating_mul(1000),
        })
    }

    /// Reads the first certificate of a PEM chain (the agent's own).
    pub fn from_pem(pem: &str) -> Result<Self, CertificateError> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| CertificateError(e.to_string()))?;
        Self::parse(&block.contents)
    }

    /// When to renew: two thirds into the certificate's life, which leaves a third of
    /// it (8 h of the default 24 h) to reach the control plane.
    pub fn renew_at_ms(&self) -> i64 {
        self.not_before_ms + (self.not_after_ms - self.not_before_ms) * 2 / 3
    }
}
