"""What beat, the worker and its tasks (relay/tasks.py) run: wake-ups, the sweep, slices of work, samples.

An idle queue costs nothing: no task and no connection of its own. Commits
wake the worker over one LISTEN connection per source database
(:mod:`.wakeups`); beat's sweep asks each source database in one query which
queues have work (:mod:`.sweep`); either way a queue gets one relay task at a
time (:mod:`.requests`), which relays it for a bounded slice on the
connections its process keeps and queues it again behind the others when work
is left (:mod:`.slices`). The advisory lock in the source database remains the
guarantee that one queue is relayed by one task at a time. Once a minute beat
records each queue's lag, pending events and published count for the admin's
queue overview (:mod:`.samples`), and the worker says in one line when it is
ready and when it stopped (:mod:`.lifecycle`). A slice is one run of
:mod:`relay.runs`; the sweep registers the consumers the admin could not
(:mod:`relay.runs.registration`).

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""
