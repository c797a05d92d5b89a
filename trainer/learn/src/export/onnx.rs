//! Our ONNX writer (burn has no exporter, and tract only reads ONNX): builds `ModelProto`s from plain weights with the
//! protobuf types tract-onnx ships, for exactly the ops we use (Concat, Sub, Div, MatMul, Add,
//! Relu, Sum, Mul, Sqrt, Slice, Clip; opset 13).
//!
//! Output is deterministic: node and initializer names come from a counter, metadata is
//! written in a fixed order, and nothing time- or host-dependent goes into the file.

use crate::nn::MlpWeights;
use prost::Message;
use tract_onnx::pb;

pub const OPSET: i64 = 13;
pub const IR_VERSION: i64 = 8;
const FLOAT: i32 = 1; // TensorProto.DataType.FLOAT
const INT64: i32 = 7;

/// A graph under construction.
#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    counter: usize,
}

fn value_info(name: &str, dims: &[Option<i64>], doc: &str) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => Value::DimValue(*v),
                None => Value::DimParam("batch".into()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: FLOAT,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        doc_string: doc.into(),
    }
}

impl GraphBuilder {
    fn fresh(&mut self, stem: &str) -> String {
        self.counter += 1;
        format!("{stem}_{}", self.counter)
    }

    /// A graph input of shape `[batch, width]`.
    pub fn input(&mut self, name: &str, width: i64, doc: &str) -> String {
        self.inputs.push(value_info(name, &[None, Some(width)], doc));
        name.into()
    }

    /// Marks `value` as graph output `name` of shape `[batch, width]` (through an Identity
    /// node when the names differ).
    pub fn output(&mut self, value: &str, name: &str, width: i64, doc: &str) {
        if value != name {
            self.node("Identity", &[value], name, vec![]);
        }
        self.outputs.push(value_info(name, &[None, Some(width)], doc));
    }

    pub fn const_f32(&mut self, stem: &str, dims: &[i64], data: Vec<f32>) -> String {
        let name = self.fresh(stem);
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            dims: dims.to_vec(),
            data_type: FLOAT,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    pub fn const_i64(&mut self, stem: &str, data: Vec<i64>) -> String {
        let name = self.fresh(stem);
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            dims: vec![data.len() as i64],
            data_type: INT64,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// Adds a node; returns its (single) output name. `out` empty = a fresh name.
    pub fn node(&mut self, op: &str, inputs: &[&str], out: &str, attribute: Vec<pb::AttributeProto>) -> String {
        let output = if out.is_empty() { self.fresh(&op.to_lowercase()) } else { out.to_string() };
        let name = self.fresh(&format!("n_{}", op.to_lowercase()));
        self.nodes.push(pb::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            name,
            op_type: op.into(),
            attribute,
            ..Default::default()
        });
        output
    }

    pub fn op(&mut self, op: &str, inputs: &[&str]) -> String {
        self.node(op, inputs, "", vec![])
    }

    /// `relu(x W + b)` or `x W + b`. x: `[batch, d_in]` -> `[batch, d_out]`.
    pub fn dense(&mut self, x: &str, weight: &[f32], bias: &[f32], d_in: usize, d_out: usize, relu: bool) -> String {
        let w = self.const_f32("w", &[d_in as i64, d_out as i64], weight.to_vec());
        let b = self.const_f32("b", &[d_out as i64], bias.to_vec());
        let h = self.op("MatMul", &[x, &w]);
        let h = self.op("Add", &[&h, &b]);
        if relu {
            self.op("Relu", &[&h])
        } else {
            h
        }
    }

    /// The MLP on `x` (standardised), ReLU between layers. -> `[batch, d_out]`.
    pub fn mlp(&mut self, x: &str, w: &MlpWeights) -> String {
        let last = w.layers.len().saturating_sub(1);
        let mut h = x.to_string();
        for (i, l) in w.layers.iter().enumerate() {
            h = self.dense(&h, &l.weight, &l.bias, l.d_in, l.d_out, i < last);
        }
        h
    }

    /// `x[:, lo..hi]`.
    pub fn columns(&mut self, x: &str, lo: i64, hi: i64) -> String {
        let s = self.const_i64("starts", vec![lo]);
        let e = self.const_i64("ends", vec![hi]);
        let a = self.const_i64("axes", vec![1]);
        self.op("Slice", &[x, &s, &e, &a])
    }

    pub fn finish(self, name: &str, doc: &str, metadata: &[(String, String)]) -> pb::ModelProto {
        pb::ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
            producer_name: "sfr2l".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.into(),
            graph: Some(pb::GraphProto {
                node: self.nodes,
                name: name.into(),
                initializer: self.initializers,
                input: self.inputs,
                output: self.outputs,
                ..Default::default()
            }),
            metadata_props: metadata
                .iter()
                .map(|(k, v)| pb::StringStringEntryProto { key: k.clone(), value: v.clone() })
                .collect(),
            ..Default::default()
        }
    }
}

pub fn encode(model: &pb::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}
