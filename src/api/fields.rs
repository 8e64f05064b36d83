//! Typed access to the fields of a request body (JSON, or form-encoded and so all strings),
//! collecting every invalid field so one 422 response names them all. Values are read as
//! Laravel's validation rules read them, since clients were written against Pterodactyl.

use crate::error::{Error, FieldError};
use serde_json::{Map, Value};

pub struct Fields {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn new(map: Map<String, Value>) -> Fields {
        Fields {
            map,
            errors: Vec::new(),
        }
    }

    fn wrong(&mut self, name: &str, rule: &str, what: &str) {
        self.errors.push(FieldError::new(
            name,
            rule,
            format!("The {name} field must be {what}."),
        ));
    }

    /// Absent or null: None.
    pub fn string(&mut self, name: &str) -> Option<String> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.wrong(name, "string", "a string");
                None
            }
        }
    }

    /// Absent: None; null: Some(None).
    pub fn nullable_string(&mut self, name: &str) -> Option<Option<String>> {
        match self.map.get(name) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => {
                self.wrong(name, "string", "a string or null");
                None
            }
        }
    }

    pub fn required_string(&mut self, name: &str) -> Option<String> {
        if !self.map.contains_key(name) || self.map.get(name) == Some(&Value::Null) {
            self.errors.push(FieldError::new(
                name,
                "required",
                format!("The {name} field is required."),
            ));
            return None;
        }
        self.string(name)
    }

    /// What Laravel's `boolean` rule accepts: `true`, `false`, `1`, `0`, `"1"`, `"0"`,
    /// `"true"`, `"false"`.
    pub fn bool(&mut self, name: &str) -> Option<bool> {
        let value = self.map.get(name)?;
        if value.is_null() {
            return None;
        }
        let read = boolean(value);
        if read.is_none() {
            self.wrong(name, "boolean", "true or false (or 1 or 0)");
        }
        read
    }

    pub fn int(&mut self, name: &str) -> Option<i64> {
        let value = self.map.get(name)?;
        if value.is_null() {
            return None;
        }
        let read = integer(value);
        if read.is_none() {
            self.wrong(name, "integer", "an integer");
        }
        read
    }

    pub fn nullable_int(&mut self, name: &str) -> Option<Option<i64>> {
        let value = self.map.get(name)?;
        if value.is_null() {
            return Some(None);
        }
        let read = integer(value);
        if read.is_none() {
            self.wrong(name, "integer", "an integer or null");
        }
        read.map(Some)
    }

    /// Absent: None; null: Some(None).
    pub fn nullable_string_list(&mut self, name: &str) -> Option<Option<Vec<String>>> {
        match self.map.get(name) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(_) => self.string_list(name).map(Some),
        }
    }

    pub fn string_list(&mut self, name: &str) -> Option<Vec<String>> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => Some(
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            ),
            Some(_) => {
                self.wrong(name, "array", "a list of strings");
                None
            }
        }
    }

    /// Sub-object fields (e.g. `hooks`), flattened into a new reader sharing the errors.
    pub fn object(&mut self, name: &str) -> Option<Map<String, Value>> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => {
                self.wrong(name, "object", "an object");
                None
            }
        }
    }

    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// Ok when every field read so far was valid.
    pub fn finish(self) -> Result<(), Error> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.errors))
        }
    }
}

/// A boolean as Laravel's `boolean` rule reads it.
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.as_str() {
            "1" | "true" => Some(true),
            "0" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// An integer as Laravel's `integer` rule reads it: a JSON integer, or a string holding one
/// (every value of a form-encoded body is a string).
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        Fields::new(value.as_object().expect("an object").clone())
    }

    #[test]
    fn booleans_read_as_laravel_reads_them() {
        for (given, expected) in [
            (json!(true), true),
            (json!(false), false),
            (json!(1), true),
            (json!(0), false),
            (json!("1"), true),
            (json!("0"), false),
            (json!("true"), true),
            (json!("false"), false),
        ] {
            let mut f = fields(json!({ "b": given.clone() }));
            assert_eq!(f.bool("b"), Some(expected), "{given}");
            assert!(f.finish().is_ok(), "{given}");
        }
        for given in [json!(2), json!("yes"), json!(""), json!([true]), json!(1.0)] {
            let mut f = fields(json!({ "b": given.clone() }));
            assert_eq!(f.bool("b"), None, "{given}");
            assert!(f.finish().is_err(), "{given} is refused");
        }
    }

    #[test]
    fn integers_may_come_as_numeric_strings() {
        let mut f = fields(json!({"a": "5", "b": 7, "c": " 12 ", "n": null}));
        assert_eq!(f.int("a"), Some(5));
        assert_eq!(f.int("b"), Some(7));
        assert_eq!(f.nullable_int("c"), Some(Some(12)));
        assert_eq!(f.nullable_int("n"), Some(None));
        assert!(f.finish().is_ok());
        for given in [json!("5.5"), json!("five"), json!(""), json!(2.5)] {
            let mut f = fields(json!({ "a": given.clone() }));
            assert_eq!(f.int("a"), None, "{given}");
            assert!(f.finish().is_err(), "{given} is refused");
        }
    }
}
