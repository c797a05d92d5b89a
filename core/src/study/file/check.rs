//! The checks of a study file: each field against Istio's validation and the study's own
//! consistency, resolved into the [`Study`] every stage works from.

use super::*;
use crate::failure::Failure;
use crate::feature::{Feature, RULE_FEATURES};
use crate::rule::TrafficRule;
use crate::study::{
    Attribute, Capacity, Collection, Grid, LabTopology, Quota, Ready, Span, Study, Upstream, UpstreamAsset,
};
use crate::study::{API_VERSION, KIND};

/// The largest value of an Istio int32 field.
const INT32_MAX: f64 = i32::MAX as f64;

type Checked<T> = Result<T, StudyError>;

fn err<T>(path: impl Into<String>, msg: impl Into<String>) -> Checked<T> {
    Err(StudyError::at(path, msg))
}

/// A Kubernetes DNS label (RFC 1123): the study name is also a file and folder name.
fn dns_label(path: &str, s: &str) -> Checked<()> {
    if crate::study::is_name(s) {
        Ok(())
    } else {
        err(path, format!("{s:?} is not a DNS label (lower-case letters, digits and '-', at most 63)"))
    }
}

fn http_path(path: &str, p: &str) -> Checked<()> {
    if p.starts_with('/') && p.len() <= 1024 && p.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        err(path, format!("{p:?} is not a request path (starts with '/', printable ASCII, at most 1024)"))
    }
}

fn percent(path: &str, v: f64) -> Checked<()> {
    if (0.0..=100.0).contains(&v) {
        Ok(())
    } else {
        err(path, format!("{v} is outside 0..=100"))
    }
}

/// The value of one end of an attribute's range, in the catalogue unit (seconds for durations).
fn scalar(path: &str, f: Feature, v: &Scalar) -> Checked<f64> {
    let x = match (f.is_duration(), v) {
        (true, Scalar::Text(t)) => IstioDuration::parse(t).map_err(|e| StudyError::at(path, e.to_string()))?.secs(),
        (true, Scalar::Number(n)) => {
            return err(path, format!("{n} has no unit: {} is a duration, e.g. \"3m\" or \"500ms\"", f.source()))
        }
        (false, Scalar::Number(n)) if n.fract() == 0.0 && *n >= 0.0 && *n <= INT32_MAX => *n,
        (false, Scalar::Number(n)) => return err(path, format!("{n} is not a whole number in 0..={}", i32::MAX)),
        (false, Scalar::Text(t)) => return err(path, format!("{t:?} is not a number")),
    };
    // Istio's own validation of the field (TrafficRule::validate), on this end of the range.
    let mut rule = crate::rule::open_values();
    rule[f.index()] = x;
    TrafficRule::from_values(&rule).validate().map_err(|e| StudyError::at(path, e.to_string()))?;
    if f.is_duration() && (x * 1000.0).fract().abs() > 1e-9 {
        return err(path, "durations of a study are whole milliseconds");
    }
    Ok(x)
}

fn attribute(i: usize, a: &AttributeFile) -> Checked<Attribute> {
    let at = format!("attributes[{i}]");
    let Some(f) = RULE_FEATURES.iter().copied().find(|f| f.source() == a.field) else {
        let known: Vec<&str> = RULE_FEATURES.iter().map(|f| f.source()).collect();
        return err(
            format!("{at}.field"),
            format!("unknown field {:?}: the catalogue has {}", a.field, known.join(", ")),
        );
    };
    let (lo, hi) = match (&a.range, &a.value) {
        (Some([lo, hi]), None) => {
            let (lo, hi) = (scalar(&format!("{at}.range[0]"), f, lo)?, scalar(&format!("{at}.range[1]"), f, hi)?);
            if lo > hi {
                return err(format!("{at}.range"), "the range is reversed (lo > hi)");
            }
            (lo, hi)
        }
        (None, Some(v)) => {
            let v = scalar(&format!("{at}.value"), f, v)?;
            (v, v)
        }
        _ => return err(at, "give exactly one of range: [lo, hi] and value"),
    };
    Ok(Attribute { feature: f, lo, hi })
}

fn axis(path: &str, a: &AxisFile) -> Checked<(Span, Grid)> {
    let [lo, hi] = a.range;
    if lo == 0 || lo > hi {
        return err(format!("{path}.range"), format!("[{lo}, {hi}]: need 1 <= lo <= hi"));
    }
    let g = &a.grid;
    if g.step == 0 || g.from > g.to {
        return err(
            format!("{path}.grid"),
            format!("from {} to {} step {}: need from <= to and step >= 1", g.from, g.to, g.step),
        );
    }
    let grid = Grid { lo: g.from, hi: g.to, step: g.step };
    let span = Span::new(lo, hi);
    if let Some(v) = grid.values().into_iter().find(|v| !span.contains(*v)) {
        return err(format!("{path}.grid"), format!("value {v} is outside the range [{lo}, {hi}]"));
    }
    Ok((span, grid))
}

fn ready(path: &str, r: &ReadyFile) -> Checked<Ready> {
    http_path(&format!("{path}.path"), &r.path)?;
    if !(100..=599).contains(&r.status) {
        return err(format!("{path}.status"), format!("{} is not an HTTP status", r.status));
    }
    if r.timeout.secs() > 600.0 {
        return err(format!("{path}.timeout"), format!("{} is over the lab's longest wait, 10m", r.timeout));
    }
    Ok(Ready { path: r.path.clone(), status: r.status, timeout_ms: r.timeout.millis() })
}

fn upstream(u: &UpstreamFile) -> Checked<Upstream> {
    let ready = ready("lab.upstream.ready", &u.ready)?;
    match (&u.command, &u.address) {
        (Some(argv), None) => {
            if argv.is_empty() || argv[0].trim().is_empty() {
                return err("lab.upstream.command", "empty command");
            }
            if !argv.iter().chain(u.files.iter().map(|f| &f.content)).any(|a| a.contains("{port}")) {
                return err(
                    "lab.upstream.command",
                    "neither an argument nor a file names {port}: the lab gives the upstream its port",
                );
            }
            if matches!(&u.version, Some(v) if v.is_empty()) {
                return err("lab.upstream.version", "empty command");
            }
            let files = assets(&u.files)?;
            Ok(Upstream::Command { argv: argv.clone(), ready, version: u.version.clone(), files })
        }
        (None, Some(address)) => {
            if !matches!(address.parse::<std::net::SocketAddr>(), Ok(a) if a.port() > 0) {
                return err("lab.upstream.address", format!("{address:?} is not IP:PORT (e.g. 127.0.0.1:8080)"));
            }
            if u.version.is_some() {
                return err(
                    "lab.upstream.version",
                    "a running service has no version command (it is not started here)",
                );
            }
            if !u.files.is_empty() {
                return err(
                    "lab.upstream.files",
                    "a running service has no files written for it (it is not started here)",
                );
            }
            Ok(Upstream::Address { address: address.clone(), ready })
        }
        _ => err("lab.upstream", "give exactly one of command and address"),
    }
}

/// An upstream's files: relative paths of plain names (`conf/nginx.conf`), each once.
fn assets(files: &[AssetFile]) -> Checked<Vec<UpstreamAsset>> {
    let mut out: Vec<UpstreamAsset> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let at = format!("lab.upstream.files[{i}].path");
        let plain = |seg: &str| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        if !f.path.split('/').all(plain) {
            return err(at, format!("{:?} is not a relative path of plain names (letters, digits, . _ -)", f.path));
        }
        if out.iter().any(|o| o.path == f.path) {
            return err(at, format!("{:?} is given twice", f.path));
        }
        out.push(UpstreamAsset { path: f.path.clone(), content: f.content.clone() });
    }
    Ok(out)
}

fn quota(path: &str, q: &QuotaFile, hosts: u32) -> Checked<Quota> {
    if q.tokens == 0 {
        return err(format!("{path}.tokens"), "must be >= 1");
    }
    if q.hosts == 0 || q.hosts > hosts {
        return err(format!("{path}.hosts"), format!("{} is outside 1..={hosts} (lab.hosts)", q.hosts));
    }
    Ok(Quota { hosts: q.hosts, tokens: q.tokens, refill_per_s: q.refill_per_second })
}

fn topology(l: &LabFile) -> Checked<LabTopology> {
    if l.hosts == 0 {
        return err("lab.hosts", "must be >= 1");
    }
    if l.client_workers == 0 {
        return err("lab.clientWorkers", "must be >= 1");
    }
    if l.upstream_workers == 0 {
        return err("lab.upstreamWorkers", "must be >= 1");
    }
    let f = &l.faults;
    let (bad_hosts, bad_abort_percent, bad_mode) = match &f.bad_hosts {
        Some(b) => {
            if b.count > l.hosts {
                return err("lab.faults.badHosts.count", format!("{} exceeds lab.hosts {}", b.count, l.hosts));
            }
            percent("lab.faults.badHosts.abortPercent", b.abort_percent)?;
            (b.count, b.abort_percent, b.mode)
        }
        None => (0, 0.0, BadMode::FaultAbort),
    };
    let (delay_ms, delay_percent) = match &f.delay {
        Some(d) => {
            percent("lab.faults.delay.percent", d.percent)?;
            (d.ms, d.percent)
        }
        None => (0, 0.0),
    };
    let capacity = match &f.capacity {
        Some(c) if c.concurrency == 0 => return err("lab.faults.capacity.concurrency", "must be >= 1"),
        Some(c) if c.hosts == 0 || c.hosts > l.hosts => {
            return err("lab.faults.capacity.hosts", format!("{} is outside 1..={} (lab.hosts)", c.hosts, l.hosts))
        }
        Some(c) => Some(Capacity { hosts: c.hosts, concurrency: c.concurrency, queue: c.queue }),
        None => None,
    };
    Ok(LabTopology {
        hosts: l.hosts,
        bad_hosts,
        bad_abort_percent,
        bad_mode,
        delay_ms,
        delay_percent,
        client_workers: l.client_workers,
        client_quota: f.client_quota.as_ref().map(|q| quota("lab.faults.clientQuota", q, l.hosts)).transpose()?,
        conn_quota: f.conn_quota.as_ref().map(|q| quota("lab.faults.connQuota", q, l.hosts)).transpose()?,
        capacity,
    })
}

impl StudyFile {
    /// Checks every field and resolves the study every stage works from.
    pub fn check(&self) -> Result<Study, StudyError> {
        if self.api_version != API_VERSION {
            return err("apiVersion", format!("{:?}, this build reads {API_VERSION:?}", self.api_version));
        }
        if self.kind != KIND {
            return err("kind", format!("{:?}, expected {KIND:?}", self.kind));
        }
        dns_label("metadata.name", &self.metadata.name)?;
        let t = &self.target;
        dns_label("target.service", &t.service)?;
        dns_label("target.namespace", &t.namespace)?;
        if t.port == 0 {
            return err("target.port", "must be in 1..=65535");
        }
        if let Some(s) = &t.subset {
            dns_label("target.subset", s)?;
        }
        if !["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"].contains(&t.method.as_str()) {
            return err(
                "target.method",
                format!(
                    "{:?} is not an HTTP method sfr2l sends (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)",
                    t.method
                ),
            );
        }
        http_path("target.path", &t.path)?;
        for (k, v) in &t.headers {
            let token = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
            if !token || k.starts_with(':') || v.bytes().any(|b| b.is_ascii_control()) {
                return err(format!("target.headers.{k}"), "not a header name and printable value");
            }
        }

        let mut attributes = Vec::with_capacity(self.attributes.len());
        for (i, a) in self.attributes.iter().enumerate() {
            let attr = attribute(i, a)?;
            if let Some(prev) = attributes.iter().position(|p: &Attribute| p.feature == attr.feature) {
                return err(format!("attributes[{i}].field"), format!("{} is already attributes[{prev}]", a.field));
            }
            if let Some(last) = attributes.last() {
                if attr.feature.index() < last.feature.index() {
                    return err(
                        format!("attributes[{i}].field"),
                        format!(
                            "{} comes before {} in the catalogue: list attributes in catalogue order",
                            a.field,
                            last.feature.source()
                        ),
                    );
                }
            }
            attributes.push(attr);
        }
        // A field the study does not list is left unset, as a DestinationRule without it
        // (Study::base_rule); the models see only the listed ones. None at all leaves the
        // agents nothing to read.
        if attributes.is_empty() {
            return err("attributes", "empty: list at least one DestinationRule field (varying or fixed)");
        }

        let (threads, thread_grid) = axis("load.threads", &self.load.threads)?;
        let (calls, call_grid) = axis("load.calls", &self.load.calls)?;

        if let Err(e) = Failure::new(&self.objective.failure_codes) {
            return err("objective.failureCodes", e);
        }

        let lab = topology(&self.lab)?;
        let upstream = upstream(&self.lab.upstream)?;

        let c = &self.collection;
        if c.rows == 0 {
            return err("collection.rows", "must be >= 1");
        }
        let repeats = match &c.repeats {
            Some(r) if r.configs == 0 || r.times < 2 => {
                return err("collection.repeats", "configs >= 1 and times >= 2 (a repeat block measures noise)")
            }
            Some(r) if u64::from(r.configs) * u64::from(r.times) > u64::from(c.rows) => {
                return err(
                    "collection.repeats",
                    format!("{} x {} runs exceed collection.rows {}", r.configs, r.times, c.rows),
                )
            }
            Some(r) => Some((r.configs, r.times)),
            None => None,
        };

        Ok(Study {
            name: self.metadata.name.clone(),
            description: self.metadata.description.clone(),
            target: self.target.clone(),
            attributes,
            threads,
            calls,
            thread_grid,
            call_grid,
            objective: self.objective.clone(),
            lab,
            upstream,
            upstream_workers: self.lab.upstream_workers,
            collection: Collection { rows: c.rows, seed: c.seed, repeats },
        })
    }
}
