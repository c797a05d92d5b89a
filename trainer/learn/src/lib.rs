//! sfr2l-learn: everything that learns from a dataset. `data` reads and splits datasets, `nn`
//! holds the dense networks both stages share, `sim` fits the simulators (burn MLP and linfa
//! baselines), `rl` trains the agents on them, `export` writes ONNX graphs and publishes folders
//! atomically; `device` picks the burn device, `history` keeps regenerated reports' headlines.

pub mod data;
pub mod device;
pub mod export;
pub mod history;
pub mod nn;
pub mod rl;
pub mod sim;
