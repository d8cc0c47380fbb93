//! The `NativeDatabaseHandle` class: one open database, backed by the core's handle.
//!
//! Every method validates its arguments on the JS thread, hands one command to the core with a
//! reply callback, and returns a promise. The reply runs on the database's worker thread, converts
//! the result there (so `ERR_INTEGER_OVERFLOW` rejects before anything reaches JavaScript) and
//! settles the promise. A rejected argument still yields a rejected promise, never a throw, so that
//! callers need one error path only.

use std::sync::Arc;

use depot_client::NativeDatabaseHandle as CoreHandle;
use napi::bindgen_prelude::{PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::promise::Pending;
use crate::result::{ExecuteResult, IntMode, QueryResult, RunResult};
use crate::value::{params_from_js, statements_from_js, string_from_js};

/// One open database. Made by `Depot.openDatabase`; not constructible from JavaScript.
///
/// Calls are queued to the database's own worker thread (capacity 128). When the queue is full a
/// call rejects at once with `ERR_OVERLOADED` instead of waiting; after `close()` every call rejects
/// with `ERR_CLOSED`.
#[napi]
pub struct NativeDatabaseHandle {
    inner: Arc<CoreHandle>,
    int_mode: IntMode,
    name: String,
}

impl NativeDatabaseHandle {
    /// Wraps a freshly opened core handle.
    pub(crate) fn new(inner: Arc<CoreHandle>, int_mode: IntMode, name: String) -> Self {
        Self { inner, int_mode, name }
    }
}

#[napi]
impl NativeDatabaseHandle {
    /// The name the database was opened with.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Runs one or more SQL statements separated by `;`, without parameters and without results.
    #[napi(ts_args_type = "sql: string", ts_return_type = "Promise<void>")]
    pub fn exec<'env>(&self, env: &'env Env, sql: Unknown) -> napi::Result<PromiseRaw<'env, ()>> {
        let sql = match string_from_js(sql, "sql") {
            Ok(sql) => sql,
            Err(error) => return Pending::settled(env, Err(error)),
        };
        let (pending, promise) = Pending::new(env)?;
        self.inner.exec_with(sql, Box::new(move |reply| pending.settle(reply.map_err(ApiError::from))));
        Ok(promise)
    }

    /// Runs one statement with optional parameters: an array for `?`/`?NNN`, or an object for
    /// `:name`/`@name`/`$name` (keys with or without the prefix). Resolves with its columns, rows,
    /// number of changed rows and last inserted rowid.
    #[napi(
        ts_args_type = "sql: string, params?: Array<null | undefined | number | bigint | string | boolean | Buffer | Uint8Array> | Record<string, null | undefined | number | bigint | string | boolean | Buffer | Uint8Array>",
        ts_return_type = "Promise<ExecuteResult>"
    )]
    pub fn execute<'env>(
        &self,
        env: &'env Env,
        sql: Unknown,
        params: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, ExecuteResult>> {
        self.statement(env, sql, params, |result| result)
    }

    /// Like `execute`, resolving with `{ columns, rows }` only.
    #[napi(
        ts_args_type = "sql: string, params?: Array<null | undefined | number | bigint | string | boolean | Buffer | Uint8Array> | Record<string, null | undefined | number | bigint | string | boolean | Buffer | Uint8Array>",
        ts_return_type = "Promise<QueryResult>"
    )]
    pub fn query<'env>(
        &self,
        env: &'env Env,
        sql: Unknown,
        params: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, QueryResult>> {
        self.statement(env, sql, params, ExecuteResult::into_query)
    }

    /// Like `execute`, resolving with `{ changes, lastInsertRowId }` only.
    #[napi(
        ts_args_type = "sql: string, params?: Array<null | undefined | number | bigint | string | boolean | Buffer | Uint8Array> | Record<string, null | undefined | number | bigint | string | boolean | Buffer | Uint8Array>",
        ts_return_type = "Promise<RunResult>"
    )]
    pub fn run<'env>(
        &self,
        env: &'env Env,
        sql: Unknown,
        params: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, RunResult>> {
        self.statement(env, sql, params, ExecuteResult::into_run)
    }

    /// Runs several statements in one trip to the worker, atomically: inside one transaction, all
    /// or nothing. Resolves with one result per statement, in order.
    #[napi(
        ts_args_type = "statements: Array<{ sql: string, params?: Array<null | undefined | number | bigint | string | boolean | Buffer | Uint8Array> | Record<string, null | undefined | number | bigint | string | boolean | Buffer | Uint8Array> }>",
        ts_return_type = "Promise<Array<ExecuteResult>>"
    )]
    pub fn execute_batch<'env>(
        &self,
        env: &'env Env,
        statements: Unknown,
    ) -> napi::Result<PromiseRaw<'env, Vec<ExecuteResult>>> {
        let statements = match statements_from_js(statements) {
            Ok(statements) => statements,
            Err(error) => return Pending::settled(env, Err(error)),
        };
        let (pending, promise) = Pending::new(env)?;
        let mode = self.int_mode;
        self.inner.batch_with(
            statements,
            Box::new(move |reply| {
                let converted = reply.map_err(ApiError::from).and_then(|results| {
                    results.into_iter().map(|result| ExecuteResult::convert(result, mode)).collect()
                });
                pending.settle(converted);
            }),
        );
        Ok(promise)
    }

    /// A snapshot of this database's counters. Cheap and synchronous: it reads atomics and never
    /// waits for the worker.
    #[napi]
    pub fn metrics(&self) -> Metrics {
        Metrics::from(self.inner.metrics())
    }

    /// Closes the database: queued calls reject with `ERR_CLOSED`, the connection is dropped on
    /// the worker, then the promise resolves. Idempotent. Rejects with `ERR_CLOSE_TIMEOUT` when the
    /// worker does not stop within 5 seconds (it is left to finish on its own).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let (pending, promise) = Pending::new(env)?;
        let inner = Arc::clone(&self.inner);
        // `close` blocks until the worker has stopped; never on the JS thread.
        std::thread::Builder::new()
            .name("depot-sqlite-close".into())
            .spawn(move || pending.settle(inner.close().map_err(ApiError::from)))
            .map_err(|e| napi::Error::from_reason(format!("cannot spawn a thread to close: {e}")))?;
        Ok(promise)
    }
}

impl NativeDatabaseHandle {
    /// The shared path of `execute`, `query` and `run`: one statement, projected by `shape`.
    fn statement<'env, T: napi::bindgen_prelude::ToNapiValue + Send + 'static>(
        &self,
        env: &'env Env,
        sql: Unknown,
        params: Option<Unknown>,
        shape: fn(ExecuteResult) -> T,
    ) -> napi::Result<PromiseRaw<'env, T>> {
        let parsed = string_from_js(sql, "sql").and_then(|sql| Ok((sql, params_from_js(params)?)));
        let (sql, params) = match parsed {
            Ok(parsed) => parsed,
            Err(error) => return Pending::settled(env, Err(error)),
        };
        let (pending, promise) = Pending::new(env)?;
        let mode = self.int_mode;
        self.inner.execute_with(
            sql,
            params,
            Box::new(move |reply| {
                let converted = reply
                    .map_err(ApiError::from)
                    .and_then(|result| ExecuteResult::convert(result, mode))
                    .map(shape);
                pending.settle(converted);
            }),
        );
        Ok(promise)
    }
}
