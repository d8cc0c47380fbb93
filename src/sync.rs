//! The synchronous call path: the JS thread blocks until the database's worker answers. Opt-in
//! (only the `*Sync` methods take it) for APIs that must return a value at once, such as Durable
//! Objects' `sql.exec`. It blocks the event loop for the whole call, so it is bounded: the call's
//! `timeoutMs`, else [`SYNC_LIMIT`]. A call that could wait behind an interactive transaction that
//! in turn waits for JavaScript fails at once with `ERR_WOULD_DEADLOCK` (see
//! `Database::would_deadlock`).

use std::time::Duration;

use depot_client::{Answer, Command, TransactionId};
use napi::bindgen_prelude::Unknown;
use napi::Env;
use napi_derive::napi;

use crate::call::id;
use crate::database::{packed, statement_args, transaction_options, with_call, NativeDatabaseHandle};
use crate::error::ApiError;
use crate::result::Packed;
use crate::value::string_from_js;

/// Longest a synchronous call blocks the JS thread when it names no `timeoutMs`.
const SYNC_LIMIT: Duration = Duration::from_secs(30);

impl NativeDatabaseHandle {
    /// Runs `command` synchronously; `Err` is the JavaScript error to throw.
    fn sync(&self, env: &Env, command: Command, call: depot_client::CallOptions) -> napi::Result<Answer> {
        let limit = call.timeout.unwrap_or(SYNC_LIMIT);
        self.inner.call_sync(command, &call, limit).map_err(|e| ApiError::from(e).into_napi(env))
    }
}

fn thrown<T>(env: &Env, r: Result<T, ApiError>) -> napi::Result<T> {
    r.map_err(|e| e.into_napi(env))
}

#[napi]
impl NativeDatabaseHandle {
    /// `execute`, synchronously: returns the packed result, or throws.
    #[napi(
        ts_args_type = "sql: string, params?: Array<unknown> | Record<string, unknown>, options?: { timeoutMs?: number, tx?: number }",
        ts_return_type = "Array<unknown>"
    )]
    pub fn execute_sync(
        &self,
        env: &Env,
        sql: Unknown,
        params: Option<Unknown>,
        options: Option<Unknown>,
    ) -> napi::Result<Packed> {
        let (sql, params, call) = thrown(env, statement_args(env, sql, params, options))?;
        let answer = self.sync(env, Command::Execute { sql, params }, call)?;
        thrown(env, packed(answer, self.int_mode))
    }

    /// `executeScript`, synchronously: every statement's packed result, or throws.
    #[napi(
        ts_args_type = "sql: string, options?: { timeoutMs?: number, tx?: number }",
        ts_return_type = "Array<unknown>"
    )]
    pub fn execute_script_sync(
        &self,
        env: &Env,
        sql: Unknown,
        options: Option<Unknown>,
    ) -> napi::Result<Packed> {
        let (sql, call) = thrown(env, with_call(env, string_from_js(sql, "sql"), options))?;
        let answer = self.sync(env, Command::Script { sql }, call)?;
        thrown(env, packed(answer, self.int_mode))
    }

    /// `beginTransaction`, synchronously: returns the transaction's id.
    #[napi(
        ts_args_type = "options?: { behavior?: 'deferred' | 'immediate' | 'exclusive', timeoutMs?: number }"
    )]
    pub fn begin_transaction_sync(&self, env: &Env, options: Option<Unknown>) -> napi::Result<f64> {
        let (behavior, timeout) = thrown(env, transaction_options(options))?;
        match self.sync(env, Command::Begin { behavior, timeout }, Default::default())? {
            Answer::Transaction(TransactionId(id)) => Ok(id as f64),
            other => Err(ApiError::from(other.unexpected()).into_napi(env)),
        }
    }

    /// `endTransaction`, synchronously.
    #[napi(ts_args_type = "tx: number, commit: boolean")]
    pub fn end_transaction_sync(&self, env: &Env, tx: Unknown, commit: bool) -> napi::Result<()> {
        let transaction = TransactionId(thrown(env, id(tx, "tx"))?);
        let call = depot_client::CallOptions { transaction: Some(transaction), ..Default::default() };
        self.sync(env, Command::End { transaction, commit }, call).map(drop)
    }
}
