//! Weight data for a graph: real values (from an ONNX file) or deterministic seeded values
//! (the built-in models), looked up by the weight's name ([`crate::graph::Weight::name`]).
//!
//! # Seeded values
//! [`Weights::seeded`] and [`seeded_input`] make a run reproducible from one number, the
//! CLI's `--seed`: it drives both the weights and the input image. Every weight tensor
//! gets its own stream, keyed by `(seed, weight name)` (the name is hashed into the seed
//! with FNV-1a, then mixed with SplitMix64), so a tensor's values depend neither on the
//! graph's node order nor on which other weights exist, and the same model built at two
//! batch sizes gets the same weights. The generator is SplitMix64 written out here (not
//! `rand`'s `StdRng`, whose algorithm may change between releases), so the values are the
//! same on every platform and toolchain.
//!
//! Distributions, by [`WeightRole`]:
//! * conv / linear kernels: uniform in ±√3/√fan_in (variance 1/fan_in, "LeCun uniform"),
//!   fan_in = `in_channels/groups · kh · kw` or `in_features`. PyTorch's default bound,
//!   1/√fan_in, shrinks the signal about 6× in energy per conv + ReLU, so through VGG-16
//!   or SqueezeNet the biases drown the input: their logits then move by ~1e-6 (relative
//!   L2) when the input changes, which would make every end-to-end check blind to the
//!   early layers. With √3 the activations stay O(1) in all six models (largest |value|
//!   under 10 at 32×32) and the logits move by 1–30% with the input;
//! * biases: uniform in ±1/√fan_in of the node's kernel (PyTorch's default);
//! * batch-norm gamma U(0.5, 1.5), beta U(−0.1, 0.1), running mean U(−0.1, 0.1), running
//!   variance U(0.5, 1.5): an inference BN that is not the identity, so folding it is
//!   actually tested; an absorbed BN's epilogue scale / shift (graphs after
//!   [`crate::rewrite`]) get the gamma / beta ranges.
//!
//! The input is uniform in [−1, 1].

use std::collections::HashMap;
use std::sync::Arc;

use crate::graph::{Dims, Graph, WeightRole};

/// Weight tensors by name. Cheap to clone (values are shared).
#[derive(Clone, Debug, Default)]
pub struct Weights {
    map: HashMap<String, Arc<Vec<f32>>>,
}

impl Weights {
    /// Weights given by value, e.g. an ONNX file's initializers.
    pub fn from_map(map: HashMap<String, Vec<f32>>) -> Weights {
        Weights { map: map.into_iter().map(|(k, v)| (k, Arc::new(v))).collect() }
    }

    /// Deterministic values for every weight of every node of `graph`, from `seed` and
    /// the weight's name (see the module docs for the distributions).
    pub fn seeded(graph: &Graph, seed: u64) -> Weights {
        let mut out = Weights::default();
        for node in &graph.nodes {
            // Bounds from the node's kernel's fan-in (1 without a kernel).
            let fan_in = node.weight(WeightRole::Kernel).map_or(1, |k| k.shape.iter().skip(1).product::<usize>());
            let bias = 1.0 / (fan_in.max(1) as f64).sqrt();
            let kernel = 3f64.sqrt() * bias;
            for w in &node.weights {
                let (lo, hi) = match w.role {
                    WeightRole::Kernel => (-kernel, kernel),
                    WeightRole::Bias => (-bias, bias),
                    WeightRole::BnGamma | WeightRole::BnVar | WeightRole::Scale => (0.5, 1.5),
                    WeightRole::BnBeta | WeightRole::BnMean | WeightRole::Shift => (-0.1, 0.1),
                };
                out.insert(w.name.clone(), uniform(w.len(), stream_seed(seed, &w.name), lo, hi));
            }
        }
        out
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Vec<f32>>> {
        self.map.get(name)
    }

    pub fn insert(&mut self, name: impl Into<String>, data: Vec<f32>) {
        self.map.insert(name.into(), Arc::new(data));
    }

    /// Inserts values shared with another [`Weights`] (no copy).
    pub fn insert_shared(&mut self, name: impl Into<String>, data: Arc<Vec<f32>>) {
        self.map.insert(name.into(), data);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

/// An input tensor of logical dims `dims`, uniform in [−1, 1], reproducible from `seed`
/// (the same `--seed` as the weights; its stream is keyed apart from every weight's).
pub fn seeded_input(dims: Dims, seed: u64) -> Vec<f32> {
    uniform(dims.iter().product(), stream_seed(seed, "\0input"), -1.0, 1.0)
}

/// FNV-1a 64 of `name`, mixed into `seed`.
fn stream_seed(seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix64(&mut (seed ^ h.rotate_left(17)))
}

/// SplitMix64 (Steele, Lea, Flood 2014): advances `state`, returns the next output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `len` values uniform in [lo, hi]: 53 random bits per value, mapped in f64, rounded
/// to f32 (so the bounds hold after rounding too).
fn uniform(len: usize, seed: u64, lo: f64, hi: f64) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            let u = (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
            (lo + (hi - lo) * u) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_known_values() {
        // Reference outputs of SplitMix64 from state 0 (Vigna's splitmix64.c).
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(&mut s), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn uniform_is_in_range_and_spread() {
        let v = uniform(10_000, 3, -0.25, 0.25);
        assert!(v.iter().all(|x| (-0.25..=0.25).contains(x)));
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!(v.iter().any(|&x| x > 0.2) && v.iter().any(|&x| x < -0.2));
        let i = seeded_input([1, 3, 8, 8], 1);
        assert_eq!(i.len(), 192);
        assert!(i.iter().all(|x| (-1.0..=1.0).contains(x)));
    }
}
