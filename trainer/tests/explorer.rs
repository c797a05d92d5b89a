//! The what-if explorer in a real headless browser (Debian's chromium): the server of
//! `sfr2l explore` on loopback, the page loads the wasm module (sfr2l-runtime/tract built for
//! wasm32-unknown-unknown), runs the committed S1 simulator, and its numbers equal
//! `sfr2l sim predict` for the same inputs; bad cards and bad values give a message, not a blank page.
//! Needs `make explorer` (target/explorer); the sfr2l binary is the one cargo built for this test.

#![cfg(test)] // test-only crate: clippy treats its helpers as test code (unwrap allowed)

use sfr2l::serve::{serve, Site};
use sfr2l_tests::repo_root;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BASE_PORT: u16 = 23100;

/// Trace records from a real S1 lab run (the advisor's lab check, Envoy 1.40, the built filter).
const TRACE_1: &str = r#"{"schema":2,"run":"r0-1-440-0-0-t1","generation":2,"complete":true,"rule":{"max_pending_requests":1,"max_connections":7,"max_requests_per_connection":1,"base_ejection_time":"3m","max_ejection_percent":100,"interval":"1s","consecutive_5xx_errors":1},"threads":1,"calls":440,"responses":440,"codes":{"200":140,"503":300},"reasons":{"overflow":0,"no_healthy":238,"connect_failure":0,"fault":0,"upstream":202},"first_ns":1795962671488639000,"last_ns":1795962672691169000,"span_s":1.20253,"qps":365.8952375408513,"rate_200":0.3181818181818182,"rate_503":0.6818181818181818,"mismatched":0}"#;
const TRACE_2: &str = r#"{"schema":2,"run":"r1-1-440-0-0-t1","generation":3,"complete":true,"rule":{"max_pending_requests":2,"max_connections":4,"max_requests_per_connection":4,"base_ejection_time":"3m","max_ejection_percent":100,"interval":"1s","consecutive_5xx_errors":1},"threads":1,"calls":440,"responses":440,"codes":{"200":144,"503":296},"reasons":{"overflow":0,"no_healthy":226,"connect_failure":0,"fault":0,"upstream":214},"first_ns":1795962672825212000,"last_ns":1795962673901147000,"span_s":1.075935,"qps":408.94663711097786,"rate_200":0.32727272727272727,"rate_503":0.6727272727272727,"mismatched":0}"#;

/// Envoy's prefix of a line the Wasm logger wrote: only such lines are trace records.
const WASM_LOG: &str = "[2026-12-07 10:00:00.000][7][info][wasm] [context.cc:1151] wasm log sfr2l sfr2l: ";

/// Starts the explorer's server on `port` in a background thread (it lives as long as the test process).
fn start(port: u16, policies: PathBuf, lab: PathBuf) -> String {
    let root = repo_root();
    let pkg = root.join("target/explorer");
    assert!(pkg.join("sfr2l_explorer_bg.wasm").is_file(), "{}: run `make explorer` first", pkg.display());
    let site = Site { pkg, policies, data: root.join("data"), lab, trace_key: None };
    let addr = format!("127.0.0.1:{port}");
    let (tx, rx) = std::sync::mpsc::channel();
    let a = addr.clone();
    std::thread::spawn(move || {
        let r = serve(site, &a, |_| {
            let _ = tx.send(());
        });
        eprintln!("server on {a} ended: {r:?}");
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("server bound");
    format!("http://{addr}")
}

/// The DOM after the page has run, from `chromium --headless --dump-dom` (killed after 90 s).
fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=60000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium (Debian package `chromium`; `make setup` installs it)");
    let mut out = child.stdout.take().expect("stdout");
    let t0 = Instant::now();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let dom = reader.join().expect("reader");
    eprintln!("chromium: {url} in {:.1} s", t0.elapsed().as_secs_f64());
    dom
}

/// Text of the element with `id` (no nested tags in the ones read here).
fn by_id(dom: &str, id: &str) -> Option<String> {
    let i = dom.find(&format!("id=\"{id}\""))?;
    let start = i + dom[i..].find('>')? + 1;
    let end = start + dom[start..].find('<')?;
    Some(dom[start..end].replace("&amp;", "&").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">"))
}

fn body_attr(dom: &str, attr: &str) -> Option<String> {
    let b = dom.find("<body")?;
    let tag = &dom[b..b + dom[b..].find('>')?];
    let i = tag.find(&format!("{attr}=\""))? + attr.len() + 2;
    Some(tag[i..i + tag[i..].find('"')?].replace("&quot;", "\"").replace("&amp;", "&"))
}

fn sim_predict(sim: &Path, features: &str) -> serde_json::Value {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_sfr2l"));
    let out = Command::new(&bin)
        .args(["sim", "predict", "--sim"])
        .arg(sim)
        .args(["--features", features])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (build it: cargo build --profile fast -p sfr2l)", bin.display()));
    assert!(out.status.success(), "sim predict: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("sim predict prints JSON")
}

/// The page's numbers equal `sfr2l sim predict` (same printed precision; tract's kernels differ
/// between x86 and wasm only in the last float bits, so one unit in the last printed digit).
#[test]
fn page_numbers_equal_sim_predict() {
    let root = repo_root();
    let lab = tempfile::tempdir().expect("tempdir");
    let url = start(BASE_PORT, root.join("policies"), lab.path().to_path_buf());
    // Inside the card's ranges, a cliff corner, and an extrapolated load.
    for (features, extrapolated) in
        [("4,4,4,180,100,1,1,3,425", false), ("1,1,1,180,100,1,1,5,450", false), ("7,7,7,180,100,1,1,9,900", true)]
    {
        let dom = dump_dom(&format!("{url}/?sim=s1&f={features}"));
        assert_eq!(
            body_attr(&dom, "data-state").as_deref(),
            Some("ready"),
            "page state; status: {:?}",
            by_id(&dom, "status")
        );
        let page: serde_json::Value =
            serde_json::from_str(&by_id(&dom, "out-cli").expect("out-cli")).expect("the page's line is JSON");
        let cli = sim_predict(&root.join("policies/s1"), features);
        eprintln!("page {page}\ncli  {cli}");
        assert_eq!(page["profile"], cli["profile"]);
        let close = |a: &serde_json::Value, b: &serde_json::Value, unit: f64, what: &str| {
            let (a, b) = (a.as_f64().expect(what), b.as_f64().expect(what));
            assert!((a - b).abs() <= unit * 1.000_001, "{what} at {features}: page {a}, sfr2l sim predict {b}");
        };
        close(&page["qps"], &cli["qps"], 1e-3, "qps");
        close(&page["rate_503"], &cli["rate_503"], 1e-4, "rate_503");
        close(&page["reward"], &cli["reward"], 1e-3, "reward");
        close(&page["uncertainty"][0], &cli["uncertainty"][0], 1e-3, "sd qps");
        close(&page["uncertainty"][1], &cli["uncertainty"][1], 1e-4, "sd rate");
        let extra = by_id(&dom, "out-extra").unwrap_or_default();
        assert_eq!(extra.contains("calls = 900"), extrapolated, "extrapolation flag: {extra}");
        // The heat map ran, agents were loaded and dataset rows were matched.
        let opt = body_attr(&dom, "data-optimum").expect("optimum marked");
        assert!(opt.split(',').count() == 2, "{opt}");
        assert!(dom.contains("thread-call/seed-1 → -c"), "agents' choices listed");
        let near: usize = by_id(&dom, "out-near").expect("near rows").parse().expect("count");
        assert!(near > 0 || extrapolated, "dataset rows near {features}: {near}");
    }
}

/// A card that does not match its ONNX, and a value that is not a number: the page says so.
#[test]
fn bad_card_and_bad_values_are_named_on_the_page() {
    let root = repo_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = tmp.path().join("policies/s1");
    std::fs::create_dir_all(&bad).expect("mkdir");
    std::fs::copy(root.join("policies/s1/simulator.onnx"), bad.join("simulator.onnx")).expect("copy");
    let card = std::fs::read_to_string(root.join("policies/s1/simulator.json")).expect("card");
    let card = card.replace("\"onnx_sha256\": \"d", "\"onnx_sha256\": \"0");
    std::fs::write(bad.join("simulator.json"), card).expect("write");
    let url = start(BASE_PORT + 1, tmp.path().join("policies"), tmp.path().to_path_buf());
    let dom = dump_dom(&format!("{url}/?sim=s1"));
    assert_eq!(body_attr(&dom, "data-state").as_deref(), Some("error"));
    let msg = body_attr(&dom, "data-error").expect("error message");
    assert!(msg.contains("onnx_sha256"), "{msg}");

    let good = start(BASE_PORT + 2, root.join("policies"), tmp.path().to_path_buf());
    let dom = dump_dom(&format!("{good}/?sim=s1&f=4,4,x,180,100,1,1,3,425"));
    assert_eq!(body_attr(&dom, "data-state").as_deref(), Some("error"));
    let msg = body_attr(&dom, "data-error").expect("error message");
    assert!(msg.contains("max_requests_per_connection") && msg.contains("not a number"), "{msg}");

    // The trace view reads the lab's client sidecar log (two records from a real S1 lab run).
    std::fs::create_dir_all(tmp.path().join("logs")).expect("mkdir");
    std::fs::write(
        tmp.path().join("logs/client-envoy.log"),
        format!(
            "[info] start\n{WASM_LOG}SFR2L_TRACE {TRACE_1}\nother\n{WASM_LOG}SFR2L_TRACE {TRACE_2}\n\
             [2026-12-07 10:00:00.000][7][info][http] [conn_manager_impl.cc:1] SFR2L_TRACE {TRACE_2}\n"
        ),
    )
    .expect("write");
    let dom = dump_dom(&format!("{good}/?sim=s1&traces=lab"));
    assert_eq!(body_attr(&dom, "data-state").as_deref(), Some("ready"), "{:?}", body_attr(&dom, "data-error"));
    assert_eq!(by_id(&dom, "out-traces").as_deref(), Some("2"));
    let info = dom.split("id=\"trace-info\"").nth(1).unwrap_or("");
    assert!(info.contains("over 2 with a rule"), "each record's rule was run through the simulator");

    // Path traversal over real HTTP (a browser would normalise `..` away): refused.
    for path in ["/policies/../Cargo.toml", "/policies/%2e%2e/Cargo.toml", "/data/..%2fCargo.toml"] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", BASE_PORT + 2)).expect("connect");
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("read");
        assert!(resp.starts_with("HTTP/1.1 403"), "{path}: {}", resp.lines().next().unwrap_or(""));
    }
}
