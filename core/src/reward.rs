//! Rewards: eq. 3 (one service) and eq. 8 (service n among several).

/// Eq. 3: r = q * P503. `worst` = the paper's objective (load that breaks the service most).
pub fn reward(qps: f64, rate_503: f64) -> f64 {
    qps * rate_503
}

/// The "best case" objective: throughput of successful calls, r = q * P200.
pub fn reward_success(qps: f64, rate_200: f64) -> f64 {
    qps * rate_200
}

/// Eq. 8: r_n = q_n * P503_n + beta * mean_i(q_i * P503_i).
pub fn collaborative_reward(own: f64, all: &[f64], beta: f64) -> f64 {
    if all.is_empty() {
        return own;
    }
    own + beta * all.iter().sum::<f64>() / all.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eq3_and_eq8() {
        assert_eq!(reward(200.0, 0.25), 50.0);
        assert_eq!(reward_success(200.0, 0.75), 150.0);
        assert_eq!(collaborative_reward(50.0, &[50.0, 150.0], 0.5), 100.0);
        assert_eq!(collaborative_reward(7.0, &[], 0.5), 7.0);
    }
}
