//! `simulator.onnx`: the study's named raw inputs `[batch, 1]` in its input order (the paper's
//! nine for S1-S5); outputs
//! `qps` and the failure rate (`rate_503`, or named by the study's failure codes,
//! `rate_429_503`) `[batch, 1]` in raw units (QPS >= 0, rate clamped to [0, 1]) and
//! `uncertainty` `[batch, 2]`, the ensemble members' standard deviation of (QPS, rate) in raw
//! units (0 for a single network). Standardisation of inputs and outputs is inside the graph.

use crate::data::Standardizer;
use crate::export::onnx::{encode, GraphBuilder};
use crate::nn::MlpWeights;
use sfr2l_core::artifact::{meta, KIND_SIMULATOR};
use sfr2l_core::Study;

/// The graph's outputs for a study: QPS, its failure rate, the ensemble spread.
pub fn output_names(study: &Study) -> [String; 3] {
    ["qps".into(), study.failure().column(), "uncertainty".into()]
}

/// Everything the graph needs besides the weights.
pub struct SimulatorSpec<'a> {
    pub study: &'a Study,
    pub x_norm: &'a Standardizer,
    pub y_norm: &'a Standardizer,
    pub members: &'a [MlpWeights],
    pub dataset_sha256: &'a str,
}

/// The serialized ONNX model.
pub fn simulator_onnx(spec: &SimulatorSpec) -> Vec<u8> {
    let mut g = GraphBuilder::default();
    let prof = spec.study;
    let features = prof.inputs().features();
    let names: Vec<String> = features
        .iter()
        .map(|f| {
            let (lo, hi) = prof.feature_range(*f);
            g.input(f.name(), 1, &format!("{} ({}), {}; profile range {lo}..={hi}", f.name(), f.unit(), f.source()))
        })
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let concat = g.node(
        "Concat",
        &refs,
        "features",
        vec![tract_onnx::pb::AttributeProto {
            name: "axis".into(),
            r#type: tract_onnx::pb::attribute_proto::AttributeType::Int as i32,
            i: 1,
            ..Default::default()
        }],
    );
    let f32s = |v: &[f64]| v.iter().map(|x| *x as f32).collect::<Vec<f32>>();
    let xm = g.const_f32("x_mean", &[features.len() as i64], f32s(&spec.x_norm.mean));
    let xs = g.const_f32("x_std", &[features.len() as i64], f32s(&spec.x_norm.std));
    let centred = g.op("Sub", &[&concat, &xm]);
    let x = g.op("Div", &[&centred, &xs]);

    let outs: Vec<String> = spec.members.iter().map(|w| g.mlp(&x, w)).collect();
    let out_refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    let k = g.const_f32("inv_members", &[], vec![1.0 / spec.members.len().max(1) as f32]);
    let sum = g.op("Sum", &out_refs);
    let mean = g.op("Mul", &[&sum, &k]);

    let sq: Vec<String> = outs
        .iter()
        .map(|o| {
            let d = g.op("Sub", &[o, &mean]);
            g.op("Mul", &[&d, &d])
        })
        .collect();
    let sq_refs: Vec<&str> = sq.iter().map(String::as_str).collect();
    let var_sum = g.op("Sum", &sq_refs);
    let var = g.op("Mul", &[&var_sum, &k]);
    let sd = g.op("Sqrt", &[&var]);
    let ym = g.const_f32("y_mean", &[2], f32s(&spec.y_norm.mean));
    let ys = g.const_f32("y_std", &[2], f32s(&spec.y_norm.std));
    let sd_raw = g.op("Mul", &[&sd, &ys]);
    let scaled = g.op("Mul", &[&mean, &ys]);
    let raw = g.op("Add", &[&scaled, &ym]);
    let q = g.columns(&raw, 0, 1);
    let q = g.op("Relu", &[&q]);
    let r = g.columns(&raw, 1, 2);
    let lo = g.const_f32("rate_min", &[], vec![0.0]);
    let hi = g.const_f32("rate_max", &[], vec![1.0]);
    let r = g.op("Clip", &[&r, &lo, &hi]);
    let failure = prof.failure();
    let names = output_names(prof);
    g.output(&q, &names[0], 1, "QPS of the run (queries/s), >= 0");
    g.output(&r, &names[1], 1, &format!("share of {}, clamped to [0, 1]", failure.responses()));
    let rate = failure.spread_name();
    g.output(&sd_raw, &names[2], 2, &format!("ensemble standard deviation of (QPS, {rate}), raw units"));

    let feature_list = prof.inputs().names().join(",");
    let metadata = vec![
        (meta::SCHEMA.to_string(), sfr2l_core::card::CARD_SCHEMA.to_string()),
        (meta::KIND.to_string(), KIND_SIMULATOR.to_string()),
        (meta::PROFILE.to_string(), spec.study.name.clone()),
        (meta::FEATURES.to_string(), feature_list),
        (meta::OUTPUTS.to_string(), names.join(",")),
        (meta::ENSEMBLE.to_string(), spec.members.len().to_string()),
        (meta::DATASET_SHA256.to_string(), spec.dataset_sha256.to_string()),
    ];
    let doc = format!(
        "sfr2l simulator for profile {}: raw DestinationRule + load features in, QPS and {rate} out",
        spec.study.name
    );
    encode(&g.finish("sfr2l_simulator", &doc, &metadata))
}
