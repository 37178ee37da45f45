//! A serde mirror of the files, spans kept, nothing checked beyond TOML types.
//!
//! Everything here may still be wrong; [`crate::load`] turns it into a
//! [`crate::Environment`] whose invariants hold.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    pub name: Option<Spanned<String>>,
    pub hosts: Option<Spanned<BTreeMap<String, Spanned<RawHost>>>>,
    pub defaults: Option<Spanned<RawJob>>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Spanned<RawJob>>,
    pub registry: Option<Spanned<RawRegistry>>,
}

/// `drover.STAGE.toml`: replaces these keys of `drover.toml` whole.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub name: Option<Spanned<String>>,
    pub hosts: Option<Spanned<BTreeMap<String, Spanned<RawHost>>>>,
    pub defaults: Option<Spanned<RawJob>>,
    pub registry: Option<Spanned<RawRegistry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub docker: Spanned<String>,
    pub tls: Option<Spanned<RawTls>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca: Spanned<String>,
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    pub url: Spanned<String>,
}

/// A job file, `[defaults]` or a profile: every key optional, merged later.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    pub image: Option<Spanned<String>>,
    pub hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub instances: Option<Spanned<i64>>,
    pub command: Option<Spanned<Vec<String>>>,
    pub env: Option<BTreeMap<String, Spanned<EnvScalar>>>,
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
    pub log: Option<RawLog>,
    pub health: Option<Spanned<RawHealth>>,
    pub update: Option<RawUpdate>,
}

/// Environment values may be written as numbers or booleans; they reach the
/// container as text either way.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
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

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub driver: Option<Spanned<String>>,
    pub max_size: Option<Spanned<String>>,
    pub max_files: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub cmd: Option<Spanned<Vec<String>>>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub retries: Option<Spanned<i64>>,
    pub start_period: Option<Spanned<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpdate {
    pub parallel: Option<Spanned<i64>>,
    pub delay: Option<Spanned<String>>,
    pub auto_rollback: Option<Spanned<bool>>,
}
