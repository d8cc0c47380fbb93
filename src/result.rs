//! The objects that the promises resolve with, and the conversion of result values.
//!
//! Conversion happens in two steps. On the worker thread (in the reply callback) results are
//! [`Packed`] according to the database's [`IntMode`]; that is where an unsafe integer under
//! `'number'` turns into `ERR_INTEGER_OVERFLOW`, so the promise rejects instead of resolving with a
//! rounded number. On the JS thread napi then turns the packed data into a few JavaScript values
//! without further decisions, and index.js shapes them.

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
}

/// One item of a packed reply: a count that frames the results, a column name, or a value.
enum Item {
    /// A `number`: a count, a REAL, or a safe INTEGER under `intMode: 'number'`.
    Num(f64),
    /// `null`.
    Null,
    /// A `string`: a column name, TEXT, or an INTEGER under `intMode: 'string'`.
    Text(String),
    /// A `Buffer` (BLOB).
    Blob(Vec<u8>),
    /// A `bigint` (INTEGER under `intMode: 'bigint'`).
    BigInt(i64),
}

/// Results packed for the trip to JavaScript, made on the worker thread.
///
/// Every JavaScript value made through napi costs a call, and every array element set through it
/// a property store through V8's slow path: a result of one row of three columns took ~25 such
/// calls as nested arrays. Packed, everything is one flat array of values read in order, and
/// index.js rebuilds rows and result objects in plain JavaScript, which V8 compiles to inline
/// allocations. A large reply sends its numbers in one `Float64Array` instead (first element),
/// leaving holes in the flat array where they go, so a number costs no napi call at all.
///
/// The order (index.js reads it): for `execute`/`executeBatch`, the statement count, then per
/// statement its columns (`n` then `n` names; or `-(k + 1)` for the same names as the `k`-th list
/// sent in this reply), its row count, its changes, its values row by row, and its
/// `lastInsertRowId`; for `cursorNext`, the row count, then the values.
#[derive(Default)]
pub struct Packed {
    items: Vec<Item>,
    /// Where the column lists sent so far in this reply are in `items` (a batch repeats them).
    lists: Vec<(usize, usize)>,
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
        packed.count(results.len());
        for result in results {
            packed.columns(result.columns);
            packed.count(result.rows.len());
            packed.items.push(Item::Num(result.changes as f64));
            for row in result.rows {
                for value in row {
                    packed.value(value)?;
                }
            }
            packed.rowid(result.last_insert_rowid);
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
        packed.count(rows.len());
        for value in rows.into_iter().flatten() {
            packed.value(value)?;
        }
        Ok(packed)
    }

    fn count(&mut self, n: usize) {
        self.items.push(Item::Num(n as f64));
    }

    /// The names, or a reference to the same list sent earlier in this reply.
    fn columns(&mut self, columns: Vec<String>) {
        let sent = |&(start, len): &(usize, usize)| {
            len == columns.len()
                && self.items[start..start + len]
                    .iter()
                    .zip(&columns)
                    .all(|(item, name)| matches!(item, Item::Text(t) if t == name))
        };
        if let Some(k) = self.lists.iter().position(sent) {
            self.items.push(Item::Num(-(k as f64) - 1.0));
            return;
        }
        self.count(columns.len());
        self.lists.push((self.items.len(), columns.len()));
        self.items.extend(columns.into_iter().map(Item::Text));
    }

    /// A statement's `lastInsertRowId`: like an INTEGER value, except that under `'number'` a rowid
    /// beyond ±(2^53 - 1) comes back as a `bigint` rather than failing a call whose row is already
    /// in (every rowid of the 64-bit range comes back exactly).
    fn rowid(&mut self, rowid: Option<i64>) {
        self.items.push(match (rowid, self.mode) {
            (None, _) => Item::Null,
            (Some(id), IntMode::Number) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&id) => {
                Item::Num(id as f64)
            }
            (Some(id), IntMode::Number | IntMode::BigInt) => Item::BigInt(id),
            (Some(id), IntMode::String) => Item::Text(id.to_string()),
        });
    }

    fn value(&mut self, value: Value) -> Result<(), ApiError> {
        let item = match value {
            Value::Null => Item::Null,
            Value::Real(real) => Item::Num(real),
            Value::Integer(integer) => match self.mode {
                IntMode::Number if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&integer) => {
                    Item::Num(integer as f64)
                }
                IntMode::Number => return Err(unsafe_integer(integer)),
                IntMode::BigInt => Item::BigInt(integer),
                IntMode::String => Item::Text(integer.to_string()),
            },
            Value::Text(text) => Item::Text(text),
            Value::Blob(bytes) => Item::Blob(bytes),
        };
        self.items.push(item);
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

/// Up to this many items cross as one plain array; past it, numbers go in a `Float64Array`
/// (which costs a malloc'd backing store and a sweep by V8's collector, more than setting a few
/// elements).
const SMALL: usize = 64;

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

/// A `Float64Array` holding a copy of `nums`.
unsafe fn float64_array(env: sys::napi_env, nums: &[f64]) -> napi::Result<sys::napi_value> {
    let bytes = std::mem::size_of_val(nums);
    let mut data = std::ptr::null_mut();
    let mut buffer = std::ptr::null_mut();
    napi::check_status!(sys::napi_create_arraybuffer(env, bytes, &mut data, &mut buffer))?;
    std::ptr::copy_nonoverlapping(nums.as_ptr() as *const u8, data as *mut u8, bytes);
    let mut array = std::ptr::null_mut();
    napi::check_status!(sys::napi_create_typedarray(
        env,
        sys::TypedarrayType::float64_array,
        nums.len(),
        buffer,
        0,
        &mut array
    ))?;
    Ok(array)
}

thread_local! {
    /// Per Node environment on this thread: index.js's `(...items) => items` (see
    /// [`set_array_maker`]).
    static ARRAY_MAKERS: std::cell::RefCell<Vec<(usize, sys::napi_ref)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Registers index.js's `(...items) => items`: a small packed answer is made by one call of it
/// with the items as arguments, where setting them one by one costs a napi call and a V8 element
/// store each.
#[napi]
pub fn set_array_maker(
    env: napi::Env,
    maker: napi::bindgen_prelude::Function<'_, (), ()>,
) -> napi::Result<()> {
    use napi::JsValue;
    let mut reference = std::ptr::null_mut();
    // SAFETY: on the JS thread of `env`; `maker` is a live function of it.
    napi::check_status!(unsafe { sys::napi_create_reference(env.raw(), maker.raw(), 1, &mut reference) })?;
    let replaced = ARRAY_MAKERS.with(|m| {
        let mut m = m.borrow_mut();
        let old = m.iter().position(|(e, _)| *e == env.raw() as usize).map(|i| m.remove(i).1);
        m.push((env.raw() as usize, reference));
        old
    });
    if let Some(old) = replaced {
        // index.js evaluated again in this environment: the earlier maker is let go.
        // SAFETY: a reference made by this function in this environment, deleted once.
        napi::check_status!(unsafe { sys::napi_delete_reference(env.raw(), old) })?;
    } else {
        // An environment that ends (a worker thread) takes its entry along: a later one at the same
        // address must not find this reference.
        // SAFETY: on the JS thread of `env`; the hook gets the env pointer back as its argument.
        napi::check_status!(unsafe {
            sys::napi_add_env_cleanup_hook(
                env.raw(),
                Some(array_maker_gone),
                env.raw() as *mut std::ffi::c_void,
            )
        })?;
    }
    Ok(())
}

unsafe extern "C" fn array_maker_gone(env: *mut std::ffi::c_void) {
    let _ = ARRAY_MAKERS.try_with(|m| {
        if let Ok(mut m) = m.try_borrow_mut() {
            m.retain(|(e, _)| *e != env as usize);
        }
    });
}

/// The array of `values` made by the registered maker, if `env` has one.
unsafe fn made_array(
    env: sys::napi_env,
    values: &[sys::napi_value],
) -> napi::Result<Option<sys::napi_value>> {
    let Some(reference) =
        ARRAY_MAKERS.with(|m| m.borrow().iter().find(|(e, _)| *e == env as usize).map(|(_, r)| *r))
    else {
        return Ok(None);
    };
    let (mut maker, mut undefined, mut array) =
        (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
    napi::check_status!(sys::napi_get_reference_value(env, reference, &mut maker))?;
    napi::check_status!(sys::napi_get_undefined(env, &mut undefined))?;
    napi::check_status!(sys::napi_call_function(
        env,
        undefined,
        maker,
        values.len(),
        values.as_ptr(),
        &mut array
    ))?;
    Ok(Some(array))
}

/// The JavaScript value of one item.
unsafe fn item_value(env: sys::napi_env, item: Item) -> napi::Result<sys::napi_value> {
    match item {
        Item::Num(n) => f64::to_napi_value(env, n),
        Item::Null => Null::to_napi_value(env, Null),
        Item::Text(text) => js_string(env, &text),
        Item::Blob(bytes) => Buffer::to_napi_value(env, Buffer::from(bytes)),
        Item::BigInt(integer) => BigInt::to_napi_value(env, BigInt::from(integer)),
    }
}

impl ToNapiValue for Packed {
    /// Small: `[...items]`. Large: `[Float64Array of the numbers, ...items]`, with holes where the
    /// numbers go.
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        let items = value.items;
        if items.len() <= SMALL {
            let mut values = [std::ptr::null_mut(); SMALL];
            let n = items.len();
            for (slot, item) in values.iter_mut().zip(items) {
                *slot = item_value(env, item)?;
            }
            if let Some(array) = made_array(env, &values[..n])? {
                return Ok(array);
            }
            let mut array = std::ptr::null_mut();
            napi::check_status!(sys::napi_create_array_with_length(env, n, &mut array))?;
            for (i, value) in values[..n].iter().enumerate() {
                napi::check_status!(sys::napi_set_element(env, array, i as u32, *value))?;
            }
            return Ok(array);
        }
        // Large: the numbers travel in one Float64Array (first element), holes where they go.
        let mut array = std::ptr::null_mut();
        napi::check_status!(sys::napi_create_array_with_length(env, items.len() + 1, &mut array))?;
        let nums: Vec<f64> =
            items.iter().filter_map(|i| if let Item::Num(n) = i { Some(*n) } else { None }).collect();
        napi::check_status!(sys::napi_set_element(env, array, 0, float64_array(env, &nums)?))?;
        for (at, item) in (1u32..).zip(items) {
            if !matches!(item, Item::Num(_)) {
                napi::check_status!(sys::napi_set_element(env, array, at, item_value(env, item)?))?;
            }
        }
        Ok(array)
    }
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
    /// The next rows, packed (see [`Packed`]); index.js unpacks them with the cursor's columns.
    #[napi(ts_type = "Array<unknown>")]
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

    /// The items as text, for comparison.
    fn shown(packed: &Packed) -> Vec<String> {
        packed
            .items
            .iter()
            .map(|item| match item {
                Item::Num(n) => format!("{n}"),
                Item::Null => "null".into(),
                Item::Text(t) => format!("'{t}'"),
                Item::Blob(b) => format!("blob{b:?}"),
                Item::BigInt(i) => format!("{i}n"),
            })
            .collect()
    }

    #[test]
    fn number_mode_rejects_unsafe_integers_instead_of_rounding() {
        let safe = Packed::statement(result(vec![vec![Value::Integer(MAX_SAFE_INTEGER)]]), IntMode::Number);
        assert_eq!(shown(&safe.unwrap()), ["1", "1", "'a'", "1", "0", "9007199254740991", "null"]);
        for unsafe_integer in [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1] {
            let rows = vec![vec![Value::Integer(unsafe_integer)]];
            let error = Packed::rows(rows, IntMode::Number).err().unwrap();
            assert_eq!(error.code.as_str(), "ERR_INTEGER_OVERFLOW");
        }
    }

    #[test]
    fn bigint_and_string_modes_keep_every_integer_exact() {
        let packed = Packed::rows(vec![vec![Value::Integer(i64::MIN)]], IntMode::BigInt).unwrap();
        assert_eq!(shown(&packed), ["1", "-9223372036854775808n"]);
        let packed = Packed::rows(vec![vec![Value::Integer(i64::MAX)]], IntMode::String).unwrap();
        assert_eq!(shown(&packed), ["1", "'9223372036854775807'"]);
    }

    #[test]
    fn a_batch_sends_each_distinct_column_list_once() {
        let rows = vec![vec![Value::Null, Value::Real(0.5), Value::Text("x".into()), Value::Blob(vec![1])]];
        let mut other = result(vec![]);
        other.columns = vec!["b".into(), "c".into()];
        let packed =
            Packed::statements(vec![result(rows.clone()), other, result(rows)], IntMode::Number).unwrap();
        let row = ["null", "0.5", "'x'", "blob[1]"];
        let expected: Vec<&str> = [
            &["3", "1", "'a'", "1", "0"][..],
            &row,
            &["null", "2", "'b'", "'c'", "0", "0", "null", "-1", "1", "0"],
            &row,
            &["null"],
        ]
        .concat();
        assert_eq!(shown(&packed), expected);
    }

    #[test]
    fn int_mode_parses_only_the_three_names() {
        assert_eq!(IntMode::parse("bigint"), Ok(IntMode::BigInt));
        assert_eq!(IntMode::parse("Number").unwrap_err().code.as_str(), "ERR_INVALID_ARGUMENT");
    }
}
