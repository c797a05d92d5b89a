//! Agents' vocabulary: the five agent configurations of the paper's Table 3 (each single-service
//! or collaborative over N services), what each agent sees and chooses, action mapping from
//! Q-values to grid values, and the reward-ratio metric.

use crate::feature::Feature;
use crate::inputs::Inputs;
use crate::study::Study;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What an agent chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// fortio `-c`.
    Threads,
    /// fortio `-n`.
    Calls,
}

impl AgentKind {
    pub fn name(self) -> &'static str {
        match self {
            AgentKind::Threads => "thread",
            AgentKind::Calls => "call",
        }
    }
    /// The action grid of this agent in `study` (the paper's Table 6 for S1-S5).
    pub fn grid(self, study: &Study) -> Vec<u32> {
        match self {
            AgentKind::Threads => study.thread_grid.values(),
            AgentKind::Calls => study.call_grid.values(),
        }
    }
    pub fn feature(self) -> Feature {
        match self {
            AgentKind::Threads => Feature::Threads,
            AgentKind::Calls => Feature::Calls,
        }
    }
    pub fn other(self) -> AgentKind {
        match self {
            AgentKind::Threads => AgentKind::Calls,
            AgentKind::Calls => AgentKind::Threads,
        }
    }
}

/// The paper's agent configurations (Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Configuration {
    /// One call agent; state: 7 rules + the run's threads.
    Call,
    /// One thread agent; state: 7 rules + the run's calls.
    Thread,
    /// Thread and call agents act in parallel on the 7 rules (independent).
    ThreadAndCall,
    /// The thread agent acts first on the 7 rules; the call agent sees the 7 rules + threads.
    ThreadCall,
    /// The call agent acts first; the thread agent sees the 7 rules + calls.
    CallThread,
}

pub const CONFIGURATIONS: [Configuration; 5] = [
    Configuration::Call,
    Configuration::Thread,
    Configuration::ThreadAndCall,
    Configuration::ThreadCall,
    Configuration::CallThread,
];

/// Where an agent's state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Extra {
    /// Only the 7 traffic rules.
    None,
    /// The 7 rules plus the other load setting of the sampled run (single agents).
    RunLoad(AgentKind),
    /// The 7 rules plus the first agent's chosen value (dependent second agent).
    FirstAction(AgentKind),
}

/// One agent of a configuration: what it chooses and what it sees, in acting order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSpec {
    pub kind: AgentKind,
    pub extra: Extra,
}

impl AgentSpec {
    /// Names of the state columns: the study's rule inputs, then the extra one if any.
    pub fn state_names(&self, inputs: &Inputs) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = inputs.rules().iter().map(|f| f.name()).collect();
        match self.extra {
            Extra::None => {}
            Extra::RunLoad(k) | Extra::FirstAction(k) => v.push(k.feature().name()),
        }
        v
    }
    pub fn state_width(&self, inputs: &Inputs) -> usize {
        self.state_names(inputs).len()
    }

    /// The study inputs behind an agent's state column names (its card's or graph's `state`):
    /// the rule names, then this spec's extra column; the error says what differs.
    pub fn inputs_of_state<S: AsRef<str>>(&self, state: &[S]) -> Result<Inputs, String> {
        let extra = match self.extra {
            Extra::None => None,
            Extra::RunLoad(k) | Extra::FirstAction(k) => Some(k.feature().name()),
        };
        let names: Vec<&str> = state.iter().map(|s| s.as_ref()).collect();
        let rules = match (extra, names.split_last()) {
            (None, _) => &names[..],
            (Some(x), Some((last, rest))) if *last == x => rest,
            (Some(x), _) => return Err(format!("the state must end with `{x}` (found `{}`)", names.join(","))),
        };
        Inputs::from_names(rules, false)
    }
}

impl Configuration {
    /// The agents, in acting order.
    pub fn agents(self) -> Vec<AgentSpec> {
        use AgentKind::*;
        match self {
            Configuration::Call => vec![AgentSpec { kind: Calls, extra: Extra::RunLoad(Threads) }],
            Configuration::Thread => vec![AgentSpec { kind: Threads, extra: Extra::RunLoad(Calls) }],
            Configuration::ThreadAndCall => {
                vec![AgentSpec { kind: Threads, extra: Extra::None }, AgentSpec { kind: Calls, extra: Extra::None }]
            }
            Configuration::ThreadCall => vec![
                AgentSpec { kind: Threads, extra: Extra::None },
                AgentSpec { kind: Calls, extra: Extra::FirstAction(Threads) },
            ],
            Configuration::CallThread => vec![
                AgentSpec { kind: Calls, extra: Extra::None },
                AgentSpec { kind: Threads, extra: Extra::FirstAction(Calls) },
            ],
        }
    }
    pub fn slug(self) -> &'static str {
        match self {
            Configuration::Call => "call",
            Configuration::Thread => "thread",
            Configuration::ThreadAndCall => "thread-and-call",
            Configuration::ThreadCall => "thread-call",
            Configuration::CallThread => "call-thread",
        }
    }
    /// The paper's label (Table 5).
    pub fn label(self) -> &'static str {
        match self {
            Configuration::Call => "Call",
            Configuration::Thread => "Thread",
            Configuration::ThreadAndCall => "Thread&Call",
            Configuration::ThreadCall => "Thread-Call",
            Configuration::CallThread => "Call-Thread",
        }
    }
}

impl fmt::Display for Configuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

impl FromStr for Configuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let k = s.trim().to_ascii_lowercase();
        CONFIGURATIONS.iter().copied().find(|c| c.slug() == k || c.label().to_ascii_lowercase() == k).ok_or_else(|| {
            format!(
                "unknown configuration `{s}`; expected one of {}",
                CONFIGURATIONS.iter().map(|c| c.slug()).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// Index of the largest value (the first on ties); `None` for an empty slice or NaN-only.
pub fn argmax(q: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, v) in q.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| *v > b) {
            best = Some((i, *v));
        }
    }
    best.map(|b| b.0)
}

/// Rolling mean over `window` (shorter at the start); the paper's 25-epoch smoothing.
pub fn rolling_mean(xs: &[f64], window: usize) -> Vec<f64> {
    let w = window.max(1);
    let mut out = Vec::with_capacity(xs.len());
    let mut sum = 0.0;
    for i in 0..xs.len() {
        sum += xs[i];
        if i >= w {
            sum -= xs[i - w];
        }
        out.push(sum / (i + 1).min(w) as f64);
    }
    out
}

/// The paper's "Sim." figure: the maximum of the rolling mean of per-epoch ratios, counting only
/// full windows (or the whole run when it is shorter than one window).
pub fn max_rolling_mean(xs: &[f64], window: usize) -> f64 {
    let r = rolling_mean(xs, window);
    let start = window.saturating_sub(1).min(r.len().saturating_sub(1));
    r[start.min(r.len())..].iter().copied().fold(f64::NAN, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_parse_by_slug_and_label() {
        assert_eq!("thread-call".parse::<Configuration>().unwrap(), Configuration::ThreadCall);
        assert_eq!("Thread&Call".parse::<Configuration>().unwrap(), Configuration::ThreadAndCall);
        let e = "threads".parse::<Configuration>().unwrap_err();
        assert!(e.contains("unknown configuration `threads`") && e.contains("call-thread"), "{e}");
    }

    #[test]
    fn agents_see_what_the_paper_says() {
        let tc = Configuration::ThreadCall.agents();
        let all = Inputs::catalogue();
        assert_eq!(tc[0].state_width(&all), 7);
        assert_eq!(tc[1].state_names(&all)[7], "threads");
        assert_eq!(Configuration::Call.agents()[0].state_names(&all)[7], "threads");
        assert_eq!(Configuration::Thread.agents()[0].state_names(&all)[7], "calls");
        // A study with two fields: the agents see those two, then their extra column.
        let two = Inputs::new(vec![Feature::MaxConnections, Feature::Interval]).unwrap();
        assert_eq!(tc[1].state_names(&two), ["max_connections", "interval_s", "threads"]);
        assert_eq!(tc[1].inputs_of_state(&tc[1].state_names(&two)).unwrap(), two);
        assert_eq!(tc[0].inputs_of_state(&tc[0].state_names(&all)).unwrap(), all);
        assert!(tc[1].inputs_of_state(&["max_connections"]).unwrap_err().contains("end with `threads`"));
        let p = crate::study::tests::sample();
        assert_eq!(AgentKind::Calls.grid(&p), vec![100, 200, 300, 400]);
        assert_eq!(AgentKind::Threads.grid(&p), vec![3, 4, 5, 6, 7]);
    }

    #[test]
    fn argmax_and_rolling_mean() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, f32::NAN]), Some(1));
        assert_eq!(argmax(&[]), None);
        assert_eq!(rolling_mean(&[1.0, 3.0, 5.0], 2), vec![1.0, 2.0, 4.0]);
        assert_eq!(max_rolling_mean(&[1.0, 3.0, 5.0, 1.0], 2), 4.0);
        assert_eq!(max_rolling_mean(&[2.0], 25), 2.0);
    }
}
