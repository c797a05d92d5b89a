//! Traffic rules (the seven DestinationRule attributes) and load settings (fortio -c, -n).

use crate::duration::IstioDuration;
use crate::feature::{Feature, N_FEATURES, N_RULES};
use serde::{Deserialize, Serialize};

/// The seven DestinationRule attributes the paper varies, with typed units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficRule {
    /// connectionPool.http.http1MaxPendingRequests (requests)
    pub max_pending_requests: u32,
    /// connectionPool.tcp.maxConnections (connections)
    pub max_connections: u32,
    /// connectionPool.http.maxRequestsPerConnection (requests, 0 = unlimited)
    pub max_requests_per_connection: u32,
    /// outlierDetection.baseEjectionTime
    pub base_ejection_time: IstioDuration,
    /// outlierDetection.maxEjectionPercent (0..=100)
    pub max_ejection_percent: u32,
    /// outlierDetection.interval
    pub interval: IstioDuration,
    /// outlierDetection.consecutive5xxErrors
    pub consecutive_5xx_errors: u32,
}

/// A fortio load setting: `-c threads -n calls`, max speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSetting {
    pub threads: u32,
    pub calls: u32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl TrafficRule {
    /// Istio's own validation: positive limits where Istio requires them, percent in 0..=100,
    /// durations >= 1ms (already enforced by the duration type).
    pub fn validate(&self) -> Result<(), RuleError> {
        let bad = |field, reason: &str| Err(RuleError::Invalid { field, reason: reason.into() });
        if self.max_pending_requests == 0 {
            return bad("http1MaxPendingRequests", "must be >= 1");
        }
        if self.max_connections == 0 {
            return bad("maxConnections", "must be >= 1");
        }
        if self.max_ejection_percent > 100 {
            return bad("maxEjectionPercent", "must be in 0..=100");
        }
        if self.interval.secs() < 1e-3 {
            return bad("interval", "must be >= 1ms");
        }
        Ok(())
    }

    /// The seven rule values, in feature order, durations in seconds.
    pub fn values(&self) -> [f64; N_RULES] {
        [
            self.max_pending_requests as f64,
            self.max_connections as f64,
            self.max_requests_per_connection as f64,
            self.base_ejection_time.secs(),
            self.max_ejection_percent as f64,
            self.interval.secs(),
            self.consecutive_5xx_errors as f64,
        ]
    }

    /// The value of one rule feature (durations in seconds); 0 for a load feature.
    pub fn get(&self, f: Feature) -> f64 {
        if f.is_rule() {
            self.values()[f.index()]
        } else {
            0.0
        }
    }

    /// Sets one rule feature from its value (durations in seconds); a load feature is ignored.
    pub fn set(&mut self, f: Feature, v: f64) {
        if f.is_rule() {
            let mut all = self.values();
            all[f.index()] = v;
            *self = Self::from_values(&all);
        }
    }

    /// What the client sidecar's cluster gets for the fields a DestinationRule leaves unset, as
    /// istiod renders them (`../shared/reference/istio-envoy-semantics.md` 1.2): limits at
    /// 2^32-1 (`applyConnectionPool` always runs), no per-connection request limit, and Envoy's
    /// outlier defaults (10s interval, 30s base ejection, 10%). `outlier`: whether the rule has an
    /// `outlierDetection` block; with one, unset `consecutive5xxErrors` is Envoy's 5 (enforced),
    /// without one no host is ever ejected (0 here: the lab enforces no consecutive-5xx ejection).
    pub fn unset(outlier: bool) -> Self {
        Self {
            max_pending_requests: u32::MAX,
            max_connections: u32::MAX,
            max_requests_per_connection: 0,
            base_ejection_time: IstioDuration::from_secs(30.0),
            max_ejection_percent: 10,
            interval: IstioDuration::from_secs(10.0),
            consecutive_5xx_errors: if outlier { 5 } else { 0 },
        }
    }

    /// Inverse of [`TrafficRule::values`].
    pub fn from_values(v: &[f64; N_RULES]) -> Self {
        Self {
            max_pending_requests: v[0].round() as u32,
            max_connections: v[1].round() as u32,
            max_requests_per_connection: v[2].round() as u32,
            base_ejection_time: IstioDuration::from_secs(v[3]),
            max_ejection_percent: v[4].round() as u32,
            interval: IstioDuration::from_secs(v[5]),
            consecutive_5xx_errors: v[6].round() as u32,
        }
    }
}

/// Rule values Istio accepts and that limit nothing much, in feature order: a base to check one
/// field's value against Istio's validation on its own.
pub fn open_values() -> [f64; N_RULES] {
    [1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
}

/// The nine simulator inputs of one run, in feature order.
pub fn feature_vector(rule: &TrafficRule, load: &LoadSetting) -> [f64; N_FEATURES] {
    let r = rule.values();
    let mut out = [0.0; N_FEATURES];
    out[..N_RULES].copy_from_slice(&r);
    out[Feature::Threads.index()] = load.threads as f64;
    out[Feature::Calls.index()] = load.calls as f64;
    out
}

#[cfg(test)]
pub(crate) fn sample_rule() -> TrafficRule {
    TrafficRule {
        max_pending_requests: 1,
        max_connections: 1,
        max_requests_per_connection: 1,
        base_ejection_time: IstioDuration::from_secs(180.0),
        max_ejection_percent: 100,
        interval: IstioDuration::from_secs(1.0),
        consecutive_5xx_errors: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_roundtrip_in_feature_order() {
        let r = sample_rule();
        assert_eq!(TrafficRule::from_values(&r.values()), r);
        let f = feature_vector(&r, &LoadSetting { threads: 3, calls: 30 });
        assert_eq!(f[Feature::BaseEjectionTime.index()], 180.0);
        assert_eq!(f[Feature::Threads.index()], 3.0);
        assert_eq!(f[Feature::Calls.index()], 30.0);
    }

    #[test]
    fn get_and_set_one_field() {
        let mut r = sample_rule();
        assert_eq!(r.get(Feature::BaseEjectionTime), 180.0);
        r.set(Feature::Interval, 0.5);
        assert_eq!(r.interval, IstioDuration::from_secs(0.5));
        r.set(Feature::Threads, 9.0);
        assert_eq!(r.get(Feature::Threads), 0.0);
        assert_eq!(TrafficRule::unset(true).consecutive_5xx_errors, 5);
        assert_eq!(TrafficRule::unset(false).max_connections, u32::MAX);
    }

    #[test]
    fn validation_names_the_field() {
        let mut r = sample_rule();
        r.max_ejection_percent = 101;
        let e = r.validate().unwrap_err().to_string();
        assert!(e.contains("maxEjectionPercent"), "{e}");
        let mut r = sample_rule();
        r.max_connections = 0;
        assert!(r.validate().unwrap_err().to_string().contains("maxConnections"));
    }

    #[test]
    fn serde_uses_istio_durations() {
        let j = serde_json::to_value(sample_rule()).unwrap();
        assert_eq!(j["base_ejection_time"], "3m");
        assert_eq!(j["interval"], "1s");
        let back: TrafficRule = serde_json::from_value(j).unwrap();
        assert_eq!(back, sample_rule());
    }
}
