//! Resolving a container's `user` (`name`, `uid`, `name:group`, `uid:gid`, ...) to numeric
//! ids with the image's `/etc/passwd` and `/etc/group`, read straight from the snapshot's
//! layer directories (no mount needed), the way Docker resolves it.

use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::ProcessUser;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    /// Docker's wording, which ECS users will search for.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
    #[error("cannot read {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn parse_passwd(content: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    content.lines().filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(PasswdEntry { name, uid, gid })
    })
}

fn parse_group(content: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    content.lines().filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let gid = fields.next()?.parse().ok()?;
        let members = fields
            .next()
            .unwrap_or("")
            .split(',')
            .filter(|m| !m.is_empty())
            .collect();
        Some(GroupEntry { name, gid, members })
    })
}

/// Resolves `user` against the given file contents (`None` = file absent). Numeric ids need
/// no entry; names must exist. Without an explicit group, the primary gid comes from passwd
/// (0 if the uid has no entry) and the supplementary gids from the groups listing the user.
pub fn resolve_user_with(
    user: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ProcessUser, UserError> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let passwd = passwd.unwrap_or("");
    let group = group.unwrap_or("");

    let (uid, entry) = if let Ok(uid) = user_part.parse::<u32>() {
        (uid, parse_passwd(passwd).find(|e| e.uid == uid))
    } else {
        let entry = parse_passwd(passwd)
            .find(|e| e.name == user_part)
            .ok_or_else(|| UserError::UnknownUser(user_part.to_owned()))?;
        (entry.uid, Some(entry))
    };

    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        let gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => parse_group(group)
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| UserError::UnknownGroup(g.to_owned()))?,
        };
        return Ok(ProcessUser {
            uid,
            gid,
            additional_gids: Vec::new(),
        });
    }
    let Some(entry) = entry else {
        return Ok(ProcessUser {
            uid,
            gid: 0,
            additional_gids: Vec::new(),
        });
    };
    let mut additional_gids: Vec<u32> = parse_group(group)
        .filter(|g| g.members.contains(&entry.name) && g.gid != entry.gid)
        .map(|g| g.gid)
        .collect();
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(ProcessUser {
        uid,
        gid: entry.gid,
        additional_gids,
    })
}

/// Resolves `user` with the files found in `layers` (top layer first, as overlayfs stacks
/// them). Fully numeric `uid:gid` reads nothing.
pub fn resolve_user(user: &str, layers: &[PathBuf]) -> Result<ProcessUser, UserError> {
    if let Some((u, g)) = user.split_once(':') {
        if let (Ok(uid), Ok(gid)) = (u.parse::<u32>(), g.parse::<u32>()) {
            return Ok(ProcessUser {
                uid,
                gid,
                additional_gids: Vec::new(),
            });
        }
    }
    let passwd = read_layered(layers, "passwd")?;
    let group = read_layered(layers, "group")?;
    resolve_user_with(user, passwd.as_deref(), group.as_deref())
}

/// `/etc/<name>` from the topmost layer that has it. Nothing is followed through symlinks:
/// they would resolve against the host, not the container. A whiteout hides lower layers.
fn read_layered(layers: &[PathBuf], name: &str) -> Result<Option<String>, UserError> {
    for layer in layers {
        match entry_kind(&layer.join("etc"))? {
            Kind::Missing => continue,
            Kind::Directory => {}
            Kind::Hidden | Kind::File => return Ok(None),
        }
        let path = layer.join("etc").join(name);
        match entry_kind(&path)? {
            Kind::Missing => {}
            Kind::Hidden | Kind::Directory => return Ok(None),
            Kind::File => {
                return fs::read_to_string(&path)
                    .map(Some)
                    .map_err(|e| read_error(&path, &e));
            }
        }
    }
    Ok(None)
}

enum Kind {
    Missing,
    Directory,
    File,
    /// A whiteout (0/0 character device), a symlink or anything else we will not read.
    Hidden,
}

fn entry_kind(path: &Path) -> Result<Kind, UserError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(Kind::Directory),
        Ok(m) if m.is_file() => Ok(Kind::File),
        Ok(m) if m.file_type().is_char_device() || m.file_type().is_symlink() => Ok(Kind::Hidden),
        Ok(_) => Ok(Kind::Hidden),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Kind::Missing),
        Err(e) => Err(read_error(path, &e)),
    }
}

fn read_error(path: &Path, error: &io::Error) -> UserError {
    UserError::Read {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          app:x:1000:1001::/home/app:/bin/sh\n\
                          # comment\n\
                          broken line\n";
    const GROUP: &str = "root:x:0:\napp:x:1001:\nadm:x:4:app,other\nvideo:x:44:app\n";

    fn user(uid: u32, gid: u32, additional_gids: &[u32]) -> ProcessUser {
        ProcessUser {
            uid,
            gid,
            additional_gids: additional_gids.to_vec(),
        }
    }

    fn resolve(spec: &str) -> Result<ProcessUser, UserError> {
        resolve_user_with(spec, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn empty_is_root() {
        assert_eq!(resolve(""), Ok(user(0, 0, &[])));
        assert_eq!(resolve_user_with("", None, None), Ok(user(0, 0, &[])));
    }

    #[test]
    fn name_gets_primary_and_supplementary_groups() {
        assert_eq!(resolve("app"), Ok(user(1000, 1001, &[4, 44])));
    }

    #[test]
    fn numeric_uid_uses_passwd_when_present() {
        assert_eq!(resolve("1000"), Ok(user(1000, 1001, &[4, 44])));
        assert_eq!(resolve("4242"), Ok(user(4242, 0, &[])));
    }

    #[test]
    fn explicit_group_replaces_lookup() {
        assert_eq!(resolve("app:adm"), Ok(user(1000, 4, &[])));
        assert_eq!(resolve("app:77"), Ok(user(1000, 77, &[])));
        assert_eq!(resolve("4242:4243"), Ok(user(4242, 4243, &[])));
        assert_eq!(resolve("1000:video"), Ok(user(1000, 44, &[])));
    }

    #[test]
    fn unknown_names_fail_like_docker() {
        assert_eq!(
            resolve("nobody"),
            Err(UserError::UnknownUser("nobody".into()))
        );
        assert_eq!(
            resolve("app:wheel"),
            Err(UserError::UnknownGroup("wheel".into()))
        );
        assert_eq!(
            UserError::UnknownUser("nobody".into()).to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
    }

    #[test]
    fn reads_topmost_layer_and_honours_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path().join("upper");
        let lower = dir.path().join("lower");
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/passwd"), "app:x:7:8::/:/bin/sh\n").unwrap();
        fs::write(lower.join("etc/group"), "extra:x:9:app\n").unwrap();
        let layers = [upper.clone(), lower.clone()];
        assert_eq!(resolve_user("app", &layers), Ok(user(7, 8, &[9])));

        fs::write(upper.join("etc/passwd"), "app:x:70:80::/:/bin/sh\n").unwrap();
        assert_eq!(resolve_user("app", &layers), Ok(user(70, 80, &[9])));

        // A symlink in the upper layer must not be followed to the host.
        fs::remove_file(upper.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", upper.join("etc/passwd")).unwrap();
        assert_eq!(
            resolve_user("root", &layers),
            Err(UserError::UnknownUser("root".into()))
        );
    }

    #[test]
    fn numeric_pair_needs_no_files() {
        let missing = [PathBuf::from("/nonexistent/layer")];
        assert_eq!(resolve_user("5:6", &missing), Ok(user(5, 6, &[])));
        assert_eq!(resolve_user("", &missing), Ok(user(0, 0, &[])));
    }
}
