//! The inputs of one study's models: the rule attributes the study lists, in catalogue order,
//! then the load (threads, calls). Dataset columns, tensors, ONNX inputs, agent states and cards
//! take their width and names from here; the catalogue ([`crate::feature`]) says what each
//! field is, the study says which of them its models see.

use crate::feature::{Feature, FEATURES};
use crate::rule::{LoadSetting, TrafficRule};
use serde::{Deserialize, Serialize};

/// The rule features a study's models see, in catalogue order; threads and calls follow them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Feature>", into = "Vec<Feature>")]
pub struct Inputs {
    rules: Vec<Feature>,
}

impl Inputs {
    /// Inputs over `rules`: rule features of the catalogue, each once, in catalogue order.
    pub fn new(rules: Vec<Feature>) -> Result<Self, String> {
        for (i, f) in rules.iter().enumerate() {
            if !f.is_rule() {
                return Err(format!("{} is a load input, not a rule attribute", f.name()));
            }
            if rules[..i].contains(f) {
                return Err(format!("{} is given twice", f.name()));
            }
            if i > 0 && rules[i - 1].index() > f.index() {
                return Err(format!(
                    "{} comes before {}: rule inputs keep catalogue order",
                    rules[i - 1].name(),
                    f.name()
                ));
            }
        }
        Ok(Self { rules })
    }

    /// Inputs over the rule features among `features`, put in catalogue order, each once (what
    /// [`Inputs::new`] accepts, made so): for lists already checked, such as a study's.
    pub fn ordered(features: impl IntoIterator<Item = Feature>) -> Self {
        let mut rules: Vec<Feature> = features.into_iter().filter(|f| f.is_rule()).collect();
        rules.sort_by_key(|f| f.index());
        rules.dedup();
        Self { rules }
    }

    /// The paper's inputs: every rule attribute of the catalogue.
    pub fn catalogue() -> Self {
        Self { rules: FEATURES.iter().copied().filter(|f| f.is_rule()).collect() }
    }

    /// Inputs from their names, as artifacts carry them (`a,b,...,threads,calls`); the error
    /// names the entry. `with_load`: whether the list ends with threads and calls (a simulator's
    /// inputs) or is rules only (the start of an agent's state).
    pub fn from_names<S: AsRef<str>>(names: &[S], with_load: bool) -> Result<Self, String> {
        let mut names: Vec<&str> = names.iter().map(|s| s.as_ref()).collect();
        if with_load {
            let tail = names.len().checked_sub(2).map(|i| names.split_off(i)).unwrap_or_default();
            if tail != ["threads", "calls"] {
                return Err(format!("inputs must end with threads,calls (found `{}`)", tail.join(",")));
            }
        }
        let rules = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                Feature::from_name(n).ok_or_else(|| format!("entry {} `{n}` is not a catalogue field", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(rules)
    }

    /// The rule features, in order.
    pub fn rules(&self) -> &[Feature] {
        &self.rules
    }

    /// Every input, rules then threads and calls.
    pub fn features(&self) -> Vec<Feature> {
        self.rules.iter().copied().chain([Feature::Threads, Feature::Calls]).collect()
    }

    pub fn len(&self) -> usize {
        self.rules.len() + 2
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn n_rules(&self) -> usize {
        self.rules.len()
    }

    /// Input (column) names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.features().iter().map(|f| f.name()).collect()
    }

    /// Where `f` sits among the inputs.
    pub fn position(&self, f: Feature) -> Option<usize> {
        match f {
            Feature::Threads => Some(self.rules.len()),
            Feature::Calls => Some(self.rules.len() + 1),
            _ => self.rules.iter().position(|r| *r == f),
        }
    }

    /// The rule values the inputs see, in order (durations in seconds).
    pub fn state(&self, rule: &TrafficRule) -> Vec<f64> {
        let all = rule.values();
        self.rules.iter().map(|f| all[f.index()]).collect()
    }

    /// One model input row: the rule's values, then threads and calls.
    pub fn row(&self, rule: &TrafficRule, load: &LoadSetting) -> Vec<f64> {
        let mut out = self.state(rule);
        out.extend([f64::from(load.threads), f64::from(load.calls)]);
        out
    }

    /// [`Inputs::row`] in f32, as graphs take it.
    pub fn row_f32(&self, rule: &TrafficRule, load: &LoadSetting) -> Vec<f32> {
        self.row(rule, load).into_iter().map(|v| v as f32).collect()
    }

    /// The rule in force for the fields these inputs leave out: what istiod renders for fields a
    /// DestinationRule does not set ([`TrafficRule::unset`]), with an `outlierDetection` block
    /// when any outlier field is an input.
    pub fn unset_rule(&self) -> TrafficRule {
        TrafficRule::unset(self.rules.iter().any(|f| f.source().starts_with("outlierDetection.")))
    }

    /// The rule whose listed fields take `values` (rule values in input order; a longer slice,
    /// such as a whole row, is read up to the rules) and whose other fields are `base`'s.
    pub fn rule(&self, values: &[f64], base: &TrafficRule) -> TrafficRule {
        let mut all = base.values();
        for (f, v) in self.rules.iter().zip(values) {
            all[f.index()] = *v;
        }
        TrafficRule::from_values(&all)
    }
}

impl TryFrom<Vec<Feature>> for Inputs {
    type Error = String;
    fn try_from(v: Vec<Feature>) -> Result<Self, String> {
        Self::new(v)
    }
}

impl From<Inputs> for Vec<Feature> {
    fn from(i: Inputs) -> Self {
        i.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::sample_rule;

    #[test]
    fn the_catalogue_inputs_are_the_papers_nine() {
        let all = Inputs::catalogue();
        assert_eq!(all.names(), FEATURES.iter().map(|f| f.name()).collect::<Vec<_>>());
        assert_eq!(all.len(), 9);
        let r = sample_rule();
        let load = LoadSetting { threads: 3, calls: 30 };
        assert_eq!(all.row(&r, &load), crate::rule::feature_vector(&r, &load).to_vec());
        assert_eq!(Inputs::from_names(&all.names(), true).unwrap(), all);
    }

    #[test]
    fn fewer_fields_keep_order_and_fill_the_rest_from_the_base() {
        let i = Inputs::new(vec![Feature::MaxConnections, Feature::Consecutive5xxErrors]).unwrap();
        assert_eq!(i.names(), ["max_connections", "consecutive_5xx_errors", "threads", "calls"]);
        assert_eq!(i.position(Feature::Threads), Some(2));
        assert_eq!(i.position(Feature::Interval), None);
        let base = sample_rule();
        let r = i.rule(&[7.0, 3.0, 99.0, 99.0], &base);
        assert_eq!((r.max_connections, r.consecutive_5xx_errors), (7, 3));
        assert_eq!(r.interval, base.interval);
        assert_eq!(i.state(&r), vec![7.0, 3.0]);
    }

    #[test]
    fn bad_lists_name_the_entry() {
        assert!(Inputs::new(vec![Feature::Interval, Feature::MaxConnections]).unwrap_err().contains("catalogue order"));
        assert!(Inputs::new(vec![Feature::Threads]).unwrap_err().contains("load input"));
        assert!(Inputs::new(vec![Feature::Interval, Feature::Interval]).unwrap_err().contains("twice"));
        assert!(Inputs::from_names(&["max_connections", "nope", "threads", "calls"], true)
            .unwrap_err()
            .contains("entry 2 `nope`"));
        assert!(Inputs::from_names(&["max_connections"], true).unwrap_err().contains("threads,calls"));
        assert_eq!(Inputs::from_names(&["max_connections"], false).unwrap().n_rules(), 1);
    }
}
