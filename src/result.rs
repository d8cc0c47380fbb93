//! The objects that the promises resolve with, and the conversion of result values.
//!
//! Conversion happens in two steps. On the worker thread (in the reply callback) each core
//! [`Value`] becomes a [`JsValueOut`] according to the database's [`IntMode`]; that is where an
//! unsafe integer under `'number'` turns into `ERR_INTEGER_OVERFLOW`, so the promise rejects instead
//! of resolving with a rounded number. On the JS thread napi then turns the plain data into
//! JavaScript values without further decisions.

use depot_client::Value;
use napi::bindgen_prelude::{BigInt, Buffer, Null, ToNapiValue, TypeName};
use napi::{sys, ValueType};
use napi_derive::napi;

use crate::error::ApiError;

/// Largest integer that a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// How INTEGER results reach JavaScript (the `intMode` option of `openDatabase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum IntMode {
    /// `number`; an integer outside ±(2^53 - 1) rejects with `ERR_INTEGER_OVERFLOW`.
    #[default]
    Number,
    /// Every INTEGER as a `bigint`.
    BigInt,
    /// Every INTEGER as a decimal `string`.
    String,
}

impl IntMode {
    /// Parses the option's string form.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        match text {
            "number" => Ok(Self::Number),
            "bigint" => Ok(Self::BigInt),
            "string" => Ok(Self::String),
            other => Err(ApiError::invalid_argument(format!(
                "intMode must be 'number', 'bigint' or 'string', got '{other}'"
            ))),
        }
    }

    /// Converts one integer according to the mode.
    fn integer(self, integer: i64) -> Result<JsValueOut, ApiError> {
        match self {
            Self::Number if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&integer) => {
                Ok(JsValueOut::Number(integer as f64))
            }
            Self::Number => Err(ApiError::integer_overflow(format!(
                "integer {integer} is not a safe JavaScript number; open the database with intMode 'bigint' or 'string'"
            ))),
            Self::BigInt => Ok(JsValueOut::BigInt(integer)),
            Self::String => Ok(JsValueOut::String(integer.to_string())),
        }
    }
}

/// One result value, decided and ready to become a JavaScript value.
#[derive(Debug, Clone, PartialEq)]
pub enum JsValueOut {
    /// `null`.
    Null,
    /// A `number` (REAL, or a safe INTEGER).
    Number(f64),
    /// A `bigint` (INTEGER under `intMode: 'bigint'`).
    BigInt(i64),
    /// A `string` (TEXT, or INTEGER under `intMode: 'string'`).
    String(String),
    /// A `Buffer` (BLOB).
    Buffer(Vec<u8>),
}

impl JsValueOut {
    /// Converts a core value under `mode`.
    pub(crate) fn from_value(value: Value, mode: IntMode) -> Result<Self, ApiError> {
        match value {
            Value::Null => Ok(Self::Null),
            Value::Integer(integer) => mode.integer(integer),
            Value::Real(real) => Ok(Self::Number(real)),
            Value::Text(text) => Ok(Self::String(text)),
            Value::Blob(bytes) => Ok(Self::Buffer(bytes)),
        }
    }
}

impl TypeName for JsValueOut {
    fn type_name() -> &'static str {
        "null | number | bigint | string | Buffer"
    }

    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ToNapiValue for JsValueOut {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        // SAFETY: forwarded from our caller, who runs on the JS thread owning `env`.
        unsafe {
            match value {
                Self::Null => Null::to_napi_value(env, Null),
                Self::Number(number) => f64::to_napi_value(env, number),
                Self::BigInt(integer) => BigInt::to_napi_value(env, BigInt::from(integer)),
                Self::String(text) => String::to_napi_value(env, text),
                Self::Buffer(bytes) => Buffer::to_napi_value(env, Buffer::from(bytes)),
            }
        }
    }
}

/// One statement's result, converted for JavaScript; it crosses as a [`RawResult`] array.
pub struct ExecuteResult {
    /// Column names, in order; empty for statements that return no rows.
    pub columns: Vec<String>,
    /// One array per row, its values in the order of `columns`. INTEGER follows `intMode`, REAL is a
    /// number, TEXT a string, BLOB a `Buffer`, NULL `null`.
    pub rows: Vec<Vec<JsValueOut>>,
    /// Rows inserted, updated or deleted by the statement (0 for queries).
    pub changes: i64,
    /// Rowid of the last inserted row when the statement inserted one, else `null`.
    pub last_insert_row_id: JsValueOut,
}

/// What `cursorOpen` resolves with.
#[napi(object, object_from_js = false)]
pub struct CursorInfo {
    /// The cursor's id, for `cursorNext` and `cursorClose`.
    pub id: f64,
    /// Column names, in order.
    pub columns: Vec<String>,
}

/// What `cursorNext` resolves with.
#[napi(object, object_from_js = false)]
pub struct CursorChunk {
    /// The next rows, as arrays in column order.
    #[napi(ts_type = "Array<Array<null | number | bigint | string | Buffer>>")]
    pub rows: Vec<Vec<JsValueOut>>,
    /// True once the statement is exhausted (the cursor is then closed).
    pub done: bool,
}

/// The wire form of a statement's result: the array `[columns, rows, changes, lastInsertRowId]`.
/// Array elements cost less to set than named properties; index.js turns it into the documented
/// object (`ExecuteResult`, `QueryResult` or `RunResult`), which V8 builds far faster than napi.
pub struct RawResult(pub ExecuteResult);

impl TypeName for RawResult {
    fn type_name() -> &'static str {
        "[Array<string>, Array<Array<null | number | bigint | string | Buffer>>, number, number | bigint | string | null]"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for RawResult {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        let ExecuteResult { columns, rows, changes, last_insert_row_id } = value.0;
        // SAFETY: forwarded from our caller, who runs on the JS thread owning `env`.
        unsafe {
            let mut array = std::ptr::null_mut();
            napi::check_status!(sys::napi_create_array_with_length(env, 4, &mut array))?;
            let parts = [
                Vec::<String>::to_napi_value(env, columns)?,
                Vec::<Vec<JsValueOut>>::to_napi_value(env, rows)?,
                f64::to_napi_value(env, changes as f64)?,
                JsValueOut::to_napi_value(env, last_insert_row_id)?,
            ];
            for (i, part) in parts.into_iter().enumerate() {
                napi::check_status!(sys::napi_set_element(env, array, i as u32, part))?;
            }
            Ok(array)
        }
    }
}

impl ExecuteResult {
    /// Converts the core's result under `mode` (runs on the worker thread).
    pub(crate) fn convert(result: depot_client::ExecuteResult, mode: IntMode) -> Result<Self, ApiError> {
        let rows = result
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(|value| JsValueOut::from_value(value, mode)).collect())
            .collect::<Result<Vec<Vec<_>>, _>>()?;
        let last_insert_row_id = match result.last_insert_rowid {
            Some(rowid) => mode.integer(rowid)?,
            None => JsValueOut::Null,
        };
        Ok(Self {
            columns: result.columns,
            rows,
            changes: i64::try_from(result.changes).unwrap_or(i64::MAX),
            last_insert_row_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_mode_rejects_unsafe_integers_instead_of_rounding() {
        assert_eq!(
            IntMode::Number.integer(MAX_SAFE_INTEGER),
            Ok(JsValueOut::Number(9_007_199_254_740_991.0))
        );
        let error = IntMode::Number.integer(MAX_SAFE_INTEGER + 1).unwrap_err();
        assert_eq!(error.code, "ERR_INTEGER_OVERFLOW");
        assert!(IntMode::Number.integer(-MAX_SAFE_INTEGER - 1).is_err());
    }

    #[test]
    fn bigint_and_string_modes_keep_every_integer_exact() {
        assert_eq!(IntMode::BigInt.integer(i64::MIN), Ok(JsValueOut::BigInt(i64::MIN)));
        assert_eq!(IntMode::String.integer(i64::MAX), Ok(JsValueOut::String(i64::MAX.to_string())));
        assert_eq!(IntMode::String.integer(1), Ok(JsValueOut::String("1".into())));
    }

    #[test]
    fn int_mode_parses_only_the_three_names() {
        assert_eq!(IntMode::parse("bigint"), Ok(IntMode::BigInt));
        assert_eq!(IntMode::parse("Number").unwrap_err().code, "ERR_INVALID_ARGUMENT");
    }
}
