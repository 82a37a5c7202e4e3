//! One test per rejected input: each gives its own error naming the offending index or value,
//! and nothing is computed.

use circot::{
    Backend, Convention, CostMatrix, Error, Operand, SolveOptions, Source, Target, solve,
};
use ndarray::{Array1, Array2, array};

fn uniform8() -> CostMatrix {
    CostMatrix::uniform(8).unwrap()
}

fn probs(batch: usize) -> Array2<f64> {
    Array2::from_elem((batch, 8), 0.125)
}

fn solve_probs(p: &Array2<f64>, y: &Array1<i64>, options: &SolveOptions) -> circot::Result<()> {
    for backend in [Backend::Reference, Backend::Cpu, Backend::Auto] {
        solve(
            &uniform8(),
            Source::Probabilities(p.view()),
            Target::labels(y.view()),
            options,
            backend,
        )?;
    }
    Ok(())
}

fn labels(batch: usize) -> Array1<i64> {
    Array1::zeros(batch)
}

#[test]
fn nan_in_source() {
    let mut p = probs(3);
    p[[2, 5]] = f64::NAN;
    let e = solve_probs(&p, &labels(3), &SolveOptions::new(0.1)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotFinite {
                operand: Operand::Source,
                problem: 2,
                class: 5,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("source[2, 5]"));
}

#[test]
fn infinite_logit() {
    let mut z = Array2::<f32>::zeros((2, 8));
    z[[1, 0]] = f32::INFINITY;
    let y = labels(2);
    let e = solve(
        &uniform8(),
        Source::Logits(z.view()),
        Target::labels(y.view()),
        &SolveOptions::new(0.1),
        Backend::Cpu,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotFinite {
                problem: 1,
                class: 0,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn nan_in_target() {
    let p = probs(2);
    let mut t = probs(2);
    t[[0, 3]] = f64::NAN;
    let e = solve(
        &uniform8(),
        Source::Probabilities(p.view()),
        Target::Distributions(t.view()),
        &SolveOptions::new(0.1),
        Backend::Cpu,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotFinite {
                operand: Operand::Target,
                problem: 0,
                class: 3,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn negative_probability() {
    let mut p = probs(4);
    p[[3, 1]] = -0.125;
    p[[3, 2]] = 0.375;
    let e = solve_probs(&p, &labels(4), &SolveOptions::new(0.1)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NegativeProbability {
                problem: 3,
                class: 1,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn source_row_not_summing_to_one() {
    let mut p = probs(2);
    p[[1, 0]] = 0.2;
    let e = solve_probs(&p, &labels(2), &SolveOptions::new(0.1)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::RowSum {
                operand: Operand::Source,
                problem: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("1.075"), "{e}");
}

#[test]
fn target_row_not_summing_to_one() {
    let p = probs(2);
    let t = Array2::from_elem((2, 8), 0.1);
    let e = solve(
        &uniform8(),
        Source::Probabilities(p.view()),
        Target::Distributions(t.view()),
        &SolveOptions::new(0.1),
        Backend::Cpu,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::RowSum {
                operand: Operand::Target,
                problem: 0,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn rounding_sized_row_sum_errors_are_accepted() {
    let mut p = probs(1);
    p[[0, 0]] += 1e-7; // an f32-rounded softmax
    solve_probs(&p, &labels(1), &SolveOptions::new(0.1)).unwrap();
}

#[test]
fn label_at_or_beyond_k() {
    let y = array![0_i64, 7, 8];
    let e = solve_probs(&probs(3), &y, &SolveOptions::new(0.1)).unwrap_err();
    assert_eq!(
        e,
        Error::LabelOutOfRange {
            problem: 2,
            label: 8,
            k: 8
        }
    );
}

#[test]
fn negative_labels_mark_ignored_problems() {
    let y = array![-1_i64, 0];
    let p = probs(2);
    for backend in [Backend::Reference, Backend::Cpu] {
        let s = solve(
            &uniform8(),
            Source::Probabilities(p.view()),
            Target::labels(y.view()),
            &SolveOptions::new(0.1),
            backend,
        )
        .unwrap();
        assert_eq!((s.loss[0], s.iterations[0]), (0.0, 0));
        assert!(
            s.f.row(0)
                .iter()
                .chain(s.grad_source.row(0))
                .all(|&x| x == 0.0)
        );
        assert_eq!(s.iterations[1], 1);
    }
}

#[test]
fn source_with_wrong_number_of_classes() {
    let p = Array2::from_elem((2, 7), 1.0 / 7.0);
    let e = solve_probs(&p, &labels(2), &SolveOptions::new(0.1)).unwrap_err();
    assert_eq!(
        e,
        Error::Shape {
            what: "source",
            expected: vec![2, 8],
            found: vec![2, 7]
        }
    );
}

#[test]
fn labels_of_another_batch_size() {
    let e = solve_probs(&probs(3), &labels(4), &SolveOptions::new(0.1)).unwrap_err();
    assert_eq!(
        e,
        Error::Shape {
            what: "labels",
            expected: vec![3],
            found: vec![4]
        }
    );
}

#[test]
fn target_distributions_of_another_shape() {
    let t = Array2::from_elem((3, 8), 0.125);
    let e = solve(
        &uniform8(),
        Source::Probabilities(probs(2).view()),
        Target::Distributions(t.view()),
        &SolveOptions::new(0.1),
        Backend::Cpu,
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::Shape {
            what: "target",
            expected: vec![2, 8],
            found: vec![3, 8]
        }
    );
}

#[test]
fn class_count_outside_2_to_32() {
    for k in [0, 1, 33] {
        assert_eq!(
            CostMatrix::new(Array2::zeros((k, k)).view()).unwrap_err(),
            Error::ClassCount { k }
        );
        assert_eq!(CostMatrix::uniform(k).unwrap_err(), Error::ClassCount { k });
    }
    assert!(CostMatrix::uniform(32).is_ok() && CostMatrix::uniform(2).is_ok());
}

#[test]
fn eps_not_positive_or_not_finite() {
    for eps in [0.0, -0.1, f64::NAN, f64::INFINITY] {
        let e = solve_probs(&probs(1), &labels(1), &SolveOptions::new(eps)).unwrap_err();
        assert!(matches!(e, Error::Eps { .. }), "{e}");
    }
}

#[test]
fn zero_max_iters() {
    let e = solve_probs(&probs(1), &labels(1), &SolveOptions::new(0.1).max_iters(0)).unwrap_err();
    assert_eq!(e, Error::MaxIters);
}

#[test]
fn bad_tolerance() {
    for tol in [-1e-6, f64::NAN] {
        let e = solve_probs(&probs(1), &labels(1), &SolveOptions::new(0.1).tol(tol)).unwrap_err();
        assert!(matches!(e, Error::Tolerance { .. }), "{e}");
    }
}

#[test]
fn bad_smoothing() {
    let y = labels(1);
    let target = Target::Labels {
        labels: y.view(),
        smoothing: 1.5,
    };
    let e = solve(
        &uniform8(),
        Source::Probabilities(probs(1).view()),
        target,
        &SolveOptions::new(0.1),
        Backend::Cpu,
    )
    .unwrap_err();
    assert_eq!(e, Error::Smoothing { value: 1.5 });
}

#[test]
fn non_square_cost() {
    let e = CostMatrix::new(Array2::zeros((3, 4)).view()).unwrap_err();
    assert_eq!(e, Error::CostNotSquare { rows: 3, cols: 4 });
}

#[test]
fn negative_cost() {
    let mut c = Array2::from_elem((3, 3), 1.0);
    c[[1, 2]] = -0.5;
    assert_eq!(
        CostMatrix::new(c.view()).unwrap_err(),
        Error::CostNegative {
            row: 1,
            col: 2,
            value: -0.5
        }
    );
}

#[test]
fn non_finite_cost() {
    let mut c = Array2::from_elem((3, 3), 1.0);
    c[[2, 0]] = f64::INFINITY;
    let e = CostMatrix::new(c.view()).unwrap_err();
    assert!(
        matches!(e, Error::CostNotFinite { row: 2, col: 0, .. }),
        "{e}"
    );
}

#[test]
fn entropy_gradient_at_a_zero_probability() {
    let mut p = probs(1);
    p[[0, 4]] = 0.0;
    p[[0, 5]] = 0.25;
    let options = SolveOptions::new(0.1).convention(Convention::Entropy);
    let e = solve_probs(&p, &labels(1), &options).unwrap_err();
    assert_eq!(
        e,
        Error::EntropyGradientAtZero {
            problem: 0,
            class: 4
        }
    );
    // The KL convention is fine there.
    solve_probs(&p, &labels(1), &SolveOptions::new(0.1)).unwrap();
}

#[test]
fn cuda_backend_says_why_it_cannot_run() {
    let y = labels(1);
    let p = probs(1).mapv(|x| x as f32);
    let e = solve(
        &uniform8(),
        Source::Probabilities(p.view()),
        Target::labels(y.view()),
        &SolveOptions::new(0.1),
        Backend::Cuda,
    );
    if let Err(e) = e {
        assert!(
            matches!(
                e,
                Error::BackendUnavailable {
                    backend: "cuda",
                    ..
                }
            ),
            "{e}"
        );
        assert!(!e.to_string().is_empty());
    }
}
