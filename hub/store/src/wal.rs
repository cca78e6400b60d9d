//! The append log's files: `wal/NNNNNNNNNNNNNNNNNNNN.log` segments beside sled's files, each a
//! run of frames
//!
//! ```text
//! length   u32 LE   of seq + payload
//! crc32    u32 LE   of seq + payload (CRC-32/ISO-HDLC, as zlib)
//! seq      u64 LE
//! payload  a log entry (`log.rs`)
//! ```
//!
//! Appends go to the newest segment; a segment past [`SEGMENT_BYTES`] is synced and closed and
//! a new one started. A segment whose entries are all sealed into chunks is deleted, after
//! the chunks are flushed. Replay stops at the first frame that is short or fails its CRC:
//! everything after the last completed sync was never acknowledged.
//!
//! Why files and not a sled tree: entries live minutes, and sled rewrites the pages of a tree
//! that takes inserts and deletes at this rate many times over (measured: 13 bytes on disk per
//! observation for entries of 8; `BENCHMARKS.md`). A file is written once and deleted whole.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A segment is closed past this size.
pub const SEGMENT_BYTES: u64 = 4 << 20;

/// The largest frame a reader accepts (a pipeline batch is far smaller).
const MAX_FRAME: u32 = 256 << 20;

struct Segment {
    id: u64,
    /// The newest entry in it (`None`: empty).
    last_seq: Option<u64>,
    bytes: u64,
}

pub struct Wal {
    dir: PathBuf,
    current: Arc<File>,
    /// Closed segments, oldest first, then the current one.
    segments: VecDeque<Segment>,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.log"))
}

/// One replayed entry.
pub struct Replayed {
    pub seq: u64,
    pub payload: Vec<u8>,
}

impl Wal {
    /// Opens the log in `dir` (creating it), returns it with every intact entry in order.
    /// New entries go to a new segment, never after a torn frame.
    pub fn open(dir: &Path) -> io::Result<(Wal, Vec<Replayed>, u64)> {
        std::fs::create_dir_all(dir)?;
        let mut ids: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        let mut segments = VecDeque::new();
        let mut replayed = Vec::new();
        let mut torn = 0u64;
        for &id in &ids {
            let mut bytes = Vec::new();
            File::open(segment_path(dir, id))?.read_to_end(&mut bytes)?;
            let (entries, good) = frames(&bytes);
            torn += (bytes.len() - good) as u64;
            let last_seq = entries.last().map(|e| e.seq);
            replayed.extend(entries);
            segments.push_back(Segment {
                id,
                last_seq,
                bytes: bytes.len() as u64,
            });
        }
        let next = ids.last().map_or(0, |i| i + 1);
        let current = create(dir, next)?;
        segments.push_back(Segment {
            id: next,
            last_seq: None,
            bytes: 0,
        });
        Ok((
            Wal {
                dir: dir.to_owned(),
                current: Arc::new(current),
                segments,
            },
            replayed,
            torn,
        ))
    }

    /// Appends one entry (not durable until [`Wal::sync`]).
    pub fn append(&mut self, seq: u64, payload: &[u8]) -> io::Result<()> {
        let len = 8 + payload.len();
        let mut frame = Vec::with_capacity(8 + len);
        frame.extend_from_slice(&(len as u32).to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&seq.to_le_bytes());
        h.update(payload);
        frame.extend_from_slice(&h.finalize().to_le_bytes());
        frame.extend_from_slice(&seq.to_le_bytes());
        frame.extend_from_slice(payload);
        (&*self.current).write_all(&frame)?;
        let seg = self.segments.back_mut().expect("a current segment");
        seg.last_seq = Some(seq);
        seg.bytes += frame.len() as u64;
        if seg.bytes >= SEGMENT_BYTES {
            self.next_segment()?;
        }
        Ok(())
    }

    /// Starts a new segment when every entry of the current one is below `floor` (so an idle
    /// hub's last entries do not wait for the segment to fill before they can be deleted).
    pub fn rotate_if_sealed(&mut self, floor: u64) -> io::Result<()> {
        let seg = self.segments.back().expect("a current segment");
        if seg.last_seq.is_some_and(|l| l < floor) {
            self.next_segment()?;
        }
        Ok(())
    }

    /// Syncs and closes the current segment (closed segments are durable: only the current
    /// one needs syncing later) and starts the next.
    fn next_segment(&mut self) -> io::Result<()> {
        self.current.sync_data()?;
        let id = self.segments.back().map_or(0, |s| s.id + 1);
        self.current = Arc::new(create(&self.dir, id)?);
        self.segments.push_back(Segment {
            id,
            last_seq: None,
            bytes: 0,
        });
        Ok(())
    }

    /// The file to sync for durability (synced outside the store's lock).
    pub fn current(&self) -> Arc<File> {
        self.current.clone()
    }

    /// Closed segments whose entries are all below `floor` (sealed and, once the chunks are
    /// flushed, no longer needed).
    pub fn removable(&self, floor: u64) -> Vec<u64> {
        let n = self.segments.len().saturating_sub(1);
        self.segments
            .iter()
            .take(n)
            .take_while(|s| s.last_seq.is_none_or(|l| l < floor))
            .map(|s| s.id)
            .collect()
    }

    /// Deletes these segments (returned by [`Wal::removable`]).
    pub fn remove(&mut self, ids: &[u64]) -> io::Result<()> {
        for id in ids {
            std::fs::remove_file(segment_path(&self.dir, *id))?;
            self.segments.retain(|s| s.id != *id);
        }
        if !ids.is_empty() {
            // The deletions themselves are durable once the directory is.
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

fn create(dir: &Path, id: u64) -> io::Result<File> {
    let f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(segment_path(dir, id))?;
    // The new name must survive a crash as well.
    File::open(dir)?.sync_all()?;
    Ok(f)
}

/// The intact frames at the start of `bytes`, and how many bytes they take.
fn frames(bytes: &[u8]) -> (Vec<Replayed>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        if !(8..=MAX_FRAME).contains(&len) {
            break;
        }
        let Some(body) = bytes.get(at + 8..at + 8 + len as usize) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        out.push(Replayed {
            seq: u64::from_le_bytes(body[0..8].try_into().expect("8 bytes")),
            payload: body[8..].to_vec(),
        });
        at += 8 + len as usize;
    }
    (out, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_replay_in_order_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut w, r, _) = Wal::open(dir.path()).unwrap();
            assert!(r.is_empty());
            for seq in 0..10u64 {
                w.append(seq, &[seq as u8; 100]).unwrap();
            }
            w.current().sync_data().unwrap();
        }
        // A torn last frame: half of an entry written when the power went.
        let path = segment_path(dir.path(), 0);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
        let (mut w, r, torn) = Wal::open(dir.path()).unwrap();
        assert_eq!(
            r.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert_eq!(torn, 7);
        assert!(r.iter().all(|e| e.payload.len() == 100));
        // New entries go to a new segment; the old one is removable once all is sealed.
        w.append(10, b"x").unwrap();
        assert_eq!(w.removable(10), vec![0]);
        assert!(w.removable(9).is_empty());
        w.remove(&[0]).unwrap();
        let (_, r, _) = Wal::open(dir.path()).unwrap();
        assert_eq!(r.iter().map(|e| e.seq).collect::<Vec<_>>(), [10]);
    }

    #[test]
    fn a_corrupt_frame_stops_the_replay() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut w, _, _) = Wal::open(dir.path()).unwrap();
            w.append(1, b"first").unwrap();
            w.append(2, b"second").unwrap();
        }
        let path = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let (_, r, torn) = Wal::open(dir.path()).unwrap();
        assert_eq!(r.len(), 1);
        assert!(torn > 0);
    }

    #[test]
    fn segments_roll_over_and_close() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _, _) = Wal::open(dir.path()).unwrap();
        let big = vec![0u8; 1 << 20];
        for seq in 0..9 {
            w.append(seq, &big).unwrap();
        }
        assert!(w.segment_count() >= 3);
        assert_eq!(w.removable(100).len(), w.segment_count() - 1);
    }
}
