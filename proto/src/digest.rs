//! SHA-256 digests in their hex text form, and the device-id derivation.

use std::io::{self, Read};

use ring::digest::{Context, SHA256};

/// The SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::hex::encode(ring::digest::digest(&SHA256, bytes).as_ref())
}

/// The SHA-256 of everything `reader` yields, streamed in 64 KiB blocks.
pub fn sha256_hex_reader(mut reader: impl Read) -> io::Result<String> {
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(crate::hex::encode(ctx.finish().as_ref()))
}

/// Incremental SHA-256 for data that is also being written elsewhere.
pub struct Sha256(Context);

impl Sha256 {
    /// A fresh digest.
    pub fn new() -> Self {
        Self(Context::new(&SHA256))
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed so far, without consuming the state.
    pub fn hex(&self) -> String {
        crate::hex::encode(self.0.clone().finish().as_ref())
    }

    /// The digest as lowercase hex.
    pub fn finish_hex(self) -> String {
        crate::hex::encode(self.0.finish().as_ref())
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

/// True when `text` looks like a SHA-256 hex digest (64 lowercase hex characters).
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// A device's id: the SHA-256 of its raw (uncompressed point) P-384 public key.
///
/// Deriving the id from the key means a certificate names its device without a lookup table.
pub fn device_id(public_key: &[u8]) -> String {
    sha256_hex(public_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_hex_reader(&b"abc"[..]).unwrap(), sha256_hex(b"abc"));
        let mut inc = Sha256::new();
        inc.update(b"a");
        inc.update(b"bc");
        assert_eq!(inc.finish_hex(), sha256_hex(b"abc"));
    }

    #[test]
    fn recognises_digests() {
        assert!(is_sha256_hex(&sha256_hex(b"")));
        assert!(!is_sha256_hex("../../etc/passwd"));
        assert!(!is_sha256_hex(&sha256_hex(b"").to_uppercase()));
    }
}
