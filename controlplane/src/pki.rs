//! The cluster's certificate authority. Made on first start and kept in the
//! store (so it lives exactly as long as the cluster state), its private key
//! sealed under the master key like every other secret at rest; it signs the
//! control plane's server certificates and the agents' client certificates.
//!
//! An agent certificate is short-lived (24 h by default) and bound to one
//! container instance: the instance's ARN is its URI SAN. The agent renews it
//! over its session; a deregistered instance gets no new one, and the old one
//! is refused from the moment of deregistration.
//!
//! Rotating the CA makes a new one at once, and keeps the previous one trusted for a
//! while (the agent certificate lifetime, so every agent renews under the new CA in
//! time): the previous CA signs the new one's certificate (a cross-certificate), which
//! servers present, so hosts that trust only the previous CA still verify them; agents
//! get the new CA with their next certificate. Rotating with no such while (a stolen CA
//! key) distrusts the previous CA at once: its agents must join again.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::sealing::Sealer;
use crate::state::{ControlPlane, StateError};

const META_KEY: &str = "cluster_ca";
/// The first CA's name; rotated ones add a random suffix, so an agent certificate's
/// issuer says which CA signed it.
const FIRST_CA_NAME: &str = "Berth cluster CA";
/// The CA certificate's path length constraint.
const PATH_LEN: u8 = 1;

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

fn first_name() -> String {
    FIRST_CA_NAME.to_owned()
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredCa {
    cert_pem: String,
    /// Sealed under the master key (in clear only in records of older versions).
    key_pem: String,
    #[serde(default = "first_name")]
    name: String,
    #[serde(default)]
    previous: Option<PreviousCa>,
    /// The certificate's path length constraint (0 in records of older versions).
    #[serde(default)]
    path_len: u8,
}

/// The CA before the last rotation, trusted until `trusted_until_ms`.
#[derive(Clone, Serialize, Deserialize)]
struct PreviousCa {
    name: String,
    cert_pem: String,
    /// The current CA's certificate, signed by this one.
    cross_pem: String,
    trusted_until_ms: i64,
}

/// A certificate with its private key, both PEM.
#[derive(Clone)]
pub struct Credentials {
    /// The certificate followed by what a peer needs to chain it to a CA it trusts.
    pub chain_pem: String,
    pub key_pem: String,
}

/// One CA: the current one and, for a while after a rotation, the previous one.
struct Generation {
    name: String,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    previous: Option<PreviousCa>,
}

/// What a rotation did, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub fingerprint: String,
    pub previous_fingerprint: String,
    /// When the previous CA stops being trusted; `None`: it already has.
    pub previous_trusted_until_ms: Option<i64>,
}

pub struct ClusterCa {
    cp: Arc<ControlPlane>,
    sealer: Arc<Sealer>,
    current: RwLock<Arc<Generation>>,
    /// Bumped at every change of what is trusted or signs: servers re-issue their
    /// certificates and trust lists.
    changed: watch::Sender<u64>,
}

/// A CA's own parameters. Issuing rebuilds them rather than parsing the stored
/// certificate: the subject and key identifier method are all an issuer needs.
fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::OrganizationName, "Berth");
    p.distinguished_name.push(DnType::CommonName, name);
    // One level below it: its successor's cross-certificate (clients that check path
    // lengths, OpenSSL among them, refuse the chain through it otherwise).
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(PATH_LEN));
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

fn der(pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| PkiError::Corrupt(e.to_string()))
}

impl Generation {
    fn new(stored: &StoredCa, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(Self {
            name: stored.name.clone(),
            cert_pem: stored.cert_pem.clone(),
            cert_der: der(&stored.cert_pem)?,
            issuer: Issuer::new(ca_params(&stored.name), key),
            previous: stored.previous.clone(),
        })
    }

    /// The previous CA, while it is trusted at `now_ms`.
    fn previous(&self, now_ms: i64) -> Option<&PreviousCa> {
        self.previous
            .as_ref()
            .filter(|p| p.trusted_until_ms > now_ms)
    }
}

impl ClusterCa {
    /// The stored CA, or a new one persisted before it is returned. Its key is sealed
    /// in the store (a key stored in clear by an older version is sealed now).
    pub fn load_or_create(cp: Arc<ControlPlane>, sealer: Arc<Sealer>) -> Result<Self, PkiError> {
        let corrupt = |e: &dyn std::fmt::Display| PkiError::Corrupt(e.to_string());
        let (stored, key_pem) = if let Some(bytes) = cp.meta(META_KEY)? {
            let mut stored: StoredCa = serde_json::from_slice(&bytes).map_err(|e| corrupt(&e))?;
            let (key_pem, was_plain) = sealer
                .unseal(META_KEY, &stored.key_pem)
                .map_err(|e| corrupt(&e))?;
            let reissue = stored.path_len < PATH_LEN;
            if reissue {
                // Same name and key, so what it signed still verifies; only a chain
                // through a successor's cross-certificate needs the wider constraint.
                let key = KeyPair::from_pem(&key_pem)?;
                stored.cert_pem = ca_params(&stored.name).self_signed(&key)?.pem();
                stored.path_len = PATH_LEN;
                tracing::info!("re-issued the cluster CA's own certificate (same key) so that it can vouch for a successor; join tokens made before now pin the old one");
            }
            if was_plain {
                tracing::info!("sealing the cluster CA's key, stored in clear by an older version");
            }
            if was_plain || reissue {
                save(&cp, &sealer, &stored, &key_pem)?;
            }
            (stored, key_pem)
        } else {
            let key = KeyPair::generate()?;
            let stored = StoredCa {
                cert_pem: ca_params(FIRST_CA_NAME).self_signed(&key)?.pem(),
                key_pem: String::new(),
                name: first_name(),
                previous: None,
                path_len: PATH_LEN,
            };
            let key_pem = key.serialize_pem();
            save(&cp, &sealer, &stored, &key_pem)?;
            tracing::info!("created the cluster CA for agent sessions");
            (stored, key_pem)
        };
        let current = Generation::new(&stored, &key_pem)?;
        Ok(Self {
            cp,
            sealer,
            current: RwLock::new(Arc::new(current)),
            changed: watch::channel(0).0,
        })
    }

    fn current(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes whenever the CA rotates or stops trusting the previous one.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The CAs to trust, PEM: the current one, and the previous while it is trusted
    /// (what agents and API clients verify servers with).
    pub fn trust_bundle_pem(&self) -> String {
        let g = self.current();
        let previous = g.previous(self.cp.now_ms());
        format!(
            "{}{}",
            g.cert_pem,
            previous.map_or("", |p| p.cert_pem.as_str())
        )
    }

    /// The CAs whose agent certificates are accepted, DER.
    pub fn trusted_ders(&self) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        let g = self.current();
        let mut ders = vec![g.cert_der.clone()];
        if let Some(p) = g.previous(self.cp.now_ms()) {
            ders.push(der(&p.cert_pem)?);
        }
        Ok(ders)
    }

    /// Whether the CA named `issuer` (an agent certificate's issuer name) is trusted now.
    pub fn trusts_issuer(&self, issuer: &str) -> bool {
        let g = self.current();
        g.name == issuer
            || g.previous(self.cp.now_ms())
                .is_some_and(|p| p.name == issuer)
    }

    /// SHA-256 of the current CA certificate (DER), lowercase hex: what join tokens pin.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.current().cert_der)
    }

    /// How long until the previous CA stops being trusted, if one is kept.
    pub fn previous_retires_in(&self) -> Option<Duration> {
        let until = self.current().previous.as_ref()?.trusted_until_ms;
        let ms = u64::try_from(until - self.cp.now_ms()).unwrap_or_default();
        Some(Duration::from_millis(ms))
    }

    /// A server certificate valid for `sans` (host names and IP addresses). Its chain
    /// reaches the previous CA too while that is trusted (through the cross-certificate),
    /// and ends with the current CA's own when `with_root` (join tokens pin that one).
    pub fn issue_server(
        &self,
        sans: Vec<String>,
        with_root: bool,
    ) -> Result<Credentials, PkiError> {
        let g = self.current();
        let params = leaf_params(
            "berth-controlplane",
            sans,
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let mut creds = issue(&g, &params)?;
        match g.previous(self.cp.now_ms()) {
            Some(p) => {
                creds.chain_pem.push_str(&p.cross_pem);
                if with_root {
                    creds.chain_pem.push_str(&g.cert_pem);
                }
            }
            None => creds.chain_pem.push_str(&g.cert_pem),
        }
        Ok(creds)
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
        let g = self.current();
        let mut creds = issue(&g, &params)?;
        creds.chain_pem.push_str(&g.cert_pem);
        Ok(creds)
    }

    /// Replaces the CA with a new one. The previous one stays trusted for `keep_previous`
    /// (zero: not at all); a CA before it is dropped now.
    pub fn rotate(&self, keep_previous: Duration) -> Result<Rotation, PkiError> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let old = current.clone();
        let name = format!("{FIRST_CA_NAME} {}", &crate::model::arn::new_id()[..12]);
        let key = KeyPair::generate()?;
        let params = ca_params(&name);
        let cert_pem = params.self_signed(&key)?.pem();
        let keep_ms = i64::try_from(keep_previous.as_millis()).unwrap_or(i64::MAX);
        let previous = (keep_ms > 0).then(|| -> Result<PreviousCa, PkiError> {
            Ok(PreviousCa {
                name: old.name.clone(),
                cert_pem: old.cert_pem.clone(),
                cross_pem: params.signed_by(&key, &old.issuer)?.pem(),
                trusted_until_ms: self.cp.now_ms().saturating_add(keep_ms),
            })
        });
        let stored = StoredCa {
            cert_pem,
            key_pem: String::new(),
            name,
            previous: previous.transpose()?,
            path_len: PATH_LEN,
        };
        let key_pem = key.serialize_pem();
        save(&self.cp, &self.sealer, &stored, &key_pem)?;
        let next = Arc::new(Generation::new(&stored, &key_pem)?);
        let rotation = Rotation {
            fingerprint: fingerprint(&next.cert_der),
            previous_fingerprint: fingerprint(&old.cert_der),
            previous_trusted_until_ms: next.previous.as_ref().map(|p| p.trusted_until_ms),
        };
        *current = next;
        drop(current);
        tracing::info!(ca_fingerprint = %rotation.fingerprint, previous = %rotation.previous_fingerprint, previous_trusted_until_ms = ?rotation.previous_trusted_until_ms, "rotated the cluster CA");
        self.changed.send_modify(|n| *n += 1);
        Ok(rotation)
    }

    /// Drops the previous CA once its time is up (stored, so a restart keeps it dropped);
    /// whether it did.
    pub fn retire_previous(&self) -> Result<bool, PkiError> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.previous.is_none() || current.previous(self.cp.now_ms()).is_some() {
            return Ok(false);
        }
        let stored: StoredCa = self
            .cp
            .meta(META_KEY)?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| PkiError::Corrupt("the stored cluster CA went missing".into()))?;
        let (key_pem, _) = self
            .sealer
            .unseal(META_KEY, &stored.key_pem)
            .map_err(|e| PkiError::Corrupt(e.to_string()))?;
        let stored = StoredCa {
            previous: None,
            ..stored
        };
        save(&self.cp, &self.sealer, &stored, &key_pem)?;
        *current = Arc::new(Generation::new(&stored, &key_pem)?);
        drop(current);
        tracing::info!("the previous cluster CA is no longer trusted");
        self.changed.send_modify(|n| *n += 1);
        Ok(true)
    }
}

/// Persists `stored` with `key_pem` sealed.
fn save(
    cp: &ControlPlane,
    sealer: &Sealer,
    stored: &StoredCa,
    key_pem: &str,
) -> Result<(), PkiError> {
    let record = StoredCa {
        key_pem: sealer.seal(META_KEY, key_pem),
        ..stored.clone()
    };
    cp.set_meta(META_KEY, serde_json::to_vec(&record).expect("serializable"))?;
    Ok(())
}

/// A certificate from `params`, signed by `g`, with a key of its own; the chain is the
/// leaf alone (callers add what peers need).
fn issue(g: &Generation, params: &CertificateParams) -> Result<Credentials, PkiError> {
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &g.issuer)?;
    Ok(Credentials {
        chain_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// SHA-256 of a certificate's DER, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use berth_proto::agent_cert::AgentCertificate;
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::{ServerName, UnixTime};

    use super::*;
    use crate::state::test_support::{control_plane_with_clock, FixedClock};
    use crate::state::Clock as _;
    use crate::store::{MemoryStore, Store as _};

    const ARN: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance/default/abc";

    fn new_ca() -> (ClusterCa, Arc<MemoryStore>, Arc<FixedClock>) {
        let (cp, store, clock) = control_plane_with_clock();
        let ca = ClusterCa::load_or_create(Arc::new(cp), Arc::new(Sealer::ephemeral())).unwrap();
        (ca, store, clock)
    }

    fn chain(creds: &Credentials) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(creds.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn roots(ders: Vec<CertificateDer<'static>>) -> Arc<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        for d in ders {
            roots.add(d).unwrap();
        }
        Arc::new(roots)
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    /// The check the agent endpoint's TLS makes of a client certificate, at `at_ms`.
    fn verify_client(ca: &ClusterCa, creds: &Credentials, at_ms: i64) -> Result<(), rustls::Error> {
        let c = chain(creds);
        let at = UnixTime::since_unix_epoch(Duration::from_millis(u64::try_from(at_ms).unwrap()));
        rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots(ca.trusted_ders().unwrap()),
            provider(),
        )
        .build()
        .unwrap()
        .verify_client_cert(&c[0], &c[1..], at)
        .map(|_| ())
    }

    /// The check an agent or API client trusting `trusted` (PEM) makes of a server chain.
    fn verify_server(trusted: &str, creds: &Credentials) -> Result<(), rustls::Error> {
        let c = chain(creds);
        let anchors = CertificateDer::pem_slice_iter(trusted.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots(anchors), provider())
            .build()
            .unwrap()
            .verify_server_cert(
                &c[0],
                &c[1..],
                &ServerName::try_from("localhost").unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    fn agent(ca: &ClusterCa, now_ms: i64) -> Credentials {
        ca.issue_agent("berth-agent h", ARN, now_ms, Duration::from_secs(3600))
            .unwrap()
    }

    #[test]
    fn an_agent_certificate_names_its_instance_and_lives_as_long_as_asked() {
        let (ca, _, clock) = new_ca();
        let now = clock.now_ms();
        let creds = agent(&ca, now);
        let cert = AgentCertificate::parse(&chain(&creds)[0]).unwrap();
        assert_eq!(cert.instance_arn.as_deref(), Some(ARN));
        assert_eq!(cert.issuer, FIRST_CA_NAME);
        // Whole seconds in X.509.
        assert!(
            (cert.not_after_ms - (now + 3_600_000)).abs() < 1000,
            "{cert:?}"
        );
        assert!((cert.not_before_ms - now).abs() < 1000, "{cert:?}");
        assert!(cert.renew_at_ms() > now && cert.renew_at_ms() < cert.not_after_ms);
        verify_client(&ca, &creds, now + 1000).unwrap();
        assert!(ca
            .issue_agent("x", "not-an-arn", now, Duration::from_secs(60))
            .is_err());
    }

    #[test]
    fn an_expired_or_foreign_agent_certificate_is_refused_at_the_handshake() {
        let (ca, _, clock) = new_ca();
        let creds = agent(&ca, clock.now_ms());
        let e = verify_client(&ca, &creds, clock.now_ms() + 3_601_000).unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
        // Same names, same instance, another CA: a forgery.
        let (other, _, _) = new_ca();
        let forged = agent(&other, clock.now_ms());
        assert!(verify_client(&ca, &forged, clock.now_ms() + 1000).is_err());
    }

    #[test]
    fn the_ca_key_is_sealed_in_the_store_and_reloads() {
        let (cp, store, clock) = control_plane_with_clock();
        let (cp, sealer) = (Arc::new(cp), Arc::new(Sealer::ephemeral()));
        let first = ClusterCa::load_or_create(cp.clone(), sealer.clone()).unwrap();
        let stored = store.load(crate::store::Table::Meta).unwrap();
        let (_, record) = stored.iter().find(|(k, _)| k == META_KEY).unwrap();
        let record = String::from_utf8_lossy(record);
        assert!(!record.contains("PRIVATE KEY"), "{record}");
        let again = ClusterCa::load_or_create(cp.clone(), sealer).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        let creds = agent(&again, clock.now_ms());
        verify_client(&first, &creds, clock.now_ms() + 1000)
            .expect("the reloaded CA signs for the same root");
        // Under another master key the CA does not open.
        assert!(ClusterCa::load_or_create(cp, Arc::new(Sealer::ephemeral())).is_err());
    }

    /// A record of an older version: the key in clear, the certificate with no room for
    /// a successor's cross-certificate.
    #[test]
    fn an_older_ca_record_is_sealed_and_widened_on_load() {
        let (cp, store, _) = control_plane_with_clock();
        let key = KeyPair::generate().unwrap();
        let mut narrow = ca_params(FIRST_CA_NAME);
        narrow.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let old_pem = narrow.self_signed(&key).unwrap().pem();
        let clear = serde_json::json!({ "cert_pem": old_pem, "key_pem": key.serialize_pem() });
        cp.set_meta(META_KEY, serde_json::to_vec(&clear).unwrap())
            .unwrap();
        let ca = ClusterCa::load_or_create(Arc::new(cp), Arc::new(Sealer::ephemeral())).unwrap();
        let stored = store.load(crate::store::Table::Meta).unwrap();
        let (_, record) = stored.iter().find(|(k, _)| k == META_KEY).unwrap();
        let record: serde_json::Value = serde_json::from_slice(record).unwrap();
        assert!(!record.to_string().contains("PRIVATE KEY"), "{record}");
        assert_eq!(record["path_len"], 1);
        // Same key and name: a new certificate, which verifies what the old one signed.
        assert_ne!(ca.trust_bundle_pem(), old_pem);
        let old = Issuer::new(ca_params(FIRST_CA_NAME), key);
        let leaf = leaf_params("x", vec![], ExtendedKeyUsagePurpose::ClientAuth)
            .unwrap()
            .signed_by(&KeyPair::generate().unwrap(), &old)
            .unwrap();
        let creds = Credentials {
            chain_pem: leaf.pem(),
            key_pem: String::new(),
        };
        verify_client(&ca, &creds, 1_800_000_000_000).unwrap();
    }

    #[test]
    fn a_rotation_keeps_both_cas_working_until_the_previous_one_retires() {
        let (cp, _, clock) = control_plane_with_clock();
        let (cp, sealer) = (Arc::new(cp), Arc::new(Sealer::ephemeral()));
        let ca = ClusterCa::load_or_create(cp.clone(), sealer.clone()).unwrap();
        let old_bundle = ca.trust_bundle_pem();
        let old_agent = agent(&ca, clock.now_ms());
        let mut changes = ca.subscribe();

        let r = ca.rotate(Duration::from_secs(60)).unwrap();
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert_ne!(r.fingerprint, r.previous_fingerprint);
        assert_eq!(ca.fingerprint(), r.fingerprint);
        assert_eq!(r.previous_trusted_until_ms, Some(clock.now_ms() + 60_000));
        // Agents with certificates from either CA are accepted.
        let new_agent = agent(&ca, clock.now_ms());
        let new_issuer = AgentCertificate::parse(&chain(&new_agent)[0])
            .unwrap()
            .issuer;
        assert_ne!(new_issuer, FIRST_CA_NAME);
        for creds in [&old_agent, &new_agent] {
            verify_client(&ca, creds, clock.now_ms() + 1000).unwrap();
        }
        assert!(ca.trusts_issuer(FIRST_CA_NAME) && ca.trusts_issuer(&new_issuer));
        // Hosts that trust only the previous CA, only the new one, or both verify the
        // servers: the API's chain and the agent endpoint's (which adds the new root).
        let both = ca.trust_bundle_pem();
        let new_only = both
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap();
        assert_ne!(new_only, old_bundle);
        for with_root in [false, true] {
            let server = ca
                .issue_server(vec!["localhost".into()], with_root)
                .unwrap();
            for trusted in [old_bundle.as_str(), new_only, &both] {
                verify_server(trusted, &server).unwrap();
            }
        }
        // A restart keeps the rotation.
        let reloaded = ClusterCa::load_or_create(cp.clone(), sealer.clone()).unwrap();
        assert_eq!(reloaded.fingerprint(), r.fingerprint);
        assert!(reloaded.trusts_issuer(FIRST_CA_NAME));

        // Not yet due: nothing changes. Then the previous CA retires, for good.
        assert!(!ca.retire_previous().unwrap());
        clock.advance_ms(60_000);
        assert!(ca.retire_previous().unwrap());
        assert!(changes.has_changed().unwrap());
        assert!(!ca.trusts_issuer(FIRST_CA_NAME));
        assert!(verify_client(&ca, &old_agent, clock.now_ms()).is_err());
        verify_client(&ca, &new_agent, clock.now_ms()).unwrap();
        let server = ca.issue_server(vec!["localhost".into()], false).unwrap();
        assert!(verify_server(&old_bundle, &server).is_err());
        verify_server(&ca.trust_bundle_pem(), &server).unwrap();
        let reloaded = ClusterCa::load_or_create(cp, sealer).unwrap();
        assert!(reloaded.previous_retires_in().is_none());
    }

    #[test]
    fn distrusting_the_previous_ca_takes_effect_at_once() {
        let (ca, _, clock) = new_ca();
        let old_agent = agent(&ca, clock.now_ms());
        let r = ca.rotate(Duration::ZERO).unwrap();
        assert_eq!(r.previous_trusted_until_ms, None);
        assert!(!ca.trusts_issuer(FIRST_CA_NAME));
        assert!(verify_client(&ca, &old_agent, clock.now_ms() + 1000).is_err());
        assert_eq!(ca.trusted_ders().unwrap().len(), 1);
    }
}
