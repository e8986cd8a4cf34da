#!/usr/bin/python3
"""What a raw OpenFlow 1.3 client sees of a switch's SET_ASYNC / GET_ASYNC and of the
packet-ins each async configuration lets through, for vecswitch's tests to compare with an
Open vSwitch bridge's (vecswitch/tests/openflow.rs).

Reads a JSON case on stdin: {"target": "tcp:IP:PORT" or null, "ports": [[name, ofport], ...],
"configs": [[packet_in master, packet_in slave], ...]}. With a null target it starts Open
vSwitch as ovs_async.py does (dummy bridge br0 with those ports) and uses its management
socket (ovs_async.answer). The client sends HELLO (1.3 only) and SET_CONFIG (miss_send_len 0xffff: Open vSwitch
sends a management connection no asynchronous message without one), asks GET_ASYNC, then
sets up two tables and a group of controller outputs with `ovs-ofctl -O OpenFlow13` and,
for the default configuration and then for each of `configs` (port status and flow removed
masks with bits the spec does not name), sends four PACKET_OUTs whose packet-ins have Open
vSwitch's reasons action_set, group, packet_out and action, and records which reach it (their
wire reason). Then once more as a slave (ROLE_REQUEST, generation 1). Answers, on stdout,
{"steps": [{"config", "get_async", "packet_ins": {reason name: [wire reasons]}}, ...]}.
"""

import os
import socket
import struct
import subprocess
import sys

sys.dont_write_bytecode = True  # keep pcaps/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ovs_async import answer  # noqa: E402

HELLO, SET_CONFIG, PACKET_IN, ROLE_REQUEST = 0, 9, 10, 24
GET_ASYNC_REQUEST, GET_ASYNC_REPLY, SET_ASYNC = 26, 27, 28

# 60 bytes of IPv4/UDP from 10.0.0.1 to 10.0.0.2.
FRAME = ("020000000002020000000001" + "0800" + "4500002e00000000401100000a0000010a000002"
         + "04d20035001a0000" + "ab" * 18)


def message(kind, body=b"", xid=1):
    return struct.pack("!BBHI", 4, kind, 8 + len(body), xid) + body


class Client:
    def __init__(self, target):
        kind, addr = target.split(":", 1)
        if kind == "unix":
            self.s = socket.socket(socket.AF_UNIX)
            self.s.connect(addr)
        else:
            host, port = addr.rsplit(":", 1)
            self.s = socket.create_connection((host, int(port)))
        self.buf = b""
        self.send(HELLO, struct.pack("!HHI", 1, 8, 1 << 4))
        self.send(SET_CONFIG, struct.pack("!HH", 0, 0xFFFF))
        self.read(0.3)

    def send(self, kind, body=b""):
        self.s.sendall(message(kind, body))

    def read(self, wait):
        """The messages that arrive within `wait` seconds: [(type, body)]."""
        self.s.settimeout(wait)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    break
                self.buf += d
        except socket.timeout:
            pass
        out = []
        while len(self.buf) >= 8:
            _, kind, length, _ = struct.unpack("!BBHI", self.buf[:8])
            if len(self.buf) < length:
                break
            out.append((kind, self.buf[8:length]))
            self.buf = self.buf[length:]
        return out

    def get_async(self):
        self.send(GET_ASYNC_REQUEST)
        for kind, body in self.read(0.5):
            if kind == GET_ASYNC_REPLY:
                return list(struct.unpack("!6I", body))
        return None

    def packet_in_reasons(self):
        return [body[6] for kind, body in self.read(0.4) if kind == PACKET_IN]


def run_case(case, target, env):
    def ofctl(*args):
        r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", args[0], target, *args[1:]],
                           env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"ovs-ofctl {args}: {r.stderr}")

    c = Client(target)
    ofctl("del-flows")
    ofctl("add-flow", "priority=10,ip,actions=goto_table:1")
    ofctl("add-group", "group_id=3,type=all,bucket=controller")

    def packet_ins():
        got = {}
        for name, rule, actions in [
            ("action_set", "table=1,priority=10,ip,actions=write_actions(controller)", "TABLE"),
            ("group", "table=1,priority=10,ip,actions=group:3", "TABLE"),
            ("packet_out", "table=1,priority=10,ip,actions=drop", "controller"),
            ("action", "table=1,priority=10,ip,actions=controller", "TABLE"),
        ]:
            ofctl("add-flow", rule)
            ofctl("packet-out", f"in_port=1 packet={FRAME} actions={actions}")
            got[name] = c.packet_in_reasons()
        return got

    steps = [{"config": "default", "get_async": c.get_async(), "packet_ins": packet_ins()}]
    for pin in case["configs"]:
        c.send(SET_ASYNC, struct.pack("!6I", pin[0], pin[1], 0xFF, 0xFF, 0xFFFFFFFF, 0x10))
        steps.append({"config": pin, "get_async": c.get_async(), "packet_ins": packet_ins()})
    c.send(ROLE_REQUEST, struct.pack("!I4xQ", 3, 1))
    c.read(0.3)
    steps.append({"config": "slave", "get_async": c.get_async(), "packet_ins": packet_ins()})
    return {"steps": steps}


if __name__ == "__main__":
    answer(run_case)
