//! The history calls of a depot: its databases' commit logs, the commit at a time, restore and
//! fork. Each runs its store call off the JS thread. A bookmark crosses to JavaScript as the txid in
//! 16 hex digits, so that bookmarks sort as strings in commit order.

use depot_client::{CommitInfo, PageStore};
use napi::bindgen_prelude::{PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;

use crate::depot::Depot;
use crate::error::ApiError;
use crate::promise::Pending;
use crate::thread::spawn;
use crate::value::string_from_js;

/// One commit of a database's history, as `depot.history()` lists it (index.js makes `time` a Date).
#[napi(object)]
pub struct NativeHistoryEntry {
    pub bookmark: String,
    pub time_ms: f64,
    pub pages: u32,
    pub bytes: f64,
}

/// The bookmark of a txid.
pub(crate) fn bookmark(txid: u64) -> String {
    format!("{txid:016x}")
}

/// The txid a bookmark names.
pub(crate) fn txid_of(bookmark: &str, what: &str) -> Result<u64, ApiError> {
    let valid =
        bookmark.len() == 16 && bookmark.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    valid.then(|| u64::from_str_radix(bookmark, 16).ok()).flatten().ok_or_else(|| {
        ApiError::invalid_argument(format!("{what} is not a bookmark (16 hex digits, as bookmark() returns)"))
    })
}

/// `options.generation` of a restore: absent, or a positive safe integer.
fn generation_from_js(value: Option<Unknown>) -> Result<Option<u64>, ApiError> {
    let invalid = || ApiError::invalid_argument("options.generation must be a positive integer");
    match value {
        None => Ok(None),
        Some(v) => match v.get_type()? {
            napi::ValueType::Undefined | napi::ValueType::Null => Ok(None),
            napi::ValueType::Number => {
                // SAFETY: checked to be a number.
                let g = unsafe { v.cast::<f64>() }?;
                let exact = g.fract() == 0.0 && (1.0..=9_007_199_254_740_991.0).contains(&g);
                exact.then_some(Some(g as u64)).ok_or_else(invalid)
            }
            _ => Err(invalid()),
        },
    }
}

pub(crate) fn optional_bookmark(value: Option<Unknown>, what: &str) -> Result<Option<u64>, ApiError> {
    match value {
        Some(v) if !matches!(v.get_type()?, napi::ValueType::Undefined | napi::ValueType::Null) => {
            Ok(Some(txid_of(&string_from_js(v, what)?, what)?))
        }
        _ => Ok(None),
    }
}

/// Runs `call` with the parsed arguments on the depot's store, off the JS thread, and settles the
/// returned promise with its outcome; bad arguments or a closed depot settle it at once.
pub(crate) fn off_thread<'env, A, T, E>(
    env: &'env Env,
    depot: &Depot,
    args: Result<A, ApiError>,
    call: impl FnOnce(&dyn PageStore, A) -> Result<T, E> + Send + 'static,
) -> napi::Result<PromiseRaw<'env, T>>
where
    A: Send + 'static,
    T: napi::bindgen_prelude::ToNapiValue + Send + 'static,
    depot_client::Error: From<E>,
{
    let (args, store) = match args.and_then(|args| Ok((args, depot.store()?))) {
        Ok(ready) => ready,
        Err(error) => return Pending::settled(env, Err(error)),
    };
    let (pending, promise) = Pending::new(env)?;
    spawn("depot-sqlite-history", move || {
        pending.settle(call(&*store, args).map_err(|e| ApiError::from(depot_client::Error::from(e))))
    })?;
    Ok(promise)
}

#[napi]
impl Depot {
    /// The commits of database `name` its history keeps, newest first: at most `limit`, older than
    /// `before` when given.
    #[napi(
        ts_args_type = "name: string, limit: number, before?: string",
        ts_return_type = "Promise<NativeHistoryEntry[]>"
    )]
    pub fn history<'env>(
        &self,
        env: &'env Env,
        name: Unknown,
        limit: u32,
        before: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, Vec<NativeHistoryEntry>>> {
        let args =
            string_from_js(name, "name").and_then(|n| Ok((n, optional_bookmark(before, "options.before")?)));
        off_thread(env, self, args, move |s, (name, before)| {
            s.history(&name, limit as usize, before).map(|commits| commits.iter().map(entry).collect())
        })
    }

    /// The bookmark of the newest commit of `name` at or before `timeMs` (ms since the epoch).
    #[napi(ts_args_type = "name: string, timeMs: number", ts_return_type = "Promise<string>")]
    pub fn bookmark_for_time<'env>(
        &self,
        env: &'env Env,
        name: Unknown,
        time_ms: f64,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let args = string_from_js(name, "name").and_then(|n| match time_ms.is_finite() && time_ms >= 0.0 {
            true => Ok(n),
            false => Err(ApiError::invalid_argument("time must be a Date or a number of ms since the epoch")),
        });
        off_thread(env, self, args, move |s, name| s.txid_at_time(&name, time_ms as u64).map(bookmark))
    }

    /// Makes database `name` what it was at `bookmark`, as a new commit that fences its writer;
    /// answers the bookmark of the state just before (restoring to it undoes the restore).
    #[napi(
        ts_args_type = "name: string, bookmark: string, generation?: number",
        ts_return_type = "Promise<string>"
    )]
    pub fn restore<'env>(
        &self,
        env: &'env Env,
        name: Unknown,
        at: Unknown,
        generation: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let args = string_from_js(name, "name").and_then(|n| {
            let at = txid_of(&string_from_js(at, "bookmark")?, "bookmark")?;
            Ok((n, at, generation_from_js(generation)?))
        });
        off_thread(env, self, args, move |s, (name, at, generation)| {
            depot_client::history::restore(s, &name, at, generation).map(|r| bookmark(r.previous))
        })
    }

    /// The names of the databases in the depot, sorted.
    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn databases<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Vec<String>>> {
        off_thread(env, self, Ok(()), |s, ()| s.databases())
    }

    /// Creates database `target` as `source` was at `at` (default: now), sharing its pages.
    #[napi(ts_args_type = "source: string, target: string, at?: string", ts_return_type = "Promise<void>")]
    pub fn fork<'env>(
        &self,
        env: &'env Env,
        source: Unknown,
        target: Unknown,
        at: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let args = string_from_js(source, "source")
            .and_then(|s| Ok((s, string_from_js(target, "target")?, optional_bookmark(at, "options.at")?)));
        off_thread(env, self, args, move |s, (source, target, at)| {
            depot_client::history::fork(s, &source, &target, at).map(drop)
        })
    }
}

fn entry(c: &CommitInfo) -> NativeHistoryEntry {
    NativeHistoryEntry {
        bookmark: bookmark(c.txid),
        time_ms: c.time_ms as f64,
        pages: c.pages,
        bytes: c.bytes() as f64,
    }
}
