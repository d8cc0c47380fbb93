//! Errors as JavaScript sees them: an `Error` whose `code` is one stable string.
//!
//! The core already names its errors (`SQLITE_CONSTRAINT_UNIQUE`, `ERR_OVERLOADED`, ...); this module
//! only adds the codes that argument and result conversion raise, and builds the JavaScript object.
//! An [`ApiError`] is plain data so that it can be made on any thread (a worker's reply) and turned
//! into a JavaScript value later, on the JS thread.

use napi::bindgen_prelude::{JsObjectValue, Object, Unknown};
use napi::{Env, JsError};

/// A value that JavaScript passed cannot be used: wrong type, missing or surplus parameter.
pub(crate) const ERR_INVALID_ARGUMENT: &str = "ERR_INVALID_ARGUMENT";
/// An integer does not fit where it has to go (a bigint beyond i64, or an unsafe integer under
/// `intMode: 'number'`).
pub(crate) const ERR_INTEGER_OVERFLOW: &str = "ERR_INTEGER_OVERFLOW";
/// The database or the depot was closed before the call.
pub(crate) const ERR_CLOSED: &str = "ERR_CLOSED";

/// An error on its way to JavaScript: the stable `code` and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// Stable code, see the README's list (`SQLITE_*` or `ERR_*`).
    pub code: String,
    /// Human-readable explanation; not stable, do not match on it.
    pub message: String,
    /// For `ERR_OVERLOADED`: `error.depth` (calls in flight) and `error.limit` (`maxQueue`).
    pub overload: Option<(u64, u64)>,
}

impl ApiError {
    /// An error with the given code and message.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into(), overload: None }
    }

    /// `ERR_INVALID_ARGUMENT` with the given message (which should name the argument).
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ERR_INVALID_ARGUMENT, message)
    }

    /// `ERR_INTEGER_OVERFLOW` with the given message.
    pub fn integer_overflow(message: impl Into<String>) -> Self {
        Self::new(ERR_INTEGER_OVERFLOW, message)
    }

    /// `ERR_CLOSED`: `what` (a database, the depot) was closed.
    pub fn closed(what: &str) -> Self {
        Self::new(ERR_CLOSED, format!("{what} is closed"))
    }

    /// Builds the JavaScript `Error` (with `code`) and wraps it so that napi hands that very object
    /// to JavaScript. Must run on the JS thread that owns `env`.
    pub fn into_napi(self, env: &Env) -> napi::Error {
        let fallback = format!("{}: {}", self.code, self.message);
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
        let js_error = JsError::from(napi::Error::new(self.code, self.message));
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
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<depot_client::Error> for ApiError {
    fn from(error: depot_client::Error) -> Self {
        Self { code: error.code.as_str().to_owned(), message: error.message, overload: error.overload }
    }
}

impl From<napi::Error> for ApiError {
    /// A failure inside a napi call while reading an argument: the argument was not what it seemed.
    fn from(error: napi::Error) -> Self {
        Self::invalid_argument(error.reason)
    }
}
