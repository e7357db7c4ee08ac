#!/usr/bin/env python3
"""Roll one release across many liveswap masters, as `liveswap -u FILE --hosts LIST` does.

The first host is the canary; the rest follow --batch at a time. At the first
failure the rollout stops and every host already upgraded is rolled back to
the release it ran before (each master says which: UpgradeResponse.
previous_target); hosts not reached are left alone. Every host must answer
GetStatus before any is touched.

Needs grpcio, protobuf and stubs generated from liveswap's proto, as
deploy.py (next to this file) explains; it reuses deploy.py's token lookup.

    PYTHONPATH=gen python3 fleet_rollout.py --hosts 10.0.0.5:3000,10.0.0.6:3000 /srv/app/releases/42/server.js
    PYTHONPATH=gen python3 fleet_rollout.py --hosts dns:myapp-control:3000 --tls-ca ca.pem /srv/app/current/server.js

Exit codes, as the liveswap CLI: 0 every host upgraded; 1 the rollout failed
and the upgraded hosts were rolled back; 5 a rollback failed too.
"""
import argparse
import os
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc

from deploy import STDERR_TAIL_KEY, token_file
from liveswap.v1 import liveswap_pb2, liveswap_pb2_grpc


def hosts_of(spec):
    """host:port and dns:NAME:PORT entries -> ["host:port", ...], dns entries sorted, no duplicates."""
    hosts = []
    for entry in (e.strip() for e in spec.split(",")):
        if entry.startswith("dns:"):
            _, name, port = entry.split(":")
            infos = socket.getaddrinfo(name, int(port), proto=socket.IPPROTO_TCP)
            addresses = sorted({info[4][0] for info in infos})
            found = ["[%s]:%s" % (a, port) if ":" in a else "%s:%s" % (a, port) for a in addresses]
        else:
            found = [entry]
        hosts.extend(h for h in found if h not in hosts)
    return hosts


class Host:
    def __init__(self, address, args):
        self.address = address
        token = args.token or os.environ.get("LIVESWAP_TOKEN")
        if not token:
            try:
                with open(token_file(address, args.state_dir)) as f:
                    token = f.read().strip()
            except OSError:
                token = None
        self.metadata = [("authorization", "Bearer " + token)] if token else []
        if args.tls_ca:
            with open(args.tls_ca, "rb") as f:
                credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
            self.channel = grpc.secure_channel(address, credentials)
        else:
            self.channel = grpc.insecure_channel(address)
        self.stub = liveswap_pb2_grpc.LiveswapServiceStub(self.channel)
        self.state = "untouched"
        self.previous = ""
        self.error = ""

    def report(self, state, detail):
        self.state = state
        print("%s: %s: %s" % (self.address, state, detail), flush=True)

    def upgrade(self, target):
        """Returns True once upgraded; on failure its master has rolled back by itself."""
        self.report("upgrading", "upgrading to " + target)
        try:
            reply = self.stub.Upgrade(liveswap_pb2.UpgradeRequest(target=target), metadata=self.metadata)
        except grpc.RpcError as error:
            self.error = error.details()
            tail = [v.decode("utf-8", "replace") for k, v in (error.trailing_metadata() or ()) if k == STDERR_TAIL_KEY]
            self.report("failed", self.error + "".join("\n  | " + line for t in tail for line in t.splitlines()))
            return False
        self.previous = reply.previous_target
        self.report("upgraded", "generation %d (%s) in %d ms" % (reply.generation, reply.target, reply.duration_ms))
        return True

    def roll_back(self):
        if not self.previous:
            self.report("rollback-failed", "it ran no release before: nothing to roll back to")
            return
        self.report("rolling-back", "rolling back to " + self.previous)
        try:
            reply = self.stub.Upgrade(liveswap_pb2.UpgradeRequest(target=self.previous), metadata=self.metadata)
            self.report("rolled-back", "generation %d (%s)" % (reply.generation, reply.target))
        except grpc.RpcError as error:
            self.report("rollback-failed", error.details())


def rollout(hosts, target, batch):
    """Returns the exit code."""
    for host in hosts:
        try:
            host.stub.GetStatus(liveswap_pb2.GetStatusRequest(), metadata=host.metadata, timeout=10)
        except grpc.RpcError as error:
            print("rollout not started: %s did not answer: %s" % (host.address, error.details()), file=sys.stderr)
            return 1
    waves = [hosts[:1]] + [hosts[i:i + batch] for i in range(1, len(hosts), batch)]
    done = []
    with ThreadPoolExecutor(max_workers=batch) as pool:
        for wave in waves:
            results = list(pool.map(lambda h: h.upgrade(target), wave))
            done.extend(h for h, ok in zip(wave, results) if ok)
            failed = [h for h, ok in zip(wave, results) if not ok]
            if failed:
                list(pool.map(lambda h: h.roll_back(), done))
                print("rollout failed at %s: %s" % (failed[0].address, failed[0].error), file=sys.stderr)
                return 5 if any(h.state == "rollback-failed" for h in done) else 1
    print("rollout done: %d host(s) upgraded to %s" % (len(hosts), target))
    return 0


def main():
    parser = argparse.ArgumentParser(description="Roll a release across liveswap masters, canary first.")
    parser.add_argument("target", help="the release's entry point, the same path on every host (made absolute here)")
    parser.add_argument("--hosts", required=True, help="host:port,... or dns:NAME:PORT")
    parser.add_argument("--batch", type=int, default=1, help="hosts upgraded at once after the canary")
    parser.add_argument("--token", help="the masters' token (default: $LIVESWAP_TOKEN, else each one's token file)")
    parser.add_argument("--state-dir", help="where to find the token files")
    parser.add_argument("--tls-ca", help="PEM CA that signed the masters' certificates (TLS)")
    args = parser.parse_args()
    hosts = [Host(address, args) for address in hosts_of(args.hosts)]
    try:
        return rollout(hosts, os.path.abspath(args.target), max(1, args.batch))
    finally:
        for host in hosts:
            host.channel.close()


if __name__ == "__main__":
    sys.exit(main())
