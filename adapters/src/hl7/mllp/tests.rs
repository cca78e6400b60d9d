use proptest::prelude::*;

use super::*;

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(msg, &mut out);
    out.to_vec()
}

/// Feeds `input` in `chunks` and collects everything the framer yields.
fn run(max: usize, input: &[u8], chunk: usize) -> Vec<Item> {
    let mut f = Framer::new(max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        while let Some(item) = f.next(&mut buf) {
            out.push(item);
        }
        assert!(buf.len() <= max + 2 + chunk, "buffer grew to {}", buf.len());
    }
    out
}

fn frame(s: &str) -> Item {
    Item::Frame(Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn one_frame() {
    assert_eq!(run(100, &framed(b"MSH|a"), 1000), [frame("MSH|a")]);
    assert_eq!(run(100, &framed(b""), 1000), [frame("")]);
}

#[test]
fn incomplete_frames_wait() {
    let mut f = Framer::new(100);
    let mut buf = BytesMut::from(&b"\x0bMSH|abc\x1c"[..]);
    assert_eq!(f.next(&mut buf), None);
    assert_eq!(&buf[..], b"\x0bMSH|abc\x1c");
    buf.extend_from_slice(b"\r");
    assert_eq!(f.next(&mut buf), Some(frame("MSH|abc")));
    assert!(buf.is_empty());
    assert_eq!(f.next(&mut buf), None);
}

#[test]
fn garbage_between_frames_is_skipped() {
    let mut input = b"\r\n".to_vec();
    input.extend(framed(b"A"));
    input.extend(b"noise\x1c\r");
    input.extend(framed(b"B"));
    input.extend(b"\n");
    assert_eq!(
        run(100, &input, 1000),
        [
            Item::Skipped(2),
            frame("A"),
            Item::Skipped(7),
            frame("B"),
            Item::Skipped(1)
        ]
    );
}

#[test]
fn a_new_start_abandons_a_partial_frame() {
    let mut input = b"\x0bMSH|partial".to_vec();
    input.extend(framed(b"MSH|whole"));
    assert_eq!(
        run(100, &input, 1000),
        [Item::Skipped(12), frame("MSH|whole")]
    );
    // Same when the pieces arrive separately.
    assert_eq!(run(100, &input, 3), [Item::Skipped(12), frame("MSH|whole")]);
}

#[test]
fn lone_end_bytes_are_content() {
    assert_eq!(run(100, &framed(b"a\x1cb"), 1000), [frame("a\x1cb")]);
    assert_eq!(run(100, &framed(b"a\x1cb"), 1), [frame("a\x1cb")]);
}

#[test]
fn oversized_frames_are_cut_and_the_next_one_read() {
    let big = vec![b'x'; 5000];
    let mut input = framed(&big);
    input.extend(framed(b"small"));
    for chunk in [1, 100, 1000, 10_000] {
        let items = run(1000, &input, chunk);
        assert_eq!(items.len(), 2, "chunk {chunk}: {items:?}");
        match &items[0] {
            Item::TooLarge { head } => {
                assert!(!head.is_empty() && head.len() <= HEAD_BYTES);
                assert!(head.iter().all(|&b| b == b'x'));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(items[1], frame("small"), "chunk {chunk}");
    }
}

#[test]
fn a_never_terminated_frame_is_cut_at_the_limit() {
    let mut input = vec![START];
    input.extend(std::iter::repeat_n(b'y', 10_000));
    let items = run(1000, &input, 64);
    assert!(
        matches!(items.as_slice(), [Item::TooLarge { .. }]),
        "{items:?}"
    );
    // What comes after it (its end, then a new frame) is read normally.
    let mut f = Framer::new(1000);
    let mut buf = BytesMut::from(&input[..]);
    assert!(matches!(f.next(&mut buf), Some(Item::TooLarge { .. })));
    assert!(buf.len() <= 1, "kept {} bytes", buf.len());
    buf.extend_from_slice(b"yyy\x1c");
    assert_eq!(f.next(&mut buf), None);
    buf.extend_from_slice(b"\r");
    buf.extend_from_slice(&framed(b"next"));
    assert_eq!(f.next(&mut buf), Some(frame("next")));
}

#[test]
fn the_limit_is_inclusive() {
    let msg = vec![b'm'; 64];
    assert_eq!(
        run(64, &framed(&msg), 1),
        [Item::Frame(Bytes::from(msg.clone()))]
    );
    assert_eq!(
        run(64, &framed(&msg), 1000),
        [Item::Frame(Bytes::from(msg))]
    );
    assert!(matches!(
        run(63, &framed(&[b'm'; 64]), 1000).as_slice(),
        [Item::TooLarge { .. }]
    ));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        chunk in 1..300usize,
        max in 1..500usize,
    ) {
        let _ = run(max, &bytes, chunk);
    }

    #[test]
    fn framing_heavy_bytes_never_panic(
        bytes in proptest::collection::vec(prop::sample::select(vec![START, END, CR, b'a']), 0..500),
        chunk in 1..50usize,
        max in 1..20usize,
    ) {
        let _ = run(max, &bytes, chunk);
    }

    #[test]
    fn frames_split_anywhere_reassemble(
        msgs in proptest::collection::vec(
            proptest::collection::vec(any::<u8>().prop_filter("no framing bytes", |b| *b != START && *b != END), 0..200),
            1..8,
        ),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut input = Vec::new();
        for m in &msgs {
            input.extend(framed(m));
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        points.sort_unstable();
        let mut f = Framer::new(1000);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut last = 0;
        for p in points.into_iter().chain([input.len()]) {
            buf.extend_from_slice(&input[last..p]);
            last = p;
            while let Some(item) = f.next(&mut buf) {
                got.push(item);
            }
        }
        let want: Vec<Item> = msgs.iter().map(|m| Item::Frame(Bytes::from(m.clone()))).collect();
        prop_assert_eq!(got, want);
    }
}
