//! Certificate Manager's imported certificates: a PEM certificate, its chain and its
//! private key, checked to belong together, the key sealed at rest. HTTPS listeners name
//! them by ARN; the load balancers' data plane reads them back to serve TLS.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::model::ArnContext;
use crate::sealing::Sealer;
use crate::store::{Store, StoreError, Table, Write};

/// An imported certificate, as stored (the key sealed).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub arn: String,
    pub certificate_pem: String,
    pub chain_pem: Option<String>,
    pub private_key_pem: String,
    pub imported_at_ms: i64,
    pub tags: Vec<(String, String)>,
    /// Read from the certificate at import.
    pub facts: Facts,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("arn", &self.arn)
            .field("facts", &self.facts)
            .finish_non_exhaustive()
    }
}

/// What `DescribeCertificate` reports about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub domain_name: String,
    pub subject_alternative_names: Vec<String>,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    pub key_algorithm: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertificateError {
    #[error("{0}")]
    Validation(String),
    #[error("Could not find certificate with ARN '{0}'.")]
    NotFound(String),
    #[error("{0}")]
    Store(String),
}

impl From<StoreError> for CertificateError {
    fn from(e: StoreError) -> Self {
        Self::Store(e.to_string())
    }
}

fn invalid(m: impl Into<String>) -> CertificateError {
    CertificateError::Validation(m.into())
}

/// The certificate chain (leaf first) and key, as TLS serves them; checks they match.
pub fn parse_pair(
    certificate: &str,
    chain: Option<&str>,
    key: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CertificateError> {
    let mut certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(certificate.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| {
                invalid(format!(
                    "The certificate is not a valid PEM certificate: {e}"
                ))
            })?;
    if certs.len() != 1 {
        return Err(invalid(format!(
            "The certificate field must contain exactly one PEM certificate; it contains {}. Put intermediates in the certificate chain.",
            certs.len()
        )));
    }
    if let Some(chain) = chain {
        for c in CertificateDer::pem_slice_iter(chain.as_bytes()) {
            certs.push(
                c.map_err(|e| invalid(format!("The certificate chain is not valid PEM: {e}")))?,
            );
        }
    }
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| {
        invalid(format!(
            "The private key is not a valid PEM private key: {e}"
        ))
    })?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| invalid(format!("The private key is not supported: {e}")))?;
    rustls::sign::CertifiedKey::new(certs.clone(), signing)
        .keys_match()
        .map_err(|_| invalid("The private key does not match the certificate's public key."))?;
    Ok((certs, key))
}

fn facts(leaf: &CertificateDer<'_>) -> Result<Facts, CertificateError> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| invalid(format!("The certificate could not be read: {e}")))?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .map(str::to_string);
    let mut sans: Vec<String> = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = name {
                sans.push((*d).to_string());
            }
        }
    }
    let domain_name = cn
        .clone()
        .or_else(|| sans.first().cloned())
        .ok_or_else(|| invalid("The certificate names no domain: it has no common name and no DNS subject alternative name."))?;
    if !sans.contains(&domain_name) {
        sans.insert(0, domain_name.clone());
    }
    let key_algorithm = match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => format!("RSA_{}", k.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(p)) if p.key_size() == 384 => {
            "EC_secp384r1".into()
        }
        Ok(x509_parser::public_key::PublicKey::EC(_)) => "EC_prime256v1".into(),
        _ => "UNKNOWN".into(),
    };
    Ok(Facts {
        domain_name,
        subject_alternative_names: sans,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        not_before_ms: cert.validity().not_before.timestamp() * 1000,
        not_after_ms: cert.validity().not_after.timestamp() * 1000,
        key_algorithm,
    })
}

/// What `ImportCertificate` asks for.
#[derive(Debug, Clone, Default)]
pub struct Import {
    /// Re-import into an existing ARN.
    pub arn: Option<String>,
    pub certificate: String,
    pub chain: Option<String>,
    pub private_key: String,
    pub tags: Vec<(String, String)>,
}

pub struct Certificates {
    store: Arc<dyn Store>,
    sealer: Arc<Sealer>,
    arns: ArnContext,
    by_arn: Mutex<BTreeMap<String, Certificate>>,
}

fn seal_context(arn: &str) -> String {
    format!("acm-key|{arn}")
}

impl Certificates {
    pub fn open(
        store: Arc<dyn Store>,
        sealer: Arc<Sealer>,
        arns: ArnContext,
    ) -> Result<Self, CertificateError> {
        let mut by_arn = BTreeMap::new();
        for (key, bytes) in store.load(Table::Certificates)? {
            let mut c: Certificate = serde_json::from_slice(&bytes)
                .map_err(|e| CertificateError::Store(format!("certificate record {key}: {e}")))?;
            c.private_key_pem = sealer
                .unseal(&seal_context(&c.arn), &c.private_key_pem)
                .map_err(|e| CertificateError::Store(format!("certificate record {key}: {e}")))?
                .0;
            by_arn.insert(c.arn.clone(), c);
        }
        Ok(Self {
            store,
            sealer,
            arns,
            by_arn: Mutex::new(by_arn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Certificate>> {
        self.by_arn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn persist(&self, c: &Certificate) -> Result<(), CertificateError> {
        let sealed = Certificate {
            private_key_pem: self.sealer.seal(&seal_context(&c.arn), &c.private_key_pem),
            ..c.clone()
        };
        let bytes = serde_json::to_vec(&sealed).expect("certificates serialize");
        self.store
            .apply(&[Write::put(Table::Certificates, c.arn.clone(), bytes)])?;
        Ok(())
    }

    pub fn import(
        &self,
        region: &str,
        req: Import,
        now_ms: i64,
    ) -> Result<Certificate, CertificateError> {
        let (certs, _) = parse_pair(&req.certificate, req.chain.as_deref(), &req.private_key)?;
        let facts = facts(&certs[0])?;
        let mut all = self.lock();
        let (arn, tags) = match &req.arn {
            Some(arn) => {
                let old = all
                    .get(arn)
                    .ok_or_else(|| CertificateError::NotFound(arn.clone()))?;
                (arn.clone(), old.tags.clone())
            }
            None => (
                format!(
                    "arn:aws:acm:{region}:{}:certificate/{}",
                    self.arns.account,
                    uuid::Uuid::new_v4()
                ),
                req.tags.clone(),
            ),
        };
        let c = Certificate {
            arn,
            certificate_pem: req.certificate,
            chain_pem: req.chain,
            private_key_pem: req.private_key,
            imported_at_ms: now_ms,
            tags,
            facts,
        };
        self.persist(&c)?;
        all.insert(c.arn.clone(), c.clone());
        Ok(c)
    }

    pub fn get(&self, arn: &str) -> Result<Certificate, CertificateError> {
        self.lock()
            .get(arn)
            .cloned()
            .ok_or_else(|| CertificateError::NotFound(arn.to_string()))
    }

    pub fn list(&self) -> Vec<Certificate> {
        self.lock().values().cloned().collect()
    }

    /// `in_use` says whether a listener serves it (ACM refuses to delete those).
    pub fn delete(&self, arn: &str, in_use: bool) -> Result<(), CertificateError> {
        let mut all = self.lock();
        if !all.contains_key(arn) {
            return Err(CertificateError::NotFound(arn.to_string()));
        }
        if in_use {
            return Err(invalid(format!(
                "Certificate {arn} is in use by a load balancer listener: remove it from the listener first."
            )));
        }
        self.store
            .apply(&[Write::delete(Table::Certificates, arn.to_string())])?;
        all.remove(arn);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn open(store: Arc<MemoryStore>, sealer: Arc<Sealer>) -> Certificates {
        let arns = ArnContext {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        };
        Certificates::open(store, sealer, arns).unwrap()
    }

    #[test]
    fn imports_are_checked_read_and_sealed_at_rest() {
        let store = Arc::new(MemoryStore::default());
        let sealer = Arc::new(Sealer::ephemeral());
        let certs = open(store.clone(), sealer.clone());
        let (cert, key) = pair("app.example.test");
        let (other, _) = pair("other.example.test");
        let import = |certificate: &str, private_key: &str| Import {
            certificate: certificate.into(),
            private_key: private_key.into(),
            ..Import::default()
        };
        let e = certs
            .import("eu-west-1", import(&other, &key), 1)
            .unwrap_err();
        assert_eq!(
            e,
            invalid("The private key does not match the certificate's public key.")
        );
        let both = format!("{cert}{other}");
        assert!(matches!(
            certs.import("eu-west-1", import(&both, &key), 1),
            Err(CertificateError::Validation(m)) if m.contains("exactly one")
        ));
        let c = certs.import("eu-west-1", import(&cert, &key), 1).unwrap();
        assert!(c
            .arn
            .starts_with("arn:aws:acm:eu-west-1:123456789012:certificate/"));
        assert_eq!(c.facts.domain_name, "rcgen self signed cert");
        assert!(c
            .facts
            .subject_alternative_names
            .contains(&"app.example.test".to_string()));
        let stored = store.load(Table::Certificates).unwrap();
        let raw = String::from_utf8(stored[0].1.clone()).unwrap();
        assert!(!raw.contains("PRIVATE KEY"), "the key is sealed at rest");
        let reopened = open(store, sealer);
        assert_eq!(reopened.get(&c.arn).unwrap().private_key_pem, key);
        assert!(reopened
            .delete(&c.arn, true)
            .unwrap_err()
            .to_string()
            .contains("in use"));
        reopened.delete(&c.arn, false).unwrap();
        assert!(matches!(
            reopened.get(&c.arn),
            Err(CertificateError::NotFound(_))
        ));
    }
}
