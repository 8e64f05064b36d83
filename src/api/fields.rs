//! Typed access to the fields of a JSON request body, collecting every invalid field so one
//! 422 response names them all.

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

    pub fn bool(&mut self, name: &str) -> Option<bool> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.wrong(name, "boolean", "true or false");
                None
            }
        }
    }

    pub fn int(&mut self, name: &str) -> Option<i64> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
            Some(_) => {
                self.wrong(name, "integer", "an integer");
                None
            }
        }
    }

    pub fn nullable_int(&mut self, name: &str) -> Option<Option<i64>> {
        match self.map.get(name) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Some(n.as_i64()),
            Some(_) => {
                self.wrong(name, "integer", "an integer or null");
                None
            }
        }
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
