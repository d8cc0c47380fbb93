//! The objects that the promises resolve with, and the conversion of result values.
//!
//! Conversion happens in two steps. On the worker thread (in the reply callback) results are
//! [`Packed`] according to the database's [`IntMode`]; that is where an unsafe integer under
//! `'number'` turns into `ERR_INTEGER_OVERFLOW`, so the promise rejects instead of resolving with a
//! rounded number. On the JS thread napi then turns the packed data into a few JavaScript values
//! without further decisions, and index.js shapes them.

use depot_client::Value;
use napi::bindgen_prelude::{BigInt, Buffer, ToNapiValue, TypeName};
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
}

/// A result value that is not a number or NULL: it crosses as a JavaScript object or string.
enum Obj {
    /// A `string` (TEXT, or INTEGER under `intMode: 'string'`).
    Text(String),
    /// A `Buffer` (BLOB).
    Blob(Vec<u8>),
    /// A `bigint` (INTEGER under `intMode: 'bigint'`).
    BigInt(i64),
}

/// Value tags of the packed form, one per value (see [`Packed`]).
const TAG_NUMBER: u8 = 0;
const TAG_OBJECT: u8 = 1;
const TAG_NULL: u8 = 2;

/// Results packed for the trip to JavaScript, made on the worker thread.
///
/// Every JavaScript value made through napi costs a call, and every array element set through it
/// costs a property store through V8's slow path: a result of one row of three columns took ~25
/// such calls as nested arrays. Packed, it takes a handful per reply: numbers (and the counts that
/// frame the results) go into one `Float64Array`, a tag per value into one `Uint8Array`, strings,
/// Buffers and bigints into one array, and each distinct column list once. index.js rebuilds rows
/// and result objects in plain JavaScript, which V8 compiles to inline allocations.
///
/// Layout (read in order by index.js): for `execute`/`executeBatch`, `nums` starts with the
/// statement count, then per statement `[column list index, row count, changes]` followed by
/// its values row by row and its `lastInsertRowId`; for `cursorNext`, `nums` starts with the row
/// count, then the values. A value's tag says where it is: next number, next object, or null.
#[derive(Default)]
pub struct Packed {
    nums: Vec<f64>,
    tags: Vec<u8>,
    objs: Vec<Obj>,
    columns: Vec<Vec<String>>,
    mode: IntMode,
}

impl Packed {
    /// Packs statement results under `mode` (runs on the worker thread); an unsafe integer under
    /// `'number'` is `ERR_INTEGER_OVERFLOW` here, before anything reaches JavaScript.
    pub(crate) fn statements(
        results: Vec<depot_client::ExecuteResult>,
        mode: IntMode,
    ) -> Result<Self, ApiError> {
        let mut packed = Packed { mode, ..Packed::default() };
        packed.nums.push(results.len() as f64);
        for result in results {
            let list = packed.column_list(result.columns);
            packed.nums.extend([list as f64, result.rows.len() as f64, result.changes as f64]);
            for row in result.rows {
                for value in row {
                    packed.value(value)?;
                }
            }
            packed.value(result.last_insert_rowid.map_or(Value::Null, Value::Integer))?;
        }
        Ok(packed)
    }

    /// Packs one statement's result.
    pub(crate) fn statement(result: depot_client::ExecuteResult, mode: IntMode) -> Result<Self, ApiError> {
        Self::statements(vec![result], mode)
    }

    /// Packs bare rows (a cursor's chunk).
    pub(crate) fn rows(rows: Vec<Vec<Value>>, mode: IntMode) -> Result<Self, ApiError> {
        let mut packed = Packed { mode, ..Packed::default() };
        packed.nums.push(rows.len() as f64);
        for value in rows.into_iter().flatten() {
            packed.value(value)?;
        }
        Ok(packed)
    }

    /// The index of `columns` in the list of distinct column lists (a batch repeats them).
    fn column_list(&mut self, columns: Vec<String>) -> usize {
        match self.columns.iter().position(|known| *known == columns) {
            Some(i) => i,
            None => {
                self.columns.push(columns);
                self.columns.len() - 1
            }
        }
    }

    fn value(&mut self, value: Value) -> Result<(), ApiError> {
        let tag = match value {
            Value::Null => TAG_NULL,
            Value::Real(real) => {
                self.nums.push(real);
                TAG_NUMBER
            }
            Value::Integer(integer) => match self.mode {
                IntMode::Number if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&integer) => {
                    self.nums.push(integer as f64);
                    TAG_NUMBER
                }
                IntMode::Number => return Err(unsafe_integer(integer)),
                IntMode::BigInt => {
                    self.objs.push(Obj::BigInt(integer));
                    TAG_OBJECT
                }
                IntMode::String => {
                    self.objs.push(Obj::Text(integer.to_string()));
                    TAG_OBJECT
                }
            },
            Value::Text(text) => {
                self.objs.push(Obj::Text(text));
                TAG_OBJECT
            }
            Value::Blob(bytes) => {
                self.objs.push(Obj::Blob(bytes));
                TAG_OBJECT
            }
        };
        self.tags.push(tag);
        Ok(())
    }
}

fn unsafe_integer(integer: i64) -> ApiError {
    ApiError::integer_overflow(format!(
        "integer {integer} is not a safe JavaScript number; open the database with intMode 'bigint' or 'string'"
    ))
}

impl TypeName for Packed {
    fn type_name() -> &'static str {
        "PackedResult"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

/// A new typed array of `kind` holding a copy of `bytes`.
unsafe fn typed_array(
    env: sys::napi_env,
    kind: sys::napi_typedarray_type,
    bytes: &[u8],
    len: usize,
) -> napi::Result<sys::napi_value> {
    let mut data = std::ptr::null_mut();
    let mut buffer = std::ptr::null_mut();
    napi::check_status!(sys::napi_create_arraybuffer(env, bytes.len(), &mut data, &mut buffer))?;
    if !bytes.is_empty() {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), data as *mut u8, bytes.len());
    }
    let mut array = std::ptr::null_mut();
    napi::check_status!(sys::napi_create_typedarray(env, kind, len, buffer, 0, &mut array))?;
    Ok(array)
}

/// A JavaScript string; ASCII (the common case) skips V8's UTF-8 decoder.
unsafe fn js_string(env: sys::napi_env, text: &str) -> napi::Result<sys::napi_value> {
    let mut value = std::ptr::null_mut();
    let (ptr, len) = (text.as_ptr() as *const _, text.len() as isize);
    if text.is_ascii() {
        napi::check_status!(sys::napi_create_string_latin1(env, ptr, len, &mut value))?;
    } else {
        napi::check_status!(sys::napi_create_string_utf8(env, ptr, len, &mut value))?;
    }
    Ok(value)
}

/// A JavaScript array of `items` made by `make`.
unsafe fn js_array<T>(
    env: sys::napi_env,
    items: impl ExactSizeIterator<Item = T>,
    mut make: impl FnMut(T) -> napi::Result<sys::napi_value>,
) -> napi::Result<sys::napi_value> {
    let mut array = std::ptr::null_mut();
    napi::check_status!(sys::napi_create_array_with_length(env, items.len(), &mut array))?;
    for (i, item) in items.enumerate() {
        napi::check_status!(sys::napi_set_element(env, array, i as u32, make(item)?))?;
    }
    Ok(array)
}

impl ToNapiValue for Packed {
    /// `[nums: Float64Array, tags: Uint8Array, objs: Array, columnLists: Array<Array<string>>]`
    /// (small results: `nums` and `tags` as plain arrays, read the same way).
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        let Packed { nums, tags, objs, columns, .. } = value;
        // SAFETY: forwarded from our caller, who runs on the JS thread owning `env`; the byte views
        // cover exactly the vectors' initialized elements.
        unsafe {
            let (nums, tags) = if nums.len() + tags.len() <= SMALL {
                (
                    js_array(env, nums.into_iter(), |n| f64::to_napi_value(env, n))?,
                    js_array(env, tags.into_iter(), |t| u32::to_napi_value(env, t as u32))?,
                )
            } else {
                let num_bytes = std::slice::from_raw_parts(nums.as_ptr() as *const u8, nums.len() * 8);
                (
                    typed_array(env, sys::TypedarrayType::float64_array, num_bytes, nums.len())?,
                    typed_array(env, sys::TypedarrayType::uint8_array, &tags, tags.len())?,
                )
            };
            let parts = [
                nums,
                tags,
                js_array(env, objs.into_iter(), |obj| match obj {
                    Obj::Text(text) => js_string(env, &text),
                    Obj::Blob(bytes) => Buffer::to_napi_value(env, Buffer::from(bytes)),
                    Obj::BigInt(integer) => BigInt::to_napi_value(env, BigInt::from(integer)),
                })?,
                js_array(env, columns.into_iter(), |list| {
                    js_array(env, list.iter(), |name| js_string(env, name))
                })?,
            ];
            js_array(env, parts.into_iter(), Ok)
        }
    }
}

/// Up to this many numbers and tags cross as plain arrays: an `ArrayBuffer` costs a malloc'd
/// backing store and a sweep by V8's collector, more than setting a few elements.
const SMALL: usize = 48;

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
    /// The next rows, packed (see [`Packed`]); index.js unpacks them with the cursor's columns.
    #[napi(
        ts_type = "[Float64Array | Array<number>, Uint8Array | Array<number>, Array<string | Buffer | bigint>, Array<Array<string>>]"
    )]
    pub rows: Packed,
    /// True once the statement is exhausted (the cursor is then closed).
    pub done: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(rows: Vec<Vec<Value>>) -> depot_client::ExecuteResult {
        depot_client::ExecuteResult { columns: vec!["a".into()], rows, changes: 0, last_insert_rowid: None }
    }

    #[test]
    fn number_mode_rejects_unsafe_integers_instead_of_rounding() {
        let safe = Packed::statement(result(vec![vec![Value::Integer(MAX_SAFE_INTEGER)]]), IntMode::Number);
        assert_eq!(safe.unwrap().nums, [1.0, 0.0, 1.0, 0.0, 9_007_199_254_740_991.0]);
        for unsafe_integer in [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1] {
            let rows = vec![vec![Value::Integer(unsafe_integer)]];
            let error = Packed::rows(rows, IntMode::Number).err().unwrap();
            assert_eq!(error.code, "ERR_INTEGER_OVERFLOW");
        }
    }

    #[test]
    fn bigint_and_string_modes_keep_every_integer_exact() {
        let packed = Packed::rows(vec![vec![Value::Integer(i64::MIN)]], IntMode::BigInt).unwrap();
        assert!(matches!(packed.objs[..], [Obj::BigInt(i64::MIN)]));
        let packed = Packed::rows(vec![vec![Value::Integer(i64::MAX)]], IntMode::String).unwrap();
        assert!(matches!(&packed.objs[..], [Obj::Text(t)] if *t == i64::MAX.to_string()));
    }

    #[test]
    fn a_batch_sends_each_distinct_column_list_once_and_tags_every_value() {
        let rows = vec![vec![Value::Null, Value::Real(0.5), Value::Text("x".into()), Value::Blob(vec![1])]];
        let packed =
            Packed::statements(vec![result(rows.clone()), result(vec![]), result(rows)], IntMode::Number)
                .unwrap();
        assert_eq!(packed.columns, [vec!["a".to_string()]]);
        let row_tags = [TAG_NULL, TAG_NUMBER, TAG_OBJECT, TAG_OBJECT];
        let expected: Vec<u8> =
            [&row_tags[..], &[TAG_NULL], &[TAG_NULL], &row_tags[..], &[TAG_NULL]].concat();
        assert_eq!(packed.tags, expected);
        assert_eq!(packed.nums, [3.0, 0.0, 1.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.5]);
    }

    #[test]
    fn int_mode_parses_only_the_three_names() {
        assert_eq!(IntMode::parse("bigint"), Ok(IntMode::BigInt));
        assert_eq!(IntMode::parse("Number").unwrap_err().code, "ERR_INVALID_ARGUMENT");
    }
}
