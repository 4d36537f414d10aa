//! The Vagrant lab's files, checked without Vagrant (installing it costs about
//! a hundred Debian packages and the VMs need minutes each under emulation):
//! the Vagrantfile parses, evaluates to the right machines, addresses,
//! providers and provisioning scripts (`vagrant/check-vagrantfile.rb` plays
//! Vagrant's config object), and every lab shell script parses.
//! What this does not check: option names against the real providers
//! (`vagrant validate`), nor that the VMs come up; see vagrant/README.md.

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
        panic!("{cmd:?}: {e} (ruby and bash come from scripts/install-deps.sh)")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

#[test]
fn the_vagrantfile_parses_and_describes_the_lab() {
    let vagrant = repo().join("vagrant");
    let syntax = run(Command::new("ruby")
        .arg("-c")
        .arg(vagrant.join("Vagrantfile"))
        .env_remove("BERTH_AGENTS")
        .env_remove("BERTH_LAB_NET"));
    assert!(syntax.contains("Syntax OK"), "{syntax}");
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
