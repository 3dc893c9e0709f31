//! The Ed25519 signing key of released extracts.
//!
//! The key file holds the 32-byte Ed25519 seed as one line of 64 lowercase hex
//! characters, mode 0600, like the master key (`dhub keys generate-signing` makes one
//! and never overwrites). Partners get the 32-byte public key as 64 hex characters
//! (`dhub keys public`) through a channel they trust, and check `manifest.sig` (the raw
//! 64-byte signature over the exact bytes of `manifest.json`) with it.

use std::path::Path;

use ring::rand::SecureRandom;
use ring::signature::{self, KeyPair};
use zeroize::Zeroizing;

use crate::error::{ExtractError, Result};
use dhub_deid::{hex, unhex};

/// The signing key pair.
pub struct SigningKey {
    pair: signature::Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public_hex())
            .finish_non_exhaustive()
    }
}

fn key_err(path: &Path, message: impl Into<String>) -> ExtractError {
    ExtractError::SigningKey {
        path: path.to_owned(),
        message: message.into(),
    }
}

impl SigningKey {
    /// A key from its 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self> {
        signature::Ed25519KeyPair::from_seed_unchecked(seed)
            .map(|pair| Self { pair })
            .map_err(|_| ExtractError::SigningKey {
                path: Default::default(),
                message: "not a valid Ed25519 seed".into(),
            })
    }

    /// Makes a new key and writes it to `path` (mode 0600, never overwriting).
    pub fn generate(path: &Path) -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        ring::rand::SystemRandom::new()
            .fill(seed.as_mut())
            .map_err(|_| key_err(path, "the system random generator failed"))?;
        let key = Self::from_seed(&seed).map_err(|_| key_err(path, "key generation failed"))?;
        let text = Zeroizing::new(hex(seed.as_ref()));
        dhub_deid::write_secret_file(path, text.as_bytes()).map_err(|e| match e {
            dhub_deid::KeyError::Exists { .. } => key_err(
                path,
                "a signing key already exists here and is never overwritten; partners verify against its public key (`dhub keys public`)",
            ),
            other => key_err(path, other.to_string()),
        })?;
        Ok(key)
    }

    /// Loads the key at `path`, refusing a file readable by group or others.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(key_err(
                path,
                "no such file; make one with `dhub keys generate-signing` (or point --signing-key / DHUB_SIGNING_KEY at yours)",
            ));
        }
        dhub_deid::check_secret_file_mode(path).map_err(|e| key_err(path, e.to_string()))?;
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| key_err(path, e.to_string()))?,
        );
        let bytes = Zeroizing::new(unhex(&text).unwrap_or_default());
        let seed: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| key_err(path, "expected one line of 64 hexadecimal characters"))?;
        let seed = Zeroizing::new(seed);
        Self::from_seed(&seed).map_err(|_| key_err(path, "not a valid Ed25519 seed"))
    }

    /// The public key, 32 bytes.
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    /// The public key as 64 lowercase hex characters.
    pub fn public_hex(&self) -> String {
        hex(&self.public_key())
    }

    /// The Ed25519 signature of `message`, 64 bytes.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }
}

/// Parses a public key given as 64 hex characters.
pub fn parse_public_key(hex_key: &str) -> Result<[u8; 32]> {
    unhex(hex_key)
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| {
            ExtractError::Verify(
                "the public key must be 64 hexadecimal characters (`dhub keys public` prints it)"
                    .into(),
            )
        })
}

/// Checks an Ed25519 signature (raw 64 bytes, or 128 hex characters).
pub fn verify_signature(public_key: &[u8; 32], message: &[u8], sig: &[u8]) -> Result<()> {
    let raw: Vec<u8> = if sig.len() == 64 {
        sig.to_vec()
    } else {
        std::str::from_utf8(sig)
            .ok()
            .and_then(unhex)
            .filter(|b| b.len() == 64)
            .ok_or_else(|| {
                ExtractError::Verify("manifest.sig is not a 64-byte Ed25519 signature".into())
            })?
    };
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(message, &raw)
        .map_err(|_| {
            ExtractError::Verify(
                "the signature of manifest.json does not match the public key: the manifest was changed, or it was signed by another key".into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_load_sign_verify() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k/signing.key");
        let k = SigningKey::generate(&p).unwrap();
        assert!(SigningKey::generate(&p).is_err());
        let l = SigningKey::load(&p).unwrap();
        assert_eq!(k.public_hex(), l.public_hex());
        assert_eq!(k.public_hex().len(), 64);
        let sig = l.sign(b"hello");
        let pk = parse_public_key(&k.public_hex()).unwrap();
        verify_signature(&pk, b"hello", &sig).unwrap();
        verify_signature(&pk, b"hello", hex(&sig).as_bytes()).unwrap();
        assert!(verify_signature(&pk, b"hellO", &sig).is_err());
        assert!(!format!("{k:?}").contains(&std::fs::read_to_string(&p).unwrap()[..20]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(SigningKey::load(&p).is_err());
        }
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 section 7.1, TEST 1 (empty message)
        let seed =
            unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
        let k = SigningKey::from_seed(&seed.try_into().unwrap()).unwrap();
        assert_eq!(
            k.public_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex(&k.sign(b"")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }
}
