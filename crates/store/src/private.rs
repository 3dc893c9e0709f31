//! Local files dhub writes are private to the account that runs it.
//!
//! The research store, the quarantine (raw identifiable lines), the extracts area, the
//! governance database and run reports are all written by the `dhub` process. On
//! `file://` locations every directory dhub creates is `0700` and every file `0600`:
//! the `dhub` command sets its process umask to `077` before anything else (so files the
//! object store, Delta Lake and SQLite create inherit it), and the functions here create
//! roots and reports with those modes explicitly. A root that already exists with any
//! group or other permission bit is refused at start-up ([`check_private`]) with the
//! `chmod` that fixes it, the way a readable key file is refused: a root closed to
//! other users closes everything beneath it, whatever the modes inside.

use std::io::Write;
use std::path::Path;

use crate::error::{Result, StoreError};

/// Creates `path` and any missing parent with mode `0700` (an existing directory is
/// left as it is; [`check_private`] judges it).
pub fn create_private_dir_all(path: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(path)
}

/// Writes `bytes` to `path` as a file only its owner can read or write (`0600`),
/// replacing an existing file and narrowing its mode if it was wider.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(bytes)?;
    f.sync_all()
}

/// Refuses a local path (a store, quarantine or extracts root, the governance
/// database) that other local users may read, write or enter: any group or other
/// permission bit. A path that does not exist yet is fine (dhub creates it private).
/// `what` names it in the message ("research store", "quarantine", …).
pub fn check_private(path: &Path, what: &str) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(());
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(StoreError::NotPrivate {
                what: what.to_owned(),
                path: path.display().to_string(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn directories_and_reports_are_created_private() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b/c");
        create_private_dir_all(&d).unwrap();
        assert_eq!(mode(&t.path().join("a")), 0o700);
        assert_eq!(mode(&d), 0o700);
        let f = t.path().join("report.json");
        std::fs::write(&f, "old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&f, b"{}").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(std::fs::read(&f).unwrap(), b"{}");
    }

    #[test]
    fn a_root_open_to_others_is_refused_with_the_fix() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("store");
        check_private(&d, "research store").unwrap(); // missing: dhub will create it
        std::fs::create_dir(&d).unwrap();
        for m in [0o755, 0o750, 0o701, 0o710, 0o702] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(m)).unwrap();
            let e = check_private(&d, "research store").unwrap_err().to_string();
            assert!(e.contains("chmod -R go-rwx"), "{e}");
            assert!(e.contains(&d.display().to_string()), "{e}");
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        check_private(&d, "research store").unwrap();
    }
}
