//! Publishing artifacts: our ONNX writer (over tract-onnx's protobuf types) and the staged-folder
//! publisher, and the parity measure every export check uses. Each stage owns its graph builder
//! (`sim::export`, `rl::export`).

pub mod folder;
pub mod onnx;

/// Relative difference used by every parity check: `|a - b| / max(|b|, floor)`. The floor
/// keeps rates near 0 from turning float rounding into large relative numbers.
pub fn rel_diff(a: f32, b: f32, floor: f32) -> f32 {
    (a - b).abs() / b.abs().max(floor)
}
