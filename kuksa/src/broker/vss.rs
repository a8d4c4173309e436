//! The VSS tree the test broker serves, read from the JSON format the real databroker takes with
//! `--vss` (the COVESA vss-tools JSON export: nested branches with `children`; leaves with
//! `type`, `datatype`, `unit`, `min`, `max`, `allowed`, `description`, ...).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value as Json;

use crate::proto::value::TypedValue;
use crate::proto::{
    BoolArray, DataType, DoubleArray, EntryType, FloatArray, Int32Array, Int64Array, StringArray,
    Uint32Array, Uint64Array, Value,
};

/// A VSS tree: its signals (sensors, actuators, attributes) by path. Branches are implied by
/// the paths.
#[derive(Debug, Clone)]
pub struct Vss {
    pub(crate) signals: BTreeMap<String, Signal>,
}

/// One VSS leaf, as the broker's metadata describes it.
#[derive(Debug, Clone)]
pub(crate) struct Signal {
    pub entry_type: EntryType,
    pub data_type: DataType,
    pub description: String,
    pub comment: String,
    pub deprecation: String,
    pub unit: String,
    /// Typed like a value of the signal (int8 as int32, ...); for arrays, of one element.
    pub min: Option<Value>,
    pub max: Option<Value>,
    /// An array value of the signal's (element) type.
    pub allowed: Option<Value>,
    /// `x-kuksa-changetype: onchange|static`: a publish of the same value notifies nobody.
    /// The default (and `continuous`) for sensors and actuators notifies every publish, as
    /// the real broker does.
    pub on_change: bool,
}

impl Vss {
    /// Parse a VSS JSON tree (the real broker's `--vss` format).
    pub fn from_json(text: &str) -> Result<Vss, String> {
        let root: Json =
            serde_json::from_str(text).map_err(|e| format!("not a VSS JSON file: {e}"))?;
        let Json::Object(top) = root else {
            return Err("not a VSS JSON file: the top level is not an object".into());
        };
        let mut signals = BTreeMap::new();
        for (name, node) in &top {
            add(&mut signals, name.clone(), node)?;
        }
        if signals.is_empty() {
            return Err("the VSS tree has no signals".into());
        }
        Ok(Vss { signals })
    }

    /// Read and parse a VSS JSON file.
    pub fn load(path: &Path) -> Result<Vss, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the VSS file {}: {e}", path.display()))?;
        Vss::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Every signal's path, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.signals.keys().map(String::as_str)
    }

    /// The number of signals (leaves).
    pub fn len(&self) -> usize {
        self.signals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.signals.is_empty()
    }
}

/// The test VSS (`kuksa/vss/test-vss.json`): the VSS 6.0 entries of every signal the default
/// configuration uses (the axes' actuators and `[kuksa.signals]`).
pub fn test_vss() -> Vss {
    match Vss::from_json(TEST_VSS_JSON) {
        Ok(v) => v,
        // The file is part of this crate and parsed by its unit tests.
        Err(e) => unreachable!("the built-in test VSS does not parse: {e}"),
    }
}

/// The text of `kuksa/vss/test-vss.json`.
pub const TEST_VSS_JSON: &str = include_str!("../../vss/test-vss.json");

fn add(out: &mut BTreeMap<String, Signal>, path: String, node: &Json) -> Result<(), String> {
    let obj = node
        .as_object()
        .ok_or_else(|| format!("{path}: not an object"))?;
    let ty = obj
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| format!("{path}: no \"type\""))?;
    let entry_type = match ty {
        "branch" => {
            let children = obj
                .get("children")
                .and_then(Json::as_object)
                .ok_or_else(|| format!("{path}: a branch needs \"children\""))?;
            for (name, child) in children {
                add(out, format!("{path}.{name}"), child)?;
            }
            return Ok(());
        }
        "sensor" => EntryType::Sensor,
        "actuator" => EntryType::Actuator,
        "attribute" => EntryType::Attribute,
        other => return Err(format!("{path}: unknown type {other:?}")),
    };
    let dt_name = obj
        .get("datatype")
        .and_then(Json::as_str)
        .ok_or_else(|| format!("{path}: a {ty} needs a \"datatype\""))?;
    let data_type =
        data_type(dt_name).ok_or_else(|| format!("{path}: unknown datatype {dt_name:?}"))?;
    let text = |k: &str| {
        obj.get(k)
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let elem = element_type(data_type);
    let min = match obj.get("min") {
        None => None,
        Some(j) => Some(scalar(j, elem).map_err(|e| format!("{path}: min: {e}"))?),
    };
    let max = match obj.get("max") {
        None => None,
        Some(j) => Some(scalar(j, elem).map_err(|e| format!("{path}: max: {e}"))?),
    };
    let allowed = match obj.get("allowed") {
        None => None,
        Some(j) => Some(array(j, elem).map_err(|e| format!("{path}: allowed: {e}"))?),
    };
    let on_change = match obj.get("x-kuksa-changetype").and_then(Json::as_str) {
        Some("onchange") | Some("static") => true,
        Some("continuous") => false,
        Some(other) => return Err(format!("{path}: unknown x-kuksa-changetype {other:?}")),
        None => entry_type == EntryType::Attribute,
    };
    out.insert(
        path,
        Signal {
            entry_type,
            data_type,
            description: text("description"),
            comment: text("comment"),
            deprecation: text("deprecation"),
            unit: text("unit"),
            min,
            max,
            allowed,
            on_change,
        },
    );
    Ok(())
}

fn data_type(name: &str) -> Option<DataType> {
    Some(match name {
        "string" => DataType::String,
        "boolean" => DataType::Boolean,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "uint8" => DataType::Uint8,
        "uint16" => DataType::Uint16,
        "uint32" => DataType::Uint32,
        "uint64" => DataType::Uint64,
        "float" => DataType::Float,
        "double" => DataType::Double,
        "string[]" => DataType::StringArray,
        "boolean[]" => DataType::BooleanArray,
        "int8[]" => DataType::Int8Array,
        "int16[]" => DataType::Int16Array,
        "int32[]" => DataType::Int32Array,
        "int64[]" => DataType::Int64Array,
        "uint8[]" => DataType::Uint8Array,
        "uint16[]" => DataType::Uint16Array,
        "uint32[]" => DataType::Uint32Array,
        "uint64[]" => DataType::Uint64Array,
        "float[]" => DataType::FloatArray,
        "double[]" => DataType::DoubleArray,
        _ => return None,
    })
}

/// The scalar type of an array type's elements (a scalar type is its own).
pub(crate) fn element_type(ty: DataType) -> DataType {
    match ty {
        DataType::StringArray => DataType::String,
        DataType::BooleanArray => DataType::Boolean,
        DataType::Int8Array => DataType::Int8,
        DataType::Int16Array => DataType::Int16,
        DataType::Int32Array => DataType::Int32,
        DataType::Int64Array => DataType::Int64,
        DataType::Uint8Array => DataType::Uint8,
        DataType::Uint16Array => DataType::Uint16,
        DataType::Uint32Array => DataType::Uint32,
        DataType::Uint64Array => DataType::Uint64,
        DataType::FloatArray => DataType::Float,
        DataType::DoubleArray => DataType::Double,
        DataType::TimestampArray => DataType::Timestamp,
        other => other,
    }
}

fn int(j: &Json) -> Result<i128, String> {
    if let Some(i) = j.as_i64() {
        return Ok(i.into());
    }
    if let Some(u) = j.as_u64() {
        return Ok(u.into());
    }
    match j.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1.9e19 => Ok(f as i128),
        _ => Err(format!("{j} is not an integer")),
    }
}

fn fit<T: TryFrom<i128>>(j: &Json, ty: DataType) -> Result<T, String> {
    T::try_from(int(j)?).map_err(|_| format!("{j} does not fit a {}", ty.as_str_name()))
}

fn scalar_tv(j: &Json, ty: DataType) -> Result<TypedValue, String> {
    Ok(match ty {
        DataType::String => TypedValue::String(
            j.as_str()
                .ok_or_else(|| format!("{j} is not a string"))?
                .to_string(),
        ),
        DataType::Boolean => {
            TypedValue::Bool(j.as_bool().ok_or_else(|| format!("{j} is not a boolean"))?)
        }
        DataType::Int8 => TypedValue::Int32(fit::<i8>(j, ty)?.into()),
        DataType::Int16 => TypedValue::Int32(fit::<i16>(j, ty)?.into()),
        DataType::Int32 => TypedValue::Int32(fit(j, ty)?),
        DataType::Int64 => TypedValue::Int64(fit(j, ty)?),
        DataType::Uint8 => TypedValue::Uint32(fit::<u8>(j, ty)?.into()),
        DataType::Uint16 => TypedValue::Uint32(fit::<u16>(j, ty)?.into()),
        DataType::Uint32 => TypedValue::Uint32(fit(j, ty)?),
        DataType::Uint64 => TypedValue::Uint64(fit(j, ty)?),
        DataType::Float => {
            TypedValue::Float(j.as_f64().ok_or_else(|| format!("{j} is not a number"))? as f32)
        }
        DataType::Double => {
            TypedValue::Double(j.as_f64().ok_or_else(|| format!("{j} is not a number"))?)
        }
        other => {
            return Err(format!(
                "a {} cannot have a value here",
                other.as_str_name()
            ));
        }
    })
}

fn scalar(j: &Json, ty: DataType) -> Result<Value, String> {
    Ok(Value {
        typed_value: Some(scalar_tv(j, ty)?),
    })
}

fn array(j: &Json, elem: DataType) -> Result<Value, String> {
    let items = j.as_array().ok_or_else(|| format!("{j} is not an array"))?;
    let tvs = items
        .iter()
        .map(|i| scalar_tv(i, elem))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value {
        typed_value: Some(pack(tvs, elem)?),
    })
}

/// Scalars of one element type as the array value of that type.
fn pack(tvs: Vec<TypedValue>, elem: DataType) -> Result<TypedValue, String> {
    macro_rules! collect {
        ($variant:ident) => {
            tvs.into_iter()
                .filter_map(|t| match t {
                    TypedValue::$variant(x) => Some(x),
                    _ => None,
                })
                .collect()
        };
    }
    Ok(match elem {
        DataType::String => TypedValue::StringArray(StringArray {
            values: collect!(String),
        }),
        DataType::Boolean => TypedValue::BoolArray(BoolArray {
            values: collect!(Bool),
        }),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => TypedValue::Int32Array(Int32Array {
            values: collect!(Int32),
        }),
        DataType::Int64 => TypedValue::Int64Array(Int64Array {
            values: collect!(Int64),
        }),
        DataType::Uint8 | DataType::Uint16 | DataType::Uint32 => {
            TypedValue::Uint32Array(Uint32Array {
                values: collect!(Uint32),
            })
        }
        DataType::Uint64 => TypedValue::Uint64Array(Uint64Array {
            values: collect!(Uint64),
        }),
        DataType::Float => TypedValue::FloatArray(FloatArray {
            values: collect!(Float),
        }),
        DataType::Double => TypedValue::DoubleArray(DoubleArray {
            values: collect!(Double),
        }),
        other => return Err(format!("no array of {}", other.as_str_name())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_vss_parses_with_the_vss_6_entries() {
        let v = test_vss();
        let pos = &v.signals["Vehicle.Cabin.Seat.Row1.DriverSide.Position"];
        assert_eq!(pos.entry_type, EntryType::Actuator);
        assert_eq!(pos.data_type, DataType::Uint16);
        assert_eq!(pos.unit, "mm");
        assert_eq!(
            pos.min,
            Some(Value {
                typed_value: Some(TypedValue::Uint32(0))
            })
        );
        let occ = &v.signals["Vehicle.Cabin.Seat.Row1.DriverSide.OccupancyStatus"];
        assert_eq!(occ.entry_type, EntryType::Sensor);
        assert_eq!(
            occ.allowed,
            Some(Value {
                typed_value: Some(TypedValue::StringArray(StringArray {
                    values: vec!["UNKNOWN".into(), "OCCUPIED".into(), "EMPTY".into()]
                }))
            })
        );
        let gear = &v.signals["Vehicle.Powertrain.Transmission.SelectedGear"];
        assert_eq!(gear.data_type, DataType::Int8);
        assert!(!gear.on_change);
    }

    #[test]
    fn bad_trees_are_refused_with_the_path() {
        let e =
            Vss::from_json(r#"{"Vehicle":{"type":"branch","children":{"X":{"type":"sensor"}}}}"#)
                .unwrap_err();
        assert!(e.contains("Vehicle.X"), "{e}");
        let e = Vss::from_json(
            r#"{"Vehicle":{"type":"branch","children":{"X":{"type":"sensor","datatype":"uint8","max":300}}}}"#,
        )
        .unwrap_err();
        assert!(e.contains("Vehicle.X: max"), "{e}");
        assert!(Vss::from_json("[]").is_err());
        assert!(Vss::from_json("{").is_err());
    }
}
