//! Agent states as tensors: the columns an agent sees, their normalisation, and the
//! conversions between rows and burn tensors.

use super::env::RewardTable;
use crate::data::Standardizer;
use burn::prelude::*;
use sfr2l_core::agent::{AgentSpec, Extra};

/// The state columns of an agent for service rows; `first` is the first agent's chosen value
/// per interaction (dependent agents).
pub(super) fn raw_states(spec: &AgentSpec, t: &RewardTable, rows: &[usize], first: Option<&[u32]>) -> Vec<Vec<f32>> {
    rows.iter()
        .enumerate()
        .map(|(j, &r)| {
            let mut s: Vec<f32> = t.rules[r].to_vec();
            match spec.extra {
                Extra::None => {}
                Extra::RunLoad(k) => s.push(t.run_load[r].of(k)),
                Extra::FirstAction(_) => s.push(first.map(|f| f[j] as f32).unwrap_or(0.0)),
            }
            s
        })
        .collect()
}

/// Normalisation of an agent's state over a service's rows (the first agent's value: its grid).
pub(super) fn state_norm(spec: &AgentSpec, t: &RewardTable) -> Standardizer {
    let mut cols: Vec<Vec<f64>> = (0..spec.state_width(&t.inputs)).map(|_| Vec::new()).collect();
    let all: Vec<usize> = (0..t.rows()).collect();
    let first: Option<Vec<u32>> = match spec.extra {
        Extra::FirstAction(k) => {
            let g = t.grid(k);
            Some(all.iter().map(|i| g[i % g.len()]).collect())
        }
        _ => None,
    };
    for s in raw_states(spec, t, &all, first.as_deref()) {
        for (c, v) in cols.iter_mut().zip(s) {
            c.push(f64::from(v));
        }
    }
    let n = t.rows().max(1) as f64;
    let mean: Vec<f64> = cols.iter().map(|c| c.iter().sum::<f64>() / n).collect();
    let std = cols
        .iter()
        .zip(&mean)
        .map(|(c, m)| {
            let v = (c.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n).sqrt();
            if v > 1e-12 {
                v
            } else {
                1.0
            }
        })
        .collect();
    Standardizer { mean, std }
}

pub(super) fn standardise(rows: &[Vec<f32>], n: &Standardizer) -> Vec<f32> {
    rows.iter().flat_map(|r| r.iter().enumerate().map(|(i, v)| (*v - n.mean[i] as f32) / n.std[i] as f32)).collect()
}

pub(super) fn matrix(flat: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(flat, [rows, cols]), device)
}

pub(super) fn q_rows(t: Tensor<2>) -> Vec<Vec<f32>> {
    let [_, a] = t.dims();
    t.into_data().try_to_vec::<f32>().unwrap_or_default().chunks(a.max(1)).map(<[f32]>::to_vec).collect()
}
