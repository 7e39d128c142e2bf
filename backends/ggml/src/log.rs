//! ggml's log routed into `tracing` (target `ggml`) through a trampoline installed once.

use std::cell::Cell;
use std::ffi::CStr;
use std::os::raw::{c_char, c_void};
use std::sync::Once;

use crate::sys;

static INSTALL: Once = Once::new();

thread_local! {
    /// Level of the last message on this thread, for `GGML_LOG_LEVEL_CONT` continuations.
    static LAST_LEVEL: Cell<sys::ggml_log_level> = const { Cell::new(sys::GGML_LOG_LEVEL_INFO) };
}

/// Installs the trampoline (idempotent). Called by every constructor of this crate, so callers
/// rarely need it; call it early to catch ggml's messages from the very first call.
///
/// # C equivalent
/// `ggml_log_set(trampoline, NULL)`
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: `trampoline` matches `ggml_log_callback`, is `'static`, never unwinds (see
        // below) and ignores `user_data`, which may therefore be NULL.
        unsafe { sys::ggml_log_set(Some(trampoline), std::ptr::null_mut()) };
    });
}

unsafe extern "C" fn trampoline(level: sys::ggml_log_level, text: *const c_char, _user_data: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: ggml passes a NUL-terminated message valid for the duration of the call.
    let msg = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    // A panicking subscriber must not unwind into C.
    let _ = std::panic::catch_unwind(|| emit(level, msg.trim_end()));
}

/// Maps a ggml level to a `tracing` event with target `ggml`.
fn emit(level: sys::ggml_log_level, msg: &str) {
    let level = if level == sys::GGML_LOG_LEVEL_CONT {
        LAST_LEVEL.with(Cell::get)
    } else {
        level
    };
    LAST_LEVEL.with(|l| l.set(level));
    if msg.is_empty() {
        return;
    }
    match level {
        sys::GGML_LOG_LEVEL_ERROR => tracing::error!(target: "ggml", "{msg}"),
        sys::GGML_LOG_LEVEL_WARN => tracing::warn!(target: "ggml", "{msg}"),
        sys::GGML_LOG_LEVEL_INFO => tracing::info!(target: "ggml", "{msg}"),
        _ => tracing::debug!(target: "ggml", "{msg}"),
    }
}
