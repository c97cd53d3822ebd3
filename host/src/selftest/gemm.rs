//! Self-test cases for the fp32 SIMT GEMM kernels: odd sizes with every transpose
//! combination, alpha/beta with a full C, bias + activations, tile edges, the gemv paths
//! (16-byte and scalar, 1..8 and more rows), and the fully connected layers of ResNet-50,
//! VGG-16 and MobileNetV2 (from [`crate::shapes`]).

use super::buf::{download, poisoned_f32, upload};
use super::{compare, CaseFn};
use crate::error::Error;
use crate::gpu::Gpu;
use crate::launch::gemm::{self as lg, GemmOperands, GEMM, GEMV};
use crate::ops::{Act, Gemm, GemmC};
use crate::reference::{self, random_uniform};
use crate::registry::KernelSpec;
use crate::shapes;

const TOL: f64 = 1e-5;

fn act_name(a: Act) -> &'static str {
    match a {
        Act::None => "",
        Act::Relu => " relu",
        Act::Clip { .. } => " relu6",
        Act::Sigmoid => " sigmoid",
        Act::Tanh => " tanh",
    }
}

fn push(v: &mut Vec<(String, CaseFn)>, spec: &'static KernelSpec, label: &str, g: Gemm, act: Act) {
    let c = match g.c {
        GemmC::None => String::new(),
        GemmC::PerColumn => " +bias".into(),
        _ => format!(" +{}*C", g.beta),
    };
    let name = format!(
        "gemm/{} {label} {}x{}x{} {}{}{}{}{}",
        spec.variant,
        g.m,
        g.n,
        g.k,
        if g.trans_a { "T" } else { "N" },
        if g.trans_b { "T" } else { "N" },
        if g.alpha != 1.0 { format!(" alpha={}", g.alpha) } else { String::new() },
        c,
        act_name(act)
    );
    v.push((name, Box::new(move |gpu, seed| run(gpu, spec, &g, act, seed))));
}

pub(super) fn cases(v: &mut Vec<(String, CaseFn)>) {
    // Odd sizes, every transpose combination; then tile edges in both directions.
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        push(v, &GEMM, "odd", Gemm::new(37, 61, 45).with_trans(ta, tb), Act::None);
        push(v, &GEMM, "edges", Gemm::new(200, 300, 129).with_trans(ta, tb), Act::None);
    }
    push(v, &GEMM, "tiny", Gemm::new(1, 1, 1), Act::None);
    push(v, &GEMM, "k-lt-8", Gemm::new(130, 7, 3), Act::None);
    // alpha/beta with a full C, in both transpose cases of A.
    for ta in [false, true] {
        let g = Gemm::new(37, 61, 45).with_trans(ta, false).with_scalars(0.75, -1.25).with_c(GemmC::Full);
        push(v, &GEMM, "alpha-beta", g, Act::None);
    }
    let g = Gemm::new(64, 132, 16).with_scalars(2.0, 0.5).with_c(GemmC::Full);
    push(v, &GEMM, "alpha-beta-vec", g, Act::Relu);
    // Bias + activations (Linear layers).
    for act in [Act::None, Act::Relu, Act::RELU6, Act::Sigmoid, Act::Tanh] {
        push(v, &GEMM, "linear", Gemm::linear(5, 45, 61, true), act);
    }
    push(v, &GEMM, "linear-b130", Gemm::linear(130, 96, 260, true), Act::Relu);

    // gemv: vector path (k % 4 == 0) and scalar path, 1..8 rows and more than 8.
    for (m, k, n) in [(1, 2048, 1000), (1, 45, 61), (3, 128, 37), (5, 4, 1001), (8, 132, 64), (11, 36, 50), (13, 9, 7)]
    {
        push(v, &GEMV, "gemv", Gemm::linear(m, k, n, true), Act::Relu);
    }
    push(v, &GEMV, "gemv-no-bias", Gemm::linear(2, 64, 33, false), Act::None);
    push(v, &GEMV, "gemv-full-c", Gemm::linear(2, 64, 33, false).with_c(GemmC::Full).with_scalars(0.5, 2.0), Act::None);

    // The networks' fully connected layers at batch 1 (default variant = gemv) and 8
    // (both variants), plus ResNet-50's at batch 4 on the tiled kernel.
    for (label, g, _) in shapes::fc_layers(1) {
        push(v, lg::pick_default(&g), &format!("real {label}"), g, Act::Relu);
    }
    for (label, g, _) in shapes::fc_layers(8) {
        if label.starts_with("vgg16/classifier.0") || label.starts_with("resnet50") {
            push(v, &GEMM, &format!("real {label}"), g, Act::Relu);
            push(v, &GEMV, &format!("real {label}"), g, Act::Relu);
        }
    }
    push(v, &GEMM, "real resnet50/fc", Gemm::linear(4, 2048, 1000, true), Act::None);
}

fn run(gpu: &Gpu, spec: &KernelSpec, g: &Gemm, act: Act, seed: u64) -> Result<String, Error> {
    let a = random_uniform(g.a_len(), seed);
    let b = random_uniform(g.b_len(), seed.wrapping_add(1));
    let c = (g.c != GemmC::None).then(|| random_uniform(g.c_len(), seed.wrapping_add(2)));
    let (ad, bd) = (upload(gpu, &a)?, upload(gpu, &b)?);
    let bias = match (&c, g.c) {
        (Some(c), GemmC::PerColumn) => Some(upload(gpu, c)?),
        _ => None,
    };
    // A full C is read and overwritten in place; otherwise the output starts poisoned.
    let mut cd = match (&c, g.c) {
        (Some(c), GemmC::Full) => upload(gpu, c)?,
        _ => poisoned_f32(gpu, g.out_len())?,
    };
    let ops = GemmOperands { a: ad.as_view(), b: bd.as_view(), bias: bias.as_ref().map(|b| b.as_view()) };
    let cfg = lg::launch(gpu, spec, g, act, &ops, &mut cd.as_view_mut())?;
    let out = download(gpu, &cd)?;
    let mut want = reference::gemm(g, &a, &b, c.as_deref()).map_err(|e| Error::Invalid(e.to_string()))?;
    for y in &mut want {
        *y = act.apply(*y);
    }
    let rel = compare(&out, &want, TOL).map_err(Error::Invalid)?;
    Ok(format!("rel_l2={rel:.1e} grid={:?}", cfg.grid_dim))
}

#[cfg(test)]
mod tests {
    #[test]
    fn case_names_are_unique() {
        let mut v = Vec::new();
        super::cases(&mut v);
        let mut names: Vec<&str> = v.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.iter().any(|n| n.starts_with("gemm/gemv real vgg16/classifier.0 25088->4096 1x4096x25088 NT")));
        let len = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), len, "duplicate case names");
    }
}

#[cfg(test)]
mod throughput {
    use super::*;
    use crate::selftest::conv::probe;

    /// See [`probe`]: `cargo test -p cnnergy-host --release -- --ignored --nocapture throughput`.
    #[test]
    #[ignore]
    fn throughput_gemm() {
        let gpu = probe::open();
        let mut shapes: Vec<(String, Gemm)> = Vec::new();
        for batch in [1, 8, 64] {
            shapes.extend(shapes::fc_layers(batch).into_iter().map(|(l, g, _)| (format!("b{batch} {l}"), g)));
        }
        for n in [1024, 4096] {
            shapes.push((format!("square {n}"), Gemm::new(n, n, n)));
        }
        for (label, g) in shapes {
            let a = upload(&gpu, &vec![0.5f32; g.a_len()]).unwrap();
            let b = upload(&gpu, &vec![0.25f32; g.b_len()]).unwrap();
            let bias = (g.c == GemmC::PerColumn).then(|| upload(&gpu, &vec![0.1f32; g.n]).unwrap());
            let mut c = poisoned_f32(&gpu, g.out_len()).unwrap();
            for spec in lg::KERNELS.iter().filter(|s| lg::check_supported(s, &g).is_ok()) {
                let ops = GemmOperands { a: a.as_view(), b: b.as_view(), bias: bias.as_ref().map(|b| b.as_view()) };
                let s = probe::time(&gpu, || {
                    lg::launch(&gpu, spec, &g, Act::Relu, &ops, &mut c.as_view_mut()).unwrap();
                });
                println!(
                    "{label:<44} {:<6} {:>9.1} us {:>7.2} TFLOP/s {:>7.0} GB/s",
                    spec.variant,
                    s * 1e6,
                    g.flops() as f64 / s / 1e12,
                    g.bytes_moved(4) as f64 / s / 1e9
                );
            }
        }
    }
}
