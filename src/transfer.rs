//! Export and import of a depot's databases as plain SQLite database files. The work is
//! depot-client's (`export_database`, `import_database`); this module parses the arguments and
//! runs it off the JS thread, as the history calls do.

use std::path::PathBuf;

use napi::bindgen_prelude::{PromiseRaw, Unknown};
use napi::Env;
use napi_derive::napi;

use crate::depot::Depot;
use crate::error::ApiError;
use crate::history::{bookmark, off_thread, optional_bookmark};
use crate::value::string_from_js;

/// A file path argument: a non-empty string.
fn path_from_js(value: Unknown, what: &str) -> Result<PathBuf, ApiError> {
    let path = string_from_js(value, what)?;
    match path.is_empty() {
        true => Err(ApiError::invalid_argument(format!("{what} must not be empty"))),
        false => Ok(PathBuf::from(path)),
    }
}

/// An optional boolean option: absent (false) or a boolean.
fn flag_from_js(value: Option<Unknown>, what: &str) -> Result<bool, ApiError> {
    let Some(value) = value else { return Ok(false) };
    match value.get_type()? {
        napi::ValueType::Undefined | napi::ValueType::Null => Ok(false),
        // SAFETY: checked to be a boolean.
        napi::ValueType::Boolean => Ok(unsafe { value.cast::<bool>() }?),
        _ => Err(ApiError::invalid_argument(format!("{what} must be a boolean"))),
    }
}

#[napi]
impl Depot {
    /// Writes database `name` as it was at `at` (default: its newest commit) to `file`, a plain
    /// SQLite database file; resolves with the bookmark of that point. An existing `file` is
    /// refused unless `overwrite`.
    #[napi(
        ts_args_type = "name: string, file: string, at?: string, overwrite?: boolean",
        ts_return_type = "Promise<string>"
    )]
    pub fn export_database<'env>(
        &self,
        env: &'env Env,
        name: Unknown,
        file: Unknown,
        at: Option<Unknown>,
        overwrite: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let args = string_from_js(name, "name").and_then(|name| {
            let file = path_from_js(file, "file")?;
            Ok((
                name,
                file,
                optional_bookmark(at, "options.at")?,
                flag_from_js(overwrite, "options.overwrite")?,
            ))
        });
        off_thread(env, self, args, move |s, (name, file, at, overwrite)| {
            depot_client::export_database(s, &name, &file, at, overwrite).map(|e| bookmark(e.txid))
        })
    }

    /// Makes the SQLite database `file` the content of database `name`, as one commit that fences
    /// its writer; resolves with the bookmark of the state just before (restoring to it undoes the
    /// import). A database that has a commit already is refused unless `replace`.
    #[napi(
        ts_args_type = "file: string, name: string, replace?: boolean",
        ts_return_type = "Promise<string>"
    )]
    pub fn import_database<'env>(
        &self,
        env: &'env Env,
        file: Unknown,
        name: Unknown,
        replace: Option<Unknown>,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let args = path_from_js(file, "file").and_then(|file| {
            Ok((file, string_from_js(name, "name")?, flag_from_js(replace, "options.replace")?))
        });
        off_thread(env, self, args, move |s, (file, name, replace)| {
            depot_client::import_database(s, &file, &name, replace).map(|i| bookmark(i.previous))
        })
    }
}
