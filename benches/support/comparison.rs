//! Targets that set two scenarios of one invocation side by side, such as what the spool costs:
//! the same work with it and without it. The driver runs the scenarios in alternation (run 1 of
//! each, then run 2 of each, ...), so that neighbouring runs meet the same speed of a machine
//! that drifts over the minutes. A comparison is judged on the median of the rounds' own
//! shortfalls (each run against its neighbour), which a slow minute disturbs in one round
//! only; the shortfall of the two scenarios' medians is shown beside it.

use super::harness::{Check, Over, Target, median, number};

/// How far one scenario's metric falls short of another's, in percent of the other's.
pub struct Comparison {
    /// The name of the row, as the summary lists it.
    pub name: &'static str,
    /// The scenario measured without the thing whose cost is wanted.
    pub base: &'static str,
    /// The scenario measured with it.
    pub with: &'static str,
    /// The metric of both that is compared (larger is better, such as a rate).
    pub of: &'static str,
    /// What the shortfall must satisfy; its metric names the row.
    pub target: Target,
}

impl Comparison {
    /// A cost in percent that must stay at or under `limit`, as a target of an issue.
    pub const fn cost_at_most(
        name: &'static str,
        base: &'static str,
        with: &'static str,
        of: &'static str,
        limit: f64,
    ) -> Comparison {
        Comparison {
            name,
            base,
            with,
            of,
            target: Target {
                metric: name,
                check: Check::AtMost(limit),
                over: Over::Median,
                from_issue: true,
            },
        }
    }
}

/// The shortfall of `with` against `base`, in percent.
fn shortfall(base: f64, with: f64) -> f64 {
    (1.0 - with / base) * 100.0
}

/// Prints the comparisons whose scenarios both ran, given each one's value of the compared
/// metric run by run (`None` for a run that failed) and the median of those; returns each
/// comparison judged (`None` as its value when a median is missing, which fails).
pub fn print(
    comparisons: &[Comparison],
    values: impl Fn(&str, &str) -> Option<(Vec<Option<f64>>, Option<f64>)>,
) -> Vec<(&Comparison, Option<f64>, bool)> {
    let mut judged = Vec::new();
    for comparison in comparisons {
        let (Some((base_runs, base)), Some((with_runs, with))) = (
            values(comparison.base, comparison.of),
            values(comparison.with, comparison.of),
        ) else {
            continue;
        };
        if judged.is_empty() {
            println!("\n### Comparisons (runs in alternation)\n");
            println!(
                "| comparison | round by round | median of the rounds | of the medians | target | verdict |"
            );
            println!("|---|---|---:|---:|---|---|");
        }
        let by_round: Vec<Option<f64>> = base_runs
            .iter()
            .zip(&with_runs)
            .map(|pair| match pair {
                (Some(base), Some(with)) => Some(shortfall(*base, *with)),
                _ => None,
            })
            .collect();
        let mut rounds: Vec<f64> = by_round.iter().flatten().copied().collect();
        let cost = median(&mut rounds);
        let of_medians = base.zip(with).map(|(base, with)| shortfall(base, with));
        let pass = cost.is_some_and(|cost| comparison.target.check.passes(cost));
        let percent =
            |value: Option<f64>| value.map_or("n/a".into(), |v| format!("{} %", number(v)));
        let listed: Vec<String> = by_round.iter().map(|v| percent(*v)).collect();
        println!(
            "| {}: {} of {} against {} | {} | {} | {} | {} | {} |",
            comparison.name,
            comparison.of,
            comparison.with,
            comparison.base,
            listed.join("; "),
            percent(cost),
            percent(of_medians),
            comparison.target.check.label(),
            if pass { "PASS" } else { "FAIL" }
        );
        judged.push((comparison, cost, pass));
    }
    judged
}
