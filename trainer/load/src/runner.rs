//! Running a load: the call plan per thread, the start gate, the worker threads, aggregation.

use super::*;

/// fortio's notion of an OK call.
#[inline]
pub(super) fn code_is_ok(code: i32) -> bool {
    (200..=299).contains(&code) || code == 418
}

use super::plan::Plan;

/// A start barrier that can be aborted (a failed connect must not leave the others waiting).
struct Gate {
    n: usize,
    state: Mutex<(usize, bool)>,
    cv: Condvar,
}

impl Gate {
    fn new(n: usize) -> Self {
        Gate { n, state: Mutex::new((0, false)), cv: Condvar::new() }
    }

    /// Waits for all `n` participants; false if the gate was aborted.
    fn wait(&self) -> bool {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        if g.0 >= self.n {
            self.cv.notify_all();
        }
        while g.0 < self.n && !g.1 {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        !g.1
    }

    fn abort(&self) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.1 = true;
        self.cv.notify_all();
    }
}

struct Shared<'a> {
    plan: &'a Plan,
    gate: Gate,
    start: OnceLock<(Instant, SystemTime)>,
    error: Mutex<Option<LoadError>>,
}

impl Shared<'_> {
    fn start(&self) -> (Instant, SystemTime) {
        *self.start.get_or_init(|| (Instant::now(), SystemTime::now()))
    }

    fn fail(&self, e: LoadError) {
        let mut g = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(e);
        }
        drop(g);
        self.gate.abort();
    }
}

/// Index in the per-thread code table: -1..=999 -> 0..=1000.
const CODE_SLOTS: usize = 1001;

struct ThreadStats {
    codes: Vec<u64>,
    dur: Histogram,
    err: Histogram,
    sleep: Histogram,
    header_sizes: Histogram,
    sizes: Histogram,
    conn: Histogram,
    sockets: u64,
    calls: u64,
    end: Option<Instant>,
}

impl ThreadStats {
    fn new() -> Self {
        ThreadStats {
            codes: vec![0; CODE_SLOTS],
            dur: Histogram::new(0.0, 0.001),
            err: Histogram::new(0.0, 0.001),
            sleep: Histogram::new(-0.001, 0.001),
            header_sizes: Histogram::new(0.0, 5.0),
            sizes: Histogram::new(0.0, 100.0),
            conn: Histogram::new(0.0, 0.001),
            sockets: 0,
            calls: 0,
            end: None,
        }
    }

    #[inline]
    fn record(&mut self, r: CallResult, latency: f64) {
        let slot = usize::try_from(r.code.clamp(SOCKET_ERROR, 999) + 1).unwrap_or(0);
        self.codes[slot] += 1;
        self.dur.record(latency);
        if !code_is_ok(r.code) {
            self.err.record(latency);
        }
        self.header_sizes.record(r.header_size as f64);
        self.sizes.record(r.total_size as f64);
        self.calls += 1;
    }
}

/// Body of one load thread (fortio's `runOne`).
fn thread_main(shared: &Shared<'_>, id: usize) -> ThreadStats {
    let plan = shared.plan;
    let mut stats = ThreadStats::new();
    let mut client = Client::new(plan.addr, plan.timeout, plan.request.clone());
    if plan.connect_first {
        if let Err(source) = client.connect() {
            shared.fail(LoadError::Connect { addr: plan.addr.to_string(), source });
            return stats;
        }
        if !shared.gate.wait() {
            return stats;
        }
    }
    let (start, _) = shared.start();
    call_loop(plan, &mut client, &mut stats, start, plan.calls_for(id));
    stats.end = Some(Instant::now());
    client.close();
    stats.sockets = client.sockets;
    stats.conn = client.connect_times.clone();
    stats
}

/// The call loop of one thread (fortio's `runOne` main loop).
fn call_loop(plan: &Plan, client: &mut Client, stats: &mut ThreadStats, start: Instant, num_calls: u64) {
    let use_exactly = plan.exactly > 0;
    let use_qps = plan.per_thread_qps > 0.0;
    // None: so far in the future that it cannot be represented (never reached).
    let end_time = start.checked_add(plan.duration);
    // Unlike fortio's do-while loop, a thread with no calls assigned does none.
    if (use_exactly || use_qps) && num_calls == 0 {
        return;
    }
    let mut i: u64 = 0;
    loop {
        let f_start = Instant::now();
        if !use_exactly && end_time.is_some_and(|e| f_start > e) {
            if !use_qps {
                break;
            }
            // qps mode: do at least 2 calls, and the last one, before bailing because of time.
            if i >= 2 && i + 1 != num_calls {
                break;
            }
        }
        let r = client.call();
        stats.record(r, f_start.elapsed().as_secs_f64());
        i += 1;
        if use_qps {
            if i >= num_calls {
                break;
            }
            // fortio's schedule: for N calls the last one is sent at N / qps.
            let fi = i as f64;
            let target_s = (fi + fi / (num_calls - 1) as f64) / plan.per_thread_qps;
            let elapsed_s = start.elapsed().as_secs_f64();
            let sleep_s = target_s - elapsed_s;
            stats.sleep.record(sleep_s);
            if sleep_s > 0.0 {
                std::thread::sleep(Duration::try_from_secs_f64(sleep_s).unwrap_or(Duration::MAX));
            }
        } else if use_exactly && i >= num_calls {
            break;
        }
    }
}

/// Runs the load described by `spec` and returns fortio's statistics.
pub fn run(spec: &LoadSpec) -> Result<LoadResult, LoadError> {
    let plan = Plan::new(spec)?;
    let shared = Shared { plan: &plan, gate: Gate::new(plan.threads), start: OnceLock::new(), error: Mutex::new(None) };
    if !plan.connect_first {
        shared.start();
    }
    let mut per_thread: Vec<ThreadStats> = Vec::with_capacity(plan.threads);
    let mut panicked = false;
    std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(plan.threads);
        for id in 0..plan.threads {
            let shared = &shared;
            let spawned = std::thread::Builder::new()
                .name(format!("load-{id}"))
                .stack_size(THREAD_STACK)
                .spawn_scoped(s, move || thread_main(shared, id));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    shared.fail(LoadError::Spawn(e));
                    break;
                }
            }
        }
        for h in handles {
            match h.join() {
                Ok(st) => per_thread.push(st),
                Err(_) => panicked = true,
            }
        }
    });
    if let Some(e) = shared.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    if panicked {
        return Err(LoadError::ThreadPanic);
    }
    let (start, start_time) = shared.start();
    Ok(aggregate(spec, &plan, start, start_time, per_thread))
}

fn aggregate(
    spec: &LoadSpec,
    plan: &Plan,
    start: Instant,
    start_time: SystemTime,
    per_thread: Vec<ThreadStats>,
) -> LoadResult {
    let mut dur = Histogram::new(0.0, 0.001);
    let mut err = Histogram::new(0.0, 0.001);
    let mut sleep = Histogram::new(-0.001, 0.001);
    let mut header_sizes = Histogram::new(0.0, 5.0);
    let mut sizes = Histogram::new(0.0, 100.0);
    let mut conn = Histogram::new(0.0, 0.001);
    let mut codes = vec![0u64; CODE_SLOTS];
    let mut end = start;
    for t in &per_thread {
        dur.merge(&t.dur);
        err.merge(&t.err);
        sleep.merge(&t.sleep);
        header_sizes.merge(&t.header_sizes);
        sizes.merge(&t.sizes);
        conn.merge(&t.conn);
        for (a, b) in codes.iter_mut().zip(&t.codes) {
            *a += *b;
        }
        if let Some(e) = t.end {
            end = end.max(e);
        }
    }
    let ret_codes: BTreeMap<i32, u64> = codes
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(slot, &n)| (i32::try_from(slot).unwrap_or(0) + SOCKET_ERROR, n))
        .collect();
    LoadResult {
        url: spec.url(),
        headers: spec.headers.clone(),
        authority: spec.authority.clone(),
        resolved: plan.addr.to_string(),
        timeout: spec.timeout,
        qps: if spec.qps > 0.0 { spec.qps } else { 0.0 },
        duration: plan.duration,
        exactly: plan.exactly,
        num_threads: u32::try_from(plan.threads).unwrap_or(u32::MAX),
        requested_qps: plan.requested_qps.clone(),
        requested_duration: plan.requested_duration.clone(),
        start_line: plan.start_line.clone(),
        gomax: plan.gomax,
        start_time,
        elapsed: end.saturating_duration_since(start),
        ret_codes,
        duration_hist: dur.export().with_percentiles(&DEFAULT_PERCENTILES),
        errors_hist: err.export().with_percentiles(&DEFAULT_PERCENTILES),
        sleep: if plan.per_thread_qps > 0.0 { Some(sleep) } else { None },
        conn_per_thread: per_thread.iter().map(|t| t.conn.counter.clone()).collect(),
        conn_hist: conn,
        header_sizes,
        sizes,
        sockets: per_thread.iter().map(|t| t.sockets).collect(),
        thread_calls: per_thread.iter().map(|t| t.calls).collect(),
    }
}
