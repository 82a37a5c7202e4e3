//! Rounds: how a batch in tolerance mode runs as a few launches, so that no warp of the K = 7/8
//! kernels waits long for its slowest lane.
//!
//! Those kernels give each lane its own problem, and a warp runs until the slowest of its 32 is
//! done. Problems differ a lot in how many iterations they need (on the peers' workload: 48 on
//! average, the slowest of 32 about 260), so most lanes would idle. Instead the first launch runs
//! every problem to at most `caps[0]` iterations; each problem not done by then is stopped with its
//! exact state (`resume`, `iterations`) and appended to a work list, and the next launch runs only
//! the listed problems, now packed into full warps, to `caps[1]`; and so on, the caps growing by
//! half each round, until `max_iters`. A resumed problem continues from the same bits, so every
//! output is identical to one launch's; only the packing changes. [`lane_efficiency`] measures the
//! gain from per-problem iteration counts (`circot bench --model`, `circot::perf::stragglers`).
//!
//! Pure arithmetic on sizes and addresses: the cudarc launcher and, in the tests, the CPU emulator
//! both run a [`Rounds`].

use super::launch::threads_per_problem;
use super::params::SinkhornParams;

/// Batches smaller than this run in one launch. Below it the GPU is not full (8,192 lanes are 256
/// warps, under two per SM on a 132-SM part), so a warp waiting for its slowest lane costs latency
/// that rounds would not win back, and each round adds a launch.
pub const MIN_BATCH: usize = 8_192;

/// Iterations of the first round; each later round runs half as many again as the one before.
pub const FIRST_ROUND: u32 = 8;

/// The launches of one batch: the cumulative iteration cap of each, and where their shared state
/// lives in one workspace of 4-byte words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rounds {
    caps: Vec<u32>,
    batch: usize,
    k: usize,
}

impl Rounds {
    /// The rounds for `batch` problems of `k` classes: several only in tolerance mode
    /// (`tol > 0`), for the thread-per-problem kernels (K = 7, 8), when the iterations are not the
    /// one-hot closed form, and from [`MIN_BATCH`] problems on; otherwise one launch.
    pub fn plan(batch: usize, k: usize, max_iters: u32, tol: f32, one_hot: bool) -> Rounds {
        let several = tol > 0.0
            && !one_hot
            && threads_per_problem(k) == 1
            && (MIN_BATCH..=i32::MAX as usize).contains(&batch);
        let caps = if several {
            growing_caps(max_iters)
        } else {
            vec![max_iters]
        };
        Rounds::with_caps(batch, k, caps)
    }

    /// Rounds with the given cumulative caps (strictly increasing, the last one `max_iters`):
    /// for the tests, which run many rounds on small batches.
    ///
    /// # Panics
    ///
    /// If `caps` is empty or not strictly increasing, or a batch of several rounds has more
    /// than `i32::MAX` problems (the work lists hold int32 indices).
    pub fn with_caps(batch: usize, k: usize, caps: Vec<u32>) -> Rounds {
        assert!(!caps.is_empty(), "at least one round");
        assert!(
            caps.windows(2).all(|w| w[0] < w[1]),
            "caps strictly increase"
        );
        assert!(
            caps.len() == 1 || batch <= i32::MAX as usize,
            "int32 work lists"
        );
        Rounds { caps, batch, k }
    }

    /// Cumulative iteration caps, one per launch.
    pub fn caps(&self) -> &[u32] {
        &self.caps
    }

    /// Launches.
    pub fn len(&self) -> usize {
        self.caps.len()
    }

    /// Never: there is always at least one launch.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// 4-byte words of workspace the launches share (0 for one launch): the resume state
    /// (B × (K + 1) f32), two work lists (B int32 each) and one count per round.
    pub fn workspace_words(&self) -> usize {
        if self.len() == 1 {
            0
        } else {
            self.counts_at() + self.len()
        }
    }

    /// The words that must be zero before the first launch (the counts); nothing else is read
    /// before it is written.
    pub fn zeroed_words(&self) -> std::ops::Range<usize> {
        if self.len() == 1 {
            0..0
        } else {
            self.counts_at()..self.workspace_words()
        }
    }

    fn list_at(&self, which: usize) -> usize {
        self.batch * (self.k + 1) + which * self.batch
    }

    fn counts_at(&self) -> usize {
        self.list_at(2)
    }

    /// Launch `round`'s parameters: `base` (every input and output set, as for one launch) with
    /// the work lists, counts and resume state at `workspace` (the device address of
    /// [`workspace_words`](Self::workspace_words) words, 4-byte aligned; unused for one launch).
    pub fn params(&self, base: &SinkhornParams, round: usize, workspace: u64) -> SinkhornParams {
        assert!(round < self.len(), "round {round} of {}", self.len());
        let mut p = *base;
        p.round_cap = self.caps[round].min(i32::MAX as u32) as i32;
        if self.len() == 1 {
            return p;
        }
        let word = |i: usize| workspace + 4 * i as u64;
        p.resume = word(0);
        if round > 0 {
            p.work = word(self.list_at((round - 1) % 2));
            p.work_count = word(self.counts_at() + round - 1);
            p.init_g = 0; // resumed problems start from their saved state
        }
        if round + 1 < self.len() {
            p.next_work = word(self.list_at(round % 2));
            p.next_count = word(self.counts_at() + round);
        }
        p
    }
}

/// FIRST_ROUND iterations, then half as many again each round, up to `max_iters`.
fn growing_caps(max_iters: u32) -> Vec<u32> {
    let mut caps = Vec::new();
    let (mut round, mut cap) = (FIRST_ROUND, FIRST_ROUND);
    while cap < max_iters {
        caps.push(cap);
        round += round / 2;
        cap = cap.saturating_add(round);
    }
    caps.push(max_iters);
    caps
}

/// Lane-iterations of a batch on the thread-per-problem kernels, from its per-problem iteration
/// counts: what [`lane_efficiency`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneWork {
    /// Iterations the problems needed, summed.
    pub useful: u64,
    /// Lane-iterations the warps issued.
    pub issued: u64,
    /// Launches that had work.
    pub launches: usize,
}

impl LaneWork {
    /// `useful / issued`: the fraction of issued lanes that did a problem's iteration.
    pub fn efficiency(&self) -> f64 {
        if self.issued == 0 {
            1.0
        } else {
            self.useful as f64 / self.issued as f64
        }
    }
}

/// The lane work of problems that take `iterations` each, run in warps of 32 consecutive
/// problems (the launch's order) under `caps`. A warp issues 32 lanes for as many iterations as its
/// slowest problem has left in the round, plus one in every round after the first (a resumed
/// problem recomputes its first f-update's product: about one iteration, counted as one); the
/// problems still running are packed, in order, into the next round's warps. (The GPU packs them
/// in the order they stop, which is not known here; consecutive order is as good a guess.)
pub fn lane_efficiency(iterations: &[u32], caps: &[u32]) -> LaneWork {
    let useful: u64 = iterations.iter().map(|&n| n as u64).sum();
    let mut issued = 0u64;
    let mut running: Vec<u32> = iterations.to_vec();
    let (mut done, mut launches) = (0u32, 0);
    for &cap in caps {
        if running.is_empty() {
            break;
        }
        let (round, restart) = (cap - done, u64::from(done > 0));
        issued += running
            .chunks(32)
            .map(|warp| {
                let slowest = warp.iter().map(|&n| (n - done).min(round)).max();
                32 * (slowest.unwrap_or(0) as u64 + restart)
            })
            .sum::<u64>();
        running.retain(|&n| n > cap);
        done = cap;
        launches += 1;
    }
    LaneWork {
        useful,
        issued,
        launches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_launch_unless_rounds_can_help() {
        let one = |b, k, tol, one_hot| Rounds::plan(b, k, 1000, tol, one_hot).len() == 1;
        assert!(one(MIN_BATCH - 1, 8, 1e-6, false));
        assert!(one(MIN_BATCH, 8, 0.0, false)); // fixed iterations: every lane runs them all
        assert!(one(MIN_BATCH, 8, 1e-6, true)); // closed form: one iteration
        assert!(one(MIN_BATCH, 9, 1e-6, false)); // a warp per problem: no lanes to wait for
        assert!(!one(MIN_BATCH, 7, 1e-6, false));
    }

    #[test]
    fn caps_grow_by_half_and_end_at_max_iters() {
        assert_eq!(
            growing_caps(1000),
            [8, 20, 38, 65, 105, 165, 255, 390, 592, 895, 1000]
        );
        assert_eq!(growing_caps(8), [8]);
        assert_eq!(growing_caps(3), [3]);
        assert_eq!(growing_caps(u32::MAX).last(), Some(&u32::MAX));
    }

    #[test]
    fn rounds_chain_their_work_lists_and_counts() {
        let r = Rounds::with_caps(10, 3, vec![2, 5, 9]);
        assert_eq!(r.workspace_words(), 10 * 4 + 2 * 10 + 3);
        assert_eq!(r.zeroed_words(), 60..63);
        let base = SinkhornParams {
            init_g: 77,
            ..Default::default()
        };
        let at = 1000;
        let p: Vec<_> = (0..3).map(|i| r.params(&base, i, at)).collect();
        assert_eq!(
            (p[0].work, p[0].next_work, p[0].init_g),
            (0, at + 4 * 40, 77)
        );
        assert_eq!((p[0].next_count, p[0].round_cap), (at + 4 * 60, 2));
        assert_eq!(
            (p[1].work, p[1].work_count),
            (p[0].next_work, p[0].next_count)
        );
        assert_eq!(
            (p[1].next_work, p[1].next_count),
            (at + 4 * 50, at + 4 * 61)
        );
        assert_eq!(
            (p[2].work, p[2].next_work, p[2].init_g),
            (p[1].next_work, 0, 0)
        );
        assert!(p.iter().all(|q| q.resume == at));
        let one = Rounds::with_caps(10, 3, vec![9]);
        assert_eq!(
            (one.workspace_words(), one.params(&base, 0, at)),
            (
                0,
                SinkhornParams {
                    round_cap: 9,
                    ..base
                }
            )
        );
    }

    #[test]
    fn lane_efficiency_counts_the_slowest_lane_of_each_warp() {
        // One warp: 31 problems of 1 iteration and one of 33: 64 useful of 32·33 issued.
        let mut it = vec![1; 31];
        it.push(33);
        let one = lane_efficiency(&it, &[100]);
        assert_eq!((one.useful, one.issued, one.launches), (64, 32 * 33, 1));
        // Rounds of 1 then the rest: 32·1 issued, then the straggler alone, 32·(32 + 1 restart).
        let two = lane_efficiency(&it, &[1, 100]);
        assert_eq!(
            (two.useful, two.issued, two.launches),
            (64, 32 + 32 * 33, 2)
        );
        // 64 stragglers in the last two of four warps, packed into two warps after round one.
        let mut packed = vec![1; 64];
        packed.extend(vec![5; 64]);
        let w = lane_efficiency(&packed, &[1, 10, 20]);
        assert_eq!(
            (w.useful, w.issued, w.launches),
            (384, 32 * 4 + 2 * 32 * (4 + 1), 2)
        );
        assert!((w.efficiency() - 384.0 / 448.0).abs() < 1e-15);
    }
}
