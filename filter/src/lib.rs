//! sfr2l-filter: a thin proxy-wasm layer over `sfr2l-core`.
//!
//! Observe mode: every response that passes the sidecar is counted by code class and in a rolling
//! window; responses of an announced load-test run (request headers `x-sfr2l-run`,
//! `x-sfr2l-threads`, `x-sfr2l-calls`) are also counted per run. Envoy runs one VM per worker, so
//! each VM keeps its share locally and merges it into host shared data on every tick with a CAS
//! loop (`sfr2l_core::store`); the merge that completes a run writes the single trace record.
//! The filter never changes a response: every callback returns `Continue`, errors are logged once
//! and counted in `sfr2l_internal_errors_total` / `sfr2l_config_errors_total`.

mod fetch;
mod host;
mod loadtest;
mod metrics;
mod models;
mod plugin;
mod runs;
mod state;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(plugin::Root::new(id))
    });
}}
