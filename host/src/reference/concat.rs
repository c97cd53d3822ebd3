//! Channel concatenation.

use crate::ops::{check_len, invalid, Layout, OpError};

/// Copies `src` (logical dims `[n, src_c, h, w]`) into channels
/// `c_offset .. c_offset + src_c` of `dst` (logical dims `[n, dst_c, h, w]`), both in
/// `layout`: how a concat's producers write straight into their slice of the output.
pub fn write_at_channel_offset<T: Copy>(
    dst: &mut [T],
    dst_c: usize,
    src: &[T],
    src_c: usize,
    c_offset: usize,
    [n, h, w]: [usize; 3],
    layout: Layout,
) -> Result<(), OpError> {
    const OP: &str = "concat";
    if c_offset + src_c > dst_c {
        return Err(invalid(OP, format!("channels {c_offset}..{} exceed destination's {dst_c}", c_offset + src_c)));
    }
    check_len(OP, "destination", dst.len(), n * dst_c * h * w)?;
    check_len(OP, "source", src.len(), n * src_c * h * w)?;
    let (sd, dd) = ([n, src_c, h, w], [n, dst_c, h, w]);
    for ni in 0..n {
        for ci in 0..src_c {
            for hi in 0..h {
                for wi in 0..w {
                    dst[layout.offset(dd, ni, c_offset + ci, hi, wi)] = src[layout.offset(sd, ni, ci, hi, wi)];
                }
            }
        }
    }
    Ok(())
}

/// ONNX Concat along the channel axis (axis 1 of NCHW; GoogLeNet/DenseNet joins):
/// `parts[k] = (data, channels)` with logical dims `[n, channels, h, w]`, all in `layout`;
/// part k lands at channel offset Σ_{j<k} channels_j.
pub fn concat_channels(parts: &[(&[f32], usize)], [n, h, w]: [usize; 3], layout: Layout) -> Result<Vec<f64>, OpError> {
    if parts.is_empty() {
        return Err(invalid("concat", "needs at least one input"));
    }
    let total: usize = parts.iter().map(|&(_, c)| c).sum();
    let mut y = vec![0.0f64; n * total * h * w];
    let mut offset = 0;
    for &(data, c) in parts {
        let data: Vec<f64> = data.iter().map(|&v| v as f64).collect();
        write_at_channel_offset(&mut y, total, &data, c, offset, [n, h, w], layout)?;
        offset += c;
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_by_hand() {
        // n=2, 1x2 planes. A has 1 channel: n0 (1,2), n1 (3,4). B has 2 channels:
        // n0 c0 (10,11), c1 (12,13); n1 c0 (14,15), c1 (16,17).
        // NCHW concat per batch: n0 = A(1,2), B(10,11,12,13); n1 = A(3,4), B(14..17).
        let a = [1.0f32, 2.0, 3.0, 4.0];
        let b = [10.0f32, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0];
        let y = concat_channels(&[(&a, 1), (&b, 2)], [2, 1, 2], Layout::Nchw).unwrap();
        let want = [1, 2, 10, 11, 12, 13, 3, 4, 14, 15, 16, 17].map(f64::from);
        assert_eq!(y, want.to_vec());

        // NHWC: each pixel holds (A, B0, B1). A NHWC n0 = (1, 2); B NHWC n0 pixel0 =
        // (10, 12), pixel1 = (11, 13). Output n0: (1,10,12), (2,11,13).
        let a_h = [1.0f32, 2.0, 3.0, 4.0];
        let b_h = [10.0f32, 12.0, 11.0, 13.0, 14.0, 16.0, 15.0, 17.0];
        let y = concat_channels(&[(&a_h, 1), (&b_h, 2)], [2, 1, 2], Layout::Nhwc).unwrap();
        let want = [1, 10, 12, 2, 11, 13, 3, 14, 16, 4, 15, 17].map(f64::from);
        assert_eq!(y, want.to_vec());
    }

    #[test]
    fn write_at_offset() {
        // dst [1, 3, 1, 1] = (0, 0, 0); write one channel (7) at offset 2.
        let mut dst = [0u8; 3];
        write_at_channel_offset(&mut dst, 3, &[7u8], 1, 2, [1, 1, 1], Layout::Nchw).unwrap();
        assert_eq!(dst, [0, 0, 7]);
        let e = write_at_channel_offset(&mut dst, 3, &[7u8, 8], 2, 2, [1, 1, 1], Layout::Nchw).unwrap_err();
        assert_eq!(e.to_string(), "concat: channels 2..4 exceed destination's 3");
    }
}
