#!/usr/bin/env python3
"""Exhaustion attacks against a running wardhub, with canaries on the other faces.

From attacker addresses (127.0.0.2 for HTTP, 127.0.0.3 for MLLP) it opens SLOW partial HTTP
requests and HALF half-open MLLP frames and trickles a byte into each every few seconds,
while from 127.0.0.1 it measures, once a second for DURATION seconds:
  - GET /healthz (latency, failures),
  - an MQTT canary device's QoS 1 publish (time to PUBACK),
  - an HL7 canary's ORU^R01 (time to AA).
At the end it reports how many attacker connections were still open and the canaries'
figures. Used by tests/bench/attack.sh; standard library only.
"""
import json, os, socket, struct, sys, threading, time, urllib.request

http_addr = os.environ["HTTP"]          # host:port
mqtt_addr = os.environ["MQTT"]
hl7_addr = os.environ["HL7"]
device, secret = os.environ["CANARY"], os.environ["CANARY_SECRET"]
hl7_device = os.environ["HL7_CANARY"]
slow, half = int(os.environ.get("SLOW", "2000")), int(os.environ.get("HALF", "1030"))
duration = int(os.environ.get("DURATION", "30"))
metrics_addr = os.environ["METRICS"]

def hp(a):
    h, p = a.rsplit(":", 1)
    return h, int(p)

def attacker(src, dst, first):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(2)
    s.connect(hp(dst))
    s.sendall(first)
    return s

held, lock = [], threading.Lock()
opened = {"http": 0, "hl7": 0}

def open_all():
    for _ in range(slow):
        try:
            s = attacker("127.0.0.2", http_addr, b"GET /api/v1/ward HTTP/1.1\r\nHost: x\r\nX-a: ")
            with lock: held.append(s); opened["http"] += 1
        except OSError:
            pass
    for _ in range(half):
        try:
            s = attacker("127.0.0.3", hl7_addr, b"\x0b" + b"A" * 1024)
            with lock: held.append(s); opened["hl7"] += 1
        except OSError:
            pass

def trickle(stop):
    while not stop.is_set():
        with lock:
            for s in list(held):
                try: s.send(b"x")
                except OSError:
                    held.remove(s)
        stop.wait(3)

def mqtt_str(b):
    return struct.pack(">H", len(b)) + b

def mqtt_pkt(t, body):
    n, out = len(body), bytearray([t])
    while True:
        d, n = n % 128, n // 128
        out.append(d | (0x80 if n else 0))
        if not n: break
    return bytes(out) + body

class Mqtt:
    def __init__(self):
        self.s = socket.create_connection(hp(mqtt_addr), timeout=10)
        body = mqtt_str(b"MQTT") + bytes([4, 0xC2]) + struct.pack(">H", 30) + mqtt_str(device.encode()) \
            + mqtt_str(device.encode()) + mqtt_str(secret.encode())
        self.s.sendall(mqtt_pkt(0x10, body))
        ack = self.s.recv(4)
        if len(ack) < 4 or ack[3] != 0: raise RuntimeError(f"CONNACK {ack!r}")
        self.pid = 0
    def publish(self, value):
        self.pid = self.pid % 65535 + 1
        payload = json.dumps({"metric": "MDC_ECG_HEART_RATE", "value": value, "unit": "/min",
                              "ts": int(time.time() * 1000)}).encode()
        topic = f"wardhub/v1/devices/{device}/obs".encode()
        t0 = time.monotonic()
        self.s.sendall(mqtt_pkt(0x32, mqtt_str(topic) + struct.pack(">H", self.pid) + payload))
        while True:
            b = self.s.recv(4)
            if not b: raise RuntimeError("closed")
            if b[0] == 0x40: return time.monotonic() - t0

def hl7_once(i):
    ts = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "+0000"
    msg = (f"MSH|^~\\&|CANARY||WARDHUB||{ts}||ORU^R01^ORU_R01|A{i}|P|2.6\rPID|1||X\rOBR|1\r"
           f"OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|72|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||{ts}||||{hl7_device}\r")
    t0 = time.monotonic()
    with socket.create_connection(hp(hl7_addr), timeout=10) as s:
        s.sendall(b"\x0b" + msg.encode() + b"\x1c\r")
        buf = b""
        while b"\x1c\r" not in buf:
            c = s.recv(4096)
            if not c: raise RuntimeError("closed unanswered")
            buf += c
    if b"MSA|AA" not in buf: raise RuntimeError(buf[:80])
    return time.monotonic() - t0

def healthz():
    t0 = time.monotonic()
    with urllib.request.urlopen(f"http://{http_addr}/healthz", timeout=5) as r:
        r.read()
    return time.monotonic() - t0

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000 if xs else float("nan")

def main():
    t_open = time.monotonic()
    open_all()
    print(f"  attack: {opened['http']} partial HTTP requests and {opened['hl7']} half-open MLLP frames "
          f"opened in {time.monotonic() - t_open:.1f} s", flush=True)
    stop = threading.Event()
    threading.Thread(target=trickle, args=(stop,), daemon=True).start()
    res = {"healthz": [], "mqtt": [], "hl7": []}
    fails = {"healthz": 0, "mqtt": 0, "hl7": 0}
    mq = None
    hub_pid = os.environ.get("HUB_PID")
    peak_fds = 0
    for i in range(duration):
        if hub_pid:
            try: peak_fds = max(peak_fds, len(os.listdir(f"/proc/{hub_pid}/fd")))
            except OSError: pass
        t = time.monotonic()
        for name, f in (("healthz", healthz), ("hl7", lambda: hl7_once(i))):
            try: res[name].append(f())
            except Exception: fails[name] += 1
        try:
            if mq is None: mq = Mqtt()
            res["mqtt"].append(mq.publish(70 + i % 5))
        except Exception:
            fails["mqtt"] += 1; mq = None
        time.sleep(max(0, 1 - (time.monotonic() - t)))
    stop.set()
    for name in ("healthz", "mqtt", "hl7"):
        print(f"  {name:8s} ok {len(res[name]):3d}  failed {fails[name]:3d}  "
              f"p50 {pct(res[name], 0.5):7.1f} ms  p99 {pct(res[name], 0.99):7.1f} ms", flush=True)
    open_now = {}
    with urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            for key in ('wardhub_connections_open{face="http"}', 'wardhub_adapter_connections{adapter="hl7_mllp"}',
                        'wardhub_connections_refused_total{face="http",limit="per_source"}',
                        'wardhub_connections_refused_total{face="hl7",limit="per_source"}',
                        'wardhub_connections_refused_total{face="hl7",limit="frame_timeout"}'):
                if line.startswith(key + " "):
                    open_now[key] = float(line.split()[-1])
    if hub_pid:
        print(f"  hub file descriptors during the attack: peak {peak_fds}", flush=True)
    print(f"  after {duration} s the hub reports:", flush=True)
    for k, v in open_now.items():
        print(f"    {k} {v:.0f}", flush=True)
    for s in held: s.close()
    return 0 if all(v == 0 for v in fails.values()) else 1

sys.exit(main())
