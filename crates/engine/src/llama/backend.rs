//! The process-wide llama.cpp backend and where its log lines go.
//!
//! llama.cpp prints a screenful of loader and context details to stderr by
//! default. We route every line to `tracing` at debug level (target
//! `llama.cpp`), so a normal run stays quiet and `RUST_LOG=llama.cpp=debug`
//! shows everything. While a model or context is being created, error lines
//! are also captured on that thread, because they carry the only useful
//! explanation of a failure ("tensor data is not within the file bounds").

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr};
use std::sync::OnceLock;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_sys_2::{ggml_log_level, GGML_LOG_LEVEL_CONT, GGML_LOG_LEVEL_ERROR};

use crate::EngineError;

/// The backend may be initialised only once per process.
static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();

/// The initialised backend, creating it (and installing the log hook) on
/// first use.
pub(crate) fn backend() -> Result<&'static LlamaBackend, EngineError> {
    BACKEND
        .get_or_init(|| {
            // SAFETY: `forward_log` is a plain function that never unwinds and
            // ignores its user-data pointer, so a null pointer is fine.
            unsafe { llama_cpp_sys_2::llama_log_set(Some(forward_log), std::ptr::null_mut()) };
            LlamaBackend::init().map_err(|err| err.to_string())
        })
        .as_ref()
        .map_err(|reason| EngineError::Load {
            path: String::from("<llama.cpp backend>"),
            reason: reason.clone(),
        })
}

thread_local! {
    /// Error text collected on this thread while [`capture_errors`] runs.
    static CAPTURED: RefCell<Option<CaptureState>> = const { RefCell::new(None) };
}

struct CaptureState {
    text: String,
    /// Whether the last line was an error, so that continuation lines
    /// (`GGML_LOG_LEVEL_CONT`) are kept with it.
    in_error: bool,
}

/// Run `f`, returning its result together with the error lines llama.cpp
/// logged on this thread meanwhile (joined by `; `, possibly empty).
pub(crate) fn capture_errors<T>(f: impl FnOnce() -> T) -> (T, String) {
    CAPTURED.with(|cell| {
        *cell.borrow_mut() = Some(CaptureState {
            text: String::new(),
            in_error: false,
        })
    });
    let result = f();
    let text = CAPTURED
        .with(|cell| cell.borrow_mut().take())
        .map(|state| {
            let lines: Vec<&str> = state
                .text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            lines.join("; ")
        })
        .unwrap_or_default();
    (result, text)
}

unsafe extern "C" fn forward_log(level: ggml_log_level, text: *const c_char, _: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string that lives for the
    // duration of the call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    CAPTURED.with(|cell| {
        if let Some(state) = cell.borrow_mut().as_mut() {
            let keep =
                level == GGML_LOG_LEVEL_ERROR || (level == GGML_LOG_LEVEL_CONT && state.in_error);
            if level != GGML_LOG_LEVEL_CONT {
                state.in_error = level == GGML_LOG_LEVEL_ERROR;
            }
            if keep {
                state.text.push_str(&text);
            }
        }
    });
    tracing::debug!(target: "llama.cpp", "{}", text.trim_end());
}
