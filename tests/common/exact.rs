//! A tiny exact OT solver (min-cost flow by successive shortest paths with Bellman-Ford), the
//! oracle for the ε → 0 limit. For K ≤ 8 it takes at most 2K augmentations.

use ndarray::{Array1, Array2};

/// `min ⟨P, C⟩` over plans with marginals `a`, `b` (each summing to 1).
pub fn exact_ot(cost: &Array2<f64>, a: &Array1<f64>, b: &Array1<f64>) -> f64 {
    let k = a.len();
    let mut supply = a.to_vec();
    let mut demand = b.to_vec();
    let mut flow = Array2::<f64>::zeros((k, k));
    // Residual graph on 2K nodes: i -> K + j always open (cost C_ij), K + j -> i open while
    // flow[i][j] > 0 (cost −C_ij). Each augmentation exhausts a supply, a demand or a flow.
    for _ in 0..8 * k * k {
        if supply.iter().sum::<f64>() <= 1e-14 {
            break;
        }
        let n = 2 * k;
        let mut dist = vec![f64::INFINITY; n];
        let mut prev = vec![usize::MAX; n];
        for i in 0..k {
            if supply[i] > 1e-15 {
                dist[i] = 0.0;
            }
        }
        for _ in 0..n {
            for i in 0..k {
                for j in 0..k {
                    if dist[i] + cost[[i, j]] < dist[k + j] - 1e-15 {
                        dist[k + j] = dist[i] + cost[[i, j]];
                        prev[k + j] = i;
                    }
                    if flow[[i, j]] > 1e-15 && dist[k + j] - cost[[i, j]] < dist[i] - 1e-15 {
                        dist[i] = dist[k + j] - cost[[i, j]];
                        prev[i] = k + j;
                    }
                }
            }
        }
        let end = (0..k)
            .filter(|&j| demand[j] > 1e-15 && dist[k + j].is_finite())
            .min_by(|&x, &y| dist[k + x].total_cmp(&dist[k + y]))
            .expect("a path to unmet demand");
        // Walk back to find the path and its bottleneck.
        let mut path = vec![k + end];
        while prev[*path.last().unwrap()] != usize::MAX {
            path.push(prev[*path.last().unwrap()]);
        }
        path.reverse();
        let start = path[0];
        let mut amount = supply[start].min(demand[end]);
        for w in path.windows(2) {
            if w[0] >= k {
                amount = amount.min(flow[[w[1], w[0] - k]]);
            }
        }
        for w in path.windows(2) {
            if w[0] < k {
                flow[[w[0], w[1] - k]] += amount;
            } else {
                flow[[w[1], w[0] - k]] -= amount;
            }
        }
        supply[start] -= amount;
        demand[end] -= amount;
    }
    (&flow * cost).sum()
}
