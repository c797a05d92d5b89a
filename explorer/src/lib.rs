//! The what-if explorer's wasm module: `sfr2l-runtime` (tract) in the browser on the very ONNX
//! files the filter and the trainer run. Thin wasm-bindgen wrappers over [`model`]; every error
//! reaches JavaScript as an exception with a message naming the file and field.

pub mod model;
#[path = "../../trainer/src/advise/search.rs"]
pub mod search;

use wasm_bindgen::prelude::*;

fn js(e: String) -> JsError {
    JsError::new(&e)
}

/// A simulator checked against its card.
#[wasm_bindgen]
pub struct Simulator(model::Sim);

#[wasm_bindgen]
impl Simulator {
    /// `onnx`: simulator.onnx bytes; `card`: simulator.json text.
    #[wasm_bindgen(constructor)]
    pub fn new(onnx: &[u8], card: &str, grids: &str) -> Result<Simulator, JsError> {
        model::Sim::load(onnx, card, grids).map(Simulator).map_err(js)
    }
    /// JSON: profile, ensemble, feature ranges, Table 6 grids.
    pub fn info(&self) -> String {
        self.0.info().to_string()
    }
    /// JSON prediction for nine raw feature values.
    pub fn predict(&self, values: &[f64]) -> Result<String, JsError> {
        self.0.predict_one(values).map(|v| v.to_string()).map_err(js)
    }
    /// JSON heat map over the threads x calls grid at seven rule values.
    pub fn heatmap(&self, rules: &[f64]) -> Result<String, JsError> {
        self.0.heatmap(rules).map(|v| v.to_string()).map_err(js)
    }
    /// JSON advice (the `sfr2l advise` search) at one load.
    pub fn advise(&self, threads: f64, calls: f64, objective: &str, levels: usize) -> Result<String, JsError> {
        self.0.advise(threads, calls, objective, levels).map(|v| v.to_string()).map_err(js)
    }
}

/// The agents of one configuration.
#[wasm_bindgen]
pub struct Agents(model::Agents);

#[wasm_bindgen]
impl Agents {
    #[wasm_bindgen(constructor)]
    pub fn new(profile: &str, configuration: &str) -> Result<Agents, JsError> {
        model::Agents::new(profile, configuration).map(Agents).map_err(js)
    }
    pub fn add(&mut self, kind: &str, onnx: &[u8], card: &str) -> Result<(), JsError> {
        self.0.add(kind, onnx, card).map_err(js)
    }
    /// JSON decision `{threads, calls}` for seven rules (fixed load for single-agent configurations).
    pub fn decide(&self, rules: &[f64], threads: u32, calls: u32) -> Result<String, JsError> {
        self.0.decide(rules, threads, calls).map(|v| v.to_string()).map_err(js)
    }
}
