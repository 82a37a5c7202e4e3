//! Paired tests: affect.md's exact n = 5 vectors, values cross-checked against scipy, and the
//! defining properties (p ∈ [0, 1], symmetry, one-sided mirror, normal ≈ exact at n = 20).
//!
//! Exact p-values are dyadic rationals (counts over 2^n) that the f64 dynamic programme and the
//! subset sums represent exactly, so they are compared to 1e-12. Normal approximations go
//! through `erfc`, accurate to ~1e-13 relative, so scipy's values are matched to 1e-9 relative.

use circot::StudyError;
use circot::stats::{
    Alternative, Method, PairedOptions, TestResult, ZeroMethod, sign_flip, wilcoxon,
};

const ALTERNATIVES: [Alternative; 3] = [
    Alternative::TwoSided,
    Alternative::Greater,
    Alternative::Less,
];

fn opts(alternative: Alternative) -> PairedOptions {
    PairedOptions::default().alternative(alternative)
}

fn zeros(n: usize) -> Vec<f64> {
    vec![0.0; n]
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (tolerance {tol})"
    );
}

/// splitmix64: seeded data without depending on a generator crate's stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn sample(&mut self, n: usize, shift: f64) -> Vec<f64> {
        (0..n).map(|_| self.next() - 0.5 + shift).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// affect.md: p = 0.625 two-sided (20/32) and p = 0.03125 one-sided (1/32) on 5 paired seeds.

#[test]
fn five_seeds_two_sided_is_20_of_32() {
    // Differences 1, 2, 3, 4, −5: T⁺ = 10, P(T⁺ ≥ 10) = 10/32, doubled = 20/32. The sign-flip
    // sum 5 is matched or exceeded in |S| by 20 of the 32 patterns too.
    let d = [1.0, 2.0, 3.0, 4.0, -5.0];
    let w = wilcoxon(&d, &zeros(5), &PairedOptions::default()).unwrap();
    assert!(w.exact);
    assert_eq!(w.statistic, 10.0);
    close(w.p_value, 20.0 / 32.0, 1e-12, "wilcoxon");
    let s = sign_flip(&d, &zeros(5), &PairedOptions::default()).unwrap();
    assert!(s.exact);
    assert_eq!(s.statistic, 1.0);
    close(s.p_value, 20.0 / 32.0, 1e-12, "sign flip");
}

#[test]
fn five_seeds_all_better_is_1_of_32_one_sided() {
    let x = [0.71, 0.69, 0.73, 0.70, 0.72];
    let y = [0.65, 0.66, 0.64, 0.68, 0.61];
    for test in [wilcoxon, sign_flip] {
        let greater = test(&x, &y, &opts(Alternative::Greater)).unwrap();
        close(greater.p_value, 1.0 / 32.0, 1e-12, "greater");
        let two_sided = test(&x, &y, &opts(Alternative::TwoSided)).unwrap();
        close(two_sided.p_value, 2.0 / 32.0, 1e-12, "two-sided");
        let less = test(&x, &y, &opts(Alternative::Less)).unwrap();
        close(less.p_value, 1.0, 1e-12, "less");
    }
}

#[test]
fn five_seeds_scipy_exact() {
    // scipy 1.17.1: wilcoxon(x, y, alternative=…, method="exact").pvalue
    let x = [0.61, 0.63, 0.60, 0.64, 0.62];
    let y = [0.60, 0.61, 0.57, 0.60, 0.67];
    for (alternative, want) in ALTERNATIVES.into_iter().zip([0.625, 0.3125, 0.78125]) {
        let r = wilcoxon(&x, &y, &opts(alternative)).unwrap();
        close(r.p_value, want, 1e-12, alternative.name());
    }
}

// ---------------------------------------------------------------------------------------------
// Ties and zeros, cross-checked against scipy 1.17.1.

/// Differences 0.25·[2, 0, 2, −1, 3, 3, 2, −1, 4, −2]: a zero, and ties at |d| = 0.25, 0.5,
/// 0.75 (dyadic, so the ties are exact in f64).
fn tied() -> (Vec<f64>, Vec<f64>) {
    let d = [2.0, 0.0, 2.0, -1.0, 3.0, 3.0, 2.0, -1.0, 4.0, -2.0];
    (d.iter().map(|v| 0.5 + 0.25 * v).collect(), vec![0.5; 10])
}

#[test]
fn ties_and_zeros_match_scipy() {
    let (x, y) = tied();
    // Exact: scipy.stats.permutation_test((d,), T⁺ with zeros dropped and mid-ranks,
    //   permutation_type="samples", n_resamples=inf) — every sign pattern.
    let exact = [0.0859375, 0.04296875, 0.96875];
    // Normal: scipy.stats.wilcoxon(x, y, method="approx", correction=True) (zero_method wilcox).
    let approx = [
        0.08253120178277823,
        0.041265600891389115,
        0.9682676227597187,
    ];
    // Sign flip: permutation_test((d,), np.mean, permutation_type="samples", n_resamples=inf).
    let flip = [0.12890625, 0.064453125, 0.96484375];
    // Pratt, normal: scipy.stats.wilcoxon(..., zero_method="pratt", method="approx",
    //   correction=True).
    let pratt = [0.09978385485027878, 0.04989192742513939, 0.9598347201308405];
    for (i, alternative) in ALTERNATIVES.into_iter().enumerate() {
        let name = alternative.name();
        let o = opts(alternative);
        let e = wilcoxon(&x, &y, &o.method(Method::Exact)).unwrap();
        assert_eq!((e.statistic, e.n, e.n_used), (37.5, 10, 9));
        close(e.p_value, exact[i], 1e-12, name);
        let a = wilcoxon(&x, &y, &o.method(Method::Normal)).unwrap();
        assert!(!a.exact);
        close(a.p_value, approx[i], 1e-9 * approx[i], name);
        let s = sign_flip(&x, &y, &o).unwrap();
        close(s.p_value, flip[i], 1e-12, name);
        let p = wilcoxon(
            &x,
            &y,
            &o.method(Method::Normal).zero_method(ZeroMethod::Pratt),
        )
        .unwrap();
        close(p.p_value, pratt[i], 1e-9 * pratt[i], name);
    }
}

// ---------------------------------------------------------------------------------------------
// n = 20 (no ties) and n = 12 sign flip, against scipy 1.17.1.

/// `np.round(np.random.default_rng(20261122).normal(0.3, 1.0, 20), 3)`.
const D20: [f64; 20] = [
    0.185, 1.849, 1.269, 0.523, -1.119, -1.613, 1.487, 1.125, -1.695, 0.925, -2.088, 1.297, 1.003,
    1.266, -0.143, 0.99, 0.038, -1.111, 0.848, 0.779,
];

#[test]
fn twenty_pairs_match_scipy_exact_and_normal() {
    // scipy.stats.wilcoxon(D20, alternative=…, method="exact" / "approx", correction=True).
    let exact = [0.3299827575683594, 0.1649913787841797, 0.8441028594970703];
    let approx = [0.32250868262079535, 0.16125434131039768, 0.847706976232375];
    for (i, alternative) in ALTERNATIVES.into_iter().enumerate() {
        let o = opts(alternative);
        let auto = wilcoxon(&D20, &zeros(20), &o).unwrap();
        assert!(auto.exact, "n = 20 is exact by default");
        assert_eq!(auto.statistic, 132.0);
        close(auto.p_value, exact[i], 1e-12, alternative.name());
        let normal = wilcoxon(&D20, &zeros(20), &o.method(Method::Normal)).unwrap();
        close(
            normal.p_value,
            approx[i],
            1e-9 * approx[i],
            alternative.name(),
        );
        // The normal approximation is within 0.01 of the exact value at n = 20 (here 0.0075
        // at most): the continuity-corrected error is O(1/n).
        close(normal.p_value, auto.p_value, 0.01, "normal vs exact");
    }
}

#[test]
fn sign_flip_twelve_pairs_matches_scipy() {
    // Next 12 draws of the same generator, normal(0.2, 1.0), rounded to 3 digits;
    // scipy.stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=inf).
    let d = [
        0.371, 0.455, -0.407, 0.21, -0.119, -0.796, -0.677, 0.137, -1.865, 0.014, 1.574, 1.698,
    ];
    let want = [0.87353515625, 0.436767578125, 0.564208984375];
    for (alternative, want) in ALTERNATIVES.into_iter().zip(want) {
        let r = sign_flip(&d, &zeros(12), &opts(alternative)).unwrap();
        close(r.p_value, want, 1e-12, alternative.name());
    }
}

#[test]
fn sign_flip_normal_is_close_to_exact_at_twenty() {
    for alternative in ALTERNATIVES {
        let o = opts(alternative);
        let exact = sign_flip(&D20, &zeros(20), &o.method(Method::Exact)).unwrap();
        let normal = sign_flip(&D20, &zeros(20), &o.method(Method::Normal)).unwrap();
        close(normal.p_value, exact.p_value, 0.02, alternative.name());
    }
}

// ---------------------------------------------------------------------------------------------
// Properties on seeded data.

fn both(x: &[f64], y: &[f64], o: &PairedOptions) -> [TestResult; 2] {
    [wilcoxon(x, y, o).unwrap(), sign_flip(x, y, o).unwrap()]
}

#[test]
fn p_values_lie_in_unit_interval_and_mirror() {
    let mut rng = Rng(5);
    for n in [1, 2, 3, 5, 8, 13, 20, 24, 35, 60] {
        for shift in [0.0, 0.2, -0.4] {
            let x = rng.sample(n, shift);
            let y = rng.sample(n, 0.0);
            for method in [Method::Auto, Method::Normal] {
                let o = PairedOptions::default().method(method);
                let two_xy = both(&x, &y, &o);
                let two_yx = both(&y, &x, &o);
                let greater_xy = both(&x, &y, &o.alternative(Alternative::Greater));
                let less_xy = both(&x, &y, &o.alternative(Alternative::Less));
                let less_yx = both(&y, &x, &o.alternative(Alternative::Less));
                for t in 0..2 {
                    for r in [&two_xy[t], &greater_xy[t], &less_xy[t]] {
                        assert!((0.0..=1.0).contains(&r.p_value), "n = {n}: {r:?}");
                    }
                    close(
                        two_xy[t].p_value,
                        two_yx[t].p_value,
                        1e-12,
                        "two-sided symmetry",
                    );
                    close(greater_xy[t].p_value, less_yx[t].p_value, 1e-12, "mirror");
                    // Both null distributions are symmetric: two-sided = min(1, 2·min(one-sided)).
                    let doubled = (2.0 * greater_xy[t].p_value.min(less_xy[t].p_value)).min(1.0);
                    close(two_xy[t].p_value, doubled, 1e-12, "two-sided vs one-sided");
                }
            }
        }
    }
}

#[test]
fn auto_switches_to_normal_beyond_the_exact_range() {
    let mut rng = Rng(11);
    let (x, y) = (rng.sample(60, 0.1), rng.sample(60, 0.0));
    let w = wilcoxon(&x, &y, &PairedOptions::default()).unwrap();
    assert!(!w.exact && w.method.contains("normal"), "{}", w.method);
    let s = sign_flip(&x, &y, &PairedOptions::default()).unwrap();
    assert!(!s.exact && s.method.contains("normal"), "{}", s.method);
    let (x, y) = (&x[..25], &y[..25]);
    assert!(sign_flip(x, y, &PairedOptions::default()).unwrap().exact);
    assert!(wilcoxon(x, y, &PairedOptions::default()).unwrap().exact);
}

#[test]
fn all_zero_differences_give_p_one() {
    let x = [0.3, 0.4, 0.5];
    for alternative in ALTERNATIVES {
        for r in both(&x, &x, &opts(alternative)) {
            assert_eq!(r.p_value, 1.0, "{r:?}");
        }
    }
}

#[test]
fn bad_input_is_rejected_by_name() {
    let o = PairedOptions::default();
    assert!(matches!(
        wilcoxon(&[1.0, 2.0], &[1.0], &o),
        Err(StudyError::Shape { what: "y", .. })
    ));
    assert!(matches!(
        sign_flip(&[], &[], &o),
        Err(StudyError::NoValidSamples { .. })
    ));
    let e = wilcoxon(&[1.0, f64::NAN], &[0.0, 0.0], &o).unwrap_err();
    assert_eq!(e.to_string(), "x[1] = NaN is not finite");
    let e = sign_flip(&[1.0, 2.0], &[0.0, f64::INFINITY], &o).unwrap_err();
    assert_eq!(e.to_string(), "y[1] = inf is not finite");
    let big = vec![1.0; 41];
    let e = sign_flip(&big, &zeros(41), &o.method(Method::Exact)).unwrap_err();
    assert!(
        matches!(e, StudyError::ExactTooLarge { n: 41, max: 40, .. }),
        "{e}"
    );
}
