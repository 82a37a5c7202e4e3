//! Hostile values that used to give NaN or a silently wrong answer: magnitudes near f64::MAX
//! (and subnormal ones) in the paired tests and the CCC.

use circot::metrics::ccc;
use circot::stats::{Alternative, Method, PairedOptions, sign_flip, wilcoxon};

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
