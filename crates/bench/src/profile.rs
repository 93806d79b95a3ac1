//! Where a solver's time went on a task, phase by phase, and the sum of a
//! run (issue 15, item 4): every speed claim is checked against it.
//!
//! The harness knows no method, so a profile is a list of named phases, in
//! the order the solver gives them, each with wall and CPU seconds, plus
//! what the solver spent waiting on. Phases of concurrent agents overlap in
//! time: their walls may add up to more than the task's wall.

use serde::{Deserialize, Serialize};

/// Wall and CPU seconds of one named phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseShare {
    /// The phase, e.g. `answer decode`.
    #[serde(deserialize_with = "current_phase_name")]
    pub name: String,
    /// Wall-clock seconds, summed over the agents.
    pub wall_s: f64,
    /// CPU seconds of the threads doing the phase.
    pub cpu_s: f64,
}

/// A stored phase's name as solvers give it now. Profiles stored before
/// 2026-12-06 called the decode of every answer `guided decode`, also in
/// greedy and sampled attempts, which guide nothing; it is `answer decode`
/// now, and an old run's phase sums with a new run's under that name.
fn current_phase_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    Ok(if name == "guided decode" {
        "answer decode".to_string()
    } else {
        name
    })
}

/// Seconds a solver spent waiting on one thing (the engine, the sandbox).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    /// What was waited on.
    pub on: String,
    /// Seconds.
    pub seconds: f64,
}

/// A solver's time on one task, as it reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskProfile {
    /// Time per phase.
    pub phases: Vec<PhaseShare>,
    /// Time spent waiting, by what was waited on.
    pub waiting: Vec<Waiting>,
    /// Lines written under guidance.
    pub guided_lines: u64,
    /// Signal refreshes of the guided attempts (0 in profiles stored
    /// before they were counted).
    #[serde(default)]
    pub refreshes: u64,
    /// Of those, the refreshes that left the next line without guidance:
    /// their block held no run (nothing traced, or none fit its cap).
    #[serde(default)]
    pub refreshes_without_signal: u64,
    /// Forward tokens of the whole task.
    pub forward_tokens: u64,
    /// Forward tokens of the attempts that guided a line (the task's other
    /// tokens, of unguided attempts and shared prompts, are no cost of a
    /// guided line); `None` where the solver did not report them (and in
    /// profiles stored before they were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guided_attempt_tokens: Option<u64>,
    /// CPU seconds of the solver's whole process during the task.
    pub process_cpu_s: f64,
}

impl TaskProfile {
    /// Forward tokens of the guided attempts per guided line, when a line
    /// was guided and those tokens are known.
    pub fn forward_tokens_per_guided_line(&self) -> Option<f64> {
        let tokens = self.guided_attempt_tokens?;
        (self.guided_lines > 0).then(|| tokens as f64 / self.guided_lines as f64)
    }

    /// The sum of `profiles` (a run's tasks): phases and waits are matched
    /// by name, in order of first appearance; guided attempts' tokens are
    /// summed only when every task has them.
    pub fn sum<'p>(profiles: impl IntoIterator<Item = &'p TaskProfile>) -> TaskProfile {
        let mut total = TaskProfile {
            guided_attempt_tokens: Some(0),
            ..TaskProfile::default()
        };
        for p in profiles {
            for phase in &p.phases {
                match total.phases.iter_mut().find(|t| t.name == phase.name) {
                    Some(t) => {
                        t.wall_s += phase.wall_s;
                        t.cpu_s += phase.cpu_s;
                    }
                    None => total.phases.push(phase.clone()),
                }
            }
            for wait in &p.waiting {
                match total.waiting.iter_mut().find(|t| t.on == wait.on) {
                    Some(t) => t.seconds += wait.seconds,
                    None => total.waiting.push(wait.clone()),
                }
            }
            total.guided_lines += p.guided_lines;
            total.refreshes += p.refreshes;
            total.refreshes_without_signal += p.refreshes_without_signal;
            total.forward_tokens += p.forward_tokens;
            total.guided_attempt_tokens = total
                .guided_attempt_tokens
                .zip(p.guided_attempt_tokens)
                .map(|(a, b)| a + b);
            total.process_cpu_s += p.process_cpu_s;
        }
        total
    }

    /// The wall of all phases together (more than the task's wall when
    /// agents overlap).
    pub fn phases_wall_s(&self) -> f64 {
        self.phases.iter().map(|p| p.wall_s).sum()
    }
}

/// A run's profile: the sum over the tasks that have one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunProfile {
    /// Tasks with a profile (those recorded before profiles existed have
    /// none).
    pub tasks: usize,
    /// Their wall time, summed, in seconds.
    pub task_wall_s: f64,
    /// Their profiles, summed.
    pub total: TaskProfile,
}

impl RunProfile {
    /// The profile of the tasks in `tasks` (wall ms, profile) that have
    /// one; `None` when none has.
    pub fn of<'p>(tasks: impl IntoIterator<Item = (f64, Option<&'p TaskProfile>)>) -> Option<Self> {
        let mut wall_ms = 0.0;
        let mut profiles = Vec::new();
        for (ms, profile) in tasks {
            if let Some(p) = profile {
                wall_ms += ms;
                profiles.push(p);
            }
        }
        (!profiles.is_empty()).then(|| RunProfile {
            tasks: profiles.len(),
            task_wall_s: wall_ms / 1000.0,
            total: TaskProfile::sum(profiles),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A profile of two phases, 1 s of waiting, 4 guided lines and 5
    /// refreshes, 2 of them without a signal.
    pub(crate) fn sample_profile() -> TaskProfile {
        TaskProfile {
            phases: vec![
                PhaseShare {
                    name: "answer decode".into(),
                    wall_s: 2.0,
                    cpu_s: 0.5,
                },
                PhaseShare {
                    name: "sandbox".into(),
                    wall_s: 1.0,
                    cpu_s: 0.1,
                },
            ],
            waiting: vec![Waiting {
                on: "engine".into(),
                seconds: 1.5,
            }],
            guided_lines: 4,
            refreshes: 5,
            refreshes_without_signal: 2,
            forward_tokens: 500,
            guided_attempt_tokens: Some(400),
            process_cpu_s: 3.0,
        }
    }

    #[test]
    fn a_run_sums_the_tasks_that_have_a_profile() {
        let p = sample_profile();
        let run = RunProfile::of([(1000.0, Some(&p)), (5000.0, None), (2000.0, Some(&p))])
            .expect("two tasks have one");
        assert_eq!(run.tasks, 2);
        assert_eq!(run.task_wall_s, 3.0);
        assert_eq!(run.total.phases[0].wall_s, 4.0);
        assert_eq!(run.total.phases[1].cpu_s, 0.2);
        assert_eq!(run.total.waiting[0].seconds, 3.0);
        assert_eq!(run.total.phases_wall_s(), 6.0);
        assert_eq!(run.total.forward_tokens_per_guided_line(), Some(100.0));
        assert_eq!(
            (run.total.refreshes, run.total.refreshes_without_signal),
            (10, 4)
        );
        let stored_before = TaskProfile {
            guided_attempt_tokens: None,
            ..p.clone()
        };
        let mixed = RunProfile::of([(1.0, Some(&p)), (1.0, Some(&stored_before))]).unwrap();
        assert_eq!(mixed.total.forward_tokens_per_guided_line(), None);
        assert!(RunProfile::of([(1.0, None)]).is_none());
    }

    #[test]
    fn profiles_stored_before_refreshes_were_counted_still_read() {
        let mut stored = serde_json::to_value(sample_profile()).unwrap();
        let fields = stored.as_object_mut().unwrap();
        fields.remove("refreshes");
        fields.remove("refreshes_without_signal");
        let read: TaskProfile = serde_json::from_value(stored).unwrap();
        assert_eq!((read.refreshes, read.refreshes_without_signal), (0, 0));
    }

    #[test]
    fn the_old_name_of_the_answer_decode_reads_as_the_new() {
        let mut stored = serde_json::to_value(sample_profile()).unwrap();
        stored["phases"][0]["name"] = "guided decode".into();
        let old: TaskProfile = serde_json::from_value(stored).unwrap();
        assert_eq!(old, sample_profile());
        let run = TaskProfile::sum([&old, &sample_profile()]);
        let names: Vec<&str> = run.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["answer decode", "sandbox"]);
    }
}
