"""UIS's interactive call processing step, played against a routing URL (issue 11 part 1).

In a UIS call scenario, the step «интерактивная обработка вызова» sends the call's fields to an
external URL (POST form fields by default here, or JSON, or a GET query) and waits a short time
for `{"phones": [...]}` (ring these), `{"returned_code": N}` (go on with branch N) or a text;
on a timeout, an error status or an answer it cannot read, the scenario takes its own error
branch. `ask_route` does the same, so the tests and a person at a terminal see what UIS would
do:

    python -m callrouter.testing.uis_scenario http://127.0.0.1:8080/webhooks/uis/<secret>/route \\
        --numa 79260000000 --numb 74951234567 --call-session-id 123
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

import aiohttp

UIS_TIMEOUT = 2.0  # seconds the step waits; the public docs say "a few": keep well under
ERROR_BRANCH = -1  # what the scenario does when the URL fails it: its error branch

Method = Literal["form", "json", "get"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the scenario does next: ring `phones`, or go on with branch `returned_code`."""

    phones: list[str] | None
    returned_code: int | None
    status: int | None  # the HTTP status, None on a timeout or a connection error
    elapsed_ms: float
    fell_back: bool  # the URL failed the step: the scenario took its error branch
    error: str | None = None


def fields(
    numa: str,
    numb: str,
    call_session_id: int | None = None,
    *,
    cdr_id: str | None = None,
    start_time: str | None = None,
    input_result: str | None = None,
) -> dict[str, str]:
    """The step's parameters as UIS sends them: every value a string."""
    call_id = call_session_id if call_session_id is not None else random.randint(10**8, 10**9)
    values = {
        "call_session_id": str(call_id),
        "numa": numa,
        "numb": numb,
        "cdr_id": cdr_id or str(call_id * 10 + 1),
        "start_time": start_time or datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
    }
    if input_result is not None:
        values["input_result"] = input_result
    return values


def _read(status: int, body: bytes) -> tuple[list[str] | None, int | None] | None:
    """The answer as UIS reads it, or None when it cannot use it."""
    if status != 200:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    phones = answer.get("phones")
    if isinstance(phones, list) and phones and all(isinstance(p, str) for p in phones):
        return phones, None
    code = answer.get("returned_code")
    if isinstance(code, int) and not isinstance(code, bool):
        return None, code
    return None


async def ask_route(
    session: aiohttp.ClientSession,
    url: str,
    values: dict[str, str],
    *,
    method: Method = "form",
    timeout: float = UIS_TIMEOUT,
) -> Outcome:
    """Ask `url` like UIS's step does and say what the scenario does next."""
    started = time.perf_counter()
    kwargs: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=timeout)}
    if method == "form":
        call = session.post(url, data=values, **kwargs)
    elif method == "json":
        call = session.post(url, json=values, **kwargs)
    else:
        call = session.get(url, params=values, **kwargs)
    try:
        async with call as resp:
            status, body = resp.status, await resp.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        elapsed = (time.perf_counter() - started) * 1000
        error = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        return Outcome(None, ERROR_BRANCH, None, elapsed, True, error)
    elapsed = (time.perf_counter() - started) * 1000
    read = _read(status, body)
    if read is None:
        return Outcome(None, ERROR_BRANCH, status, elapsed, True, f"unusable answer ({status})")
    return Outcome(read[0], read[1], status, elapsed, False)


async def _main(args: argparse.Namespace) -> int:
    values = fields(
        args.numa,
        args.numb,
        args.call_session_id,
        input_result=args.input_result,
    )
    async with aiohttp.ClientSession() as session:
        outcome = await ask_route(
            session, args.url, values, method=args.method, timeout=args.timeout
        )
    print(json.dumps({"sent": values, **asdict(outcome)}, ensure_ascii=False, indent=2))
    return 1 if outcome.fell_back else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the routing URL (GET /api/v1/routing shows it)")
    parser.add_argument("--numa", required=True, help="the caller's number")
    parser.add_argument("--numb", default="74951234567", help="the virtual number called")
    parser.add_argument("--call-session-id", type=int, default=None)
    parser.add_argument("--input-result", default=None, help="what the caller pressed")
    parser.add_argument("--method", choices=["form", "json", "get"], default="form")
    parser.add_argument("--timeout", type=float, default=UIS_TIMEOUT)
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
