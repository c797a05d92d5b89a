//! Model-based RL on the exported simulator: the paper's single, two-agent and collaborative
//! configurations, against the uniform random baseline and the exhaustive optimum.
//!
//! # How we read the paper's equations
//! Eqs. 4, 10 and 11 mix a policy-gradient form (log-probability times reward) with a
//! Q-network trained on squared error. We use one sound reading throughout:
//! - Every agent is a Q-network over its discrete grid, `Q(s, a) ~ E[r | s, a]`, trained on the
//!   squared error between `Q(s, a)` and the target `r + discount * max_a' Q(s', a')` for the
//!   action it took, and acts epsilon-greedily. The next state `s'` is drawn independently of
//!   the action (a load test does not change which rule comes next), so the problem is a
//!   contextual bandit and the default discount is 0: the target is the received reward.
//! - Independent agents (Thread&Call) both see the 7 rules, act at once and are each trained
//!   on the joint reward. Dependent agents (Thread-Call, Call-Thread): the second sees the 7
//!   rules plus the first agent's chosen value; both are trained on the joint reward.
//! - Collaborative (`services > 1`): each service draws its own states (its own traffic rules)
//!   from its dataset and has its own simulator (the same one, or S1..S5 in heterogeneous
//!   mode). Agents of one type share a trunk (SNet); each service keeps its own head (PNet).
//!   The target of service n is eq. 8, `r_n + beta * mean_i r_i`; the trunk's gradient is the
//!   mean of all services' losses. Because `sum_n r_n(eq. 8) = (1 + beta) * sum_n r_n(eq. 3)`,
//!   the reported ratio uses eq. 3 rewards, which gives the same ratio.
//! - Rewards are divided by the service's reward scale (the standard deviation over its joint
//!   reward table) so the targets are O(1); exported graphs multiply it back.

mod act;
pub mod card;
pub mod config;
pub mod cost;
pub mod env;
pub mod export;
pub mod protocol;
pub mod qnet;
pub mod report;
pub mod run;
mod state;
pub mod table;
mod train;

pub use config::RlConfig;
