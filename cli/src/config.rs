//! Where the CLI finds Berth: the control plane's `aws.env` (endpoint, key, region) and the
//! local agent's data directory (task logs).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use berth_aws::sigv4::Credentials;

/// What `aws.env` holds, as the control plane writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsEnv {
    /// `https://host:port` (or `http://` for a plain-HTTP control plane), no trailing slash.
    pub endpoint: String,
    pub credentials: Credentials,
    pub region: String,
    /// `AWS_CA_BUNDLE`: the certificates that verify the API's (a Berth control plane's
    /// own CA by default); the file's, else the environment's.
    pub ca_bundle: Option<std::path::PathBuf>,
}

impl AwsEnv {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read {} (is Berth up? `berth up` writes it; \
                 --data-dir / BERTH_DATA_DIR or --aws-env / BERTH_AWS_ENV point elsewhere)",
                path.display()
            )
        })?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// `KEY=value` lines; `#` comments, blank lines, `export ` and quotes tolerated, so a
    /// hand-edited file that a shell can source also works here.
    pub fn parse(text: &str) -> Result<Self> {
        let get = |key: &str| -> Option<String> {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.strip_prefix("export ").unwrap_or(l))
                .filter_map(|l| l.split_once('='))
                .filter(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
                .next_back()
        };
        let need = |v: Option<String>, key: &str| -> Result<String> {
            match v {
                Some(v) if !v.is_empty() => Ok(v),
                _ => bail!("{key} is missing"),
            }
        };
        let endpoint = need(get("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL")?;
        let access_key_id = need(get("AWS_ACCESS_KEY_ID"), "AWS_ACCESS_KEY_ID")?;
        let secret_access_key = need(get("AWS_SECRET_ACCESS_KEY"), "AWS_SECRET_ACCESS_KEY")?;
        let region = get("AWS_REGION")
            .filter(|r| !r.is_empty())
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".to_owned());
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            credentials: Credentials {
                access_key_id,
                secret_access_key,
            },
            region,
            // The file the user pointed at wins over an ambient AWS_CA_BUNDLE (a
            // system-wide bundle would not know this control plane's CA).
            ca_bundle: get("AWS_CA_BUNDLE")
                .filter(|v| !v.is_empty())
                .map(Into::into)
                .or_else(|| {
                    std::env::var_os("AWS_CA_BUNDLE")
                        .filter(|v| !v.is_empty())
                        .map(Into::into)
                }),
        })
    }
}

/// Paths derived from `--data-dir` unless given explicitly.
#[derive(Debug, Clone)]
pub struct Paths {
    pub data_dir: PathBuf,
    pub aws_env: PathBuf,
    pub agent_dir: PathBuf,
}

impl Paths {
    pub fn new(data_dir: PathBuf, aws_env: Option<PathBuf>, agent_dir: Option<PathBuf>) -> Self {
        Self {
            aws_env: aws_env.unwrap_or_else(|| data_dir.join("aws.env")),
            agent_dir: agent_dir.unwrap_or_else(|| data_dir.join("agent")),
            data_dir,
        }
    }

    /// Where the agent on this host keeps a task's files, its containers' `<name>.log` among them.
    pub fn task_dir(&self, task_id: &str) -> PathBuf {
        self.agent_dir.join("tasks").join(task_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_control_plane_writes() {
        let env = AwsEnv::parse(
            "AWS_ENDPOINT_URL=http://127.0.0.1:8500\nAWS_ACCESS_KEY_ID=AKIA1\n\
             AWS_SECRET_ACCESS_KEY=abc/def+g=\nAWS_DEFAULT_REGION=eu-west-1\nAWS_REGION=eu-west-1\n",
        )
        .unwrap();
        assert_eq!(env.endpoint, "http://127.0.0.1:8500");
        assert_eq!(env.credentials.access_key_id, "AKIA1");
        assert_eq!(env.credentials.secret_access_key, "abc/def+g=");
        assert_eq!(env.region, "eu-west-1");
    }

    #[test]
    fn tolerates_shell_syntax_and_reports_what_is_missing() {
        let env = AwsEnv::parse(
            "# hand edited\nexport AWS_ENDPOINT_URL=\"http://10.0.0.1:8500/\"\n\
             AWS_ACCESS_KEY_ID='K'\nAWS_SECRET_ACCESS_KEY=S\n",
        )
        .unwrap();
        assert_eq!(env.endpoint, "http://10.0.0.1:8500");
        assert_eq!(env.region, "us-east-1");
        let err = AwsEnv::parse("AWS_ENDPOINT_URL=http://x\nAWS_ACCESS_KEY_ID=K\n").unwrap_err();
        assert_eq!(err.to_string(), "AWS_SECRET_ACCESS_KEY is missing");
    }

    #[test]
    fn paths_default_under_the_data_dir() {
        let p = Paths::new("/var/lib/berth".into(), None, None);
        assert_eq!(p.aws_env, Path::new("/var/lib/berth/aws.env"));
        assert_eq!(
            p.task_dir("abc"),
            Path::new("/var/lib/berth/agent/tasks/abc")
        );
        let p = Paths::new("/d".into(), Some("/x/aws.env".into()), Some("/y".into()));
        assert_eq!(p.aws_env, Path::new("/x/aws.env"));
        assert_eq!(p.task_dir("t"), Path::new("/y/tasks/t"));
    }
}
