//! Per-run counters: what the filter accumulates for one load-test run, mergeable across the
//! Envoy worker VMs that each saw part of the run.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Envoy `response.flags` bits (StreamInfo::CoreResponseFlag order).
pub mod flags {
    pub const NO_HEALTHY_UPSTREAM: u64 = 0x2; // UH
    pub const UPSTREAM_CONNECTION_FAILURE: u64 = 0x20; // UF
    pub const UPSTREAM_OVERFLOW: u64 = 0x80; // UO
    pub const FAULT_INJECTED: u64 = 0x400; // FI
}

/// Why a response is what it is, from Envoy's response flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Circuit breaker: pending queue or request limit overflow (UO).
    Overflow,
    /// Every host ejected, panic mode off (UH).
    NoHealthyUpstream,
    /// Connect failure (UF).
    ConnectFailure,
    /// Client-side fault filter (FI).
    FaultInjected,
    /// The upstream answered (any code).
    Upstream,
    /// An inline test's call that Envoy answered with a local reply at dispatch: the proxy-wasm
    /// ABI then reports only a failure, so overflow (UO) and no healthy upstream (UH) look alike.
    Refused,
}

impl Reason {
    pub fn from_flags(f: u64) -> Reason {
        if f & flags::UPSTREAM_OVERFLOW != 0 {
            Reason::Overflow
        } else if f & flags::NO_HEALTHY_UPSTREAM != 0 {
            Reason::NoHealthyUpstream
        } else if f & flags::UPSTREAM_CONNECTION_FAILURE != 0 {
            Reason::ConnectFailure
        } else if f & flags::FAULT_INJECTED != 0 {
            Reason::FaultInjected
        } else {
            Reason::Upstream
        }
    }
}

/// Response counts by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonCounts {
    #[serde(default)]
    pub overflow: u64,
    #[serde(default)]
    pub no_healthy: u64,
    #[serde(default)]
    pub connect_failure: u64,
    #[serde(default)]
    pub fault: u64,
    #[serde(default)]
    pub upstream: u64,
    /// Inline test calls refused at dispatch (a local 503: overflow or no healthy upstream).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl ReasonCounts {
    fn add(&mut self, r: Reason, n: u64) {
        match r {
            Reason::Overflow => self.overflow += n,
            Reason::NoHealthyUpstream => self.no_healthy += n,
            Reason::ConnectFailure => self.connect_failure += n,
            Reason::FaultInjected => self.fault += n,
            Reason::Upstream => self.upstream += n,
            Reason::Refused => self.refused += n,
        }
    }
    fn merge(&mut self, o: &ReasonCounts) {
        self.overflow += o.overflow;
        self.no_healthy += o.no_healthy;
        self.connect_failure += o.connect_failure;
        self.fault += o.fault;
        self.upstream += o.upstream;
        self.refused += o.refused;
    }
    pub fn total(&self) -> u64 {
        self.overflow + self.no_healthy + self.connect_failure + self.fault + self.upstream + self.refused
    }
}

/// What the run headers announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunAnnounce {
    pub threads: u32,
    pub calls: u32,
}

/// Counters of one run (or of one worker's share of it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounters {
    /// Announced load (threads, calls); taken from the first response seen.
    pub threads: u32,
    pub calls: u32,
    /// Responses by HTTP status code.
    pub codes: BTreeMap<u16, u64>,
    pub reasons: ReasonCounts,
    /// Earliest request start and latest response end, ns since the epoch (0 = none yet).
    pub first_ns: u64,
    pub last_ns: u64,
    /// Requests whose announced threads/calls disagree with the run's first announcement.
    #[serde(default)]
    pub mismatched: u64,
    /// Set once the record was written, so that exactly one VM writes it.
    #[serde(default)]
    pub emitted: bool,
}

impl RunCounters {
    pub fn new(announce: RunAnnounce) -> Self {
        Self { threads: announce.threads, calls: announce.calls, ..Default::default() }
    }

    /// Counts one response. `start_ns`/`end_ns`: request start and response end.
    pub fn record(&mut self, announce: RunAnnounce, code: u16, response_flags: u64, start_ns: u64, end_ns: u64) {
        self.record_reason(announce, code, Reason::from_flags(response_flags), start_ns, end_ns);
    }

    /// Counts one response whose cause is known otherwise than from Envoy's flags.
    pub fn record_reason(&mut self, announce: RunAnnounce, code: u16, reason: Reason, start_ns: u64, end_ns: u64) {
        if self.calls == 0 && self.threads == 0 {
            self.threads = announce.threads;
            self.calls = announce.calls;
        } else if announce.calls != self.calls || announce.threads != self.threads {
            self.mismatched += 1;
        }
        *self.codes.entry(code).or_insert(0) += 1;
        self.reasons.add(reason, 1);
        self.widen(start_ns, end_ns);
    }

    fn widen(&mut self, start_ns: u64, end_ns: u64) {
        if start_ns != 0 && (self.first_ns == 0 || start_ns < self.first_ns) {
            self.first_ns = start_ns;
        }
        if end_ns > self.last_ns {
            self.last_ns = end_ns;
        }
    }

    /// Adds another share of the same run (e.g. another worker's).
    pub fn merge(&mut self, o: &RunCounters) {
        if self.calls == 0 && self.threads == 0 {
            self.threads = o.threads;
            self.calls = o.calls;
        } else if (o.calls != 0 || o.threads != 0) && (o.calls != self.calls || o.threads != self.threads) {
            self.mismatched += o.responses();
        }
        for (c, n) in &o.codes {
            *self.codes.entry(*c).or_insert(0) += n;
        }
        self.reasons.merge(&o.reasons);
        self.mismatched += o.mismatched;
        self.widen(o.first_ns, o.last_ns);
        self.emitted |= o.emitted;
    }

    pub fn responses(&self) -> u64 {
        self.codes.values().sum()
    }

    pub fn count(&self, code: u16) -> u64 {
        self.codes.get(&code).copied().unwrap_or(0)
    }

    /// All announced calls answered.
    pub fn is_complete(&self) -> bool {
        self.calls > 0 && self.responses() >= self.calls as u64
    }

    /// Seconds from the first request start to the last response end.
    pub fn span_s(&self) -> f64 {
        if self.last_ns > self.first_ns && self.first_ns > 0 {
            (self.last_ns - self.first_ns) as f64 / 1e9
        } else {
            0.0
        }
    }

    /// Responses per second over the span.
    pub fn qps(&self) -> f64 {
        let s = self.span_s();
        if s > 0.0 {
            self.responses() as f64 / s
        } else {
            0.0
        }
    }

    pub fn rate(&self, code: u16) -> f64 {
        let n = self.responses();
        if n == 0 {
            0.0
        } else {
            self.count(code) as f64 / n as f64
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: RunAnnounce = RunAnnounce { threads: 2, calls: 4 };

    #[test]
    fn counts_and_completes() {
        let mut c = RunCounters::new(A);
        c.record(A, 200, 0, 1_000, 2_000);
        c.record(A, 503, flags::UPSTREAM_OVERFLOW, 1_500, 1_600);
        assert!(!c.is_complete());
        c.record(A, 503, 0, 2_000, 3_000);
        c.record(A, 200, 0, 2_500, 1_000_001_000);
        assert!(c.is_complete());
        assert_eq!(c.count(200), 2);
        assert_eq!(c.reasons.overflow, 1);
        assert_eq!(c.reasons.upstream, 3);
        assert_eq!(c.first_ns, 1_000);
        assert_eq!(c.span_s(), 1.0);
        assert_eq!(c.qps(), 4.0);
        assert_eq!(c.rate(503), 0.5);
    }

    #[test]
    fn merge_equals_single_stream() {
        let events = [
            (200, 0, 10, 20),
            (503, flags::NO_HEALTHY_UPSTREAM, 5, 7),
            (200, 0, 30, 90),
            (503, flags::FAULT_INJECTED, 1, 2),
        ];
        let mut whole = RunCounters::new(A);
        let mut w1 = RunCounters::default();
        let mut w2 = RunCounters::default();
        for (i, (code, f, s, e)) in events.iter().enumerate() {
            whole.record(A, *code, *f, *s, *e);
            if i % 2 == 0 {
                w1.record(A, *code, *f, *s, *e)
            } else {
                w2.record(A, *code, *f, *s, *e)
            }
        }
        let mut merged = RunCounters::default();
        merged.merge(&w1);
        merged.merge(&w2);
        assert_eq!(merged, whole);
        assert_eq!(RunCounters::decode(&merged.encode()).unwrap(), merged);
    }

    #[test]
    fn mismatched_announcements_are_counted() {
        let mut c = RunCounters::new(A);
        c.record(RunAnnounce { threads: 3, calls: 4 }, 200, 0, 1, 2);
        assert_eq!(c.mismatched, 1);
    }

    #[test]
    fn reasons_from_flags() {
        assert_eq!(Reason::from_flags(128), Reason::Overflow);
        assert_eq!(Reason::from_flags(2), Reason::NoHealthyUpstream);
        assert_eq!(Reason::from_flags(1024), Reason::FaultInjected);
        assert_eq!(Reason::from_flags(32), Reason::ConnectFailure);
        assert_eq!(Reason::from_flags(0), Reason::Upstream);
    }
}
