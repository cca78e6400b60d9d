#!/usr/bin/env python3
"""Where a process's CPU time goes, by component: reads `perf script` output (with call
chains) on stdin and attributes each sample to the first frame, from the leaf up, that names a
component. Used by tests/bench/ingest-vs-mosquitto.sh."""
import re
import sys

# (component, pattern on a frame's symbol), first match from the leaf up wins.
RULES = [
    ("JSON decode (MQTT JSON adapter)", r"serde_json|wardhub_adapters::mqtt_json"),
    ("store: sled", r"^sled::"),
    ("store: chunks, log, queries", r"wardhub::store::"),
    ("alarms", r"wardhub::alarms::"),
    ("pipeline (registry lookup, validation)", r"wardhub::pipeline|wardhub::registry|wardhub_adapters::model"),
    ("edge (MQTT sessions, packets, PUBACK)", r"wardhub::broker::edge|wardhub::broker::packet|wardhub::broker::"),
    ("rumqttd (internal broker)", r"^rumqttd::"),
    ("HTTP / metrics", r"wardhub::http|hyper::|axum::|prometheus::"),
    ("TCP and sockets (kernel)", r"^(tcp_|ip_|__ip|sock_|__sys_(send|recv)|inet_|skb_|__tcp|__skb|sk_|netif|net_rx|__netif|process_backlog|loopback|__dev_queue|dev_hard|ep_|do_epoll|__x64_sys_epoll|sys_epoll)"),
    ("fsync / file writes (kernel)", r"^(ext4_|jbd2|__x64_sys_fdatasync|do_fsync|file_write|vfs_write|iomap|blk_|submit_bio|xfs_)"),
    ("tokio runtime", r"^tokio::"),
]
COMPILED = [(name, re.compile(p)) for name, p in RULES]


def main():
    counts = {}
    total = 0
    stack = []

    def flush():
        nonlocal total
        if not stack:
            return
        total += 1
        for sym in stack:
            for name, rx in COMPILED:
                if rx.search(sym):
                    counts[name] = counts.get(name, 0) + 1
                    return
        counts["other (scheduler, allocator outside a component, libc)"] = counts.get("other (scheduler, allocator outside a component, libc)", 0) + 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            stack = []
            continue
        if line.startswith((" ", "\t")):
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                sym = re.sub(r"\+0x[0-9a-f]+$", "", parts[1].split(" (")[0])
                # Rust symbols: drop the leading '<' of trait impls.
                stack.append(sym.lstrip("<"))
        # a header line starts a sample; its frames follow
    flush()
    print(f"{'component':<58} {'share':>7}")
    for name, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{name:<58} {100.0 * n / max(total, 1):6.1f}%")
    print(f"({total} samples)")


main()
