//! HTTPS listeners' TLS: ELB's security policy names mapped onto what rustls speaks, and
//! the certificates a listener names, chosen by SNI (the first is the default).

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::config::LbError;

/// The policy an HTTPS listener gets when it names none (ELB's default).
pub const DEFAULT_POLICY: &str = "ELBSecurityPolicy-2016-08";

/// The TLS versions a policy allows, as rustls offers them. rustls speaks TLS 1.2 and
/// 1.3 only, with forward-secret AEAD suites only: a policy that also allows TLS 1.0/1.1
/// or older suites is served with what rustls has of it.
pub fn versions(
    policy: &str,
) -> Result<&'static [&'static rustls::SupportedProtocolVersion], LbError> {
    const BOTH: &[&rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];
    const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    match policy {
        "ELBSecurityPolicy-TLS13-1-3-2021-06"
        | "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04"
        | "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09" => Ok(TLS13),
        p if p.starts_with("ELBSecurityPolicy-TLS13-1-")
            || p.starts_with("ELBSecurityPolicy-TLS-1-")
            || p.starts_with("ELBSecurityPolicy-FS-")
            || matches!(
                p,
                "ELBSecurityPolicy-2016-08"
                    | "ELBSecurityPolicy-2015-05"
                    | "ELBSecurityPolicy-FIPS-2023-04"
            ) =>
        {
            Ok(BOTH)
        }
        other => Err(LbError::new(
            "SSLPolicyNotFound",
            format!("SSL policy '{other}' not found"),
        )),
    }
}

/// One certificate a listener serves and the names it answers for.
#[derive(Debug)]
struct Served {
    names: Vec<String>,
    key: Arc<CertifiedKey>,
}

/// Picks the certificate whose names match the client's SNI, else the first.
#[derive(Debug)]
struct BySni(Vec<Served>);

fn name_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(suffix)),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello.server_name().and_then(|sni| {
            self.0
                .iter()
                .find(|s| s.names.iter().any(|n| name_matches(n, sni)))
        });
        chosen.or_else(|| self.0.first()).map(|s| s.key.clone())
    }
}

/// A listener's TLS configuration: its certificates (PEM chain and key, and names) under
/// its policy, offering HTTP/2 and HTTP/1.1 by ALPN.
pub fn server_config(
    certificates: &[crate::acm::Certificate],
    policy: &str,
) -> Result<Arc<rustls::ServerConfig>, LbError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut served = Vec::new();
    for c in certificates {
        let (chain, key) = crate::acm::parse_pair(
            &c.certificate_pem,
            c.chain_pem.as_deref(),
            &c.private_key_pem,
        )
        .map_err(|e| LbError::new("CertificateNotFound", format!("{}: {e}", c.arn)))?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| LbError::new("CertificateNotFound", format!("{}: {e}", c.arn)))?;
        served.push(Served {
            names: c.facts.subject_alternative_names.clone(),
            key: Arc::new(CertifiedKey::new(chain, signing)),
        });
    }
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions(policy)?)
        .map_err(|e| LbError::new("SSLPolicyNotFound", e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni(served)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_map_to_tls_versions() {
        assert_eq!(
            versions("ELBSecurityPolicy-TLS13-1-2-2021-06")
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            versions("ELBSecurityPolicy-TLS13-1-3-2021-06")
                .unwrap()
                .len(),
            1
        );
        assert_eq!(versions(DEFAULT_POLICY).unwrap().len(), 2);
        assert_eq!(versions("MyPolicy").unwrap_err().code, "SSLPolicyNotFound");
    }

    #[test]
    fn sni_names_match_exactly_or_by_one_wildcard_label() {
        assert!(name_matches("api.example.com", "API.example.com"));
        assert!(name_matches("*.example.com", "api.example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
    }
}
