//! Typed reads of a step's fields, so action families never match on [`FieldValue`].
//!
//! Validation has already checked every field against the catalogue, so these only fail
//! when a caller asks for a field the catalogue does not give that action, or a
//! hand-built step skipped validation (tests, a future API). They return an error
//! instead of panicking either way. Messages name the key and the expected kind, never
//! the value: a malformed value could be a misplaced secret.

use std::time::Duration;

use crate::runbook::catalogue::arn_region;
use crate::runbook::model::{FieldValue, Fields};

use super::ActionError;

fn missing(key: &str) -> ActionError {
    ActionError::permanent(format!("required field `{key}` is missing"))
}

fn malformed(key: &str, expected: &str) -> ActionError {
    ActionError::permanent(format!("field `{key}` is not {expected}"))
}

/// A required string.
pub fn str<'a>(f: &'a Fields, key: &str) -> Result<&'a str, ActionError> {
    opt_str(f, key)?.ok_or_else(|| missing(key))
}

/// An optional string.
pub fn opt_str<'a>(f: &'a Fields, key: &str) -> Result<Option<&'a str>, ActionError> {
    match f.get(key) {
        None => Ok(None),
        Some(FieldValue::Str(s)) => Ok(Some(s)),
        Some(_) => Err(malformed(key, "a string")),
    }
}

/// An optional string with a default.
pub fn str_or<'a>(f: &'a Fields, key: &str, default: &'a str) -> Result<&'a str, ActionError> {
    Ok(opt_str(f, key)?.unwrap_or(default))
}

/// An optional duration.
pub fn opt_duration(f: &Fields, key: &str) -> Result<Option<Duration>, ActionError> {
    match f.get(key) {
        None => Ok(None),
        Some(FieldValue::Duration(d)) => Ok(Some(*d)),
        Some(_) => Err(malformed(key, "a duration")),
    }
}

/// A required duration.
pub fn duration(f: &Fields, key: &str) -> Result<Duration, ActionError> {
    opt_duration(f, key)?.ok_or_else(|| missing(key))
}

/// An optional duration with a default.
pub fn duration_or(f: &Fields, key: &str, default: Duration) -> Result<Duration, ActionError> {
    Ok(opt_duration(f, key)?.unwrap_or(default))
}

/// An optional boolean.
pub fn opt_bool(f: &Fields, key: &str) -> Result<Option<bool>, ActionError> {
    match f.get(key) {
        None => Ok(None),
        Some(FieldValue::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(malformed(key, "true or false")),
    }
}

/// An optional boolean with a default.
pub fn bool_or(f: &Fields, key: &str, default: bool) -> Result<bool, ActionError> {
    Ok(opt_bool(f, key)?.unwrap_or(default))
}

/// An optional integer.
pub fn opt_int(f: &Fields, key: &str) -> Result<Option<i64>, ActionError> {
    match f.get(key) {
        None => Ok(None),
        Some(FieldValue::Int(i)) => Ok(Some(*i)),
        Some(_) => Err(malformed(key, "an integer")),
    }
}

/// An optional integer with a default.
pub fn int_or(f: &Fields, key: &str, default: i64) -> Result<i64, ActionError> {
    Ok(opt_int(f, key)?.unwrap_or(default))
}

/// An optional TCP port with a default.
pub fn port_or(f: &Fields, key: &str, default: u16) -> Result<u16, ActionError> {
    match opt_int(f, key)? {
        None => Ok(default),
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| malformed(key, "a port from 1 to 65535")),
    }
}

/// A required capacity in ACUs.
pub fn acu(f: &Fields, key: &str) -> Result<crate::names::Acu, ActionError> {
    match f.get(key) {
        None => Err(missing(key)),
        Some(FieldValue::Acu(a)) => Ok(*a),
        Some(_) => Err(malformed(key, "a number of ACUs")),
    }
}

/// An optional list of strings (empty when absent).
pub fn list_or_empty<'a>(f: &'a Fields, key: &str) -> Result<&'a [String], ActionError> {
    match f.get(key) {
        None => Ok(&[]),
        Some(FieldValue::List(l)) => Ok(l),
        Some(_) => Err(malformed(key, "an array of strings")),
    }
}

/// A required, non-empty list of strings.
pub fn list<'a>(f: &'a Fields, key: &str) -> Result<&'a [String], ActionError> {
    let l = list_or_empty(f, key)?;
    if l.is_empty() {
        return Err(missing(key));
    }
    Ok(l)
}

/// A required array of tables.
pub fn tables<'a>(f: &'a Fields, key: &str) -> Result<&'a [Fields], ActionError> {
    match f.get(key) {
        None => Err(missing(key)),
        Some(FieldValue::Tables(t)) => Ok(t),
        Some(_) => Err(malformed(key, "an array of tables")),
    }
}

/// The region of an ARN field's value, which decides where calls about it are sent.
pub fn region_of<'a>(key: &str, arn: &'a str) -> Result<&'a str, ActionError> {
    arn_region(arn).ok_or_else(|| malformed(key, "an ARN with a region"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields {
        let mut f = Fields::new();
        f.insert("s".into(), FieldValue::Str("x".into()));
        f.insert("d".into(), FieldValue::Duration(Duration::from_secs(3)));
        f.insert("b".into(), FieldValue::Bool(true));
        f.insert("i".into(), FieldValue::Int(70000));
        f.insert("l".into(), FieldValue::List(vec!["a".into()]));
        f
    }

    #[test]
    fn typed_reads_and_defaults() {
        let f = fields();
        assert_eq!(str(&f, "s").unwrap(), "x");
        assert_eq!(str_or(&f, "nope", "dflt").unwrap(), "dflt");
        assert_eq!(duration(&f, "d").unwrap(), Duration::from_secs(3));
        assert!(bool_or(&f, "b", false).unwrap());
        assert!(!bool_or(&f, "nope", false).unwrap());
        assert_eq!(int_or(&f, "i", 1).unwrap(), 70000);
        assert_eq!(list(&f, "l").unwrap(), ["a".to_string()]);
        assert!(list_or_empty(&f, "nope").unwrap().is_empty());
    }

    #[test]
    fn malformed_and_missing_fields_are_errors_not_panics() {
        let f = fields();
        let e = str(&f, "b").unwrap_err();
        assert_eq!(e.message, "field `b` is not a string");
        assert_eq!(
            duration(&f, "nope").unwrap_err().message,
            "required field `nope` is missing"
        );
        assert!(port_or(&f, "i", 1).is_err());
        assert!(tables(&f, "l").is_err());
        assert!(region_of("target", "auto").is_err());
        assert_eq!(
            region_of("target", "arn:aws:rds:us-west-2:1:cluster:c").unwrap(),
            "us-west-2"
        );
    }
}
