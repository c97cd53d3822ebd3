//! The six built-in CNNs, as torchvision defines them (weights=None), at 224×224
//! ([`build`]), or at another square input size for tests ([`build_with_input`]).
//!
//! Each builder follows torchvision's module structure and names layers after its
//! `state_dict` keys (`layer1.0.conv1`, `features.3`, ...), so traces and ONNX exports of
//! the same model line up. Parameter counts are checked in tests against torchvision's
//! published figures.

use crate::graph::{Builder, Graph, TensorId};
use crate::ops::{Act, Conv2d, OpError, Pool2d};

/// Built-in model names, in listing order.
pub const NAMES: &[&str] = &["alexnet", "vgg16", "resnet50", "googlenet", "mobilenet_v2", "squeezenet1_0"];

/// Builds a built-in model at `batch`, 224×224 input; `None` for an unknown name.
pub fn build(name: &str, batch: usize) -> Option<Result<Graph, OpError>> {
    build_with_input(name, batch, INPUT)
}

/// Builds a built-in model at `batch` with an `hw`×`hw` input (so tests can run whole
/// networks on small images); `None` for an unknown name, an error when a layer does not
/// fit. Smallest sizes that build: alexnet 63, vgg16 32, resnet50 1, googlenet 31,
/// mobilenet_v2 1, squeezenet1_0 29 (checked in the tests below).
///
/// Only 224 is torchvision's model: AlexNet's and VGG's `AdaptiveAvgPool2d` is the
/// identity there and stays an identity at other sizes, so their first linear layer's
/// `in_features` follows the input size.
pub fn build_with_input(name: &str, batch: usize, hw: usize) -> Option<Result<Graph, OpError>> {
    Some(match name {
        "alexnet" => alexnet_at(batch, hw),
        "vgg16" => vgg16_at(batch, hw),
        "resnet50" => resnet50_at(batch, hw),
        "googlenet" => googlenet_at(batch, hw),
        "mobilenet_v2" | "mobilenetv2" => mobilenet_v2_at(batch, hw),
        "squeezenet1_0" | "squeezenet" => squeezenet1_0_at(batch, hw),
        _ => return None,
    })
}

/// Kernel geometry only; the builder fills in the input dimensions.
fn k(kh: usize, stride: usize, pad: usize) -> Conv2d {
    Conv2d::new(0, 0, 0, 0, 0, kh, kh).with_stride(stride, stride).with_pad(pad, pad)
}

fn max_pool(kh: usize, stride: usize, pad: usize, ceil: bool) -> Pool2d {
    Pool2d::max(0, 0, 0, 0, kh, kh).with_stride(stride, stride).with_pad(pad, pad).with_ceil_mode(ceil)
}

fn global_avg() -> Pool2d {
    Pool2d::global_avg(0, 0, 0, 0)
}

const INPUT: usize = 224;

/// conv (bias) + ReLU, the AlexNet/VGG/SqueezeNet unit.
fn conv_relu(b: &mut Builder, x: TensorId, name: &str, c_out: usize, spec: Conv2d) -> Result<TensorId, OpError> {
    let y = b.conv(x, name, c_out, spec, true)?;
    b.act(y, &format!("{name}.relu"), Act::Relu)
}

/// conv (no bias) + BatchNorm (+ activation): ResNet, GoogLeNet and MobileNetV2's unit.
#[allow(clippy::too_many_arguments)] // mirrors torchvision's (conv, bn) naming pairs
fn conv_bn(
    b: &mut Builder,
    x: TensorId,
    conv: &str,
    bn: &str,
    c_out: usize,
    spec: Conv2d,
    eps: f32,
    act: Act,
) -> Result<TensorId, OpError> {
    let y = b.conv(x, conv, c_out, spec, false)?;
    let y = b.batch_norm(y, bn, eps)?;
    match act {
        Act::None => Ok(y),
        a => b.act(y, &format!("{bn}.act"), a),
    }
}

/// Classifier of linear layers with ReLU and (inference-identity) dropout between them.
fn classifier(
    b: &mut Builder,
    mut x: TensorId,
    prefix: &str,
    layers: &[(usize, usize, bool)],
) -> Result<TensorId, OpError> {
    for &(idx, out, relu) in layers {
        x = b.linear(x, &format!("{prefix}.{idx}"), out, true)?;
        if relu {
            x = b.act(x, &format!("{prefix}.{}", idx + 1), Act::Relu)?;
        }
    }
    Ok(x)
}

pub fn alexnet(batch: usize) -> Result<Graph, OpError> {
    alexnet_at(batch, INPUT)
}

pub fn alexnet_at(batch: usize, hw: usize) -> Result<Graph, OpError> {
    let (mut b, x) = Builder::new("alexnet", [batch, 3, hw, hw]);
    let x = conv_relu(&mut b, x, "features.0", 64, k(11, 4, 2))?;
    let x = b.pool(x, "features.2", max_pool(3, 2, 0, false))?;
    let x = conv_relu(&mut b, x, "features.3", 192, k(5, 1, 2))?;
    let x = b.pool(x, "features.5", max_pool(3, 2, 0, false))?;
    let x = conv_relu(&mut b, x, "features.6", 384, k(3, 1, 1))?;
    let x = conv_relu(&mut b, x, "features.8", 256, k(3, 1, 1))?;
    let x = conv_relu(&mut b, x, "features.10", 256, k(3, 1, 1))?;
    let x = b.pool(x, "features.12", max_pool(3, 2, 0, false))?;
    // AdaptiveAvgPool2d((6, 6)) is the identity on the 6x6 map a 224 input gives.
    let x = b.identity(x, "avgpool");
    let x = b.flatten(x, "flatten");
    let x = b.identity(x, "classifier.0");
    let x = classifier(&mut b, x, "classifier", &[(1, 4096, true)])?;
    let x = b.identity(x, "classifier.3");
    let x = classifier(&mut b, x, "classifier", &[(4, 4096, true), (6, 1000, false)])?;
    b.finish(x)
}

pub fn vgg16(batch: usize) -> Result<Graph, OpError> {
    vgg16_at(batch, INPUT)
}

pub fn vgg16_at(batch: usize, hw: usize) -> Result<Graph, OpError> {
    let (mut b, mut x) = Builder::new("vgg16", [batch, 3, hw, hw]);
    let cfg: &[usize] = &[64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0];
    let mut idx = 0;
    for &c in cfg {
        if c == 0 {
            x = b.pool(x, &format!("features.{idx}"), max_pool(2, 2, 0, false))?;
            idx += 1;
        } else {
            x = conv_relu(&mut b, x, &format!("features.{idx}"), c, k(3, 1, 1))?;
            idx += 2;
        }
    }
    // AdaptiveAvgPool2d((7, 7)) is the identity on the 7x7 map a 224 input gives.
    let x = b.identity(x, "avgpool");
    let x = b.flatten(x, "flatten");
    let x = classifier(&mut b, x, "classifier", &[(0, 4096, true), (3, 4096, true), (6, 1000, false)])?;
    b.finish(x)
}

pub fn resnet50(batch: usize) -> Result<Graph, OpError> {
    resnet50_at(batch, INPUT)
}

pub fn resnet50_at(batch: usize, hw: usize) -> Result<Graph, OpError> {
    let (mut b, x) = Builder::new("resnet50", [batch, 3, hw, hw]);
    let eps = 1e-5;
    let mut x = conv_bn(&mut b, x, "conv1", "bn1", 64, k(7, 2, 3), eps, Act::Relu)?;
    x = b.pool(x, "maxpool", max_pool(3, 2, 1, false))?;
    let mut in_c = 64;
    for (li, (&blocks, &width)) in [3usize, 4, 6, 3].iter().zip(&[64usize, 128, 256, 512]).enumerate() {
        for bi in 0..blocks {
            let p = format!("layer{}.{bi}", li + 1);
            // torchvision's v1.5 bottleneck: the stride sits on the 3x3 conv.
            let stride = if bi == 0 && li > 0 { 2 } else { 1 };
            let out_c = width * 4;
            let y = conv_bn(&mut b, x, &format!("{p}.conv1"), &format!("{p}.bn1"), width, k(1, 1, 0), eps, Act::Relu)?;
            let y =
                conv_bn(&mut b, y, &format!("{p}.conv2"), &format!("{p}.bn2"), width, k(3, stride, 1), eps, Act::Relu)?;
            let y = conv_bn(&mut b, y, &format!("{p}.conv3"), &format!("{p}.bn3"), out_c, k(1, 1, 0), eps, Act::None)?;
            let shortcut = if bi == 0 {
                let (c, n) = (format!("{p}.downsample.0"), format!("{p}.downsample.1"));
                conv_bn(&mut b, x, &c, &n, out_c, k(1, stride, 0), eps, Act::None)?
            } else {
                x
            };
            x = b.add(y, shortcut, &format!("{p}.add"), Act::Relu)?;
            in_c = out_c;
        }
    }
    debug_assert_eq!(in_c, 2048);
    let x = b.pool(x, "avgpool", global_avg())?;
    let x = b.flatten(x, "flatten");
    let x = b.linear(x, "fc", 1000, true)?;
    b.finish(x)
}

pub fn googlenet(batch: usize) -> Result<Graph, OpError> {
    googlenet_at(batch, INPUT)
}

pub fn googlenet_at(batch: usize, hw: usize) -> Result<Graph, OpError> {
    let (mut b, x) = Builder::new("googlenet", [batch, 3, hw, hw]);
    let eps = 1e-3;
    let basic = |b: &mut Builder, x, name: &str, c_out, spec| {
        conv_bn(b, x, &format!("{name}.conv"), &format!("{name}.bn"), c_out, spec, eps, Act::Relu)
    };
    let mut x = basic(&mut b, x, "conv1", 64, k(7, 2, 3))?;
    x = b.pool(x, "maxpool1", max_pool(3, 2, 0, true))?;
    x = basic(&mut b, x, "conv2", 64, k(1, 1, 0))?;
    x = basic(&mut b, x, "conv3", 192, k(3, 1, 1))?;
    x = b.pool(x, "maxpool2", max_pool(3, 2, 0, true))?;
    // (name, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj); torchvision's "5x5"
    // branch uses a 3x3 kernel, and so do we.
    let blocks: &[(&str, [usize; 6])] = &[
        ("inception3a", [64, 96, 128, 16, 32, 32]),
        ("inception3b", [128, 128, 192, 32, 96, 64]),
        ("maxpool3", [0; 6]),
        ("inception4a", [192, 96, 208, 16, 48, 64]),
        ("inception4b", [160, 112, 224, 24, 64, 64]),
        ("inception4c", [128, 128, 256, 24, 64, 64]),
        ("inception4d", [112, 144, 288, 32, 64, 64]),
        ("inception4e", [256, 160, 320, 32, 128, 128]),
        ("maxpool4", [0; 6]),
        ("inception5a", [256, 160, 320, 32, 128, 128]),
        ("inception5b", [384, 192, 384, 48, 128, 128]),
    ];
    for (name, c) in blocks {
        if name.starts_with("maxpool") {
            let kk = if *name == "maxpool4" { 2 } else { 3 };
            x = b.pool(x, name, max_pool(kk, 2, 0, true))?;
            continue;
        }
        let b1 = basic(&mut b, x, &format!("{name}.branch1"), c[0], k(1, 1, 0))?;
        let b2 = basic(&mut b, x, &format!("{name}.branch2.0"), c[1], k(1, 1, 0))?;
        let b2 = basic(&mut b, b2, &format!("{name}.branch2.1"), c[2], k(3, 1, 1))?;
        let b3 = basic(&mut b, x, &format!("{name}.branch3.0"), c[3], k(1, 1, 0))?;
        let b3 = basic(&mut b, b3, &format!("{name}.branch3.1"), c[4], k(3, 1, 1))?;
        let b4 = b.pool(x, &format!("{name}.branch4.0"), max_pool(3, 1, 1, true))?;
        let b4 = basic(&mut b, b4, &format!("{name}.branch4.1"), c[5], k(1, 1, 0))?;
        x = b.concat(&[b1, b2, b3, b4], &format!("{name}.concat"))?;
    }
    let x = b.pool(x, "avgpool", global_avg())?;
    let x = b.flatten(x, "flatten");
    let x = b.identity(x, "dropout");
    let x = b.linear(x, "fc", 1000, true)?;
    b.finish(x)
}

pub fn mobilenet_v2(batch: usize) -> Result<Graph, OpError> {
    mobilenet_v2_at(batch, INPUT)
}

pub fn mobilenet_v2_at(batch: usize, hw: usize) -> Result<Graph, OpError> {
    let (mut b, x) = Builder::new("mobilenet_v2", [batch, 3, hw, hw]);
    let (eps, relu6) = (1e-5, Act::RELU6);
    let mut x = conv_bn(&mut b, x, "features.0.0", "features.0.1", 32, k(3, 2, 1), eps, relu6)?;
    let mut in_c = 32;
    let mut idx = 1;
    // (expansion t, channels c, repeats n, first stride s)
    for &(t, c, n, s) in
        &[(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let hidden = in_c * t;
            let p = format!("features.{idx}.conv");
            let mut y = x;
            let mut j = 0;
            if t != 1 {
                let (cn, bn) = (format!("{p}.{j}.0"), format!("{p}.{j}.1"));
                y = conv_bn(&mut b, y, &cn, &bn, hidden, k(1, 1, 0), eps, relu6)?;
                j += 1;
            }
            let (cn, bn) = (format!("{p}.{j}.0"), format!("{p}.{j}.1"));
            y = conv_bn(&mut b, y, &cn, &bn, hidden, k(3, stride, 1).with_groups(hidden), eps, relu6)?;
            let (cn, bn) = (format!("{p}.{}", j + 1), format!("{p}.{}", j + 2));
            y = conv_bn(&mut b, y, &cn, &bn, c, k(1, 1, 0), eps, Act::None)?;
            x = if stride == 1 && in_c == c { b.add(x, y, &format!("features.{idx}.add"), Act::None)? } else { y };
            in_c = c;
            idx += 1;
        }
    }
    let x =
        conv_bn(&mut b, x, &format!("features.{idx}.0"), &format!("features.{idx}.1"), 1280, k(1, 1, 0), eps, relu6)?;
    let x = b.pool(x, "avgpool", global_avg())?;
    let x = b.flatten(x, "flatten");
    let x = b.identity(x, "classifier.0");
    let x = b.linear(x, "classifier.1", 1000, true)?;
    b.finish(x)
}

pub fn squeezenet1_0(batch: usize) -> Result<Graph, OpError> {
    squeezenet1_0_at(batch, INPUT)
}

pub fn squeezenet1_0_at(batch: usize, hw: usize) -> Result<Graph, OpError> {
    let (mut b, x) = Builder::new("squeezenet1_0", [batch, 3, hw, hw]);
    let mut x = conv_relu(&mut b, x, "features.0", 96, k(7, 2, 0))?;
    let fire = |b: &mut Builder, x, idx: usize, sq: usize, e1: usize, e3: usize| -> Result<TensorId, OpError> {
        let p = format!("features.{idx}");
        let s = conv_relu(b, x, &format!("{p}.squeeze"), sq, k(1, 1, 0))?;
        let a = conv_relu(b, s, &format!("{p}.expand1x1"), e1, k(1, 1, 0))?;
        let c = conv_relu(b, s, &format!("{p}.expand3x3"), e3, k(3, 1, 1))?;
        b.concat(&[a, c], &format!("{p}.concat"))
    };
    x = b.pool(x, "features.2", max_pool(3, 2, 0, true))?;
    x = fire(&mut b, x, 3, 16, 64, 64)?;
    x = fire(&mut b, x, 4, 16, 64, 64)?;
    x = fire(&mut b, x, 5, 32, 128, 128)?;
    x = b.pool(x, "features.6", max_pool(3, 2, 0, true))?;
    x = fire(&mut b, x, 7, 32, 128, 128)?;
    x = fire(&mut b, x, 8, 48, 192, 192)?;
    x = fire(&mut b, x, 9, 48, 192, 192)?;
    x = fire(&mut b, x, 10, 64, 256, 256)?;
    x = b.pool(x, "features.11", max_pool(3, 2, 0, true))?;
    x = fire(&mut b, x, 12, 64, 256, 256)?;
    let x = b.identity(x, "classifier.0");
    let x = conv_relu(&mut b, x, "classifier.1", 1000, k(1, 1, 0))?;
    let x = b.pool(x, "classifier.3", global_avg())?;
    let x = b.flatten(x, "flatten");
    b.finish(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// torchvision's documented parameter counts (weights=None architectures).
    #[test]
    fn parameter_counts_equal_torchvision() {
        let expected = [
            ("alexnet", 61_100_840),
            ("vgg16", 138_357_544),
            ("resnet50", 25_557_032),
            ("googlenet", 6_624_904),
            ("mobilenet_v2", 3_504_872),
            ("squeezenet1_0", 1_248_424),
        ];
        for (name, params) in expected {
            let g = build(name, 1).unwrap().unwrap();
            assert_eq!(g.parameter_count(), params, "{name}");
        }
    }

    /// Output shapes and the usual MAC counts (fvcore/ptflops figures: ResNet-50 4.09
    /// GMACs, VGG-16 15.47, MobileNetV2 0.30, AlexNet 0.71, GoogLeNet 1.50, SqueezeNet 0.82).
    #[test]
    fn outputs_are_1000_classes_and_macs_match_published_figures() {
        let published = [
            ("alexnet", 0.71),
            ("vgg16", 15.47),
            ("resnet50", 4.09),
            ("googlenet", 1.50),
            ("mobilenet_v2", 0.30),
            ("squeezenet1_0", 0.82),
        ];
        for (name, gmacs) in published {
            let g = build(name, 2).unwrap().unwrap();
            assert_eq!(g.tensors[g.output].dims, [2, 1000, 1, 1], "{name}");
            let got = g.macs() as f64 / 2.0 / 1e9;
            assert!((got - gmacs).abs() / gmacs < 0.03, "{name}: {got:.3} GMACs vs {gmacs}");
        }
    }

    #[test]
    fn resnet50_has_53_convs_and_16_residual_adds() {
        let g = resnet50(1).unwrap();
        let convs = g.nodes.iter().filter(|n| matches!(n.op, crate::graph::Op::Conv { .. })).count();
        let adds = g.nodes.iter().filter(|n| matches!(n.op, crate::graph::Op::Add { .. })).count();
        assert_eq!((convs, adds), (53, 16));
        // The stage outputs torchvision prints for a 224 input.
        let dims = |name: &str| g.tensors[g.nodes.iter().find(|n| n.name == name).unwrap().output].dims;
        assert_eq!(dims("maxpool"), [1, 64, 56, 56]);
        assert_eq!(dims("layer2.0.add"), [1, 512, 28, 28]);
        assert_eq!(dims("layer4.2.add"), [1, 2048, 7, 7]);
    }

    #[test]
    fn unknown_model_is_none() {
        assert!(build("lenet", 1).is_none());
        assert!(build_with_input("lenet", 1, 64).is_none());
    }

    /// The minimum input sizes `build_with_input` documents: the smallest that builds,
    /// and every size from there to 70 builds too.
    #[test]
    fn smallest_input_sizes() {
        for (name, min) in [
            ("alexnet", 63),
            ("vgg16", 32),
            ("resnet50", 1),
            ("googlenet", 31),
            ("mobilenet_v2", 1),
            ("squeezenet1_0", 29),
        ] {
            let ok = |hw| build_with_input(name, 1, hw).unwrap().is_ok();
            assert!(min == 1 || !ok(min - 1), "{name} builds at {}", min - 1);
            for hw in min..=70 {
                assert!(ok(hw), "{name} fails at {hw}");
            }
            assert_eq!(build_with_input(name, 1, 224).unwrap().unwrap(), build(name, 1).unwrap().unwrap());
        }
    }
}
