//! Hex text and random identifiers: the one lowercase hex encoder and the one
//! random-identifier helper of the workspace (query ids, run ids, extract ids, tokens'
//! random parts), from the operating system's secure generator.
//!
//! ```
//! assert_eq!(dhub_deid::hex(&[0x00, 0xab, 0xff]), "00abff");
//! let id = dhub_deid::random_id(16)?;
//! assert_eq!(id.len(), 32);
//! assert!(id.bytes().all(|c| c.is_ascii_hexdigit()));
//! # Ok::<(), dhub_deid::KeyError>(())
//! ```

use ring::rand::SecureRandom;

use crate::KeyError;

/// `bytes` as lowercase hex (two characters a byte).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    crate::key::hex_into(bytes, &mut out);
    out.into_iter().map(char::from).collect()
}

/// Bytes from hex text (either case, surrounding whitespace ignored); `None` unless
/// every character is a hex digit and their number is even.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks_exact(2)
        .map(|p| Some((crate::key::hex_val(p[0])? << 4) | crate::key::hex_val(p[1])?))
        .collect()
}

/// `n` bytes from the operating system's secure random generator.
///
/// # Errors
/// [`KeyError::Random`] when the generator fails: never a predictable value instead.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, KeyError> {
    let mut b = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| KeyError::Random)?;
    Ok(b)
}

/// A random identifier: `n` random bytes as lowercase hex (`2n` characters).
///
/// # Errors
/// [`KeyError::Random`] when the generator fails.
pub fn random_id(n: usize) -> Result<String, KeyError> {
    Ok(hex(&random_bytes(n)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_ids() {
        assert_eq!(hex(&[]), "");
        assert_eq!(
            hex(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]),
            "0123456789abcdef"
        );
        let (a, b) = (random_id(16).unwrap(), random_id(16).unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(unhex(" 00aBfF\n"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(unhex(&a).map(|b| hex(&b)), Some(a));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
