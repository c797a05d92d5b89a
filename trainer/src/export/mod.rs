//! Publishing artifacts: our ONNX writer (over tract-onnx's protobuf types) and the staged-folder
//! publisher. Each stage owns its graph builder (`sim::export`, `rl::export`).

pub mod folder;
pub mod onnx;
