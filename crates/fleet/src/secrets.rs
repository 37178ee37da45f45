//! Secret values: the operator's environment first, then the secrets file
//! (`DROVER_SECRETS_FILE`, or `secrets.env` beside drover.toml), `KEY=VALUE`
//! per line. Values become [`Secret`]s at once, so nothing can print them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use drover_plan::{Secret, Secrets};

pub fn load_secrets(dir: &Path, needed: &BTreeSet<&str>) -> Result<Secrets, String> {
    let mut secrets = Secrets::new();
    if needed.is_empty() {
        return Ok(secrets);
    }
    let file = secrets_file(dir);
    let from_file: BTreeMap<String, Secret> = if file.is_file() {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read secrets file {}: {e}", file.display()))?;
        parse_secrets(&text).map_err(|e| format!("secrets file {}: {e}", file.display()))?
    } else {
        BTreeMap::new()
    };
    for name in needed {
        if let Some(value) = std::env::var_os(name) {
            let value = value
                .into_string()
                .map_err(|_| format!("secret {name} in the environment is not valid UTF-8"))?;
            secrets.insert(name.to_string(), Secret::new(value));
        } else if let Some(value) = from_file.get(*name) {
            secrets.insert(name.to_string(), value.clone());
        }
    }
    Ok(secrets)
}

/// Where secret values are kept: `DROVER_SECRETS_FILE`, or `secrets.env`
/// beside drover.toml.
pub fn secrets_file(dir: &Path) -> std::path::PathBuf {
    std::env::var_os("DROVER_SECRETS_FILE")
        .map(Into::into)
        .unwrap_or_else(|| dir.join("secrets.env"))
}

pub(crate) fn parse_secrets(text: &str) -> Result<BTreeMap<String, Secret>, String> {
    let mut values = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected KEY=VALUE", number + 1));
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        if value.contains('\0') {
            return Err(format!(
                "line {}: the value contains a NUL character",
                number + 1
            ));
        }
        values.insert(key.trim().to_string(), Secret::new(value));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::parse_secrets;

    #[test]
    fn secrets_file_lines() {
        let parsed =
            parse_secrets("# comment\nA=1\nexport B = \"two words\"\n\nC='x=y'\n").unwrap();
        assert_eq!(parsed["A"].expose(), "1");
        assert_eq!(parsed["B"].expose(), "two words");
        assert_eq!(parsed["C"].expose(), "x=y");
        assert!(parse_secrets("NOEQUALS\n").is_err());
    }
}
