"""Microseconds per event of ``event_to_message``, the pure mapping, on typical events; no services needed.

    python benchmarks/mapping_speed.py                          # relay/amqp/mapping.py of this checkout
    git show main:relay/amqp/mapping.py > /tmp/mapping_main.py
    python benchmarks/mapping_speed.py /tmp/mapping_main.py relay/amqp/mapping.py   # compare, interleaved

Each file given is loaded as a module of the package of this checkout it lies in, or of ``relay.amqp`` when
it lies outside (its relative imports work), and the files are timed in alternation, round after round, so a
neighbour's load on a shared machine hits them alike; a file that has
``MessageLimits`` is timed also with the limits of a default RabbitMQ connection. The figure quoted is the
best round (the least disturbed); the median says how noisy the machine was.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import timeit
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.core.events import Event
from relay.core.identity import RelayIdentity

ROOT = Path(__file__).resolve().parent.parent
IDENTITY = RelayIdentity(app_id="mikkoo-relay/0.1.0", origin="relay-1.example.com")
TIME = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
BODY = '{"order": 17, "status": "created", "lines": [{"sku": "A-1", "qty": 2}], "note": "' + "x" * 100 + '"}'
EVENTS = {
    "plain (no ev_extra3/ev_extra4)": Event(
        1001, TIME, 987654, None, "orders.created", BODY, "orders", "application/json", None, None),
    "small ev_extra3 and ev_extra4": Event(
        1001, TIME, 987654, None, "orders.created", BODY, "orders", "application/json",
        '{"type": "order.created", "priority": 5}', '{"tenant": "acme", "attempt": 1, "trace": "4bf92f35"}'),
}


def load(path: str):
    """``path`` as a module inside the package of this checkout it lies in, else inside ``relay.amqp``."""
    folder = Path(path).resolve().parent
    package = ".".join(folder.relative_to(ROOT).parts) if folder.is_relative_to(ROOT) else "relay.amqp"
    importlib.import_module(package)
    name = f"{package}._bench_{len(sys.modules)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", default=["relay/amqp/mapping.py"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=20000, help="calls per round")
    args = parser.parse_args()
    variants = []
    for path in args.files:
        module = load(path)
        variants.append((path, module, {}))
        if hasattr(module, "MessageLimits"):
            limits = module.MessageLimits(frame_max=131072, user_id="guest")
            variants.append((f"{path} with limits", module, {"limits": limits}))
    for label, event in EVENTS.items():
        timings: dict[str, list[float]] = {name: [] for name, _, _ in variants}
        for _ in range(args.rounds):
            for name, module, extra in variants:
                call = module.event_to_message

                def run(call=call, event=event, extra=extra):
                    call(event, queue="orders", identity=IDENTITY, persistent=True,
                         correlation_id="5b0c1f4e-2d7e-4c55-a3f6-0c8d5e7a9b10", sequence=42, **extra)

                timings[name].append(timeit.timeit(run, number=args.number) / args.number * 1e6)
        print(label)
        for name, times in timings.items():
            print(f"  {name:45} best {min(times):6.3f} µs   median {statistics.median(times):6.3f} µs")


if __name__ == "__main__":
    main()
