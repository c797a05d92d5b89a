//! Envoy metrics (visible as `wasmcustom.<name>` in /stats, `<name>` in /stats/prometheus).

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics {
    /// Responses by code class 1xx..5xx (index 0..4), and other codes (index 5).
    pub responses: [Option<u32>; 6],
    pub runs_completed: Option<u32>,
    pub runs_incomplete: Option<u32>,
    pub late_responses: Option<u32>,
    pub unannounced: Option<u32>,
    pub window_qps: Option<u32>,
    pub window_503_permille: Option<u32>,
    pub config_errors: Option<u32>,
    pub internal_errors: Option<u32>,
    pub config_generation: Option<u32>,
    pub models_loaded: Option<u32>,
    pub model_errors: Option<u32>,
    pub inline_tests: Option<u32>,
    pub inline_aborted: Option<u32>,
    pub inline_last_threads: Option<u32>,
    pub inline_last_calls: Option<u32>,
    pub inline_last_reward_milli: Option<u32>,
    /// The share of 503 answers of the last inline test (its reward counts the study's codes).
    pub inline_last_503_permille: Option<u32>,
    pub inline_predicted_reward_milli: Option<u32>,
    pub sim_predicted_qps: Option<u32>,
    /// The simulator's predicted failure rate (503 for the paper's studies; the study's codes
    /// otherwise: the agents' `sfr2l.failure_codes`).
    pub sim_predicted_503_permille: Option<u32>,
    pub sim_residual_qps_abs: Option<u32>,
    pub sim_residual_503_permille_abs: Option<u32>,
    pub runs_evicted: Option<u32>,
    pub trace_lines_dropped: Option<u32>,
    pub open_runs: Option<u32>,
    pub shared_bytes: Option<u32>,
    /// Streams that ended before any response (the client or a drain reset them): not an error
    /// of the filter, so not in `internal_errors`.
    pub client_resets: Option<u32>,
}

fn define(t: MetricType, name: &str) -> Option<u32> {
    hostcalls::define_metric(t, name).ok()
}

impl Metrics {
    pub fn define() -> Self {
        let c = MetricType::Counter;
        let g = MetricType::Gauge;
        Metrics {
            responses: [
                define(c, "sfr2l_responses_1xx_total"),
                define(c, "sfr2l_responses_2xx_total"),
                define(c, "sfr2l_responses_3xx_total"),
                define(c, "sfr2l_responses_4xx_total"),
                define(c, "sfr2l_responses_5xx_total"),
                define(c, "sfr2l_responses_other_total"),
            ],
            runs_completed: define(c, "sfr2l_runs_completed_total"),
            runs_incomplete: define(c, "sfr2l_runs_incomplete_total"),
            late_responses: define(c, "sfr2l_late_responses_total"),
            unannounced: define(c, "sfr2l_unannounced_responses_total"),
            window_qps: define(g, "sfr2l_window_qps"),
            window_503_permille: define(g, "sfr2l_window_503_permille"),
            config_errors: define(c, "sfr2l_config_errors_total"),
            internal_errors: define(c, "sfr2l_internal_errors_total"),
            config_generation: define(g, "sfr2l_config_generation"),
            models_loaded: define(g, "sfr2l_models_loaded"),
            model_errors: define(c, "sfr2l_model_errors_total"),
            inline_tests: define(c, "sfr2l_inline_tests_total"),
            inline_aborted: define(c, "sfr2l_inline_aborted_total"),
            inline_last_threads: define(g, "sfr2l_inline_last_threads"),
            inline_last_calls: define(g, "sfr2l_inline_last_calls"),
            inline_last_reward_milli: define(g, "sfr2l_inline_last_reward_milli"),
            inline_last_503_permille: define(g, "sfr2l_inline_last_503_permille"),
            inline_predicted_reward_milli: define(g, "sfr2l_inline_predicted_reward_milli"),
            sim_predicted_qps: define(g, "sfr2l_sim_predicted_qps"),
            sim_predicted_503_permille: define(g, "sfr2l_sim_predicted_503_permille"),
            sim_residual_qps_abs: define(g, "sfr2l_sim_residual_qps_abs"),
            sim_residual_503_permille_abs: define(g, "sfr2l_sim_residual_503_permille_abs"),
            runs_evicted: define(c, "sfr2l_runs_evicted_total"),
            trace_lines_dropped: define(c, "sfr2l_trace_lines_dropped_total"),
            open_runs: define(g, "sfr2l_open_runs"),
            shared_bytes: define(g, "sfr2l_shared_run_bytes"),
            client_resets: define(c, "sfr2l_client_resets_total"),
        }
    }
}

pub fn inc(id: Option<u32>, by: i64) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, by);
    }
}

pub fn set(id: Option<u32>, v: u64) {
    if let Some(id) = id {
        let _ = hostcalls::record_metric(id, v);
    }
}

pub fn code_class(code: u16) -> usize {
    match code {
        100..=599 => (code / 100 - 1) as usize,
        _ => 5,
    }
}
