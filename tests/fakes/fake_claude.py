#!/usr/bin/env python3
"""A stand-in for the real CLI, driven by its first argument.

Kept free of the wrapper's name on purpose: the launcher skips scripts that
mention it when it looks for the real binary.
"""

import json
import os
import random
import signal
import sys
import termios
import time
import tty


def out(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


def ansi_stream(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    parts = []
    total = 0
    words = [b"hello", b"world", "\u00e9t\u00e9".encode(), "\u2500\u2500\u2500".encode(),
             b"\xe2\x8e\xbf", b"token", b"$0.55", b"\t", b"\x07"]
    while total < size:
        r = rng.random()
        if r < 0.3:
            piece = b"\x1b[%d;%dm" % (rng.randint(0, 107), rng.randint(0, 255))
        elif r < 0.4:
            piece = b"\x1b[%d;%dH" % (rng.randint(1, 50), rng.randint(1, 200))
        elif r < 0.45:
            piece = b"\x1b]0;title %d\x07" % rng.randint(0, 999)
        elif r < 0.5:
            piece = b"\r\n"
        elif r < 0.52:
            piece = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            piece = rng.choice(words) + b" "
        parts.append(piece)
        total += len(piece)
    return b"".join(parts)[:size]


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "args"
    rest = sys.argv[2:]
    if mode == "args":
        out((json.dumps(rest) + "\n").encode())
        return 0
    if mode == "argsfile":
        with open(os.environ["FAKE_ARGS_FILE"], "w", encoding="utf-8") as fh:
            json.dump(rest, fh)
        return 0
    if mode == "logrun":
        # Append one line per run (its arguments, and the nesting depth the
        # wrapper sets, "" when run directly) to $FAKE_ARGS_FILE; exit CODE.
        line = json.dumps({"args": rest[1:], "depth": os.environ.get("CLAUDEWRAP_DEPTH", "")})
        with open(os.environ["FAKE_ARGS_FILE"], "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        return int(rest[0])
    if mode == "exit":
        out(b"bye\n")
        return int(rest[0])
    if mode == "kill":
        out(b"dying\n")
        sig = getattr(signal, rest[0])
        if sig != signal.SIGKILL:
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        time.sleep(5)
        return 3
    if mode == "isatty":
        out((json.dumps([os.isatty(0), os.isatty(1), os.isatty(2)]) + "\n").encode())
        os.write(2, b"to-stderr\n")
        return 0
    if mode == "ansi":
        size, seed = int(rest[0]), int(rest[1])
        data = ansi_stream(size, seed)
        rng = random.Random(seed + 1)
        i = 0
        while i < len(data):
            n = rng.choice([1, 2, 3, 7, 64, 511, 4096, 9000])
            out(data[i:i + n])
            i += n
        return 0
    if mode == "cat":
        # Copy stdin to stdout until EOF (pipe-mode tests).
        while True:
            chunk = os.read(0, 65536)
            if not chunk:
                return 0
            out(chunk)
    if mode == "keys":
        # Raw keystroke echo: every byte read is printed as hex; 'q' ends.
        saved = termios.tcgetattr(0)
        tty.setraw(0)
        try:
            out(b"READY\r\n")
            while True:
                data = os.read(0, 1024)
                if not data:
                    return 4
                out(b"GOT " + data.hex().encode() + b"\r\n")
                if b"q" in data:
                    return 0
        finally:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
    if mode == "winsize":
        def show(*_):
            cols, rows = os.get_terminal_size(1)
            out(b"SIZE %dx%d\n" % (rows, cols))
        signal.signal(signal.SIGWINCH, show)
        show()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = sys.stdin.readline()
            if not line or line.strip() == "q":
                return 0
        return 5
    if mode == "sleep":
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        out(b"SLEEPING\n")
        time.sleep(float(rest[0]) if rest else 30)
        return 0
    if mode == "print":
        # Print each argument as a line (the capture tests use this).
        for arg in rest:
            out(arg.encode().replace(b"\\n", b"\n").replace(b"\\r", b"\r")
                .replace(b"\\x1b", b"\x1b") + b"\n")
        return 0
    if mode == "file":
        with open(rest[0], "rb") as fh:
            out(fh.read())
        return int(rest[1]) if len(rest) > 1 else 0
    if mode == "env":
        # The named environment variables as a JSON object (null when unset).
        out((json.dumps({name: os.environ.get(name) for name in rest}) + "\n").encode())
        return 0
    sys.stderr.write(f"fake: unknown mode {mode}\n")
    return 99


if __name__ == "__main__":
    sys.exit(main())
