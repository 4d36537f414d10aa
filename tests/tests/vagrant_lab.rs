//! The Vagrant lab's files, checked without booting a VM.
//!
//! `vagrant validate` (Debian's Vagrant and vagrant-libvirt, from
//! scripts/install-deps.sh) loads the Vagrantfile for 1 and 3 agents and
//! checks it against the real providers: option names in the `libvirt` and
//! `virtualbox` provider blocks, the trigger and provisioner settings, and
//! that every script they run exists. Vagrant validates only the provider a
//! machine would use, and only one it finds usable: `libvirt` needs no
//! libvirtd, but `virtualbox` needs `VBoxManage`, so that run puts a stand-in
//! that answers the version probe (tests/scripts/fake-virtualbox) first on
//! `PATH`.
//! `vagrant/check-vagrantfile.rb` then checks the lab's design, which validate
//! cannot know (the machines, their addresses, the join tokens, the demo), and
//! every lab shell script must parse.
//!
//! Not checked here: that the values suit a real hypervisor, the box build,
//! and the VMs coming up; see vagrant/README.md.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repo root")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{cmd:?}: {e} (vagrant, vagrant-libvirt, ruby and bash come from scripts/install-deps.sh)")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

/// `vagrant validate` in vagrant/ for `agents` agents with `provider` as the
/// machines' provider, with the lab's defaults (no `BERTH_*` settings from the
/// caller's shell) and a Vagrant home and machine-state dir of its own, so it
/// neither reads nor disturbs a lab the caller runs.
fn vagrant_validate(agents: u32, provider: &str, path_first: Option<&Path>) {
    let scratch = tempfile::Builder::new()
        .prefix("berth-vagrant-validate-")
        .tempdir()
        .expect("tempdir");
    let mut cmd = Command::new("vagrant");
    cmd.arg("validate")
        .current_dir(repo().join("vagrant"))
        .env("BERTH_AGENTS", agents.to_string())
        .env("VAGRANT_DEFAULT_PROVIDER", provider)
        .env("VAGRANT_HOME", scratch.path().join("home"))
        .env("VAGRANT_DOTFILE_PATH", scratch.path().join("dot"))
        .env_remove("VAGRANT_CWD")
        .env_remove("VAGRANT_VAGRANTFILE");
    for setting in [
        "BERTH_BOX",
        "BERTH_LAB_NET",
        "BERTH_VM_CPUS",
        "BERTH_VM_MEMORY",
        "BERTH_LIBVIRT_DRIVER",
    ] {
        cmd.env_remove(setting);
    }
    if let Some(dir) = path_first {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).expect("PATH"));
    }
    let out = run(&mut cmd);
    assert!(
        out.contains("Vagrantfile validated successfully"),
        "{agents} agents, {provider}: {out}"
    );
    // `--ignore-provider` would skip the provider blocks; make sure nothing did.
    assert!(
        !out.contains("Ignoring provider config"),
        "{agents} agents, {provider}: {out}"
    );
}

#[test]
fn vagrant_validates_the_lab_for_libvirt() {
    for agents in [1, 3] {
        vagrant_validate(agents, "libvirt", None);
    }
}

#[test]
fn vagrant_validates_the_lab_for_virtualbox() {
    let fake = repo().join("tests/scripts/fake-virtualbox");
    for agents in [1, 3] {
        vagrant_validate(agents, "virtualbox", Some(&fake));
    }
}

#[test]
fn the_vagrantfile_describes_the_lab() {
    let vagrant = repo().join("vagrant");
    let checked = run(Command::new("ruby")
        .arg(vagrant.join("check-vagrantfile.rb"))
        .env_remove("BERTH_LAB_NET"));
    assert!(checked.contains("Vagrantfile ok"), "{checked}");
}

#[test]
fn every_lab_script_parses() {
    let vagrant = repo().join("vagrant");
    let mut scripts = vec![];
    for dir in [vagrant.clone(), vagrant.join("provision")] {
        for e in std::fs::read_dir(&dir).expect("vagrant/") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "sh") {
                scripts.push(p);
            }
        }
    }
    assert!(scripts.len() >= 8, "lab scripts: {scripts:?}");
    for s in scripts {
        // One file per `bash -n`: further arguments would be the script's, unchecked.
        run(Command::new("bash").arg("-n").arg(&s));
    }
}
