//! Target order per RFC 2782: lower priority first; within a priority, a weighted random order
//! (a target's chance to come next is its weight over the sum of the remaining weights, and
//! weight-0 targets come after the weighted ones, in random order).

use super::discovery::SrvTarget;
pub(crate) use crate::rng::Rng;

/// The order in which to try `targets`.
pub(crate) fn rfc2782_order(targets: &[SrvTarget], rng: &mut Rng) -> Vec<SrvTarget> {
    let mut sorted: Vec<SrvTarget> = targets.to_vec();
    sorted.sort_by_key(|t| t.priority);
    let mut ordered = Vec::with_capacity(sorted.len());
    for group in sorted.chunk_by(|a, b| a.priority == b.priority) {
        let (mut weighted, mut unweighted): (Vec<SrvTarget>, Vec<SrvTarget>) =
            group.iter().cloned().partition(|t| t.weight > 0);
        while !weighted.is_empty() {
            let total: u64 = weighted.iter().map(|t| u64::from(t.weight)).sum();
            let mut pick = rng.below(total);
            let index = weighted
                .iter()
                .position(|t| {
                    let w = u64::from(t.weight);
                    if pick < w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap_or(0);
            ordered.push(weighted.swap_remove(index));
        }
        while !unweighted.is_empty() {
            let index = rng.below(unweighted.len() as u64) as usize;
            ordered.push(unweighted.swap_remove(index));
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, priority: u16, weight: u16) -> SrvTarget {
        SrvTarget {
            host: host.into(),
            port: 443,
            priority,
            weight,
        }
    }

    #[test]
    fn priority_first() {
        let targets = [target("c", 20, 5), target("a", 10, 1), target("b", 10, 0)];
        let mut rng = Rng::seeded(7);
        for _ in 0..100 {
            let order = rfc2782_order(&targets, &mut rng);
            assert_eq!(order.last().unwrap().host, "c");
            // Within priority 10, the weighted target always precedes the weight-0 one.
            assert_eq!(order[0].host, "a");
        }
    }

    #[test]
    fn weights_split_first_picks_in_proportion() {
        // 60 : 30 : 10 within one priority; 20,000 draws.
        let targets = [target("a", 0, 60), target("b", 0, 30), target("c", 0, 10)];
        let mut rng = Rng::seeded(42);
        let draws = 20_000;
        let mut firsts = [0u32; 3];
        for _ in 0..draws {
            let order = rfc2782_order(&targets, &mut rng);
            assert_eq!(order.len(), 3);
            let i = ["a", "b", "c"]
                .iter()
                .position(|h| *h == order[0].host)
                .unwrap();
            firsts[i] += 1;
        }
        for (count, expected) in firsts.iter().zip([0.6, 0.3, 0.1]) {
            let share = f64::from(*count) / f64::from(draws);
            // Three standard deviations of a binomial share at this sample size is below 0.011.
            assert!(
                (share - expected).abs() < 0.015,
                "share {share}, expected {expected}: {firsts:?}"
            );
        }
    }

    #[test]
    fn unweighted_targets_are_all_used() {
        let targets = [target("a", 0, 0), target("b", 0, 0)];
        let mut rng = Rng::from_entropy();
        let firsts: std::collections::HashSet<String> = (0..200)
            .map(|_| rfc2782_order(&targets, &mut rng)[0].host.clone())
            .collect();
        assert_eq!(firsts.len(), 2);
    }
}
