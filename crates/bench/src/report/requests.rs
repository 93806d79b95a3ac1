//! The "what the model server was asked" table of a run, shared by the
//! markdown and the HTML report: the tasks' totals, then the attempts of
//! each γ.

use crate::server_cost::{ServerCost, UsageSum};

/// One row of the table, its cells formatted.
pub(crate) struct RequestRow {
    /// `all tasks` or `γ = 1 attempts`.
    pub(crate) label: String,
    /// Tasks counted.
    pub(crate) tasks: usize,
    /// Attempts counted, `-` for task totals.
    pub(crate) attempts: String,
    /// Requests sent.
    pub(crate) requests: u64,
    /// Prompt tokens, with the share the prefix cache served.
    pub(crate) prompt_tokens: String,
    /// Tokens generated.
    pub(crate) generated_tokens: u64,
    /// Requests per generated token, to three places.
    pub(crate) per_generated_token: String,
}

/// The rows of `cost`: all tasks, then each γ.
pub(crate) fn rows(cost: &ServerCost) -> Vec<RequestRow> {
    let row = |label: String, sum: &UsageSum| RequestRow {
        label,
        tasks: sum.tasks,
        attempts: sum.attempts.map_or_else(|| "-".into(), |n| n.to_string()),
        requests: sum.usage.requests,
        prompt_tokens: match sum.usage.cached_share() {
            Some(share) => format!("{} ({:.0}% cached)", sum.usage.prompt_tokens, 100.0 * share),
            None => "0".into(),
        },
        generated_tokens: sum.usage.generated_tokens,
        per_generated_token: sum
            .usage
            .requests_per_generated_token()
            .map_or_else(|| "-".into(), |r| format!("{r:.3}")),
    };
    std::iter::once(row("all tasks".into(), &cost.tasks))
        .chain(
            cost.by_gamma
                .iter()
                .map(|(gamma, sum)| row(format!("γ = {gamma} attempts"), sum)),
        )
        .collect()
}

/// The sentence under the table.
pub(crate) fn footnote(cost: &ServerCost) -> &'static str {
    if cost.by_gamma.is_empty() {
        "Task totals only: this run's answers share their requests, so no attempt's own can be told apart."
    } else {
        "Task totals include the requests made outside any attempt (the prompts' tokenization and shared prefill)."
    }
}
