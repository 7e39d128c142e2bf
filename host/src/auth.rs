//! API keys: kept out of `Debug` output, compared in constant time.

use std::path::Path;

use subtle::{Choice, ConstantTimeEq};

/// A secret string whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`, trimmed of surrounding whitespace.
    pub fn new(s: &str) -> Self {
        Self(s.trim().to_string())
    }

    /// The secret itself (for comparison only; never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

/// The accepted API keys; empty means no authentication.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys(Vec<Secret>);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} key(s), <redacted>)", self.0.len())
    }
}

impl ApiKeys {
    /// The non-empty keys among `keys` (each trimmed).
    pub fn new<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self(
            keys.into_iter()
                .map(|k| Secret::new(k.as_ref()))
                .filter(|k| !k.0.is_empty())
                .collect(),
        )
    }

    /// Adds keys.
    pub fn extend(&mut self, more: ApiKeys) {
        self.0.extend(more.0);
    }

    /// Whether no key is configured (authentication is off).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether an `Authorization` header value carries an accepted key: the scheme `Bearer` in
    /// any case, then the key (surrounding whitespace ignored). Every configured key is compared,
    /// each in time that depends only on the length of the presented key.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(presented) = authorization.and_then(bearer_token) else {
            return false;
        };
        let mut ok = Choice::from(0);
        for key in &self.0 {
            ok |= ct_eq(presented.as_bytes(), key.0.as_bytes());
        }
        bool::from(ok)
    }

    /// Reads a keys file: one key per line; blank lines and lines starting with `#` are skipped.
    /// A file that cannot be read, or holds no key, is an error.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--api-keys-file {}: cannot read it: {e}", path.display()))?;
        let keys = Self::new(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#')),
        );
        if keys.is_empty() {
            return Err(format!(
                "--api-keys-file {}: no key in it (one key per line; '#' starts a comment)",
                path.display()
            ));
        }
        Ok(keys)
    }
}

/// The token of `Bearer <token>`, the scheme matched case-insensitively.
fn bearer_token(header: &str) -> Option<&str> {
    let header = header.trim();
    let (scheme, rest) = header.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

/// Constant-time equality whose running time depends only on `presented.len()`.
fn ct_eq(presented: &[u8], key: &[u8]) -> Choice {
    if presented.len() == key.len() {
        presented.ct_eq(key)
    } else {
        // Same work as a comparison of equal lengths, and always false.
        presented.ct_eq(presented) & Choice::from(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_keys_are_trimmed() {
        let keys = ApiKeys::new([" sesame ", "", "other"]);
        assert_eq!(keys.len(), 2);
        for ok in [
            "Bearer sesame",
            "bearer sesame",
            "BEARER   sesame  ",
            "Bearer\tother",
        ] {
            assert!(keys.accepts(Some(ok)), "{ok}");
        }
        for bad in [
            "Bearer sesam",
            "Bearer sesame2",
            "Basic sesame",
            "sesame",
            "Bearer",
            "Bearer ",
            "Bearersesame",
            "",
        ] {
            assert!(!keys.accepts(Some(bad)), "{bad}");
        }
        assert!(!keys.accepts(None));
    }

    #[test]
    fn the_comparison_is_constant_time_shaped() {
        // Equal lengths use subtle's comparison; different lengths do the same work and fail.
        assert!(bool::from(ct_eq(b"abc", b"abc")));
        assert!(!bool::from(ct_eq(b"abc", b"abd")));
        assert!(!bool::from(ct_eq(b"abc", b"abcd")));
        assert!(!bool::from(ct_eq(b"", b"a")));
        // Every key is compared: a match on the last key still counts.
        let keys = ApiKeys::new(["k1", "k2", "k3"]);
        assert!(keys.accepts(Some("Bearer k3")));
    }

    #[test]
    fn debug_never_shows_a_key() {
        let keys = ApiKeys::new(["hunter2"]);
        let shown = format!("{keys:?} {:?}", Secret::new("hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn keys_file() {
        let dir = std::env::temp_dir().join(format!("tts-host-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keys");
        std::fs::write(&file, "# admin\n  alpha  \n\n#beta\ngamma\n").unwrap();
        let keys = ApiKeys::from_file(&file).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.accepts(Some("Bearer alpha")));
        assert!(keys.accepts(Some("Bearer gamma")));
        assert!(!keys.accepts(Some("Bearer #beta")));
        std::fs::write(&file, "# only comments\n\n").unwrap();
        assert!(ApiKeys::from_file(&file).unwrap_err().contains("no key"));
        assert!(ApiKeys::from_file(&dir.join("missing"))
            .unwrap_err()
            .contains("cannot read"));
    }
}
