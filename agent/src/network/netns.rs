//! Network namespace files: creating a namespace pinned by a bind mount under the netns dir (as `ip netns add` does), removing and listing them, and running code on a thread inside one.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use super::NETNS_PREFIX;

/// Makes `dir` a mount point with shared propagation, like iproute2 does for
/// `/run/netns`. Shared, so that unmounting a namespace file here also
/// unmounts the copies that other mount namespaces (containers started while
/// it existed) hold; otherwise those copies keep the namespace alive.
pub(crate) fn prepare_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let make_shared = || {
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match make_shared() {
        Ok(()) => Ok(()),
        // Not a mount point yet: bind it onto itself, then try again.
        Err(Errno::EINVAL) => {
            mount(
                Some(dir),
                dir,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
            Ok(make_shared()?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates a new network namespace and pins it at `path`, an empty file
/// bind-mounted over by the namespace.
///
/// Blocking, and it moves the calling thread into the new namespace: call it
/// only on a thread of its own (see [`on_fresh_thread`]).
pub(crate) fn create_on_this_thread(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(path)?;
    let pinned = unshare(CloneFlags::CLONE_NEWNET).and_then(|()| {
        mount(
            Some("/proc/thread-self/ns/net"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    });
    if let Err(e) = pinned {
        let _ = fs::remove_file(path);
        return Err(e.into());
    }
    Ok(())
}

/// Unmounts and deletes a namespace file; a missing mount or file is fine.
/// The namespace itself goes away once no process is left in it.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    // A file may carry more than one mount if something raced; peel them all.
    for _ in 0..8 {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::ENOENT) => break,
            Err(e) => return Err(e.into()),
        }
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Endpoint ids of the `berth-<endpoint>` files in `dir`; a missing dir has none.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        if let Some(id) = name.to_str().and_then(|n| n.strip_prefix(NETNS_PREFIX)) {
            if super::validate_endpoint(id).is_ok() {
                ids.push(id.to_owned());
            }
        }
    }
    ids.sort();
    Ok(ids)
}

/// Moves the calling thread into the network namespace `netns`.
pub(crate) fn enter(netns: &File) -> io::Result<()> {
    Ok(setns(netns, CloneFlags::CLONE_NEWNET)?)
}

/// Runs `f` on a new OS thread that ends with it, so a thread whose
/// namespace `f` changed is never handed back to tokio or anyone else.
/// `None` means `f` panicked.
pub(crate) async fn on_fresh_thread<T, F>(name: &str, f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = tx.send(f());
        });
    if spawned.is_err() {
        return None;
    }
    rx.await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_picks_only_task_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        for name in [
            format!("berth-{id}"),
            format!("berth-{id}-3"),
            "berth-".to_owned(),
            "berth-NOT_AN_ID".to_owned(),
            "other-ns".to_owned(),
        ] {
            File::create(dir.path().join(name)).unwrap();
        }
        assert_eq!(
            list(dir.path()).unwrap(),
            vec![id.to_owned(), format!("{id}-3")]
        );
        assert!(list(&dir.path().join("missing")).unwrap().is_empty());
    }

    #[tokio::test]
    async fn fresh_thread_reports_panics_as_none() {
        assert_eq!(on_fresh_thread("t", || 7).await, Some(7));
        let panicked: Option<()> = on_fresh_thread("t", || panic!("boom")).await;
        assert_eq!(panicked, None);
    }
}
