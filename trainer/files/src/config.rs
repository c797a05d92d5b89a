//! JSON configuration files read with the file and the field path in every error.

use anyhow::{Context, Result};
use std::path::Path;

/// A JSON config file; errors name the file and the field path.
pub fn read_config<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de)
        .map_err(|e| anyhow::anyhow!("{}: field `{}`: {}", p.display(), e.path(), e.inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        epochs: u32,
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        std::fs::write(&p, r#"{"inner": {"epochs": "many"}}"#).unwrap();
        let e = read_config::<Outer>(&p).unwrap_err().to_string();
        assert!(e.contains("c.json") && e.contains("field `inner.epochs`"), "{e}");
    }
}
