//! A serde mirror of the files, spans kept, nothing checked beyond TOML types.
//!
//! Everything here may still be wrong; [`crate::load`] turns it into a
//! [`crate::Environment`] whose invariants hold.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

pub use crate::notify::RawNotify;
pub use crate::release::RawRelease;

/// Implements `Deserialize` for structs derived with `remote = "Self"`,
/// taking only a table.
macro_rules! tables_only {
    ($($table:ident),*) => {$(
        impl<'de> Deserialize<'de> for $table {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct TableVisitor;

                impl<'de> Visitor<'de> for TableVisitor {
                    type Value = $table;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a table")
                    }

                    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<$table, A::Error> {
                        $table::deserialize(de::value::MapAccessDeserializer::new(map))
                    }
                }

                deserializer.deserialize_map(TableVisitor)
            }
        }
    )*};
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    pub name: Option<Spanned<String>>,
    pub hosts: Option<Spanned<BTreeMap<String, Spanned<RawHost>>>>,
    pub defaults: Option<Spanned<RawJob>>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Spanned<RawJob>>,
    pub registry: Option<Spanned<RawRegistry>>,
    pub notify: Option<Spanned<RawNotify>>,
}

/// `drover.STAGE.toml`: replaces these keys of `drover.toml` whole.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub name: Option<Spanned<String>>,
    pub hosts: Option<Spanned<BTreeMap<String, Spanned<RawHost>>>>,
    pub defaults: Option<Spanned<RawJob>>,
    pub registry: Option<Spanned<RawRegistry>>,
    pub notify: Option<Spanned<RawNotify>>,
}

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct RawHost {
    pub docker: Spanned<String>,
    pub tls: Option<Spanned<RawTls>>,
    /// Deadline of one ordinary engine request to this host.
    pub timeout: Option<Spanned<String>>,
    /// Allows plain tcp:// to an address that is not loopback.
    pub insecure: Option<Spanned<bool>>,
    /// A pull fails when no progress arrives for this long.
    pub pull_stall: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct RawTls {
    pub ca: Spanned<String>,
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct RawRegistry {
    pub url: Spanned<String>,
}

/// A job file, `[defaults]` or a profile: every key optional, merged later.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct RawJob {
    pub image: Option<Spanned<String>>,
    pub hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub instances: Option<Spanned<i64>>,
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    pub env: Option<Spanned<BTreeMap<String, Spanned<EnvScalar>>>>,
    pub secret_env: Option<Spanned<Vec<Spanned<String>>>>,
    pub volumes: Option<Spanned<Vec<Spanned<String>>>>,
    pub ports: Option<Spanned<Vec<Spanned<i64>>>>,
    pub memory: Option<Spanned<String>>,
    pub profile: Option<Spanned<String>>,
    pub network: Option<Spanned<String>>,
    pub init: Option<Spanned<bool>>,
    pub restart: Option<Spanned<String>>,
    pub stop_timeout: Option<Spanned<String>>,
    pub host_files: Option<Spanned<Vec<Spanned<String>>>>,
    pub log: Option<Spanned<RawLog>>,
    pub health: Option<Spanned<RawHealth>>,
    pub update: Option<Spanned<RawUpdate>>,
    pub release: Option<Spanned<RawRelease>>,
    pub base: Option<Spanned<String>>,
    pub artifact_path: Option<Spanned<String>>,
    pub entrypoint: Option<Spanned<Vec<Spanned<String>>>>,
    pub user: Option<Spanned<String>>,
    pub workdir: Option<Spanned<String>>,
    /// `"1.5"`, or a TOML number.
    pub cpus: Option<Spanned<EnvScalar>>,
    /// Each `"SOFT:HARD"`, `"N"` or a number.
    pub ulimits: Option<Spanned<BTreeMap<String, Spanned<EnvScalar>>>>,
    pub cap_add: Option<Spanned<Vec<Spanned<String>>>>,
    pub cap_drop: Option<Spanned<Vec<Spanned<String>>>>,
    pub labels: Option<Spanned<BTreeMap<String, Spanned<EnvScalar>>>>,
    pub extra_hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub tmpfs: Option<Spanned<Vec<Spanned<String>>>>,
    pub shm_size: Option<Spanned<String>>,
    pub privileged: Option<Spanned<bool>>,
    pub devices: Option<Spanned<Vec<Spanned<String>>>>,
}

// A table of drover's is a TOML table, never an array: serde's derive would
// also take `log = ["local", "20m", 5]` as a `[log]` table, field by field.
// `remote = "Self"` keeps the derived code as an inherent `deserialize`,
// reached here only through a table.
tables_only!(
    RawHost,
    RawTls,
    RawRegistry,
    RawJob,
    RawLog,
    RawHealth,
    RawUpdate,
    RawRelease,
    RawNotify
);

/// Environment values (and label values, `cpus`, `ulimits`) may be written
/// as strings, numbers or booleans; they reach the engine as text either way.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvScalar {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl EnvScalar {
    pub fn to_text(&self) -> String {
        match self {
            EnvScalar::String(s) => s.clone(),
            EnvScalar::Integer(i) => i.to_string(),
            EnvScalar::Float(f) => f.to_string(),
            EnvScalar::Bool(b) => b.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for EnvScalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = EnvScalar;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number or true/false")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvScalar, E> {
                Ok(EnvScalar::String(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EnvScalar, E> {
                Ok(EnvScalar::Integer(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EnvScalar, E> {
                i64::try_from(v)
                    .map(EnvScalar::Integer)
                    .map_err(|_| E::custom(env_integer_out_of_range(&v.to_string())))
            }

            fn visit_i128<E: de::Error>(self, v: i128) -> Result<EnvScalar, E> {
                Err(E::custom(env_integer_out_of_range(&v.to_string())))
            }

            fn visit_u128<E: de::Error>(self, v: u128) -> Result<EnvScalar, E> {
                Err(E::custom(env_integer_out_of_range(&v.to_string())))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EnvScalar, E> {
                Ok(EnvScalar::Float(v))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<EnvScalar, E> {
                Ok(EnvScalar::Bool(v))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// An environment value is text to the container: a number TOML cannot
/// hold may still be passed, quoted.
fn env_integer_out_of_range(number: &str) -> String {
    format!(
        "{} (quote it to pass it as text: \"{number}\")",
        integer_out_of_range(number)
    )
}

/// TOML integers are 64-bit: what the spec says of a longer one.
pub(crate) fn integer_out_of_range(number: &str) -> String {
    if number.starts_with('-') {
        format!(
            "the integer {number} is too small: TOML integers are at least {}",
            i64::MIN
        )
    } else {
        format!(
            "the integer {number} is too large: TOML integers are at most {}",
            i64::MAX
        )
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct RawLog {
    pub driver: Option<Spanned<String>>,
    pub max_size: Option<Spanned<String>>,
    pub max_files: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct RawHealth {
    pub cmd: Option<Spanned<Vec<Spanned<String>>>>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub retries: Option<Spanned<i64>>,
    pub start_period: Option<Spanned<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct RawUpdate {
    pub parallel: Option<Spanned<i64>>,
    pub delay: Option<Spanned<String>>,
    pub auto_rollback: Option<Spanned<bool>>,
    pub keep: Option<Spanned<i64>>,
}

/// Rewrites serde's and the TOML parser's messages in the words of TOML:
/// `expected i64` becomes `expected an integer`, `struct RawHealth` a table,
/// a field a key.
pub fn toml_words(message: &str) -> String {
    let message = message.trim().replace('\n', " ");
    if let Some(number) = oversized_integer(&message) {
        return integer_out_of_range(&number);
    }
    match message.as_str() {
        "integer number overflowed" => {
            return format!(
                "the integer is too large: TOML integers are at most {}",
                i64::MAX
            )
        }
        "floating-point number overflowed" => {
            return "the number is too large for a TOML float".to_string()
        }
        _ => {}
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            return format!(
                "expected {}, found {}",
                expected_words(expected),
                found_words(found)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (field, valid) = match rest.split_once(", expected ") {
            Some((field, valid)) => (field, Some(valid)),
            None => (rest, None),
        };
        return match valid {
            Some(valid) => {
                let valid = valid.trim_start_matches("one of ").replace('`', "");
                format!("unknown key {field}; valid keys here: {valid}")
            }
            None => format!("unknown key {field}"),
        };
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("missing key {rest}");
    }
    if let Some(rest) = message.strip_prefix("duplicate field ") {
        return format!("duplicate key {rest}");
    }
    message
}

/// The number in serde's words for an integer a 64-bit field cannot hold:
/// `invalid type: integer `N` as i128, expected i64` (beyond 64 bits) or
/// `invalid value: integer `N`, expected i64` (above i64 but within u64).
fn oversized_integer(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("invalid type: integer `")
        .or_else(|| message.strip_prefix("invalid value: integer `"))?;
    let (number, after) = rest.split_once('`')?;
    let wide = after.starts_with(" as i128") || after.starts_with(" as u128");
    let beyond_i64 = number.parse::<i64>().is_err();
    (wide || beyond_i64).then(|| number.to_string())
}

fn expected_words(expected: &str) -> String {
    match expected {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize" => {
            "an integer".to_string()
        }
        "f32" | "f64" => "a number".to_string(),
        "a sequence" => "an array".to_string(),
        "a map" => "a table".to_string(),
        "a boolean" => "true or false".to_string(),
        other if other.starts_with("struct ") => "a table".to_string(),
        other => other.to_string(),
    }
}

fn found_words(found: &str) -> String {
    if found == "sequence" {
        return "an array".to_string();
    }
    if found == "map" {
        return "a table".to_string();
    }
    let strip = |s: &str| s.trim_matches('`').to_string();
    if let Some(v) = found.strip_prefix("string ") {
        return format!("the string {v}");
    }
    if let Some(v) = found.strip_prefix("integer ") {
        return format!("the integer {}", strip(v));
    }
    if let Some(v) = found.strip_prefix("floating point ") {
        return format!("the number {}", strip(v));
    }
    if let Some(v) = found.strip_prefix("boolean ") {
        return strip(v);
    }
    found.to_string()
}

#[cfg(test)]
mod tests {
    use super::toml_words;

    #[test]
    fn messages_speak_toml() {
        assert_eq!(
            toml_words("invalid type: string \"x\", expected i64"),
            "expected an integer, found the string \"x\""
        );
        assert_eq!(
            toml_words("invalid type: integer `3`, expected struct RawHealth"),
            "expected a table, found the integer 3"
        );
        assert_eq!(
            toml_words("invalid type: sequence, expected a map"),
            "expected a table, found an array"
        );
        assert_eq!(
            toml_words("invalid type: integer `1`, expected a boolean"),
            "expected true or false, found the integer 1"
        );
        assert_eq!(
            toml_words("unknown field `bogus`, expected one of `image`, `hosts`"),
            "unknown key `bogus`; valid keys here: image, hosts"
        );
        assert_eq!(
            toml_words("invalid type: integer `99999999999999999999999` as i128, expected i64"),
            "the integer 99999999999999999999999 is too large: TOML integers are at most 9223372036854775807"
        );
        assert_eq!(
            toml_words("invalid value: integer `9223372036854775808`, expected i64"),
            "the integer 9223372036854775808 is too large: TOML integers are at most 9223372036854775807"
        );
        assert_eq!(
            toml_words("invalid type: integer `-99999999999999999999` as i128, expected i64"),
            "the integer -99999999999999999999 is too small: TOML integers are at least -9223372036854775808"
        );
    }
}
