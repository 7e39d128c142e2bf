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
}

impl ErrorKind {
    /// Every kind this version knows.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::InvalidInput,
        ErrorKind::UnknownVoice,
        ErrorKind::TooLong,
        ErrorKind::Overloaded,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
        ErrorKind::Panicked,
        ErrorKind::InvalidConfig,
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
            format!("unknown voice '{voice}'; available voices: {}", list.join(", ")),
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

    /// [`ErrorKind::InvalidConfig`].
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message)
    }
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
}
