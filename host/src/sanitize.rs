//! Text that came from outside (clients, plugins) made safe for log lines.
//!
//! Client strings in messages go through [`tts_backend_api::quote`] (bounded, escaped, quoted).
//! [`log_text`] is for longer texts written to the log, such as a backend's error message: every
//! control character (newline, carriage return, ESC of an ANSI sequence, …) is escaped, so no
//! field can start a new log line or recolour the terminal.

/// Longest text [`log_text`] keeps, in characters.
pub const LOG_TEXT_MAX_CHARS: usize = 2000;

/// `s` with control characters and backslashes escaped as Rust's `escape_debug` does (quotes
/// kept as they are), cut to [`LOG_TEXT_MAX_CHARS`] characters.
pub fn log_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(LOG_TEXT_MAX_CHARS) + 8);
    for (i, c) in s.chars().enumerate() {
        if i == LOG_TEXT_MAX_CHARS {
            out.push_str(&format!("… ({} characters)", s.chars().count()));
            break;
        }
        match c {
            '"' | '\'' => out.push(c),
            c => out.extend(c.escape_debug()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let s = log_text("a\nb\r\u{1b}[31mred\u{7}\u{85}\u{2028}\\ \"q\" 'q'");
        assert_eq!(s, "a\\nb\\r\\u{1b}[31mred\\u{7}\\u{85}\\u{2028}\\\\ \"q\" 'q'");
        assert!(!s.chars().any(char::is_control));
    }

    #[test]
    fn long_text_is_cut() {
        let s = log_text(&"x".repeat(5000));
        assert!(s.starts_with(&"x".repeat(LOG_TEXT_MAX_CHARS)));
        assert!(s.ends_with("… (5000 characters)"));
    }
}
