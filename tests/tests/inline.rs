//! End-to-end: load-test mode in the real client Envoy. The filter fetches an exported agent
//! pair and the simulator from the lab's artifact server, decides threads and calls for the
//! rule in force, sends that load itself and writes one trace record; its decisions must equal
//! the native runtime's on the same states, its counts Envoy's own cluster stats. Bad model
//! configurations are rejected while traffic keeps flowing.

use sfr2l_core::agent::AgentKind;
use sfr2l_core::{IstioDuration, TrafficRule};
use sfr2l_lab::loadtest::{lab_loadtest, models_config, run_in_sidecar};
use sfr2l_lab::{admin, envoy};
use sfr2l_load::{self as load, LoadSpec};
use sfr2l_runtime::Agent;
use sfr2l_tests::{repo_root, start_lab_with};
use std::time::Duration;

fn rule(pending: u32, conn: u32, rpc: u32) -> TrafficRule {
    TrafficRule {
        max_pending_requests: pending,
        max_connections: conn,
        max_requests_per_connection: rpc,
        base_ejection_time: IstioDuration::from_secs(180.0),
        max_ejection_percent: 100,
        interval: IstioDuration::from_secs(1.0),
        consecutive_5xx_errors: 1,
    }
}

fn stat(lab: &sfr2l_lab::Lab, name: &str) -> u64 {
    let (nums, _) = admin::stats(lab.ports.client_admin, &format!("^{}$", name.replace('.', "\\."))).unwrap();
    nums.get(name).copied().unwrap_or(0)
}

/// Responses of the server sidecars summed over hosts: [2xx, 5xx, completed].
fn server_side(lab: &sfr2l_lab::Lab) -> [u64; 3] {
    let (nums, _) =
        admin::stats(lab.ports.upstream_admin, "^http\\.host[0-9]+\\.downstream_rq_(2xx|5xx|completed)$").unwrap();
    let sum = |suffix: &str| nums.iter().filter(|(k, _)| k.ends_with(suffix)).map(|(_, v)| *v).sum();
    [sum("downstream_rq_2xx"), sum("downstream_rq_5xx"), sum("downstream_rq_completed")]
}

#[test]
fn sidecar_decides_and_runs_the_load_test() {
    let root = repo_root().join("policies");
    let agents_dir = root.join("s1/agents/thread-call/seed-1");
    let (mut lab, _dir) = start_lab_with(21600, sfr2l_files::study::find("s1").unwrap().study.lab, Some(root.clone()));
    let models = models_config(&root, &agents_dir, true, envoy::ARTIFACTS_CLUSTER).unwrap();
    let native: Vec<(AgentKind, Agent)> = [AgentKind::Threads, AgentKind::Calls]
        .iter()
        .map(|k| {
            (*k, Agent::from_bytes(&std::fs::read(agents_dir.join(format!("{}.onnx", k.name()))).unwrap()).unwrap())
        })
        .collect();

    for (i, r) in [rule(3, 3, 4), rule(6, 7, 3), rule(1, 1, 1)].iter().enumerate() {
        let before = server_side(&lab);
        let lt = lab_loadtest(&lab, &format!("t{i}"));
        let rec = run_in_sidecar(&mut lab, r, models.clone(), lt, Duration::from_secs(60)).unwrap();
        let inline = rec.inline.as_ref().unwrap();
        eprintln!(
            "rule {i}: threads {} calls {} qps {:.1} 503 {:.3} reward {:.1} predicted {:?}",
            rec.threads, rec.calls, rec.qps, rec.rate_503, inline.reward, inline.predicted
        );
        // The decision chain is the trainer's: thread agent on the 7 rules, call agent sees it.
        assert_eq!(inline.configuration, "thread-call");
        assert_eq!(inline.steps.len(), 2);
        let rule_state: Vec<f32> = r.values().iter().map(|v| *v as f32).collect();
        assert_eq!(inline.steps[0].state, rule_state);
        assert_eq!(inline.steps[1].state[..7], rule_state[..]);
        assert_eq!(inline.steps[1].state[7], inline.steps[0].choice as f32);
        for (step, (kind, agent)) in inline.steps.iter().zip(&native) {
            assert_eq!(step.agent, kind.name());
            assert_eq!(
                step.choice,
                agent.decide(&step.state).unwrap(),
                "in-Envoy decision differs from the native runtime's"
            );
        }
        assert_eq!((rec.threads, rec.calls), (inline.steps[0].choice, inline.steps[1].choice));
        // Exact counts: every call answered once, as Envoy's own cluster stats say.
        assert!(rec.complete, "{rec:?}");
        assert_eq!(rec.responses, u64::from(rec.calls));
        assert_eq!(inline.no_response, 0);
        // Counted from the other side of the wire: the server sidecars (never rebuilt) saw every
        // call that left the client sidecar; the rest were its local overflow replies.
        let after = server_side(&lab);
        let delta = |i: usize| after[i] - before[i];
        assert_eq!(delta(0), rec.count(200), "2xx at the servers");
        assert_eq!(delta(2), rec.reasons.upstream, "calls that reached a server");
        assert_eq!(
            delta(1) + rec.reasons.overflow + rec.reasons.refused,
            rec.count(503),
            "503s: server faults + local overflow"
        );
        let p = inline.predicted.expect("simulator loaded");
        assert!(p.qps > 0.0 && (0.0..=1.0).contains(&p.failure_rate));
        assert!((inline.reward - rec.qps * rec.rate_503).abs() < 1e-9, "worst objective: QPS x P503");
    }
    assert_eq!(stat(&lab, "wasmcustom.sfr2l_inline_tests_total"), 3);

    // Decisions over S1's rule grid (corners and centre of the three varied rules), one call
    // each (`max_calls` caps the load, not the decision): Envoy's choices equal the native ones.
    let mut swept = 0;
    for pending in [1, 4, 7] {
        for conn in [1, 4, 7] {
            for rpc in [1, 7] {
                let mut lt = lab_loadtest(&lab, &format!("grid-{pending}-{conn}-{rpc}"));
                lt.max_calls = 1;
                let rec =
                    run_in_sidecar(&mut lab, &rule(pending, conn, rpc), models.clone(), lt, Duration::from_secs(30))
                        .unwrap();
                for (step, (_, agent)) in rec.inline.as_ref().unwrap().steps.iter().zip(&native) {
                    assert_eq!(
                        step.choice,
                        agent.decide(&step.state).unwrap(),
                        "rule {pending},{conn},{rpc}: {step:?}"
                    );
                }
                assert_eq!(rec.responses, 1);
                swept += 1;
            }
        }
    }
    assert_eq!(stat(&lab, "wasmcustom.sfr2l_inline_tests_total"), 3 + swept);
    assert_eq!(stat(&lab, "wasmcustom.sfr2l_model_errors_total"), 0);
    assert_eq!(stat(&lab, "wasmcustom.sfr2l_models_loaded"), 1);

    // Bad model configurations: each is rejected with a metric, the loaded agents keep deciding,
    // and no request through the listener is failed by the filter.
    let good_sha = models.agents["thread"].sha256.clone();
    let mut wrong_sha = models.clone();
    wrong_sha.agents.get_mut("thread").unwrap().sha256 = "0".repeat(64);
    let mut missing = models.clone();
    missing.agents.get_mut("call").unwrap().path = "/s1/agents/thread-call/seed-1/nope.onnx".into();
    let mut no_cluster = models.clone();
    no_cluster.cluster = "no-such-cluster".into();
    no_cluster.fetch_timeout = IstioDuration::from_secs(1.0);
    let mut not_onnx = models.clone();
    not_onnx.agents.get_mut("call").unwrap().path = "/s1/simulator.json".into();
    not_onnx.agents.get_mut("call").unwrap().sha256 =
        sfr2l_files::sha256_hex(&std::fs::read(root.join("s1/simulator.json")).unwrap());
    let mut wrong_agent = models.clone();
    let swapped = wrong_agent.agents["thread"].clone();
    *wrong_agent.agents.get_mut("call").unwrap() = swapped;
    let bad = [
        ("wrong sha256", wrong_sha),
        ("missing file", missing),
        ("unknown cluster", no_cluster),
        ("not ONNX", not_onnx),
        ("thread graph as call agent", wrong_agent),
    ];
    for (i, (what, m)) in bad.into_iter().enumerate() {
        let errors = stat(&lab, "wasmcustom.sfr2l_model_errors_total");
        let counted =
            stat(&lab, "wasmcustom.sfr2l_responses_2xx_total") + stat(&lab, "wasmcustom.sfr2l_responses_5xx_total");
        let spec = LoadSpec::from_url(&lab.client_url("/status/200"), 2, 40).unwrap();
        let load = std::thread::spawn(move || load::run(&spec));
        let lt = lab_loadtest(&lab, &format!("bad{i}"));
        let rec = run_in_sidecar(&mut lab, &rule(4, 4, 4), m, lt, Duration::from_secs(60)).unwrap();
        let res = load.join().unwrap().unwrap();
        // Every request answered (by the service: the S1 hosts fail some on purpose), and the
        // filter, still alive, counted each one.
        let codes = res.ret_codes();
        assert_eq!(codes.get(&200).unwrap_or(&0) + codes.get(&503).unwrap_or(&0), 40, "{what}: {codes:?}");
        let t0 = std::time::Instant::now();
        while stat(&lab, "wasmcustom.sfr2l_responses_2xx_total") + stat(&lab, "wasmcustom.sfr2l_responses_5xx_total")
            < counted + 40
        {
            assert!(t0.elapsed() < Duration::from_secs(10), "{what}: the filter stopped counting");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(rec.inline.as_ref().unwrap().agents_sha256[0], good_sha, "{what}: the old agents decide");
        let t0 = std::time::Instant::now();
        while stat(&lab, "wasmcustom.sfr2l_model_errors_total") <= errors {
            assert!(t0.elapsed() < Duration::from_secs(20), "{what}: no model error counted");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let log = std::fs::read_to_string(lab.client_log()).unwrap();
    for needle in ["differs from the configured", "HTTP status 404", "no-such-cluster", "agents.call: ", "sfr2l.action"]
    {
        assert!(log.contains(needle), "no rejection line mentioning {needle:?}");
    }
    assert_eq!(stat(&lab, "wasmcustom.sfr2l_models_loaded"), 1);

    // The simulator's view of the observed (unannounced) traffic: prediction and residual gauges.
    let t0 = std::time::Instant::now();
    while stat(&lab, "wasmcustom.sfr2l_sim_predicted_qps") == 0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "no simulator gauges for observed traffic");
        std::thread::sleep(Duration::from_millis(100));
    }
    // One admin read, so the three gauges come from the same window update.
    let (g, _) = admin::stats(
        lab.ports.client_admin,
        "^wasmcustom\\.sfr2l_(window_503_permille|sim_predicted_503_permille|sim_residual_503_permille_abs)$",
    )
    .unwrap();
    let get = |k: &str| g.get(&format!("wasmcustom.sfr2l_{k}")).copied().unwrap_or(0) as i64;
    let (observed, predicted, residual) =
        (get("window_503_permille"), get("sim_predicted_503_permille"), get("sim_residual_503_permille_abs"));
    assert!(
        (residual - (observed - predicted).abs()).abs() <= 1,
        "residual {residual}, observed {observed}, predicted {predicted}"
    );
}
