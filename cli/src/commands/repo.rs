//! `berth up` / `berth down`: run the source tree's scripts/up.sh or down.sh, which own the
//! single-host bring-up; the CLI only finds them and passes `BERTH_DATA_DIR` on.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

/// Runs `scripts/<script>` of the Berth tree; its exit code becomes ours.
pub fn run_script(repo: Option<&Path>, script: &str, data_dir: &Path) -> Result<ExitCode> {
    let repo = find_repo(repo, &std::env::current_dir()?)?;
    let path = repo.join("scripts").join(script);
    let status = Command::new("bash")
        .arg(&path)
        .env("BERTH_DATA_DIR", data_dir)
        .status()
        .with_context(|| format!("running {}", path.display()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

fn is_repo(dir: &Path) -> bool {
    dir.join("scripts/up.sh").is_file() && dir.join("scripts/lib.sh").is_file()
}

/// `--repo` if given; else the current directory or an ancestor; else the tree this binary
/// was built from (a `cargo build` checkout).
pub fn find_repo(given: Option<&Path>, cwd: &Path) -> Result<PathBuf> {
    if let Some(dir) = given {
        if is_repo(dir) {
            return Ok(dir.to_path_buf());
        }
        bail!(
            "{} is not a Berth source tree (no scripts/up.sh)",
            dir.display()
        );
    }
    if let Some(dir) = cwd.ancestors().find(|d| is_repo(d)) {
        return Ok(dir.to_path_buf());
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if is_repo(&built_from) {
        return Ok(built_from);
    }
    bail!(
        "cannot find the Berth source tree (scripts/up.sh): run berth from inside it, or pass \
         --repo DIR / BERTH_REPO"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_tree_from_inside_it_or_from_where_it_was_built() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = here.parent().unwrap();
        assert_eq!(find_repo(None, &here.join("src")).unwrap(), root);
        assert!(is_repo(&find_repo(None, Path::new("/")).unwrap()));
        assert!(find_repo(Some(Path::new("/")), here)
            .unwrap_err()
            .to_string()
            .contains("not a Berth source tree"));
    }
}
