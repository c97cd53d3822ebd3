//! Self-test cases for the NHWC f16/bf16 depthwise conv (`launch::depthwise`): every
//! kernel path (3×3 stride 1 with 4 outputs per thread, 3×3 stride 2 with 2, the generic
//! vector path, the scalar path for `c % 8 != 0`) on odd channel counts (3, 12, 13),
//! `c = 8k`, 1×1 maps, output widths that leave partial pixel groups, 7×7 and 112×112
//! maps, strides 1/2/3 and mixed, dilation 2 (both axes, vertical only, horizontal only),
//! 1×1 / 5×5 / 3×5 windows, asymmetric padding, batch 1/2/3, every epilogue combination,
//! and MobileNetV2's real depthwise layers at batch 1 and 8 (f16 and bf16) and 64 (f16).
//!
//! Per case: fresh random inputs rounded to the kernel's type, the output poisoned with
//! NaN bits (0x7e00 f16, 0x7fc0 bf16) plus a poisoned guard of [`GUARD`] elements past its
//! end that must stay untouched, the f64 CPU reference (`reference::conv2d`, NHWC, on the
//! rounded inputs), and two checks on every element: relative L2 ≤ 1e-2 (as the other
//! f16/bf16 cases) and, so that a few wrong elements cannot hide in a large tensor,
//! `|out − ref| ≤ 4·u·|ref| + 1e-3·rms(ref)` per element (`u` = the type's unit
//! roundoff, 2^-11 f16 / 2^-8 bf16: f32 accumulation leaves the output's one rounding as
//! the only sizeable error).

use cudarc::driver::CudaSlice;

use super::buf::{download, upload};
use super::{compare, epi_name, shape_name, CaseFn};
use crate::error::Error;
use crate::gpu::Gpu;
use crate::launch::depthwise::{self as dw, path};
use crate::launch::tensorcore::ConvOperands;
use crate::ops::{Act, Conv2d, DType, Epilogue, Layout};
use crate::reference::{self, random_uniform, random_uniform_in, EpilogueArgs};
use crate::shapes;

/// Poisoned elements after the output that the kernel must not write.
const GUARD: usize = 64;
/// Relative L2 tolerance of the 16-bit cases.
const TOL: f64 = 1e-2;

const BIAS_RELU6: Epilogue = Epilogue { bias: true, scale_shift: false, act: Act::RELU6, residual: false };
const BN_RELU6: Epilogue = Epilogue { bias: false, scale_shift: true, act: Act::RELU6, residual: false };
const BN_RES_RELU: Epilogue = Epilogue { bias: false, scale_shift: true, act: Act::Relu, residual: true };
const PLAIN: Epilogue = Epilogue::NONE;

fn kernel_name(dtype: DType) -> &'static str {
    if dtype == DType::F16 {
        "f16"
    } else {
        "bf16"
    }
}

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

fn bad(e: impl ToString) -> Error {
    Error::Invalid(e.to_string())
}

fn sub_seed(seed: u64, i: u64) -> u64 {
    seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

pub(super) fn cases(v: &mut Vec<(String, CaseFn)>) {
    let dwc = Conv2d::depthwise;
    let shapes = [
        // Scalar path (c % 8 != 0).
        ("c13 scalar", dwc(2, 13, 9, 7, 3, 3).with_pad(1, 1), BIAS_RELU6),
        ("c12 scalar s2", dwc(1, 12, 11, 10, 3, 3).with_stride(2, 2).with_pad(1, 1), BN_RES_RELU),
        ("c3 scalar k5 asym", dwc(3, 3, 6, 8, 5, 5).with_stride(1, 2).with_pads(2, 0, 1, 3), BIAS_RELU6),
        ("c13 scalar 1x1 map", dwc(2, 13, 1, 1, 3, 3).with_pad(1, 1), BN_RELU6),
        // 3x3 stride-1 path: partial pixel groups (out_w % 4 = 3, 2, 1), 1x1 and 7x7 maps,
        // vertical stride/dilation, no padding.
        ("c24 s1 w11", dwc(2, 24, 9, 11, 3, 3).with_pad(1, 1), BN_RES_RELU),
        ("c16 s1 w6", dwc(1, 16, 5, 6, 3, 3).with_pad(1, 1), BIAS_RELU6),
        ("c8 s1 w5", dwc(3, 8, 4, 5, 3, 3).with_pad(1, 1), PLAIN),
        ("c8 s1 1x1 map", dwc(2, 8, 1, 1, 3, 3).with_pad(1, 1), BN_RELU6),
        ("c32 s1 7x7", dwc(3, 32, 7, 7, 3, 3).with_pad(1, 1), BN_RES_RELU),
        ("c16 s1 pad0", dwc(1, 16, 10, 13, 3, 3), BIAS_RELU6),
        ("c24 s2x1 (vertical stride)", dwc(2, 24, 11, 9, 3, 3).with_stride(2, 1).with_pad(1, 1), BN_RELU6),
        ("c16 dil2x1 (vertical dilation)", dwc(1, 16, 12, 10, 3, 3).with_dilation(2, 1).with_pads(2, 1, 2, 1), PLAIN),
        ("c32 s1 112x112", dwc(1, 32, 112, 112, 3, 3).with_pad(1, 1), BN_RELU6),
        // 3x3 stride-2 path: odd and even inputs, out_w odd (partial group), asymmetric pad.
        ("c40 s2 13x13", dwc(1, 40, 13, 13, 3, 3).with_stride(2, 2).with_pad(1, 1), BIAS_RELU6),
        ("c24 s2 asym", dwc(2, 24, 12, 10, 3, 3).with_stride(2, 2).with_pads(0, 1, 1, 0), BN_RES_RELU),
        ("c16 s2 w2 (one output column)", dwc(1, 16, 2, 2, 3, 3).with_stride(2, 2).with_pad(1, 1), BN_RELU6),
        ("c96 s2 112x112", dwc(1, 96, 112, 112, 3, 3).with_stride(2, 2).with_pad(1, 1), BN_RELU6),
        // Generic vector path.
        ("c16 dil2", dwc(1, 16, 12, 12, 3, 3).with_dilation(2, 2).with_pad(2, 2), BIAS_RELU6),
        ("c16 dil1x2 (horizontal dilation)", dwc(2, 16, 9, 12, 3, 3).with_dilation(1, 2).with_pad(1, 2), BN_RELU6),
        ("c24 k5", dwc(2, 24, 10, 9, 5, 5).with_pad(2, 2), BN_RES_RELU),
        ("c8 k3x5 s1x2", dwc(1, 8, 9, 14, 3, 5).with_stride(1, 2).with_pads(1, 2, 0, 1), BIAS_RELU6),
        ("c16 s3", dwc(2, 16, 14, 13, 3, 3).with_stride(3, 3).with_pad(1, 1), BN_RELU6),
        ("c32 k1", dwc(2, 32, 5, 7, 1, 1), BIAS_RELU6),
    ];
    for dtype in [DType::F16, DType::BF16] {
        for (label, c, epi) in shapes {
            push(v, dtype, label, c, epi);
        }
    }
    // Every epilogue combination on the 3x3 s1 path and on the scalar path.
    for dtype in [DType::F16, DType::BF16] {
        for (label, c) in [
            ("s1", dwc(2, 16, 6, 7, 3, 3).with_pad(1, 1)),
            ("scalar", dwc(1, 13, 5, 6, 3, 3).with_stride(2, 2).with_pad(1, 1)),
        ] {
            v.push((
                format!("depthwise/conv {} epilogue {label}: all 40 combinations", kernel_name(dtype)),
                Box::new(move |gpu, seed| epilogue_combos(gpu, dtype, &c, seed)),
            ));
        }
    }
    // MobileNetV2's depthwise layers (folded BN + ReLU6, as the executor runs them).
    let real = |batch: usize| {
        shapes::mobilenet_v2_convs(batch).into_iter().filter(|(_, c, _)| c.is_depthwise()).collect::<Vec<_>>()
    };
    for (dtype, batch) in [(DType::F16, 1), (DType::BF16, 1), (DType::F16, 8), (DType::BF16, 8), (DType::F16, 64)] {
        for (label, c, _) in real(batch) {
            push(v, dtype, &format!("real {label}"), c, BN_RELU6);
        }
    }
}

fn push(v: &mut Vec<(String, CaseFn)>, dtype: DType, label: &str, c: Conv2d, epi: Epilogue) {
    let name = format!("depthwise/conv {} {label} {} {}", kernel_name(dtype), shape_name(&c), epi_name(&epi));
    v.push((name, Box::new(move |gpu, seed| run(gpu, dtype, &c, &epi, seed).map(|(s, _)| s))));
}

/// Inputs of one case, already rounded to what the GPU sees.
struct Data {
    x: Vec<f32>,
    w_oihw: Vec<f32>,
    bias: Option<Vec<f32>>,
    scale: Option<Vec<f32>>,
    shift: Option<Vec<f32>>,
    residual: Option<Vec<f32>>,
}

fn data(dtype: DType, c: &Conv2d, epi: &Epilogue, seed: u64) -> Data {
    let round = |v: Vec<f32>| reference::round_through(dtype, &v);
    Data {
        x: round(random_uniform(c.in_len(), sub_seed(seed, 0))),
        w_oihw: round(random_uniform(c.weight_len(), sub_seed(seed, 1))),
        bias: epi.bias.then(|| random_uniform(c.c_out, sub_seed(seed, 2))),
        scale: epi.scale_shift.then(|| random_uniform_in(c.c_out, sub_seed(seed, 3), 0.5, 1.5)),
        shift: epi.scale_shift.then(|| random_uniform(c.c_out, sub_seed(seed, 4))),
        residual: epi.residual.then(|| round(random_uniform(c.out_len(), sub_seed(seed, 5)))),
    }
}

/// Per-element bound (see the module docs); returns the largest `|out − ref|` relative to
/// the element's bound, or the first element over it.
fn check_elements(dtype: DType, out: &[f32], want: &[f64]) -> Result<f64, String> {
    let u = if dtype == DType::F16 { 2f64.powi(-11) } else { 2f64.powi(-8) };
    let rms = (want.iter().map(|r| r * r).sum::<f64>() / want.len().max(1) as f64).sqrt();
    let atol = 1e-3 * rms.max(1e-30);
    let mut worst = 0f64;
    for (i, (&o, &r)) in out.iter().zip(want).enumerate() {
        let bound = 4.0 * u * r.abs() + atol;
        let d = (o as f64 - r).abs();
        if d.is_nan() || d > bound {
            return Err(format!("element {i}: got {o}, want {r} (|diff| {d:.3e} > bound {bound:.3e})"));
        }
        worst = worst.max(d / bound);
    }
    Ok(worst)
}

/// Runs one case: `(summary, rel_l2)`.
fn run(gpu: &Gpu, dtype: DType, c: &Conv2d, epi: &Epilogue, seed: u64) -> Result<(String, f64), Error> {
    let d = data(dtype, c, epi, seed);
    let w_hwc = dw::dw_weights_hwc(c, &d.w_oihw, dtype)?;
    let up_f32 = |v: &Option<Vec<f32>>| v.as_ref().map(|v| upload(gpu, v)).transpose();
    let xd = upload(gpu, &encode(dtype, &d.x))?;
    let wd = upload(gpu, &w_hwc)?;
    let (bd, sd, hd) = (up_f32(&d.bias)?, up_f32(&d.scale)?, up_f32(&d.shift)?);
    let rd = d.residual.as_ref().map(|r| upload(gpu, &encode(dtype, r))).transpose()?;
    let n_out = c.out_len();
    let mut yd: CudaSlice<u16> = upload(gpu, &vec![poison(dtype); n_out + GUARD])?;
    let ops = ConvOperands {
        x: xd.as_view(),
        w: wd.as_view(),
        bias: bd.as_ref().map(|b| b.as_view()),
        scale: sd.as_ref().map(|b| b.as_view()),
        shift: hd.as_ref().map(|b| b.as_view()),
        residual: rd.as_ref().map(|b| b.as_view()),
    };
    let l = dw::conv2d(gpu, dtype, c, epi.act, &ops, &mut yd.slice_mut(0..n_out))?;
    let raw = download(gpu, &yd)?;
    if let Some(i) = raw[n_out..].iter().position(|&b| b != poison(dtype)) {
        return Err(bad(format!("wrote past the output: guard element {i} is {:#06x}", raw[n_out + i])));
    }
    let out = decode(dtype, &raw[..n_out]);
    let args = EpilogueArgs {
        bias: d.bias.as_deref(),
        scale: d.scale.as_deref(),
        shift: d.shift.as_deref(),
        residual: d.residual.as_deref(),
        act: epi.act,
    };
    let want = reference::conv2d(c, Layout::Nhwc, &d.x, &d.w_oihw, &args).map_err(bad)?;
    let rel = compare(&out, &want, TOL).map_err(Error::Invalid)?;
    let worst = check_elements(dtype, &out, &want).map_err(Error::Invalid)?;
    Ok((
        format!("rel_l2={rel:.1e} worst/bound={worst:.2} {} path={:?} grid={}", l.symbol, path(c), l.cfg.grid_dim.0),
        rel,
    ))
}

fn epilogue_combos(gpu: &Gpu, dtype: DType, c: &Conv2d, seed: u64) -> Result<String, Error> {
    let mut worst = 0f64;
    let mut n = 0;
    for bits in 0..8u32 {
        for act in [Act::None, Act::Relu, Act::RELU6, Act::Sigmoid, Act::Tanh] {
            let epi = Epilogue { bias: bits & 1 != 0, scale_shift: bits & 2 != 0, act, residual: bits & 4 != 0 };
            let (_, rel) = run(gpu, dtype, c, &epi, sub_seed(seed, n))
                .map_err(|e| Error::Invalid(format!("{}: {e}", epi_name(&epi))))?;
            worst = worst.max(rel);
            n += 1;
        }
    }
    Ok(format!("{n} combinations, worst rel_l2={worst:.1e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_cover_every_path_and_the_real_layers() {
        let mut v: Vec<(String, CaseFn)> = Vec::new();
        cases(&mut v);
        let names: Vec<&str> = v.iter().map(|(n, _)| n.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate case names");
        assert!(names.iter().all(|n| n.starts_with("depthwise/")));
        // MobileNetV2 has 17 depthwise layers; the unique shapes per batch appear once.
        let real_b1 = shapes::mobilenet_v2_convs(1).into_iter().filter(|(_, c, _)| c.is_depthwise()).count();
        assert!(real_b1 >= 9);
        assert_eq!(names.iter().filter(|n| n.contains("real") && n.contains(" n64 ")).count(), real_b1);
    }

    #[test]
    fn element_check_catches_one_wrong_element() {
        let want: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut out: Vec<f32> = want.iter().map(|&r| half::f16::from_f64(r).to_f32()).collect();
        assert!(check_elements(DType::F16, &out, &want).is_ok());
        // One element off by a missing tap's worth: L2 barely notices, the element check does.
        out[500] += 0.05;
        assert!(compare(&out, &want, TOL).is_ok());
        assert!(check_elements(DType::F16, &out, &want).is_err());
    }
}
