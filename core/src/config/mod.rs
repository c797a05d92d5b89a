//! The filter's plugin configuration: versioned, typed to the leaf, parsed once.

use crate::duration::IstioDuration;
use crate::rule::TrafficRule;
use serde::{Deserialize, Serialize};

mod loadtest;
#[cfg(test)]
mod props;
pub use loadtest::{default_refusal_cost_us, ArtifactRef, LoadTestConfig, ModelsConfig, DEFAULT_REFUSAL_COST_US};

/// What the filter does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Count and trace; never touch a request.
    #[default]
    Observe,
    /// Observe, and run inline load tests decided by the loaded agents (`loadtest`, `models`).
    #[serde(rename = "loadtest")]
    LoadTest,
}

/// What happens when the filter itself fails (bad config, host error): data, applied in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Traffic passes untouched; the error is logged once and counted.
    #[default]
    FailOpen,
}

/// The configuration's schema version (`"api": "v1"`, required).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Api {
    #[default]
    #[serde(rename = "v1")]
    V1,
}

/// The plugin configuration, as Istio's WasmPlugin `pluginConfig` or Envoy's StringValue.
///
/// The version is a plain field rather than an enum tag: serde buffers a tagged enum's content
/// before reading it, and its errors then lose their line and column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigV1 {
    pub api: Api,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub failure: FailureMode,
    /// The DestinationRule in force, copied into every trace record.
    #[serde(default)]
    pub rule: Option<TrafficRule>,
    /// Bumped by whoever switches rules, echoed in records.
    #[serde(default)]
    pub generation: u64,
    /// A run with no response for this long is closed with `complete: false`.
    #[serde(default = "default_idle")]
    pub idle_timeout: IstioDuration,
    /// How often each worker merges its counts into shared data.
    #[serde(default = "default_flush")]
    pub flush_period: IstioDuration,
    /// Length of the rolling window behind the window gauges.
    #[serde(default = "default_window")]
    pub window: IstioDuration,
    /// Request header names carrying the run announcement.
    #[serde(default)]
    pub headers: RunHeaders,
    /// Exported agents (and optionally the simulator) to load, fetched from an artifact server.
    #[serde(default)]
    pub models: Option<ModelsConfig>,
    /// The inline load test (mode `loadtest`).
    #[serde(default)]
    pub loadtest: Option<LoadTestConfig>,
    /// Announced runs kept open in host shared data at once, exactly: each of the 64 run tables
    /// holds `max_open_runs / 64` or one more (`sfr2l_core::store::Sharding::cap`), and a new run
    /// past its table's share closes that table's oldest open run as incomplete
    /// (`sfr2l_runs_evicted_total`). Bounds shared data and VM memory whatever a client announces.
    #[serde(default = "default_max_open_runs", skip_serializing_if = "is_default_max_open_runs")]
    pub max_open_runs: u32,
    /// Trace lines one VM writes per second (a token bucket with this burst); records beyond it
    /// are counted in `sfr2l_trace_lines_dropped_total`, not logged.
    #[serde(default = "default_trace_lines", skip_serializing_if = "is_default_trace_lines")]
    pub max_trace_lines_per_s: u32,
    /// Key that authenticates trace records (HMAC-SHA256 over the record's JSON, ` mac=<hex>`
    /// after it); `traces ingest` with the same key accepts only records that carry a valid MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_key: Option<String>,
}

/// Bounds of [`ConfigV1::max_open_runs`] and [`ConfigV1::max_trace_lines_per_s`]. At least one
/// open run per run table ([`crate::store::SHARDS`]), so that the tables' shares sum to the bound.
pub const OPEN_RUNS_RANGE: std::ops::RangeInclusive<u32> = 64..=100_000;
const _: () = assert!(*OPEN_RUNS_RANGE.start() as usize >= crate::store::SHARDS);
pub const TRACE_LINES_RANGE: std::ops::RangeInclusive<u32> = 1..=100_000;
/// Shortest accepted `trace_key` (bytes).
pub const MIN_TRACE_KEY_BYTES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunHeaders {
    pub run: String,
    pub threads: String,
    pub calls: String,
}

impl Default for RunHeaders {
    fn default() -> Self {
        use crate::artifact::header;
        Self { run: header::RUN.into(), threads: header::THREADS.into(), calls: header::CALLS.into() }
    }
}

fn default_idle() -> IstioDuration {
    IstioDuration::from_secs(2.0)
}
fn default_flush() -> IstioDuration {
    IstioDuration::from_secs(0.05)
}
fn default_window() -> IstioDuration {
    IstioDuration::from_secs(10.0)
}
fn default_max_open_runs() -> u32 {
    1024
}
fn default_trace_lines() -> u32 {
    100
}
// Defaults are not written, so that a configuration that does not set them still reads in filter
// builds that predate them.
fn is_default_max_open_runs(v: &u32) -> bool {
    *v == default_max_open_runs()
}
fn is_default_trace_lines(v: &u32) -> bool {
    *v == default_trace_lines()
}

impl Default for ConfigV1 {
    fn default() -> Self {
        Self {
            api: Api::V1,
            mode: Mode::Observe,
            failure: FailureMode::FailOpen,
            rule: None,
            generation: 0,
            idle_timeout: default_idle(),
            flush_period: default_flush(),
            window: default_window(),
            headers: RunHeaders::default(),
            models: None,
            loadtest: None,
            max_open_runs: default_max_open_runs(),
            max_trace_lines_per_s: default_trace_lines(),
            trace_key: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("plugin configuration: {0}")]
    Json(#[from] serde_json::Error),
    #[error("plugin configuration field {0}")]
    Invalid(String),
}

impl ConfigV1 {
    /// Parses and validates; an empty configuration means the defaults.
    pub fn parse(bytes: &[u8]) -> Result<ConfigV1, ConfigError> {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(ConfigV1::default());
        }
        let c = serde_json::from_slice::<ConfigV1>(bytes)?;
        if let Some(rule) = &c.rule {
            rule.validate().map_err(|e| ConfigError::Invalid(format!("rule.{e}")))?;
        }
        if c.flush_period.secs() > 10.0 {
            return Err(ConfigError::Invalid("flush_period: must be <= 10s".into()));
        }
        if c.window.secs() < 2.0 || c.window.secs() > 3600.0 {
            return Err(ConfigError::Invalid("window: must be within 2s..1h".into()));
        }
        if !OPEN_RUNS_RANGE.contains(&c.max_open_runs) {
            return Err(ConfigError::Invalid(format!(
                "max_open_runs: must be within {}..={} (got {})",
                OPEN_RUNS_RANGE.start(),
                OPEN_RUNS_RANGE.end(),
                c.max_open_runs
            )));
        }
        if !TRACE_LINES_RANGE.contains(&c.max_trace_lines_per_s) {
            return Err(ConfigError::Invalid(format!(
                "max_trace_lines_per_s: must be within {}..={} (got {})",
                TRACE_LINES_RANGE.start(),
                TRACE_LINES_RANGE.end(),
                c.max_trace_lines_per_s
            )));
        }
        if let Some(k) = &c.trace_key {
            if k.len() < MIN_TRACE_KEY_BYTES {
                return Err(ConfigError::Invalid(format!(
                    "trace_key: must be at least {MIN_TRACE_KEY_BYTES} bytes (got {})",
                    k.len()
                )));
            }
        }
        if let Some(m) = &c.models {
            m.validate()?;
        }
        if c.mode == Mode::LoadTest {
            let lt = c
                .loadtest
                .as_ref()
                .ok_or_else(|| ConfigError::Invalid("loadtest: required with mode loadtest".into()))?;
            lt.validate()?;
            let m =
                c.models.as_ref().ok_or_else(|| ConfigError::Invalid("models: required with mode loadtest".into()))?;
            if c.rule.is_none() {
                return Err(ConfigError::Invalid("rule: required with mode loadtest (the agents' state)".into()));
            }
            for spec in m.configuration.agents() {
                let fixed = match spec.extra {
                    crate::agent::Extra::RunLoad(crate::agent::AgentKind::Threads) => Some(("threads", lt.threads)),
                    crate::agent::Extra::RunLoad(crate::agent::AgentKind::Calls) => Some(("calls", lt.calls)),
                    _ => None,
                };
                if let Some((name, None)) = fixed {
                    return Err(ConfigError::Invalid(format!(
                        "loadtest.{name}: required by configuration {} (its agent sees the run's {name})",
                        m.configuration
                    )));
                }
            }
        }
        Ok(c)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Window length in whole seconds plus the current partial one.
    pub fn window_buckets(&self) -> usize {
        self.window.secs().ceil() as usize + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_and_full() {
        let c = ConfigV1::parse(br#"{"api":"v1","mode":"observe"}"#).unwrap();
        assert_eq!(c.idle_timeout.secs(), 2.0);
        let full = ConfigV1 { generation: 3, rule: Some(crate::rule::sample_rule()), ..Default::default() };
        assert_eq!(ConfigV1::parse(full.to_json().as_bytes()).unwrap(), full);
        assert_eq!(ConfigV1::parse(b"  ").unwrap(), ConfigV1::default());
    }

    fn loadtest_json(extra: &str) -> String {
        let sha = "a".repeat(64);
        format!(
            r#"{{"api":"v1","mode":"loadtest","rule":{rule},
            "models":{{"cluster":"artifacts","profile":"s1","configuration":"thread-call",
              "agents":{{"thread":{{"path":"/t.onnx","sha256":"{sha}"}},"call":{{"path":"/c.onnx","sha256":"{sha}"}}}}}},
            "loadtest":{{"cluster":"httpbin","authority":"httpbin","trigger":"t1"{extra}}}}}"#,
            rule = serde_json::to_string(&crate::rule::sample_rule()).unwrap()
        )
    }

    #[test]
    fn loadtest_mode() {
        let c = ConfigV1::parse(loadtest_json("").as_bytes()).unwrap();
        assert_eq!(c.mode, Mode::LoadTest);
        let m = c.models.as_ref().unwrap();
        assert_eq!(m.configuration, crate::agent::Configuration::ThreadCall);
        assert_eq!(m.authority(), "artifacts");
        assert_eq!(c.loadtest.as_ref().unwrap().path, "/get");
        assert_eq!(ConfigV1::parse(c.to_json().as_bytes()).unwrap(), c);
        let e = ConfigV1::parse(loadtest_json(r#","every":"100ms""#).as_bytes()).unwrap_err().to_string();
        assert!(e.contains("loadtest.every"), "{e}");
        let e = ConfigV1::parse(loadtest_json("").replace("thread-call", "call").as_bytes()).unwrap_err().to_string();
        assert!(e.contains("models.agents") && e.contains("[call]"), "{e}");
        let e = ConfigV1::parse(loadtest_json("").replace(r#""sha256":"aaaa"#, r#""sha256":"zzzz"#).as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("sha256"), "{e}");
        let e = ConfigV1::parse(br#"{"api":"v1","mode":"loadtest"}"#).unwrap_err().to_string();
        assert!(e.contains("loadtest: required"), "{e}");
        let e = ConfigV1::parse(br#"{"api":"v1","mode":"attack"}"#).unwrap_err().to_string();
        assert!(e.contains("attack"), "{e}");
    }

    #[test]
    fn single_agent_needs_the_fixed_load() {
        let j = loadtest_json("")
            .replace("thread-call", "call")
            .replace(r#""thread":{"path":"/t.onnx","sha256":""#, r#""x":{"path":"/t.onnx","sha256":""#);
        let j = j.replace(
            r#""x":{"path":"/t.onnx","sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"#,
            "",
        );
        let e = ConfigV1::parse(j.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("loadtest.threads"), "{e}");
        let ok = j.replace(r#""trigger":"t1""#, r#""trigger":"t1","threads":2"#);
        assert_eq!(ConfigV1::parse(ok.as_bytes()).unwrap().loadtest.unwrap().threads, Some(2));
    }

    #[test]
    fn errors_name_the_field() {
        let e = ConfigV1::parse(br#"{"api":"v1","modee":"observe"}"#).unwrap_err().to_string();
        assert!(e.contains("modee"), "{e}");
        let e = ConfigV1::parse(br#"{"api":"v2"}"#).unwrap_err().to_string();
        assert!(e.contains("v2"), "{e}");
        let e = ConfigV1::parse(br#"{"api":"v1","idle_timeout":"soon"}"#).unwrap_err().to_string();
        assert!(e.contains("soon"), "{e}");
        let mut rule = serde_json::to_value(crate::rule::sample_rule()).unwrap();
        rule["max_ejection_percent"] = 150.into();
        let j = serde_json::json!({"api":"v1","rule":rule}).to_string();
        let e = ConfigV1::parse(j.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("maxEjectionPercent"), "{e}");
    }
}
