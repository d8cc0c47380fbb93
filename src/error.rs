//! Errors as JavaScript sees them: an `Error` whose `code` is one stable string.
//!
//! Every code comes from the core's [`ErrorCode`] (the one list of codes); argument and result
//! conversion here use the same codes. An [`ApiError`] is plain data so that it can be made on any
//! thread (a worker's reply) and turned into a JavaScript value later, on the JS thread.

use depot_client::ErrorCode;
use napi::bindgen_prelude::{JsObjectValue, Object, Unknown};
use napi::{Env, JsError};

/// An error on its way to JavaScript: the stable `code` and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// Stable code, see the README's list (`SQLITE_*` or `ERR_*`).
    pub code: ErrorCode,
    /// Human-readable explanation; not stable, do not match on it.
    pub message: String,
    /// For `ERR_OVERLOADED`: `error.depth` (calls in flight) and `error.limit` (`maxQueue`).
    pub overload: Option<(u64, u64)>,
}

impl ApiError {
    /// An error with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), overload: None }
    }

    /// `ERR_INVALID_ARGUMENT` with the given message (which should name the argument).
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// `ERR_INTEGER_OVERFLOW` with the given message.
    pub fn integer_overflow(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::IntegerOverflow, message)
    }

    /// `ERR_CLOSED`: `what` (a database, the depot) was closed.
    pub fn closed(what: &str) -> Self {
        Self::new(ErrorCode::Closed, format!("{what} is closed"))
    }

    /// Builds the JavaScript `Error` (with `code`) and wraps it so that napi hands that very object
    /// to JavaScript. Must run on the JS thread that owns `env`.
    pub fn into_napi(self, env: &Env) -> napi::Error {
        let fallback = format!("{}: {}", self.code.as_str(), self.message);
        let raw = self.into_value(env.raw());
        if raw.is_null() {
            // The environment is tearing down; nobody is left to see the error.
            return napi::Error::from_reason(fallback);
        }
        // SAFETY: `raw` was just created in `env`.
        let value = unsafe { Unknown::from_raw_unchecked(env.raw(), raw) };
        napi::Error::from(value)
    }
}

impl ApiError {
    /// The JavaScript `Error` object (with `code`, and `depth`/`limit` for `ERR_OVERLOADED`), or
    /// null when the environment is tearing down. Must run on the JS thread that owns `env`.
    pub fn into_value(self, env: napi::sys::napi_env) -> napi::sys::napi_value {
        let overload = self.overload;
        let js_error = JsError::from(napi::Error::new(self.code.as_str(), self.message));
        // SAFETY: `env` is the live environment of the current (JS) thread.
        let raw = unsafe { js_error.into_value(env) };
        if !raw.is_null() {
            if let Some((depth, limit)) = overload {
                let mut object = Object::from_raw(env, raw);
                let _ = object.set_named_property("depth", depth as f64);
                let _ = object.set_named_property("limit", limit as f64);
            }
        }
        raw
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl From<depot_client::Error> for ApiError {
    fn from(error: depot_client::Error) -> Self {
        Self { code: error.code, message: error.message, overload: error.overload }
    }
}

impl From<napi::Error> for ApiError {
    /// A failure inside a napi call while reading an argument: the argument was not what it seemed.
    fn from(error: napi::Error) -> Self {
        Self::invalid_argument(error.reason)
    }
}
