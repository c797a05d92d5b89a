//! A port of fortio's `stats` package: `Counter`, `Histogram` (same bucket boundaries, same
//! `]prev, cur]` interval semantics, same offset/divider scaling), its export to
//! `HistogramData` and fortio's percentile interpolation, plus the text/JSON renderings.

use serde_json::{json, Value};

use super::gofmt::fmt_g;

/// fortio's bucket upper bounds (in units of `divider`, after subtracting `offset`).
const BUCKET_VALUES: [i32; 56] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, // by 1
    12, 14, 16, 18, 20, // by 2
    25, 30, 35, 40, 45, 50, // by 5
    60, 70, 80, 90, 100, // by 10
    120, 140, 160, 180, 200, // x10
    250, 300, 350, 400, 450, 500, //
    600, 700, 800, 900, 1000, //
    2000, 3000, 4000, 5000, 7500, 10000, // coarse
    20000, 30000, 40000, 50000, 75000, 100000, // the end
];
const NUM_VALUES: usize = BUCKET_VALUES.len();
/// One special first bucket for `<= 0` and one extra last bucket for `> 100000`.
const NUM_BUCKETS: usize = NUM_VALUES + 1;

/// The percentiles fortio's CLI reports by default (`-p "50,75,90,99,99.9"`).
pub(crate) const DEFAULT_PERCENTILES: [f64; 5] = [50.0, 75.0, 90.0, 99.0, 99.9];

/// Count / min / max / sum / sum of squares, as fortio's `stats.Counter`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counter {
    pub count: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    sum_sq: f64,
}

impl Counter {
    #[inline]
    pub fn record(&mut self, v: f64) {
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else if v < self.min {
            self.min = v;
        } else if v > self.max {
            self.max = v;
        }
        self.count += 1;
        self.sum += v;
        self.sum_sq += v * v;
    }

    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    pub fn std_dev(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let c = self.count as f64;
        let sigma = (self.sum_sq - self.sum * self.sum / c) / c;
        if sigma < 0.0 {
            0.0
        } else {
            sigma.sqrt()
        }
    }

    /// Merges `src` into `self` (fortio's `Counter.Transfer`, without clearing `src`).
    pub fn merge(&mut self, src: &Counter) {
        if src.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = src.clone();
            return;
        }
        self.count += src.count;
        if src.min < self.min {
            self.min = src.min;
        }
        if src.max > self.max {
            self.max = src.max;
        }
        self.sum += src.sum;
        self.sum_sq += src.sum_sq;
    }

    /// The body of fortio's `Counter.Print` line (without the `msg : ` prefix).
    pub fn stats_text(&self) -> String {
        format!(
            "count {} avg {} +/- {} min {} max {} sum {}",
            self.count,
            fmt_g(self.avg(), Some(8)),
            fmt_g(self.std_dev(), Some(4)),
            fmt_g(self.min, None),
            fmt_g(self.max, None),
            fmt_g(self.sum, Some(9))
        )
    }

    /// fortio's `Counter.Print(out, msg)` line (with trailing newline).
    pub fn print(&self, msg: &str) -> String {
        format!("{msg} : {}\n", self.stats_text())
    }
}

/// fortio's `stats.Histogram`.
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    pub counter: Counter,
    offset: f64,
    divider: f64,
    hdata: [u32; NUM_BUCKETS],
}

impl Histogram {
    pub fn new(offset: f64, divider: f64) -> Self {
        Histogram { counter: Counter::default(), offset, divider, hdata: [0; NUM_BUCKETS] }
    }

    #[inline]
    pub fn record(&mut self, v: f64) {
        self.counter.record(v);
        let idx = bucket_index((v - self.offset) / self.divider);
        self.hdata[idx] += 1;
    }

    /// Adds `src`'s data to `self` (both must share offset/divider, which is always the case here).
    pub fn merge(&mut self, src: &Histogram) {
        self.counter.merge(&src.counter);
        for (d, s) in self.hdata.iter_mut().zip(src.hdata.iter()) {
            *d += *s;
        }
    }

    /// Count in the special first bucket (values `<= offset`); used for "sleep falling behind".
    pub fn first_bucket_count(&self) -> u32 {
        self.hdata[0]
    }

    /// fortio's `Histogram.Export()`.
    pub fn export(&self) -> HistogramData {
        let c = &self.counter;
        let mut res = HistogramData {
            count: c.count,
            min: c.min,
            max: c.max,
            sum: c.sum,
            avg: c.avg(),
            std_dev: c.std_dev(),
            data: Vec::new(),
            percentiles: Vec::new(),
        };
        let Some(last_idx) = self.hdata.iter().rposition(|&n| n > 0) else {
            return res;
        };
        let mut prev = BUCKET_VALUES[0];
        let mut total: i64 = 0;
        let ctr_total = c.count as f64;
        for (i, &n) in self.hdata.iter().enumerate().take(last_idx + 1) {
            if n == 0 {
                if i < NUM_VALUES {
                    prev = BUCKET_VALUES[i];
                }
                continue;
            }
            total += i64::from(n);
            let mut start = if res.data.is_empty() { c.min } else { self.divider * f64::from(prev) + self.offset };
            let percent = 100.0 * total as f64 / ctr_total;
            let end = if i < NUM_VALUES {
                let cur = BUCKET_VALUES[i];
                prev = cur;
                self.divider * f64::from(cur) + self.offset
            } else {
                start = self.divider * f64::from(prev) + self.offset;
                c.max
            };
            res.data.push(Bucket { start, end, percent, count: i64::from(n) });
        }
        if let Some(b) = res.data.last_mut() {
            b.end = c.max;
        }
        res
    }
}

/// Bucket index for a scaled value, exactly as fortio's `Histogram.record`.
#[inline]
fn bucket_index(scaled: f64) -> usize {
    if scaled.is_nan() || scaled <= f64::from(BUCKET_VALUES[0]) {
        return 0;
    }
    if scaled > f64::from(BUCKET_VALUES[NUM_VALUES - 1]) {
        return NUM_BUCKETS - 1;
    }
    // Intervals are open on the left: a value exactly on a boundary belongs to the lower bucket.
    let mut sv = scaled as i64;
    if scaled - (sv as f64) < 1e-12 {
        sv -= 1;
    }
    // Index of the first bucket value strictly greater than sv.
    BUCKET_VALUES.partition_point(|&b| i64::from(b) <= sv)
}

/// One exported bucket: `]start, end]` (the first one starts at min, the last one ends at max).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Bucket {
    pub start: f64,
    pub end: f64,
    /// Cumulative percentage.
    pub percent: f64,
    pub count: i64,
}

/// fortio's `stats.HistogramData`.
#[derive(Clone, Debug, Default)]
pub(crate) struct HistogramData {
    pub count: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub avg: f64,
    pub std_dev: f64,
    pub data: Vec<Bucket>,
    pub percentiles: Vec<(f64, f64)>,
}

impl HistogramData {
    /// fortio's `CalcPercentile` (linear interpolation inside the bucket).
    pub fn calc_percentile(&self, percentile: f64) -> f64 {
        if self.data.is_empty() {
            return 0.0;
        }
        if percentile >= 100.0 {
            return self.max;
        }
        let mut pp = 100.0 / self.count as f64;
        if percentile <= pp {
            return self.min;
        }
        for cur in &self.data {
            if percentile <= cur.percent {
                return cur.start + (percentile - pp) / (cur.percent - pp) * (cur.end - cur.start);
            }
            pp = cur.percent;
        }
        self.max
    }

    /// fortio's `CalcPercentiles` (no-op on an empty histogram).
    pub fn with_percentiles(mut self, ps: &[f64]) -> Self {
        if self.count == 0 {
            return self;
        }
        self.percentiles = ps.iter().map(|&p| (p, self.calc_percentile(p))).collect();
        self
    }

    /// The value computed for percentile `p` by `with_percentiles`, if any.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        self.percentiles.iter().find(|(q, _)| *q == p).map(|(_, v)| *v)
    }

    /// fortio's `HistogramData.Print(out, msg)`.
    pub fn print(&self, msg: &str) -> String {
        if self.data.is_empty() {
            return format!("{msg} : no data\n");
        }
        let mut out = format!(
            "{msg} : count {} avg {} +/- {} min {} max {} sum {}\n",
            self.count,
            fmt_g(self.avg, Some(8)),
            fmt_g(self.std_dev, Some(4)),
            fmt_g(self.min, None),
            fmt_g(self.max, None),
            fmt_g(self.sum, Some(9))
        );
        out.push_str("# range, mid point, percentile, count\n");
        for (i, b) in self.data.iter().enumerate() {
            let sep = if i > 0 { ">" } else { ">=" };
            out.push_str(&format!(
                "{sep} {} <= {} , {} , {:.2}, {}\n",
                fmt_g(b.start, Some(6)),
                fmt_g(b.end, Some(6)),
                fmt_g((b.start + b.end) / 2.0, Some(6)),
                b.percent,
                b.count
            ));
        }
        for (p, v) in &self.percentiles {
            out.push_str(&format!("# target {}% {}\n", fmt_g(*p, None), fmt_g(*v, Some(6))));
        }
        out
    }

    /// fortio's JSON encoding of `HistogramData` (`Data` is `null` when empty, like Go's nil
    /// slice; `Percentiles` is omitted when empty, like `omitempty`).
    pub fn to_json(&self) -> Value {
        let data = if self.data.is_empty() {
            Value::Null
        } else {
            Value::Array(
                self.data
                    .iter()
                    .map(|b| json!({"Start": b.start, "End": b.end, "Percent": b.percent, "Count": b.count}))
                    .collect(),
            )
        };
        let mut v = json!({
            "Count": self.count,
            "Min": self.min,
            "Max": self.max,
            "Sum": self.sum,
            "Avg": self.avg,
            "StdDev": self.std_dev,
            "Data": data,
        });
        if !self.percentiles.is_empty() {
            if let Some(obj) = v.as_object_mut() {
                obj.insert(
                    "Percentiles".to_string(),
                    Value::Array(
                        self.percentiles.iter().map(|(p, val)| json!({"Percentile": p, "Value": val})).collect(),
                    ),
                );
            }
        }
        v
    }
}
