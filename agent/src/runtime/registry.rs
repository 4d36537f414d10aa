//! Which registry an image is fetched from and with what credentials: pull mirrors (an
//! upstream host served by another host under the same repository path) and per-host
//! credentials, as the agent's config gives them.
//!
//! Credentials are a user name and password. oci-client uses them as HTTP basic auth when the
//! registry's `WWW-Authenticate` challenge is `Basic`, and trades them for a token at the
//! challenge's realm when it is `Bearer`, so one setting covers both schemes.

use std::collections::HashMap;
use std::fmt;

use oci_client::secrets::RegistryAuth;
use oci_client::Reference;

/// A registry login. `Debug` keeps the password out of logs.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistryCredentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parses a `--registry-auth` value: `host=user:password` (the password may contain `:`).
///
/// # Errors
/// A message naming the expected shape when a part is missing.
pub fn parse_registry_auth(value: &str) -> Result<(String, RegistryCredentials), String> {
    let shape = "expected HOST=USER:PASSWORD";
    let (host, login) = value.split_once('=').ok_or(shape)?;
    let (username, password) = login.split_once(':').ok_or(shape)?;
    if host.is_empty() || username.is_empty() {
        return Err(shape.to_owned());
    }
    Ok((
        host.to_owned(),
        RegistryCredentials {
            username: username.to_owned(),
            password: password.to_owned(),
        },
    ))
}

/// Parses a `--registry-mirror` value: `upstream-host=mirror-host[:port]`.
///
/// # Errors
/// A message naming the expected shape when a part is missing.
pub fn parse_registry_mirror(value: &str) -> Result<(String, String), String> {
    let shape = "expected UPSTREAM=MIRROR (hosts, optionally with :port)";
    let (upstream, mirror) = value.split_once('=').ok_or(shape)?;
    if upstream.is_empty() || mirror.is_empty() || mirror.contains('/') {
        return Err(shape.to_owned());
    }
    Ok((upstream.to_owned(), mirror.to_owned()))
}

/// Where and how one pull talks to a registry.
#[derive(Debug, Clone)]
pub(super) struct Source {
    /// The reference as given, with the mirror (if any) set as the host to contact.
    pub reference: Reference,
    pub auth: RegistryAuth,
    /// The credentials are a task's own login, not the agent's settings.
    pub task_login: bool,
}

/// The reference to fetch for `reference` and the credentials for the host contacted. The
/// mirror is looked up by the reference's own registry; credentials by the host actually
/// contacted (the mirror's when there is one), since that is who asks for them. A task's
/// own `login` (`repositoryCredentials`) is for the image's registry: it wins over the
/// agent's settings there, and never goes to a mirror.
pub(super) fn resolve(
    reference: &str,
    mirrors: &HashMap<String, String>,
    auth: &HashMap<String, RegistryCredentials>,
    login: Option<&RegistryCredentials>,
) -> Result<Source, String> {
    let mut parsed: Reference = reference
        .parse()
        .map_err(|e| format!("invalid image reference: {e}"))?;
    let mirror = mirrors.get(parsed.registry());
    if let Some(mirror) = mirror {
        parsed.set_mirror_registry(mirror.clone());
    }
    // Without a mirror, accept the name as written too (`docker.io` resolves to
    // `index.docker.io`); with one, never send the upstream's credentials to the mirror.
    let task_login = mirror.is_none() && login.is_some();
    let credentials = match mirror {
        Some(_) => auth.get(parsed.resolve_registry()),
        None => login
            .or_else(|| auth.get(parsed.resolve_registry()))
            .or_else(|| auth.get(parsed.registry())),
    };
    let auth = match credentials {
        Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
        None => RegistryAuth::Anonymous,
    };
    Ok(Source {
        reference: parsed,
        auth,
        task_login,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECR: &str = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com";

    fn creds(user: &str, password: &str) -> RegistryCredentials {
        RegistryCredentials {
            username: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn parses_auth_with_colon_in_password() {
        let (host, c) = parse_registry_auth("127.0.0.1:5000=alice:s3:cret").unwrap();
        assert_eq!(host, "127.0.0.1:5000");
        assert_eq!(c, creds("alice", "s3:cret"));
        assert!(parse_registry_auth("host").is_err());
        assert!(parse_registry_auth("host=alice").is_err());
        assert!(parse_registry_auth("=alice:pw").is_err());
        assert!(!format!("{c:?}").contains("s3:cret"), "password redacted");
    }

    #[test]
    fn parses_mirror() {
        assert_eq!(
            parse_registry_mirror(&format!("{ECR}=127.0.0.1:5001")).unwrap(),
            (ECR.to_owned(), "127.0.0.1:5001".to_owned())
        );
        assert!(parse_registry_mirror("docker.io").is_err());
        assert!(parse_registry_mirror("docker.io=http://m:5000").is_err());
    }

    #[test]
    fn mirror_keeps_the_repository_path_and_takes_the_mirrors_credentials() {
        let mirrors = HashMap::from([(ECR.to_owned(), "127.0.0.1:5001".to_owned())]);
        let auth = HashMap::from([
            ("127.0.0.1:5001".to_owned(), creds("m", "pw")),
            (ECR.to_owned(), creds("ecr", "token")),
        ]);
        let source = resolve(&format!("{ECR}/my-app:v1"), &mirrors, &auth, None).unwrap();
        assert_eq!(source.reference.resolve_registry(), "127.0.0.1:5001");
        assert_eq!(source.reference.registry(), ECR);
        assert_eq!(source.reference.repository(), "my-app");
        assert_eq!(source.reference.tag(), Some("v1"));
        assert!(matches!(source.auth, RegistryAuth::Basic(ref u, _) if u == "m"));
    }

    #[test]
    fn unmirrored_hosts_use_their_own_credentials_or_none() {
        let auth = HashMap::from([("127.0.0.1:5000".to_owned(), creds("alice", "pw"))]);
        let source = resolve(
            "127.0.0.1:5000/berth/demo:latest",
            &HashMap::new(),
            &auth,
            None,
        )
        .unwrap();
        assert_eq!(source.reference.resolve_registry(), "127.0.0.1:5000");
        assert_eq!(
            source.auth,
            RegistryAuth::Basic("alice".into(), "pw".into())
        );
        let other = resolve("127.0.0.1:5002/x:1", &HashMap::new(), &auth, None).unwrap();
        assert_eq!(other.auth, RegistryAuth::Anonymous);
    }

    #[test]
    fn a_tasks_login_wins_at_the_images_registry_and_never_goes_to_a_mirror() {
        let task = creds("task", "tpw");
        let auth = HashMap::from([
            ("127.0.0.1:5000".to_owned(), creds("agent", "apw")),
            ("127.0.0.1:5001".to_owned(), creds("m", "mpw")),
        ]);
        let own = resolve("127.0.0.1:5000/app:1", &HashMap::new(), &auth, Some(&task)).unwrap();
        assert_eq!(own.auth, RegistryAuth::Basic("task".into(), "tpw".into()));
        assert!(own.task_login);
        let mirrors = HashMap::from([(ECR.to_owned(), "127.0.0.1:5001".to_owned())]);
        let mirrored = resolve(&format!("{ECR}/app:1"), &mirrors, &auth, Some(&task)).unwrap();
        assert_eq!(mirrored.auth, RegistryAuth::Basic("m".into(), "mpw".into()));
        assert!(!mirrored.task_login);
    }

    #[test]
    fn bad_reference_is_an_error() {
        let err =
            resolve("UPPER/case:bad tag", &HashMap::new(), &HashMap::new(), None).unwrap_err();
        assert!(err.starts_with("invalid image reference"), "{err}");
    }
}
