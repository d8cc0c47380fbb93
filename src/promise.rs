//! A promise that any thread may settle.
//!
//! [`Pending`] wraps napi's deferred (a threadsafe function under the hood): the worker thread calls
//! [`Pending::settle`] from its reply callback, and the value is converted to JavaScript later, on
//! the JS thread. Errors travel as [`ApiError`] data and become `Error` objects only there, because
//! JavaScript objects can only be made on their own thread.

use napi::bindgen_prelude::{PromiseRaw, ToNapiValue};
use napi::{Env, JsDeferred, JsValue};

use crate::error::ApiError;

/// What the JS thread runs to produce the settled value.
type Settler<T> = Box<dyn FnOnce(Env) -> napi::Result<T> + Send>;

/// The resolving half of a promise handed to JavaScript.
pub(crate) struct Pending<T: ToNapiValue + Send + 'static> {
    deferred: JsDeferred<T, Settler<T>>,
}

impl<T: ToNapiValue + Send + 'static> Pending<T> {
    /// Creates a promise and its resolving half. Must run on the JS thread.
    pub fn new(env: &Env) -> napi::Result<(Self, PromiseRaw<'_, T>)> {
        let (deferred, promise) = env.create_deferred::<T, Settler<T>>()?;
        Ok((Self { deferred }, PromiseRaw::new(env.raw(), promise.raw())))
    }

    /// A promise that is already decided (for example an argument that failed validation): the
    /// caller still gets a promise, never a synchronous throw.
    pub fn settled(env: &Env, outcome: Result<T, ApiError>) -> napi::Result<PromiseRaw<'_, T>> {
        let (pending, promise) = Self::new(env)?;
        pending.settle(outcome);
        Ok(promise)
    }

    /// Settles the promise. Callable from any thread, exactly once (it consumes `self`).
    pub fn settle(self, outcome: Result<T, ApiError>) {
        self.deferred.resolve(Box::new(move |env: Env| outcome.map_err(|error| error.into_napi(&env))));
    }
}
