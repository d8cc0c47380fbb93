//! JavaScript values and parameters into the core's [`Value`] and [`Params`].
//!
//! The mapping is deliberately small and lossless: `null`/`undefined` -> NULL, a number -> INTEGER
//! when it holds an integer (else REAL), a bigint -> INTEGER (or `ERR_INTEGER_OVERFLOW` outside
//! i64), a string -> TEXT, a boolean -> 1/0, a `Buffer`/`Uint8Array` -> BLOB. Anything else is
//! `ERR_INVALID_ARGUMENT` naming the parameter, rather than a silent `String(value)`.

use depot_client::{Params, Statement, Value};
use napi::bindgen_prelude::{BigInt, FromNapiValue, JsObjectValue, Object, Uint8ArraySlice, Unknown};
use napi::{JsValue, ValueType};

use crate::error::ApiError;

/// 2^63 as an f64: numbers at or beyond it (or below -2^63) do not fit an i64.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// Reads a required string argument (`what` names it in the error).
pub(crate) fn string_from_js(value: Unknown, what: &str) -> Result<String, ApiError> {
    match value.get_type()? {
        // SAFETY: the type was checked just above.
        ValueType::String => Ok(unsafe { value.cast::<String>() }?),
        other => {
            Err(ApiError::invalid_argument(format!("{what} must be a string, got {}", type_name(other))))
        }
    }
}

/// Reads the parameters of one statement: absent, an array (positional) or a plain object (named).
pub(crate) fn params_from_js(value: Option<Unknown>) -> Result<Params, ApiError> {
    let Some(value) = value else { return Ok(Params::None) };
    match value.get_type()? {
        ValueType::Undefined | ValueType::Null => Ok(Params::None),
        ValueType::Object if value.is_array()? => {
            // SAFETY: checked to be an object.
            let array = unsafe { value.cast::<Object>() }?;
            let len = array.get_array_length()?;
            let mut values = Vec::with_capacity(len as usize);
            for index in 0..len {
                let element: Unknown = array.get_element(index)?;
                values.push(value_from_js(element, || format!("parameter {}", index + 1))?);
            }
            Ok(Params::Positional(values))
        }
        ValueType::Object if !value.is_typedarray()? && !value.is_arraybuffer()? => {
            // SAFETY: checked to be an object.
            let object = unsafe { value.cast::<Object>() }?;
            let mut named = Vec::new();
            for key in Object::keys(&object)? {
                let element: Unknown = object.get_named_property(&key)?;
                let converted = value_from_js(element, || format!("parameter '{key}'"))?;
                named.push((key, converted));
            }
            Ok(Params::Named(named))
        }
        _ => Err(ApiError::invalid_argument(
            "params must be an array (positional) or an object (named parameters)",
        )),
    }
}

/// Reads the statements of `executeBatch`: an array of `{ sql, params? }`.
pub(crate) fn statements_from_js(value: Unknown) -> Result<Vec<Statement>, ApiError> {
    if value.get_type()? != ValueType::Object || !value.is_array()? {
        return Err(ApiError::invalid_argument("statements must be an array of { sql, params }"));
    }
    // SAFETY: checked to be an array.
    let array = unsafe { value.cast::<Object>() }?;
    let len = array.get_array_length()?;
    let mut statements = Vec::with_capacity(len as usize);
    for index in 0..len {
        // Names are formatted only for an error message: this loop is the batch's hot path.
        let what = || format!("statements[{index}]");
        let element: Unknown = array.get_element(index)?;
        if element.get_type()? != ValueType::Object {
            return Err(ApiError::invalid_argument(format!(
                "{} must be an object {{ sql, params }}",
                what()
            )));
        }
        // SAFETY: checked to be an object.
        let object = unsafe { element.cast::<Object>() }?;
        let sql: Unknown = object.get_named_property("sql")?;
        let sql = match sql.get_type()? {
            // SAFETY: checked to be a string.
            ValueType::String => unsafe { sql.cast::<String>() }?,
            _ => string_from_js(sql, &format!("{}.sql", what()))?,
        };
        let params = params_from_js(Some(object.get_named_property("params")?))
            .map_err(|e| ApiError::new(e.code.clone(), format!("{}: {}", what(), e.message)))?;
        statements.push(Statement { sql, params });
    }
    Ok(statements)
}

/// Converts one bound value; `name` says which parameter it is (called only for an error message).
pub(crate) fn value_from_js(value: Unknown, name: impl Fn() -> String) -> Result<Value, ApiError> {
    let value_type = value.get_type()?;
    // SAFETY (every `cast` below): the JavaScript type was checked by the match arm.
    match value_type {
        ValueType::Undefined | ValueType::Null => Ok(Value::Null),
        ValueType::Boolean => Ok(Value::Integer(i64::from(unsafe { value.cast::<bool>() }?))),
        ValueType::Number => Ok(number_to_value(unsafe { value.cast::<f64>() }?)),
        ValueType::String => Ok(Value::Text(unsafe { value.cast::<String>() }?)),
        ValueType::BigInt => {
            let big = unsafe { value.cast::<BigInt>() }?;
            bigint_to_i64(&big).map(Value::Integer).ok_or_else(|| {
                ApiError::integer_overflow(format!("{}: bigint is outside the 64-bit signed range", name()))
            })
        }
        ValueType::Object if value.is_typedarray()? => {
            // SAFETY: `value` is a live typed array; the slice is copied before returning.
            match unsafe { Uint8ArraySlice::from_napi_value(value.value().env, value.raw()) } {
                Ok(bytes) => Ok(Value::Blob(bytes.to_vec())),
                Err(_) => Err(ApiError::invalid_argument(format!(
                    "{}: only Buffer and Uint8Array can be bound as a BLOB",
                    name()
                ))),
            }
        }
        other => Err(ApiError::invalid_argument(format!(
            "{}: cannot bind a value of type {} (use null, number, bigint, string, boolean, Buffer or Uint8Array)",
            name(),
            type_name(other)
        ))),
    }
}

/// A number that holds an integer in i64 range binds as INTEGER (so `id = 1` matches an INTEGER
/// column exactly); everything else (fractions, NaN, infinities, huge values) as REAL.
fn number_to_value(number: f64) -> Value {
    if number.is_finite() && number.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&number) {
        Value::Integer(number as i64)
    } else {
        Value::Real(number)
    }
}

/// The bigint as an i64, or `None` when it does not fit.
pub(crate) fn bigint_to_i64(big: &BigInt) -> Option<i64> {
    let mut words = big.words.as_slice();
    while let [rest @ .., 0] = words {
        words = rest;
    }
    let magnitude = match words {
        [] => 0u64,
        [single] => *single,
        _ => return None,
    };
    if big.sign_bit {
        if magnitude == 1u64 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|m| -m)
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// The JavaScript name of a type, for messages.
fn type_name(value_type: ValueType) -> &'static str {
    match value_type {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "boolean",
        ValueType::Number => "number",
        ValueType::String => "string",
        ValueType::Symbol => "symbol",
        ValueType::Object => "object",
        ValueType::Function => "function",
        ValueType::External => "external",
        ValueType::BigInt => "bigint",
        ValueType::Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(sign_bit: bool, words: &[u64]) -> BigInt {
        BigInt { sign_bit, words: words.to_vec() }
    }

    #[test]
    fn bigint_within_i64_converts_exactly() {
        assert_eq!(bigint_to_i64(&big(false, &[])), Some(0));
        assert_eq!(bigint_to_i64(&big(false, &[i64::MAX as u64])), Some(i64::MAX));
        assert_eq!(bigint_to_i64(&big(true, &[1 << 63])), Some(i64::MIN));
        assert_eq!(bigint_to_i64(&big(true, &[5, 0])), Some(-5));
    }

    #[test]
    fn bigint_outside_i64_is_rejected() {
        assert_eq!(bigint_to_i64(&big(false, &[1 << 63])), None);
        assert_eq!(bigint_to_i64(&big(true, &[(1 << 63) + 1])), None);
        assert_eq!(bigint_to_i64(&big(false, &[0, 1])), None);
    }

    #[test]
    fn integral_numbers_bind_as_integer_and_others_as_real() {
        assert!(matches!(number_to_value(42.0), Value::Integer(42)));
        assert!(matches!(number_to_value(-9_007_199_254_740_993.0), Value::Integer(_)));
        assert!(matches!(number_to_value(1.5), Value::Real(_)));
        assert!(matches!(number_to_value(f64::NAN), Value::Real(_)));
        assert!(matches!(number_to_value(TWO_POW_63), Value::Real(_)));
        assert!(matches!(number_to_value(-TWO_POW_63), Value::Integer(i64::MIN)));
    }
}
