//! fp32 ↔ fp16/bf16 conversion, IEEE round-to-nearest-even (via the `half` crate), with
//! NaN kept NaN and overflow going to ±inf.

use half::{bf16, f16};

use crate::ops::{invalid, DType, OpError};

pub fn f32_to_f16_bits(x: &[f32]) -> Vec<u16> {
    x.iter().map(|&v| f16::from_f32(v).to_bits()).collect()
}

pub fn f16_bits_to_f32(x: &[u16]) -> Vec<f32> {
    x.iter().map(|&b| f16::from_bits(b).to_f32()).collect()
}

pub fn f32_to_bf16_bits(x: &[f32]) -> Vec<u16> {
    x.iter().map(|&v| bf16::from_f32(v).to_bits()).collect()
}

pub fn bf16_bits_to_f32(x: &[u16]) -> Vec<f32> {
    x.iter().map(|&b| bf16::from_bits(b).to_f32()).collect()
}

/// Rounds each value to `dtype` and back: exactly the values a GPU kernel sees when fed
/// `dtype` data, so the reference computes on the same inputs.
pub fn round_through(dtype: DType, x: &[f32]) -> Vec<f32> {
    match dtype {
        DType::F32 => x.to_vec(),
        DType::F16 => x.iter().map(|&v| f16::from_f32(v).to_f32()).collect(),
        DType::BF16 => x.iter().map(|&v| bf16::from_f32(v).to_f32()).collect(),
    }
}

/// Encodes as little-endian `dtype` bytes (what is uploaded to the GPU).
pub fn to_bytes(dtype: DType, x: &[f32]) -> Vec<u8> {
    match dtype {
        DType::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::F16 => f32_to_f16_bits(x).into_iter().flat_map(u16::to_le_bytes).collect(),
        DType::BF16 => f32_to_bf16_bits(x).into_iter().flat_map(u16::to_le_bytes).collect(),
    }
}

/// Decodes little-endian `dtype` bytes (what is downloaded from the GPU).
pub fn from_bytes(dtype: DType, bytes: &[u8]) -> Result<Vec<f32>, OpError> {
    let size = dtype.size_bytes();
    if !bytes.len().is_multiple_of(size) {
        return Err(invalid("from_bytes", format!("{} bytes is not a multiple of {} ({dtype})", bytes.len(), size)));
    }
    Ok(match dtype {
        DType::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        DType::F16 => {
            bytes.chunks_exact(2).map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()).collect()
        }
        DType::BF16 => {
            bytes.chunks_exact(2).map(|b| bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()).collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_known_values() {
        // 1/3 = 1.0101...b * 2^-2; 10 mantissa bits 0101010101 then 0101... (< half ulp)
        // -> exponent 13 (0b01101), mantissa 0x155: 0 01101 0101010101 = 0x3555.
        // 65504 = max finite (0x7BFF). 65520 is halfway to 65536 (which overflows); ties
        // to even goes up (0x3FF is odd) -> +inf 0x7C00. 1 + 2^-11 is halfway between
        // 1.0 (even) and 1 + 2^-10: -> 0x3C00. 1 + 3*2^-11 is halfway between
        // 1 + 2^-10 (odd) and 1 + 2^-9 (even) -> 0x3C02. 2^-24 = smallest subnormal 0x0001.
        let x =
            [1.0f32 / 3.0, 65504.0, 65520.0, 1.0 + 2f32.powi(-11), 1.0 + 3.0 * 2f32.powi(-11), 2f32.powi(-24), -2.0];
        assert_eq!(f32_to_f16_bits(&x), vec![0x3555, 0x7BFF, 0x7C00, 0x3C00, 0x3C02, 0x0001, 0xC000]);
        assert_eq!(f16_bits_to_f32(&[0x3555, 0x3C00, 0x7C00]), vec![0.333_251_95, 1.0, f32::INFINITY]);
        assert!(f16_bits_to_f32(&f32_to_f16_bits(&[f32::NAN]))[0].is_nan());
    }

    #[test]
    fn bf16_known_values() {
        // bf16 keeps 7 mantissa bits: ulp at 1.0 is 2^-7. 1.00390625 = 1 + 2^-8 is a tie
        // between 1.0 (mantissa 0, even) and 1 + 2^-7 (odd) -> 1.0 = 0x3F80.
        // 1 + 3*2^-8 ties between 1 + 2^-7 (odd) and 1 + 2^-6 (even) -> 0x3F82.
        // 1 + 2^-8 + 2^-20 is above the tie -> 0x3F81. -1.0 = 0xBF80.
        let x = [1.0f32 + 2f32.powi(-8), 1.0 + 3.0 * 2f32.powi(-8), 1.0 + 2f32.powi(-8) + 2f32.powi(-20), -1.0];
        assert_eq!(f32_to_bf16_bits(&x), vec![0x3F80, 0x3F82, 0x3F81, 0xBF80]);
        assert_eq!(bf16_bits_to_f32(&[0x3F82]), vec![1.015_625]);
    }

    #[test]
    fn bytes_round_trip() {
        let x = [0.5f32, -1.0, 1.0 / 3.0];
        for dt in [DType::F32, DType::F16, DType::BF16] {
            let b = to_bytes(dt, &x);
            assert_eq!(b.len(), 3 * dt.size_bytes());
            assert_eq!(from_bytes(dt, &b).unwrap(), round_through(dt, &x));
        }
        // 1.0 in f16 is 0x3C00, little-endian.
        assert_eq!(to_bytes(DType::F16, &[1.0]), vec![0x00, 0x3C]);
        assert!(from_bytes(DType::F32, &[0; 3]).is_err());
        // 1/3 through bf16: 0x3EAB (0x3EAAAAAB rounds up) = 0.333984375.
        assert_eq!(round_through(DType::BF16, &[1.0 / 3.0]), vec![0.333_984_38]);
    }
}
