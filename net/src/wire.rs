//! Frames: `[u32 magic][u32 header length][8 reserved][rkyv header, zero-padded to 16][payload]`. The
//! header is validated by rkyv (bytecheck) before use; the payload's length must equal what the header
//! says; a parameter payload is viewed in place as `&[f32]` (the buffer is 16-byte aligned, and the
//! payload starts at a multiple of 16).

use rkyv::rancor::Error as RkyvError;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

use crate::error::{NetError, Result};

/// First bytes of every frame ("DSTK").
pub const MAGIC: u32 = 0x4B54_5344;
/// Version of the header layout.
pub const VERSION: u16 = 3;
/// Alignment of the header's end (the payload's start).
pub const ALIGN: usize = 16;

/// What a frame carries.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Kind {
    /// Worker → server, first frame of a connection: the secret (payload); `worker` is the id asked
    /// for ([`ANY_WORKER`] lets the server choose); `incarnation` the worker process's random number;
    /// `round` is [`REJOIN`] when the process was admitted before (it reconnects), 0 otherwise.
    Hello,
    /// Server → worker: the secret was accepted; `worker` is the worker's id, `seq` the sequence
    /// number of the last commit applied under that id (a new process numbers its commits after it).
    Welcome,
    /// Worker → server: send the job (no payload). Reply: `Job` with the job description.
    FetchJob,
    /// Server → worker: the job, opaque bytes the launcher chose (model and hyper-parameters).
    Job,
    /// A worker's update (f32 payload: a delta, a residual, or whole weights for averaging).
    Commit,
    /// Server → worker: the commit `seq` was applied (`clock` after it, `staleness` it had).
    Ack,
    /// A worker asks for the centre (`round`: for averaging, the round whose average it waits for).
    Pull,
    /// Server → worker: the centre (f32 payload), with the clock.
    Centre,
    /// Worker → server: the worker finished epoch `round` (0-based).
    Epoch,
    /// Worker → server: the worker's history (UTF-8 JSON payload). Reply: `Ack`.
    Report,
    /// Worker → server: the worker is done (f32 payload: its final weights, or empty). Reply: `Ack`.
    Done,
    /// Server → worker: the request was refused and not applied (UTF-8 payload: why), e.g. because
    /// the write-ahead log could not take it.
    Error,
    /// Worker → server (asynchronous trainers): a commit (`seq`, f32 payload) and a pull of the
    /// centre after it, in one request and one log sync. Reply: `Centre`, whose `seq` and
    /// `staleness` acknowledge the commit.
    CommitPull,
}

/// The `round` of a `Hello` from a worker process that was admitted before (a reconnect).
pub const REJOIN: u64 = 1;

/// The round of a pull that wants the centre as it is now (no averaging barrier to wait for).
pub const NOW: u64 = u64::MAX;

/// The id a worker sends in `Hello` to let the server assign one.
pub const ANY_WORKER: u32 = u32::MAX;

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
    /// The server clock (commits applied so far).
    pub clock: u64,
    /// Averaging round or epoch, where the kind uses one.
    pub round: u64,
    /// Ack of a commit: commits by anyone between this worker's pull and this commit.
    pub staleness: u64,
    /// `Hello`: the worker process's random incarnation number (0 elsewhere).
    pub incarnation: u64,
    /// Bytes of payload.
    pub payload_len: u64,
}

impl Header {
    /// A header of `kind` for `worker` with every other field zero.
    pub fn new(kind: Kind, worker: u32) -> Self {
        Header {
            version: VERSION,
            kind,
            worker,
            seq: 0,
            clock: 0,
            round: 0,
            staleness: 0,
            incarnation: 0,
            payload_len: 0,
        }
    }
}

/// The bytes of a frame before its payload of `payload_len` bytes (send the payload after them).
pub fn encode_head(header: &Header, payload_len: usize) -> Result<Vec<u8>> {
    let header = Header { payload_len: payload_len as u64, ..header.clone() };
    let h = rkyv::to_bytes::<RkyvError>(&header).map_err(|e| NetError::Malformed(e.to_string()))?;
    let padded = h.len().div_ceil(ALIGN) * ALIGN;
    let mut out = Vec::with_capacity(16 + padded);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    // 8 bytes of prefix padding, so the header starts 16-aligned in a 16-aligned buffer.
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&h);
    out.resize(16 + padded, 0);
    Ok(out)
}

/// Encodes a frame with a byte payload (`header.payload_len` is set here).
pub fn encode_bytes(header: &Header, payload: &[u8]) -> Result<Vec<u8>> {
    let mut out = encode_head(header, payload.len())?;
    out.extend_from_slice(payload);
    Ok(out)
}

/// Encodes a frame with an f32 payload.
pub fn encode(header: &Header, payload: &[f32]) -> Result<Vec<u8>> {
    encode_bytes(header, bytemuck::cast_slice(payload))
}

/// A frame decoded in place from an aligned buffer.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The validated header.
    pub header: Header,
    /// The payload, borrowed from the buffer.
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The payload as f32 values, in place (no copy).
    pub fn floats(&self) -> Result<&'a [f32]> {
        bytemuck::try_cast_slice(self.payload).map_err(|e| {
            NetError::Malformed(format!("a payload of {} bytes is not f32 values: {e}", self.payload.len()))
        })
    }
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
    let payload = &buf[16 + padded..];
    if payload.len() as u64 != header.payload_len {
        return Err(NetError::Malformed(format!(
            "payload of {} bytes, the header says {}",
            payload.len(),
            header.payload_len
        )));
    }
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
        let h = Header { seq: 7, clock: 41, round: 2, staleness: 3, ..Header::new(Kind::Commit, 3) };
        let bytes = encode(&h, &payload).unwrap();
        let buf = aligned(&bytes);
        let f = decode(&buf, 1 << 20).unwrap();
        assert_eq!(f.header, Header { payload_len: 4000, ..h });
        assert_eq!(f.floats().unwrap(), payload.as_slice());
        let start = buf.as_ptr() as usize;
        let p = f.floats().unwrap().as_ptr() as usize;
        assert!(p >= start && p < start + buf.len(), "zero copy: the payload points into the buffer");
        let text = encode_bytes(&Header::new(Kind::Report, 1), b"{\"a\":1}").unwrap();
        let buf = aligned(&text);
        let f = decode(&buf, 1 << 20).unwrap();
        assert_eq!(f.payload, b"{\"a\":1}");
        assert!(f.floats().is_err(), "7 bytes are not f32 values");
    }

    #[test]
    fn malformed_and_oversized_frames_are_refused() {
        let h = Header::new(Kind::Pull, 0);
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
        let mut huge_header = good.clone();
        huge_header[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&aligned(&huge_header), 1 << 20), Err(NetError::Malformed(_))));
    }
}
