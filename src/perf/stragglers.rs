//! Stragglers in tolerance mode: how much of the thread-per-problem kernels' work is lanes
//! waiting for the slowest problem of their warp, in one launch and in rounds
//! ([`crate::cuda::rounds`]), on the peers' workload, and what the cost model makes of it.
//!
//! The per-problem iteration counts come from the CPU backend in f32, which runs the same
//! iteration as the kernels (the GPU's own counts may differ by a few, through the SFU's
//! rounding). Time to tolerance = issued lane-iterations / the model's bound in
//! problem-iterations per second (one lane is one problem) + [`LAUNCH_SECONDS`] per launch: no
//! latency, occupancy or memory term, as in the rest of the model.

use super::{cost_model, workload};
use crate::cuda::rounds::{LaneWork, Rounds, lane_efficiency};
use crate::{Backend, DEFAULT_MAX_ITERS, Result, SolveOptions, Source, Target, solve};

/// The workload of the issue that measured the stragglers: K = 8, B = 65,536, ε = 0.05·max C,
/// smoothing 0.1, tolerance 1e-6, seed 0.
pub const CLASSES: usize = 8;
#[allow(missing_docs)]
pub const BATCH: usize = 65_536;
#[allow(missing_docs)]
pub const EPS_FACTOR: f64 = 0.05;
#[allow(missing_docs)]
pub const TOL: f64 = 1e-6;

/// Assumed cost of one kernel launch on the stream (a few microseconds on current drivers).
pub const LAUNCH_SECONDS: f64 = 4e-6;

/// One launch against the planned rounds, on [`BATCH`] problems.
#[derive(Debug, Clone)]
pub struct Stragglers {
    /// Mean and largest iterations per problem.
    pub mean_iterations: f64,
    #[allow(missing_docs)]
    pub max_iterations: u32,
    /// Everything in one launch.
    pub one_launch: LaneWork,
    /// The rounds `Rounds::plan` picks for this batch, and their lane work.
    pub caps: Vec<u32>,
    #[allow(missing_docs)]
    pub rounds: LaneWork,
    /// The cost model's bound for the kernel that runs it (sm_90 `_k8` f32, Gibbs loop), in
    /// problem-iterations per second.
    pub bound: f64,
}

impl Stragglers {
    /// Solves the workload on the CPU for its iteration counts and applies both schedules.
    pub fn measure() -> Result<Stragglers> {
        let cost = workload::circle_cost(CLASSES);
        let batch = workload::make_batch(BATCH, CLASSES, 0);
        let logits = batch.logits.mapv(|x| x as f32);
        let options = SolveOptions::new(EPS_FACTOR * cost.max()).tol(TOL);
        let target = Target::Labels {
            labels: batch.labels.view(),
            smoothing: workload::SMOOTHING,
        };
        let s = solve(
            &cost,
            Source::Logits(logits.view()),
            target,
            &options,
            Backend::Cpu,
        )?;
        let iterations = s.iterations.to_vec();
        let caps = Rounds::plan(BATCH, CLASSES, DEFAULT_MAX_ITERS, TOL as f32, false)
            .caps()
            .to_vec();
        let bound = cost_model::committed()
            .iter()
            .find(|m| m.arch == "sm_90" && m.kernel.ends_with("f32_k8") && m.form == "gibbs")
            .map(|m| m.bound().1)
            .unwrap_or(f64::NAN);
        Ok(Stragglers {
            mean_iterations: iterations.iter().map(|&n| n as f64).sum::<f64>() / BATCH as f64,
            max_iterations: iterations.iter().copied().max().unwrap_or(0),
            one_launch: lane_efficiency(&iterations, &[DEFAULT_MAX_ITERS]),
            rounds: lane_efficiency(&iterations, &caps),
            caps,
            bound,
        })
    }

    /// The model's time to tolerance for `work`, in seconds.
    pub fn seconds(&self, work: &LaneWork) -> f64 {
        work.issued as f64 / self.bound + work.launches as f64 * LAUNCH_SECONDS
    }

    /// The report `circot bench --model` prints.
    pub fn render(&self) -> String {
        let caps: Vec<String> = self.caps.iter().map(|c| c.to_string()).collect();
        let row = |name: &str, w: &LaneWork| {
            format!(
                "| {name} | {} | {:.3} | {:.4e} | {:.3} ms |\n",
                w.launches,
                w.efficiency(),
                w.issued as f64,
                1e3 * self.seconds(w)
            )
        };
        format!(
            "\nStragglers in tolerance mode (_k7/_k8: one problem per lane): K = {CLASSES}, B = {BATCH}, \
             eps = {EPS_FACTOR}·max C, smoothing {}, tol {TOL:e};\niterations per problem from the \
             CPU f32 solve: mean {:.1}, max {}. Rounds: caps {}.\nModel time = issued \
             lane-iterations / {:.3e} problem-it/s (sm_90 _k8 f32 Gibbs bound) + {} µs per launch.\n\n\
             | schedule | launches | lane efficiency | issued lane-iterations | model time to tolerance |\n\
             |---|---|---|---|---|\n{}{}\nlane efficiency: one launch {:.3}, rounds {:.3}\n",
            workload::SMOOTHING,
            self.mean_iterations,
            self.max_iterations,
            caps.join(", "),
            self.bound,
            LAUNCH_SECONDS * 1e6,
            row("one launch", &self.one_launch),
            row("rounds", &self.rounds),
            self.one_launch.efficiency(),
            self.rounds.efficiency(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_bring_the_peers_workload_to_the_target_lane_efficiency() {
        let s = Stragglers::measure().unwrap();
        // The figures for one launch: 48 iterations on average, efficiency 0.19.
        assert!((40.0..56.0).contains(&s.mean_iterations), "{s:?}");
        assert!(s.one_launch.efficiency() < 0.25, "{s:?}");
        assert!(s.rounds.efficiency() >= 0.7, "{s:?}");
        assert!(s.seconds(&s.rounds) < s.seconds(&s.one_launch), "{s:?}");
        assert!(s.render().contains("lane efficiency: one launch"));
    }
}
