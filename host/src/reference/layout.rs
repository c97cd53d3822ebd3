//! Layout conversions (pure permutations, generic over the element type).

use crate::ops::{check_len, numel, Layout, OpError};

/// Copies a tensor of logical dims `dims` from layout `from` to layout `to`.
pub fn to_layout<T: Copy>(x: &[T], dims: [usize; 4], from: Layout, to: Layout) -> Result<Vec<T>, OpError> {
    check_len("layout", "input", x.len(), numel(dims))?;
    if from == to {
        return Ok(x.to_vec());
    }
    let [n, c, h, w] = dims;
    let mut out = Vec::with_capacity(x.len());
    // Walk the destination in its memory order and gather from the source.
    match to {
        Layout::Nhwc => {
            for ni in 0..n {
                for hi in 0..h {
                    for wi in 0..w {
                        for ci in 0..c {
                            out.push(x[from.offset(dims, ni, ci, hi, wi)]);
                        }
                    }
                }
            }
        }
        Layout::Nchw => {
            for ni in 0..n {
                for ci in 0..c {
                    for hi in 0..h {
                        for wi in 0..w {
                            out.push(x[from.offset(dims, ni, ci, hi, wi)]);
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// NCHW → NHWC for a tensor of logical dims `[n, c, h, w]`.
pub fn nchw_to_nhwc<T: Copy>(x: &[T], dims: [usize; 4]) -> Result<Vec<T>, OpError> {
    to_layout(x, dims, Layout::Nchw, Layout::Nhwc)
}

/// NHWC → NCHW for a tensor of logical dims `[n, c, h, w]`.
pub fn nhwc_to_nchw<T: Copy>(x: &[T], dims: [usize; 4]) -> Result<Vec<T>, OpError> {
    to_layout(x, dims, Layout::Nhwc, Layout::Nchw)
}

/// Conv weights OIHW → OHWI (a.k.a. KRSC, what NHWC kernels want), `dims` =
/// `[o, i, kh, kw]`. The same permutation as NCHW → NHWC.
pub fn oihw_to_ohwi<T: Copy>(w: &[T], dims: [usize; 4]) -> Result<Vec<T>, OpError> {
    nchw_to_nhwc(w, dims)
}

/// Conv weights OHWI → OIHW, `dims` = `[o, i, kh, kw]`.
pub fn ohwi_to_oihw<T: Copy>(w: &[T], dims: [usize; 4]) -> Result<Vec<T>, OpError> {
    nhwc_to_nchw(w, dims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_permutation() {
        // NCHW [1,2,1,2]: c0 = (0, 1), c1 = (2, 3). NHWC interleaves channels per pixel:
        // pixel w0 = (c0 0, c1 2), pixel w1 = (1, 3).
        let d = [1, 2, 1, 2];
        assert_eq!(nchw_to_nhwc(&[0, 1, 2, 3], d).unwrap(), vec![0, 2, 1, 3]);
        assert_eq!(nhwc_to_nchw(&[0, 2, 1, 3], d).unwrap(), vec![0, 1, 2, 3]);
        // OIHW [2,3,1,1] is 2 rows of 3 input channels; with 1x1 kernels OHWI is the same.
        let w = [1, 2, 3, 4, 5, 6];
        assert_eq!(oihw_to_ohwi(&w, [2, 3, 1, 1]).unwrap(), w.to_vec());
        // OIHW [1,2,1,2]: i0 taps (1,2), i1 taps (3,4) -> OHWI per tap (i0,i1): 1,3,2,4.
        assert_eq!(oihw_to_ohwi(&[1, 2, 3, 4], [1, 2, 1, 2]).unwrap(), vec![1, 3, 2, 4]);
        assert!(nchw_to_nhwc(&[0; 3], d).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(n in 1usize..3, c in 1usize..5, h in 1usize..5, w in 1usize..5) {
            let dims = [n, c, h, w];
            let x: Vec<u32> = (0..numel(dims) as u32).collect();
            let y = nchw_to_nhwc(&x, dims).unwrap();
            prop_assert_eq!(nhwc_to_nchw(&y, dims).unwrap(), x.clone());
            // Every logical element lands where Layout::offset says.
            for (i, &v) in x.iter().enumerate() {
                let (ni, ci, hi, wi) = (i / (c * h * w), (i / (h * w)) % c, (i / w) % h, i % w);
                prop_assert_eq!(y[Layout::Nhwc.offset(dims, ni, ci, hi, wi)], v);
            }
        }
    }
}
