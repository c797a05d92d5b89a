//! Rolling window of responses for traffic that belongs to no announced run: one-second buckets,
//! mergeable across worker VMs.

use serde::{Deserialize, Serialize};

/// Counts for one whole second (`sec` = seconds since the epoch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub sec: u64,
    pub total: u64,
    pub c503: u64,
    /// Sum of the responses' request durations (µs): concurrency by Little's law.
    #[serde(default)]
    pub busy_us: u64,
}

/// The last `len` seconds of responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollingWindow {
    pub buckets: Vec<Bucket>,
}

impl RollingWindow {
    pub fn new(len: usize) -> Self {
        Self { buckets: vec![Bucket::default(); len.max(1)] }
    }

    fn slot(&mut self, sec: u64) -> Option<&mut Bucket> {
        let n = self.buckets.len() as u64;
        let b = &mut self.buckets[(sec % n) as usize];
        if b.sec > sec {
            return None; // older than the window
        }
        if b.sec < sec {
            *b = Bucket { sec, ..Default::default() };
        }
        Some(b)
    }

    pub fn record(&mut self, now_ns: u64, code: u16) {
        self.record_timed(now_ns, code, 0);
    }

    /// Counts a response that took `duration_ns` from request start to response end.
    pub fn record_timed(&mut self, now_ns: u64, code: u16, duration_ns: u64) {
        self.add(now_ns / 1_000_000_000, 1, u64::from(code == 503), duration_ns / 1000);
    }

    fn add(&mut self, sec: u64, total: u64, c503: u64, busy_us: u64) {
        if let Some(b) = self.slot(sec) {
            b.total += total;
            b.c503 += c503;
            b.busy_us += busy_us;
        }
    }

    /// Adds another window's counts (same length or not).
    pub fn merge(&mut self, other: &RollingWindow) {
        for b in other.buckets.iter().filter(|b| b.total > 0) {
            self.add(b.sec, b.total, b.c503, b.busy_us);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.total == 0)
    }

    /// The observed load over the same seconds as [`RollingWindow::stats`]: mean concurrency
    /// (in-flight requests, Little's law: busy time / span) and the number of responses.
    pub fn load(&self, now_ns: u64) -> (f64, u64) {
        let now = now_ns / 1_000_000_000;
        let span = (self.buckets.len() as u64).saturating_sub(1).max(1);
        let recent = self.buckets.iter().filter(|b| b.sec < now && b.sec + span >= now && b.total > 0);
        let (busy, total) = recent.fold((0u64, 0u64), |(u, t), b| (u + b.busy_us, t + b.total));
        (busy as f64 / 1e6 / span as f64, total)
    }

    /// (QPS, 503 rate) over the `len - 1` whole seconds before the current one.
    pub fn stats(&self, now_ns: u64) -> (f64, f64) {
        let now = now_ns / 1_000_000_000;
        let n = self.buckets.len() as u64;
        let span = n.saturating_sub(1).max(1);
        let (mut total, mut c503) = (0, 0);
        for b in &self.buckets {
            if b.sec < now && b.sec + span >= now && b.total > 0 {
                total += b.total;
                c503 += b.c503;
            }
        }
        let rate = if total > 0 { c503 as f64 / total as f64 } else { 0.0 };
        (total as f64 / span as f64, rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const S: u64 = 1_000_000_000;

    #[test]
    fn load_is_littles_law() {
        let mut w = RollingWindow::new(3);
        // Two seconds with 4 responses of 500 ms each: 2 s busy per second -> concurrency 1.
        for sec in [10, 11] {
            for _ in 0..4 {
                w.record_timed(sec * S + 1, 200, S / 4);
            }
        }
        let (c, n) = w.load(12 * S);
        assert_eq!(n, 8);
        assert!((c - 1.0).abs() < 1e-9, "{c}");
        let mut other = RollingWindow::new(3);
        other.merge(&w);
        assert_eq!(other.load(12 * S), (c, n));
    }

    #[test]
    fn counts_only_whole_recent_seconds() {
        let mut w = RollingWindow::new(11);
        for i in 0..20u64 {
            w.record(100 * S + i * (S / 20), if i % 4 == 0 { 503 } else { 200 });
        }
        // second 100 is complete at t = 101.5 s
        let (qps, rate) = w.stats(101 * S + S / 2);
        assert_eq!(qps, 2.0); // 20 responses over a 10 s window
        assert_eq!(rate, 0.25);
        // after the window has passed, nothing is left
        assert_eq!(w.stats(200 * S), (0.0, 0.0));
    }

    #[test]
    fn old_slots_are_recycled_and_stale_events_dropped() {
        let mut w = RollingWindow::new(3);
        w.record(10 * S, 200);
        w.record(13 * S, 503); // same slot, newer second: recycles
        w.record(10 * S, 200); // stale: dropped
        assert_eq!(w.buckets.iter().map(|b| b.total).sum::<u64>(), 1);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = RollingWindow::new(5);
        let mut b = RollingWindow::new(5);
        a.record(50 * S, 200);
        b.record(50 * S, 503);
        b.record(51 * S, 200);
        a.merge(&b);
        assert_eq!(a.stats(52 * S), (3.0 / 4.0, 1.0 / 3.0));
    }
}
