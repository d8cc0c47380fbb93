//! The native `NativeDatabaseHandle` class: one open database, backed by the core's handle.
//!
//! Every method validates its arguments on the JS thread, hands one command to the core with a
//! reply callback, and returns a promise. The reply runs on the database's worker thread, converts
//! the result there (so `ERR_INTEGER_OVERFLOW` rejects before anything reaches JavaScript) and
//! settles the promise. A rejected argument still yields a rejected promise, never a throw, so that
//! callers need one error path only.
//!
//! Admission is honest: the core admits each accepted call and hands its `Admission` back with the
//! answer; the mailbox drops it on the JS thread just before the promise settles, so "overloaded"
//! counts queued, running and answered-but-not-yet-delivered calls alike, and a burst of
//! un-awaited calls is admitted deterministically.
//!
//! The public API (index.js) wraps this class: AbortSignal, `transaction(fn)`, `iterate()`, `get`
//! and `all` are written there, on top of the primitives below.

use std::cell::OnceCell;
use std::sync::Arc;
use std::time::Duration;

use depot_client::{Answer, Behavior, CallOptions, Command, CursorId, Database, TransactionId};
use napi::bindgen_prelude::{Object, PromiseRaw, ToNapiValue, Unknown};
use napi::{Env, ValueType};
use napi_derive::napi;

use crate::call::{call_from_js, id, millis, property};
use crate::error::ApiError;
use crate::metrics::{Metrics, Stats};
use crate::options::JsOptions;
use crate::promise::Pending;
use crate::reply::Mailbox;
use crate::result::{CursorChunk, CursorInfo, IntMode, Packed};
use crate::thread::spawn;
use crate::value::{params_from_js, statements_from_js, string_from_js};

/// One open database (native layer). Made by `Depot.openDatabase`; not constructible from
/// JavaScript. Use the wrapper's methods; these take `options` = `{ token?, timeoutMs?, tx? }`, or a
/// transaction id alone.
#[napi]
pub struct NativeDatabaseHandle {
    pub(crate) inner: Arc<Database>,
    pub(crate) int_mode: IntMode,
    /// How long the JS thread may wait for this database's answers (see `crate::reply::waiter`).
    reply_wait: Duration,
    /// The default deadline of every call (`queryTimeoutMs`), applied by index.js.
    query_timeout: Option<Duration>,
    /// The reply channel to the JS thread, made on the first call (it needs the JS thread's env).
    mailbox: OnceCell<Mailbox>,
}

impl NativeDatabaseHandle {
    /// Wraps a freshly opened core database.
    pub(crate) fn new(inner: Arc<Database>, options: JsOptions) -> Self {
        Self {
            inner,
            int_mode: options.int_mode,
            reply_wait: options.reply_wait,
            query_timeout: options.query_timeout,
            mailbox: OnceCell::new(),
        }
    }

    /// Submits one command; the promise settles with `convert(answer)`, and the call's admission
    /// is released on the JS thread just before JavaScript sees it.
    fn dispatch<'env, T: ToNapiValue + Send + 'static>(
        &self,
        env: &'env Env,
        command: Command,
        options: &CallOptions,
        convert: impl FnOnce(Answer) -> Result<T, ApiError> + Send + 'static,
    ) -> napi::Result<PromiseRaw<'env, T>> {
        let mailbox = match self.mailbox.get() {
            Some(mailbox) => mailbox,
            None => self.mailbox.get_or_init(|| {
                Mailbox::new(env.raw(), self.inner.awake_flag(), self.reply_wait)
                    .expect("a threadsafe function for replies")
            }),
        };
        // The calls of this handle still waiting: a burst of them keeps reads off this thread.
        let in_flight = mailbox.in_flight();
        let counted;
        let options = if in_flight >= depot_client::CALLER_BURST {
            counted = CallOptions { in_flight, ..options.clone() };
            &counted
        } else {
            options
        };
        let (slot, promise) = mailbox.pending::<T>(env.raw())?;
        self.inner.call(
            command,
            options,
            Box::new(move |answer, admission| {
                // Converted here, on the worker: an unsafe integer rejects before reaching JS.
                slot.settle(answer.map_err(ApiError::from).and_then(convert), admission);
            }),
        );
        Ok(PromiseRaw::new(env.raw(), promise))
    }
}

/// The answer of a statement command (`execute`, `executeBatch`, `executeScript`), packed.
pub(crate) fn packed(answer: Answer, mode: IntMode) -> Result<Packed, ApiError> {
    match answer {
        Answer::Statement(result) => Packed::statement(result, mode),
        Answer::Statements(results) => Packed::statements(results, mode),
        other => Err(other.unexpected().into()),
    }
}

/// `Ok(value)` or a settled rejected promise, for argument parsing.
macro_rules! parsed {
    ($env:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(error) => return Pending::settled($env, Err(error)),
        }
    };
}

#[napi]
impl NativeDatabaseHandle {
    /// The name the database was opened with.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// Runs one or more SQL statements separated by `;`, without parameters and without results.
    #[napi(
        ts_args_type = "sql: string, options?: { token?: CancelToken, timeoutMs?: number, tx?: number } | number",
        ts_return_type = "Promise<void>"
    )]
    pub fn exec<'env>(
        &self,
        env: &'env Env,
        sql: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let (sql, call) = parsed!(env, with_call(env, string_from_js(sql, "sql"), options));
        self.dispatch(env, Command::Exec { sql }, &call, |_| Ok(()))
    }

    /// Runs `;`-separated statements without parameters (SQLite splits them) and resolves with
    /// every statement's result, packed like `executeBatch`'s; each statement is its own
    /// transaction unless the SQL opens one, and the first error stops it. The CLI runs its
    /// input this way.
    #[napi(
        ts_args_type = "sql: string, options?: { token?: CancelToken, timeoutMs?: number, tx?: number } | number",
        ts_return_type = "Promise<Array<unknown>>"
    )]
    pub fn execute_script<'env>(
        &self,
        env: &'env Env,
        sql: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, Packed>> {
        let (sql, call) = parsed!(env, with_call(env, string_from_js(sql, "sql"), options));
        let mode = self.int_mode;
        self.dispatch(env, Command::Script { sql }, &call, move |answer| packed(answer, mode))
    }

    /// Runs one statement; resolves with its result packed (index.js makes the `execute`, `query`
    /// and `run` objects from it).
    #[napi(
        ts_args_type = "sql: string, params?: Array<unknown> | Record<string, unknown>, options?: { token?: CancelToken, timeoutMs?: number, tx?: number } | number",
        ts_return_type = "Promise<Array<unknown>>"
    )]
    pub fn execute<'env>(
        &self,
        env: &'env Env,
        sql: Unknown,
        params: Option<Unknown>,
        options: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, Packed>> {
        let (sql, params, call) = parsed!(env, statement_args(env, sql, params, options));
        let mode = self.int_mode;
        self.dispatch(env, Command::Execute { sql, params }, &call, move |answer| packed(answer, mode))
    }

    /// Runs several statements in one trip to the worker, atomically (a transaction, or a
    /// savepoint inside an open one). Resolves with one result per statement, in order.
    #[napi(
        ts_args_type = "statements: Array<{ sql: string, params?: Array<unknown> | Record<string, unknown> }>, options?: { token?: CancelToken, timeoutMs?: number, tx?: number } | number",
        ts_return_type = "Promise<Array<unknown>>"
    )]
    pub fn execute_batch<'env>(
        &self,
        env: &'env Env,
        statements: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, Packed>> {
        let (statements, call) = parsed!(env, with_call(env, statements_from_js(statements), options));
        let mode = self.int_mode;
        self.dispatch(env, Command::Batch { statements }, &call, move |answer| packed(answer, mode))
    }

    /// Begins an interactive transaction pinned to the worker; resolves with its id. Until it
    /// ends, every other call waits behind it in arrival order. `behavior`: 'deferred' (default),
    /// 'immediate' or 'exclusive'; after `timeoutMs` it is rolled back and its calls reject with
    /// `ERR_TIMEOUT`.
    #[napi(
        ts_args_type = "options?: { behavior?: 'deferred' | 'immediate' | 'exclusive', timeoutMs?: number }",
        ts_return_type = "Promise<number>"
    )]
    pub fn begin_transaction<'env>(
        &self,
        env: &'env Env,
        options: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, f64>> {
        let (behavior, timeout) = parsed!(env, transaction_options(options));
        self.dispatch(env, Command::Begin { behavior, timeout }, &CallOptions::default(), |answer| {
            match answer {
                Answer::Transaction(TransactionId(id)) => Ok(id as f64),
                other => Err(other.unexpected().into()),
            }
        })
    }

    /// Commits (`commit = true`) or rolls back the interactive transaction `tx`.
    #[napi(ts_args_type = "tx: number, commit: boolean", ts_return_type = "Promise<void>")]
    pub fn end_transaction<'env>(
        &self,
        env: &'env Env,
        tx: Unknown,
        commit: bool,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let transaction = TransactionId(parsed!(env, id(tx, "tx")));
        self.dispatch(env, Command::End { transaction, commit }, &CallOptions::default(), |_| Ok(()))
    }

    /// Opens a streaming cursor on the worker; resolves with `{ id, columns }`.
    #[napi(
        ts_args_type = "sql: string, params?: Array<unknown> | Record<string, unknown>, options?: { token?: CancelToken, timeoutMs?: number, tx?: number } | number",
        ts_return_type = "Promise<CursorInfo>"
    )]
    pub fn cursor_open<'env>(
        &self,
        env: &'env Env,
        sql: Unknown,
        params: Option<Unknown>,
        options: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, CursorInfo>> {
        let (sql, params, call) = parsed!(env, statement_args(env, sql, params, options));
        self.dispatch(env, Command::CursorOpen { sql, params }, &call, |answer| match answer {
            Answer::Cursor { id: CursorId(id), columns } => Ok(CursorInfo { id: id as f64, columns }),
            other => Err(other.unexpected().into()),
        })
    }

    /// Up to `maxRows` more rows of a cursor; `done` once it is exhausted (it is then closed).
    #[napi(
        ts_args_type = "id: number, maxRows: number, options?: { token?: CancelToken, timeoutMs?: number, tx?: number } | number",
        ts_return_type = "Promise<CursorChunk>"
    )]
    pub fn cursor_next<'env>(
        &self,
        env: &'env Env,
        cursor: Unknown,
        max_rows: u32,
        options: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, CursorChunk>> {
        let (cursor, call) = parsed!(env, with_call(env, id(cursor, "id").map(CursorId), options));
        let mode = self.int_mode;
        let command = Command::CursorNext { cursor, max_rows: max_rows.max(1) as usize };
        self.dispatch(env, command, &call, move |answer| match answer {
            Answer::Rows { rows, done } => Ok(CursorChunk { rows: Packed::rows(rows, mode)?, done }),
            other => Err(other.unexpected().into()),
        })
    }

    /// Finalizes a cursor before it is exhausted (breaking out of an iteration).
    #[napi(
        ts_args_type = "id: number, options?: { token?: CancelToken, timeoutMs?: number, tx?: number } | number",
        ts_return_type = "Promise<void>"
    )]
    pub fn cursor_close<'env>(
        &self,
        env: &'env Env,
        cursor: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let (cursor, call) = parsed!(env, with_call(env, id(cursor, "id").map(CursorId), options));
        let call = CallOptions { transaction: call.transaction, ..CallOptions::default() };
        self.dispatch(env, Command::CursorClose { cursor }, &call, |_| Ok(()))
    }

    /// A snapshot of this database's counters. Cheap and synchronous: it reads atomics and never
    /// waits for the worker.
    #[napi]
    pub fn metrics(&self) -> Metrics {
        Metrics::from(self.inner.metrics())
    }

    /// Call counts: in flight (queued, running, or answered but not yet delivered to JavaScript),
    /// running, answered, failed, rejected at admission.
    #[napi]
    pub fn stats(&self) -> Stats {
        Stats::new(self.inner.metrics(), self.mailbox.get().map_or(0, Mailbox::answered_inline))
    }

    /// The database's default call deadline in milliseconds (`queryTimeoutMs`), if any.
    #[napi(getter)]
    pub fn query_timeout_ms(&self) -> Option<f64> {
        self.query_timeout.map(|t| t.as_secs_f64() * 1000.0)
    }

    /// Closes the database: queued calls reject with `ERR_CLOSED`, the connection is dropped on
    /// the worker, then the promise resolves. Idempotent. Rejects with `ERR_CLOSE_TIMEOUT` when the
    /// worker does not stop within 5 seconds (it is left to finish on its own).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let (pending, promise) = Pending::new(env)?;
        let inner = Arc::clone(&self.inner);
        // Calls made after close() returns must fail with ERR_CLOSED: refuse them from now on.
        inner.request_close();
        // `close` blocks until the worker has stopped; never on the JS thread.
        spawn("depot-sqlite-close", move || pending.settle(inner.close().map_err(ApiError::from)))?;
        Ok(promise)
    }
}

/// A call's first argument, already read, and its options object.
pub(crate) fn with_call<T>(
    env: &Env,
    first: Result<T, ApiError>,
    options: Option<Unknown>,
) -> Result<(T, CallOptions), ApiError> {
    Ok((first?, call_from_js(env, options)?))
}

/// The `sql, params, options` arguments of `execute` and `cursorOpen`.
pub(crate) fn statement_args(
    env: &Env,
    sql: Unknown,
    params: Option<Unknown>,
    options: Option<Unknown>,
) -> Result<(String, depot_client::Params, CallOptions), ApiError> {
    Ok((string_from_js(sql, "sql")?, params_from_js(params)?, call_from_js(env, options)?))
}

/// Reads `{ behavior?, timeoutMs? }` of `beginTransaction`.
pub(crate) fn transaction_options(
    options: Option<Unknown>,
) -> Result<(Behavior, Option<std::time::Duration>), ApiError> {
    let Some(value) = options else { return Ok((Behavior::Deferred, None)) };
    match value.get_type()? {
        ValueType::Undefined | ValueType::Null => return Ok((Behavior::Deferred, None)),
        ValueType::Object => {}
        _ => return Err(ApiError::invalid_argument("transaction options must be an object")),
    }
    // SAFETY: checked to be an object.
    let object = unsafe { value.cast::<Object>() }?;
    let behavior = match property(&object, c"behavior")? {
        None => Behavior::Deferred,
        Some(v) => match string_from_js(v, "options.behavior")?.as_str() {
            "deferred" => Behavior::Deferred,
            "immediate" => Behavior::Immediate,
            "exclusive" => Behavior::Exclusive,
            other => {
                return Err(ApiError::invalid_argument(format!(
                    "options.behavior must be 'deferred', 'immediate' or 'exclusive', not {other:?}"
                )))
            }
        },
    };
    let timeout = property(&object, c"timeoutMs")?.map(|v| millis(v, "options.timeoutMs")).transpose()?;
    Ok((behavior, timeout))
}
