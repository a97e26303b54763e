//! Frames: `[u32 magic][u32 header length][8 reserved][rkyv header, zero-padded to 16][f32 payload]`. The header is
//! validated by rkyv (bytecheck) before use; the payload's length must equal what the header says;
//! the payload is viewed in place as `&[f32]` (the buffer is 16-byte aligned).

use rkyv::rancor::Error as RkyvError;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use crate::error::{NetError, Result};

/// First bytes of every frame ("DSTK").
pub const MAGIC: u32 = 0x4B54_5344;
/// Version of the header layout.
pub const VERSION: u16 = 1;
/// Alignment of the header's end (the payload's start).
pub const ALIGN: usize = 16;

/// What a frame carries.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Kind {
    /// A worker's update (payload: the delta or residual).
    Commit,
    /// A worker asks for the centre (no payload).
    Pull,
    /// The centre (payload), with the clock.
    Centre,
    /// The server applied the worker's commit `seq`.
    Ack,
}

/// The frame header.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[rkyv(derive(Debug))]
pub struct Header {
    /// Layout version ([`VERSION`]).
    pub version: u16,
    /// What the frame carries.
    pub kind: Kind,
    /// The worker the frame is from or for.
    pub worker: u32,
    /// The worker's commit sequence number (retries reuse it; the server applies it once).
    pub seq: u64,
    /// The server clock (Centre: at the pull; Commit: the clock of the pull the update started from).
    pub clock: u64,
    /// Number of f32 values in the payload.
    pub payload_len: u64,
}

/// Encodes a frame.
pub fn encode(header: &Header, payload: &[f32]) -> Result<Vec<u8>> {
    if header.payload_len as usize != payload.len() {
        return Err(NetError::Malformed(format!(
            "header says {} values, payload has {}",
            header.payload_len,
            payload.len()
        )));
    }
    let h = rkyv::to_bytes::<RkyvError>(header).map_err(|e| NetError::Malformed(e.to_string()))?;
    let padded = h.len().div_ceil(ALIGN) * ALIGN;
    let mut out = Vec::with_capacity(8 + padded + payload.len() * 4 + ALIGN);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    // 8 bytes of prefix: pad to 16 so the header starts aligned in a 16-aligned buffer.
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&h);
    out.resize(16 + padded, 0);
    out.extend_from_slice(bytemuck::cast_slice(payload));
    Ok(out)
}

/// A frame decoded in place from an aligned buffer.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The validated header.
    pub header: Header,
    /// The payload, borrowed from the buffer.
    pub payload: &'a [f32],
}

/// Decodes `buf` (16-byte aligned, as an [`AlignedVec`] is) into a header and a payload view.
/// `max_bytes` bounds the whole frame.
pub fn decode(buf: &AlignedVec<ALIGN>, max_bytes: usize) -> Result<Frame<'_>> {
    if buf.len() > max_bytes {
        return Err(NetError::TooLarge { got: buf.len(), limit: max_bytes });
    }
    if buf.len() < 16 {
        return Err(NetError::Malformed(format!("{} bytes is shorter than a frame prefix", buf.len())));
    }
    let magic = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if magic != MAGIC {
        return Err(NetError::Malformed(format!("bad magic {magic:#010x}")));
    }
    let hlen = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    let padded = hlen.div_ceil(ALIGN) * ALIGN;
    if 16 + padded > buf.len() {
        return Err(NetError::Malformed(format!("header length {hlen} does not fit a {}-byte frame", buf.len())));
    }
    let archived = rkyv::access::<ArchivedHeader, RkyvError>(&buf[16..16 + hlen])
        .map_err(|e| NetError::Malformed(format!("the header does not validate: {e}")))?;
    let header: Header =
        rkyv::deserialize::<Header, RkyvError>(archived).map_err(|e| NetError::Malformed(e.to_string()))?;
    if header.version != VERSION {
        return Err(NetError::Malformed(format!("version {} (this build speaks {VERSION})", header.version)));
    }
    let body = &buf[16 + padded..];
    let want = (header.payload_len as usize)
        .checked_mul(4)
        .ok_or_else(|| NetError::Malformed("payload length overflows".into()))?;
    if body.len() != want {
        return Err(NetError::Malformed(format!("payload of {} bytes, the header says {want}", body.len())));
    }
    // The buffer is 16-aligned and 16 + padded is a multiple of 16, so `body` is 4-aligned.
    let payload: &[f32] = bytemuck::try_cast_slice(body).map_err(|e| NetError::Malformed(format!("payload: {e}")))?;
    Ok(Frame { header, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aligned(bytes: &[u8]) -> AlignedVec<ALIGN> {
        let mut v = AlignedVec::<ALIGN>::new();
        v.extend_from_slice(bytes);
        v
    }

    #[test]
    fn frames_round_trip_and_the_payload_is_read_in_place() {
        let payload: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5).collect();
        let h = Header { version: VERSION, kind: Kind::Commit, worker: 3, seq: 7, clock: 41, payload_len: 1000 };
        let bytes = encode(&h, &payload).unwrap();
        let buf = aligned(&bytes);
        let f = decode(&buf, 1 << 20).unwrap();
        assert_eq!(f.header, h);
        assert_eq!(f.payload, payload.as_slice());
        let start = buf.as_ptr() as usize;
        let p = f.payload.as_ptr() as usize;
        assert!(p >= start && p < start + buf.len(), "zero copy: the payload points into the buffer");
    }

    #[test]
    fn malformed_and_oversized_frames_are_refused() {
        let h = Header { version: VERSION, kind: Kind::Pull, worker: 0, seq: 0, clock: 0, payload_len: 0 };
        let good = encode(&h, &[]).unwrap();
        assert!(matches!(decode(&aligned(&good), 8), Err(NetError::TooLarge { .. })));
        assert!(matches!(decode(&aligned(&good[..10]), 1 << 20), Err(NetError::Malformed(_))));
        let mut bad_magic = good.clone();
        bad_magic[0] ^= 1;
        assert!(matches!(decode(&aligned(&bad_magic), 1 << 20), Err(NetError::Malformed(_))));
        let mut lying = good.clone();
        lying.extend_from_slice(&[0u8; 8]);
        assert!(matches!(decode(&aligned(&lying), 1 << 20), Err(NetError::Malformed(_))));
        let mut garbage = good.clone();
        for b in garbage[16..].iter_mut() {
            *b = 0xff;
        }
        assert!(decode(&aligned(&garbage), 1 << 20).is_err());
        assert!(encode(&Header { payload_len: 3, ..h }, &[1.0]).is_err());
    }
}
