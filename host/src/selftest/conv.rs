//! Self-test cases for the fp32 SIMT conv kernels: every variant on odd and tile-edge
//! shapes, strides 1/2/3/4, padding 0/1/2 and asymmetric, dilation, groups 1/2/4 and
//! depthwise (with a channel multiplier), kernel sizes 1/3/5/7/11, batch 1 and 4, every
//! epilogue combination, and real ResNet-50 / VGG-16 / MobileNetV2 layers at batch 1
//! (from [`crate::shapes`]).

use super::buf::{download, poisoned_f32, upload};
use super::{compare, epi_name, shape_name, CaseFn};
use crate::error::Error;
use crate::gpu::Gpu;
use crate::launch::conv::{
    self as lc, ConvOperands, DEPTHWISE, DEPTHWISE_3X3S1, DIRECT, IMPLICIT_GEMM, IMPLICIT_GEMM_64, POINTWISE,
    POINTWISE_64,
};
use crate::ops::{Act, Conv2d, Epilogue, Layout};
use crate::reference::{self, random_uniform, random_uniform_in, EpilogueArgs};
use crate::registry::KernelSpec;
use crate::shapes;

const TOL: f64 = 1e-5;

/// Bias + ReLU: the default epilogue of the shape cases (exercises the epilogue path
/// without multiplying the case count).
const BIAS_RELU: Epilogue = Epilogue { bias: true, scale_shift: false, act: Act::Relu, residual: false };
/// ResNet's bottleneck tail: folded BN + residual + ReLU.
const BN_RES_RELU: Epilogue = Epilogue { bias: false, scale_shift: true, act: Act::Relu, residual: true };

fn push(v: &mut Vec<(String, CaseFn)>, spec: &'static KernelSpec, label: &str, conv: Conv2d, epi: Epilogue) {
    let name = format!("conv/{} {label} {} {}", spec.variant, shape_name(&conv), epi_name(&epi));
    v.push((name, Box::new(move |gpu, seed| run(gpu, spec, &conv, &epi, seed))));
}

/// Every variant that supports `conv`.
fn variants(conv: &Conv2d) -> Vec<&'static KernelSpec> {
    lc::KERNELS.iter().filter(|k| lc::check_supported(k, conv).is_ok()).collect()
}

pub(super) fn cases(v: &mut Vec<(String, CaseFn)>) {
    // Shapes for the general variants (direct and implicit_gemm; pointwise and depthwise
    // join in wherever the shape allows).
    let general = [
        ("odd-tiny", Conv2d::new(1, 3, 7, 5, 5, 3, 3)),
        ("odd-tiny-pad", Conv2d::new(1, 3, 7, 5, 5, 3, 3).with_pad(1, 1)),
        ("tile-edges", Conv2d::new(4, 19, 13, 11, 70, 3, 3).with_pad(1, 1)),
        ("tile-edges-b1", Conv2d::new(1, 33, 13, 11, 130, 3, 3).with_pad(1, 1)),
        ("stride2", Conv2d::new(1, 8, 15, 17, 24, 3, 3).with_stride(2, 2).with_pad(1, 1)),
        ("stride3-pad2-k5", Conv2d::new(2, 6, 20, 19, 10, 5, 5).with_stride(3, 3).with_pad(2, 2)),
        ("asym-pad", Conv2d::new(2, 5, 10, 9, 7, 3, 3).with_stride(2, 1).with_pads(0, 1, 2, 0)),
        ("dilation2", Conv2d::new(1, 16, 21, 23, 20, 3, 3).with_dilation(2, 2).with_pad(2, 2)),
        ("mixed-s-d", Conv2d::new(2, 7, 17, 16, 9, 3, 2).with_stride(1, 2).with_dilation(2, 1).with_pads(1, 0, 2, 1)),
        ("groups2", Conv2d::new(2, 8, 9, 10, 12, 3, 3).with_pad(1, 1).with_groups(2)),
        ("groups4-s2", Conv2d::new(4, 32, 14, 14, 64, 3, 3).with_stride(2, 2).with_pad(1, 1).with_groups(4)),
        ("groups-depthwise", Conv2d::depthwise(2, 24, 11, 9, 3, 3).with_pad(1, 1)),
        ("k1", Conv2d::new(2, 37, 13, 11, 45, 1, 1)),
        ("k1-b4-hw49", Conv2d::new(4, 64, 7, 7, 130, 1, 1)),
        ("k1-stride2", Conv2d::new(2, 16, 15, 15, 40, 1, 1).with_stride(2, 2)),
        ("k1-grouped", Conv2d::new(1, 24, 9, 9, 36, 1, 1).with_groups(3)),
        ("k7-s2", Conv2d::new(1, 3, 30, 30, 16, 7, 7).with_stride(2, 2).with_pad(3, 3)),
        ("k11-s4-alexnet", Conv2d::new(1, 3, 224, 224, 64, 11, 11).with_stride(4, 4).with_pad(2, 2)),
        ("k5-b4", Conv2d::new(4, 12, 16, 16, 20, 5, 5).with_pad(2, 2)),
        ("k-taller", Conv2d::new(1, 6, 12, 9, 11, 5, 1).with_pad(2, 0)),
    ];
    for (label, c) in general {
        for spec in variants(&c) {
            push(v, spec, label, c, BIAS_RELU);
        }
    }

    // Depthwise-specific shapes (also run on direct and implicit_gemm).
    let dw = [
        ("dw-s1", Conv2d::depthwise(2, 32, 15, 13, 3, 3).with_pad(1, 1)),
        ("dw-s2", Conv2d::depthwise(1, 48, 17, 16, 3, 3).with_stride(2, 2).with_pad(1, 1)),
        ("dw-s2-asym", Conv2d::depthwise(1, 16, 16, 16, 3, 3).with_stride(2, 2).with_pads(0, 0, 1, 1)),
        ("dw-dil2", Conv2d::depthwise(1, 8, 12, 12, 3, 3).with_dilation(2, 2).with_pad(2, 2)),
        ("dw-k5", Conv2d::depthwise(4, 20, 9, 11, 5, 5).with_pad(2, 2)),
        ("dw-mult2", Conv2d::new(2, 8, 10, 10, 16, 3, 3).with_pad(1, 1).with_groups(8)),
        ("dw-7x7-planes", Conv2d::depthwise(4, 96, 7, 7, 3, 3).with_pad(1, 1)),
        ("dw-s1-nopad-w5", Conv2d::depthwise(2, 10, 9, 5, 3, 3)),
        ("dw-s2-w9-dilh2", Conv2d::depthwise(1, 6, 13, 9, 3, 3).with_stride(2, 2).with_dilation(2, 1).with_pad(2, 1)),
        ("dw-sh2-dilh2", Conv2d::depthwise(1, 6, 13, 9, 3, 3).with_stride(2, 1).with_dilation(2, 1).with_pad(2, 1)),
        ("dw-sx3", Conv2d::depthwise(1, 6, 11, 14, 3, 3).with_stride(1, 3).with_pad(1, 1)),
        ("dw-s2-odd-pads", Conv2d::depthwise(3, 5, 15, 17, 3, 3).with_stride(2, 2).with_pads(2, 0, 0, 2)),
    ];
    for (label, c) in dw {
        for spec in variants(&c) {
            push(v, spec, label, c, BIAS_RELU);
        }
    }

    // Every epilogue combination on every variant (small shapes each variant accepts).
    let per_variant = [
        (&DIRECT, Conv2d::new(2, 6, 9, 7, 10, 3, 3).with_pad(1, 1)),
        (&IMPLICIT_GEMM, Conv2d::new(2, 6, 9, 7, 10, 3, 3).with_pad(1, 1)),
        (&IMPLICIT_GEMM_64, Conv2d::new(2, 6, 9, 7, 10, 3, 3).with_pad(1, 1)),
        (&POINTWISE, Conv2d::new(2, 24, 9, 8, 20, 1, 1)),
        (&POINTWISE_64, Conv2d::new(2, 24, 9, 8, 20, 1, 1)),
        (&DEPTHWISE, Conv2d::depthwise(2, 12, 9, 8, 3, 3).with_pad(1, 1)),
        (&DEPTHWISE_3X3S1, Conv2d::depthwise(2, 12, 9, 7, 3, 3).with_pad(1, 1)),
    ];
    for (spec, c) in per_variant {
        for bits in 0..8u32 {
            for act in [Act::None, Act::Relu, Act::RELU6] {
                let epi = Epilogue { bias: bits & 1 != 0, scale_shift: bits & 2 != 0, act, residual: bits & 4 != 0 };
                push(v, spec, "epilogue", c, epi);
            }
        }
    }
    // The transcendental activations (not used by the three networks, but supported).
    let c = Conv2d::new(2, 6, 9, 7, 10, 3, 3).with_pad(1, 1);
    for act in [Act::Sigmoid, Act::Tanh] {
        push(v, &IMPLICIT_GEMM, "epilogue", c, Epilogue { bias: true, act, ..Epilogue::NONE });
    }

    // Real layers at batch 1, on every variant that supports them.
    let find = |table: Vec<shapes::ConvShape>, pred: &dyn Fn(&Conv2d) -> bool| {
        table.into_iter().find(|(_, c, _)| pred(c)).expect("layer missing from shapes table")
    };
    let real = [
        find(shapes::resnet50_convs(1), &|c| c.kh == 7),
        find(shapes::resnet50_convs(1), &|c| c.kh == 3 && c.c_in == 64 && c.h == 56),
        find(shapes::resnet50_convs(1), &|c| c.kh == 1 && c.c_in == 256 && c.c_out == 64),
        find(shapes::resnet50_convs(1), &|c| c.kh == 3 && c.c_in == 256 && c.stride_h == 2),
        find(shapes::resnet50_convs(1), &|c| c.kh == 1 && c.c_out == 2048 && c.stride_h == 2),
        find(shapes::vgg16_convs(1), &|c| c.c_in == 512 && c.h == 14),
        find(shapes::mobilenet_v2_convs(1), &|c| c.is_depthwise() && c.c_in == 144 && c.stride_h == 2),
        find(shapes::mobilenet_v2_convs(1), &|c| c.kh == 1 && c.c_in == 96 && c.c_out == 576),
        find(shapes::mobilenet_v2_convs(1), &|c| c.kh == 3 && c.c_in == 3),
    ];
    for (label, c, _) in real {
        let epi = if c.is_depthwise() || c.c_in == 3 {
            Epilogue { scale_shift: true, act: Act::RELU6, ..Epilogue::NONE }
        } else if c.kh == 1 && c.c_out > c.c_in {
            BN_RES_RELU
        } else {
            Epilogue { scale_shift: true, act: Act::Relu, ..Epilogue::NONE }
        };
        for spec in variants(&c) {
            push(v, spec, &format!("real {label}"), c, epi);
        }
    }
}

/// Seeds for the operands of one case, derived from the case seed.
fn sub_seed(seed: u64, i: u64) -> u64 {
    seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn run(gpu: &Gpu, spec: &KernelSpec, conv: &Conv2d, epi: &Epilogue, seed: u64) -> Result<String, Error> {
    let x = random_uniform(conv.in_len(), sub_seed(seed, 0));
    let w = random_uniform(conv.weight_len(), sub_seed(seed, 1));
    let bias = epi.bias.then(|| random_uniform(conv.c_out, sub_seed(seed, 2)));
    let scale = epi.scale_shift.then(|| random_uniform_in(conv.c_out, sub_seed(seed, 3), 0.5, 1.5));
    let shift = epi.scale_shift.then(|| random_uniform(conv.c_out, sub_seed(seed, 4)));
    let residual = epi.residual.then(|| random_uniform(conv.out_len(), sub_seed(seed, 5)));

    let up = |v: &Option<Vec<f32>>| v.as_ref().map(|v| upload(gpu, v)).transpose();
    let (xd, wd) = (upload(gpu, &x)?, upload(gpu, &w)?);
    let (bd, sd, hd, rd) = (up(&bias)?, up(&scale)?, up(&shift)?, up(&residual)?);
    let mut yd = poisoned_f32(gpu, conv.out_len())?;
    let ops = ConvOperands {
        x: xd.as_view(),
        w: wd.as_view(),
        bias: bd.as_ref().map(|b| b.as_view()),
        scale: sd.as_ref().map(|b| b.as_view()),
        shift: hd.as_ref().map(|b| b.as_view()),
        residual: rd.as_ref().map(|b| b.as_view()),
    };
    let cfg = lc::launch(gpu, spec, conv, epi, &ops, &mut yd.as_view_mut())?;
    let out = download(gpu, &yd)?;

    let args = EpilogueArgs {
        bias: bias.as_deref(),
        scale: scale.as_deref(),
        shift: shift.as_deref(),
        residual: residual.as_deref(),
        act: epi.act,
    };
    let want = reference::conv2d(conv, Layout::Nchw, &x, &w, &args).map_err(|e| Error::Invalid(e.to_string()))?;
    let rel = compare(&out, &want, TOL).map_err(Error::Invalid)?;
    Ok(format!("rel_l2={rel:.1e} grid={:?} block={:?}", cfg.grid_dim, cfg.block_dim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_list_covers_every_variant_and_stays_cheap() {
        let mut v = Vec::new();
        cases(&mut v);
        let names: Vec<&str> = v.iter().map(|(n, _)| n.as_str()).collect();
        let all = [
            "direct",
            "implicit_gemm",
            "implicit_gemm_64",
            "pointwise",
            "pointwise_64",
            "depthwise",
            "depthwise_3x3s1",
        ];
        for variant in all {
            let n = names.iter().filter(|n| n.starts_with(&format!("conv/{variant} "))).count();
            assert!(n >= 24, "{variant}: {n} cases");
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate case names");
        assert!(names.iter().any(|n| n.contains("real resnet50/conv1")));
        assert!(names.iter().any(|n| n.starts_with("conv/depthwise real mobilenet_v2/features.4.dw")));
    }

    #[test]
    fn names_are_readable() {
        let c = Conv2d::new(2, 7, 17, 16, 9, 3, 2).with_stride(1, 2).with_dilation(2, 1).with_pads(1, 0, 2, 1);
        assert_eq!(shape_name(&c), "n2 7->9 17x16 k3x2 s1x2 p1,0,2,1 d2x1");
        assert_eq!(epi_name(&BN_RES_RELU), "bn+res+relu");
        assert_eq!(epi_name(&Epilogue::NONE), "plain");
    }
}

/// Manual throughput probe, not part of `cargo test` (needs a GPU and the built PTX):
/// `CNNERGY_PTX_DIR=<dir holding kernels_sm_80.ptx and kernels_sm_90a.ptx> cargo test
/// -p cnnergy-host --release -- --ignored --nocapture throughput`.
#[cfg(test)]
pub(crate) mod probe {
    use std::time::Instant;

    use crate::gpu::Gpu;
    use crate::registry::PtxSet;

    pub fn open() -> Gpu {
        let dir = std::env::var("CNNERGY_PTX_DIR").expect("set CNNERGY_PTX_DIR");
        let read = |n: &str| -> &'static str {
            Box::leak(std::fs::read_to_string(format!("{dir}/kernels_{n}.ptx")).expect("PTX").into_boxed_str())
        };
        Gpu::open(0, PtxSet { sm80: read("sm_80"), sm90a: read("sm_90a") }).expect("GPU")
    }

    /// Seconds per call of `f` (after 2 warm-up calls), synchronised.
    pub fn time(gpu: &Gpu, mut f: impl FnMut()) -> f64 {
        f();
        f();
        gpu.stream.synchronize().unwrap();
        let iters = 10;
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        gpu.stream.synchronize().unwrap();
        t.elapsed().as_secs_f64() / iters as f64
    }
}

#[cfg(test)]
mod throughput {
    use super::*;

    #[test]
    #[ignore]
    fn throughput_conv() {
        let gpu = probe::open();
        println!("{} ({} SMs)", gpu.info.name, gpu.info.sm_count);
        for batch in [1, 8, 32] {
            let mut layers = shapes::resnet50_convs(batch);
            layers.extend(shapes::vgg16_convs(batch).into_iter().skip(4).take(2));
            layers.extend(shapes::mobilenet_v2_convs(batch).into_iter().filter(|(_, c, _)| c.h == 56 || c.h == 14));
            for (label, c, _) in layers {
                let x = upload(&gpu, &vec![0.5f32; c.in_len()]).unwrap();
                let w = upload(&gpu, &vec![0.25f32; c.weight_len()]).unwrap();
                let mut y = poisoned_f32(&gpu, c.out_len()).unwrap();
                let epi = BIAS_RELU;
                let b = upload(&gpu, &vec![0.1f32; c.c_out]).unwrap();
                for spec in variants(&c).into_iter().filter(|s| s.variant != "direct" || c.macs() < 2e9 as u64) {
                    let ops = ConvOperands {
                        x: x.as_view(),
                        w: w.as_view(),
                        bias: Some(b.as_view()),
                        scale: None,
                        shift: None,
                        residual: None,
                    };
                    let s = probe::time(&gpu, || {
                        lc::launch(&gpu, spec, &c, &epi, &ops, &mut y.as_view_mut()).unwrap();
                    });
                    let gbs = c.bytes_moved(4) as f64 / s / 1e9;
                    println!(
                        "b{batch:<3} {label:<48} {:<14} {:>9.1} us {:>7.2} TFLOP/s {:>7.0} GB/s",
                        spec.variant,
                        s * 1e6,
                        c.flops() as f64 / s / 1e12,
                        gbs
                    );
                }
            }
        }
    }
}
