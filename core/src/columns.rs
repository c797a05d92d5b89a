//! The columns of a study's dataset: its inputs, the outputs (the failure rate named by the
//! study's codes) and the bookkeeping columns ([`crate::trace::DatasetRow`] writes them).

use crate::failure::Failure;
use crate::inputs::Inputs;

/// Columns after the study's inputs; the third is the failure rate, named by the codes
/// ([`Failure::column`]: `rate_503` for the paper's studies).
pub const ROW_EXTRA_COLUMNS: [&str; 8] =
    ["qps", "rate_200", "rate_<codes>", "run_id", "other_codes", "load_avg_1m", "config_id", "repeat"];

/// The columns of a study's dataset: its inputs, then [`ROW_EXTRA_COLUMNS`] with the rate
/// column named by its failure codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub inputs: Inputs,
    pub failure: Failure,
}

impl Columns {
    /// The paper's: all nine inputs, 503 as failure.
    pub fn catalogue() -> Self {
        Self { inputs: Inputs::catalogue(), failure: Failure::default() }
    }

    pub fn header(&self) -> Vec<String> {
        let rate = self.failure.column();
        let extra =
            ROW_EXTRA_COLUMNS.iter().map(|c| if c.starts_with("rate_<") { rate.clone() } else { c.to_string() });
        self.inputs.names().into_iter().map(str::to_string).chain(extra).collect()
    }
}
