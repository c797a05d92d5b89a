//! How calls are split across threads (fortio semantics) and spec validation.

use super::*;

/// Normalised run parameters (fortio's `Normalize` + `run*Setup`).
pub(super) struct Plan {
    pub(super) addr: SocketAddr,
    pub(super) request: Vec<u8>,
    pub(super) timeout: Duration,
    pub(super) connect_first: bool,
    pub(super) threads: usize,
    /// Requested exact count (0 in duration mode).
    pub(super) exactly: u64,
    /// Calls per thread (exactly mode, or qps + duration mode); 0 otherwise.
    pub(super) per_thread: u64,
    /// Extra calls for thread 0 (exactly mode).
    pub(super) left_over: u64,
    pub(super) duration: Duration,
    pub(super) per_thread_qps: f64,
    pub(super) requested_qps: String,
    pub(super) requested_duration: String,
    pub(super) start_line: String,
    pub(super) gomax: usize,
}

pub(super) fn validate(spec: &LoadSpec) -> Result<(), LoadError> {
    let invalid = |m: String| Err(LoadError::InvalidSpec(m));
    if spec.threads == 0 {
        return invalid("threads (-c) must be at least 1".to_string());
    }
    if spec.port == 0 {
        return invalid("port must not be 0".to_string());
    }
    if spec.host.is_empty() {
        return invalid("host must not be empty".to_string());
    }
    if !spec.qps.is_finite() {
        return invalid(format!("qps must be a finite number, got {}", spec.qps));
    }
    if spec.calls == 0 && spec.duration.is_zero() {
        return invalid("either calls (-n) or a non-zero duration is required".to_string());
    }
    if !spec.path.starts_with('/') && spec.path != "*" {
        return invalid(format!("path must start with '/', got {:?}", spec.path));
    }
    let bad_text = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
    if spec.path.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return invalid(format!("path contains whitespace or control characters: {:?}", spec.path));
    }
    if spec.authority.is_empty() || bad_text(&spec.authority) {
        return invalid(format!("invalid authority (Host header) {:?}", spec.authority));
    }
    for (k, v) in &spec.headers {
        let token = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token || bad_text(v) {
            return invalid(format!("invalid request header {k:?}: {v:?}"));
        }
    }
    Ok(())
}

/// fortio's split of the calls over the threads, and the lines that describe it.
struct Split {
    threads: usize,
    per_thread: u64,
    left_over: u64,
    requested_qps: String,
    requested_duration: String,
    start_line: String,
}

/// The first address `spec`'s host resolves to.
fn resolve(spec: &LoadSpec) -> Result<SocketAddr, LoadError> {
    let host = spec.host.trim_start_matches('[').trim_end_matches(']');
    let addr_text = spec.host_port();
    (host, spec.port)
        .to_socket_addrs()
        .map_err(|source| LoadError::Resolve { addr: addr_text.clone(), source })?
        .next()
        .ok_or_else(|| LoadError::Resolve {
            addr: addr_text.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address found"),
        })
}

/// fortio's runQPSSetup: the total calls (exact, or qps x duration), at least 2 per thread.
fn split_paced(spec: &LoadSpec, qps: f64, exactly: u64, gomax: usize) -> Split {
    let mut threads = spec.threads as usize;
    let requested_duration;
    let num_calls = if exactly > 0 {
        requested_duration = format!("exactly {exactly} calls");
        exactly
    } else {
        requested_duration = go_duration(spec.duration);
        let n = (qps * spec.duration.as_secs_f64()) as u64;
        if n < 2 {
            threads = 1;
            2
        } else {
            n
        }
    };
    if 2 * threads as u64 > num_calls {
        threads = ((num_calls / 2) as usize).max(1);
    }
    let per_thread = num_calls / threads as u64;
    let total = per_thread * threads as u64;
    let (left_over, start_line) = if exactly > 0 {
        let left_over = exactly - total;
        let line = format!(
            "Starting at {} qps with {} thread(s) [gomax {}] : exactly {}, {} calls each (total {} + {})",
            fmt_g(qps, None),
            threads,
            gomax,
            exactly,
            per_thread,
            total,
            left_over
        );
        (left_over, line)
    } else {
        let line = format!(
            "Starting at {} qps with {} thread(s) [gomax {}] for {} : {} calls each (total {})",
            fmt_g(qps, None),
            threads,
            gomax,
            requested_duration,
            per_thread,
            total
        );
        (0, line)
    };
    Split { threads, per_thread, left_over, requested_qps: fmt_g(qps, Some(9)), requested_duration, start_line }
}

/// Max qps: an exact count split evenly (thread 0 takes the remainder), or a duration.
fn split_max(spec: &LoadSpec, exactly: u64, gomax: usize) -> Split {
    let threads = spec.threads as usize;
    let (per_thread, left_over, requested_duration, start_line) = if exactly > 0 {
        let requested = format!("exactly {exactly} calls");
        let (per, left) = (exactly / threads as u64, exactly % threads as u64);
        let line = format!(
            "Starting at max qps with {threads} thread(s) [gomax {gomax}] for {requested} ({per} per thread + {left})"
        );
        (per, left, requested, line)
    } else {
        let requested = go_duration(spec.duration);
        let line = format!("Starting at max qps with {threads} thread(s) [gomax {gomax}] for {requested}");
        (0, 0, requested, line)
    };
    Split { threads, per_thread, left_over, requested_qps: "max".to_string(), requested_duration, start_line }
}

impl Plan {
    pub(super) fn new(spec: &LoadSpec) -> Result<Plan, LoadError> {
        validate(spec)?;
        let addr = resolve(spec)?;
        let gomax = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
        let qps = if spec.qps > 0.0 { spec.qps } else { 0.0 };
        let exactly = u64::from(spec.calls);
        let split = if qps > 0.0 { split_paced(spec, qps, exactly, gomax) } else { split_max(spec, exactly, gomax) };
        Ok(Plan {
            addr,
            request: build_request(&spec.path, &spec.authority, &spec.headers),
            timeout: spec.timeout,
            connect_first: spec.connect_first,
            threads: split.threads,
            exactly,
            per_thread: split.per_thread,
            left_over: split.left_over,
            duration: spec.duration,
            per_thread_qps: qps / split.threads as f64,
            requested_qps: split.requested_qps,
            requested_duration: split.requested_duration,
            start_line: split.start_line,
            gomax,
        })
    }

    pub(super) fn calls_for(&self, thread: usize) -> u64 {
        if thread == 0 {
            self.per_thread + self.left_over
        } else {
            self.per_thread
        }
    }
}
