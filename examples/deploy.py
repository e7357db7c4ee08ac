#!/usr/bin/env python3
"""Deploy a release to a running liveswap master: one rolling Upgrade over gRPC.

Copy this file into your deploy tooling. It needs grpcio and protobuf
(Debian: apt-get install python3-grpcio python3-protobuf protobuf-compiler-grpc)
and stubs generated from liveswap's proto, once:

    protoc -I proto -I /usr/include --python_out=gen --grpc_out=gen \\
        --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin liveswap/v1/liveswap.proto

Then:

    PYTHONPATH=gen python3 deploy.py /srv/app/releases/42/server.js
    PYTHONPATH=gen python3 deploy.py --socket /run/app/liveswap.sock /srv/app/releases/42/server.js
    LIVESWAP_TOKEN=... PYTHONPATH=gen python3 deploy.py --address 10.0.0.5:3000 --tls-ca ca.pem /srv/app/server.js

Over TCP the master's token comes from --token, else $LIVESWAP_TOKEN, else the
token file the master wrote for that address on this machine. Exit codes, as
the liveswap CLI: 0 upgraded; 1 the upgrade failed (rolled back or vetoed: the
failing worker's last stderr lines follow the message); 3 no master there;
4 the master refused the token.
"""
import argparse
import os
import sys

import grpc

from liveswap.v1 import liveswap_pb2, liveswap_pb2_grpc

STDERR_TAIL_KEY = "liveswap-stderr-tail-bin"


def token_file(address, state_dir):
    """The master's token file for HOST:PORT (see the README's Security section)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    directory = (
        state_dir
        or os.environ.get("LIVESWAP_STATE_DIR")
        or (os.path.join(os.environ["XDG_RUNTIME_DIR"], "liveswap") if os.environ.get("XDG_RUNTIME_DIR") else None)
        or os.path.join(os.path.expanduser("~"), ".liveswap")
    )
    # Named by the loopback address the dial reaches: a master on 0.0.0.0 or
    # localhost writes 127.0.0.1_PORT.token (and one for ::1).
    if host.lower().startswith("::ffff:") and host.count(".") == 3:
        host = host[len("::ffff:"):]
    host = {"0.0.0.0": "127.0.0.1", "localhost": "127.0.0.1", "::": "::1"}.get(host, host)
    return os.path.join(directory, "%s_%s.token" % (host.replace(":", "-"), port))


def find_token(args):
    if args.token or os.environ.get("LIVESWAP_TOKEN"):
        return args.token or os.environ["LIVESWAP_TOKEN"]
    try:
        with open(token_file(args.address, args.state_dir)) as f:
            return f.read().strip()
    except OSError:
        return None


def open_channel(args):
    if args.socket:
        return grpc.insecure_channel("unix:" + os.path.abspath(args.socket)), []
    token = find_token(args)
    metadata = [("authorization", "Bearer " + token)] if token else []
    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        return grpc.secure_channel(args.address, credentials), metadata
    return grpc.insecure_channel(args.address), metadata


def main():
    parser = argparse.ArgumentParser(description="Rolling upgrade of a liveswap master to TARGET.")
    parser.add_argument("target", help="the new release's entry point (made absolute here)")
    parser.add_argument("--address", default="127.0.0.1:3000", help="HOST:PORT of the control service")
    parser.add_argument("--socket", help="a unix socket instead of --address")
    parser.add_argument("--token", help="the master's token (default: $LIVESWAP_TOKEN, else its token file)")
    parser.add_argument("--state-dir", help="where to find the token file")
    parser.add_argument("--tls-ca", help="PEM CA that signed the master's certificate (TLS)")
    args = parser.parse_args()

    channel, metadata = open_channel(args)
    stub = liveswap_pb2_grpc.LiveswapServiceStub(channel)
    request = liveswap_pb2.UpgradeRequest(target=os.path.abspath(args.target))
    try:
        reply = stub.Upgrade(request, metadata=metadata)
    except grpc.RpcError as error:
        print("deploy failed: %s: %s" % (error.code().name, error.details()), file=sys.stderr)
        for key, value in error.trailing_metadata() or ():
            if key == STDERR_TAIL_KEY:
                for line in value.decode("utf-8", "replace").splitlines():
                    print("  | " + line, file=sys.stderr)
        codes = {grpc.StatusCode.UNAVAILABLE: 3, grpc.StatusCode.UNAUTHENTICATED: 4}
        return codes.get(error.code(), 1)
    finally:
        channel.close()
    print(
        "upgraded to generation %d (%s) in %d ms: %d worker(s) ready"
        % (reply.generation, reply.target, reply.duration_ms, len(reply.workers))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
