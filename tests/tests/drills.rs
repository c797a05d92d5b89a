//! Fault drills on the real lab (issue 15): during a collection, kill -9 the server-side Envoy,
//! a gunicorn worker and httpbin as a whole, pause the server-side Envoy past the load timeout,
//! push a rule under the collector's feet, and fill the disk the dataset goes to; during an
//! inline load test (load-test mode), kill -9 the server-side Envoy and the client sidecar that
//! runs the test. Expected: no row that measured a fault, no row lost or written twice, every
//! call of an inline test accounted for, a clear message for each case, and no process left
//! behind. Ports 22600-22699 and 22800-22999.

use sfr2l_core::{IstioDuration, LoadSetting, TrafficRule};
use sfr2l_lab::collect::{self, CollectJob, DatasetFile, PlanEntry, Repeats};
use sfr2l_lab::loadtest::{loadtest_for, log_offset, models_config, records_since, run_in_sidecar};
use sfr2l_lab::{admin, envoy, Lab, STOPPED_WAIT};
use sfr2l_tests::{processes_mentioning, repo_root, start_lab, start_lab_with, topology};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Limits no run reaches: every row is 200s unless a fault intervenes.
fn open_rule(i: u32) -> TrafficRule {
    TrafficRule {
        max_pending_requests: 1000 + i,
        max_connections: 1000,
        max_requests_per_connection: 0,
        base_ejection_time: IstioDuration::from_secs(30.0),
        max_ejection_percent: 0,
        interval: IstioDuration::from_secs(10.0),
        consecutive_5xx_errors: 0,
    }
}

fn plan(rows: u32, threads: u32, calls: u32) -> Vec<PlanEntry> {
    (0..rows)
        .map(|i| PlanEntry {
            config_id: format!("drill{i}"),
            repeat: 0,
            rule: open_rule(i),
            load: LoadSetting { threads, calls },
        })
        .collect()
}

fn job(out: &Path, resume: bool) -> CollectJob {
    let src = sfr2l_files::study::find_in(&sfr2l_tests::repo_root(), "s1").unwrap();
    CollectJob {
        profile: src.study,
        study_sha256: src.sha256,
        rows: 0,
        seed: 1,
        repeats: Repeats { configs: 0, repeats: 0 },
        out: out.to_path_buf(),
        resume,
        path: "/status/200".into(),
        warmup_calls: 0,
        tries: 4,
        attach: false,
        quiet: true,
    }
}

/// Config ids of a dataset file's rows, checked: whole, all 200s (the rule reaches no limit, so
/// any other code was a fault's) and unique.
fn check_rows(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'), "{}: the last row is torn", path.display());
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap_or_else(|| panic!("no column {n}"));
    let (ok, id, rep) = (col("rate_200"), col("config_id"), col("repeat"));
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), header.len(), "torn row {l}");
        assert_eq!(f[ok].parse::<f64>().unwrap(), 1.0, "row {l}: a fault's codes were kept");
        assert!(seen.insert((f[id].to_string(), f[rep].to_string())), "row {} written twice", f[id]);
        ids.push(f[id].to_string());
    }
    ids
}

/// Waits until `rows` rows are on disk and a run is in flight on the client sidecar.
fn wait_mid_run(lab_admin: u16, out: &Path, rows: usize) {
    let t0 = Instant::now();
    loop {
        let have = std::fs::read_to_string(out).map(|t| t.lines().count().saturating_sub(1)).unwrap_or(0);
        if have >= rows && in_flight(lab_admin) {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "no run in flight after row {rows}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether the client sidecar has a call to the target in flight.
fn in_flight(lab_admin: u16) -> bool {
    let cluster = sfr2l_tests::target().cluster();
    admin::stats(lab_admin, &format!("^cluster\\.{}\\.upstream_rq_active$", admin::regex_escape(&cluster)))
        .is_ok_and(|(nums, _)| nums.get(&format!("cluster.{cluster}.upstream_rq_active")).copied().unwrap_or(0) > 0)
}

fn wait_in_flight(lab_admin: u16) {
    let t0 = Instant::now();
    while !in_flight(lab_admin) {
        assert!(t0.elapsed() < Duration::from_secs(60), "no call in flight");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: plain signal delivery to a lab process.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

fn children_of(pid: i32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else { return vec![] };
    rd.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| s.rsplit(')').next().map(|r| r.split_whitespace().nth(1) == Some(&pid.to_string())))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn a_collection_survives_killed_and_paused_processes_and_a_foreign_rule() {
    let (mut lab, dir) = start_lab(22800, topology(2, 0, 0.0, 4));
    let out = dir.path().join("drill.csv");
    let admin_port = lab.ports.client_admin;
    let upstream = lab.pid_of("upstream-envoy").unwrap();
    let cds = dir.path().join("cds/cds.json");
    let stop = AtomicBool::new(false);
    let rows = 14;
    let p = plan(rows, 2, 300);
    let mut file = DatasetFile::open(&out, false, &sfr2l_core::trace::Columns::catalogue()).unwrap();
    let done = std::thread::scope(|s| {
        let drills = s.spawn(|| {
            // 1. kill -9 the server-side Envoy mid-run.
            wait_mid_run(admin_port, &out, 1);
            signal(upstream, libc::SIGKILL);
            // 2. kill -9 one gunicorn worker (gunicorn starts another).
            wait_mid_run(admin_port, &out, 3);
            if let Some(w) = children_of(httpbin_master()).first() {
                signal(*w, libc::SIGKILL);
            }
            // 3. kill -9 httpbin as a whole: its process group, master and workers.
            wait_mid_run(admin_port, &out, 5);
            signal(-httpbin_master(), libc::SIGKILL);
            // 4. SIGSTOP the server-side Envoy past the load generator's 3 s timeout.
            wait_mid_run(admin_port, &out, 7);
            let up = newest_envoy(dir.path());
            signal(up, libc::SIGSTOP);
            std::thread::sleep(Duration::from_secs(4));
            signal(up, libc::SIGCONT);
            // 5. A rule pushed by another writer mid-run (the files Envoy watches).
            wait_mid_run(admin_port, &out, 9);
            let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cds).unwrap()).unwrap();
            v["version_info"] = "foreign".into();
            let cluster = sfr2l_tests::target().cluster();
            let mut changed = 0;
            for c in v["resources"].as_array_mut().unwrap() {
                if c["name"] == cluster.as_str() {
                    c["circuit_breakers"]["thresholds"][0]["max_pending_requests"] = 7.into();
                    changed += 1;
                }
            }
            assert_eq!(changed, 1, "no cluster {cluster} in {}", cds.display());
            let tmp = dir.path().join("cds/.foreign.json");
            std::fs::write(&tmp, serde_json::to_vec(&v).unwrap()).unwrap();
            std::fs::rename(&tmp, &cds).unwrap();
        });
        let done = collect::collect_on(&job(&out, false), &mut lab, &p, &mut file, &stop);
        drills.join().unwrap();
        done
    });
    let done = done.unwrap();
    eprintln!(
        "FIGURE drills: {} rows, {} rejected tries, {} skipped, {} lab restarts",
        done.rows, done.rejected_tries, done.skipped_rows, done.lab_restarts
    );
    let ids = check_rows(&out);
    assert_eq!(ids.len(), rows as usize, "rows lost");
    assert_eq!((done.rows, done.skipped_rows), (rows as usize, 0));
    // The Envoy kill, the httpbin kill, the pause and the foreign rule each reject their run.
    assert!(done.rejected_tries >= 4, "only {} runs rejected", done.rejected_tries);
    assert!(done.lab_restarts >= 2, "only {} restarts", done.lab_restarts);
    // A second driver is refused while this one holds the lab.
    let second = Lab::attach(dir.path()).err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(second.contains("in use by another sfr2l process"), "{second}");
    let needle = dir.path().to_string_lossy().to_string();
    lab.stop();
    std::thread::sleep(Duration::from_millis(300));
    let left: Vec<_> =
        processes_mentioning(&needle).into_iter().chain(processes_mentioning("127.0.0.1:22803")).collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// The gunicorn master serving httpbin now (a restart replaces the first one): the process on
/// httpbin's port whose parent is not on it.
fn httpbin_master() -> i32 {
    let on_port: Vec<i32> = processes_mentioning("127.0.0.1:22803").into_iter().map(|(p, _)| p).collect();
    let parent = |p: i32| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)?.parse::<i32>().ok()))
    };
    let masters: Vec<i32> =
        on_port.iter().copied().filter(|p| !parent(*p).is_some_and(|pp| on_port.contains(&pp))).collect();
    assert_eq!(masters.len(), 1, "gunicorn masters on httpbin's port: {masters:?}");
    masters[0]
}

/// The server-side Envoy now running (a restart replaces the first one).
fn newest_envoy(dir: &Path) -> i32 {
    let needle = dir.join("upstream.json").to_string_lossy().to_string();
    let found = processes_mentioning(&needle);
    assert_eq!(found.len(), 1, "server-side Envoys: {found:?}");
    found[0].0
}

#[test]
fn a_full_disk_stops_the_collection_whole_and_it_resumes_without_loss() {
    let (mut lab, dir) = start_lab(22900, topology(1, 0, 0.0, 0));
    let mnt = dir.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "mounting a 16 KiB tmpfs for the full-disk drill failed (needs root, as CI has)");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mnt);
    // Leave one page free: the dataset's header and a few dozen rows fit, then the disk is full.
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![0u8; 12 * 1024]).unwrap();
    let out = mnt.join("full.csv");
    let rows = 60;
    let p = plan(rows, 1, 20);
    let stop = AtomicBool::new(false);
    let mut file = DatasetFile::open(&out, false, &sfr2l_core::trace::Columns::catalogue()).unwrap();
    let err = match collect::collect_on(&job(&out, false), &mut lab, &p, &mut file, &stop) {
        Ok(d) => panic!("the disk never filled: {} rows", d.rows),
        Err(e) => format!("{e:#}"),
    };
    drop(file);
    eprintln!("FIGURE full disk: {err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("full.csv") && err.contains("--resume"), "{err}");
    let before = check_rows(&out);
    assert!(!before.is_empty() && before.len() < rows as usize, "{} rows before the disk filled", before.len());
    // Free the space and resume: the rest of the plan, nothing twice.
    std::fs::remove_file(&filler).unwrap();
    let mut file = DatasetFile::open(&out, true, &sfr2l_core::trace::Columns::catalogue()).unwrap();
    let done = collect::collect_on(&job(&out, true), &mut lab, &p, &mut file, &stop).unwrap();
    let after = check_rows(&out);
    assert_eq!(after.len(), rows as usize);
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(done.rows, rows as usize);
}

#[test]
fn an_inline_test_survives_a_killed_server_and_a_killed_sidecar_runs_it_again() {
    let root = repo_root().join("policies");
    let agents = root.join("s1/agents/call/seed-1");
    let (mut lab, dir) = start_lab_with(22600, topology(2, 0, 0.0, 4), Some(root.clone()));
    let models = models_config(&root, &agents, false, envoy::ARTIFACTS_CLUSTER).unwrap();
    let target = lab.opts.target.clone();
    let lt = |trigger: &str| {
        let mut lt = loadtest_for(&target, trigger);
        lt.threads = Some(2);
        lt.path = "/status/200".into();
        lt
    };
    let admin_port = lab.ports.client_admin;
    let errors = |lab: &Lab| {
        let (nums, _) = admin::stats(lab.ports.client_admin, "^wasmcustom\\.sfr2l_internal_errors_total$").unwrap();
        nums.get("wasmcustom.sfr2l_internal_errors_total").copied().unwrap_or(0)
    };
    let whole = |rec: &sfr2l_core::TraceRecord| rec.complete && rec.responses == u64::from(rec.calls);

    // 1. kill -9 the server-side Envoy mid-test: the calls it broke and the ones after it are
    // counted as failures, none is lost, and the record is whole.
    let upstream = lab.pid_of("upstream-envoy").unwrap();
    let rec = std::thread::scope(|s| {
        s.spawn(|| {
            wait_in_flight(admin_port);
            signal(upstream, libc::SIGKILL);
        });
        run_in_sidecar(&mut lab, &open_rule(0), models.clone(), lt("server-killed"), Duration::from_secs(60))
    })
    .unwrap();
    eprintln!(
        "FIGURE inline drill, server killed: {} calls, codes {:?}, reasons {:?}",
        rec.calls, rec.codes, rec.reasons
    );
    assert!(whole(&rec), "{rec:?}");
    assert!(rec.count(200) < u64::from(rec.calls), "the kill failed no call: {rec:?}");
    let healed = lab.heal(STOPPED_WAIT).unwrap();
    assert!(healed.iter().any(|l| l.starts_with("upstream-envoy")), "{healed:?}");
    let rec =
        run_in_sidecar(&mut lab, &open_rule(1), models.clone(), lt("after-server"), Duration::from_secs(60)).unwrap();
    assert!(whole(&rec) && rec.count(200) == u64::from(rec.calls), "after the heal: {rec:?}");
    assert_eq!(errors(&lab), 0, "the filter failed (it must fail open, not err)");

    // 2. kill -9 the client sidecar mid-test: its record dies with it, and the wait ends with a
    // message naming the dead process.
    let client = lab.pid_of("client-envoy").unwrap();
    let offset = log_offset(&lab);
    let err = std::thread::scope(|s| {
        s.spawn(|| {
            wait_in_flight(admin_port);
            signal(client, libc::SIGKILL);
        });
        run_in_sidecar(&mut lab, &open_rule(2), models.clone(), lt("client-killed"), Duration::from_secs(3))
    })
    .map(|r| format!("a record: {r:?}"))
    .unwrap_or_else(|e| format!("{e:#}"));
    eprintln!("FIGURE inline drill, sidecar killed: {err}");
    assert!(err.contains("client-envoy"), "{err}");
    // Restarted, the sidecar reads the same configuration and runs the interrupted test again,
    // whole (at least once: its claim lived in the killed process's shared data).
    let healed = lab.heal(STOPPED_WAIT).unwrap();
    assert!(healed.iter().any(|l| l.starts_with("client-envoy")), "{healed:?}");
    let t0 = Instant::now();
    let rec = loop {
        let recs = records_since(&lab, offset).unwrap();
        if let Some(r) = recs.into_iter().find(|r| r.inline.as_ref().is_some_and(|i| i.slot == "client-killed")) {
            break r;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "the restarted sidecar never ran the test");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(whole(&rec) && rec.count(200) == u64::from(rec.calls), "rerun: {rec:?}");
    assert_eq!(errors(&lab), 0);
    let needle = dir.path().to_string_lossy().to_string();
    lab.stop();
    std::thread::sleep(Duration::from_millis(300));
    let left = processes_mentioning(&needle);
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
