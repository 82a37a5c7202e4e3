//! The GPU cost model: lane-instructions per problem-iteration per pipe, counted in the
//! iteration loop of the compiled kernels (`kernels/COST_MODEL.txt`, written from the sm_90
//! SASS by `tools/cost-model.sh`), and the throughput bound they imply on an H100 SXM.
//!
//! A pipe that retires `r` lane-instructions per SM per clock, fed `n` of them per
//! problem-iteration, bounds the GPU at `SMs · clock · r / n` problem-iterations per second;
//! the model's bound is the least of the pipes' and of the issue rate's (4 schedulers × 32
//! lanes). It ignores latency, occupancy and memory traffic (the loop touches no global memory;
//! see `docs/performance.md` for every assumption).

/// The committed counts.
const COMMITTED: &str = include_str!("../../kernels/COST_MODEL.txt");

/// The pipes, in the order of the counts, with their lane-instructions per SM per clock on an
/// H100 (sm_90): MUFU 16 and FP32 128 (given), ALU 64 (integer/logic/compare/select), shuffles
/// 32, load/store 32, and "other" (branches, barriers, uniform datapath) limited only by issue.
pub const PIPES: [(&str, Option<f64>); 6] = [
    ("mufu", Some(16.0)),
    ("fp32", Some(128.0)),
    ("alu", Some(64.0)),
    ("shfl", Some(32.0)),
    ("lsu", Some(32.0)),
    ("other", None),
];
/// Lane-instructions issued per SM per clock (4 schedulers, one warp-instruction each).
pub const ISSUE_PER_CLOCK: f64 = 128.0;
/// H100 SXM streaming multiprocessors.
pub const SMS: f64 = 132.0;
/// H100 SXM boost clock, Hz.
pub const CLOCK_HZ: f64 = 1.98e9;

/// One kernel at one K.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelCounts {
    /// The architecture the SASS was compiled for (`sm_90`).
    pub arch: String,
    /// The entry point.
    pub kernel: String,
    /// Which iteration loop: `gibbs` (the Gibbs-kernel form, used while max C/ε ≤ 50) or `lse`
    /// (the log-sum-exp form, used beyond).
    pub form: String,
    /// Classes.
    pub classes: usize,
    /// Lane-instructions per problem-iteration, per pipe in the order of [`PIPES`].
    pub per_pipe: [f64; 6],
    /// All of them.
    pub total: f64,
}

impl KernelCounts {
    /// Clocks per problem-iteration per SM that each pipe needs, and the issue rate.
    pub fn clocks(&self) -> Vec<(&'static str, f64)> {
        let mut c: Vec<_> = PIPES
            .iter()
            .zip(self.per_pipe)
            .filter_map(|(&(name, rate), n)| rate.map(|r| (name, n / r)))
            .collect();
        c.push(("issue", self.total / ISSUE_PER_CLOCK));
        c
    }

    /// The binding pipe and the bound, in problem-iterations per second on the whole H100.
    pub fn bound(&self) -> (&'static str, f64) {
        let (name, clocks) = self
            .clocks()
            .into_iter()
            .fold(("none", 0.0), |m, c| if c.1 > m.1 { c } else { m });
        (name, SMS * CLOCK_HZ / clocks)
    }
}

/// Parses the committed `kernels/COST_MODEL.txt`.
pub fn committed() -> Vec<KernelCounts> {
    parse(COMMITTED)
}

/// Parses the cost-model file format (one line per kernel and K; `#` starts a comment).
pub fn parse(text: &str) -> Vec<KernelCounts> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let arch = words.next()?.to_string();
            let kernel = words.next()?.to_string();
            let fields: std::collections::HashMap<&str, &str> =
                words.filter_map(|w| w.split_once('=')).collect();
            let num = |key: &str| fields.get(key).and_then(|v| v.parse::<f64>().ok());
            let mut per_pipe = [0.0; 6];
            for (slot, (name, _)) in per_pipe.iter_mut().zip(PIPES) {
                *slot = num(name)?;
            }
            Some(KernelCounts {
                arch,
                kernel,
                form: fields.get("form").unwrap_or(&"lse").to_string(),
                classes: num("k")? as usize,
                per_pipe,
                total: num("total")?,
            })
        })
        .collect()
}

/// The model as a table: counts, clocks per pipe, and the bound at 100 iterations.
pub fn render(model: &[KernelCounts]) -> String {
    let mut out = String::from(
        "GPU cost model: lane-instructions per problem-iteration in the iteration loop (SASS), \
         and the H100 SXM bound\n(132 SMs, 1.98 GHz; per SM per clock: MUFU 16, FP32 128, ALU 64, \
         SHFL 32, LSU 32, issue 128)\n\n",
    );
    out.push_str(
        "| kernel | loop | K | MUFU | FP32 | ALU | SHFL | LSU | other | total | binding | problem-it/s | problems/s at 100 it |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for m in model {
        let (pipe, bound) = m.bound();
        let p = &m.per_pipe;
        out.push_str(&format!(
            "| {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} | {} | {pipe} | {:.3e} | {:.3e} |\n",
            m.kernel,
            m.arch,
            m.form,
            m.classes,
            p[0],
            p[1],
            p[2],
            p[3],
            p[4],
            p[5],
            m.total,
            bound,
            bound / 100.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_model_parses_and_binds_somewhere() {
        let model = committed();
        assert!(!model.is_empty());
        for m in &model {
            let (pipe, bound) = m.bound();
            assert!(bound.is_finite() && bound > 0.0, "{}: {pipe}", m.kernel);
        }
    }

    #[test]
    fn the_bound_is_the_slowest_pipe() {
        let m =
            parse("sm_90 k k=8 threads=1 mufu=32 fp32=128 alu=0 shfl=0 lsu=0 other=0 total=160");
        // MUFU: 32/16 = 2 clocks; FP32: 1; issue: 1.25.
        let (pipe, bound) = m[0].bound();
        assert_eq!(pipe, "mufu");
        assert!((bound - SMS * CLOCK_HZ / 2.0).abs() < 1.0);
    }
}
