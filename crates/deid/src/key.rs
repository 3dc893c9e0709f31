//! The master key, its key id and the HKDF domain keys (DESIGN.md, "Pseudonyms and keys").
//!
//! The master key is 32 random bytes. Everything else is derived from it:
//!
//! * key id = first 8 bytes, hex, of `HMAC-SHA256(master, "dhub key id")`;
//! * `K(domain) = HKDF-SHA256(salt = "dhub-v1", ikm = master, info = domain)`, 32 bytes,
//!   for a [`Domain`] (the closed set of domains);
//! * a domain key's id, the same construction under `K(domain)`: the project key id
//!   ([`project_key_id`]) written in extract manifests.
//!
//! HKDF is computed here from its two HMAC steps (RFC 5869 with one output block:
//! `PRK = HMAC(salt, master)`, `K = HMAC(PRK, info || 0x01)`), so deriving a key cannot
//! fail and no error path can leave a key of zeros. The RFC 5869 test vectors and an
//! independent Python implementation check it (`tests/vectors.rs`).
//!
//! Key bytes never appear in `Debug` or `Display` output and are zeroised on drop.

use std::fmt;

use ring::{hmac, rand::SecureRandom};
use zeroize::{Zeroize, Zeroizing};

use crate::domain::Domain;
use crate::error::{KeyError, RuleError};

/// Length in bytes of the master key and of every domain key.
pub const KEY_LEN: usize = 32;

/// The HKDF salt of every domain key.
pub const HKDF_SALT: &[u8] = b"dhub-v1";

/// The 32-byte master key held by the data manager alone.
///
/// ```
/// use dhub_deid::MasterKey;
/// let key = MasterKey::from_bytes([7u8; 32]);
/// assert_eq!(key.key_id().as_str().len(), 16);
/// assert!(!format!("{key:?}").contains("0707"));
/// ```
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl MasterKey {
    /// A new key from the operating system's secure random generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        ring::rand::SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| KeyError::Random)?;
        Ok(Self { bytes })
    }

    /// A key from its raw bytes (tests and test vectors; production keys come from
    /// [`MasterKey::generate`] and the key file).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let mut b = bytes;
        let key = Self {
            bytes: Zeroizing::new(b),
        };
        b.zeroize();
        key
    }

    /// A key from 64 hexadecimal characters (surrounding white space ignored).
    pub fn from_hex(hex: &str) -> Result<Self, KeyError> {
        let hex = hex.trim().as_bytes();
        if hex.len() != 2 * KEY_LEN {
            return Err(KeyError::Malformed {
                reason: "expected 64 hexadecimal characters",
            });
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        for (out, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let hi = hex_val(pair[0]);
            let lo = hex_val(pair[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => *out = (h << 4) | l,
                _ => {
                    return Err(KeyError::Malformed {
                        reason: "a character is not hexadecimal",
                    });
                }
            }
        }
        Ok(Self { bytes })
    }

    /// The key as 64 lowercase hex characters, for writing the key file only.
    pub(crate) fn to_hex(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(2 * KEY_LEN));
        for b in self.bytes.iter() {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        s
    }

    /// The key id: first 8 bytes, hex, of `HMAC-SHA256(master, "dhub key id")`.
    pub fn key_id(&self) -> KeyId {
        key_id_of(self.bytes.as_ref())
    }

    /// The domain key `K(domain) = HKDF-SHA256(salt = "dhub-v1", ikm = master, info = domain)`.
    ///
    /// ```
    /// use dhub_deid::{Domain, MasterKey};
    /// let key = MasterKey::from_bytes([7u8; 32]);
    /// let k = key.domain_key(&Domain::DateShift);
    /// assert_eq!(k.domain(), &Domain::DateShift);
    /// assert_ne!(k.expose_bytes(), &[0u8; 32]);
    /// ```
    pub fn domain_key(&self, domain: &Domain) -> DomainKey {
        // HKDF-Extract: PRK = HMAC-SHA256(salt, ikm)
        let prk = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, HKDF_SALT),
            self.bytes.as_ref(),
        );
        // HKDF-Expand for one 32-byte block: T(1) = HMAC-SHA256(PRK, info || 0x01)
        let mut ctx = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()));
        domain.write_info(&mut |b| ctx.update(b));
        ctx.update(&[1]);
        let okm = ctx.sign();
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(okm.as_ref());
        DomainKey {
            domain: domain.clone(),
            bytes,
        }
    }
}

/// The project key id: first 8 bytes, hex, of `HMAC-SHA256(K("project:<id>"), "dhub key
/// id")`, the same construction as the master key id. Written in extract manifests, so
/// a partner can tell which project key made its pseudonyms without seeing it.
///
/// ```
/// use dhub_deid::{MasterKey, project_key_id};
/// let key = MasterKey::from_bytes([3u8; 32]);
/// let a = project_key_id(&key, "asthma-2026").unwrap();
/// assert_eq!(a.as_str().len(), 16);
/// assert_ne!(a, project_key_id(&key, "copd-2026").unwrap());
/// assert_ne!(a, key.key_id());
/// assert!(project_key_id(&key, "Not Valid").is_err());
/// ```
pub fn project_key_id(master: &MasterKey, project: &str) -> Result<KeyId, RuleError> {
    Ok(master.domain_key(&Domain::project(project)?).key_id())
}

/// The id of a key: first 8 bytes, hex, of `HMAC-SHA256(key, "dhub key id")`.
fn key_id_of(key: &[u8]) -> KeyId {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, Domain::KEY_ID_LABEL);
    let mut id = [0u8; 16];
    hex_into(&tag.as_ref()[..8], &mut id);
    KeyId(String::from_utf8_lossy(&id).into_owned())
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("key_id", &self.key_id().as_str())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "master key {}", self.key_id())
    }
}

/// A derived 32-byte key for one [`Domain`] (`pseudonym:person`, `date-shift`,
/// `project:<id>`).
pub struct DomainKey {
    domain: Domain,
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl DomainKey {
    /// The domain this key was derived for.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// This key's public id: first 8 bytes, hex, of `HMAC-SHA256(key, "dhub key id")`.
    pub fn key_id(&self) -> KeyId {
        key_id_of(self.bytes.as_ref())
    }

    /// The raw bytes. Needed by test vectors; never print them.
    pub fn expose_bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// An HMAC-SHA256 key from these bytes, computed once per use site.
    pub(crate) fn hmac_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.bytes.as_ref())
    }
}

impl fmt::Debug for DomainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainKey")
            .field("domain", &self.domain.to_string())
            .finish_non_exhaustive()
    }
}

/// The public identifier of a master key: 16 lowercase hex characters. Safe to log,
/// store in releases and manifests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into `out` (which must be twice as long).
#[inline]
pub(crate) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
}

/// Every byte's two lowercase hex characters.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0x0f]];
        i += 1;
    }
    t
};

pub(crate) fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip() {
        let k = MasterKey::from_bytes(core::array::from_fn(|i| i as u8));
        assert_eq!(
            k.to_hex().as_str(),
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        );
        let k2 = MasterKey::from_hex(&k.to_hex()).unwrap();
        assert_eq!(k.key_id(), k2.key_id());
    }

    #[test]
    fn malformed_hex_refused_without_echoing() {
        let bad = "zz".repeat(32);
        let err = MasterKey::from_hex(&bad).unwrap_err().to_string();
        assert!(!err.contains("zz"));
        assert!(MasterKey::from_hex("abcd").is_err());
    }

    #[test]
    fn debug_and_display_hide_bytes() {
        let k = MasterKey::from_bytes([0xab; 32]);
        let d = format!("{k:?} {k} {:?}", k.domain_key(&Domain::DateShift));
        assert!(!d.contains("abab"), "{d}");
        assert!(d.contains(k.key_id().as_str()));
    }

    #[test]
    fn domain_keys_equal_ring_hkdf() {
        // the two-HMAC construction against ring's HKDF, over every kind of domain
        struct Len;
        impl ring::hkdf::KeyType for Len {
            fn len(&self) -> usize {
                KEY_LEN
            }
        }
        let k = MasterKey::from_bytes(core::array::from_fn(|i| (i * 7) as u8));
        for d in [
            Domain::pseudonym("person").unwrap(),
            Domain::DateShift,
            Domain::project("demo-project").unwrap(),
        ] {
            let prk =
                ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, HKDF_SALT).extract(k.bytes.as_ref());
            let info = d.to_string();
            let info = [info.as_bytes()];
            let mut want = [0u8; KEY_LEN];
            prk.expand(&info, Len).unwrap().fill(&mut want).unwrap();
            assert_eq!(k.domain_key(&d).expose_bytes(), &want, "{d}");
        }
    }

    #[test]
    fn project_key_id_is_the_key_id_construction_under_the_project_key() {
        let k = MasterKey::from_bytes([9u8; 32]);
        let pk = k.domain_key(&Domain::project("p1").unwrap());
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, pk.expose_bytes()),
            b"dhub key id",
        );
        let mut id = [0u8; 16];
        hex_into(&tag.as_ref()[..8], &mut id);
        assert_eq!(project_key_id(&k, "p1").unwrap().as_str().as_bytes(), &id);
    }

    #[test]
    fn generated_keys_differ() {
        let a = MasterKey::generate().unwrap();
        let b = MasterKey::generate().unwrap();
        assert_ne!(a.key_id(), b.key_id());
    }
}
