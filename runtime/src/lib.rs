//! Inference on sfr2l's exported ONNX artifacts with tract: the runtime the filter embeds and
//! the trainer uses to check every export. Loading validates the artifact against the core's
//! vocabulary (feature names and order, outputs) before anything runs.

use sfr2l_core::agent::{AgentKind, Configuration};
use sfr2l_core::artifact::{meta, KIND_AGENT, KIND_SIMULATOR};
use sfr2l_core::card::CARD_SCHEMA;
use sfr2l_core::{Failure, Inputs, Study};
use std::sync::Arc;
use tract_onnx::pb;
use tract_onnx::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("not an ONNX model: {0}")]
    Decode(String),
    #[error("metadata `{key}`: {msg}")]
    Metadata { key: String, msg: String },
    #[error("input {index}: expected `{expected}`, found `{found}`")]
    Input { index: usize, expected: String, found: String },
    #[error("tract: {0}")]
    Tract(String),
}

fn tract_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Tract(format!("{e:#}"))
}

/// One simulator prediction in raw units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub qps: f32,
    /// The share of responses with a failure code ([`Simulator::failure`]).
    pub failure_rate: f32,
    /// Ensemble spread of (QPS, rate) in raw units.
    pub uncertainty: [f32; 2],
}

/// A loaded `simulator.onnx`, optimised for a dynamic batch.
pub struct Simulator {
    plan: Arc<TypedRunnableModel>,
    pub profile: String,
    /// The inputs the graph takes (its study's), from its metadata and graph inputs.
    pub inputs: Inputs,
    /// The codes its rate output counts as failure (named by the output: `rate_503`).
    pub failure: Failure,
    pub ensemble: usize,
}

fn metadata<'a>(proto: &'a pb::ModelProto, key: &str) -> Result<&'a str, RuntimeError> {
    proto
        .metadata_props
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
        .ok_or_else(|| RuntimeError::Metadata { key: key.into(), msg: "missing".into() })
}

/// Decodes an sfr2l artifact and checks its `sfr2l.kind`.
fn decode_kind(bytes: &[u8], want: &str) -> Result<pb::ModelProto, RuntimeError> {
    let proto = <pb::ModelProto as prost::Message>::decode(bytes).map_err(|e| RuntimeError::Decode(e.to_string()))?;
    let kind = metadata(&proto, meta::KIND)?;
    if kind != want {
        return Err(RuntimeError::Metadata { key: meta::KIND.into(), msg: format!("`{kind}`, expected `{want}`") });
    }
    Ok(proto)
}

/// tract's optimised plan for a decoded graph (dynamic batch).
fn optimised_plan(proto: &pb::ModelProto) -> Result<Arc<TypedRunnableModel>, RuntimeError> {
    tract_onnx::onnx()
        .model_for_proto_model(proto)
        .map_err(tract_err)?
        .into_optimized()
        .map_err(tract_err)?
        .into_runnable()
        .map_err(tract_err)
}

impl Simulator {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RuntimeError> {
        let proto = decode_kind(bytes, KIND_SIMULATOR)?;
        let features = metadata(&proto, meta::FEATURES)?;
        let names: Vec<&str> = features.split(',').collect();
        let inputs = Inputs::from_names(&names, true).map_err(|msg| RuntimeError::Metadata {
            key: meta::FEATURES.into(),
            msg: format!("`{features}`: {msg}"),
        })?;
        let graph = proto.graph.as_ref().ok_or_else(|| RuntimeError::Decode("no graph".into()))?;
        if graph.input.len() != inputs.len() {
            return Err(RuntimeError::Input {
                index: graph.input.len().min(inputs.len()),
                expected: format!("{} inputs ({features})", inputs.len()),
                found: format!("{} graph inputs", graph.input.len()),
            });
        }
        for (index, name) in inputs.names().into_iter().enumerate() {
            let found = graph.input[index].name.clone();
            if found != name {
                return Err(RuntimeError::Input { index, expected: name.into(), found });
            }
        }
        let schema = metadata(&proto, meta::SCHEMA)?;
        if schema != CARD_SCHEMA.to_string() {
            return Err(RuntimeError::Metadata {
                key: meta::SCHEMA.into(),
                msg: format!("{schema}, this build reads {CARD_SCHEMA}"),
            });
        }
        let outputs = metadata(&proto, meta::OUTPUTS)?;
        let bad_outputs =
            |msg: String| RuntimeError::Metadata { key: meta::OUTPUTS.into(), msg: format!("`{outputs}`: {msg}") };
        let failure = match outputs.split(',').collect::<Vec<_>>()[..] {
            ["qps", rate, "uncertainty"] => Failure::from_column(rate).map_err(bad_outputs)?,
            _ => return Err(bad_outputs("expected qps,rate_<codes>,uncertainty".into())),
        };
        let profile = metadata(&proto, meta::PROFILE)?.to_string();
        let ensemble = metadata(&proto, meta::ENSEMBLE)?.parse().unwrap_or(1);
        let plan = optimised_plan(&proto)?;
        Ok(Self { plan, profile, inputs, failure, ensemble })
    }

    pub fn from_path(path: &std::path::Path) -> Result<Self, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|e| RuntimeError::Decode(format!("{}: {e}", path.display())))?;
        Self::from_bytes(&bytes)
    }

    /// Predictions for raw input rows, in [`Simulator::inputs`] order: `[batch][inputs]`.
    pub fn predict<R: AsRef<[f32]>>(&self, rows: &[R]) -> Result<Vec<Prediction>, RuntimeError> {
        let n = rows.len();
        let width = self.inputs.len();
        if let Some(r) = rows.iter().find(|r| r.as_ref().len() != width) {
            return Err(RuntimeError::Input {
                index: 0,
                expected: format!("{width} values ({})", self.inputs.names().join(",")),
                found: format!("{}", r.as_ref().len()),
            });
        }
        let inputs: TVec<TValue> = (0..width)
            .map(|j| {
                let col: Vec<f32> = rows.iter().map(|r| r.as_ref()[j]).collect();
                Tensor::from_shape(&[n, 1], &col).map(|t| t.into_tvalue())
            })
            .collect::<TractResult<_>>()
            .map_err(tract_err)?;
        let out = self.plan.run(inputs).map_err(tract_err)?;
        let view = |i: usize| -> Result<Vec<f32>, RuntimeError> {
            let t = out.get(i).ok_or_else(|| RuntimeError::Tract(format!("missing output {i}")))?;
            Ok(t.to_plain_array_view::<f32>().map_err(tract_err)?.iter().copied().collect())
        };
        let (q, r, u) = (view(0)?, view(1)?, view(2)?);
        if q.len() != n || r.len() != n || u.len() != 2 * n {
            return Err(RuntimeError::Tract(format!(
                "output sizes {}, {}, {} for batch {n}",
                q.len(),
                r.len(),
                u.len()
            )));
        }
        Ok((0..n)
            .map(|i| Prediction { qps: q[i], failure_rate: r[i], uncertainty: [u[2 * i], u[2 * i + 1]] })
            .collect())
    }
}

/// A loaded agent graph (`<agent>.onnx`): raw state in, Q-value per grid action out.
pub struct Agent {
    plan: Arc<TypedRunnableModel>,
    pub profile: String,
    /// State column names, in order.
    pub state: Vec<String>,
    /// The study inputs behind the state (its rule columns).
    pub inputs: Inputs,
    /// The grid values the Q-values refer to.
    pub grid: Vec<u32>,
    /// `threads` or `calls`.
    pub action: String,
    /// Agent configuration slug (`thread-call`) and objective (`worst` / `best`).
    pub configuration: String,
    pub objective: String,
    /// The codes its reward counted as failure.
    pub failure: Failure,
    /// Card schema the graph was written with.
    pub schema: u32,
}

impl Agent {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RuntimeError> {
        let proto = decode_kind(bytes, KIND_AGENT)?;
        let state: Vec<String> = metadata(&proto, meta::STATE)?.split(',').map(String::from).collect();
        let grid = metadata(&proto, meta::GRID)?
            .split(',')
            .map(|v| v.parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RuntimeError::Metadata { key: meta::GRID.into(), msg: e.to_string() })?;
        let action = metadata(&proto, meta::ACTION)?.to_string();
        let profile = metadata(&proto, meta::PROFILE)?.to_string();
        let configuration = metadata(&proto, meta::CONFIGURATION)?.to_string();
        let objective = metadata(&proto, meta::OBJECTIVE).unwrap_or("worst").to_string();
        let failure = match metadata(&proto, meta::FAILURE_CODES) {
            Ok(list) => Failure::from_list(list).map_err(|msg| RuntimeError::Metadata {
                key: meta::FAILURE_CODES.into(),
                msg: format!("`{list}`: {msg}"),
            })?,
            Err(_) => Failure::default(),
        };
        let schema = metadata(&proto, meta::SCHEMA)?
            .parse()
            .map_err(|_| RuntimeError::Metadata { key: meta::SCHEMA.into(), msg: "not an integer".into() })?;
        let bad_config = |msg: String| RuntimeError::Metadata { key: meta::CONFIGURATION.into(), msg };
        let spec = configuration
            .parse::<Configuration>()
            .map_err(bad_config)?
            .agents()
            .into_iter()
            .find(|a| a.kind.feature().name() == action)
            .ok_or_else(|| bad_config(format!("`{configuration}` has no agent choosing `{action}`")))?;
        let inputs = spec.inputs_of_state(&state).map_err(|msg| RuntimeError::Metadata {
            key: meta::STATE.into(),
            msg: format!("`{}`: {msg}", state.join(",")),
        })?;
        let plan = optimised_plan(&proto)?;
        Ok(Self { plan, profile, state, inputs, grid, action, configuration, objective, failure, schema })
    }

    /// Checks that this graph is the `kind` agent of `configuration` trained on study `study`:
    /// card schema, state columns and action as this build's core defines them, and, where the
    /// caller has the study itself (the trainer reads the study file), its grid and inputs
    /// exactly. The filter and the explorer take grid and inputs from the graph itself.
    pub fn check_for(
        &self,
        study: &str,
        configuration: Configuration,
        kind: AgentKind,
        file: Option<&Study>,
    ) -> Result<(), RuntimeError> {
        let bad = |key: &str, msg: String| Err(RuntimeError::Metadata { key: key.into(), msg });
        if self.schema != CARD_SCHEMA {
            return bad(meta::SCHEMA, format!("{}, this build reads {CARD_SCHEMA}", self.schema));
        }
        if self.profile != study {
            return bad(meta::PROFILE, format!("`{}`, expected `{study}`", self.profile));
        }
        if self.configuration != configuration.slug() {
            return bad(meta::CONFIGURATION, format!("`{}`, expected `{}`", self.configuration, configuration.slug()));
        }
        if self.action != kind.feature().name() {
            return bad(meta::ACTION, format!("`{}`, expected `{}`", self.action, kind.feature().name()));
        }
        let Some(spec) = configuration.agents().into_iter().find(|a| a.kind == kind) else {
            return bad(meta::ACTION, format!("configuration {} has no {} agent", configuration.slug(), kind.name()));
        };
        let inputs = file.map_or_else(|| self.inputs.clone(), Study::inputs);
        let want = spec.state_names(&inputs);
        if self.state != want {
            return bad(meta::STATE, format!("`{}`, expected `{}`", self.state.join(","), want.join(",")));
        }
        if self.grid.is_empty() || self.grid.windows(2).any(|w| w[0] >= w[1]) {
            return bad(meta::GRID, format!("{:?} is not an ascending grid", self.grid));
        }
        if let Some(f) = file.map(Study::failure).filter(|f| *f != self.failure) {
            return bad(meta::FAILURE_CODES, format!("{}, study {study} counts {f}", self.failure));
        }
        let grid = file.map(|f| kind.grid(f));
        if let Some(grid) = grid.filter(|g| *g != self.grid) {
            return bad(meta::GRID, format!("{:?} differs from study {study}'s grid {grid:?}", self.grid));
        }
        Ok(())
    }

    /// Q-values for raw states. rows: `[batch][state width]` -> `[batch][grid]`.
    pub fn q_values(&self, rows: &[Vec<f32>]) -> Result<Vec<Vec<f32>>, RuntimeError> {
        let w = self.state.len();
        if let Some(r) = rows.iter().find(|r| r.len() != w) {
            return Err(RuntimeError::Input {
                index: 0,
                expected: format!("{w} state values"),
                found: format!("{}", r.len()),
            });
        }
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let input = Tensor::from_shape(&[rows.len(), w], &flat).map_err(tract_err)?;
        let out = self.plan.run(tvec![input.into_tvalue()]).map_err(tract_err)?;
        let t = out.first().ok_or_else(|| RuntimeError::Tract("no output".into()))?;
        let v: Vec<f32> = t.to_plain_array_view::<f32>().map_err(tract_err)?.iter().copied().collect();
        Ok(v.chunks(self.grid.len().max(1)).map(<[f32]>::to_vec).collect())
    }

    /// The decision for one state: the grid value with the highest Q-value.
    pub fn decide(&self, state: &[f32]) -> Result<u32, RuntimeError> {
        let q = self.q_values(&[state.to_vec()])?;
        let i = q.first().and_then(|r| sfr2l_core::agent::argmax(r)).unwrap_or(0);
        self.grid.get(i).copied().ok_or_else(|| RuntimeError::Tract("grid shorter than the Q-values".into()))
    }
}
