"""`make demo`: one onboarding on the `demo` playbook, driven through starter.py while the
worker runs, so reminders and an escalation happen within about three minutes.

Every command is printed before it runs: the same ones a CSM types.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 5


def starter(*args: str, check: bool = True, echo: bool = True) -> str:
    if echo:
        print(f"$ starter.py {' '.join(args)}", flush=True)
    result = subprocess.run(
        [sys.executable, "starter.py", *args], cwd=ROOT, capture_output=True, text=True
    )
    output = (result.stdout + result.stderr).strip()
    if echo:
        print(f"  {output}", flush=True)
    if check and result.returncode != 0:
        sys.exit(f"demo stopped: {output}")
    return result.stdout


def status(account: str) -> dict:
    return json.loads(starter("status", account, "--json", echo=False))


def main() -> None:
    account = f"demo-{datetime.now(UTC):%H%M%S}"
    deal = json.loads((ROOT / "examples" / "deal-demo.json").read_text())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(deal | {"account_id": account}, file)
    starter("start", "--from-file", file.name)
    starter("signal", account, "contract-signed", "--by", "ae-001")
    starter("signal", account, "kickoff-held", "--by", "csm-007")

    print(
        f"\nNow in adopt. Nobody engages: watch reminders, then the risk rise "
        f"(`starter.py status {account}` every {POLL_SECONDS} s).",
        flush=True,
    )
    seen_risk, reminders = "low", 0
    while True:
        time.sleep(POLL_SECONDS)
        now = status(account)
        sent = sum(task["reminders_sent"] for task in now["tasks"])
        if sent != reminders:
            print(f"  reminders sent so far: {sent}", flush=True)
            reminders = sent
        if now["risk"]["level"] != seen_risk:
            seen_risk = now["risk"]["level"]
            print(f"  risk is {seen_risk}: {'; '.join(now['risk']['reasons'])}", flush=True)
        if now["escalations"]:
            escalation = now["escalations"][-1]
            print(
                f"  escalation #{escalation['number']} raised, told: "
                f"{', '.join(escalation['notified'])}",
                flush=True,
            )
            break

    starter("ack", account, "--by", "csm-007", "--note", "called the customer")
    starter("engagement", account, "--kind", "login")
    starter("signal", account, "integration-done", "--by", "csm-007")
    starter("signal", account, "review-passed", "--by", "csm-007")
    while (final := status(account))["stage"] != "completed":
        time.sleep(1)
    print(f"\n{account} completed; everboarding {final['everboarding_workflow_id']} runs on.")
    starter("status", account)
    print(
        f"The mails are in {ROOT / '.data' / 'outbox'} (with make demo); "
        "the runs at http://localhost:8233",
        flush=True,
    )


if __name__ == "__main__":
    main()
