//! The agent's side of mutual TLS with the control plane: the client
//! certificate kept under `<data-dir>/pki`, the one-time join that gets it,
//! and the channel every session uses.
//!
//! Joining starts with nothing but the token. Its first part pins the
//! cluster CA, so the agent fetches the CA from the server's certificate
//! chain, accepts it only if its SHA-256 matches the pin, and from then on
//! verifies the control plane the ordinary way against that CA. The token's
//! secret goes out only over a connection verified like that.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_proto::agent_cert::AgentCertificate;
use berth_proto::join_token::JoinToken;
use berth_proto::v1 as pb;
use berth_proto::v1::agent_service_client::AgentServiceClient;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::DigitallySignedStruct;
use sha2::{Digest, Sha256};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Bound on connecting and on the handshake that fetches the CA.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "control-plane endpoint '{0}': expected https://HOST:PORT (agent sessions always use TLS)"
    )]
    Endpoint(String),
    #[error("connecting to {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("the control plane at {endpoint} does not present the CA the join token names (token pins {expected}; the server's chain has {found:?}): wrong control plane, or a token from another cluster")]
    CaMismatch {
        endpoint: String,
        expected: String,
        found: Vec<String>,
    },
    #[error("the control plane refused the join: {0}")]
    Refused(String),
    #[error("renewing this agent's certificate failed: {0}")]
    RenewRefused(String),
    #[error("this agent's certificate in {path} expired at {expired_at_ms} ms since the epoch (the agent was away longer than its lifetime): join again with a new token from `berth join-token create` (--join-token, BERTH_JOIN_TOKEN)")]
    Expired { path: PathBuf, expired_at_ms: i64 },
    #[error("{0}: {1}")]
    Certificate(PathBuf, berth_proto::agent_cert::CertificateError),
    #[error("no client certificate in {0} and no join token: start the agent with --join-token (BERTH_JOIN_TOKEN) from `berth join-token create`")]
    NotJoined(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The agent's certificate, key and cluster CA, PEM.
#[derive(Clone)]
pub struct AgentIdentity {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Never prints the key.
impl std::fmt::Debug for AgentIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentIdentity").finish_non_exhaustive()
    }
}

/// Where the control plane is: scheme checked, host split out for TLS
/// name checks.
#[derive(Debug, Clone)]
pub struct ControlPlaneEndpoint {
    pub url: String,
    pub host: String,
    pub port: u16,
}

impl std::str::FromStr for ControlPlaneEndpoint {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, TlsError> {
        let bad = || TlsError::Endpoint(s.to_string());
        let rest = s.strip_prefix("https://").ok_or_else(bad)?;
        let authority = rest.trim_end_matches('/');
        let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || authority.contains('/') {
            return Err(bad());
        }
        Ok(Self {
            url: format!("https://{authority}"),
            host: host.to_string(),
            port,
        })
    }
}

fn pki_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("pki")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The files of an identity, in the order a save renames them into place.
const FILES: [(&str, u32); 3] = [
    ("ca.pem", 0o644),
    ("agent.pem", 0o644),
    ("agent.key", 0o600),
];
/// Present while a save renames its files into place: a save cut short by a crash
/// is finished at the next load, so a certificate never goes with another's key.
const COMMIT: &str = ".commit";

impl AgentIdentity {
    /// The identity saved by an earlier join or renewal, if any.
    pub fn load(data_dir: &Path) -> Result<Option<Self>, TlsError> {
        let dir = pki_dir(data_dir);
        finish_save(&dir)?;
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read_to_string(&p).map_err(io(&p))
        };
        if !dir.join("agent.key").exists() {
            return Ok(None);
        }
        Ok(Some(Self {
            ca_pem: read("ca.pem")?,
            cert_pem: read("agent.pem")?,
            key_pem: read("agent.key")?,
        }))
    }

    /// What the certificate says: its instance and lifetime.
    pub fn certificate(&self, data_dir: &Path) -> Result<AgentCertificate, TlsError> {
        AgentCertificate::from_pem(&self.cert_pem)
            .map_err(|e| TlsError::Certificate(pki_dir(data_dir).join("agent.pem"), e))
    }

    /// Writes the identity: every file in full and synced first, the key readable by
    /// root only; then, under a commit mark, renamed into place. A crash before the mark
    /// keeps the old identity (or none), after it the next load finishes the renames.
    fn save(&self, data_dir: &Path) -> Result<(), TlsError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let dir = pki_dir(data_dir);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        for ((name, mode), body) in FILES
            .iter()
            .zip([&self.ca_pem, &self.cert_pem, &self.key_pem])
        {
            let tmp = dir.join(format!(".{name}.tmp"));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(*mode)
                .open(&tmp)
                .map_err(io(&tmp))?;
            f.write_all(body.as_bytes()).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        let commit = dir.join(COMMIT);
        std::fs::File::create(&commit)
            .and_then(|f| f.sync_all())
            .map_err(io(&commit))?;
        sync_dir(&dir)?;
        finish_save(&dir)
    }
}

fn sync_dir(dir: &Path) -> Result<(), TlsError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Renames a committed save's files into place, or drops an uncommitted one's.
fn finish_save(dir: &Path) -> Result<(), TlsError> {
    let committed = dir.join(COMMIT).exists();
    for (name, _) in FILES {
        let tmp = dir.join(format!(".{name}.tmp"));
        if !tmp.exists() {
            continue;
        }
        if committed {
            let path = dir.join(name);
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
        } else {
            std::fs::remove_file(&tmp).map_err(io(&tmp))?;
        }
    }
    if committed {
        sync_dir(dir)?;
        let commit = dir.join(COMMIT);
        std::fs::remove_file(&commit).map_err(io(&commit))?;
    }
    Ok(())
}

/// The identity to use: the saved one while it is valid, else a fresh join with `token`
/// (into `cluster`).
pub async fn identity(
    data_dir: &Path,
    endpoint: &ControlPlaneEndpoint,
    token: Option<&JoinToken>,
    cluster: &str,
) -> Result<AgentIdentity, TlsError> {
    if let Some(id) = AgentIdentity::load(data_dir)? {
        let cert = id.certificate(data_dir)?;
        if cert.not_after_ms > now_ms() {
            return Ok(id);
        }
        let expired = TlsError::Expired {
            path: pki_dir(data_dir),
            expired_at_ms: cert.not_after_ms,
        };
        if token.is_none() {
            return Err(expired);
        }
        tracing::warn!(error = %expired, "joining again with the configured token; the host registers as a new container instance");
    }
    let token = token.ok_or_else(|| TlsError::NotJoined(pki_dir(data_dir)))?;
    let id = join(endpoint, token, cluster).await?;
    id.save(data_dir)?;
    tracing::info!(token_id = %token.id, "joined the cluster: client certificate saved");
    Ok(id)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The session's channel, and the identity it uses: join first if this host has no
/// certificate yet.
pub async fn session_channel(
    data_dir: &Path,
    endpoint: &ControlPlaneEndpoint,
    token: Option<&JoinToken>,
    cluster: &str,
) -> Result<(Channel, AgentIdentity), TlsError> {
    let id = identity(data_dir, endpoint, token, cluster).await?;
    Ok((connect(endpoint, &id).await?, id))
}

/// Trades the certificate in use for a fresh one of the same instance, and saves it;
/// the next connection uses it.
pub async fn renew(
    client: &mut AgentServiceClient<Channel>,
    data_dir: &Path,
) -> Result<AgentIdentity, TlsError> {
    let resp = client
        .renew(pb::RenewRequest {})
        .await
        .map_err(|s| TlsError::RenewRefused(s.message().to_string()))?
        .into_inner();
    let id = AgentIdentity {
        ca_pem: resp.ca_certificate_pem,
        cert_pem: resp.certificate_pem,
        key_pem: resp.private_key_pem,
    };
    id.certificate(data_dir)?;
    id.save(data_dir)?;
    Ok(id)
}

/// A mutual-TLS channel to the control plane.
pub async fn connect(
    endpoint: &ControlPlaneEndpoint,
    id: &AgentIdentity,
) -> Result<Channel, TlsError> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&id.ca_pem))
        .identity(Identity::from_pem(&id.cert_pem, &id.key_pem))
        .domain_name(endpoint.host.clone());
    channel(endpoint, tls).await
}

async fn channel(
    endpoint: &ControlPlaneEndpoint,
    tls: ClientTlsConfig,
) -> Result<Channel, TlsError> {
    let err = |e: &dyn std::fmt::Display| TlsError::Connect {
        endpoint: endpoint.url.clone(),
        message: e.to_string(),
    };
    Endpoint::from_shared(endpoint.url.clone())
        .map_err(|e| err(&e))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tls_config(tls)
        .map_err(|e| err(&e))?
        .connect()
        .await
        .map_err(|e| err(&std::error::Error::source(&e).map_or(e.to_string(), ToString::to_string)))
}

/// Trades the token for a client certificate.
async fn join(
    endpoint: &ControlPlaneEndpoint,
    token: &JoinToken,
    cluster: &str,
) -> Result<AgentIdentity, TlsError> {
    let ca_pem = fetch_pinned_ca(endpoint, &token.ca_fingerprint).await?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca_pem))
        .domain_name(endpoint.host.clone());
    let mut client = AgentServiceClient::new(channel(endpoint, tls).await?);
    let resp = client
        .join(pb::JoinRequest {
            token: token.to_string(),
            hostname: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            cluster: cluster.to_owned(),
        })
        .await
        .map_err(|s| TlsError::Refused(s.message().to_string()))?
        .into_inner();
    Ok(AgentIdentity {
        ca_pem: resp.ca_certificate_pem,
        cert_pem: resp.certificate_pem,
        key_pem: resp.private_key_pem,
    })
}

fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Reads the server's certificate chain without trusting it yet and returns
/// (PEM) the certificate whose SHA-256 is `pin`.
async fn fetch_pinned_ca(endpoint: &ControlPlaneEndpoint, pin: &str) -> Result<String, TlsError> {
    let err = |e: &dyn std::fmt::Display| TlsError::Connect {
        endpoint: endpoint.url.clone(),
        message: e.to_string(),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainReader(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = ServerName::try_from(endpoint.host.clone()).map_err(|e| err(&e))?;
    let chain = tokio::time::timeout(CONNECT_TIMEOUT, async {
        let tcp = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        Ok::<_, std::io::Error>(
            tls.get_ref()
                .1
                .peer_certificates()
                .map(<[CertificateDer<'_>]>::to_vec)
                .unwrap_or_default(),
        )
    })
    .await
    .map_err(|_| err(&"no TLS handshake within 10 s"))?
    .map_err(|e| err(&e))?;
    let found: Vec<String> = chain.iter().map(|c| fingerprint(c)).collect();
    let Some(ca) = chain
        .iter()
        .zip(&found)
        .find(|(_, f)| *f == pin)
        .map(|(c, _)| c)
    else {
        return Err(TlsError::CaMismatch {
            endpoint: endpoint.url.clone(),
            expected: pin.to_string(),
            found,
        });
    };
    Ok(pem(ca))
}

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Accepts any chain (the pin is checked after the handshake) but still
/// checks the handshake signatures, so the peer holds the key it shows.
#[derive(Debug)]
struct ChainReader(Arc<CryptoProvider>);

impl ServerCertVerifier for ChainReader {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https_with_a_port() {
        let e: ControlPlaneEndpoint = "https://10.0.0.5:8501".parse().unwrap();
        assert_eq!((e.host.as_str(), e.port), ("10.0.0.5", 8501));
        let e: ControlPlaneEndpoint = "https://cp.example:8501/".parse().unwrap();
        assert_eq!(e.url, "https://cp.example:8501");
        for bad in [
            "http://127.0.0.1:8501",
            "127.0.0.1:8501",
            "https://host",
            "https://h:x",
        ] {
            assert!(bad.parse::<ControlPlaneEndpoint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn pem_wraps_der_in_64_column_lines() {
        let p = pem(&[0u8; 100]);
        assert!(p.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(p.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        let der = CertificateDer::from_pem_slice(p.as_bytes()).unwrap();
        assert_eq!(der.as_ref(), &[0u8; 100]);
    }

    fn identity(n: &str) -> AgentIdentity {
        AgentIdentity {
            ca_pem: format!("ca {n}"),
            cert_pem: format!("cert {n}"),
            key_pem: format!("key {n}"),
        }
    }

    fn loaded(dir: &Path) -> Vec<String> {
        let id = AgentIdentity::load(dir).unwrap().unwrap();
        vec![id.ca_pem, id.cert_pem, id.key_pem]
    }

    /// A renewal's save cut short by a crash: the certificate never goes with another's key.
    #[test]
    fn an_interrupted_save_is_finished_or_dropped_whole() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        identity("1").save(dir.path()).unwrap();
        let pki = pki_dir(dir.path());
        let mode = std::fs::metadata(pki.join("agent.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Crash while writing the new files, before the commit mark: the old identity.
        std::fs::write(pki.join(".agent.pem.tmp"), "cert 2").unwrap();
        assert_eq!(loaded(dir.path()), ["ca 1", "cert 1", "key 1"]);
        assert!(!pki.join(".agent.pem.tmp").exists());
        // Crash after the mark, with the CA and certificate renamed but not the key.
        std::fs::write(pki.join("ca.pem"), "ca 2").unwrap();
        std::fs::write(pki.join("agent.pem"), "cert 2").unwrap();
        std::fs::write(pki.join(".agent.key.tmp"), "key 2").unwrap();
        std::fs::write(pki.join(COMMIT), "").unwrap();
        assert_eq!(loaded(dir.path()), ["ca 2", "cert 2", "key 2"]);
        assert!(!pki.join(COMMIT).exists());
    }

    use rustls::pki_types::pem::PemObject as _;
}
