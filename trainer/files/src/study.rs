//! Study files (`studies/<name>.yaml`): found by name or path, read with the file, line and
//! YAML path in every error, and hashed (artifacts carry the study's sha256).

use crate::digest::sha256_hex;
use anyhow::{bail, Context, Result};
use sfr2l_core::study::{Study, StudyFile};
use std::path::{Path, PathBuf};

/// The folder studies are found in by name, relative to the working directory.
pub const STUDIES_DIR: &str = "studies";

/// The studies this build ships (the paper's S1-S5), used where no `studies/<name>.yaml` is in
/// the working directory, so that the binary works outside a checkout.
const BUILT_IN: [(&str, &str); 5] = [
    ("s1", include_str!("../../../studies/s1.yaml")),
    ("s2", include_str!("../../../studies/s2.yaml")),
    ("s3", include_str!("../../../studies/s3.yaml")),
    ("s4", include_str!("../../../studies/s4.yaml")),
    ("s5", include_str!("../../../studies/s5.yaml")),
];

/// The names of the studies this build ships.
pub fn built_in_names() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|(n, _)| *n)
}

/// A checked study with where it came from and the sha256 of its bytes.
#[derive(Debug, Clone)]
pub struct StudySource {
    pub study: Study,
    /// The file read, or `built-in:<name>`.
    pub origin: String,
    pub sha256: String,
}

/// Parses and checks a study's text; errors start with `origin`, then the line and column (YAML
/// syntax and types) or the YAML path (values) of the field.
pub fn parse(text: &str, origin: &str) -> Result<Study> {
    let de = serde_norway::Deserializer::from_str(text);
    let file: StudyFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.inner().location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            anyhow::anyhow!("{origin}{at}: {inner}")
        } else {
            anyhow::anyhow!("{origin}{at}: {path}: {inner}")
        }
    })?;
    let study = file.check().map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    Ok(study)
}

/// Reads the study file at `path`; its name must be its file stem.
pub fn read(path: &Path) -> Result<StudySource> {
    let bytes = std::fs::read(path).with_context(|| format!("reading study {}", path.display()))?;
    let text = String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", path.display()))?;
    let origin = path.display().to_string();
    let study = parse(&text, &origin)?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if stem != study.name {
        bail!(
            "{origin}: metadata.name: {:?} differs from the file's name {stem:?} (artifacts are found by name)",
            study.name
        );
    }
    Ok(StudySource { study, origin, sha256: sha256_hex(text.as_bytes()) })
}

/// Whether `spec` names a file rather than a study.
fn is_path(spec: &str) -> bool {
    spec.contains('/') || spec.ends_with(".yaml") || spec.ends_with(".yml")
}

/// The study `spec` names: a path (`studies/x.yaml`, `./x.yaml`), or a name found as
/// `studies/<name>.yaml` under `root` and else among the built-in ones.
pub fn find_in(root: &Path, spec: &str) -> Result<StudySource> {
    if is_path(spec) {
        return read(Path::new(spec));
    }
    if !sfr2l_core::study::is_name(spec) {
        bail!("study {spec:?}: not a study name (a DNS label, e.g. s1) nor a path to a .yaml file");
    }
    let file = root.join(STUDIES_DIR).join(format!("{spec}.yaml"));
    if file.exists() {
        return read(&file);
    }
    if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == spec) {
        let origin = format!("built-in:{spec}");
        return Ok(StudySource { study: parse(text, &origin)?, origin, sha256: sha256_hex(text.as_bytes()) });
    }
    let built: Vec<&str> = built_in_names().collect();
    bail!("no study {spec:?}: {} does not exist and the built-in studies are {}", file.display(), built.join(", "))
}

/// [`find_in`] the working directory.
pub fn find(spec: &str) -> Result<StudySource> {
    find_in(Path::new(""), spec)
}

/// Where `find` would read a study of this name from the working directory (for messages).
pub fn path_of(name: &str) -> PathBuf {
    Path::new(STUDIES_DIR).join(format!("{name}.yaml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_studies_parse_and_match_their_names() {
        for (name, text) in BUILT_IN {
            assert_eq!(parse(text, name).unwrap().name, name);
        }
    }

    #[test]
    fn names_paths_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path();
        assert_eq!(find_in(none, "s3").unwrap().origin, "built-in:s3");
        let e = find_in(none, "nope").unwrap_err().to_string();
        assert!(e.contains("no study \"nope\"") && e.contains("s1, s2, s3, s4, s5"), "{e}");
        assert!(find_in(none, "S 1").unwrap_err().to_string().contains("not a study name"));

        std::fs::create_dir(none.join(STUDIES_DIR)).unwrap();
        let mine = BUILT_IN[0].1.replace("name: s1", "name: mine");
        std::fs::write(none.join("studies/mine.yaml"), &mine).unwrap();
        let s = find_in(none, "mine").unwrap();
        assert_eq!((s.study.name.as_str(), s.sha256.clone()), ("mine", sha256_hex(mine.as_bytes())));

        let p = none.join("other.yaml");
        std::fs::write(&p, &mine).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("metadata.name: \"mine\" differs from the file's name \"other\""), "{e}");

        std::fs::write(
            &p,
            mine.replace("name: mine", "name: other").replace("  hosts: 2\n", "  hosts: 2\n  hots: 1\n"),
        )
        .unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("other.yaml:") && e.contains("lab: unknown field `hots`"), "{e}");
        let line = e.split(':').nth(1).unwrap().parse::<usize>().unwrap();
        assert!(line > 40, "{e}");

        std::fs::write(&p, mine.replace("name: mine", "name: other").replace("range: [1, 5]", "range: [1, x]"))
            .unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("load.threads.range[1]: invalid type"), "{e}");

        std::fs::write(&p, mine.replace("name: mine", "name: other").replace("value: 3m", "value: 3")).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.ends_with("other.yaml: attributes[3].value: 3 has no unit: outlierDetection.baseEjectionTime is a duration, e.g. \"3m\" or \"500ms\""), "{e}");
    }
}
