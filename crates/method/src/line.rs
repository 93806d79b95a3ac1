//! Whole lines from an engine that writes them (a served model, which
//! tells only top-k lists: issue 13 of the project, docs/servers.md).
//!
//! Asking a server for each token's distribution costs a request per
//! stream per token. Instead the answer is written a line per request, with
//! the very tokens the per-token loop would choose:
//!
//! * **unguided**, the line is U's greedy continuation: each token is the
//!   argmax of `P`, which is the unguided choice;
//! * **guided**, C proposes its greedy line (each token the argmax of
//!   `P_c`), and U scores the same tokens (one request where the server
//!   returns prompt log-probabilities). The guided choice is taken at each
//!   position from both lists, and the line is accepted up to the first
//!   position where it differs from the proposal; there the guided choice
//!   replaces the proposed token and the line ends. This is exact: every
//!   accepted token is the one the per-token loop would have chosen from
//!   the same lists.
//! * at **γ = 1** the guided choice *is* the argmax of `P_c`, so the proposal
//!   is accepted whole; U is scored only when that costs one request, for
//!   the record (otherwise the record says `P` was not asked for).

use std::collections::VecDeque;

use egcfg_engine::sampler::SamplerConfig;
use egcfg_engine::{ContinueRequest, Engine, NextToken, Token};

use crate::error::MethodError;
use crate::meter::Meter;
use crate::record::TokenRecord;
use crate::streams::Streams;
use crate::token_choice::TokenChooser;

/// What the next line needs to know of the attempt.
pub(crate) struct LineRequest<'r> {
    /// The answer's ids so far.
    pub(crate) generated: &'r [Token],
    /// At most this many tokens.
    pub(crate) max_tokens: usize,
    /// Whether a signal is in force (C guides).
    pub(crate) guided: bool,
}

/// The records of the next line's tokens, in order, chosen as the
/// per-token loop would choose them (see the module documentation). Empty
/// only when the engine had no room left to write a token.
pub(crate) fn next_line(
    engine: &dyn Engine,
    streams: &Streams<'_>,
    chooser: &TokenChooser,
    request: &LineRequest<'_>,
    meter: &mut Meter<'_>,
) -> Result<VecDeque<TokenRecord>, MethodError> {
    let step = request.generated.len();
    // The stream that writes the line: C when the line is guided.
    let conditional = streams.conditional().filter(|_| request.guided);
    let guided = conditional.is_some();
    let k = engine.top_k_limit().unwrap_or(chooser.record_top);
    // P is needed only to choose (γ ≠ 1), or when it costs one request.
    let score_p = guided && (chooser.gamma != 1.0 || engine.scores_in_one_pass());
    let want_top = if score_p { k } else { chooser.record_top };
    let line_request = ContinueRequest {
        max_tokens: request.max_tokens,
        max_lines: 1,
        sampling: SamplerConfig::GREEDY,
        n: 1,
        logprobs: want_top,
    };
    let writer = conditional.map_or(streams.unconditional().0, |c| &c.seq);
    let written = meter.choice(|| engine.continue_sequence(writer.id(), &[], &line_request))?;
    let Some(line) = written.into_iter().next().filter(|l| !l.tokens.is_empty()) else {
        return Ok(VecDeque::new());
    };
    let tops = |i: usize| line.top.get(i).map(|list| &list[..]);
    if !guided {
        return Ok(line
            .tokens
            .iter()
            .enumerate()
            .map(|(i, &token)| chooser.unguided(step + i, token, tops(i)))
            .collect());
    }
    if !score_p {
        return Ok(line
            .tokens
            .iter()
            .enumerate()
            .map(|(i, &token)| chooser.proposed(step + i, token, tops(i)))
            .collect());
    }
    // The server leaves the proposal's lists out where it cannot align them
    // with the tokens; C then scores its own line.
    let p_lists =
        meter.choice(|| streams.score_unconditional(request.generated, &line.tokens, k))?;
    let c_lists = if line.top.len() == line.tokens.len() {
        line.top.clone()
    } else {
        meter.choice(|| streams.score_conditional(&line.tokens, k))?
    };
    let mut records = VecDeque::with_capacity(line.tokens.len());
    for (i, &proposed) in line.tokens.iter().enumerate() {
        let p = NextToken::TopK(p_lists[i].clone());
        let c = NextToken::TopK(c_lists[i].clone());
        let record = chooser.choose(step + i, &p, Some(&c));
        let agrees = record.token == proposed;
        records.push_back(record);
        if !agrees {
            // Both streams computed the rest of the proposal for nothing.
            meter.discarded(2 * (line.tokens.len() - i - 1));
            break;
        }
    }
    Ok(records)
}
