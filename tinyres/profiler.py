"""Where a training step's time goes, op by op: ``with tr.profile() as prof:``.

    with tr.profile() as prof:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
    print(prof.table(row_limit=10))          # one row per op, as torch.profiler's table
    prof.export_chrome_trace("trace.json")   # open in Perfetto or chrome://tracing

While the block runs, four kinds of events are recorded, each a wall-clock interval
from ``time.perf_counter_ns``:

* ``op`` -- every :class:`~tinyres.autograd.Function`'s forward (``Conv2d``) and
  backward (``Conv2dBackward``), with the input shapes, the backend whose kernels ran,
  and the FLOPs and bytes of ops that know them (``Function.cost``);
* ``module`` -- every ``nn.Module`` call, around the ops of its forward;
* ``autograd`` -- each graph walk of ``backward()``, around the ops' backward;
* ``optimizer`` -- each optimizer's ``step()``.

Events nest: a conv's forward lies inside its layer's, which lies inside its block's.
An event's *self time* is its duration less its children's, so self times add up
without counting anything twice, and the profiled wall time splits exactly into

    wall = ops + bookkeeping + optimizer + outside

*ops*: the ops' self times; *bookkeeping*: the graph walk's self time (the topological
sort, summing gradients, handing them on, and with DistributedDataParallel the
gradients' Allreduce at its end) and the modules' self time (their Python, the argument
checks, ``Function.apply`` creating the graph); *outside*: the code between the recorded
events (``zero_grad``, the loop, the data).  The profiler's own work between its clock
reads counts as bookkeeping.  Times are wall-clock times on the host: on the GPU, where
kernels run asynchronously, an op's event measures mostly its launch.

Cost.  When no profile is open, ``Function.apply``, the graph walk and ``Module.__call__``
each read one module-level variable, :data:`active` (None), and go on: no call, no
allocation; every optimizer's ``step`` does the same in a thin wrapper (one call per
step).  While one is open, each event costs some Python work (two clock reads, its
shapes, backend and flops) and a ResNet-20 step has about 230 events: a negligible part of
a step at batch 128, a small but visible one at batch 4 (measured:
docs/results/measurements.md).

``tr.profile(skip_steps=1, steps=3, on_trace_ready=write)`` records only optimizer steps
2 to 4 -- a step ends with ``optimizer.step()`` -- then stops by itself and calls
``write(prof)``; that is how ``tinyres train --profile`` profiles a real run without
touching the training loop.
"""
import dataclasses
import json
import os
import threading
import time

from .backend import kernels_for

active = None   # the Profile recording now, or None: the one thing the hot paths read

OP, MODULE, GRAPH_WALK, OPTIMIZER = "op", "module", "autograd", "optimizer"
FORWARD, BACKWARD = "forward", "backward"
SORT_KEYS = ("total", "forward", "backward", "calls", "gflops", "name")


class Event:
    """One recorded interval: an op's forward or backward, a module, a graph walk, a step.

    name: the op's or module's class name (``Conv2d``, ``BasicBlock``, ``SGD``).
    category: ``"op"``, ``"module"``, ``"autograd"`` or ``"optimizer"``.
    phase: ``"forward"`` or ``"backward"`` for ops, else None.
    start_ns, end_ns: ``time.perf_counter_ns()`` at its start and end.
    thread: the thread's ``threading.get_ident()``; parent: the enclosing Event or None.
    child_ns: the summed durations of its direct children.
    args: what the trace shows beside it (shapes, backend, flops, bytes).
    """

    __slots__ = ("name", "category", "phase", "thread", "parent", "start_ns", "end_ns",
                 "child_ns", "args")

    def __init__(self, name, category, phase, thread, parent):
        self.name, self.category, self.phase = name, category, phase
        self.thread, self.parent = thread, parent
        self.start_ns = self.end_ns = None
        self.child_ns = 0
        self.args = {}

    @property
    def duration_ns(self):
        """end_ns - start_ns."""
        return self.end_ns - self.start_ns

    @property
    def self_ns(self):
        """The duration less the children's: the time spent in this event's own code."""
        return self.duration_ns - self.child_ns

    @property
    def trace_name(self):
        """The name shown in a trace: ``Conv2d``, ``Conv2dBackward``, ``nn.Conv2d``, ``SGD.step``."""
        if self.category == OP:
            return self.name + ("Backward" if self.phase == BACKWARD else "")
        if self.category == MODULE:
            return f"nn.{self.name}"
        if self.category == OPTIMIZER:
            return f"{self.name}.step"
        return "autograd.backward"

    def __repr__(self):
        return (f"Event({self.trace_name}, {self.category}, "
                f"{(self.end_ns or 0) - (self.start_ns or 0)} ns)")


@dataclasses.dataclass
class OpAverage:
    """One row of :meth:`Profile.key_averages`: an op's events added up (self times).

    name: the op (``Conv2d``); input_shapes: the shapes of its array inputs when rows
    are grouped by shape, else None.  calls, backward_calls: how many forwards and
    backwards ran.  forward_ns, backward_ns: their summed self times.  flops, bytes:
    forward and backward together, None when the op does not say.  backends: the
    backends whose kernels ran it.
    """
    name: str
    input_shapes: tuple = None
    calls: int = 0
    backward_calls: int = 0
    forward_ns: int = 0
    backward_ns: int = 0
    flops: int = None
    bytes: int = None
    backends: tuple = ()

    @property
    def total_ns(self):
        """forward_ns + backward_ns."""
        return self.forward_ns + self.backward_ns

    @property
    def gflops_per_second(self):
        """flops / total time in GFLOP/s (flops per nanosecond); None without flops."""
        if not self.flops or not self.total_ns:
            return None
        return self.flops / self.total_ns


@dataclasses.dataclass
class TimeSplit:
    """Where the profiled wall time went; the parts add up to ``wall_ns``.

    wall_ns: from the start of recording to its end.  op_ns: the ops' self times.
    graph_walk_ns, module_ns: the self times of the graph walks and of the modules,
    together the bookkeeping.  optimizer_ns: the optimizer steps.  outside_ns: time in
    no recorded event.  steps: how many optimizer steps ran.
    """
    wall_ns: int
    op_ns: int
    graph_walk_ns: int
    module_ns: int
    optimizer_ns: int
    outside_ns: int
    steps: int

    @property
    def bookkeeping_ns(self):
        """graph_walk_ns + module_ns: autograd's and the layers' own time between ops."""
        return self.graph_walk_ns + self.module_ns


def _backend_name(arrays):
    """``"numpy"``, ``"numba"`` or ``"cupy"``: whose kernels ``kernels_for`` gives these arrays."""
    kernels = kernels_for(*[array for array in arrays if hasattr(array, "shape")], op="profile")
    return kernels.__name__.rpartition(".")[2].removesuffix("_kernels")


def _shapes(values):
    """The shapes of the arrays (or tensors) among ``values``, as lists, in their order."""
    return [list(value.shape) for value in values if hasattr(value, "shape")]


def _milliseconds(nanoseconds):
    return f"{nanoseconds / 1e6:,.1f}"


class Profile:
    """What :func:`profile` returns: the recorder while the block runs, the results after.

    skip_steps, steps, on_trace_ready: see :func:`profile`.

    ``events`` lists every recorded :class:`Event` in the order they started;
    ``steps_seen`` counts the optimizer steps it saw end, recorded or skipped.
    """

    def __init__(self, skip_steps=0, steps=None, on_trace_ready=None):
        if not isinstance(skip_steps, int) or skip_steps < 0:
            raise ValueError(f"profile: skip_steps must be an int >= 0, got {skip_steps!r}")
        if steps is not None and (not isinstance(steps, int) or steps < 1):
            raise ValueError(f"profile: steps must be None or an int >= 1, got {steps!r}")
        self.skip_steps, self.steps, self.on_trace_ready = skip_steps, steps, on_trace_ready
        self.events = []
        self.start_ns = self.end_ns = None
        self.recording = False
        self.steps_seen = 0          # optimizer steps ended since the block began
        self._step_depth = 0         # > 0 inside an optimizer step (a subclass may call super)
        self._ready_called = False
        self._local = threading.local()   # each thread's stack of open events

    # ------------------------------------------------------------------ opening and closing
    def __enter__(self):
        global active
        if active is not None:
            raise RuntimeError("profile: another tr.profile() is already recording; one "
                               "profile at a time (close the first one's with-block first)")
        active = self
        if self.skip_steps == 0:
            self._start_recording()
        return self

    def __exit__(self, *exception):
        global active
        if self.recording:
            self._stop_recording()
        if active is self:
            active = None

    def _start_recording(self):
        self.recording = True
        self.start_ns = time.perf_counter_ns()

    def _stop_recording(self):
        global active
        self.end_ns = time.perf_counter_ns()
        self.recording = False
        if active is self:   # nothing more to record: the rest of the run pays nothing
            active = None
        if self.on_trace_ready is not None and not self._ready_called:
            self._ready_called = True
            self.on_trace_ready(self)

    def _stack(self):
        try:
            return self._local.stack
        except AttributeError:
            self._local.stack = []
            return self._local.stack

    def _open(self, name, category, phase=None):
        stack = self._stack()
        event = Event(name, category, phase, threading.get_ident(), stack[-1] if stack else None)
        stack.append(event)
        self.events.append(event)
        event.start_ns = time.perf_counter_ns()
        return event

    def _close(self, event):
        event.end_ns = time.perf_counter_ns()
        self._stack().pop()
        if event.parent is not None:
            event.parent.child_ns += event.end_ns - event.start_ns

    # ------------------------------------------------------------------ the hot paths call these
    def record_forward(self, function, ctx, arrays, kwargs):
        """Run and time ``function.forward(ctx, *arrays, **kwargs)``; returns its output array."""
        if not self.recording:
            return function.forward(ctx, *arrays, **kwargs)
        event = self._open(function.__name__, OP, FORWARD)
        try:
            output = function.forward(ctx, *arrays, **kwargs)
        finally:
            self._close(event)
        shapes, backend = _shapes(arrays), _backend_name(arrays)
        cost = function.cost(ctx, arrays, output) or {}
        event.args = {"input_shapes": shapes, "backend": backend}
        event.args.update((key, cost[key]) for key in ("flops", "bytes") if key in cost)
        ctx.profile_record = (shapes, backend, cost)   # what its backward event will show
        return output

    def record_backward(self, ctx, grad_output):
        """Run and time ``ctx.function.backward(ctx, grad_output)``; returns the input gradients."""
        function = ctx.function
        if not self.recording:
            return function.backward(ctx, grad_output)
        event = self._open(function.__name__, OP, BACKWARD)
        try:
            input_grads = function.backward(ctx, grad_output)
        finally:
            self._close(event)
        shapes, backend, cost = getattr(ctx, "profile_record", (None, None, {}))
        event.args = {"grad_output_shape": list(grad_output.shape),
                      "input_shapes": shapes if shapes is not None else _shapes(ctx.inputs),
                      "backend": backend or _backend_name([grad_output])}
        for key in ("flops", "bytes"):
            if f"backward_{key}" in cost:
                event.args[key] = cost[f"backward_{key}"]
        return input_grads

    def record_graph_walk(self, walk, root, grad_output, retain_graph):
        """Run and time ``walk(root, grad_output, retain_graph)``, one backward() pass."""
        if not self.recording:
            return walk(root, grad_output, retain_graph)
        event = self._open("backward", GRAPH_WALK)
        try:
            return walk(root, grad_output, retain_graph)
        finally:
            self._close(event)

    def record_module(self, module, inputs, kwargs):
        """Run and time ``module.forward(*inputs, **kwargs)``; returns its output."""
        if not self.recording:
            return module.forward(*inputs, **kwargs)
        event = self._open(type(module).__name__, MODULE)
        event.args = {"input_shapes": _shapes(inputs)}
        try:
            return module.forward(*inputs, **kwargs)
        finally:
            self._close(event)

    def record_optimizer_step(self, optimizer, step, args, kwargs):
        """Run and time ``step(optimizer, *args, **kwargs)``; an outermost step ends a training step."""
        event = self._open(type(optimizer).__name__, OPTIMIZER) if self.recording else None
        self._step_depth += 1
        try:
            return step(optimizer, *args, **kwargs)
        finally:
            self._step_depth -= 1
            if event is not None:
                self._close(event)
            if self._step_depth == 0:
                self._step_ended()

    def _step_ended(self):
        """Start or stop recording at the step boundaries that ``skip_steps`` and ``steps`` set."""
        self.steps_seen += 1
        if not self.recording and self.start_ns is None and self.steps_seen == self.skip_steps:
            self._start_recording()
        elif (self.recording and self.steps is not None
              and self.steps_seen == self.skip_steps + self.steps):
            self._stop_recording()

    # ------------------------------------------------------------------ reading the results
    def _finished_events(self, where):
        if self.recording:
            raise RuntimeError(f"profile.{where}: the profile is still recording; read it "
                               "after its with-block ends")
        if self.start_ns is None:
            raise RuntimeError(f"profile.{where}: nothing was recorded (the block ended "
                               f"before the {self.skip_steps} optimizer steps to skip)")
        return [event for event in self.events if event.end_ns is not None]

    def key_averages(self, group_by_input_shape=False):
        """One :class:`OpAverage` per op name (and input shapes, if asked), largest total first.

        Like ``torch.profiler``'s ``key_averages()``: forward and backward events of one
        op are added up into a row, by self time.
        """
        rows = {}
        for event in self._finished_events("key_averages"):
            if event.category != OP:
                continue
            shapes = event.args.get("input_shapes") if group_by_input_shape else None
            key = (event.name, None if shapes is None else tuple(map(tuple, shapes)))
            row = rows.get(key)
            if row is None:
                row = rows[key] = OpAverage(event.name, input_shapes=key[1])
            if event.phase == FORWARD:
                row.calls += 1
                row.forward_ns += event.self_ns
            else:
                row.backward_calls += 1
                row.backward_ns += event.self_ns
            for field in ("flops", "bytes"):
                if field in event.args:
                    setattr(row, field, (getattr(row, field) or 0) + event.args[field])
            backend = event.args.get("backend")
            if backend is not None and backend not in row.backends:
                row.backends = tuple(sorted(row.backends + (backend,)))
        return sorted(rows.values(), key=lambda row: -row.total_ns)

    def time_split(self):
        """The :class:`TimeSplit` of the profiled wall time: ops, bookkeeping, optimizer, outside."""
        events = self._finished_events("time_split")
        self_ns = {OP: 0, GRAPH_WALK: 0, MODULE: 0, OPTIMIZER: 0}
        for event in events:
            self_ns[event.category] += event.self_ns
        top_level = sum(event.duration_ns for event in events if event.parent is None)
        steps = sum(1 for event in events if event.category == OPTIMIZER
                    and (event.parent is None or event.parent.category != OPTIMIZER))
        wall = self.end_ns - self.start_ns
        return TimeSplit(wall_ns=wall, op_ns=self_ns[OP], graph_walk_ns=self_ns[GRAPH_WALK],
                         module_ns=self_ns[MODULE], optimizer_ns=self_ns[OPTIMIZER],
                         outside_ns=wall - top_level, steps=steps)

    def table(self, sort_by="total", row_limit=None):
        """The ops as a text table, one row per op, then where the wall time went.

        Columns: forward, backward and total self time in ms, the total's share of the
        profiled wall time, forward calls, GFLOP/s (ops that know their flops) and
        backend.  sort_by: ``"total"``, ``"forward"``, ``"backward"``, ``"calls"``,
        ``"gflops"`` or ``"name"``; row_limit: show that many rows (None: all).
        """
        if sort_by not in SORT_KEYS:
            raise ValueError(f"profile.table: sort_by must be one of {SORT_KEYS}, got {sort_by!r}")
        if row_limit is not None and (not isinstance(row_limit, int) or row_limit < 1):
            raise ValueError(f"profile.table: row_limit must be None or an int >= 1, "
                             f"got {row_limit!r}")
        rows, split = self.key_averages(), self.time_split()
        keys = {"total": lambda row: -row.total_ns, "forward": lambda row: -row.forward_ns,
                "backward": lambda row: -row.backward_ns, "calls": lambda row: -row.calls,
                "gflops": lambda row: -(row.gflops_per_second or 0),
                "name": lambda row: row.name}
        rows.sort(key=keys[sort_by])
        shown, hidden = rows[:row_limit], rows[len(rows[:row_limit]):]
        wall = max(split.wall_ns, 1)
        header = (f"{'Name':<20} {'Forward ms':>11} {'Backward ms':>12} {'Total ms':>10} "
                  f"{'% wall':>7} {'Calls':>6} {'GFLOP/s':>8}  Backend")
        rule = "-" * len(header)
        lines = [rule, header, rule]
        for row in shown:
            gflops = "" if row.gflops_per_second is None else f"{row.gflops_per_second:.1f}"
            lines.append(f"{row.name:<20} {_milliseconds(row.forward_ns):>11} "
                         f"{_milliseconds(row.backward_ns):>12} {_milliseconds(row.total_ns):>10} "
                         f"{100 * row.total_ns / wall:>6.1f}% {row.calls:>6} {gflops:>8}  "
                         f"{','.join(row.backends)}")
        if hidden:
            rest = sum(row.total_ns for row in hidden)
            lines.append(f"{f'({len(hidden)} more ops)':<20} {'':>11} {'':>12} "
                         f"{_milliseconds(rest):>10} {100 * rest / wall:>6.1f}%")
        lines.append(rule)
        lines += self._split_lines(split)
        return "\n".join(lines)

    @staticmethod
    def _split_lines(split):
        wall = max(split.wall_ns, 1)

        def part(name, nanoseconds):
            return f"{name} {_milliseconds(nanoseconds)} ms ({100 * nanoseconds / wall:.1f} %)"

        per_step = (f" ({_milliseconds(split.wall_ns / split.steps)} ms per step)"
                    if split.steps else "")
        return [f"wall {_milliseconds(split.wall_ns)} ms over {split.steps} optimizer "
                f"step{'' if split.steps == 1 else 's'}{per_step}: "
                f"{part('ops', split.op_ns)}, {part('bookkeeping', split.bookkeeping_ns)}, "
                f"{part('optimizer', split.optimizer_ns)}, {part('outside', split.outside_ns)}",
                f"bookkeeping = graph walk {_milliseconds(split.graph_walk_ns)} ms + module "
                f"code {_milliseconds(split.module_ns)} ms (the time between the ops)"]

    def trace_events(self):
        """The events as Chrome trace events: dicts with name, cat, ph "X", ts, dur, pid, tid, args.

        ts and dur are in microseconds, ts counted from the start of recording; each
        thread gets a small tid (1, 2, ...) in the order it first recorded.
        """
        events = self._finished_events("trace_events")
        process, threads = os.getpid(), {}
        trace = []
        for event in sorted(events, key=lambda event: (event.start_ns, -event.end_ns)):
            thread = threads.setdefault(event.thread, len(threads) + 1)
            trace.append({"name": event.trace_name, "cat": event.category, "ph": "X",
                          "ts": (event.start_ns - self.start_ns) / 1e3,
                          "dur": event.duration_ns / 1e3, "pid": process, "tid": thread,
                          "args": dict(event.args, **({"phase": event.phase} if event.phase
                                                      else {}))})
        return trace

    def export_chrome_trace(self, path):
        """Write the Chrome trace event format that Perfetto and chrome://tracing open.

        A JSON object ``{"traceEvents": [...]}`` of complete events (:meth:`trace_events`),
        as ``torch.profiler``'s ``export_chrome_trace``.  Returns ``path``.
        """
        split = self.time_split()
        document = {"traceEvents": self.trace_events(), "displayTimeUnit": "ms",
                    "otherData": {"producer": "tinyres.profile",
                                  **{field.name: getattr(split, field.name)
                                     for field in dataclasses.fields(split)}}}
        with open(path, "w") as file:
            json.dump(document, file)
        return path


def profile(skip_steps=0, steps=None, on_trace_ready=None):
    """Record where the time of a ``with`` block goes: ``with tr.profile() as prof:``.

    Returns a :class:`Profile`; after the block, ``prof.table()``,
    ``prof.key_averages()``, ``prof.time_split()`` and ``prof.export_chrome_trace(path)``
    read it.  One profile records at a time, for every thread.

    skip_steps: let that many optimizer steps go by unrecorded first (a warm-up).
    steps: then record that many optimizer steps only, and stop by itself (None: record
    until the block ends).  on_trace_ready: called with the profile when it stops.
    """
    return Profile(skip_steps=skip_steps, steps=steps, on_trace_ready=on_trace_ready)
