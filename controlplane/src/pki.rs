//! The cluster's certificate authority. Made on first start and kept in the
//! store (so it lives exactly as long as the cluster state); it signs the
//! control plane's server certificate, anew at every start for that start's
//! addresses, and one client certificate per agent at join.
//!
//! Certificates carry rcgen's default validity (no expiry in practice) and
//! there is no revocation list yet: deregistering an instance is what takes
//! a host out today.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::state::{ControlPlane, StateError};

const META_KEY: &str = "cluster_ca";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("the stored cluster CA is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    State(#[from] StateError),
}

#[derive(Serialize, Deserialize)]
struct StoredCa {
    cert_pem: String,
    key_pem: String,
}

/// A certificate with its private key, both PEM.
#[derive(Clone)]
pub struct Credentials {
    /// The certificate followed by the CA's, so a peer can see the chain.
    pub chain_pem: String,
    pub key_pem: String,
}

pub struct ClusterCa {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// The CA's own parameters. Issuing rebuilds them rather than parsing the
/// stored certificate: the subject and key identifier method are all an
/// issuer needs, and they never change.
fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::OrganizationName, "Berth");
    p.distinguished_name
        .push(DnType::CommonName, "Berth cluster CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

fn leaf_params(
    common_name: &str,
    sans: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(sans)?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::OrganizationName, "Berth");
    p.distinguished_name.push(DnType::CommonName, common_name);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![usage];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

impl ClusterCa {
    /// The stored CA, or a new one persisted before it is returned.
    pub fn load_or_create(cp: &ControlPlane) -> Result<Self, PkiError> {
        let stored = if let Some(bytes) = cp.meta(META_KEY)? {
            serde_json::from_slice::<StoredCa>(&bytes)
                .map_err(|e| PkiError::Corrupt(e.to_string()))?
        } else {
            let key = KeyPair::generate()?;
            let cert = ca_params().self_signed(&key)?;
            let stored = StoredCa {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            };
            cp.set_meta(META_KEY, serde_json::to_vec(&stored).expect("serializable"))?;
            tracing::info!("created the cluster CA for agent sessions");
            stored
        };
        Self::from_stored(stored)
    }

    fn from_stored(stored: StoredCa) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(&stored.key_pem)?;
        let cert_der = CertificateDer::from_pem_slice(stored.cert_pem.as_bytes())
            .map_err(|e| PkiError::Corrupt(e.to_string()))?;
        Ok(Self {
            cert_pem: stored.cert_pem,
            cert_der,
            issuer: Issuer::new(ca_params(), key),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// SHA-256 of the CA certificate (DER), lowercase hex: what join tokens pin.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// A server certificate for the agent endpoint, valid for `sans`
    /// (host names and IP addresses).
    pub fn issue_server(&self, sans: Vec<String>) -> Result<Credentials, PkiError> {
        let params = leaf_params(
            "berth-controlplane",
            sans,
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        self.issue(&params)
    }

    /// An agent's client certificate. Its name is for people reading logs;
    /// the control plane trusts any certificate this CA signed for client use.
    pub fn issue_agent(&self, name: &str) -> Result<Credentials, PkiError> {
        let params = leaf_params(name, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)?;
        self.issue(&params)
    }

    fn issue(&self, params: &CertificateParams) -> Result<Credentials, PkiError> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Credentials {
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }
}

/// SHA-256 of a certificate's DER, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reloaded_ca_issues_certificates_that_chain_to_the_same_root() {
        let key = KeyPair::generate().unwrap();
        let cert = ca_params().self_signed(&key).unwrap();
        let stored = || StoredCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        let first = ClusterCa::from_stored(stored()).unwrap();
        let again = ClusterCa::from_stored(stored()).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());

        let agent = again.issue_agent("berth-agent test").unwrap();
        let leaf = CertificateDer::pem_slice_iter(agent.chain_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(first.cert_der().clone()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider,
        )
        .build()
        .unwrap();
        verifier
            .verify_client_cert(&leaf, &[], rustls::pki_types::UnixTime::now())
            .expect("an agent certificate from the reloaded CA verifies against the first");
    }
}
