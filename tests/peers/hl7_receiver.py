#!/usr/bin/env python3
"""An HL7 v2 MLLP receiver for wardhub's end-to-end tests, built on python-hl7 (PyPI "hl7").

The MLLP framing and the server are python-hl7's own asyncio ones (hl7.mllp.start_hl7_server,
HL7StreamReader.readblock); every message is parsed by the library's parser (hl7.parse) and
answered with an ACK the library makes (Message.create_ack). Only a message the library cannot
parse is answered with an AR built here.

Usage:
  python3 tests/peers/hl7_receiver.py --port-file PATH --out PATH.jsonl [--port N]
      [--ack AA|AE|AR] [--ack-first-n K --ack-first-code AE]

It listens on 127.0.0.1 (port 0, i.e. any free port, unless --port N), writes the bound port to
--port-file (tmp file + rename) once it is listening, appends one JSON line per message to --out
(flushed and fsynced before the ACK is sent), and runs until SIGTERM or SIGINT, then exits 0.
"""

import argparse
import asyncio
import datetime
import json
import os
import signal
import sys

import hl7
import hl7.mllp
from hl7.mllp import InvalidBlockError

ACK_CODES = ("AA", "AE", "AR", "CA", "CE", "CR")


def log(*args):
    print("hl7_receiver:", *args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- field access (python-hl7)


def _segments(message, name):
    try:
        return list(message.segments(name))
    except KeyError:
        return []


def _leaf(segment, field, component=1, repetition=1):
    """One component of one repetition, unescaped by the library (Segment.extract_field).
    "" when the field or component is absent."""
    if segment is None:
        return None
    try:
        return str(segment.extract_field(1, field, repetition, component, 1))
    except IndexError:
        return ""


def _field_text(segment, field):
    """A whole field as its HL7 text (components joined with ^, repetitions with ~)."""
    if segment is None:
        return None
    if field >= len(segment):
        return ""
    return str(segment(field))


def _component_text(segment, field, component, repetition=1):
    """One component of one repetition as HL7 text (its subcomponents joined with &)."""
    if segment is None:
        return None
    if field >= len(segment):
        return ""
    f = segment(field)
    if repetition > len(f):
        return ""
    rep = f(repetition)
    if not isinstance(rep, hl7.Repetition):
        return str(rep) if component == 1 else ""
    if component > len(rep):
        return ""
    return str(rep(component))


def summarize(message, raw):
    msh = message.segment("MSH")
    pids = _segments(message, "PID")
    pid = pids[0] if pids else None
    pv1s = _segments(message, "PV1")
    pv1 = pv1s[0] if pv1s else None
    obx = []
    for seg in _segments(message, "OBX"):
        obx.append(
            {
                "set_id": _leaf(seg, 1),
                "value_type": _leaf(seg, 2),
                "code": _leaf(seg, 3, 1),
                "code_text": _leaf(seg, 3, 2),
                "system": _leaf(seg, 3, 3),
                "path": _field_text(seg, 4),
                "value": _field_text(seg, 5),
                "unit": _field_text(seg, 6),
                "status": _leaf(seg, 11),
                "time": _field_text(seg, 14),
                "device": _field_text(seg, 18),
            }
        )
    return {
        "control_id": _leaf(msh, 10),
        "message_type": _field_text(msh, 9),
        "profile": _field_text(msh, 21),
        "sending_application": _field_text(msh, 3),
        "patient_id": _leaf(pid, 3, 1),
        # PID-3.4 (assigning authority, an HD) as text: namespace&universal id&type.
        "patient_authority": _component_text(pid, 3, 4),
        "family": _leaf(pid, 5, 1),
        "given": _leaf(pid, 5, 2),
        "birth_date": _field_text(pid, 7),
        "sex": _field_text(pid, 8),
        "location": _field_text(pv1, 3),
        "obx": obx,
        "segments": [str(seg[0]) for seg in message],
        "raw": raw,
    }


# ---------------------------------------------------------------- our own AR (unparseable input)


def build_reject(control_id, text):
    """An AR for a message python-hl7 could not parse (its MSH-10 is unknown: MSA-2 empty) or
    could not make an ACK for."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H%M%S")
    ctrl = "R" + datetime.datetime.now().strftime("%H%M%S%f")
    # Keep MSA-3 free of HL7 delimiters.
    for ch in "|^~\\&\r\n":
        text = text.replace(ch, " ")
    return (
        f"MSH|^~\\&|WARDHUB_TEST_RECEIVER||||{now}||ACK|{ctrl}|P|2.6\r"
        f"MSA|AR|{control_id or ''}|{text[:80]}\r"
    )


# ---------------------------------------------------------------- server


class Receiver:
    def __init__(self, args):
        self.args = args
        self.accepted = 0  # messages parsed so far (for --ack-first-n)
        self.out = open(args.out, "a", encoding="utf-8")
        self.tasks = set()

    def record(self, obj):
        self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.out.flush()
        os.fsync(self.out.fileno())

    def ack_code_for_next(self):
        self.accepted += 1
        if self.args.ack_first_n and self.accepted <= self.args.ack_first_n:
            return self.args.ack_first_code
        return self.args.ack

    def handle_block(self, block):
        """Returns the ACK text for one MLLP block."""
        try:
            raw = block.decode("utf-8")
        except UnicodeDecodeError as e:
            raw = block.decode("utf-8", errors="replace")
            self.record({"error": f"not UTF-8: {e}", "raw": raw})
            return build_reject(None, "message is not UTF-8")
        try:
            message = hl7.parse(raw)
            message.segment("MSH")
        except Exception as e:  # the library's parser refused it
            self.record({"error": f"hl7.parse failed: {type(e).__name__}: {e}", "raw": raw})
            return build_reject(None, "message could not be parsed")
        try:
            summary = summarize(message, raw)
        except Exception as e:
            self.record({"error": f"reading fields failed: {type(e).__name__}: {e}", "raw": raw})
            return build_reject(_safe_control_id(message), "message could not be read")
        code = self.ack_code_for_next()
        try:
            ack = str(message.create_ack(ack_code=code))
        except Exception as e:
            summary["error"] = f"create_ack failed: {type(e).__name__}: {e}"
            summary["ack_code"] = "AR"
            self.record(summary)
            return build_reject(summary.get("control_id"), "could not make an ACK")
        summary["ack_code"] = code
        self.record(summary)
        return ack

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
                        self.record(
                            {"error": "connection closed inside an MLLP block",
                             "raw": e.partial.decode("utf-8", errors="replace")}
                        )
                    break
                except InvalidBlockError as e:
                    self.record({"error": f"invalid MLLP block: {e}"})
                    ack = build_reject(None, "invalid MLLP block")
                except ValueError as e:  # over the reader's limit
                    self.record({"error": f"MLLP block too long: {e}"})
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


def _safe_control_id(message):
    try:
        return str(message.segment("MSH").extract_field(1, 10))
    except Exception:
        return None


def write_port_file(path, port):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


async def main_async(args):
    receiver = Receiver(args)
    server = await hl7.mllp.start_hl7_server(
        receiver.on_client, "127.0.0.1", args.port, encoding="utf-8", limit=16 * 1024 * 1024
    )
    port = server.sockets[0].getsockname()[1]
    write_port_file(args.port_file, port)
    log(f"listening on 127.0.0.1:{port}, writing {args.out}")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log("stopping")
    server.close()
    for task in list(receiver.tasks):
        task.cancel()
    await asyncio.sleep(0)
    receiver.out.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port-file", required=True, help="where to write the bound port")
    p.add_argument("--out", required=True, help="JSON-lines file, one line per message")
    p.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0: any)")
    p.add_argument("--ack", default="AA", choices=ACK_CODES, help="ACK code (default AA)")
    p.add_argument("--ack-first-n", type=int, default=0, metavar="K",
                   help="answer the first K messages with --ack-first-code instead")
    p.add_argument("--ack-first-code", default="AE", choices=ACK_CODES)
    args = p.parse_args()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
