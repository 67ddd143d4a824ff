//! Keys of server-side-rendering frontends (`FRONTEND_KEYS`). Such a frontend makes every request
//! of its visitors from its own address; with a matching `X-Frontend-Key` the end user's address
//! in `X-Frontend-Client-IP` is trusted for budgeting instead, and the key's own overall budget
//! (`RATE_LIMIT_FRONTEND_KEY`) bounds what the frontend, or whoever holds its key, can spend.
//!
//! Only SHA-256 digests of the keys are kept, and a presented key is compared (as a digest, so
//! its length tells nothing either) with every configured one in constant time. Neither the
//! configured keys nor a presented one is ever logged: `Debug` prints a count, and a bad setting
//! is reported without its value (clap's own errors would echo it, so the parser never fails).
use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};

pub const X_FRONTEND_KEY: HeaderName = HeaderName::from_static("x-frontend-key");
pub const X_FRONTEND_CLIENT_IP: HeaderName = HeaderName::from_static("x-frontend-client-ip");
/// Shorter keys are refused at start: a key is a password a rendering server holds.
pub const MIN_KEY_CHARS: usize = 16;

/// The configured keys, as digests.
#[derive(Clone, Default)]
pub struct FrontendKeys {
    digests: Arc<[[u8; 32]]>,
    /// Positions (1-based) of keys shorter than [`MIN_KEY_CHARS`], refused by [`Self::validate`].
    short: Arc<[usize]>,
}

impl std::fmt::Debug for FrontendKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrontendKeys({} keys)", self.digests.len())
    }
}

/// `FRONTEND_KEYS`: comma-separated, blanks around keys and empty entries ignored.
pub fn parse_keys(s: &str) -> Result<FrontendKeys, String> {
    let keys: Vec<&str> = s.split(',').map(str::trim).filter(|k| !k.is_empty()).collect();
    let short = keys.iter().enumerate().filter(|(_, k)| k.chars().count() < MIN_KEY_CHARS).map(|(i, _)| i + 1);
    Ok(FrontendKeys {
        short: short.collect(),
        digests: keys.iter().map(|k| Sha256::digest(k.as_bytes()).into()).collect(),
    })
}

impl FrontendKeys {
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Refuses keys too short to be secret, naming their position, never their text.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(first) = self.short.first() {
            anyhow::bail!("FRONTEND_KEYS: key #{first} is shorter than {MIN_KEY_CHARS} characters");
        }
        Ok(())
    }

    /// The index of the configured key `presented` is, if any. Every configured key is compared,
    /// whether or not an earlier one matched.
    pub fn find(&self, presented: &[u8]) -> Option<usize> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut found = None;
        for (i, known) in self.digests.iter().enumerate() {
            if constant_time_eq(known, &digest) {
                found = Some(i);
            }
        }
        found
    }
}

/// Equality of two digests in time independent of where they differ (the `subtle` crate would do
/// this too, but enabling its default features rebuilds rustls and everything above it).
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// What a request's frontend headers establish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// No `X-Frontend-Key` header.
    None,
    /// A key that matches none configured: the request is budgeted like any other.
    Unknown,
    /// The configured key at this index, and the end user's address when the request named one.
    Known { key: usize, end_user: Option<IpAddr> },
}

/// Reads (and removes, so no handler or log ever sees it) the request's frontend key.
pub fn identify(keys: Option<&FrontendKeys>, headers: &mut HeaderMap) -> Frontend {
    let Some(presented) = headers.remove(X_FRONTEND_KEY) else {
        return Frontend::None;
    };
    let Some(key) = keys.and_then(|keys| keys.find(presented.as_bytes())) else {
        return Frontend::Unknown;
    };
    let mut values = headers.get_all(X_FRONTEND_CLIENT_IP).iter();
    let end_user = match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().ok().and_then(|s| s.trim().parse::<IpAddr>().ok()).map(|ip| ip.to_canonical()),
        _ => None,
    };
    Frontend::Known { key, end_user }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_exactly_and_never_print() {
        let keys = parse_keys(" first-key-0123456789 ,, second-key-0123456789").unwrap();
        assert_eq!(keys.len(), 2);
        keys.validate().unwrap();
        assert_eq!(keys.find(b"second-key-0123456789"), Some(1));
        assert_eq!(keys.find(b"first-key-0123456789"), Some(0));
        assert_eq!(keys.find(b"first-key-012345678"), None);
        assert_eq!(keys.find(b""), None);
        assert!(!format!("{keys:?}").contains("key-0123"));
        assert!(parse_keys("").unwrap().is_empty());
        let err = parse_keys("long-enough-key-0123,short").unwrap().validate().unwrap_err().to_string();
        assert!(err.contains("#2") && !err.contains("short,") && !err.contains("long-enough"), "{err}");
    }

    #[test]
    fn the_end_user_address_counts_only_with_a_known_key() {
        let keys = parse_keys("a-frontend-key-0123456789").unwrap();
        let mut h = HeaderMap::new();
        h.insert(X_FRONTEND_KEY, "a-frontend-key-0123456789".parse().unwrap());
        h.insert(X_FRONTEND_CLIENT_IP, "198.51.100.7".parse().unwrap());
        let known = identify(Some(&keys), &mut h.clone());
        assert_eq!(known, Frontend::Known { key: 0, end_user: Some("198.51.100.7".parse().unwrap()) });
        let mut stripped = h.clone();
        identify(Some(&keys), &mut stripped);
        assert!(!stripped.contains_key(X_FRONTEND_KEY), "the key does not travel further");
        h.insert(X_FRONTEND_KEY, "another-key-0123456789".parse().unwrap());
        assert_eq!(identify(Some(&keys), &mut h.clone()), Frontend::Unknown);
        assert_eq!(identify(None, &mut h.clone()), Frontend::Unknown);
        h.insert(X_FRONTEND_KEY, "a-frontend-key-0123456789".parse().unwrap());
        h.insert(X_FRONTEND_CLIENT_IP, "not an address".parse().unwrap());
        assert_eq!(identify(Some(&keys), &mut h), Frontend::Known { key: 0, end_user: None });
        assert_eq!(identify(Some(&keys), &mut HeaderMap::new()), Frontend::None);
    }
}
