//! The cluster's certificate authority. Made on first start and kept in the
//! store (so it lives exactly as long as the cluster state), its private key
//! sealed under the master key like every other secret at rest; it signs the
//! control plane's server certificate, anew at every start for that start's
//! addresses, and the agents' client certificates.
//!
//! An agent certificate is short-lived (24 h by default) and bound to one
//! container instance: the instance's ARN is its URI SAN. The agent renews it
//! over its session; a deregistered instance gets no new one, and the old one
//! is refused from the moment of deregistration.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sealing::Sealer;
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
    #[error("an agent certificate must be bound to a container instance ARN, not '{0}'")]
    NotAnInstance(String),
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
    /// The stored CA, or a new one persisted before it is returned. Its key is sealed
    /// in the store (a key stored in clear by an older version is sealed now).
    pub fn load_or_create(cp: &ControlPlane, sealer: &Sealer) -> Result<Self, PkiError> {
        let corrupt = |e: &dyn std::fmt::Display| PkiError::Corrupt(e.to_string());
        let save = |cert_pem: &str, key_pem: &str| {
            let stored = StoredCa {
                cert_pem: cert_pem.to_owned(),
                key_pem: sealer.seal(META_KEY, key_pem),
            };
            cp.set_meta(META_KEY, serde_json::to_vec(&stored).expect("serializable"))
        };
        let Some(bytes) = cp.meta(META_KEY)? else {
            let key = KeyPair::generate()?;
            let cert = ca_params().self_signed(&key)?;
            let stored = StoredCa {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            };
            save(&stored.cert_pem, &stored.key_pem)?;
            tracing::info!("created the cluster CA for agent sessions");
            return Self::from_stored(stored);
        };
        let mut stored: StoredCa = serde_json::from_slice(&bytes).map_err(|e| corrupt(&e))?;
        let (key_pem, was_plain) = sealer
            .unseal(META_KEY, &stored.key_pem)
            .map_err(|e| corrupt(&e))?;
        if was_plain {
            save(&stored.cert_pem, &key_pem)?;
            tracing::info!("sealed the cluster CA's key, stored in clear by an older version");
        }
        stored.key_pem = key_pem;
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

    /// An agent's client certificate, bound to `instance_arn` (its URI SAN) and valid
    /// for `lifetime` from `now_ms`. Its common name is for people reading logs.
    pub fn issue_agent(
        &self,
        name: &str,
        instance_arn: &str,
        now_ms: i64,
        lifetime: Duration,
    ) -> Result<Credentials, PkiError> {
        if !instance_arn.starts_with(berth_proto::agent_cert::INSTANCE_URI_PREFIX)
            || !instance_arn.contains(":container-instance/")
        {
            return Err(PkiError::NotAnInstance(instance_arn.to_owned()));
        }
        let mut params = leaf_params(name, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)?;
        let uri = rcgen::string::Ia5String::try_from(instance_arn.to_owned())?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(now_ms);
        // Valid from now, not earlier: only the control plane checks these dates, by
        // its own clock; and the agent renews two thirds into the span.
        params.not_before = now;
        params.not_after = now + lifetime;
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
    use std::sync::Arc;

    use berth_proto::agent_cert::AgentCertificate;
    use rustls::pki_types::UnixTime;

    use super::*;
    use crate::store::Store as _;

    const ARN: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance/default/abc";

    fn now_ms() -> i64 {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    }

    fn leaf(creds: &Credentials) -> CertificateDer<'static> {
        CertificateDer::pem_slice_iter(creds.chain_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap()
    }

    /// The check the agent endpoint's TLS makes of a client certificate.
    fn verify(ca: &ClusterCa, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap()
            .verify_client_cert(cert, &[], UnixTime::now())
            .map(|_| ())
    }

    fn new_ca() -> ClusterCa {
        let key = KeyPair::generate().unwrap();
        let cert = ca_params().self_signed(&key).unwrap();
        ClusterCa::from_stored(StoredCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
        .unwrap()
    }

    #[test]
    fn an_agent_certificate_names_its_instance_and_lives_as_long_as_asked() {
        let ca = new_ca();
        let now = now_ms();
        let creds = ca
            .issue_agent("berth-agent h", ARN, now, Duration::from_secs(3600))
            .unwrap();
        let cert = AgentCertificate::parse(&leaf(&creds)).unwrap();
        assert_eq!(cert.instance_arn.as_deref(), Some(ARN));
        // Whole seconds in X.509.
        assert!(
            (cert.not_after_ms - (now + 3_600_000)).abs() < 1000,
            "{cert:?}"
        );
        assert!((cert.not_before_ms - now).abs() < 1000, "{cert:?}");
        assert!(cert.renew_at_ms() > now && cert.renew_at_ms() < cert.not_after_ms);
        verify(&ca, &leaf(&creds)).unwrap();
        assert!(ca
            .issue_agent("x", "not-an-arn", now, Duration::from_secs(60))
            .is_err());
    }

    #[test]
    fn an_expired_or_foreign_agent_certificate_is_refused_at_the_handshake() {
        let ca = new_ca();
        let an_hour_ago = now_ms() - 3_600_000;
        let expired = ca
            .issue_agent("berth-agent h", ARN, an_hour_ago, Duration::from_secs(60))
            .unwrap();
        let e = verify(&ca, &leaf(&expired)).unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
        // Same names, same instance, another CA: a forgery.
        let forged = new_ca()
            .issue_agent("berth-agent h", ARN, now_ms(), Duration::from_secs(60))
            .unwrap();
        assert!(verify(&ca, &leaf(&forged)).is_err());
    }

    #[test]
    fn the_ca_key_is_sealed_in_the_store_and_reloads() {
        let (cp, store) = crate::state::test_support::control_plane();
        let sealer = Sealer::ephemeral();
        let first = ClusterCa::load_or_create(&cp, &sealer).unwrap();
        let stored = store.load(crate::store::Table::Meta).unwrap();
        let (_, record) = stored.iter().find(|(k, _)| k == META_KEY).unwrap();
        let record = String::from_utf8_lossy(record);
        assert!(!record.contains("PRIVATE KEY"), "{record}");
        let again = ClusterCa::load_or_create(&cp, &sealer).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        let creds = again
            .issue_agent("berth-agent h", ARN, now_ms(), Duration::from_secs(60))
            .unwrap();
        verify(&first, &leaf(&creds)).expect("the reloaded CA signs for the same root");
        // Under another master key the CA does not open.
        assert!(ClusterCa::load_or_create(&cp, &Sealer::ephemeral()).is_err());
    }

    #[test]
    fn a_ca_key_stored_in_clear_is_sealed_on_load() {
        let (cp, store) = crate::state::test_support::control_plane();
        let key = KeyPair::generate().unwrap();
        let clear = StoredCa {
            cert_pem: ca_params().self_signed(&key).unwrap().pem(),
            key_pem: key.serialize_pem(),
        };
        cp.set_meta(META_KEY, serde_json::to_vec(&clear).unwrap())
            .unwrap();
        ClusterCa::load_or_create(&cp, &Sealer::ephemeral()).unwrap();
        let stored = store.load(crate::store::Table::Meta).unwrap();
        let (_, record) = stored.iter().find(|(k, _)| k == META_KEY).unwrap();
        assert!(!String::from_utf8_lossy(record).contains("PRIVATE KEY"));
    }
}
