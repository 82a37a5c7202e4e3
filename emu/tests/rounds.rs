//! Rounds (`circot::cuda::rounds`): a batch run as several launches, each stopping the problems not
//! done by its cap and handing them on with their state, gives every output bit for bit as one
//! launch does, on both iteration loops of the thread-per-problem kernels, for every input kind.
mod common;

use common::Rng;

use circot::cuda::SinkhornParams;
use circot::cuda::rounds::Rounds;
use circot_emu::launch;

#[derive(Clone, Copy, Debug)]
struct Case {
    k: usize,
    eps: f32,
    logits: bool,
    labels: bool,
    warm: bool,
}

struct Inputs {
    source: Vec<f32>,
    target: Vec<f32>,
    labels: Vec<i64>,
    init_g: Vec<f32>,
    cost: Vec<f32>,
}

fn inputs(c: Case, batch: usize, seed: u64) -> Inputs {
    let mut rng = Rng(seed);
    let k = c.k;
    let mut row = |zeros: bool| -> Vec<f32> {
        let w: Vec<f32> = (0..k)
            .map(|_| {
                if zeros && rng.uniform() < 0.2 {
                    0.0
                } else {
                    0.05 + rng.uniform()
                }
            })
            .collect();
        let total: f32 = w.iter().sum();
        w.iter().map(|x| x / total).collect()
    };
    let mut source = Vec::new();
    let mut target = Vec::new();
    for _ in 0..batch {
        source.extend(row(true)); // zero-mass sources: their f is set after the last round
        target.extend(row(false));
    }
    if c.logits {
        source.iter_mut().for_each(|x| *x = 4.0 * (*x - 0.1));
    }
    // Mostly valid labels, with ignored (-1) and invalid (K) problems among them.
    let labels = (0..batch)
        .map(|b| match b % 13 {
            5 => -1,
            9 => k as i64,
            _ => (b * 7 % k) as i64,
        })
        .collect();
    let init_g = (0..batch * k).map(|i| (i % 5) as f32 * 0.1 + 3.0).collect();
    let cost = (0..k * k)
        .map(|x| {
            let (i, j) = (x / k, x % k);
            (i as f32 - j as f32).abs() / k as f32 + if i < j { 0.1 } else { 0.0 }
        })
        .collect();
    Inputs {
        source,
        target,
        labels,
        init_g,
        cost,
    }
}

/// Every output (and the iteration counts, as f32) of `rounds` launches, and how many problems
/// each launch handed on.
fn run(c: Case, x: &Inputs, batch: usize, rounds: &Rounds) -> (Vec<Vec<f32>>, Vec<u32>) {
    let k = c.k;
    let mut out: [Vec<f32>; 8] = [1, 1, k, k, k, k, 1, k * k].map(|n| vec![f32::NAN; batch * n]);
    let mut iterations = vec![-7i32; batch];
    let [loss, tc, f, g, gs, gl, err, plan] = out.each_mut().map(|v| v.as_mut_ptr() as u64);
    let base = SinkhornParams {
        source: x.source.as_ptr() as u64,
        target: if c.labels {
            0
        } else {
            x.target.as_ptr() as u64
        },
        labels: if c.labels {
            x.labels.as_ptr() as u64
        } else {
            0
        },
        cost: x.cost.as_ptr() as u64,
        loss,
        transport_cost: tc,
        f,
        g,
        grad_source: gs,
        grad_logits: if c.logits { gl } else { 0 },
        iterations: iterations.as_mut_ptr() as u64,
        marginal_error: err,
        plan,
        init_g: if c.warm { x.init_g.as_ptr() as u64 } else { 0 },
        batch: batch as i64,
        k: k as i32,
        max_iters: *rounds.caps().last().unwrap() as i32,
        eps: c.eps,
        tol: 1e-6,
        smoothing: if c.labels { 0.1 } else { 0.0 },
        source_is_logits: c.logits.into(),
        ..Default::default()
    };
    // NaN-filled, as the device's uninitialised memory might be; the counts are zeroed.
    let mut workspace = vec![f32::NAN.to_bits(); rounds.workspace_words()];
    workspace[rounds.zeroed_words()].fill(0);
    for round in 0..rounds.len() {
        let params = rounds.params(&base, round, workspace.as_mut_ptr() as u64);
        let kernel = format!("circot_sinkhorn_f32_k{k}");
        // SAFETY: params mirrors SinkhornParams; inputs hold batch x k (cost k x k) values, every
        // output buffer is sized for batch problems, the workspace has the rounds' words with its
        // counts zeroed, and nothing else touches any of them during the launch.
        unsafe {
            launch(
                &kernel,
                [(batch as u32).div_ceil(128), 1, 1],
                [128, 1, 1],
                0,
                (&raw const params).cast(),
                size_of::<SinkhornParams>(),
            )
        }
        .unwrap();
    }
    let handed_on = workspace[rounds.zeroed_words()].to_vec();
    let mut all = out.to_vec();
    all.push(iterations.iter().map(|&i| i as f32).collect());
    (all, handed_on)
}

fn check(c: Case, batch: usize, caps: Vec<u32>) {
    let x = inputs(c, batch, 0x5eed + batch as u64);
    let max_iters = *caps.last().unwrap();
    let (one, _) = run(
        c,
        &x,
        batch,
        &Rounds::with_caps(batch, c.k, vec![max_iters]),
    );
    let rounds = Rounds::with_caps(batch, c.k, caps);
    let (several, handed_on) = run(c, &x, batch, &rounds);
    // The test means something only if problems were handed on, through more than one round.
    assert!(
        handed_on.iter().filter(|&&n| n > 0).count() >= 2,
        "{c:?}: handed on {handed_on:?}"
    );
    let names = [
        "loss",
        "transport",
        "f",
        "g",
        "grad_source",
        "grad_logits",
        "error",
        "plan",
        "iterations",
    ];
    for (name, (a, b)) in names.iter().zip(one.iter().zip(&several)) {
        for (i, (p, q)) in a.iter().zip(b).enumerate() {
            assert!(
                p.to_bits() == q.to_bits(),
                "{c:?} {name}[{i}]: one launch {p:e}, rounds {q:e}"
            );
        }
    }
    // And the iteration counts are real: some problems ran past the first rounds.
    let iterations = &one[8];
    assert!(
        iterations.iter().any(|&n| n > rounds.caps()[1] as f32),
        "{c:?}"
    );
}

fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    for k in [7, 8] {
        // eps = 0.05: max C/eps = 24 (Gibbs loop); eps = 0.01: 120 (log-sum-exp loop).
        for eps in [0.05, 0.01] {
            for (logits, labels, warm) in [
                (false, false, false),
                (true, false, true),
                (true, true, false),
                (false, true, true),
            ] {
                all.push(Case {
                    k,
                    eps,
                    logits,
                    labels,
                    warm,
                });
            }
        }
    }
    all
}

#[test]
fn rounds_give_the_bits_of_one_launch() {
    for c in cases() {
        check(c, 161, vec![1, 2, 4, 7, 12, 20, 33, 60, 100, 400]);
    }
}

#[test]
fn the_planned_rounds_give_the_bits_of_one_launch() {
    let c = Case {
        k: 8,
        eps: 0.05,
        logits: true,
        labels: true,
        warm: false,
    };
    let batch = circot::cuda::rounds::MIN_BATCH + 33;
    let planned = Rounds::plan(batch, 8, 1000, 1e-6, false);
    assert!(planned.len() > 5, "{:?}", planned.caps());
    check(c, batch, planned.caps().to_vec());
}
