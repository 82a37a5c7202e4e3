//! Hostile values that used to give NaN or a silently wrong answer: magnitudes near f64::MAX
//! (and subnormal ones) in the paired tests, the CCC and the loss weights; coincident or huge class
//! positions in the costs.

use circot::affect::{ClassSet, class_centroids};
use circot::degeneracy::{DegeneracyOptions, analyse};
use circot::loss::{Batch, GradOutput, Reduction, SinkhornLoss};
use circot::metrics::ccc;
use circot::stats::{Alternative, Method, PairedOptions, sign_flip, wilcoxon};
use circot::{CostMatrix, Element, Error, Source, Target};
use half::f16;
use ndarray::{Array1, Array2, array};

// ---------------------------------------------------------------------------------------------
// Paired tests.

#[test]
fn sign_flip_with_differences_beyond_f64_max_is_exact() {
    let (x, y) = ([1e308; 5], [-1e308; 5]);
    let o = PairedOptions::default();
    let w = wilcoxon(&x, &y, &o).unwrap();
    assert!((w.p_value - 1.0 / 16.0).abs() < 1e-15, "{w:?}");
    let s = sign_flip(&x, &y, &o).unwrap();
    assert!(s.exact);
    assert!((s.p_value - 1.0 / 16.0).abs() < 1e-15, "{s:?}");
    // The mean difference 2e308 is beyond f64: +inf, never NaN.
    assert_eq!(s.statistic, f64::INFINITY);
    let greater = o.alternative(Alternative::Greater);
    let s = sign_flip(&x, &y, &greater).unwrap();
    assert!((s.p_value - 1.0 / 32.0).abs() < 1e-15, "{s:?}");
    let less = o.alternative(Alternative::Less);
    assert_eq!(sign_flip(&x, &y, &less).unwrap().p_value, 1.0);
}

#[test]
fn sign_flip_whose_sum_overflows_is_exact_and_its_mean_is_finite() {
    // Each difference is finite, their sum is not; the mean is.
    let d = [1.5e308, 1.2e308, 1.7e308, 1.1e308, 1.6e308];
    let y = [0.0; 5];
    let o = PairedOptions::default();
    let s = sign_flip(&d, &y, &o).unwrap();
    assert!((s.p_value - 1.0 / 16.0).abs() < 1e-15, "{s:?}");
    let mean = 1.42e308;
    assert!((s.statistic - mean).abs() <= 1e-12 * mean, "{s:?}");
    // Mixed signs: the same p-values as the data scaled down by 1e300.
    let x = [1.5e308, -1.2e308, 1.7e308, 1.1e308, 1.6e308, 0.9e308];
    let small: Vec<f64> = x.iter().map(|v| v / 1e300).collect();
    for alternative in [
        Alternative::TwoSided,
        Alternative::Greater,
        Alternative::Less,
    ] {
        for method in [Method::Exact, Method::Normal] {
            let o = PairedOptions::default()
                .alternative(alternative)
                .method(method);
            let big = sign_flip(&x, &[0.0; 6], &o).unwrap();
            let reference = sign_flip(&small, &[0.0; 6], &o).unwrap();
            assert!(
                (big.p_value - reference.p_value).abs() < 1e-12,
                "{alternative} {method:?}: {big:?} vs {reference:?}"
            );
            assert!(big.statistic.is_finite(), "{big:?}");
        }
    }
}

#[test]
fn sign_flip_normal_approximation_survives_overflow() {
    let n = 60;
    let x = vec![1e308; n];
    let y = vec![-1e308; n];
    let o = PairedOptions::default().method(Method::Normal);
    let s = sign_flip(&x, &y, &o).unwrap();
    assert!(!s.exact);
    // z = sqrt(60) ≈ 7.75: p ≈ 1e-14.
    assert!(s.p_value > 0.0 && s.p_value < 1e-10, "{s:?}");
}

#[test]
fn wilcoxon_ranks_differences_beyond_f64_max_apart() {
    // |d| = 3e308 > 2e308: both overflow when subtracted, yet their ranks differ.
    let x = [1.5e308, -1e308, 0.5, 0.25, -0.125];
    let y = [-1.5e308, 1e308, 0.0, 0.0, 0.0];
    let scaled_x = [3.0, -2.0, 0.5, 0.25, -0.125];
    let o = PairedOptions::default().alternative(Alternative::Greater);
    let big = wilcoxon(&x, &y, &o).unwrap();
    let reference = wilcoxon(&scaled_x, &[0.0; 5], &o).unwrap();
    assert_eq!(big.statistic, reference.statistic);
    assert_eq!(big.p_value, reference.p_value);
}

// ---------------------------------------------------------------------------------------------
// Metrics.

#[test]
fn ccc_of_values_near_f64_max_is_finite_and_scale_invariant() {
    let x = [0.1, -0.3, 0.5, 0.2, 0.9];
    let y = [0.2, -0.1, 0.4, 0.1, 0.7];
    let reference = ccc(&x, &y).unwrap();
    for scale in [1e308, 1e300, 1e-300, 5e-324 * 1e10] {
        let (bx, by): (Vec<f64>, Vec<f64>) = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a * scale, b * scale))
            .unzip();
        let got = ccc(&bx, &by).unwrap();
        assert!(
            (got - reference).abs() < 1e-9,
            "scale {scale}: {got} vs {reference}"
        );
    }
    let near_max = [1.7e308, -1.7e308, 1.0e308];
    assert!((ccc(&near_max, &near_max).unwrap() - 1.0).abs() < 1e-15);
    let flipped: Vec<f64> = near_max.iter().map(|v| -v).collect();
    let c = ccc(&near_max, &flipped).unwrap();
    assert!(c.is_finite() && c < -0.5, "{c}");
}

// ---------------------------------------------------------------------------------------------
// Loss weights.

/// The reduced value, the logits' gradient and the cost's gradient.
type Weighted = (Option<f64>, Array2<f64>, Array2<f64>);

/// Four problems over three classes, one of them ignored, with the cost gradient on.
fn weighted_loss<E: Element>(
    reduction: Reduction,
    weights: Option<&[f64]>,
) -> Result<Weighted, Error> {
    let z = array![
        [1.0, 0.0, -1.0],
        [0.5, 0.25, 0.0],
        [-1.0, 2.0, 0.0],
        [0.0, 0.0, 3.0]
    ]
    .mapv(E::from_f64);
    let y = array![0_i64, 2, -1, 1];
    let w = weights.map(|w| Array1::from_iter(w.iter().map(|&x| E::from_f64(x))));
    let cost = CostMatrix::from_valence_arousal(&[(0.5, 0.5), (-0.5, 0.5), (0.0, -0.5)])?;
    let mut loss = SinkhornLoss::<E>::new(cost, 0.1)
        .tol(0.0)
        .max_iters(200)
        .reduction(reduction)
        .cost_gradient(true);
    let batch = Batch::new(Source::Logits(z.view()), Target::labels(y.view()));
    let batch = match &w {
        Some(w) => batch.weights(w.view()),
        None => batch,
    };
    let (value, grads) = loss.forward_backward(batch)?;
    Ok((
        value.reduced,
        grads.input.mapv(E::as_f64),
        grads.cost.expect("asked for"),
    ))
}

/// `|a − b| ≤ ulps · ε · max(|a|, |b|)` element-wise (and equal where both are 0).
fn close(a: &Array2<f64>, b: &Array2<f64>, ulps: f64, eps: f64) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (x - y).abs() <= ulps * eps * x.abs().max(y.abs()))
}

#[test]
fn equal_weights_of_any_magnitude_give_the_plain_mean() {
    let (mean, input, cost) = weighted_loss::<f64>(Reduction::Mean, None).unwrap();
    let mean = mean.unwrap();
    for w in [1e308, f64::MAX, 1e-300, 5e-324, 1.0] {
        let (got, g_input, g_cost) =
            weighted_loss::<f64>(Reduction::WeightedMean, Some(&[w; 4])).unwrap();
        let got = got.unwrap();
        let tol = 4.0 * f64::EPSILON * mean.abs();
        assert!((got - mean).abs() <= tol, "w = {w:e}: {got} vs {mean}");
        assert!(
            close(&g_input, &input, 4.0, f64::EPSILON),
            "w = {w:e}: {g_input} vs {input}"
        );
        assert!(
            close(&g_cost, &cost, 4.0, f64::EPSILON),
            "w = {w:e}: {g_cost} vs {cost}"
        );
    }
}

#[test]
fn unequal_huge_or_tiny_weights_give_the_scaled_weighted_mean() {
    let base = [3.0, 1.0, 7.0, 0.5];
    let (want, input, cost) = weighted_loss::<f64>(Reduction::WeightedMean, Some(&base)).unwrap();
    let want = want.unwrap();
    // Powers of two: the scaled weights are exact, so the shares are the same.
    for scale in [2f64.powi(1020), 2f64.powi(-1070), 2f64.powi(-1000)] {
        let w: Vec<f64> = base.iter().map(|x| x * scale).collect();
        let (got, g_input, g_cost) =
            weighted_loss::<f64>(Reduction::WeightedMean, Some(&w)).unwrap();
        let got = got.unwrap();
        assert!(
            (got - want).abs() <= 8.0 * f64::EPSILON * want.abs(),
            "scale {scale:e}: {got} vs {want}"
        );
        assert!(
            close(&g_input, &input, 8.0, f64::EPSILON),
            "scale {scale:e}"
        );
        assert!(close(&g_cost, &cost, 8.0, f64::EPSILON), "scale {scale:e}");
    }
}

#[test]
fn half_precision_weights_at_the_ends_of_their_range_give_the_plain_mean() {
    let (mean, input, _) = weighted_loss::<f16>(Reduction::Mean, None).unwrap();
    let mean = mean.unwrap();
    // f16's largest finite value and its smallest subnormal; f32's largest.
    for w in [65504.0, 2f64.powi(-24)] {
        let (got, g_input, _) =
            weighted_loss::<f16>(Reduction::WeightedMean, Some(&[w; 4])).unwrap();
        assert_eq!(got.unwrap(), mean, "w = {w:e}");
        assert_eq!(g_input, input, "w = {w:e}");
    }
    let (mean, input, _) = weighted_loss::<f32>(Reduction::Mean, None).unwrap();
    let (got, g_input, _) =
        weighted_loss::<f32>(Reduction::WeightedMean, Some(&[f32::MAX as f64; 4])).unwrap();
    assert_eq!(got.unwrap(), mean.unwrap());
    assert_eq!(g_input, input);
}

#[test]
fn all_zero_weights_give_a_zero_weighted_mean() {
    let (got, g_input, g_cost) =
        weighted_loss::<f64>(Reduction::WeightedMean, Some(&[0.0; 4])).unwrap();
    assert_eq!(got, Some(0.0));
    assert!(g_input.iter().all(|&g| g == 0.0));
    assert!(g_cost.iter().all(|&g| g == 0.0));
}

#[test]
fn a_weighted_sum_beyond_the_output_type_is_an_error_naming_the_weights() {
    // f64: Σ w_b L_b with w = 1e308 is beyond f64::MAX.
    match weighted_loss::<f64>(Reduction::Sum, Some(&[1e308; 4])) {
        Err(Error::Weights { reason }) => assert!(reason.contains("weights"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // f16 weights at their largest still give gradients within f16 (|∂L_b/∂z| < 1) ...
    let (_, g_input, _) = weighted_loss::<f16>(Reduction::Sum, Some(&[65504.0; 4])).unwrap();
    assert!(g_input.iter().all(|g| g.is_finite()), "{g_input}");
    // ... and an upstream gradient that takes w_b ∂L_b/∂z beyond 65504 is an error, not inf.
    let z = array![[1.0, 0.0, -1.0], [0.5, 0.25, 0.0]].mapv(f16::from_f64);
    let (y, w) = (array![0_i64, 2], array![f16::MAX, f16::MAX]);
    let cost = CostMatrix::from_valence_arousal(&[(0.5, 0.5), (-0.5, 0.5), (0.0, -0.5)]).unwrap();
    let mut loss = SinkhornLoss::<f16>::new(cost, 0.1).reduction(Reduction::Sum);
    let batch = Batch::new(Source::Logits(z.view()), Target::labels(y.view())).weights(w.view());
    loss.forward(batch).unwrap();
    match loss.backward(GradOutput::Scalar(f16::from_f64(1024.0))) {
        Err(Error::Weights { reason }) => assert!(reason.contains("weights"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // A weighted sum that fits is the sum (its parts scaled by the largest weight).
    let (one, input, _) = weighted_loss::<f64>(Reduction::Sum, Some(&[1.0; 4])).unwrap();
    let w = 2f64.powi(1000);
    let (big, g_input, _) = weighted_loss::<f64>(Reduction::Sum, Some(&[w; 4])).unwrap();
    assert_eq!(big.unwrap(), one.unwrap() * w);
    assert_eq!(g_input, input.mapv(|g| g * w));
}

// ---------------------------------------------------------------------------------------------
// Costs.

fn names(k: usize) -> ClassSet {
    ClassSet::new((0..k).map(|i| format!("C{i}")).collect()).unwrap()
}

#[test]
fn coincident_annotations_give_a_zero_cost_and_degenerate_pairs() {
    // Classes of 1, 10 and 100 samples, all at (0.3, 0.3): summed naively, their means differ
    // by rounding (0.3, 0.29999999999999993, 0.3000000000000005).
    let counts = [1, 10, 100];
    let labels = Array1::from_iter(
        counts
            .iter()
            .enumerate()
            .flat_map(|(class, &n)| std::iter::repeat_n(class as i64, n)),
    );
    let va = Array2::from_elem((labels.len(), 2), 0.3);
    let (cost, _) = CostMatrix::from_annotations(labels.view(), va.view(), &names(3)).unwrap();
    assert!(cost.view().iter().all(|&c| c == 0.0), "{}", cost.view());
    let report = analyse(&cost, &DegeneracyOptions::default()).unwrap();
    assert_eq!(report.degenerate().count(), 3);
}

#[test]
fn centroids_of_identical_values_are_those_values() {
    for value in [0.3, 0.1, -0.7, 1.0 / 3.0] {
        let labels = Array1::from_iter((0..1000).map(|i| i64::from(i % 7 == 0)));
        let va = Array2::from_elem((1000, 2), value);
        let c = class_centroids(labels.view(), va.view(), &names(2)).unwrap();
        assert_eq!(c.positions, [(value, value), (value, value)]);
    }
}

#[test]
fn positions_near_f64_max_give_the_scaled_cost() {
    let small = [(0.1, 0.2), (-0.5, 0.4), (0.8, -0.9)];
    let reference = CostMatrix::from_valence_arousal(&small).unwrap();
    let huge: Vec<(f64, f64)> = small
        .iter()
        .map(|&(v, a)| (v * 1.7e308, a * 1.7e308))
        .collect();
    let cost = CostMatrix::from_valence_arousal(&huge).unwrap();
    for (g, w) in cost.view().iter().zip(reference.view()) {
        assert!(
            (g - w).abs() < 1e-12,
            "{} vs {}",
            cost.view(),
            reference.view()
        );
    }
}

#[test]
fn degeneracy_of_costs_near_f64_max_is_that_of_the_scaled_cost() {
    let small = array![[0.0, 1.0, 0.9], [1.0, 0.0, 0.8], [0.9, 0.8, 0.0]];
    let big = &small * 1.7e308;
    let reference = analyse(&CostMatrix::new(small.view()).unwrap(), &Default::default()).unwrap();
    let report = analyse(&CostMatrix::new(big.view()).unwrap(), &Default::default()).unwrap();
    assert_eq!(reference.degenerate().count(), 0);
    assert_eq!(report.degenerate().count(), 0);
    for (p, r) in report.pairs.iter().zip(&reference.pairs) {
        assert!((p.distance - r.distance).abs() < 1e-12, "{p:?} vs {r:?}");
        assert!(
            (p.separation - r.separation).abs() < 1e-12,
            "{p:?} vs {r:?}"
        );
        assert!(p.cost.is_finite());
    }
}

// ---------------------------------------------------------------------------------------------
// Results beyond the element type.

/// A 3-problem, 8-class batch of probabilities against labels.
fn outputs_case<E: Element>() -> (CostMatrix, Array2<E>, Array1<i64>) {
    let cost = CostMatrix::preset(circot::Preset::AffectNet8, circot::CostKind::Circumplex);
    // Rows are shifts of (1, 1, 2, 4, 1, 1, 2, 4)/16: exact in every element type, summing to 1.
    let pattern = [1.0, 1.0, 2.0, 4.0];
    let p = Array2::from_shape_fn((3, 8), |(b, j)| E::from_f64(pattern[(b + j) % 4] / 16.0));
    (cost, p, array![0_i64, 3, 7])
}

#[test]
fn a_loss_beyond_the_element_type_is_an_error_with_the_value_it_had() {
    use circot::{Backend, Convention, SolveOptions, solve};
    // The entropy convention's loss is about −ε·H(a): −9.2e18·H overflows f16 (65504), so the
    // CLI's fuzzer once got exit 0 and a loss of −inf.
    let options = SolveOptions::new(9.2e18).convention(Convention::Entropy);
    let (cost, p, y) = outputs_case::<f16>();
    for backend in [Backend::Cpu, Backend::Reference] {
        let (source, target) = (Source::Probabilities(p.view()), Target::labels(y.view()));
        let e = solve(&cost, source, target, &options, backend).unwrap_err();
        let Error::OutputRange {
            what, value, dtype, ..
        } = &e
        else {
            panic!("{backend:?}: {e}")
        };
        // The value as computed (f32 or f64), not the inf it would round to.
        assert_eq!((*what, *dtype), ("loss", "f16"), "{e}");
        assert!(value.is_finite() && *value < -65504.0, "{e}");
        assert!(
            e.to_string().contains("cannot be represented in f16"),
            "{e}"
        );
    }
    // The same ε in the KL convention: the loss is bounded by max C, and fits.
    let (cost, p, y) = outputs_case::<f16>();
    let options = SolveOptions::new(9.2e18);
    let kl = solve(
        &cost,
        Source::Probabilities(p.view()),
        Target::labels(y.view()),
        &options,
        Backend::Cpu,
    );
    let kl = kl.unwrap();
    assert!(
        kl.loss
            .iter()
            .all(|l| l.to_f64().is_finite() && l.to_f64() >= 0.0)
    );
}
