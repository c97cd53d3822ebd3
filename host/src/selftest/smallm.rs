//! Self-test cases for the small-batch GEMM (`launch::smallm`, kernels `gemm_smallm_*`):
//! `m` = 1, 2, 3, 5, 6, 7, 8; `k` not a multiple of 8 (element loads: dense rows, and a
//! partial last chunk after aligned ones when the pitches are padded), not a multiple of
//! the 32-element slice, `k` = 1; odd `n`, `n < 16`, `n` not a multiple of 16; padded
//! `lda`/`ldb`/`ldc` and an unaligned `lda`; `alpha`/`beta`; bias on/off; no activation,
//! ReLU, ReLU6, sigmoid, tanh; every warp count 1..=16 (the cross-warp reduction); the
//! dispatch of `gemm_fc` at m = 8 and 9; the AlexNet / VGG-16 classifier layers at
//! m = 1 and 8, timed against the tensor-core path (`gemm_auto`).
//!
//! Two kinds of data. *exact*: integers (inputs in [-2, 2], bias in [-8, 8], old C in
//! [-4, 4]), so every sum is an exactly representable f32 in any order and the expected
//! output is bitwise `round(act(alpha·Σ + bias + beta·c))` — a dropped, doubled or
//! misplaced product or output fails (ReLU/ReLU6 only, alpha and beta exact). *random*:
//! uniform [-1, 1] rounded to the input type, f64 reference, relative L2 ≤ 2e-3 (f16)
//! or 1e-2 (bf16) — the output rounding alone is ~2e-4 / ~1.6e-3.
//!
//! Every case: C poisoned (NaN bits) when `beta = 0`, a poisoned guard of 64 elements
//! after C, padding columns (`ldc > n`) checked untouched, every element checked.

use cudarc::driver::CudaSlice;
use rand::{Rng, SeedableRng};

use super::buf::{download, upload};
use super::{compare, CaseFn};
use crate::error::Error;
use crate::gpu::Gpu;
use crate::launch::smallm;
use crate::launch::tensorcore::{self as tc, GemmTc, Launched};
use crate::ops::{Act, DType};
use crate::reference::{self, random_uniform};

/// Elements after C that must stay poisoned.
const GUARD: usize = 64;

fn poison(dtype: DType) -> u16 {
    if dtype == DType::F16 {
        0x7e00
    } else {
        0x7fc0
    }
}

fn encode(dtype: DType, x: &[f32]) -> Vec<u16> {
    if dtype == DType::F16 {
        reference::f32_to_f16_bits(x)
    } else {
        reference::f32_to_bf16_bits(x)
    }
}

fn decode(dtype: DType, x: &[u16]) -> Vec<f32> {
    if dtype == DType::F16 {
        reference::f16_bits_to_f32(x)
    } else {
        reference::bf16_bits_to_f32(x)
    }
}

fn tol(dtype: DType) -> f64 {
    if dtype == DType::F16 {
        2e-3
    } else {
        1e-2
    }
}

fn bad(msg: String) -> Error {
    Error::Invalid(msg)
}

fn sub_seed(seed: u64, i: u64) -> u64 {
    seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Integers uniform in [-r, r] as f32.
fn random_ints(len: usize, seed: u64, r: i32) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-r..=r) as f32).collect()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Data {
    Exact,
    Random,
}

/// Which launcher a case goes through.
#[derive(Clone, Copy, Debug, PartialEq)]
enum How {
    /// `smallm::gemm_smallm` (the launch rule's warp count).
    Rule,
    /// `smallm::gemm_smallm_with` with this many warps per block.
    Warps(usize),
    /// `smallm::gemm_fc`, expecting this kernel family (`true`: smallm).
    Fc(bool),
    /// `smallm::gemm_smallm`, then both it and `tc::gemm_auto` timed.
    Timed,
}

fn act_name(act: Act) -> &'static str {
    match act {
        Act::None => "",
        Act::Relu => " relu",
        Act::Clip { .. } => " relu6",
        Act::Sigmoid => " sigmoid",
        Act::Tanh => " tanh",
    }
}

fn push(v: &mut Vec<(String, CaseFn)>, dtype: DType, label: &str, g: GemmTc, bias: bool, data: Data, how: How) {
    let dt = if dtype == DType::F16 { "f16" } else { "bf16" };
    let how_s = match how {
        How::Warps(w) => format!("warps{w} "),
        How::Fc(_) => "fc ".into(),
        _ => String::new(),
    };
    let name = format!(
        "smallm/{dt} {how_s}{label} {}x{}x{}{}{} {}",
        g.m,
        g.n,
        g.k,
        if bias { " +bias" } else { "" },
        act_name(g.act),
        if data == Data::Exact { "exact" } else { "random" }
    );
    v.push((name, Box::new(move |gpu, seed| run(gpu, dtype, &g, bias, data, how, seed))));
}

pub(super) fn cases(v: &mut Vec<(String, CaseFn)>) {
    let relu = Act::Relu;
    // (label, shape, bias); exact cases need an exact activation.
    let shapes = [
        ("m1 k%8!=0", GemmTc::new(1, 37, 45).with_act(relu), true),
        ("m2", GemmTc::new(2, 61, 64), false),
        ("m3 k%32!=0", GemmTc::new(3, 33, 200).with_act(relu), true),
        ("m8 n-odd", GemmTc::new(8, 129, 1000).with_act(relu), true),
        ("m8 n-odd nobias", GemmTc::new(8, 129, 1000), false),
        ("m5 k%8!=0 dense", GemmTc::new(5, 31, 1003), true),
        ("m4 k%8!=0 padded-ld (vector + element tail)", GemmTc::new(4, 19, 1003).with_ld(1008, 1016, 24), true),
        ("m6 lda%8!=0", GemmTc::new(6, 20, 64).with_ld(66, 64, 20).with_act(relu), true),
        (
            "m6 alpha/beta ld-padded",
            GemmTc::new(6, 40, 264).with_ld(272, 280, 41).with_scalars(2.0, 0.5).with_act(Act::RELU6),
            true,
        ),
        ("m7 beta=-1", GemmTc::new(7, 24, 512).with_scalars(1.0, -1.0), false),
        ("m8 n=1", GemmTc::new(8, 1, 8), true),
        ("m1 k=1", GemmTc::new(1, 3, 1), true),
        ("m2 n=16 k=4096", GemmTc::new(2, 16, 4096).with_act(relu), true),
    ];
    for dtype in [DType::F16, DType::BF16] {
        for (label, g, bias) in shapes {
            push(v, dtype, label, g, bias, Data::Exact, How::Rule);
            push(v, dtype, label, g, bias, Data::Random, How::Rule);
        }
    }
    // Transcendental epilogues (random data only).
    for (label, g) in [
        ("m2 sigmoid", GemmTc::new(2, 50, 300).with_act(Act::Sigmoid)),
        ("m3 tanh", GemmTc::new(3, 50, 300).with_scalars(0.5, 0.0).with_act(Act::Tanh)),
    ] {
        push(v, DType::F16, label, g, true, Data::Random, How::Rule);
    }
    // Every warp count: 5 x 37 x 2000 has 63 slices, so 16 warps still see full steps
    // and leftovers.
    let sweep = GemmTc::new(5, 37, 2000).with_act(relu);
    for w in 1..=smallm::MAX_WARPS {
        push(v, DType::F16, "sweep", sweep, true, Data::Exact, How::Warps(w));
    }
    push(v, DType::BF16, "sweep", sweep, true, Data::Exact, How::Warps(3));
    // gemm_fc: m = 8 takes this kernel, m = 9 the tensor-core GEMM.
    push(v, DType::F16, "dispatch", GemmTc::new(8, 1000, 2048), true, Data::Exact, How::Fc(true));
    push(v, DType::F16, "dispatch", GemmTc::new(9, 1000, 2048), true, Data::Exact, How::Fc(false));
    // The classifier layers (AlexNet fc6/fc7/fc8; VGG-16 fc6, fc7 = AlexNet fc7).
    let real = [
        ("alexnet.fc6", 4096, 9216, relu),
        ("alexnet.fc7", 4096, 4096, relu),
        ("alexnet.fc8", 1000, 4096, Act::None),
        ("vgg16.fc6", 4096, 25088, relu),
    ];
    for (label, n, k, act) in real {
        for m in [1, 8] {
            let g = GemmTc::new(m, n, k).with_act(act);
            push(v, DType::F16, &format!("real {label}"), g, true, Data::Exact, How::Rule);
            push(v, DType::F16, &format!("real {label}"), g, true, Data::Random, How::Timed);
        }
    }
    for m in [1, 8] {
        push(
            v,
            DType::BF16,
            "real vgg16.fc6",
            GemmTc::new(m, 4096, 25088).with_act(relu),
            true,
            Data::Random,
            How::Rule,
        );
    }
}

/// Inputs of one case, as the f32 values the GPU sees.
struct Inputs {
    a: Vec<f32>,
    b: Vec<f32>,
    bias: Option<Vec<f32>>,
    /// C's initial contents (all elements, `lc`), only when `beta != 0`.
    c0: Option<Vec<f32>>,
}

fn inputs(dtype: DType, g: &GemmTc, with_bias: bool, data: Data, seed: u64) -> Inputs {
    let (la, lb, lc) = g.lens();
    match data {
        Data::Exact => Inputs {
            a: random_ints(la, sub_seed(seed, 0), 2),
            b: random_ints(lb, sub_seed(seed, 1), 2),
            bias: with_bias.then(|| random_ints(g.n, sub_seed(seed, 2), 8)),
            c0: (g.beta != 0.0).then(|| random_ints(lc, sub_seed(seed, 3), 4)),
        },
        Data::Random => {
            let round = |v: Vec<f32>| reference::round_through(dtype, &v);
            Inputs {
                a: round(random_uniform(la, sub_seed(seed, 0))),
                b: round(random_uniform(lb, sub_seed(seed, 1))),
                bias: with_bias.then(|| random_uniform(g.n, sub_seed(seed, 2))),
                c0: (g.beta != 0.0).then(|| round(random_uniform(lc, sub_seed(seed, 3)))),
            }
        }
    }
}

/// f64 reference of output `(i, j)`.
fn reference_at(g: &GemmTc, d: &Inputs, i: usize, j: usize) -> f64 {
    let (ar, br) = (&d.a[i * g.lda..i * g.lda + g.k], &d.b[j * g.ldb..j * g.ldb + g.k]);
    let dot: f64 = ar.iter().zip(br).map(|(&x, &w)| x as f64 * w as f64).sum();
    let mut v = g.alpha as f64 * dot;
    if let Some(bias) = &d.bias {
        v += bias[j] as f64;
    }
    if let Some(c0) = &d.c0 {
        v += g.beta as f64 * c0[i * g.ldc + j] as f64;
    }
    g.act.apply(v)
}

fn run(gpu: &Gpu, dtype: DType, g: &GemmTc, with_bias: bool, data: Data, how: How, seed: u64) -> Result<String, Error> {
    let (_, _, lc) = g.lens();
    let d = inputs(dtype, g, with_bias, data, seed);
    let mut c_init: Vec<u16> = match &d.c0 {
        Some(c0) => encode(dtype, c0),
        None => vec![poison(dtype); lc],
    };
    c_init.extend(std::iter::repeat_n(poison(dtype), GUARD));
    let ad = upload(gpu, &encode(dtype, &d.a))?;
    let bd = upload(gpu, &encode(dtype, &d.b))?;
    let biasd = d.bias.as_ref().map(|v| upload(gpu, v)).transpose()?;
    let mut cd: CudaSlice<u16> = upload(gpu, &c_init)?;
    let (av, bv) = (ad.as_view(), bd.as_view());
    let biasv = biasd.as_ref().map(|b| b.as_view());
    let l: Launched = match how {
        How::Rule | How::Timed => smallm::gemm_smallm(gpu, dtype, g, &av, &bv, biasv.as_ref(), &mut cd.as_view_mut())?,
        How::Warps(w) => smallm::gemm_smallm_with(gpu, dtype, g, w, &av, &bv, biasv.as_ref(), &mut cd.as_view_mut())?,
        How::Fc(_) => {
            let ws_len = smallm::fc_workspace_len(dtype, g, gpu.info.sm_count).unwrap_or(0);
            let mut ws = super::buf::poisoned_f32(gpu, ws_len.max(1))?;
            let mut wsv = ws.as_view_mut();
            let ws_opt = (ws_len > 0).then_some(&mut wsv);
            smallm::gemm_fc(gpu, dtype, g, &av, &bv, biasv.as_ref(), ws_opt, &mut cd.as_view_mut())?
        }
    };
    if let How::Fc(want_smallm) = how {
        if l.symbol.starts_with("gemm_smallm") != want_smallm {
            return Err(bad(format!("gemm_fc launched {} for m = {}", l.symbol, g.m)));
        }
    } else if !l.symbol.starts_with("gemm_smallm") {
        return Err(bad(format!("launched {}", l.symbol)));
    }
    let out = download(gpu, &cd)?;

    // Padding columns and the guard: untouched.
    for (idx, (&o, &c0)) in out.iter().zip(&c_init).enumerate() {
        let (i, j) = (idx / g.ldc, idx % g.ldc);
        let computed = idx < lc && j < g.n;
        if !computed && o != c0 {
            let what = if idx >= lc { "guard element after C" } else { "C padding element" };
            return Err(bad(format!("{what} {idx} (row {i}, column {j}) was written: {o:#06x}")));
        }
    }
    let outf = decode(dtype, &out);
    let mut got = Vec::with_capacity(g.m * g.n);
    let mut want = Vec::with_capacity(g.m * g.n);
    for i in 0..g.m {
        for j in 0..g.n {
            let idx = i * g.ldc + j;
            let r = reference_at(g, &d, i, j);
            if data == Data::Exact {
                let bits = encode(dtype, &[r as f32])[0];
                if out[idx] != bits {
                    return Err(bad(format!(
                        "output ({i}, {j}) = {} ({:#06x}), expected exactly {r} ({bits:#06x})",
                        outf[idx], out[idx]
                    )));
                }
            }
            got.push(outf[idx]);
            want.push(r);
        }
    }
    let detail = if data == Data::Exact {
        "bitwise exact".to_string()
    } else {
        let rel = compare(&got, &want, tol(dtype)).map_err(bad)?;
        format!("rel_l2={rel:.1e}")
    };
    let mut s = format!("{detail} {} grid={} block={}", l.symbol, l.cfg.grid_dim.0, l.cfg.block_dim.0);
    if how == How::Timed {
        s += &timing(gpu, dtype, g, &av, &bv, biasv.as_ref(), &mut cd)?;
    }
    Ok(s)
}

/// Median times of this kernel and of the tensor-core path (`gemm_auto` with the split
/// count of its launch rule) on the same operands, and this kernel's weight bandwidth.
fn timing(
    gpu: &Gpu,
    dtype: DType,
    g: &GemmTc,
    a: &cudarc::driver::CudaView<u16>,
    b: &cudarc::driver::CudaView<u16>,
    bias: Option<&cudarc::driver::CudaView<f32>>,
    c: &mut CudaSlice<u16>,
) -> Result<String, Error> {
    let t_small = crate::bench::time(gpu, 3, 20, 10.0, |_| {
        smallm::gemm_smallm(gpu, dtype, g, a, b, bias, &mut c.as_view_mut()).map(|_| ())
    })?;
    let splits = tc::splitk_splits(dtype, g, gpu.info.sm_count);
    let ws_len = if splits >= 2 { tc::splitk_workspace_len(dtype, g, splits) } else { 1 };
    let mut ws = gpu.stream.alloc_zeros::<f32>(ws_len).map_err(Error::driver("allocating a workspace"))?;
    let mut sym = "";
    let t_tc = crate::bench::time(gpu, 3, 20, 10.0, |_| {
        sym = tc::gemm_auto(gpu, dtype, g, a, b, bias, Some(&mut ws.as_view_mut()), &mut c.as_view_mut())?.symbol;
        Ok(())
    })?;
    let weight_gbs = (g.n * g.k * 2) as f64 / (t_small.median_us * 1e-6) / 1e9;
    Ok(format!(
        " | {:.1} us ({weight_gbs:.0} GB/s weights) vs {sym} {:.1} us: {:.2}x",
        t_small.median_us,
        t_tc.median_us,
        t_tc.median_us / t_small.median_us
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_are_unique_and_cover_the_brief() {
        let mut v = Vec::new();
        cases(&mut v);
        let names: Vec<&str> = v.iter().map(|(n, _)| n.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate case names");
        for m in [1, 2, 3, 8] {
            assert!(names.iter().any(|n| n.starts_with(&format!("smallm/f16 m{m} "))), "m = {m}");
        }
        for w in 1..=16 {
            assert!(names.iter().any(|n| n.starts_with(&format!("smallm/f16 warps{w} "))), "warps {w}");
        }
        for s in
            ["alexnet.fc6 1x4096x9216", "alexnet.fc8 8x1000x4096", "vgg16.fc6 1x4096x25088", "vgg16.fc6 8x4096x25088"]
        {
            assert!(names.iter().any(|n| n.starts_with(&format!("smallm/f16 real {s}"))), "{s}");
        }
        assert!(names.iter().all(|n| n.starts_with("smallm/")));
    }

    #[test]
    fn exact_reference_is_independent_arithmetic() {
        // 1 x 2 x 3 by hand: a = [1, -2, 2], b rows [2, 2, -1] and [0, 1, 1],
        // bias [3, -8], relu: [2 - 4 - 2 + 3, 0 - 2 + 2 - 8] = [-1, -8] -> [0, 0];
        // without relu, alpha 2: [2*(-4) + 3, 2*0 - 8] = [-5, -8].
        let d = Inputs {
            a: vec![1.0, -2.0, 2.0],
            b: vec![2.0, 2.0, -1.0, 0.0, 1.0, 1.0],
            bias: Some(vec![3.0, -8.0]),
            c0: None,
        };
        let g = GemmTc::new(1, 2, 3).with_act(Act::Relu);
        assert_eq!((reference_at(&g, &d, 0, 0), reference_at(&g, &d, 0, 1)), (0.0, 0.0));
        let g = GemmTc::new(1, 2, 3).with_scalars(2.0, 0.0);
        assert_eq!((reference_at(&g, &d, 0, 0), reference_at(&g, &d, 0, 1)), (-5.0, -8.0));
        // beta reads the old C at the output's own (row, column).
        let d = Inputs { c0: Some(vec![10.0, 20.0]), ..d };
        let g = GemmTc::new(1, 2, 3).with_scalars(1.0, -1.0);
        assert_eq!((reference_at(&g, &d, 0, 0), reference_at(&g, &d, 0, 1)), (-4.0 + 3.0 - 10.0, -8.0 - 20.0));
    }

    #[test]
    fn exact_data_is_integer_and_in_range() {
        let v = random_ints(1000, 7, 2);
        assert!(v.iter().all(|&x| x.fract() == 0.0 && (-2.0..=2.0).contains(&x)));
        assert!(v.contains(&-2.0) && v.contains(&2.0));
    }
}
