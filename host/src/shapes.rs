//! The real layer shapes of ResNet-50, VGG-16 and MobileNetV2 at 224 x 224 (torchvision's
//! architectures), as [`Conv2d`] and [`Gemm`] descriptors at a given batch size. The
//! benchmarks and the GPU self-test draw their real-layer cases from here.
//!
//! * ResNet-50 is v1.5 (torchvision): the stride of each stage's first bottleneck sits on
//!   its 3x3 conv, and the downsample is a strided 1x1.
//! * VGG-16 is configuration "D": thirteen 3x3 pad-1 convs with biases, five max pools,
//!   and the classifier 25088 -> 4096 -> 4096 -> 1000.
//! * MobileNetV2 (width 1.0): stem 3->32 3x3 s2, inverted residual blocks
//!   `t, c, n, s` = `[1,16,1,1] [6,24,2,2] [6,32,3,2] [6,64,4,2] [6,96,3,1] [6,160,3,2]
//!   [6,320,1,1]` (expand 1x1 when t != 1, depthwise 3x3 with the block's stride, project
//!   1x1), head 320->1280 1x1, classifier 1280->1000.
//!
//! The `*_layers` functions list every conv in network order with its torchvision module
//! name; the `*_convs` functions merge identical shapes into `(label, shape, occurrences)`
//! in order of first appearance, the label naming the first occurrence and the shape.

use crate::ops::{Conv2d, Gemm};

/// A unique conv shape: label, shape, how many times the network runs it.
pub type ConvShape = (String, Conv2d, usize);
/// A fully connected layer: label, shape (`Gemm::linear`, with bias), occurrences.
pub type FcShape = (String, Gemm, usize);

/// Square conv `c_in -> c_out`, `k x k`, stride `s`, symmetric padding `p`, on `h x h`.
fn conv(batch: usize, c_in: usize, h: usize, c_out: usize, k: usize, s: usize, p: usize) -> Conv2d {
    Conv2d::new(batch, c_in, h, h, c_out, k, k).with_stride(s, s).with_pad(p, p)
}

/// Short shape description used in labels: `3x3/s2 64->128 @56`, `dw3x3/s1 144 @56`.
pub fn describe(c: &Conv2d) -> String {
    let s = if c.stride_h == c.stride_w { format!("{}", c.stride_h) } else { format!("{}x{}", c.stride_h, c.stride_w) };
    let at = if c.h == c.w { format!("{}", c.h) } else { format!("{}x{}", c.h, c.w) };
    if c.is_depthwise() && c.c_out == c.c_in {
        format!("dw{}x{}/s{s} {} @{at}", c.kh, c.kw, c.c_in)
    } else if c.groups > 1 {
        format!("{}x{}/s{s} {}->{} g{} @{at}", c.kh, c.kw, c.c_in, c.c_out, c.groups)
    } else {
        format!("{}x{}/s{s} {}->{} @{at}", c.kh, c.kw, c.c_in, c.c_out)
    }
}

/// Merges identical shapes, keeping the order and the name of the first occurrence.
fn unique(model: &str, layers: Vec<(String, Conv2d)>) -> Vec<ConvShape> {
    let mut out: Vec<ConvShape> = Vec::new();
    for (name, c) in layers {
        match out.iter_mut().find(|(_, u, _)| *u == c) {
            Some(entry) => entry.2 += 1,
            None => out.push((format!("{model}/{name} {}", describe(&c)), c, 1)),
        }
    }
    out
}

/// Every conv of ResNet-50 in order (53, downsamples included), with torchvision names.
pub fn resnet50_layers(batch: usize) -> Vec<(String, Conv2d)> {
    let mut v = vec![("conv1".to_string(), conv(batch, 3, 224, 64, 7, 2, 3))];
    // conv1 -> 112, max pool 3x3/s2/p1 -> 56.
    let mut h = 56;
    let mut c_in = 64;
    for (stage, &(width, blocks, stride)) in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)].iter().enumerate() {
        for b in 0..blocks {
            let s = if b == 0 { stride } else { 1 };
            let name = |m: &str| format!("layer{}.{b}.{m}", stage + 1);
            let h_out = h / s;
            v.push((name("conv1"), conv(batch, c_in, h, width, 1, 1, 0)));
            v.push((name("conv2"), conv(batch, width, h, width, 3, s, 1)));
            v.push((name("conv3"), conv(batch, width, h_out, 4 * width, 1, 1, 0)));
            if b == 0 {
                v.push((name("downsample"), conv(batch, c_in, h, 4 * width, 1, s, 0)));
            }
            c_in = 4 * width;
            h = h_out;
        }
    }
    v
}

/// ResNet-50's unique conv shapes with occurrence counts.
pub fn resnet50_convs(batch: usize) -> Vec<ConvShape> {
    unique("resnet50", resnet50_layers(batch))
}

/// Every conv of VGG-16 in order (13), with torchvision's `features.N` names.
pub fn vgg16_layers(batch: usize) -> Vec<(String, Conv2d)> {
    // Channels per conv, 0 = 2x2 max pool.
    const CFG: [usize; 18] = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];
    let mut v = Vec::new();
    let (mut h, mut c_in) = (224, 3);
    for (i, &c) in CFG.iter().enumerate() {
        if c == 0 {
            h /= 2;
            continue;
        }
        // torchvision's index in `features` counts the ReLUs and pools too.
        let idx = CFG[..i].iter().map(|&x| if x == 0 { 1 } else { 2 }).sum::<usize>();
        v.push((format!("features.{idx}"), conv(batch, c_in, h, c, 3, 1, 1)));
        c_in = c;
    }
    v
}

/// VGG-16's unique conv shapes with occurrence counts.
pub fn vgg16_convs(batch: usize) -> Vec<ConvShape> {
    unique("vgg16", vgg16_layers(batch))
}

/// Every conv of MobileNetV2 in order (52), with torchvision's `features.N` names.
pub fn mobilenet_v2_layers(batch: usize) -> Vec<(String, Conv2d)> {
    const BLOCKS: [(usize, usize, usize, usize); 7] =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
    let mut v = vec![("features.0".to_string(), conv(batch, 3, 224, 32, 3, 2, 1))];
    let (mut h, mut c_in, mut idx) = (112, 32, 1);
    for &(t, c, n, s) in &BLOCKS {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let hidden = c_in * t;
            if t != 1 {
                v.push((format!("features.{idx}.expand"), conv(batch, c_in, h, hidden, 1, 1, 0)));
            }
            let dw = Conv2d::depthwise(batch, hidden, h, h, 3, 3).with_stride(stride, stride).with_pad(1, 1);
            v.push((format!("features.{idx}.dw"), dw));
            h = (h + 2 - 3) / stride + 1;
            v.push((format!("features.{idx}.project"), conv(batch, hidden, h, c, 1, 1, 0)));
            c_in = c;
            idx += 1;
        }
    }
    v.push((format!("features.{idx}"), conv(batch, c_in, h, 1280, 1, 1, 0)));
    v
}

/// MobileNetV2's unique conv shapes with occurrence counts.
pub fn mobilenet_v2_convs(batch: usize) -> Vec<ConvShape> {
    unique("mobilenet_v2", mobilenet_v2_layers(batch))
}

/// The fully connected layers of the three networks (torchvision Linear: weight
/// `[out, in]`, with bias).
pub fn fc_layers(batch: usize) -> Vec<FcShape> {
    vec![
        ("resnet50/fc 2048->1000".to_string(), Gemm::linear(batch, 2048, 1000, true), 1),
        ("vgg16/classifier.0 25088->4096".to_string(), Gemm::linear(batch, 25088, 4096, true), 1),
        ("vgg16/classifier.3 4096->4096".to_string(), Gemm::linear(batch, 4096, 4096, true), 1),
        ("vgg16/classifier.6 4096->1000".to_string(), Gemm::linear(batch, 4096, 1000, true), 1),
        ("mobilenet_v2/classifier.1 1280->1000".to_string(), Gemm::linear(batch, 1280, 1000, true), 1),
    ]
}

/// Every unique conv shape of the three networks, ResNet-50 first.
pub fn all_convs(batch: usize) -> Vec<ConvShape> {
    let mut v = resnet50_convs(batch);
    v.extend(vgg16_convs(batch));
    v.extend(mobilenet_v2_convs(batch));
    v
}

#[cfg(test)]
mod tests {
    //! The tables are checked against figures computed elsewhere from the real models:
    //! torchvision's published parameter counts (its model cards: the sum of every
    //! tensor of the instantiated module, so independent of how we describe the layers)
    //! and its published GFLOPS column (multiply-accumulates of convs and linears,
    //! rounded to 0.01 G). A wrong channel count, stride, kernel size or a missing layer
    //! moves the parameter sum or the MAC count off those figures.
    use super::*;
    use crate::ops::GemmC;

    fn weights(layers: &[(String, Conv2d)]) -> usize {
        layers.iter().map(|(_, c)| c.weight_len()).sum()
    }
    fn channels(layers: &[(String, Conv2d)]) -> usize {
        layers.iter().map(|(_, c)| c.c_out).sum()
    }
    fn macs(layers: &[(String, Conv2d)]) -> u64 {
        layers.iter().map(|(_, c)| c.macs()).sum()
    }
    fn fc_params(g: &Gemm) -> usize {
        g.n * g.k + if g.c == GemmC::PerColumn { g.n } else { 0 }
    }
    fn fc(prefix: &str) -> Vec<Gemm> {
        fc_layers(1).into_iter().filter(|(l, _, _)| l.starts_with(prefix)).map(|(_, g, _)| g).collect()
    }
    fn close(got: u64, want_g: f64) -> bool {
        // torchvision prints 2 decimals of GMACs: within half a unit of the last digit.
        (got as f64 / 1e9 - want_g).abs() <= 0.005
    }

    #[test]
    fn resnet50_matches_torchvision() {
        let l = resnet50_layers(1);
        for (name, c) in &l {
            c.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // 1 stem + 16 bottlenecks x 3 + 4 downsamples.
        assert_eq!(l.len(), 53);
        // Every conv is bias-free and followed by a BatchNorm (weight + bias = 2 per
        // channel); torchvision's resnet50 has 25,557,032 parameters, fc 2048*1000+1000.
        assert_eq!(weights(&l), 23_454_912);
        let fc = fc("resnet50");
        assert_eq!(weights(&l) + 2 * channels(&l) + fc_params(&fc[0]), 25_557_032);
        // torchvision: 4.09 GFLOPS (MACs), convs + fc.
        let total = macs(&l) + fc.iter().map(|g| (g.m * g.n * g.k) as u64).sum::<u64>();
        assert!(close(total, 4.09), "{total}");
        assert_eq!(macs(&l), 4_087_136_256);
        // Last stage runs at 7x7 and ends with 2048 channels.
        let last = &l.last().unwrap().1;
        assert_eq!((last.c_out, last.out_hw()), (2048, (7, 7)));
        let u = resnet50_convs(1);
        assert_eq!(u.iter().map(|(_, _, n)| n).sum::<usize>(), 53);
        assert_eq!(u.len(), 23);
        // v1.5: the stride sits on the 3x3 of the first bottleneck of layers 2-4.
        let strided: Vec<_> = l.iter().filter(|(_, c)| c.stride_h == 2).map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            strided,
            [
                "conv1",
                "layer2.0.conv2",
                "layer2.0.downsample",
                "layer3.0.conv2",
                "layer3.0.downsample",
                "layer4.0.conv2",
                "layer4.0.downsample"
            ]
        );
    }

    #[test]
    fn vgg16_matches_torchvision() {
        let l = vgg16_layers(1);
        assert_eq!(l.len(), 13);
        // Convs have biases: torchvision's features block holds 14,714,688 parameters,
        // the whole vgg16 138,357,544.
        let conv_params = weights(&l) + channels(&l);
        assert_eq!(conv_params, 14_714_688);
        let fc = fc("vgg16");
        assert_eq!(conv_params + fc.iter().map(fc_params).sum::<usize>(), 138_357_544);
        // torchvision: 15.47 GFLOPS.
        let total = macs(&l) + fc.iter().map(|g| (g.m * g.n * g.k) as u64).sum::<u64>();
        assert!(close(total, 15.47), "{total}");
        // The last conv's output, pooled to 7x7, is the classifier's 25088 inputs.
        let last = &l.last().unwrap().1;
        assert_eq!(last.c_out * (last.out_hw().0 / 2) * (last.out_hw().1 / 2), fc[0].k);
        let u = vgg16_convs(1);
        assert_eq!(u.len(), 9);
        assert_eq!(u.iter().map(|(_, _, n)| n).sum::<usize>(), 13);
        assert_eq!(l[12].0, "features.28");
    }

    #[test]
    fn mobilenet_v2_matches_torchvision() {
        let l = mobilenet_v2_layers(1);
        for (name, c) in &l {
            c.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // Stem + (t=1 block: 2 convs) + 16 blocks x 3 + head.
        assert_eq!(l.len(), 52);
        assert_eq!(l.iter().filter(|(_, c)| c.is_depthwise()).count(), 17);
        // Every conv is bias-free with a BatchNorm; torchvision's mobilenet_v2 has
        // 3,504,872 parameters, classifier 1280*1000+1000.
        let fc = fc("mobilenet_v2");
        assert_eq!(weights(&l) + 2 * channels(&l) + fc_params(&fc[0]), 3_504_872);
        // torchvision: 0.30 GFLOPS (the "300M multiply-adds" of the paper).
        let total = macs(&l) + fc.iter().map(|g| (g.m * g.n * g.k) as u64).sum::<u64>();
        assert!(close(total, 0.30), "{total}");
        let last = &l.last().unwrap().1;
        assert_eq!((last.c_in, last.c_out, last.out_hw()), (320, 1280, (7, 7)));
        assert_eq!(l.last().unwrap().0, "features.18");
    }

    #[test]
    fn batch_scales_shapes_and_labels_name_first_occurrence() {
        for (a, b) in resnet50_convs(1).iter().zip(resnet50_convs(8)) {
            assert_eq!(a.1.macs() * 8, b.1.macs());
            assert_eq!(a.0, b.0);
        }
        let u = resnet50_convs(1);
        let (label, c, n) = &u[2];
        assert_eq!(label, "resnet50/layer1.0.conv2 3x3/s1 64->64 @56");
        assert_eq!((c.c_in, c.c_out, *n), (64, 64, 3));
        let dw = mobilenet_v2_convs(1);
        assert!(dw.iter().any(|(l, _, _)| l == "mobilenet_v2/features.4.dw dw3x3/s2 144 @56"), "{dw:#?}");
        assert_eq!(all_convs(1).len(), u.len() + vgg16_convs(1).len() + dw.len());
        assert_eq!(fc_layers(4)[1].1.m, 4);
    }
}
