//! The compute device for training. Flex, burn's pure-Rust CPU backend, unless `SFR2L_DEVICE`
//! names a GPU backend this binary was built with (`cargo build --features cuda` or `wgpu`).
//! Reference predictions for export checks always run on Flex.

use anyhow::{bail, Result};
use burn::prelude::Device;

/// Backends this build can use, for messages.
pub fn available() -> Vec<&'static str> {
    let mut v = vec!["flex"];
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    v
}

/// The device `SFR2L_DEVICE` asks for (default `flex`).
pub fn compute_device() -> Result<Device> {
    let want = std::env::var("SFR2L_DEVICE").unwrap_or_else(|_| "flex".into());
    match want.as_str() {
        "flex" | "" => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(Default::default())),
        other => bail!(
            "SFR2L_DEVICE={other}: this build has {}; GPU backends need `cargo build -p sfr2l --features cuda` (or wgpu)",
            available().join(", ")
        ),
    }
}
