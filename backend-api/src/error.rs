//! The error a backend returns, and its kinds.

use std::fmt;

/// What went wrong, as far as the host needs to know to answer the client.
///
/// Kinds cross the plugin boundary as stable numeric codes ([`ErrorKind::code`]). New kinds may be
/// added in later versions without breaking the ABI: a host that does not know a code treats it
/// as [`ErrorKind::Internal`] and keeps the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request cannot be served as given (bad text, bad option). HTTP 400.
    InvalidInput,
    /// The voice (or a voice inside a blend) does not exist. HTTP 400, `param: "voice"`.
    UnknownVoice,
    /// The input is longer than the backend can handle. HTTP 400, `param: "input"`.
    TooLong,
    /// The backend is busy; the client may retry later. HTTP 429.
    Overloaded,
    /// The backend cannot work right now (model missing, device lost). HTTP 503.
    Unavailable,
    /// A bug or an unexpected failure inside the backend. HTTP 500.
    Internal,
    /// The backend panicked; the export macro caught it. HTTP 500.
    Panicked,
    /// The backend's configuration is wrong or incomplete (construction only).
    InvalidConfig,
    /// The request's `language` (or `lang_code`) is not one the backend accepts. HTTP 400,
    /// `param: "language"`. Added in ABI 0.1 without a layout change; an older host sees it as
    /// [`ErrorKind::Internal`].
    UnsupportedLanguage,
}

impl ErrorKind {
    /// Every kind this version knows.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::InvalidInput,
        ErrorKind::UnknownVoice,
        ErrorKind::TooLong,
        ErrorKind::Overloaded,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
        ErrorKind::Panicked,
        ErrorKind::InvalidConfig,
        ErrorKind::UnsupportedLanguage,
    ];

    /// The stable code that crosses the ABI. Codes are never reused.
    pub const fn code(self) -> u32 {
        match self {
            ErrorKind::InvalidInput => 1,
            ErrorKind::UnknownVoice => 2,
            ErrorKind::TooLong => 3,
            ErrorKind::Overloaded => 4,
            ErrorKind::Unavailable => 5,
            ErrorKind::Internal => 6,
            ErrorKind::Panicked => 7,
            ErrorKind::InvalidConfig => 8,
            ErrorKind::UnsupportedLanguage => 9,
        }
    }

    /// The kind for a code; unknown codes (from a newer plugin) become [`ErrorKind::Internal`].
    pub fn from_code(code: u32) -> Self {
        Self::ALL
            .into_iter()
            .find(|k| k.code() == code)
            .unwrap_or(ErrorKind::Internal)
    }

    /// A short snake_case name, e.g. `"unknown_voice"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::UnknownVoice => "unknown_voice",
            ErrorKind::TooLong => "too_long",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
            ErrorKind::Panicked => "panicked",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::UnsupportedLanguage => "unsupported_language",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a backend: a kind for the host and a message for the user.
///
/// Messages are shown to API clients, so they should say what was wrong with the request in
/// plain words (`"unknown voice 'x'; available: a, b"`), without internal detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct BackendError {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// A message for the client.
    pub message: String,
}

impl BackendError {
    /// An error of any kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// [`ErrorKind::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// [`ErrorKind::UnknownVoice`] for `voice`, listing the available voices.
    pub fn unknown_voice<'a>(voice: &str, available: impl IntoIterator<Item = &'a str>) -> Self {
        let list: Vec<&str> = available.into_iter().collect();
        Self::new(
            ErrorKind::UnknownVoice,
            format!(
                "unknown voice {}; available voices: {}",
                quote(voice),
                list.join(", ")
            ),
        )
    }

    /// [`ErrorKind::TooLong`].
    pub fn too_long(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLong, message)
    }

    /// [`ErrorKind::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// [`ErrorKind::UnsupportedLanguage`].
    pub fn unsupported_language(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UnsupportedLanguage, message)
    }

    /// [`ErrorKind::InvalidConfig`].
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message)
    }
}

/// Longest part of a client-supplied string that [`quote`] keeps, in characters.
pub const QUOTE_MAX_CHARS: usize = 200;

/// A client-supplied string made safe to put into an error message or a log line: cut to
/// [`QUOTE_MAX_CHARS`] characters (an ellipsis and the full length mark a cut), control
/// characters, quotes and backslashes escaped as in Rust's `escape_debug`, inside single quotes.
/// A newline in a request field can therefore never start a new log line.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(QUOTE_MAX_CHARS * 2) + 2);
    out.push('\'');
    for (kept, c) in s.chars().enumerate() {
        if kept == QUOTE_MAX_CHARS {
            let total = s.chars().count();
            out.push_str(&format!("…' ({total} characters)"));
            return out;
        }
        match c {
            '\'' => out.push_str("\\'"),
            '"' => out.push('"'),
            c => out.extend(c.escape_debug()),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for kind in ErrorKind::ALL {
            assert!(seen.insert(kind.code()), "duplicate code for {kind}");
            assert_eq!(ErrorKind::from_code(kind.code()), kind);
        }
    }

    #[test]
    fn unknown_codes_become_internal() {
        assert_eq!(ErrorKind::from_code(0), ErrorKind::Internal);
        assert_eq!(ErrorKind::from_code(9999), ErrorKind::Internal);
    }

    #[test]
    fn unknown_voice_lists_the_voices() {
        let e = BackendError::unknown_voice("x", ["a", "b"]);
        assert_eq!(e.kind, ErrorKind::UnknownVoice);
        assert_eq!(e.message, "unknown voice 'x'; available voices: a, b");
    }

    #[test]
    fn quote_bounds_and_escapes() {
        assert_eq!(quote("en-us"), "'en-us'");
        assert_eq!(quote("a\nb\u{1b}[31m'"), "'a\\nb\\u{1b}[31m\\''");
        assert_eq!(quote("say \"hi\""), "'say \"hi\"'");
        let long = "x".repeat(500);
        let q = quote(&long);
        assert!(q.starts_with(&format!("'{}…'", "x".repeat(200))), "{q}");
        assert!(q.ends_with("(500 characters)"), "{q}");
        assert!(!quote("a\r\nINFO forged").contains('\n'));
    }
}
