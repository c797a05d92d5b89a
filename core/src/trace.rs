//! The trace record: one JSON line per load-test run behind a fixed marker in the sidecar log,
//! and the dataset row (CSV) it becomes.

pub use crate::columns::{Columns, ROW_EXTRA_COLUMNS};
use crate::counters::{ReasonCounts, RunCounters};
use crate::failure::Failure;
use crate::rule::{LoadSetting, TrafficRule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod auth;
#[cfg(test)]
mod props;

/// Schema version of [`TraceRecord`] this build writes (2: the optional `inline` section).
pub const TRACE_SCHEMA: u32 = 2;
/// Oldest schema this build still reads (schema 1 records are schema 2 without `inline`).
pub const TRACE_SCHEMA_MIN: u32 = 1;
/// Marker that starts the JSON payload in a log line.
pub const TRACE_MARKER: &str = "SFR2L_TRACE ";

/// One load-test run as the filter saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceRecord {
    pub schema: u32,
    pub run: String,
    /// Configuration generation the filter ran with (the lab bumps it on every rule switch).
    pub generation: u64,
    /// All announced calls answered (false: closed by the idle timeout).
    pub complete: bool,
    pub rule: Option<TrafficRule>,
    pub threads: u32,
    pub calls: u32,
    pub responses: u64,
    /// Responses by status code; JSON keys are strings, as in fortio's RetCodes.
    pub codes: BTreeMap<String, u64>,
    pub reasons: ReasonCounts,
    pub first_ns: u64,
    pub last_ns: u64,
    pub span_s: f64,
    pub qps: f64,
    pub rate_200: f64,
    pub rate_503: f64,
    #[serde(default)]
    pub mismatched: u64,
    /// Present on records of inline load tests (load-test mode): the decision behind the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<InlineTest>,
}

/// What the filter decided for an inline load test, and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineTest {
    /// The trigger slot the test ran for.
    pub slot: String,
    pub profile: String,
    /// Agent configuration (Table 3 slug) and the agents' objective (`worst` / `best`).
    pub configuration: String,
    pub objective: String,
    /// sha256 of each agent graph, in acting order.
    pub agents_sha256: Vec<String>,
    /// Each agent's state and choice, in acting order.
    pub steps: Vec<crate::loadtest::Step>,
    /// Observed reward under the objective (eq. 3: QPS x P(failure); best: QPS x P200).
    pub reward: f64,
    /// The codes that counted as failure for `reward` (the agents'; absent: 503).
    #[serde(default, skip_serializing_if = "is_default_failure")]
    pub failure_codes: Failure,
    /// Calls that got no HTTP response (stream reset), counted under code 0.
    pub no_response: u64,
    /// The simulator's prediction for the decided run, when a simulator is loaded.
    #[serde(default)]
    pub predicted: Option<Predicted>,
    /// Wall time of the decision chain inside the VM (all agents, host clock).
    #[serde(default)]
    pub decide_ns: u64,
}

/// A simulator prediction in raw units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Predicted {
    pub qps: f64,
    /// The predicted failure rate (the simulator's second output; records before failure
    /// codes were a study's choice call it `rate_503`).
    #[serde(alias = "rate_503")]
    pub failure_rate: f64,
    pub reward: f64,
    /// Ensemble spread of (QPS, failure rate).
    pub uncertainty: [f64; 2],
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("trace record is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("trace schema {0} is not supported (this build reads schemas {TRACE_SCHEMA_MIN} to {TRACE_SCHEMA})")]
    Schema(u32),
    #[error("bad status code key {0:?}")]
    Code(String),
}

impl TraceRecord {
    pub fn from_counters(run: &str, generation: u64, rule: Option<TrafficRule>, c: &RunCounters) -> Self {
        Self {
            schema: TRACE_SCHEMA,
            run: run.to_string(),
            generation,
            complete: c.is_complete(),
            rule,
            threads: c.threads,
            calls: c.calls,
            responses: c.responses(),
            codes: c.codes.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            reasons: c.reasons.clone(),
            first_ns: c.first_ns,
            last_ns: c.last_ns,
            span_s: c.span_s(),
            qps: c.qps(),
            rate_200: c.rate(200),
            rate_503: c.rate(503),
            mismatched: c.mismatched,
            inline: None,
        }
    }

    /// The log line payload: marker + compact JSON.
    pub fn to_log_line(&self) -> String {
        format!("{TRACE_MARKER}{}", serde_json::to_string(self).unwrap_or_default())
    }

    /// Finds and parses a trace record in any log line, trusting the line: for logs that may hold
    /// other writers' lines (access logs, other plugins) use [`auth::check_line`].
    /// `None`: the line carries no record.
    pub fn from_log_line(line: &str) -> Option<Result<TraceRecord, TraceError>> {
        let at = line.find(TRACE_MARKER)?;
        let json = line[at + TRACE_MARKER.len()..].trim();
        // A signed line's MAC is not checked here (see [`auth::check_line`]), only set aside.
        let json = match json.rsplit_once(auth::MAC_TAG) {
            Some((j, m)) if m.len() == 64 && m.bytes().all(|b| b.is_ascii_hexdigit()) => j,
            _ => json,
        };
        Some(Self::parse(json))
    }

    /// Reads the record straight from the text, so that every error names its line and column;
    /// only when that fails is the schema read on its own (another schema's fields are not this
    /// one's errors): one parse for a good record.
    fn parse(json: &str) -> Result<TraceRecord, TraceError> {
        #[derive(Deserialize)]
        struct Schema {
            #[serde(default)]
            schema: serde_json::Value,
        }
        let supported = |s: u64| (u64::from(TRACE_SCHEMA_MIN)..=u64::from(TRACE_SCHEMA)).contains(&s);
        let rec: TraceRecord = match serde_json::from_str(json) {
            Ok(rec) => rec,
            Err(e) => {
                return Err(match serde_json::from_str::<Schema>(json) {
                    Ok(h) if !h.schema.as_u64().is_some_and(supported) => {
                        TraceError::Schema(h.schema.as_u64().unwrap_or(0).min(u64::from(u32::MAX)) as u32)
                    }
                    _ => TraceError::Json(e),
                })
            }
        };
        if !supported(u64::from(rec.schema)) {
            return Err(TraceError::Schema(rec.schema));
        }
        for k in rec.codes.keys() {
            k.parse::<u16>().map_err(|_| TraceError::Code(k.clone()))?;
        }
        Ok(rec)
    }

    pub fn count(&self, code: u16) -> u64 {
        self.codes.get(&code.to_string()).copied().unwrap_or(0)
    }

    /// The share of responses with one of `failure`'s codes.
    pub fn failure_rate(&self, failure: &Failure) -> f64 {
        failure.rate(&self.codes, self.responses)
    }

    /// Responses with codes other than 200 and the failure codes, as "code:count;code:count".
    pub fn other_codes(&self, failure: &Failure) -> String {
        self.codes
            .iter()
            .filter(|(k, _)| k.parse::<u16>().map_or(true, |c| failure.is_other(c)))
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(";")
    }
}

fn is_default_failure(f: &Failure) -> bool {
    *f == Failure::default()
}

/// One dataset row: the study's inputs ([`crate::inputs::Inputs`], the paper's nine for S1-S5), the outputs,
/// and bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRow {
    pub features: Vec<f64>,
    pub qps: f64,
    pub rate_200: f64,
    /// The share of responses with a failure code (the study's `objective.failureCodes`).
    pub failure_rate: f64,
    pub run_id: String,
    pub other_codes: String,
    pub load_avg_1m: f64,
    /// Rows with the same config_id are repeats of one configuration (the repeat block).
    pub config_id: String,
    pub repeat: u32,
}

impl DatasetRow {
    pub fn new(
        columns: &Columns,
        rule: &TrafficRule,
        load: &LoadSetting,
        rec: &TraceRecord,
        load_avg_1m: f64,
        config_id: String,
        repeat: u32,
    ) -> Self {
        Self {
            features: columns.inputs.row(rule, load),
            qps: rec.qps,
            rate_200: rec.rate_200,
            failure_rate: rec.failure_rate(&columns.failure),
            run_id: rec.run.clone(),
            other_codes: rec.other_codes(&columns.failure),
            load_avg_1m,
            config_id,
            repeat,
        }
    }

    pub fn to_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = self.features.iter().map(|v| fmt_num(*v)).collect();
        out.push(format!("{:.3}", self.qps));
        out.push(format!("{:.6}", self.rate_200));
        out.push(format!("{:.6}", self.failure_rate));
        out.push(self.run_id.clone());
        out.push(self.other_codes.clone());
        out.push(format!("{:.2}", self.load_avg_1m));
        out.push(self.config_id.clone());
        out.push(self.repeat.to_string());
        out
    }

    /// Parses a row of a dataset with `columns`; the error names the column.
    pub fn from_fields(columns: &Columns, fields: &[&str]) -> Result<Self, String> {
        let header = columns.header();
        if fields.len() != header.len() {
            return Err(format!("expected {} columns, found {}", header.len(), fields.len()));
        }
        let num = |i: usize| -> Result<f64, String> {
            let v: f64 = fields[i]
                .trim()
                .parse()
                .map_err(|_| format!("column {} ({}): not a number: {:?}", i + 1, header[i], fields[i]))?;
            if !v.is_finite() {
                return Err(format!("column {} ({}): not finite", i + 1, header[i]));
            }
            Ok(v)
        };
        let n = columns.inputs.len();
        let features = (0..n).map(num).collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            features,
            qps: num(n)?,
            rate_200: num(n + 1)?,
            failure_rate: num(n + 2)?,
            run_id: fields[n + 3].to_string(),
            other_codes: fields[n + 4].to_string(),
            load_avg_1m: num(n + 5)?,
            config_id: fields[n + 6].to_string(),
            repeat: fields[n + 7].trim().parse().map_err(|_| format!("column {} (repeat): not an integer", n + 8))?,
        })
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::RunAnnounce;
    use crate::inputs::Inputs;
    use crate::rule::sample_rule;

    fn record() -> TraceRecord {
        let a = RunAnnounce { threads: 2, calls: 3 };
        let mut c = RunCounters::new(a);
        c.record(a, 200, 0, 1_000_000_000, 1_100_000_000);
        c.record(a, 503, 0x80, 1_000_000_000, 1_200_000_000);
        c.record(a, 504, 0, 1_000_000_000, 1_500_000_000);
        TraceRecord::from_counters("r-1", 7, Some(sample_rule()), &c)
    }

    #[test]
    fn log_line_roundtrip_through_envoy_prefix() {
        let r = record();
        assert!(r.complete);
        assert_eq!(r.qps, 6.0);
        let line = format!("[2026-11-28 10:00:00.000][12][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log sfr2l sfr2l: {}", r.to_log_line());
        let back = TraceRecord::from_log_line(&line).unwrap().unwrap();
        assert_eq!(back, r);
        assert!(TraceRecord::from_log_line("nothing here").is_none());
        assert_eq!(back.other_codes(&Failure::default()), "504:1");
        let gateway = Failure::new(&[503, 504]).unwrap();
        assert_eq!((back.other_codes(&gateway), back.failure_rate(&gateway)), (String::new(), 2.0 / 3.0));
    }

    #[test]
    fn schema_1_records_still_ingest() {
        let mut v = serde_json::to_value(record()).unwrap();
        v["schema"] = 1.into();
        let back = TraceRecord::from_log_line(&format!("{TRACE_MARKER}{v}")).unwrap().unwrap();
        assert_eq!(back.schema, 1);
        assert!(back.inline.is_none());
        assert!(!record().to_log_line().contains("inline"), "observe records carry no inline section");
    }

    #[test]
    fn rejects_other_schema_and_garbage() {
        let mut v = serde_json::to_value(record()).unwrap();
        v["schema"] = 99.into();
        let line = format!("{TRACE_MARKER}{v}");
        assert!(matches!(TraceRecord::from_log_line(&line), Some(Err(TraceError::Schema(99)))));
        assert!(matches!(TraceRecord::from_log_line("SFR2L_TRACE {oops"), Some(Err(TraceError::Json(_)))));
    }

    #[test]
    fn csv_row_roundtrip() {
        let r = record();
        let all = Columns::catalogue();
        let row = DatasetRow::new(&all, &sample_rule(), &LoadSetting { threads: 2, calls: 3 }, &r, 0.5, "c1".into(), 0);
        let fields = row.to_fields();
        assert_eq!(fields.len(), all.header().len());
        assert_eq!(fields[3], "180");
        let refs: Vec<&str> = fields.iter().map(|s| s.as_str()).collect();
        let back = DatasetRow::from_fields(&all, &refs).unwrap();
        assert_eq!(back.features, row.features);
        assert_eq!(back.run_id, "r-1");
        let mut bad = refs.clone();
        bad[1] = "x";
        assert!(DatasetRow::from_fields(&all, &bad).unwrap_err().contains("max_connections"));
    }

    #[test]
    fn a_study_with_fewer_fields_writes_fewer_columns() {
        use crate::feature::Feature;
        let two = Columns {
            inputs: Inputs::new(vec![Feature::MaxConnections, Feature::Interval]).unwrap(),
            failure: Failure::new(&[429, 503]).unwrap(),
        };
        let row = DatasetRow::new(
            &two,
            &sample_rule(),
            &LoadSetting { threads: 2, calls: 3 },
            &record(),
            0.5,
            "c1".into(),
            0,
        );
        assert_eq!(
            two.header()[..7],
            ["max_connections", "interval_s", "threads", "calls", "qps", "rate_200", "rate_429_503"]
        );
        assert_eq!((row.failure_rate, row.other_codes.as_str()), (1.0 / 3.0, "504:1"));
        assert_eq!(row.features, [1.0, 1.0, 2.0, 3.0]);
        let fields = row.to_fields();
        let refs: Vec<&str> = fields.iter().map(|s| s.as_str()).collect();
        let back = DatasetRow::from_fields(&two, &refs).unwrap();
        assert_eq!((back.features, back.config_id), (row.features, row.config_id));
        assert!(DatasetRow::from_fields(&Columns::catalogue(), &refs).unwrap_err().contains("columns"));
    }
}
