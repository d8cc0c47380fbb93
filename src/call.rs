//! Per-call options from JavaScript: cancellation token, deadline, interactive transaction.
//!
//! The public wrapper (index.js) turns an `AbortSignal` into a [`CancelToken`] and a database's
//! `queryTimeoutMs` into `timeoutMs`; this module only reads the plain object it passes.

use std::ffi::CStr;
use std::time::Duration;

use depot_client::{CallOptions, TransactionId};
use napi::bindgen_prelude::{ClassInstance, FromNapiValue, Object, Unknown};
use napi::JsValue;

use napi::{sys, Env, ValueType};
use napi_derive::napi;

use crate::error::ApiError;

/// Cancels the calls it is passed to: a queued call never runs, a running statement is
/// interrupted, both reject with `ERR_ABORTED`. Made by the wrapper for an `AbortSignal`.
#[napi]
#[derive(Default)]
pub struct CancelToken {
    pub(crate) inner: depot_client::CancelToken,
}

#[napi]
impl CancelToken {
    #[napi(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every call given this token (idempotent).
    #[napi]
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Whether `cancel()` was called.
    #[napi(getter)]
    pub fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
}

/// A property that counts as absent when it is missing, `undefined` or `null`. The key is a C
/// string literal (`c"tx"`): per-call options are read on every call, and a `&str` key would be
/// copied into a fresh C string each time.
pub(crate) fn property<'a>(object: &Object<'a>, key: &CStr) -> Result<Option<Unknown<'a>>, ApiError> {
    let mut raw = std::ptr::null_mut();
    // SAFETY: `object` is a live object of its env, on the JS thread; `key` is NUL-terminated.
    let status =
        unsafe { sys::napi_get_named_property(object.value().env, object.raw(), key.as_ptr(), &mut raw) };
    napi::check_status!(status)?;
    // SAFETY: `raw` was just returned by napi for this env.
    let value = unsafe { Unknown::from_raw_unchecked(object.value().env, raw) };
    match value.get_type()? {
        ValueType::Undefined | ValueType::Null => Ok(None),
        _ => Ok(Some(value)),
    }
}

/// A finite, non-negative number of milliseconds.
pub(crate) fn millis(value: Unknown, what: &str) -> Result<Duration, ApiError> {
    let invalid =
        || ApiError::invalid_argument(format!("{what} must be a non-negative number of milliseconds"));
    if value.get_type()? != ValueType::Number {
        return Err(invalid());
    }
    // SAFETY: checked to be a number.
    let ms = unsafe { value.cast::<f64>() }?;
    if !ms.is_finite() || ms < 0.0 {
        return Err(invalid());
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

/// An id handed out by the native layer (transaction or cursor).
pub(crate) fn id(value: Unknown, what: &str) -> Result<u64, ApiError> {
    let invalid = || ApiError::invalid_argument(format!("{what} must be an id returned by this database"));
    if value.get_type()? != ValueType::Number {
        return Err(invalid());
    }
    // SAFETY: checked to be a number.
    let n = unsafe { value.cast::<f64>() }?;
    if n.fract() != 0.0 || !(1.0..=9_007_199_254_740_991.0).contains(&n) {
        return Err(invalid());
    }
    Ok(n as u64)
}

/// Reads the options object of a call (absent, `undefined` or `null` means none). A number alone
/// is a transaction id with no other option: index.js passes a call inside `transaction()` that
/// way, which spares it an object and three property lookups (~0.7 µs of the JS thread a call).
pub(crate) fn call_from_js(env: &Env, value: Option<Unknown>) -> Result<CallOptions, ApiError> {
    let mut call = CallOptions::default();
    let Some(value) = value else { return Ok(call) };
    match value.get_type()? {
        ValueType::Undefined | ValueType::Null => return Ok(call),
        ValueType::Object => {}
        ValueType::Number => {
            call.transaction = Some(TransactionId(id(value, "options.tx")?));
            return Ok(call);
        }
        _ => return Err(ApiError::invalid_argument("call options must be an object")),
    }
    // SAFETY: checked to be an object.
    let object = unsafe { value.cast::<Object>() }?;
    if let Some(token) = property(&object, c"token")? {
        // SAFETY: `token` is a live value of this env; the conversion checks that it is a CancelToken.
        let instance = unsafe { ClassInstance::<CancelToken>::from_napi_value(env.raw(), token.raw()) }
            .map_err(|_| ApiError::invalid_argument("options.token must be a CancelToken"))?;
        call.cancel = Some(instance.inner.clone());
    }
    if let Some(timeout) = property(&object, c"timeoutMs")? {
        call.timeout = Some(millis(timeout, "options.timeoutMs")?);
    }
    if let Some(tx) = property(&object, c"tx")? {
        call.transaction = Some(TransactionId(id(tx, "options.tx")?));
    }
    Ok(call)
}
