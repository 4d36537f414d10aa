//! Settings files (`/etc/berth/<daemon>.toml`): one key per command-line
//! flag, in `snake_case` (`task_cidr` for `--task-cidr`), plus `log` for the
//! log filter (`RUST_LOG`). A key is applied as its flag's environment
//! variable when that variable is not already set, so a flag beats the
//! environment, which beats the file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot read the settings file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: unknown setting '{key}'; the settings are: {known}")]
    Unknown {
        path: PathBuf,
        key: String,
        known: String,
    },
    #[error("{path}: setting '{key}' must be a string, number, boolean or list of those")]
    Type { path: PathBuf, key: String },
}

/// The file to read: `--config PATH` (or `--config=PATH`) on the command
/// line, else `$env_var`, else `default`. The flag bool says whether the
/// file was asked for (then it must exist).
pub fn config_path(args: &[OsString], env_var: &str, default: &Path) -> (PathBuf, bool) {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if a == "--config" {
            if let Some(p) = it.next() {
                return (PathBuf::from(p), true);
            }
        } else if let Some(p) = a.strip_prefix("--config=") {
            return (PathBuf::from(p), true);
        }
    }
    match std::env::var_os(env_var) {
        Some(p) if !p.is_empty() => (PathBuf::from(p), true),
        _ => (default.to_owned(), false),
    }
}

/// The (environment variable, value) pairs a settings file's `text` asks
/// for, checked against the daemon's flags.
pub fn settings(
    cmd: &clap::Command,
    path: &Path,
    text: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let settable = |a: &&clap::Arg| a.get_long().is_some() && a.get_env().is_some();
    let mut out = Vec::new();
    for (key, value) in &table {
        let env = if key == "log" {
            Some("RUST_LOG".to_owned())
        } else {
            let flag = key.replace('_', "-");
            cmd.get_arguments()
                .filter(settable)
                .filter(|a| a.get_long() != Some("config"))
                .find(|a| a.get_long() == Some(flag.as_str()))
                .and_then(|a| a.get_env())
                .map(|e| e.to_string_lossy().into_owned())
        };
        let Some(env) = env else {
            let mut known: Vec<String> = cmd
                .get_arguments()
                .filter(settable)
                .filter_map(|a| a.get_long())
                .filter(|l| *l != "config")
                .map(|l| l.replace('-', "_"))
                .collect();
            known.push("log".into());
            return Err(ConfigError::Unknown {
                path: path.to_owned(),
                key: key.clone(),
                known: known.join(", "),
            });
        };
        let value = env_value(value).ok_or_else(|| ConfigError::Type {
            path: path.to_owned(),
            key: key.clone(),
        })?;
        out.push((env, value));
    }
    Ok(out)
}

/// A TOML value as the environment variable's text (lists comma-separated,
/// as the flags' variables take them).
fn env_value(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                toml::Value::Array(_) | toml::Value::Table(_) => None,
                scalar => env_value(scalar),
            })
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.join(",")),
        toml::Value::Table(_) | toml::Value::Datetime(_) => None,
    }
}

/// Reads the settings file (see [`config_path`]) and sets each of its
/// settings whose environment variable is unset. Call it first thing in
/// `main`, before any thread starts. Returns the file read, if any.
pub fn load(
    cmd: &clap::Command,
    env_var: &str,
    default: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let (path, asked) = config_path(&args, env_var, default);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !asked => return Ok(None),
        Err(e) => {
            return Err(ConfigError::Read {
                path,
                message: e.to_string(),
            })
        }
    };
    for (env, value) in settings(cmd, &path, &text)? {
        if std::env::var_os(&env).is_none() {
            // Safe: called before the daemon starts any thread.
            std::env::set_var(env, value);
        }
    }
    Ok(Some(path))
}

/// Checks a settings file shipped with a daemon against its flags: with
/// every commented default (`#key = value    # or VARIABLE`) switched on, it
/// sets each of the daemon's settings exactly once, plus `log`, and the
/// values parse as the flags would. For the daemons' unit tests.
pub fn check_shipped_defaults(cmd: &clap::Command, path: &Path, text: &str) -> Result<(), String> {
    let on = text
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| l.split(' ').nth(1) == Some("="))
        .map(|l| l.split("    # or").next().unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let settings = settings(cmd, path, &on).map_err(|e| e.to_string())?;
    let settable = cmd
        .get_arguments()
        .filter(|a| a.get_env().is_some() && a.get_long() != Some("config"))
        .count();
    if settings.len() != settable + 1 {
        return Err(format!(
            "{} sets {} settings, the daemon has {settable} and log: {settings:?}",
            path.display(),
            settings.len()
        ));
    }
    let mut argv = vec![cmd.get_name().to_owned()];
    for (env, value) in settings.iter().filter(|(env, _)| env != "RUST_LOG") {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == env.as_str()))
            .ok_or_else(|| format!("no flag reads {env}"))?;
        let long = arg.get_long().unwrap_or_default();
        match arg.get_action() {
            clap::ArgAction::SetTrue if value == "true" => argv.push(format!("--{long}")),
            clap::ArgAction::SetTrue => {}
            _ if value.is_empty() => {}
            _ => argv.push(format!("--{long}={value}")),
        }
    }
    cmd.clone()
        .try_get_matches_from(argv)
        .map(|_| ())
        .map_err(|e| format!("{}: the defaults do not parse: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> clap::Command {
        clap::Command::new("d")
            .arg(clap::Arg::new("config").long("config").env("D_CONFIG"))
            .arg(
                clap::Arg::new("task_cidr")
                    .long("task-cidr")
                    .env("D_TASK_CIDR"),
            )
            .arg(
                clap::Arg::new("ports")
                    .long("reserved-port")
                    .env("D_PORTS")
                    .value_delimiter(','),
            )
            .arg(
                clap::Arg::new("fargate")
                    .long("serves-fargate")
                    .env("D_FARGATE")
                    .action(clap::ArgAction::SetTrue),
            )
            .arg(clap::Arg::new("quiet").long("quiet"))
    }

    fn p() -> PathBuf {
        PathBuf::from("/etc/berth/d.toml")
    }

    #[test]
    fn keys_become_the_flags_environment_variables() {
        let text = r#"
            task_cidr = "10.1.0.0/24"
            reserved_port = [22, 8080]
            serves_fargate = true
            log = "debug"
        "#;
        let mut got = settings(&cmd(), &p(), text).unwrap();
        got.sort();
        assert_eq!(
            got,
            [
                ("D_FARGATE".into(), "true".into()),
                ("D_PORTS".into(), "22,8080".into()),
                ("D_TASK_CIDR".into(), "10.1.0.0/24".into()),
                ("RUST_LOG".into(), "debug".into()),
            ]
        );
    }

    #[test]
    fn unknown_keys_bad_types_and_bad_toml_are_refused_with_the_reason() {
        let e = settings(&cmd(), &p(), "task_cdir = \"x\"").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("unknown setting 'task_cdir'") && text.contains("task_cidr"),
            "{text}"
        );
        // Flags without an environment variable, and the file's own path, are not settings.
        for key in ["quiet", "config"] {
            let e = settings(&cmd(), &p(), &format!("{key} = \"x\"")).unwrap_err();
            assert!(matches!(e, ConfigError::Unknown { .. }), "{key}: {e}");
        }
        let e = settings(&cmd(), &p(), "[task_cidr]\na = 1").unwrap_err();
        assert!(matches!(e, ConfigError::Type { .. }), "{e}");
        let e = settings(&cmd(), &p(), "task_cidr = ").unwrap_err();
        assert!(e.to_string().contains("is not valid TOML"), "{e}");
    }

    #[test]
    fn a_shipped_file_must_document_every_setting_with_a_parsing_default() {
        let full = "# doc\n#task_cidr = \"10.1.0.0/24\"    # or D_TASK_CIDR\n\
                    #reserved_port = [22]    # or D_PORTS\n#serves_fargate = false    # or D_FARGATE\n\
                    #log = \"info\"\n";
        assert_eq!(check_shipped_defaults(&cmd(), &p(), full), Ok(()));
        let missing = full.replace("#reserved_port = [22]    # or D_PORTS\n", "");
        let e = check_shipped_defaults(&cmd(), &p(), &missing).unwrap_err();
        assert!(e.contains("sets 3 settings"), "{e}");
        let unknown = format!("{full}#reserved_prot = [1]    # or D_X\n");
        assert!(check_shipped_defaults(&cmd(), &p(), &unknown).is_err());
    }

    #[test]
    fn the_path_comes_from_the_flag_then_the_environment_then_the_default() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        let default = Path::new("/etc/berth/d.toml");
        assert_eq!(
            config_path(&args(&["d", "--config", "/x.toml"]), "D_UNSET_VAR", default),
            (PathBuf::from("/x.toml"), true)
        );
        assert_eq!(
            config_path(&args(&["d", "--config=/y.toml"]), "D_UNSET_VAR", default),
            (PathBuf::from("/y.toml"), true)
        );
        assert_eq!(
            config_path(&args(&["d"]), "D_UNSET_VAR", default),
            (default.to_owned(), false)
        );
    }
}
