//! VSS typed values <-> the daemon's numbers, following the broker's rules: int8/int16/int32
//! travel as `int32`, uint8/uint16/uint32 as `uint32` (protobuf has no smaller integers), and
//! the broker refuses a value of another type than the signal's (INVALID_ARGUMENT).

use crate::proto::{DataType, Value, value::TypedValue};

/// The number a numeric value holds (any integer or floating type); `None` for others.
pub fn to_f64(v: &Value) -> Option<f64> {
    Some(match v.typed_value.as_ref()? {
        TypedValue::Int32(x) => f64::from(*x),
        TypedValue::Int64(x) => *x as f64,
        TypedValue::Uint32(x) => f64::from(*x),
        TypedValue::Uint64(x) => *x as f64,
        TypedValue::Float(x) => f64::from(*x),
        TypedValue::Double(x) => *x,
        _ => return None,
    })
}

pub fn to_bool(v: &Value) -> Option<bool> {
    match v.typed_value.as_ref()? {
        TypedValue::Bool(b) => Some(*b),
        _ => None,
    }
}

pub fn to_str(v: &Value) -> Option<&str> {
    match v.typed_value.as_ref()? {
        TypedValue::String(s) => Some(s),
        _ => None,
    }
}

/// Values of each wire type (int8/int16/int32 signals take an `int32`, uint8/16/32 a `uint32`).
pub fn int32(x: i32) -> Value {
    typed(TypedValue::Int32(x))
}

pub fn uint32(x: u32) -> Value {
    typed(TypedValue::Uint32(x))
}

pub fn float(x: f32) -> Value {
    typed(TypedValue::Float(x))
}

pub fn double(x: f64) -> Value {
    typed(TypedValue::Double(x))
}

pub fn boolean(b: bool) -> Value {
    typed(TypedValue::Bool(b))
}

pub fn string(s: &str) -> Value {
    typed(TypedValue::String(s.to_string()))
}

fn typed(tv: TypedValue) -> Value {
    Value {
        typed_value: Some(tv),
    }
}

/// The inclusive range a VSS integer type can hold; `None` for non-integers.
pub fn int_range(ty: DataType) -> Option<(f64, f64)> {
    Some(match ty {
        DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        DataType::Int64 => (i64::MIN as f64, i64::MAX as f64),
        DataType::Uint8 => (0.0, u8::MAX.into()),
        DataType::Uint16 => (0.0, u16::MAX.into()),
        DataType::Uint32 => (0.0, u32::MAX.into()),
        DataType::Uint64 => (0.0, u64::MAX as f64),
        _ => return None,
    })
}

/// Whether a signal of this type carries a number the daemon can use as a position.
pub fn is_numeric(ty: DataType) -> bool {
    int_range(ty).is_some() || matches!(ty, DataType::Float | DataType::Double)
}

/// `x` as a value of type `ty`: integers are rounded to the nearest; a value that the type
/// cannot hold (or a non-finite one) is an error, never wrapped or saturated.
pub fn from_f64(x: f64, ty: DataType) -> Result<Value, String> {
    if !x.is_finite() {
        return Err(format!("{x} is not a finite number"));
    }
    let tv = if let Some((lo, hi)) = int_range(ty) {
        let r = x.round();
        if r < lo || r > hi {
            return Err(format!("{x} does not fit a {}", ty.as_str_name()));
        }
        match ty {
            DataType::Int8 | DataType::Int16 | DataType::Int32 => TypedValue::Int32(r as i32),
            DataType::Int64 => TypedValue::Int64(r as i64),
            DataType::Uint8 | DataType::Uint16 | DataType::Uint32 => TypedValue::Uint32(r as u32),
            _ => TypedValue::Uint64(r as u64),
        }
    } else {
        match ty {
            DataType::Float => {
                if x.abs() > f64::from(f32::MAX) {
                    return Err(format!("{x} does not fit a float"));
                }
                TypedValue::Float(x as f32)
            }
            DataType::Double => TypedValue::Double(x),
            other => return Err(format!("a {} is not a number", other.as_str_name())),
        }
    };
    Ok(Value {
        typed_value: Some(tv),
    })
}

/// The VSS name of a data type ("uint8", "float", "string[]", ...).
pub fn type_name(ty: DataType) -> String {
    let n = ty
        .as_str_name()
        .trim_start_matches("DATA_TYPE_")
        .to_ascii_lowercase();
    match n.strip_suffix("_array") {
        Some(e) => format!("{e}[]"),
        None => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refusals() {
        let v = from_f64(299.6, DataType::Uint16).unwrap();
        assert_eq!(v.typed_value, Some(TypedValue::Uint32(300)));
        assert_eq!(to_f64(&v), Some(300.0));
        assert!(from_f64(255.6, DataType::Uint8).is_err());
        assert!(from_f64(-0.6, DataType::Uint8).is_err());
        assert_eq!(
            from_f64(-0.4, DataType::Uint8).unwrap().typed_value,
            Some(TypedValue::Uint32(0))
        );
        assert_eq!(
            from_f64(12.5, DataType::Float).unwrap().typed_value,
            Some(TypedValue::Float(12.5))
        );
        assert_eq!(
            from_f64(-128.0, DataType::Int8).unwrap().typed_value,
            Some(TypedValue::Int32(-128))
        );
        assert!(from_f64(f64::NAN, DataType::Float).is_err());
        assert!(from_f64(1.0, DataType::String).is_err());
        assert!(from_f64(1.0, DataType::Boolean).is_err());
    }
}
