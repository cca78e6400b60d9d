//! MLLP framing: `0x0B` message `0x1C 0x0D`.
//!
//! The [`Framer`] works as check → parse → advance over the connection's read buffer, like
//! mini-redis's `parse_frame`: it scans what has arrived (remembering how far it got, so a
//! frame arriving in many reads is scanned once), splits a complete frame off the buffer
//! without copying, and never allocates or panics for incomplete or hostile input.
//!
//! - Bytes outside a frame (line feeds between frames, noise) are skipped and reported.
//! - A new start byte inside an unterminated frame means the sender gave up on that frame:
//!   the partial frame is skipped and the new one read.
//! - A frame growing past the limit is cut: its first bytes are kept (so the MSH can be
//!   answered), the rest is dropped as it arrives, up to its end marker or the next start.
//!   The buffer therefore never holds more than the limit plus one read.

use bytes::{Buf, Bytes, BytesMut};

/// Start of block.
pub const START: u8 = 0x0B;
/// End of block, followed by [`CR`].
pub const END: u8 = 0x1C;
pub const CR: u8 = 0x0D;

/// How many bytes of a cut frame are kept for the reply.
pub const HEAD_BYTES: usize = 1024;

/// What the framer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete message, framing bytes removed.
    Frame(Bytes),
    /// Bytes outside any frame, or of an abandoned partial frame, were dropped.
    Skipped(usize),
    /// A frame was longer than the limit; `head` is its beginning. Its remaining bytes are
    /// dropped as they arrive.
    TooLarge { head: Bytes },
}

/// An MLLP deframer for one connection.
#[derive(Debug, Clone)]
pub struct Framer {
    max_frame: usize,
    /// Bytes of the current frame's content already scanned without finding its end.
    scanned: usize,
    /// Dropping the rest of a frame that was too large.
    discarding: bool,
}

impl Framer {
    /// A framer accepting frames of up to `max_frame` bytes of content.
    pub fn new(max_frame: usize) -> Self {
        Framer {
            max_frame: max_frame.max(1),
            scanned: 0,
            discarding: false,
        }
    }

    /// Whether it is dropping the rest of a frame that was too large (a frame in progress).
    pub fn discarding(&self) -> bool {
        self.discarding
    }

    /// The next item from `buf`, or `None` when more bytes are needed. Call until `None`,
    /// then read more into `buf`.
    pub fn next(&mut self, buf: &mut BytesMut) -> Option<Item> {
        loop {
            if buf.is_empty() {
                return None;
            }
            if self.discarding {
                if self.discard(buf) {
                    continue;
                }
                return None;
            }
            if buf[0] != START {
                let n = buf.iter().position(|&b| b == START).unwrap_or(buf.len());
                buf.advance(n);
                return Some(Item::Skipped(n));
            }
            return self.frame(buf);
        }
    }

    /// Inside a frame (buf[0] is START).
    fn frame(&mut self, buf: &mut BytesMut) -> Option<Item> {
        let mut i = 1 + self.scanned;
        while let Some(p) = buf[i..].iter().position(|&b| b == END || b == START) {
            let at = i + p;
            if buf[at] == START {
                // The sender started over: the partial frame before is abandoned.
                self.scanned = 0;
                buf.advance(at);
                return Some(Item::Skipped(at));
            }
            match buf.get(at + 1) {
                Some(&CR) => {
                    self.scanned = 0;
                    let mut frame = buf.split_to(at + 2);
                    frame.truncate(at);
                    frame.advance(1);
                    if frame.len() > self.max_frame {
                        frame.truncate(HEAD_BYTES);
                        return Some(Item::TooLarge {
                            head: frame.freeze(),
                        });
                    }
                    return Some(Item::Frame(frame.freeze()));
                }
                // END is the last byte so far: look at it again with the next read.
                None => {
                    self.scanned = at - 1;
                    return self.check_size(buf);
                }
                // A lone END inside the content: data, however odd.
                Some(_) => i = at + 1,
            }
        }
        self.scanned = buf.len() - 1;
        self.check_size(buf)
    }

    fn check_size(&mut self, buf: &mut BytesMut) -> Option<Item> {
        if self.scanned <= self.max_frame {
            return None;
        }
        let keep = HEAD_BYTES.min(buf.len() - 1);
        let head = Bytes::copy_from_slice(&buf[1..1 + keep]);
        let last = buf[buf.len() - 1];
        buf.clear();
        if last == END {
            // Might be the first half of the end marker.
            buf.extend_from_slice(&[END]);
        }
        self.scanned = 0;
        self.discarding = true;
        Some(Item::TooLarge { head })
    }

    /// Drops the rest of a cut frame. Returns true when its end (or a new start) was found.
    fn discard(&mut self, buf: &mut BytesMut) -> bool {
        let mut i = 0;
        while let Some(p) = buf[i..].iter().position(|&b| b == END || b == START) {
            let at = i + p;
            if buf[at] == START {
                buf.advance(at);
                self.discarding = false;
                return true;
            }
            match buf.get(at + 1) {
                Some(&CR) => {
                    buf.advance(at + 2);
                    self.discarding = false;
                    return true;
                }
                None => {
                    buf.advance(at);
                    return false;
                }
                Some(_) => i = at + 1,
            }
        }
        buf.clear();
        false
    }
}

/// Frames a message for sending.
pub fn encode(message: &[u8], out: &mut BytesMut) {
    out.reserve(message.len() + 3);
    out.extend_from_slice(&[START]);
    out.extend_from_slice(message);
    out.extend_from_slice(&[END, CR]);
}

#[cfg(test)]
mod tests;
