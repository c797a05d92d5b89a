//! `sfr2l study init`: a starting study from a user's own rule files and a URL their service
//! answers on. The rule fields their policy sets become the study's attributes, varied around
//! their values; a short pilot against the URL (no sidecar: the service alone) sizes the load
//! grid; comments say what to adjust. The pure part ([`draft`], [`load_axes`]) is separate from
//! the pilot's I/O ([`pilot`]).

use anyhow::{bail, Context, Result};
use sfr2l_core::feature::RULE_FEATURES;
use sfr2l_core::{Feature, IstioDuration, TrafficRule};
use std::fmt::Write as _;
use std::time::Duration;

/// One pilot step: `threads` connections for a fixed time, as fast as the service answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PilotPoint {
    pub threads: u32,
    pub qps: f64,
    /// Median latency, seconds.
    pub p50: f64,
    /// Share of calls that were not 2xx.
    pub errors: f64,
}

/// An action axis of the study: range and grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axis {
    pub lo: u32,
    pub hi: u32,
    pub step: u32,
}

/// The concurrency steps of the pilot.
pub const PILOT_THREADS: [u32; 6] = [1, 2, 4, 8, 16, 32];

/// The load grid from a pilot: threads up to about twice the concurrency at which the service
/// stops gaining throughput (a load test should push past it), calls sized so a run at the
/// service's top rate lasts about a second and a half.
pub fn load_axes(points: &[PilotPoint]) -> Result<(Axis, Axis, u32)> {
    let top = points.iter().map(|p| p.qps).fold(0.0, f64::max);
    if top <= 0.0 {
        bail!("the pilot measured no throughput");
    }
    let knee = points.iter().find(|p| p.qps >= 0.9 * top).map_or(1, |p| p.threads);
    let hi = (2 * knee).clamp(4, 64);
    let threads = Axis { lo: 1, hi, step: hi.div_ceil(8) };
    let mid = nice((top * 1.5).clamp(100.0, 20_000.0));
    // mid is 1, 2 or 5 times 100 or more: halves and quarters are whole, seven grid values.
    Ok((threads, Axis { lo: mid / 2, hi: mid * 2, step: mid / 4 }, knee))
}

/// `x` rounded to 1, 2 or 5 times a power of ten.
fn nice(x: f64) -> u32 {
    let p = 10f64.powf(x.max(1.0).log10().floor());
    let m = [1.0, 2.0, 5.0, 10.0].into_iter().min_by(|a, b| (a * p - x).abs().total_cmp(&(b * p - x).abs()));
    (m.unwrap_or(1.0) * p).round() as u32
}

/// A range around a value the user runs: half to twice it, within what the field allows.
fn around(f: Feature, v: u32) -> (u32, u32) {
    let lo = match f {
        Feature::MaxRequestsPerConnection | Feature::MaxEjectionPercent => v / 2,
        _ => v.div_ceil(2).max(1),
    };
    let hi = v.saturating_mul(2).max(lo + 1);
    (lo, if f == Feature::MaxEjectionPercent { hi.min(100) } else { hi })
}

/// What the draft is made from.
pub struct Inputs<'a> {
    pub name: &'a str,
    pub service: &'a str,
    pub namespace: &'a str,
    pub port: u16,
    pub subset: Option<&'a str>,
    pub path: &'a str,
    /// `host:port` the pilot ran against (the lab's upstream).
    pub address: &'a str,
    /// The status the URL answered.
    pub status: u16,
    pub rules: &'a [String],
    pub rule: TrafficRule,
    pub set: &'a [Feature],
    pub points: &'a [PilotPoint],
}

fn value(f: Feature, r: &TrafficRule) -> String {
    let d = |x: IstioDuration| x.to_string();
    match f {
        Feature::MaxPendingRequests => r.max_pending_requests.to_string(),
        Feature::MaxConnections => r.max_connections.to_string(),
        Feature::MaxRequestsPerConnection => r.max_requests_per_connection.to_string(),
        Feature::BaseEjectionTime => d(r.base_ejection_time),
        Feature::MaxEjectionPercent => r.max_ejection_percent.to_string(),
        Feature::Interval => d(r.interval),
        Feature::Consecutive5xxErrors => r.consecutive_5xx_errors.to_string(),
        Feature::Threads | Feature::Calls => String::new(),
    }
}

fn int(f: Feature, r: &TrafficRule) -> u32 {
    value(f, r).parse().unwrap_or(0)
}

/// The study file's text.
pub fn draft(i: &Inputs) -> Result<String> {
    let (threads, calls, knee) = load_axes(i.points)?;
    let top = i.points.iter().map(|p| p.qps).fold(0.0, f64::max);
    let mut s = String::new();
    let w = &mut s;
    writeln!(w, "# Study {}: drafted by `sfr2l study init` from {}.", i.name, i.rules.join(", "))?;
    writeln!(w, "# Check it with `sfr2l study check {}`; try it with `sfr2l lab pilot --study ...`", i.name)?;
    writeln!(w, "# before collecting. Every value below is a starting point: adjust it to what you need.")?;
    writeln!(w, "apiVersion: sfr2l/v1\nkind: Study\nmetadata:\n  name: {}", i.name)?;
    writeln!(
        w,
        "  description: >-\n    {}.{} port {}{} under its own rules ({}).",
        i.service,
        i.namespace,
        i.port,
        i.subset.map(|s| format!(" subset {s}")).unwrap_or_default(),
        i.rules.join(", ")
    )?;
    writeln!(w, "target:\n  service: {}\n  namespace: {}\n  port: {}", i.service, i.namespace, i.port)?;
    if let Some(sub) = i.subset {
        writeln!(w, "  subset: {sub}")?;
    }
    writeln!(
        w,
        "  method: GET\n  # The pilot called this path; give the request your users make most.\n  path: {}",
        i.path
    )?;
    writeln!(w, "attributes:")?;
    writeln!(w, "  # The fields your rules set, varied from half to twice your value (durations fixed:")?;
    writeln!(w, "  # give them a range to vary them too). Narrow a range to the values you would deploy.")?;
    for f in i.set {
        writeln!(w, "  - field: {}", f.source())?;
        if f.is_duration() {
            writeln!(w, "    value: {}", value(*f, &i.rule))?;
        } else {
            let v = int(*f, &i.rule);
            let (lo, hi) = around(*f, v);
            writeln!(w, "    range: [{lo}, {hi}]   # yours: {v}")?;
        }
    }
    let unset: Vec<&str> = RULE_FEATURES.iter().filter(|f| !i.set.contains(f)).map(|f| f.source()).collect();
    if !unset.is_empty() {
        writeln!(w, "  # Not set by your rules (istiod's defaults apply, as in your mesh); add one to vary it:")?;
        for f in unset {
            writeln!(w, "  #   {f}")?;
        }
    }
    if i.set.is_empty() {
        bail!(
            "{}: the policy in force sets none of the catalogue's fields ({}): a study needs at least one",
            i.rules.join(", "),
            RULE_FEATURES.iter().map(|f| f.source()).collect::<Vec<_>>().join(", ")
        );
    }
    writeln!(w, "load:")?;
    writeln!(
        w,
        "  # Pilot against {} alone: {:.0} calls/s at most, {:.0}% of it from {knee} connection(s) on.",
        i.address, top, 90.0
    )?;
    for p in i.points {
        writeln!(
            w,
            "  #   {:>2} connections: {:>7.0} calls/s, p50 {:.1} ms, {:.1}% not 2xx",
            p.threads,
            p.qps,
            p.p50 * 1e3,
            p.errors * 100.0
        )?;
    }
    writeln!(w, "  # Threads go past that knee; calls make a run of about 1.5 s at the top rate.")?;
    for (name, a) in [("threads", threads), ("calls", calls)] {
        writeln!(
            w,
            "  {name}:\n    range: [{}, {}]\n    grid: {{from: {}, to: {}, step: {}}}",
            a.lo, a.hi, a.lo, a.hi, a.step
        )?;
    }
    writeln!(w, "objective:\n  # The responses that count as failure; add 429 if your service sheds load with it.")?;
    writeln!(w, "  failureCodes: [503]\n  search: worst")?;
    writeln!(w, "lab:\n  upstream:")?;
    writeln!(w, "    # Your service, already running; or give `command:` (and `files:`) for the lab to start it.")?;
    writeln!(w, "    address: {}\n    ready: {{path: {}, status: {}, timeout: 30s}}", i.address, i.path, i.status)?;
    writeln!(w, "  # Server sidecars in front of it: set this to your replica count.")?;
    writeln!(w, "  hosts: 3\n  clientWorkers: 2\n  upstreamWorkers: 1")?;
    writeln!(w, "collection:\n  # 600 rows is a first dataset; the paper's have 2,000.")?;
    writeln!(w, "  rows: 600\n  seed: 1\n  repeats: {{configs: 20, times: 3}}")?;
    Ok(s)
}

/// Runs the pilot against `url`: each of [`PILOT_THREADS`] for `each`, as fast as it answers.
/// Returns the points and the status of the first call.
pub fn pilot(url: &str, each: Duration) -> Result<(Vec<PilotPoint>, u16)> {
    let mut points = Vec::new();
    let mut status = 0;
    for threads in PILOT_THREADS {
        let mut spec = sfr2l_load::LoadSpec::from_url(url, threads, 0)?;
        spec.duration = each;
        let r = sfr2l_load::run(&spec).with_context(|| format!("pilot against {url} with {threads} connections"))?;
        let codes = r.ret_codes();
        let calls = r.calls().max(1) as f64;
        let ok: u64 = codes.iter().filter(|(c, _)| (200..300).contains(*c)).map(|(_, n)| n).sum();
        if status == 0 {
            status = codes.iter().max_by_key(|(_, n)| **n).map_or(0, |(c, _)| *c).max(0) as u16;
        }
        points.push(PilotPoint {
            threads,
            // Throughput of answered calls: errors under load are not capacity.
            qps: r.actual_qps() * ok as f64 / calls,
            p50: r.latency_percentile(50.0).unwrap_or(0.0),
            errors: 1.0 - ok as f64 / calls,
        });
    }
    if !(200..300).contains(&status) {
        bail!("{url} answered {status} to most pilot calls: give a URL your service answers with 2xx");
    }
    Ok((points, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(qps: [f64; 6]) -> Vec<PilotPoint> {
        PILOT_THREADS
            .iter()
            .zip(qps)
            .map(|(&threads, qps)| PilotPoint { threads, qps, p50: 0.002, errors: 0.0 })
            .collect()
    }

    #[test]
    fn the_grid_goes_past_the_knee_and_a_run_lasts_about_a_second_and_a_half() {
        // Saturates at 4 connections, 2,000 calls/s.
        let (t, c, knee) = load_axes(&points([600.0, 1200.0, 1900.0, 2000.0, 1990.0, 1950.0])).unwrap();
        assert_eq!(knee, 4);
        assert_eq!(t, Axis { lo: 1, hi: 8, step: 1 });
        // 1.5 s at 2,000/s is 3,000 calls, rounded to 2,000 (1-2-5); half to twice it.
        assert_eq!((c.lo, c.hi, c.step), (1000, 4000, 500));
        // A slow service: the floor of 100 calls.
        let (t, c, _) = load_axes(&points([20.0, 21.0, 21.0, 21.0, 21.0, 21.0])).unwrap();
        assert_eq!((t.hi, c.lo, c.hi, c.step), (4, 50, 200, 25));
        assert!(load_axes(&points([0.0; 6])).is_err());
    }

    #[test]
    fn a_draft_checks_and_varies_the_users_fields_around_their_values() {
        let rule = TrafficRule { max_connections: 4, max_pending_requests: 2, ..TrafficRule::unset(true) };
        let set =
            [Feature::MaxPendingRequests, Feature::MaxConnections, Feature::Interval, Feature::Consecutive5xxErrors];
        let pts = points([600.0, 1200.0, 1900.0, 2000.0, 1990.0, 1950.0]);
        let rules = ["reviews.yaml".to_string()];
        let text = draft(&Inputs {
            name: "reviews",
            service: "reviews",
            namespace: "shop",
            port: 9080,
            subset: Some("v2"),
            path: "/reviews/1",
            address: "127.0.0.1:9080",
            status: 200,
            rules: &rules,
            rule: TrafficRule { interval: IstioDuration::from_secs(5.0), ..rule },
            set: &set,
            points: &pts,
        })
        .unwrap();
        let s = sfr2l_files::study::parse(&text, "reviews.yaml").unwrap_or_else(|e| panic!("{e:#}\n{text}"));
        assert_eq!(s.target.cluster(), "outbound|9080|v2|reviews.shop.svc.cluster.local");
        let got: Vec<(Feature, f64, f64)> = s.attributes.iter().map(|a| (a.feature, a.lo, a.hi)).collect();
        assert_eq!(
            got,
            [
                (Feature::MaxPendingRequests, 1.0, 4.0),
                (Feature::MaxConnections, 2.0, 8.0),
                (Feature::Interval, 5.0, 5.0),
                (Feature::Consecutive5xxErrors, 3.0, 10.0),
            ]
        );
        assert!(text.contains("#   connectionPool.http.maxRequestsPerConnection\n"), "{text}");
        assert!(text.contains("range: [2, 8]   # yours: 4"), "{text}");
        let e = format!("{:#}", draft(&bare(&rules, &pts)).unwrap_err());
        assert!(e.contains("sets none of the catalogue's fields"), "{e}");
    }

    /// Inputs whose rule sets no catalogue field.
    fn bare<'a>(rules: &'a [String], pts: &'a [PilotPoint]) -> Inputs<'a> {
        Inputs {
            name: "x",
            service: "x",
            namespace: "default",
            port: 80,
            subset: None,
            path: "/",
            address: "127.0.0.1:80",
            status: 200,
            rules,
            rule: TrafficRule::unset(false),
            set: &[],
            points: pts,
        }
    }
}
