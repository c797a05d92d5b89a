//! Strict dataset reading: every error names `file:line:column`, nothing is guessed.

use sfr2l_core::{Failure, Inputs, Study};
use sfr2l_files::csv_rows;
use sfr2l_files::study::StudySource;
use std::path::{Path, PathBuf};

/// Reading a dataset failed; each variant says where.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: empty file (no header)")]
    Empty { path: PathBuf },
    #[error("{path}:1:{column}: {msg}")]
    Header { path: PathBuf, column: usize, msg: String },
    #[error("{path}:{line}:{column} ({name}): {msg}")]
    Cell { path: PathBuf, line: usize, column: usize, name: String, msg: String },
    #[error("{path}:{line}: {msg}")]
    Row { path: PathBuf, line: usize, msg: String },
    #[error("{path}: {rows} data rows in {groups} configurations; a split needs at least {need} configurations")]
    TooFew { path: PathBuf, rows: usize, groups: usize, need: usize },
    #[error("{path}: {msg}")]
    Meta { path: PathBuf, msg: String },
}

/// The columns a model reads: the study's inputs, the two targets and the repeat-block key.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    /// The study the rows were collected for (their ranges are checked against it).
    pub study: Study,
    /// The study's inputs: the columns of `x`.
    pub inputs: Inputs,
    /// `[rows][inputs]`, raw units, in [`Dataset::inputs`] order.
    pub x: Vec<Vec<f64>>,
    /// The codes the rate column counts as failure (the study's).
    pub failure: Failure,
    /// `[rows][2]`: QPS and failure rate.
    pub y: Vec<[f64; 2]>,
    /// Configuration id per row; repeats of one configuration share it.
    pub group: Vec<String>,
    /// sha256 of the file's bytes.
    pub sha256: String,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.x.len()
    }
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }
}

/// The study of a dataset: `explicit` (a name or a path) if given, else the one the `profile`
/// field of `<file>.meta.json` names (found as `studies/<name>.yaml` or built in).
pub fn resolve_study(csv: &Path, explicit: Option<&str>) -> Result<StudySource, DataError> {
    let find = |spec: &str, path: PathBuf| {
        sfr2l_files::study::find(spec).map_err(|e| DataError::Meta { path, msg: format!("{e:#}") })
    };
    if let Some(p) = explicit {
        return find(p, csv.into());
    }
    let meta = csv.with_extension("meta.json");
    let text = std::fs::read_to_string(&meta).map_err(|e| DataError::Meta {
        path: meta.clone(),
        msg: format!("{e}; pass --study NAME|PATH when the dataset has no meta file"),
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| DataError::Meta { path: meta.clone(), msg: e.to_string() })?;
    let p = v.get("profile").and_then(|p| p.as_str()).ok_or_else(|| DataError::Meta {
        path: meta.clone(),
        msg: "field `profile` is missing or not a string".into(),
    })?;
    find(p, meta)
}

/// Reads `path` (the collector's CSV schema) and checks every feature against `study`'s ranges.
pub fn read_dataset(path: &Path, study: &Study) -> Result<Dataset, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.into(), source })?;
    let sha256 = sfr2l_files::sha256_hex(&bytes);
    let text = String::from_utf8(bytes).map_err(|e| DataError::Row {
        path: path.into(),
        line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|b| **b == b'\n').count(),
        msg: "not UTF-8".into(),
    })?;
    parse_dataset(path, &text, study, sha256)
}

fn parse_dataset(path: &Path, text: &str, study: &Study, sha256: String) -> Result<Dataset, DataError> {
    let bad_csv = |e: csv::Error| DataError::Row {
        path: path.into(),
        line: e.position().map_or(0, |p| p.line() as usize),
        msg: e.to_string(),
    };
    let mut rows = csv_rows(text);
    let header = rows.next().ok_or_else(|| DataError::Empty { path: path.into() })?.map_err(bad_csv)?;
    let columns = study.columns();
    let expected = columns.header();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    check_header(path, &header.record.iter().map(str::trim).collect::<Vec<_>>(), &expected)?;
    let col = |name: &str| expected.iter().position(|c| *c == name).unwrap_or(0);
    let inputs = columns.inputs.clone();
    let cols = Columns {
        expected: &expected,
        inputs: &inputs,
        qps: col("qps"),
        rate: col(&columns.failure.column()),
        group: col("config_id"),
    };

    let mut ds = Dataset {
        path: path.into(),
        study: study.clone(),
        inputs: inputs.clone(),
        failure: columns.failure.clone(),
        x: vec![],
        y: vec![],
        group: vec![],
        sha256,
    };
    for row in rows {
        let row = row.map_err(bad_csv)?;
        let (x, y, group) = parse_row(path, study, &cols, row.line, &row.fields())?;
        ds.x.push(x);
        ds.y.push(y);
        ds.group.push(group);
    }
    if ds.is_empty() {
        return Err(DataError::Empty { path: path.into() });
    }
    Ok(ds)
}

/// The header must be the study's columns, in order, and nothing else.
fn check_header(path: &Path, found: &[&str], expected: &[&str]) -> Result<(), DataError> {
    for (i, want) in expected.iter().enumerate() {
        match found.get(i) {
            Some(got) if got == want => {}
            Some(got) => {
                let msg = if expected.contains(got) {
                    format!("column `{got}` is out of place; expected `{want}` here")
                } else {
                    format!("unexpected column `{got}`; expected `{want}`")
                };
                return Err(DataError::Header { path: path.into(), column: i + 1, msg });
            }
            None => {
                return Err(DataError::Header {
                    path: path.into(),
                    column: i + 1,
                    msg: format!("missing column `{want}`"),
                })
            }
        }
    }
    if found.len() > expected.len() {
        return Err(DataError::Header {
            path: path.into(),
            column: expected.len() + 1,
            msg: format!("extra column `{}`", found[expected.len()]),
        });
    }
    Ok(())
}

/// Where the targets and the group are among the header's columns.
struct Columns<'a> {
    expected: &'a [&'a str],
    inputs: &'a Inputs,
    qps: usize,
    /// The failure rate (`rate_503`, or the study's codes).
    rate: usize,
    group: usize,
}

/// One row: the features (each within the profile's range), the targets (QPS >= 0, a 503 rate in
/// [0, 1]) and the configuration it belongs to.
fn parse_row(
    path: &Path,
    prof: &Study,
    cols: &Columns,
    line: usize,
    cells: &[&str],
) -> Result<(Vec<f64>, [f64; 2], String), DataError> {
    let expected = cols.expected;
    if cells.len() != expected.len() {
        return Err(DataError::Row {
            path: path.into(),
            line,
            msg: format!("{} cells, the header has {}", cells.len(), expected.len()),
        });
    }
    let cell = |c: usize, msg: String| DataError::Cell {
        path: path.into(),
        line,
        column: c + 1,
        name: expected[c].into(),
        msg,
    };
    let num = |c: usize| -> Result<f64, DataError> {
        let v: f64 = cells[c].trim().parse().map_err(|_| cell(c, format!("`{}` is not a number", cells[c])))?;
        if !v.is_finite() {
            return Err(cell(c, format!("`{}` is not finite", cells[c])));
        }
        Ok(v)
    };
    let mut x = vec![0.0; cols.inputs.len()];
    for (c, f) in cols.inputs.features().iter().enumerate() {
        let v = num(c)?;
        let (lo, hi) = prof.feature_range(*f);
        if v < lo - 1e-9 || v > hi + 1e-9 {
            return Err(DataError::Cell {
                path: path.into(),
                line,
                column: c + 1,
                name: f.name().into(),
                msg: format!("{v} is outside study {} range {lo}..={hi}", prof.name),
            });
        }
        x[c] = v;
    }
    let qps = num(cols.qps)?;
    let rate = num(cols.rate)?;
    if qps < 0.0 {
        return Err(cell(cols.qps, format!("{qps} is negative")));
    }
    if !(0.0..=1.0).contains(&rate) {
        return Err(cell(cols.rate, format!("{rate} is not a rate in [0, 1]")));
    }
    Ok((x, [qps, rate], cells[cols.group].trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "max_pending_requests,max_connections,max_requests_per_connection,base_ejection_time_s,max_ejection_percent,interval_s,consecutive_5xx_errors,threads,calls,qps,rate_200,rate_503,run_id,other_codes,load_avg_1m,config_id,repeat";
    const ROW: &str = "2,4,7,180,100,1,1,2,441,428.243,0.743764,0.256236,s1-1-0-0-g2,,2.21,s1-c00569,0";

    fn parse(text: &str) -> Result<Dataset, DataError> {
        parse_dataset(Path::new("d.csv"), text, &sfr2l_files::study::find("s1").unwrap().study, String::new())
    }

    #[test]
    fn reads_a_valid_row() {
        let ds = parse(&format!("{HEADER}\n{ROW}\n")).unwrap();
        assert_eq!(ds.len(), 1);
        assert_eq!(ds.x[0][8], 441.0);
        assert_eq!(ds.y[0], [428.243, 0.256236]);
        assert_eq!(ds.group[0], "s1-c00569");
    }

    #[test]
    fn the_rate_column_is_the_studys_failure_codes() {
        let mut study = sfr2l_files::study::find("s1").unwrap().study;
        study.objective.failure_codes = vec![503, 429];
        let e = parse_dataset(Path::new("d.csv"), &format!("{HEADER}\n{ROW}\n"), &study, String::new()).unwrap_err();
        assert_eq!(e.to_string(), "d.csv:1:12: unexpected column `rate_503`; expected `rate_429_503`");
        let header = HEADER.replace("rate_503", "rate_429_503");
        let ds = parse_dataset(Path::new("d.csv"), &format!("{header}\n{ROW}\n"), &study, String::new()).unwrap();
        assert_eq!((ds.failure.column(), ds.y[0]), ("rate_429_503".to_string(), [428.243, 0.256236]));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = parse("").unwrap_err().to_string();
        assert!(e.contains("d.csv: empty"), "{e}");
        let e = parse(&format!("{HEADER}\n")).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let missing = HEADER.replace(",rate_503", "");
        let e = parse(&format!("{missing}\n")).unwrap_err().to_string();
        assert!(e.starts_with("d.csv:1:12:"), "{e}");
        let e = parse(&format!("{HEADER},extra\n{ROW},1\n")).unwrap_err().to_string();
        assert!(e.contains("d.csv:1:18: extra column `extra`"), "{e}");
        let bad = ROW.replace("428.243", "fast");
        let e = parse(&format!("{HEADER}\n{ROW}\n{bad}\n")).unwrap_err().to_string();
        assert!(e.contains("d.csv:3:10 (qps): `fast` is not a number"), "{e}");
        let nan = ROW.replace("0.256236", "NaN");
        let e = parse(&format!("{HEADER}\n{nan}\n")).unwrap_err().to_string();
        assert!(e.contains("d.csv:2:12 (rate_503): `NaN` is not finite"), "{e}");
        let inf = ROW.replace("428.243", "inf");
        assert!(parse(&format!("{HEADER}\n{inf}\n")).unwrap_err().to_string().contains("not finite"));
        let out = ROW.replacen("2,4,7", "2,9,7", 1);
        let e = parse(&format!("{HEADER}\n{out}\n")).unwrap_err().to_string();
        assert!(e.contains("d.csv:2:2 (max_connections): 9 is outside study s1 range 1..=7"), "{e}");
        let short = ROW.replace(",s1-c00569,0", "");
        let e = parse(&format!("{HEADER}\n{short}\n")).unwrap_err().to_string();
        assert!(e.contains("d.csv:2: 15 cells, the header has 17"), "{e}");
    }
}
