#!/usr/bin/env python3
"""An IHE PCD ACM Alert Manager for wardhub's end-to-end tests, built on python-hl7 (PyPI "hl7").

It receives Report Alert [PCD-04] (ORU^R40^ORU_R40) messages over MLLP and, when told where,
answers each new alarm with Report Alert Status [PCD-05] (ORA^R41^ORA_R41) messages, as an Alert
Manager does once the Alert Communicator reports what became of the notification.

The MLLP server is python-hl7's asyncio one (hl7.mllp.start_hl7_server, HL7StreamReader.readblock),
every message is parsed by the library (hl7.parse) and answered with an ACK the library makes
(Message.create_ack). PCD-05 messages are sent with the library's client (hl7.client.MLLPClient),
their text escaped by the library (Message.escape), and each answer is parsed by hl7.parse and
must be an AA.

Usage:
  python3 tests/peers/acm_manager.py --port-file PATH --out PATH.jsonl [--port N]
      [--status-to HOST:PORT] [--accept-after S] [--reject]

It listens on 127.0.0.1 (port 0, i.e. any free port, unless --port N), writes the bound port to
--port-file (tmp file + rename) once it is listening, appends one JSON line per PCD-04 to --out
(flushed and fsynced before the ACK is sent), and runs until SIGTERM or SIGINT, then exits 0.
With --status-to, every alarm it has not seen before gets "Delivered" and "Read" at once, then
"Accepted" (or "Rejected" with --reject) after --accept-after seconds (default 1); each status
sent is also a JSON line of --out (kind "status").
"""

import argparse
import asyncio
import datetime
import json
import os
import signal
import sys

import hl7
import hl7.client
import hl7.mllp
from hl7.mllp import InvalidBlockError

APPLICATION = "ACM_TEST_AM"
PROFILE_PCD05 = "IHE_PCD_005^IHE PCD^1.3.6.1.4.1.19376.1.6.1.5.1^ISO"
# Phases of a first indication (TF-2 B.7: OBR-29 empty, OBR-3 is the alarm's id).
FIRST_PHASES = ("start", "start_only", "tpoint")


def log(*args):
    print("acm_manager:", *args, file=sys.stderr, flush=True)


def now_hl7():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H%M%S.%f")[:-3] + "+0000"


# ---------------------------------------------------------------- field access (python-hl7)


def _segments(message, name):
    try:
        return list(message.segments(name))
    except KeyError:
        return []


def _first(message, name):
    segs = _segments(message, name)
    return segs[0] if segs else None


def _leaf(segment, field, component=1, repetition=1, subcomponent=1):
    """One subcomponent of one component of one repetition, unescaped by the library
    (Segment.extract_field). "" when absent, None when the segment is."""
    if segment is None:
        return None
    try:
        return str(segment.extract_field(1, field, repetition, component, subcomponent))
    except IndexError:
        return ""


def _field_text(segment, field):
    """A whole field as its HL7 text (components joined with ^, repetitions with ~)."""
    if segment is None:
        return None
    if field >= len(segment):
        return ""
    return str(segment(field))


def _code(seg):
    """OBX-3.1 and OBX-3.2."""
    return _leaf(seg, 3, 1), _leaf(seg, 3, 2)


def _facet(obx, code, *refids):
    """The OBX-5 of the row whose OBX-3 is this MDC code or one of these REFIDs (the Dräger and
    GE codes of 2019-2021 differ from the TF's; the REFID is what they mostly agree on, GE
    writes MDC_ATTR_ALERT_STATE for the alarm state)."""
    for seg in obx:
        c, r = _code(seg)
        if c == code or r in refids:
            return _leaf(seg, 5)
    return None


def _event_row(obx):
    """The event identification row: facet 1 (OBX-4 `x.x.x.x.1`), else the first OBX with a
    value type (the device rows of GE's messages have none)."""
    for seg in obx:
        sub = _field_text(seg, 4).split(".")
        if len(sub) == 5 and sub[4] == "1":
            return seg
    for seg in obx:
        if _leaf(seg, 2):
            return seg
    return obx[0] if obx else None


def summarize(message, raw):
    msh = message.segment("MSH")
    pid = _first(message, "PID")
    pv1 = _first(message, "PV1")
    obr = _first(message, "OBR")
    prt = _first(message, "PRT")
    obx = _segments(message, "OBX")
    event = _event_row(obx)

    indication_id = _leaf(obr, 3, 1)
    # OBR-29 is an EIP: its filler part (component 2) holds the alarm's id as subcomponents.
    parent = _leaf(obr, 29, 2, 1, 1) or _leaf(obr, 29, 1, 1, 1)
    phase = _facet(obx, "68481", "MDC_ATTR_EVENT_PHASE")
    priority = _facet(obx, "68484", "MDC_ATTR_ALARM_PRIORITY")
    alert_type = _facet(obx, "68485", "MDC_ATTR_ALERT_TYPE")
    if event is not None and (priority is None or alert_type is None):
        # The deprecated form: priority and type as repetitions of OBX-8 of the event row.
        flags = [str(r) for r in event(8)] if len(event) > 8 else []
        priority = priority or next((f for f in flags if f in ("PH", "PM", "PL", "PN")), None)
        alert_type = alert_type or next((f for f in flags if f in ("SP", "ST", "SA")), None)
    event_code, event_name = _code(event) if event is not None else (None, None)
    return {
        "kind": "alarm",
        "control_id": _leaf(msh, 10),
        "message_type": _field_text(msh, 9),
        "profile": _field_text(msh, 21),
        "sending_application": _field_text(msh, 3),
        # The alarm as the profile carries it: OBR-29 in later indications, OBR-3 in the first.
        "alarm_id": parent or indication_id,
        "indication_id": indication_id,
        "indication_namespace": _leaf(obr, 3, 2),
        "parent": _field_text(obr, 29),
        "phase": phase,
        "state": _facet(obx, "68482", "MDC_ATTR_ALARM_STATE", "MDC_ATTR_ALERT_STATE"),
        "inactivation": _facet(obx, "68483", "MDC_ATTR_ALARM_INACTIVATION_STATE"),
        "priority": priority,
        "alert_type": alert_type,
        "event_code": event_code,
        "event_name": event_name,
        "text": _leaf(event, 5) if event is not None else None,
        "event_time": _field_text(event, 14) if event is not None else None,
        "device": _field_text(event, 18) if event is not None else None,
        "location": _field_text(pv1, 3),
        "bed": _leaf(pv1, 3, 3),
        "patient_id": _leaf(pid, 3, 1),
        "identity_unknown": _field_text(pid, 31),
        "recipient": _leaf(prt, 5, 1),
        "obx_count": len(obx),
        "segments": [str(seg[0]) for seg in message],
        "raw": raw,
    }


# ---------------------------------------------------------------- our own AR (unparseable input)


def build_reject(control_id, text):
    """An AR for a message python-hl7 could not parse (MSA-2 empty: MSH-10 is unknown)."""
    ctrl = "R" + datetime.datetime.now().strftime("%H%M%S%f")
    for ch in "|^~\\&\r\n":
        text = text.replace(ch, " ")
    return (
        f"MSH|^~\\&|{APPLICATION}||||{now_hl7()}||ACK|{ctrl}|P|2.6\r"
        f"MSA|AR|{control_id or ''}|{text[:80]}\r"
    )


# ---------------------------------------------------------------- PCD-05


def build_pcd05(alarm, status, first, seq):
    """A Report Alert Status for `alarm` (a summary), as TF-2 3.5.4.1.4 and B.10 describe it:
    OBR-3 and OBR-29 echo the alarm's PCD-04, MSA-2 its control id (TF work in progress), and
    one PRT carries the status (PRT-3.2, coding system IHE_PCD_ACM), the participation (AAP),
    the recipient (PRT-5) and the time (PRT-11)."""
    now = now_hl7()
    # Unique across restarts of the peer too (MSH-10 is the receiver's duplicate check).
    control = f"AM{os.getpid()}-{seq}"
    template = (
        f"MSH|^~\\&|{APPLICATION}||X||{now}||ORA^R41^ORA_R41|{control}|P|2.6|||AL|NE||"
        f"UNICODE UTF-8|||{PROFILE_PCD05}\r"
    )
    m = hl7.parse(template)
    esc = m.escape
    receiver = alarm["sending_application"] or ""
    namespace = alarm["indication_namespace"] or receiver.split("^")[0]
    parent = alarm["parent"] or f"^{esc(alarm['alarm_id'])}&{esc(namespace)}"
    recipient = alarm["recipient"] or "AM-TEST-NURSE"
    segments = [
        # MSH-5 is the alarm's sender, as it wrote its MSH-3 (already HL7 text).
        template.replace("||X||", f"||{receiver}||", 1).rstrip("\r"),
        f"MSA|AA|{esc(alarm['control_id'] or '')}",
        f"OBR|1||{esc(alarm['indication_id'] or '')}^{esc(namespace)}|196616^MDC_EVT_ALARM^MDC"
        f"|||{now}" + "|" * 21 + f"|{parent}",
        f"PRT|{esc(alarm['alarm_id'])}^{APPLICATION}|{'AD' if first else 'UP'}"
        f"|{status}^{status}^IHE_PCD_ACM|AAP^Alert Acknowledging Provider^HL70912"
        f"|{esc(recipient)}||||||{now}",
    ]
    text = "\r".join(segments) + "\r"
    hl7.parse(text)  # the library must be able to read what we send
    return control, text


def _read_answer(client, first_chunk):
    """The whole MLLP answer (MLLPClient.send returns the first recv only)."""
    data = first_chunk
    while b"\x1c" not in data:
        more = client.socket.recv(4096)
        if not more:
            break
        data += more
    return data.strip(b"\x0b\x1c\r\n").decode("utf-8", errors="replace")


def send_pcd05(host, port, text):
    """Sends one PCD-05 with python-hl7's MLLPClient; returns the answer's MSA-1 and text."""
    with hl7.client.MLLPClient(host, port) as client:
        answer = _read_answer(client, client.send_message(text))
    ack = hl7.parse(answer)
    return str(ack.segment("MSA")(1)), answer


# ---------------------------------------------------------------- server


class Manager:
    def __init__(self, args):
        self.args = args
        self.out = open(args.out, "a", encoding="utf-8")
        self.tasks = set()
        self.seen = set()
        self.seq = 0

    def record(self, obj):
        self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.out.flush()
        os.fsync(self.out.fileno())

    def handle_block(self, block):
        """Returns the ACK text for one MLLP block."""
        try:
            raw = block.decode("utf-8")
        except UnicodeDecodeError as e:
            raw = block.decode("utf-8", errors="replace")
            self.record({"kind": "error", "error": f"not UTF-8: {e}", "raw": raw})
            return build_reject(None, "message is not UTF-8")
        try:
            message = hl7.parse(raw)
            message.segment("MSH")
        except Exception as e:
            self.record({"kind": "error", "error": f"hl7.parse failed: {type(e).__name__}: {e}",
                         "raw": raw})
            return build_reject(None, "message could not be parsed")
        try:
            summary = summarize(message, raw)
        except Exception as e:
            self.record({"kind": "error", "error": f"reading fields failed: {type(e).__name__}: {e}",
                         "raw": raw})
            return build_reject(None, "message could not be read")
        try:
            ack = str(message.create_ack(ack_code="AA", application=APPLICATION))
        except Exception as e:
            summary["error"] = f"create_ack failed: {type(e).__name__}: {e}"
            summary["ack_code"] = "AR"
            self.record(summary)
            return build_reject(summary.get("control_id"), "could not make an ACK")
        summary["ack_code"] = "AA"
        self.record(summary)
        self.maybe_report(summary)
        return ack

    def maybe_report(self, alarm):
        if not self.args.status_to or not alarm.get("alarm_id"):
            return
        key = (alarm["sending_application"], alarm["alarm_id"])
        if key in self.seen:
            return
        self.seen.add(key)
        task = asyncio.get_running_loop().create_task(self.report(alarm))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def report(self, alarm):
        host, port = self.args.status_to
        final = "Rejected" if self.args.reject else "Accepted"
        plan = [("Delivered", 0.0), ("Read", 0.0), (final, self.args.accept_after)]
        for i, (status, delay) in enumerate(plan):
            if delay:
                await asyncio.sleep(delay)
            self.seq += 1
            control, text = build_pcd05(alarm, status, i == 0, self.seq)
            line = {"kind": "status", "alarm_id": alarm["alarm_id"], "status": status,
                    "control_id": control, "raw": text}
            try:
                code, answer = await asyncio.to_thread(send_pcd05, host, port, text)
            except Exception as e:
                line.update(ok=False, error=f"{type(e).__name__}: {e}")
                self.record(line)
                log(f"PCD-05 {status} for alarm {alarm['alarm_id']} failed: {e}")
                return
            line.update(ok=code == "AA", ack_code=code, answer=answer)
            self.record(line)
            if code != "AA":
                log(f"PCD-05 {status} for alarm {alarm['alarm_id']} answered {code}")
                return

    async def on_client(self, reader, writer):
        task = asyncio.current_task()
        self.tasks.add(task)
        peer = writer.get_extra_info("peername")
        try:
            while True:
                try:
                    block = await reader.readblock()
                except asyncio.IncompleteReadError as e:
                    if e.partial.strip():
                        self.record({"kind": "error",
                                     "error": "connection closed inside an MLLP block",
                                     "raw": e.partial.decode("utf-8", errors="replace")})
                    break
                except InvalidBlockError as e:
                    self.record({"kind": "error", "error": f"invalid MLLP block: {e}"})
                    ack = build_reject(None, "invalid MLLP block")
                except ValueError as e:  # over the reader's limit
                    self.record({"kind": "error", "error": f"MLLP block too long: {e}"})
                    ack = build_reject(None, "message too long")
                else:
                    ack = self.handle_block(block)
                writer.writeblock(ack.encode("utf-8"))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.tasks.discard(task)
            try:
                writer.close()
            except Exception:
                pass
            log(f"connection from {peer} closed")


def write_port_file(path, port):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


async def main_async(args):
    manager = Manager(args)
    server = await hl7.mllp.start_hl7_server(
        manager.on_client, "127.0.0.1", args.port, encoding="utf-8", limit=16 * 1024 * 1024
    )
    port = server.sockets[0].getsockname()[1]
    write_port_file(args.port_file, port)
    log(f"listening on 127.0.0.1:{port}, writing {args.out}"
        + (f", statuses to {args.status_to[0]}:{args.status_to[1]}" if args.status_to else ""))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log("stopping")
    server.close()
    for task in list(manager.tasks):
        task.cancel()
    await asyncio.sleep(0)
    manager.out.close()


def host_port(s):
    host, sep, port = s.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT")
    return host.strip("[]"), int(port)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port-file", required=True, help="where to write the bound port")
    p.add_argument("--out", required=True, help="JSON-lines file, one line per message")
    p.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0: any)")
    p.add_argument("--status-to", type=host_port, metavar="HOST:PORT",
                   help="send PCD-05 statuses of each new alarm to this MLLP listener")
    p.add_argument("--accept-after", type=float, default=1.0, metavar="S",
                   help="seconds between Read and Accepted/Rejected (default 1)")
    p.add_argument("--reject", action="store_true", help="end with Rejected, not Accepted")
    args = p.parse_args()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
