//! Datasets: strict CSV reading, group-aware splits, standardisation, the noise floor.

mod load;
mod split;

pub use load::{read_dataset, resolve_study, DataError, Dataset};
pub use split::{noise_floor, split, NoiseFloor, Split, Standardizer};
