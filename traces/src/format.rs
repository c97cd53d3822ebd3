//! Wire-level constants and primitive encodings: preamble, frame header, varints,
//! zigzag, CRC-32C. `docs/trace-format.md` is the normative description; the
//! constants here are the ones it names.

use std::fmt;

use byteorder::{ByteOrder, LittleEndian};
use serde::Serialize;

/// First 8 bytes of every trace. PNG-style: the high byte catches 7-bit transports,
/// CR LF / LF catch newline translation, 0x1A stops `type` on DOS.
pub const MAGIC: [u8; 8] = *b"\x89CNE\r\n\x1a\n";

/// Preamble: magic (8), major u16, minor u16, CRC-32C of the first 12 bytes (u32).
/// Its layout is frozen across all versions so any reader can name a file's version.
pub const PREAMBLE_LEN: usize = 16;

/// Frame header: CRC-32C u32, kind u8, payload length u32 (all little-endian).
pub const FRAME_HEADER_LEN: usize = 9;

/// Largest payload a reader accepts; a longer length field is corruption, not a frame.
pub const MAX_FRAME_PAYLOAD: u32 = 16 << 20;

/// Default target payload size of an events frame: big enough that the 9-byte header
/// and the per-frame delta/site resets cost < 1 %, small enough that a killed
/// process loses well under a second of records.
pub const DEFAULT_FRAME_TARGET: usize = 64 << 10;

/// Most kernel launch sites one events frame may define (bounds reader memory).
pub const MAX_SITES_PER_FRAME: usize = 1024;

/// Upper bound on the encoded size of any single record the writer emits.
pub(crate) const MAX_RECORD_LEN: usize = 128;

/// Format version: major changes break readers, minor changes only add things a
/// reader of the same major can skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

impl Version {
    /// The version this crate writes, and the newest it fully understands.
    pub const CURRENT: Version = Version { major: 1, minor: 0 };
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Frame kind byte. A newtype rather than an enum so kinds from newer minor
/// versions survive a round trip through this reader (and get skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct FrameKind(pub u8);

impl FrameKind {
    pub const HEADER: FrameKind = FrameKind(1);
    pub const STRINGS: FrameKind = FrameKind(2);
    pub const LAYERS: FrameKind = FrameKind(3);
    pub const EVENTS: FrameKind = FrameKind(4);
    pub const SUMMARY: FrameKind = FrameKind(5);

    /// Human name, used in error messages ("events frame").
    pub fn name(self) -> &'static str {
        match self {
            FrameKind::HEADER => "header frame",
            FrameKind::STRINGS => "strings frame",
            FrameKind::LAYERS => "layers frame",
            FrameKind::EVENTS => "events frame",
            FrameKind::SUMMARY => "summary frame",
            _ => "unknown frame",
        }
    }

    pub fn is_known(self) -> bool {
        (1..=5).contains(&self.0)
    }
}

/// Record tags inside an events frame.
pub mod tag {
    /// Defines the next kernel launch site of this frame (not an event).
    pub const SITE: u8 = 0x01;
    pub const POWER: u8 = 0x02;
    pub const ENERGY: u8 = 0x03;
    pub const CLOCKS: u8 = 0x04;
    pub const TEMPERATURE: u8 = 0x05;
    pub const THROTTLE: u8 = 0x06;
    pub const MARKER: u8 = 0x07;
    pub const DROPPED: u8 = 0x08;
    pub const CLOCK_SYNC: u8 = 0x09;
    /// Kernel records use tags 0x10..=0x13: `KERNEL | flags`.
    pub const KERNEL: u8 = 0x10;
    /// Flag: an iteration delta follows (else: same iteration as the previous kernel).
    pub const KERNEL_ITERATION: u8 = 0x01;
    /// Flag: a correlation-id delta follows (else: the previous kernel's delta again).
    pub const KERNEL_CORRELATION: u8 = 0x02;
    /// Tags at or above this carry a varint length and are skipped when unknown.
    pub const FIRST_EXTENSION: u8 = 0x80;
}

/// Attribute value type bytes inside a layer entry.
pub(crate) mod attr_type {
    pub const INT: u8 = 0;
    pub const FLOAT: u8 = 1;
    pub const STR: u8 = 2;
    pub const INTS: u8 = 3;
}

/// Encodes the 16-byte preamble for `version`.
pub fn preamble(version: Version) -> [u8; PREAMBLE_LEN] {
    let mut p = [0u8; PREAMBLE_LEN];
    p[..8].copy_from_slice(&MAGIC);
    LittleEndian::write_u16(&mut p[8..10], version.major);
    LittleEndian::write_u16(&mut p[10..12], version.minor);
    let crc = crc32c::crc32c(&p[..12]);
    LittleEndian::write_u32(&mut p[12..16], crc);
    p
}

/// Encodes one complete frame (header + payload). The writer builds frames in place;
/// this is for tools and tests that need hand-made frames (e.g. unknown kinds).
pub fn frame_bytes(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; FRAME_HEADER_LEN];
    v.extend_from_slice(payload);
    seal_frame(&mut v, kind);
    v
}

/// Fills in the header of `buf` = [9 reserved bytes][payload].
pub(crate) fn seal_frame(buf: &mut [u8], kind: FrameKind) {
    let len = (buf.len() - FRAME_HEADER_LEN) as u32;
    buf[4] = kind.0;
    LittleEndian::write_u32(&mut buf[5..9], len);
    let crc = crc32c::crc32c(&buf[4..]);
    LittleEndian::write_u32(&mut buf[0..4], crc);
}

/// Appends `v` as unsigned LEB128 (7 bits per byte, low group first, high bit =
/// "more follows"). Minimal form: at most 10 bytes.
#[inline(always)]
pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Zigzag maps signed to unsigned so small magnitudes stay short: 0,-1,1,-2 → 0,1,2,3.
#[inline(always)]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline(always)]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `v` zigzag-encoded as a varint.
#[inline(always)]
pub fn put_ivarint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, zigzag(v));
}

/// Appends a string: varint byte length, then UTF-8 bytes.
pub(crate) fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trip_and_order() {
        for v in [0i64, -1, 1, -2, 2, i64::MIN, i64::MAX, 12345, -98765] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!([0, -1, 1, -2].map(zigzag), [0, 1, 2, 3]);
    }

    #[test]
    fn varint_lengths() {
        let len = |v| {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            b.len()
        };
        assert_eq!(len(0), 1);
        assert_eq!(len(127), 1);
        assert_eq!(len(128), 2);
        assert_eq!(len(u64::MAX), 10);
    }

    #[test]
    fn crc32c_check_value() {
        // The standard CRC-32C check value, quoted in the spec.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }
}
