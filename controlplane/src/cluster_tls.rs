//! The control plane's TLS from the cluster CA: the agent endpoint's certificate and the
//! CAs its client certificates must chain to, the API's certificate (unless the operator
//! gives one), and the CA bundle `aws.env` points clients at. All are replaced in place
//! when the CA rotates or stops trusting the previous one; connections already open keep
//! what they were made with.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::agent_tls::TlsError;
use crate::pki::{ClusterCa, Credentials};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn cfg(e: &dyn std::fmt::Display) -> TlsError {
    TlsError::Config(e.to_string())
}

/// A certificate chain and key, PEM, ready to serve.
pub fn certified_key(chain_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cfg(&e))?;
    if chain.is_empty() {
        return Err(TlsError::Config("no certificate in the PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| cfg(&e))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| cfg(&e))
}

/// A server certificate that can be replaced while serving.
#[derive(Debug)]
pub struct SwapCert(RwLock<Arc<CertifiedKey>>);

impl SwapCert {
    fn new(creds: &Credentials) -> Result<Self, TlsError> {
        Ok(Self(RwLock::new(Arc::new(key_of(creds)?))))
    }

    fn set(&self, creds: &Credentials) -> Result<(), TlsError> {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key_of(creds)?);
        Ok(())
    }
}

fn key_of(creds: &Credentials) -> Result<CertifiedKey, TlsError> {
    certified_key(creds.chain_pem.as_bytes(), creds.key_pem.as_bytes())
}

impl ResolvesServerCert for SwapCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// Client certificates checked against the CAs trusted now (optional at the TLS layer:
/// `Join` works without one; every other call needs it).
#[derive(Debug)]
struct SwapVerifier(RwLock<Arc<dyn ClientCertVerifier>>);

impl SwapVerifier {
    fn verifier(ca: &ClusterCa) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for der in ca.trusted_ders().map_err(|e| cfg(&e))? {
            roots.add(der).map_err(|e| cfg(&e))?;
        }
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| cfg(&e))
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ClientCertVerifier for SwapVerifier {
    fn offer_client_auth(&self) -> bool {
        self.current().offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.current().client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The hints are optional; clients here present their one certificate anyway.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// What the cluster CA backs, kept current with it.
pub struct ClusterTls {
    ca: Arc<ClusterCa>,
    agent_sans: Vec<String>,
    agent_cert: Arc<SwapCert>,
    verifier: Arc<SwapVerifier>,
    /// The API's certificate and names, when the API serves one from the cluster CA.
    api: Option<(Arc<SwapCert>, Vec<String>)>,
    /// Where the CA bundle for API clients is written, when `api` is set.
    bundle: Option<PathBuf>,
}

impl ClusterTls {
    /// The agent endpoint's TLS for `agent_sans`; `api`: the API's names and where to
    /// write its clients' CA bundle, when the API uses the cluster CA.
    pub fn new(
        ca: Arc<ClusterCa>,
        agent_sans: Vec<String>,
        api: Option<(Vec<String>, PathBuf)>,
    ) -> Result<Self, TlsError> {
        let err = |e: crate::pki::PkiError| cfg(&e);
        let agent_cert = SwapCert::new(&ca.issue_server(agent_sans.clone(), true).map_err(err)?)?;
        let verifier = SwapVerifier(RwLock::new(SwapVerifier::verifier(&ca)?));
        let (api, bundle) = match api {
            Some((sans, bundle)) => {
                let cert = SwapCert::new(&ca.issue_server(sans.clone(), false).map_err(err)?)?;
                (Some((Arc::new(cert), sans)), Some(bundle))
            }
            None => (None, None),
        };
        let tls = Self {
            ca,
            agent_sans,
            agent_cert: Arc::new(agent_cert),
            verifier: Arc::new(verifier),
            api,
            bundle,
        };
        tls.write_bundle()?;
        Ok(tls)
    }

    /// The agent endpoint's server configuration (gRPC: HTTP/2 only).
    pub fn agent_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| cfg(&e))?
            .with_client_cert_verifier(self.verifier.clone())
            .with_cert_resolver(self.agent_cert.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// The API's server certificate, when it comes from the cluster CA.
    pub fn api_cert(&self) -> Option<Arc<dyn ResolvesServerCert>> {
        self.api
            .as_ref()
            .map(|(cert, _)| cert.clone() as Arc<dyn ResolvesServerCert>)
    }

    /// The CA bundle file API clients verify with, when there is one.
    pub fn bundle(&self) -> Option<&std::path::Path> {
        self.bundle.as_deref()
    }

    fn write_bundle(&self) -> Result<(), TlsError> {
        let Some(path) = &self.bundle else {
            return Ok(());
        };
        let tmp = path.with_extension("pem.tmp");
        std::fs::write(&tmp, self.ca.trust_bundle_pem())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| TlsError::Config(format!("{}: {e}", path.display())))
    }

    /// Re-issues the certificates and trust lists from the CA as it is now.
    fn refresh(&self) -> Result<(), TlsError> {
        let err = |e: crate::pki::PkiError| cfg(&e);
        // Trust first: a client may meet the new server certificate at once.
        self.write_bundle()?;
        *self
            .verifier
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = SwapVerifier::verifier(&self.ca)?;
        self.agent_cert.set(
            &self
                .ca
                .issue_server(self.agent_sans.clone(), true)
                .map_err(err)?,
        )?;
        if let Some((cert, sans)) = &self.api {
            cert.set(&self.ca.issue_server(sans.clone(), false).map_err(err)?)?;
        }
        Ok(())
    }

    /// Follows the CA: refreshes at each rotation, and drops the previous CA when its
    /// time is up. Runs until the task is aborted.
    pub async fn follow_rotations(self: Arc<Self>) {
        let mut changed = self.ca.subscribe();
        loop {
            let retire_in = self.ca.previous_retires_in();
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                () = async { tokio::time::sleep(retire_in.unwrap_or_default()).await }, if retire_in.is_some() => {
                    if let Err(e) = self.ca.retire_previous() {
                        tracing::error!(error = %e, "could not drop the previous cluster CA; trying again in 10 s");
                        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                    }
                    continue;
                }
            }
            match self.refresh() {
                Ok(()) => {
                    tracing::info!(ca_fingerprint = %self.ca.fingerprint(), "server certificates and trusted CAs follow the cluster CA");
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not re-issue the server certificates after a CA change");
                }
            }
        }
    }
}
