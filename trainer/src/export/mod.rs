//! ONNX export (our own writer over tract-onnx's protobuf types) and model cards.

pub mod folder;
pub mod onnx;
pub mod simulator;
