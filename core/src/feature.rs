//! The one feature order (paper Table 1, corrected mapping): every CSV column, tensor column and
//! ONNX input refers to it by name through [`Feature`].

use serde::{Deserialize, Serialize};

/// One simulator input, in the paper's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    MaxPendingRequests,
    MaxConnections,
    MaxRequestsPerConnection,
    BaseEjectionTime,
    MaxEjectionPercent,
    Interval,
    Consecutive5xxErrors,
    Threads,
    Calls,
}

pub const N_FEATURES: usize = 9;
/// The traffic-rule features (DestinationRule settings) come first: `FEATURES[..N_RULES]`.
pub const N_RULES: usize = 7;
/// The load features (threads, calls) follow the rules: `FEATURES[N_RULES..]`.
pub const N_LOAD: usize = 2;
const _: () = assert!(N_RULES + N_LOAD == N_FEATURES);

/// The nine inputs, in order.
pub const FEATURES: [Feature; N_FEATURES] = [
    Feature::MaxPendingRequests,
    Feature::MaxConnections,
    Feature::MaxRequestsPerConnection,
    Feature::BaseEjectionTime,
    Feature::MaxEjectionPercent,
    Feature::Interval,
    Feature::Consecutive5xxErrors,
    Feature::Threads,
    Feature::Calls,
];

/// The seven traffic-rule features, in order (the agents' base state): `FEATURES[..N_RULES]`.
pub const RULE_FEATURES: [Feature; N_RULES] = {
    let mut out = [FEATURES[0]; N_RULES];
    let mut i = 0;
    while i < N_RULES {
        out[i] = FEATURES[i];
        i += 1;
    }
    out
};

impl Feature {
    /// Column / tensor / ONNX input name.
    pub fn name(self) -> &'static str {
        match self {
            Feature::MaxPendingRequests => "max_pending_requests",
            Feature::MaxConnections => "max_connections",
            Feature::MaxRequestsPerConnection => "max_requests_per_connection",
            Feature::BaseEjectionTime => "base_ejection_time_s",
            Feature::MaxEjectionPercent => "max_ejection_percent",
            Feature::Interval => "interval_s",
            Feature::Consecutive5xxErrors => "consecutive_5xx_errors",
            Feature::Threads => "threads",
            Feature::Calls => "calls",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Feature::MaxPendingRequests | Feature::MaxRequestsPerConnection => "requests",
            Feature::MaxConnections | Feature::Threads => "connections",
            Feature::BaseEjectionTime | Feature::Interval => "seconds",
            Feature::MaxEjectionPercent => "percent",
            Feature::Consecutive5xxErrors => "errors",
            Feature::Calls => "calls",
        }
    }

    /// The Istio DestinationRule field (or fortio flag) this input comes from.
    pub fn source(self) -> &'static str {
        match self {
            Feature::MaxPendingRequests => "connectionPool.http.http1MaxPendingRequests",
            Feature::MaxConnections => "connectionPool.tcp.maxConnections",
            Feature::MaxRequestsPerConnection => "connectionPool.http.maxRequestsPerConnection",
            Feature::BaseEjectionTime => "outlierDetection.baseEjectionTime",
            Feature::MaxEjectionPercent => "outlierDetection.maxEjectionPercent",
            Feature::Interval => "outlierDetection.interval",
            Feature::Consecutive5xxErrors => "outlierDetection.consecutive5xxErrors",
            Feature::Threads => "fortio -c",
            Feature::Calls => "fortio -n",
        }
    }

    /// Whether the feature is a duration (an Istio string at the edges, seconds inside).
    pub fn is_duration(self) -> bool {
        matches!(self, Feature::BaseEjectionTime | Feature::Interval)
    }

    /// Whether the feature is a DestinationRule attribute (not the load).
    pub fn is_rule(self) -> bool {
        !matches!(self, Feature::Threads | Feature::Calls)
    }

    pub fn index(self) -> usize {
        FEATURES.iter().position(|f| *f == self).unwrap_or(0)
    }

    pub fn from_name(name: &str) -> Option<Feature> {
        FEATURES.iter().copied().find(|f| f.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_names_are_stable() {
        let names: Vec<_> = FEATURES.iter().map(|f| f.name()).collect();
        assert_eq!(names[0], "max_pending_requests");
        assert_eq!(names[8], "calls");
        for (i, f) in FEATURES.iter().enumerate() {
            assert_eq!(f.index(), i);
            assert_eq!(Feature::from_name(f.name()), Some(*f));
        }
        assert_eq!(RULE_FEATURES[..], FEATURES[..N_RULES]);
    }
}
