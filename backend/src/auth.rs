//! Passwords and session tokens.
//!
//! Passwords are hashed with argon2id (the crate's defaults: 19 MiB, 2 passes). Session
//! tokens are 32 random bytes; the store keeps only their SHA-256, so a copy of the store
//! does not let anyone in. Checking a token is one hash and one lookup, which keeps
//! CONNECT cheap; only `/api/login` and `/api/register` pay for argon2, on a blocking thread.

use std::fmt::Write as _;
use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

/// Hashes a password for storage.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters accepts any password and a generated salt")
        .to_string()
}

/// A hash of a password nobody has: verifying against it makes a login with an unknown name
/// cost as much as one with a known name.
static DECOY: LazyLock<String> = LazyLock::new(|| hash_password("not a password anyone uses"));

/// Whether `password` matches `stored` (or, for an unknown user, spends the same time and
/// returns `false`).
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    let (hash, known) = match stored {
        Some(hash) => (hash, true),
        None => (DECOY.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && known
}

/// A new session token: 32 random bytes, hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let stored = hash_password("correct horse");
        assert!(verify_password("correct horse", Some(&stored)));
        assert!(!verify_password("wrong horse", Some(&stored)));
        assert!(!verify_password("not a password anyone uses", None));
    }

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), a);
    }
}
