//! The built filter module: size budget and the proxy-wasm ABI it exports.

#[test]
fn filter_module_fits_its_budget_and_exports_the_abi() {
    let path = sfr2l_tests::repo_root().join("target/wasm32-wasip1/release/sfr2l_filter.wasm");
    let bytes = std::fs::read(&path).expect("built filter (make filter)");
    assert_eq!(&bytes[..4], b"\0asm", "not a wasm module");
    // Budget: 1 MiB (390 KB today). Istio's agent caps modules at 256 MiB; V8 start-up and
    // per-VM memory grow with code size (reference 6.5), four VMs per sidecar.
    assert!(bytes.len() < 1 << 20, "sfr2l_filter.wasm is {} bytes, budget 1 MiB", bytes.len());
    let has = |s: &str| bytes.windows(s.len()).any(|w| w == s.as_bytes());
    for export in ["proxy_abi_version_0_2_1", "proxy_on_log", "proxy_on_tick", "proxy_on_configure"] {
        assert!(has(export), "missing export {export}");
    }
}
