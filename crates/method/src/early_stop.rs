//! Early stop (docs/method.md §9): when the candidates keep collapsing to the
//! same finished program, return it instead of decoding on.

/// Both counters must reach this, on identical programs, to stop.
pub const THRESHOLD: u32 = 4;
/// One counter alone stops at this (1.5 × [`THRESHOLD`]).
pub const SINGLE_THRESHOLD: u32 = 6;

/// A program seen as the only executable candidate, and how often in a row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// The pending normalised program.
    pub program: Option<String>,
    /// Consecutive refreshes it was the only candidate.
    pub count: u32,
}

impl Pending {
    /// Update with one refresh's unique executable programs.
    pub fn observe(&mut self, unique: &[String]) {
        match unique {
            [only] if only.lines().last().is_some_and(|l| l.contains("return")) => {
                if self.program.as_deref() == Some(only.as_str()) {
                    self.count += 1;
                } else {
                    self.program = Some(only.clone());
                    self.count = 1;
                }
            }
            _ => *self = Pending::default(),
        }
    }

    /// Whether a program is pending.
    pub fn is_pending(&self) -> bool {
        self.program.is_some()
    }
}

/// The two counters: candidates from the unconditional stream, and the
/// second probe from the conditional stream.
#[derive(Debug, Clone, Default)]
pub struct EarlyStop {
    /// Unconditional candidates.
    pub unconditional: Pending,
    /// Conditional probe candidates.
    pub conditional: Pending,
}

impl EarlyStop {
    /// The program to return, if the rule fires. `prefer_conditional` is set
    /// for γ = 1 attempts, which return the conditional probe's program.
    pub fn decision(&self, prefer_conditional: bool) -> Option<String> {
        let (u, c) = (&self.unconditional, &self.conditional);
        let both = u.count >= THRESHOLD && c.count >= THRESHOLD && u.program == c.program;
        let fires = both || u.count >= SINGLE_THRESHOLD || c.count >= SINGLE_THRESHOLD;
        if !fires {
            return None;
        }
        let (first, second) = if prefer_conditional { (c, u) } else { (u, c) };
        first.program.clone().or_else(|| second.program.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progs(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn counts_reset_and_fire() {
        let done = progs(&["def f(x):\n    return x"]);
        let other = progs(&["def f(x):\n    return 2"]);
        let mut stop = EarlyStop::default();
        for _ in 0..5 {
            stop.unconditional.observe(&done);
        }
        assert_eq!(stop.unconditional.count, 5);
        assert_eq!(stop.decision(false), None);
        stop.unconditional.observe(&other);
        assert_eq!(
            stop.unconditional.count, 1,
            "a different program restarts the count"
        );
        stop.unconditional
            .observe(&progs(&["def f(x):\n    y = x"]));
        assert!(
            !stop.unconditional.is_pending(),
            "no return on the last line"
        );
        stop.unconditional
            .observe(&progs(&["a\nreturn 1", "b\nreturn 2"]));
        assert!(!stop.unconditional.is_pending(), "two candidates reset");
        for _ in 0..6 {
            stop.unconditional.observe(&done);
        }
        assert_eq!(stop.decision(false), Some(done[0].clone()));
    }

    #[test]
    fn both_counters_at_four_with_the_same_program() {
        let done = progs(&["def f(x):\n    return x"]);
        let mut stop = EarlyStop::default();
        for _ in 0..4 {
            stop.unconditional.observe(&done);
            stop.conditional.observe(&done);
        }
        assert_eq!(stop.decision(true), Some(done[0].clone()));
        let mut differ = EarlyStop::default();
        for _ in 0..4 {
            differ.unconditional.observe(&done);
            differ
                .conditional
                .observe(&progs(&["def f(x):\n    return 0"]));
        }
        assert_eq!(differ.decision(false), None);
        for _ in 0..2 {
            differ
                .conditional
                .observe(&progs(&["def f(x):\n    return 0"]));
        }
        assert_eq!(
            differ.decision(false).as_deref(),
            Some("def f(x):\n    return x")
        );
        assert_eq!(
            differ.decision(true).as_deref(),
            Some("def f(x):\n    return 0")
        );
    }
}
