//! The master key file: one line of 64 lowercase hex characters, mode 0600.
//!
//! This is the only file access in `dhub-deid`. It lives here, not in the callers, so
//! that the custody rules cannot be skipped: a key file readable by group or others
//! is refused, a new key file is created with mode 0600 in a directory created with
//! mode 0700, and an existing key file is never overwritten.

use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::key::MasterKey;

impl MasterKey {
    /// Loads the key from `path`, refusing a file readable by group or others.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let io = |action, source: std::io::Error| KeyError::Io {
            action,
            path: path.to_owned(),
            source,
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyError::NotFound {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(io("read", e)),
        };
        check_mode(path, &meta)?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| io("read", e))?);
        MasterKey::from_hex(&text)
    }

    /// Writes the key to a new file at `path` (mode 0600; missing parent directories
    /// are created with mode 0700). Refuses to overwrite an existing file.
    pub fn save_new(&self, path: &Path) -> Result<(), KeyError> {
        write_secret_file(path, self.to_hex().as_bytes())
    }
}

/// Creates `path` with `contents` plus a newline, mode 0600, parents 0700, never
/// overwriting. Shared by every secret file dhub writes.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let io = |action, source: std::io::Error| KeyError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.exists())
    {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(parent)
            .map_err(|e| io("create the directory of", e))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(KeyError::Exists {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(io("create", e)),
    };
    let mut line = Zeroizing::new(Vec::with_capacity(contents.len() + 1));
    line.extend_from_slice(contents);
    line.push(b'\n');
    f.write_all(&line)
        .and_then(|()| f.sync_all())
        .map_err(|e| io("write", e))
}

/// Refuses a secret file whose permission bits let group or others read or write it.
pub fn check_secret_file_mode(path: &Path) -> Result<(), KeyError> {
    let meta = std::fs::metadata(path).map_err(|e| KeyError::Io {
        action: "read",
        path: path.to_owned(),
        source: e,
    })?;
    check_mode(path, &meta)
}

#[cfg(unix)]
fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_roundtrip_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/sub/master.key");
        let key = MasterKey::generate().unwrap();
        key.save_new(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(m, 0o600);
            let d = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(d, 0o700);
        }
        let loaded = MasterKey::load(&path).unwrap();
        assert_eq!(loaded.key_id(), key.key_id());
        // never overwritten
        let other = MasterKey::generate().unwrap();
        assert!(matches!(
            other.save_new(&path),
            Err(KeyError::Exists { .. })
        ));
        assert_eq!(MasterKey::load(&path).unwrap().key_id(), key.key_id());
    }

    #[cfg(unix)]
    #[test]
    fn open_key_file_refused_with_chmod_hint() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        MasterKey::generate().unwrap().save_new(&path).unwrap();
        for mode in [0o640, 0o604, 0o644, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = MasterKey::load(&path).unwrap_err();
            assert!(matches!(err, KeyError::TooOpen { .. }), "{mode:o}");
            assert!(err.to_string().contains("chmod 600"));
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(MasterKey::load(&path).is_ok());
    }

    #[test]
    fn missing_key_file_says_how_to_make_one() {
        let err = MasterKey::load(Path::new("/nonexistent/dhub/master.key")).unwrap_err();
        assert!(err.to_string().contains("dhub keys generate"));
    }
}
