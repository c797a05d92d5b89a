//! ABI-level tests of the built filter module (target/wasm32-wasip1/release/sfr2l_filter.wasm,
//! `make filter`) in our own proxy-wasm host: several worker VMs, a virtual clock and callouts
//! the test answers in any order, or never. What a real Envoy cannot make repeatable.

// The test helpers unwrap as the tests do (clippy's allow-unwrap-in-tests covers #[test] fns only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bounded;
mod callouts;
mod loadtest;
mod models;
mod observe;
mod support;

use sfr2l_wasm_host::{linker, Host};

/// Every import of the module is provided, and each one is required: without it the module
/// does not instantiate, and the error names it.
#[test]
fn every_import_is_provided_and_required() {
    let m = support::module();
    let imports: Vec<(String, String)> = m.imports().map(|i| (i.module().to_string(), i.name().to_string())).collect();
    assert!(imports.iter().any(|(ns, n)| ns == "env" && n == "proxy_http_call"), "{imports:?}");
    assert!(imports.iter().any(|(ns, n)| ns == "wasi_snapshot_preview1" && n == "clock_time_get"), "{imports:?}");
    let mut full = Host::new(m, linker(m.engine(), m, &[]).unwrap());
    full.add_vm().unwrap();
    for (ns, name) in &imports {
        let mut h = Host::new(m, linker(m.engine(), m, &[name.as_str()]).unwrap());
        let err = format!("{:?}", h.add_vm().expect_err(&format!("instantiated without {ns}.{name}")));
        assert!(err.contains(name.as_str()), "the error does not name {ns}.{name}: {err}");
    }
}
