"""A loopback SMTP server that records every delivery, for the fault-injection run.

    .venv/bin/python benchmarks/faults_smtp.py --port PORT --log FILE

Runs until it is killed (the fault run kills it to make the mail server "go down" and starts
it again on the same port). Each message accepted appends one JSON line to FILE *before*
the server answers 250: a line is a delivery the sender may not have heard about, which is
exactly the window a duplicate comes from. A line holds the time (epoch seconds), the
message's `X-Onboarding-Key` and `Message-ID`, and the envelope sender (the fault run gives
each worker process its own, so a delivery names the process that made it).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import IO, Any

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, log: IO[str]) -> None:
        self.log = log
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        data = envelope.original_content or envelope.content
        # The default policy unfolds long header lines (a key with an email in it is long).
        headers = BytesHeaderParser(policy=policy.default).parsebytes(data)
        line = {
            "t": time.time(),
            "key": str(headers.get("X-Onboarding-Key", "")).strip(),
            "message_id": str(headers.get("Message-ID", "")).strip(),
            "mail_from": envelope.mail_from,
            "rcpt": list(envelope.rcpt_tos),
        }
        with self.lock:
            self.log.write(json.dumps(line) + "\n")
            self.log.flush()
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with args.log.open("a", encoding="utf-8") as log:
        controller = Controller(Recorder(log), hostname="127.0.0.1", port=args.port)
        controller.start()
        try:
            stop.wait()
        finally:
            controller.stop()


if __name__ == "__main__":
    main()
