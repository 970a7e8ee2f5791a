"""The simulation backend: the only module that imports libsumo or traci.

One SUMO per process. libsumo runs SUMO inside this process (fast, the default); TraCI
talks to a ``sumo`` or ``sumo-gui`` process over a socket (the way to watch a run). State
is read per lane (libsumo getters; with TraCI, one batched message per read) into NumPy
arrays, never per vehicle.
"""

from __future__ import annotations

import contextlib
import gc
import io
import struct
import subprocess
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

import numpy as np

from twin_traffic.errors import SimulationError
from twin_traffic.programmes import ProgrammePhase
from twin_traffic.redirect import scenario_args
from twin_traffic.scenario import Scenario
from twin_traffic.workers import dies_with_parent

Backend = Literal["libsumo", "traci"]
BACKENDS: tuple[Backend, ...] = ("libsumo", "traci")

# libsumo restarts silently (and drops the running simulation) when started twice in one
# process, so the process-wide owner is tracked here to fail loudly instead. Weakly: an
# owner nobody can reach any more (an env dropped in a notebook) cannot be closed, and its
# simulation gives way to a new one.
_libsumo_owner: weakref.ref[Simulation] | None = None


def _running_libsumo_owner() -> Simulation | None:
    """The simulation running in this process's libsumo, if one still can be closed;
    libsumo is closed here if its owner is gone."""
    global _libsumo_owner
    if _libsumo_owner is None:
        return None
    if _libsumo_owner() is not None:
        gc.collect()  # an owner only a reference cycle keeps is gone too
    owner = _libsumo_owner()
    if owner is None:
        import libsumo

        with contextlib.suppress(Exception):  # its outputs' folder may be gone already
            libsumo.close()
        _libsumo_owner = None
    return owner


# TraCI variable ids (stable protocol constants, see traci.constants).
LAST_STEP_VEHICLE_NUMBER = 0x10
LAST_STEP_MEAN_SPEED = 0x11
LAST_STEP_OCCUPANCY = 0x13
LAST_STEP_VEHICLE_HALTING_NUMBER = 0x14
VAR_WAITING_TIME = 0x7A
VAR_INTERVAL_NUMBER = 0x25  # induction loop: vehicles counted in the current interval
VAR_TIME = 0x66
ID_COUNT = 0x01
_CMD_SET_TL_VARIABLE = 0xC2
_CMD_SIMSTEP = 0x02
_RESPONSE_SIMULATION = 0xEB
_RESPONSE_VEHICLE = 0xE4
_INT = struct.Struct("!i")
_SCALARS = {0x09: _INT, 0x0B: struct.Struct("!d")}  # TraCI's integer and double types
_TL_PHASE_INDEX = 0x22
_TL_PHASE_DURATION = 0x24
_TYPE_INTEGER = 0x09
_TYPE_DOUBLE = 0x0B

# Controlled signals run a programme of this id (see twin_traffic.programmes).
PROGRAMME_ID = "twin-traffic"


@dataclass(frozen=True)
class SimConfig:
    """How SUMO is started.

    Attributes:
        backend: ``libsumo`` (in-process, fast) or ``traci`` (separate process).
        gui: open ``sumo-gui`` to watch the run (implies the TraCI backend).
        sumo_home: a user's own SUMO installation to run instead of the packaged one
            (TraCI backend; its ``bin/sumo`` is started).
        warnings: let SUMO print its warnings (off: they would break into progress
            displays; teleports and other figures are counted from its outputs anyway).
        extra_args: further SUMO options, appended last.
        stderr: where a separate SUMO process (TraCI) writes its stderr; by default the
            outputs' folder, if any (a failure quotes its last lines).
    """

    backend: Backend = "libsumo"
    gui: bool = False
    sumo_home: Path | None = None
    warnings: bool = False
    extra_args: tuple[str, ...] = ()
    stderr: Path | None = None

    @property
    def effective_backend(self) -> Backend:
        """The backend actually used: a GUI or a custom SUMO needs a separate process."""
        return "traci" if self.gui or self.sumo_home is not None else self.backend


@dataclass(frozen=True)
class OutputFiles:
    """Where SUMO writes its own outputs for one run.

    ``emissions`` equips every vehicle with SUMO's emissions device (CO2 and fuel in the
    trip output), which makes SUMO itself 30-50% slower.
    """

    directory: Path
    emissions: bool = False

    @property
    def tripinfo(self) -> Path:
        """Per-trip output, including unfinished and never-inserted vehicles."""
        return self.directory / "tripinfo.xml"

    @property
    def statistics(self) -> Path:
        """SUMO's end-of-run statistics (teleports, totals)."""
        return self.directory / "statistics.xml"

    @property
    def log(self) -> Path:
        """SUMO's warnings and errors."""
        return self.directory / "sumo.log"

    def sumo_args(self) -> list[str]:
        """Options that make SUMO write these outputs."""
        return [
            "--tripinfo-output", str(self.tripinfo),
            "--tripinfo-output.write-unfinished", "true",
            "--tripinfo-output.write-undeparted", "true",
            "--device.emissions.probability", "1" if self.emissions else "0",
            "--statistic-output", str(self.statistics),
            "--error-log", str(self.log),
        ]  # fmt: skip


def sumo_binary(gui: bool = False, sumo_home: Path | None = None) -> Path:
    """Path of the ``sumo`` (or ``sumo-gui``) binary: the packaged one unless told otherwise."""
    name = "sumo-gui" if gui else "sumo"
    if sumo_home is None:
        import sumo  # the eclipse-sumo package; it knows its own SUMO_HOME

        sumo_home = Path(sumo.SUMO_HOME)
    binary = Path(sumo_home) / "bin" / name
    if not binary.exists():
        raise SimulationError(
            f"{binary}: SUMO binary not found; reinstall eclipse-sumo or point --sumo-home at a "
            "SUMO installation"
        )
    return binary


MAX_SEED = 2**31 - 1
"""The largest seed SUMO takes (a signed 32-bit integer)."""


class Simulation:
    """One running SUMO simulation of a scenario.

    Use as a context manager; ``api`` is the libsumo module or the TraCI connection, both
    with the same domain interface (``api.simulation``, ``api.lane``, ``api.trafficlight``).
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        outputs: OutputFiles | None = None,
        config: SimConfig | None = None,
        additional_files: Sequence[Path] = (),
    ) -> None:
        self.scenario = scenario
        self.additional_files = tuple(additional_files)
        if (
            isinstance(seed, bool)
            or not isinstance(seed, (int, np.integer))
            or not (0 <= seed <= MAX_SEED)
        ):
            raise SimulationError(
                f"seed {seed!r}: SUMO's seed is a whole number from 0 to {MAX_SEED}"
            )
        self.seed = int(seed)
        self.outputs = outputs
        self.config = config or SimConfig()
        self._traci = self.config.effective_backend == "traci"
        self._queues_commands = False  # TraCI commands can wait for the next message
        # TraCI: the subscribed values of the last step, by response id and object id.
        self.subscribed: dict[int, dict[str, dict[int, float]]] = {}
        self.steps_taken = 0
        self.api: Any = None
        self._time = scenario.begin
        self.step_length = 1.0
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def command(self) -> list[str]:
        """The full SUMO command line of this run."""
        config = self.config
        binary = sumo_binary(config.gui, config.sumo_home)
        # A seed is always passed, and --random (which would ignore it) always disabled.
        args = ["--seed", str(self.seed), "--random", "false"]
        # Quiet whatever the scenario's own configuration says (Monaco's asks for verbose):
        # an env restarts SUMO every episode, and its progress lines would flood the console.
        args += ["--verbose", "false", "--no-step-log", "true", "--duration-log.disable", "true"]
        args += ["--no-warnings", str(not config.warnings).lower()]
        if self.outputs is not None:
            args += self.outputs.sumo_args()
        if config.gui:
            args += ["--start", "true", "--quit-on-end", "true"]
        args += config.extra_args
        # The scenario's own declared outputs go to this run's folder, never its own.
        scenario = scenario_args(self.scenario, self.additional_files, self._run_dir(), args)
        return [str(binary), *scenario, *args]

    def _run_dir(self) -> Path:
        """The run's folder: its outputs' folder, or a scratch folder of this simulation."""
        if self.outputs is not None:
            return self.outputs.directory
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="twin-traffic-sim-")
        return Path(self._scratch.name)

    def start(self) -> Simulation:
        """Start SUMO; raises :class:`SimulationError` if it does not come up (and
        leaves no scratch folder behind)."""
        try:
            return self._start()
        except BaseException:
            self._remove_scratch()
            raise

    def _remove_scratch(self) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def _start(self) -> Simulation:
        global _libsumo_owner
        if self.outputs is not None:
            self.outputs.directory.mkdir(parents=True, exist_ok=True)
        command = self.command()
        if not self._traci:
            if _running_libsumo_owner() is not None:
                raise SimulationError(
                    "libsumo runs one simulation per process and one is already running here; "
                    "close it first, run the other in its own process, or use backend='traci'"
                )
            import libsumo

            try:
                libsumo.start(command)
            except Exception as error:
                raise SimulationError(self._failure("SUMO did not start", error)) from None
            _libsumo_owner = weakref.ref(self)
            self.api = libsumo
        else:
            if self.config.gui:
                check_display()
            try:
                self.api = _start_traci(command, self._stderr_file())
            except Exception as error:
                raise SimulationError(self._failure("SUMO did not start", error)) from None
            # Steps and signal commands use the client's message buffer and socket.
            if not all(
                hasattr(self.api, n) for n in ("_string", "_queue", "_socket", "_recvExact")
            ):
                self.api.close()
                raise SimulationError(
                    "this traci package lacks the connection internals twin-traffic uses; "
                    "install the traci version its requirements name (1.28)"
                )
            self._queues_commands = True
            # Time and vehicle count come back with every step's reply: no round trips.
            self.api.simulation.subscribe([VAR_TIME])
            self.api.vehicle.subscribe("", [ID_COUNT])
        self._time = float(self.api.simulation.getTime())
        self._set_phase = _raw(self.api.trafficlight, "setPhase")
        self._set_phase_duration = _raw(self.api.trafficlight, "setPhaseDuration")
        self.step_length = float(self.api.simulation.getDeltaT())
        return self

    def close(self) -> None:
        """Stop SUMO and flush its outputs. Safe to call twice."""
        global _libsumo_owner
        if self.api is None:
            return
        try:
            self.api.close()
        except Exception as error:  # a crashed TraCI peer is already gone
            if not self._traci:
                raise SimulationError(self._failure("SUMO failed while closing", error)) from None
        finally:
            if _libsumo_owner is not None and _libsumo_owner() is self:
                _libsumo_owner = None
            self.api = None
            self._remove_scratch()

    def __enter__(self) -> Simulation:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- stepping ----------------------------------------------------------------------------

    @property
    def time(self) -> float:
        """Current simulation time in seconds."""
        return self._time

    @property
    def running(self) -> bool:
        """True while the scenario's end time has not been reached."""
        return self._time < self.scenario.end - 1e-9

    def step(self, until: float = 0.0) -> None:
        """Advance one SUMO step, or up to time ``until`` when given."""
        try:
            if self._traci:
                self.subscribed = _traci_step(self.api, until)
                self.steps_taken += 1
                self._time = float(self.subscribed[_RESPONSE_SIMULATION][""][VAR_TIME])
            else:
                self.api.simulationStep(until)
                self._time = float(self.api.simulation.getTime())
        except Exception as error:
            raise SimulationError(
                self._failure(f"SUMO failed at t={self._time:g} s", error)
            ) from None

    def _stderr_file(self) -> Path | None:
        """Where a separate SUMO process writes its stderr: the run's scratch folder."""
        if self.config.stderr is not None:
            return self.config.stderr
        return None if self.outputs is None else self.outputs.directory / "sumo.stderr"

    def _failure(self, what: str, error: BaseException) -> str:
        detail = str(error) or type(error).__name__
        log_lines = []
        stderr = self._stderr_file()
        for path in (self.outputs.log if self.outputs else None, stderr):
            if path is not None and path.exists():
                log_lines += [
                    line.strip()
                    for line in path.read_text(errors="replace").splitlines()
                    if line.strip() and (path == stderr or line.startswith("Error"))
                ]
        if log_lines:  # the error log and stderr may carry the same lines
            detail = "; ".join(list(dict.fromkeys(log_lines))[-3:])
        return f"{self.scenario.source_label}: {what}: {detail}"

    # -- subscriptions -----------------------------------------------------------------------

    def lane_reader(self, lanes: Sequence[str], variables: Sequence[int]) -> Reader:
        """A reader of lane variables, returned as an array on demand."""
        return self._reader(self.api.lane, lanes, variables)

    def edge_reader(self, edges: Sequence[str], variables: Sequence[int]) -> Reader:
        """A reader of edge variables, returned as an array on demand."""
        return self._reader(self.api.edge, edges, variables)

    def detector_reader(
        self,
        domain: Literal["lanearea", "inductionloop"],
        ids: Sequence[str],
        variables: Sequence[int],
    ) -> Reader:
        """A reader of lane-area detector or induction loop variables."""
        return self._reader(getattr(self.api, domain), ids, variables)

    def _reader(self, domain: Any, ids: Sequence[str], variables: Sequence[int]) -> Reader:
        if not self._traci:
            return GetterReader(domain, tuple(ids), tuple(variables))
        return BatchReader(self.api, domain, tuple(ids), tuple(variables))

    def all_edges(self) -> list[str]:
        """Every edge SUMO knows, junction-internal ones included."""
        return list(self.api.edge.getIDList())

    def vehicle_count(self) -> int:
        """Vehicles in the network now."""
        if self._traci:
            if not self.steps_taken:
                return int(self.api.vehicle.getSubscriptionResults("")[ID_COUNT])
            return int(self.subscribed[_RESPONSE_VEHICLE][""][ID_COUNT])
        # getIDCount builds the list of every vehicle's id first; this is a counter.
        return int(self.api.simulation.getParameter("", "stats.vehicles.running"))

    # -- signals -----------------------------------------------------------------------------

    def load_programme(self, tls: str, phases: Sequence[ProgrammePhase], start: int) -> None:
        """Give signal ``tls`` the static programme ``phases`` (durations in steps) and
        show phase ``start`` from now on."""
        if self._traci:
            import traci

            Logic, Phase = traci.trafficlight.Logic, traci.trafficlight.Phase
        else:
            import libsumo

            Logic, Phase = libsumo.TraCILogic, libsumo.TraCIPhase
        logic = Logic(PROGRAMME_ID, 0, start, [
            Phase(phase.steps * self.step_length, phase.state, -1, -1, (phase.next,))
            for phase in phases
        ])  # fmt: skip
        self.api.trafficlight.setProgramLogic(tls, logic)
        # Replacing the phases of the running programme does not restart its timer;
        # setPhase does.
        self.set_phase(tls, start)

    def set_phase(self, tls: str, index: int, steps: int | None = None) -> None:
        """Show phase ``index`` of signal ``tls``'s programme from now on, for ``steps``
        steps when given (then its programmed successor follows), else for its own
        duration.

        With TraCI the commands wait for the next one and travel with it.
        """
        if self._queues_commands and _queue_tl_command(
            self.api, tls, _TL_PHASE_INDEX, _TYPE_INTEGER, index
        ):
            if steps is not None:
                _queue_tl_command(
                    self.api, tls, _TL_PHASE_DURATION, _TYPE_DOUBLE, steps * self.step_length
                )
            return
        self._set_phase(tls, index)
        if steps is not None:
            self._set_phase_duration(tls, steps * self.step_length)


def check_display() -> None:
    """Raise SimulationError when sumo-gui cannot open here (no X or Wayland display)."""
    import os

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise SimulationError(
            "sumo-gui cannot open: no display is available (DISPLAY is not set); run without "
            "the GUI (no --gui, gui=False), or under a virtual display (xvfb-run ...)"
        )


def _start_traci(command: list[str], stderr: Path | None = None) -> Any:
    """Start ``command`` as a TraCI server and return the connection to it.

    ``traci.start`` waits a whole second before each new attempt to connect, and SUMO is
    rarely listening at the first one, so every start (every ``reset`` of a TraCI env)
    would cost a second; here the attempts come every 20 ms, for up to a minute while a
    large network loads.
    """
    import traci
    from sumolib.miscutils import getFreeSocketPort

    port = getFreeSocketPort()
    # SUMO's own messages (a GUI that cannot open, a crash) go to ``stderr`` so that a
    # failure can quote them; without a file they reach the terminal.
    sink = stderr.open("wb") if stderr is not None else None
    try:
        process = subprocess.Popen(
            [*command, "--remote-port", str(port)], stdout=subprocess.DEVNULL, stderr=sink,
            preexec_fn=dies_with_parent,  # no SUMO left running when its process is killed
        )  # fmt: skip
    finally:
        if sink is not None:
            sink.close()  # the child holds its own descriptor
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # traci prints every retry
            return traci.connect(port, numRetries=3000, proc=process, waitBetweenRetries=0.02)
    except BaseException:
        process.kill()
        process.wait()
        raise


def _queue_tl_command(connection: Any, tls: str, variable: int, kind: int, value: float) -> bool:
    """Queue a TraCI signal command without sending it; False for an id too long to
    queue (the caller then sends the command the ordinary way).

    A TraCI message may carry several commands, but the Python client sends each alone,
    one round trip apiece. Queued in the client's own buffer, a decision's phase changes
    go to SUMO in one message: the next command sent carries them (a step command must
    not, since SUMO answers the step before the commands ahead of it, so
    :meth:`Simulation.step` sends them first).
    """
    name = tls.encode("utf8")
    body = struct.pack("!Bi", variable, len(name)) + name
    body += struct.pack("!Bi" if kind == _TYPE_INTEGER else "!Bd", kind, value)
    if len(body) + 2 > 255:  # a long id needs the long command header: send it alone
        return False
    connection._string += struct.pack("!BB", len(body) + 2, _CMD_SET_TL_VARIABLE) + body
    connection._queue.append(_CMD_SET_TL_VARIABLE)
    return True


def _traci_step(connection: Any, until: float) -> dict[int, dict[str, dict[int, float]]]:
    """One TraCI step in one round trip, the signal commands queued since the last one
    travelling ahead of it, its subscription results parsed straight from the reply.

    SUMO runs the commands that precede a step in a message before the step, and
    answers them (when it does) ahead of the step's own answer. The
    Python client parses every subscribed value through several generic calls (about
    3 µs each), which on a light network costs more than SUMO's own step; every value
    subscribed here is a scalar, read in one ``unpack_from`` apiece.
    """
    message = connection._string + struct.pack("!BBd", 10, _CMD_SIMSTEP, until)
    connection._string, connection._queue = b"", []
    connection._socket.send(struct.pack("!i", len(message) + 4) + message)
    data = connection._recvExact()._content
    pos, command = 0, -1
    while command != _CMD_SIMSTEP:  # statuses (length, command, result, description)
        command = data[pos + 5 if data[pos] == 0 else pos + 1]
        pos = _skip_status(data, pos)
    (count,) = _INT.unpack_from(data, pos)
    pos += 4
    results: dict[int, dict[str, dict[int, float]]] = {}
    for _ in range(count):
        pos += 5 if data[pos] == 0 else 1  # the length: one byte, or 0 and four more
        response = data[pos]
        (length,) = _INT.unpack_from(data, pos + 1)
        pos += 5
        object_id = data[pos : pos + length].decode("utf8")
        pos += length
        count_vars = data[pos]
        pos += 1
        values: dict[int, float] = {}
        for _ in range(count_vars):
            variable, status, kind = data[pos], data[pos + 1], data[pos + 2]
            pos += 3
            if status or kind not in _SCALARS:
                raise SimulationError(
                    f"unexpected TraCI reply for {object_id!r} variable {variable:#x} "
                    f"(status {status:#x}, type {kind:#x})"
                )
            scalar = _SCALARS[kind]
            values[variable] = scalar.unpack_from(data, pos)[0]
            pos += scalar.size
        results.setdefault(response, {})[object_id] = values
    return results


# Getter names of the variables readers support, by TraCI id.
_GETTERS = {
    LAST_STEP_VEHICLE_NUMBER: "getLastStepVehicleNumber",
    LAST_STEP_MEAN_SPEED: "getLastStepMeanSpeed",
    LAST_STEP_OCCUPANCY: "getLastStepOccupancy",
    LAST_STEP_VEHICLE_HALTING_NUMBER: "getLastStepHaltingNumber",
    VAR_WAITING_TIME: "getWaitingTime",
    VAR_INTERVAL_NUMBER: "getIntervalVehicleNumber",
}


class Reader(Protocol):
    """Reads variables of lanes or edges into an ``(objects, variables)`` array."""

    ids: tuple[str, ...]
    variables: tuple[int, ...]

    def read(self) -> np.ndarray:
        """Values after the last step."""
        ...


def _raw(domain: Any, name: str) -> Any:
    """libsumo's compiled function ``name`` of ``domain``, skipping its one-line Python
    wrapper (a third of the cost of a call); TraCI's method as it is."""
    if not isinstance(domain, type):  # a TraCI connection's domain object
        return getattr(domain, name)
    import libsumo

    raw = getattr(getattr(libsumo, "_libsumo", None), f"{domain.__name__}_{name}", None)
    return raw if raw is not None else getattr(domain, name)


# Lane and edge variables that sum over the vehicles on the object: zero wherever its
# vehicle count is.
_ZERO_WHEN_EMPTY = frozenset({LAST_STEP_VEHICLE_HALTING_NUMBER, VAR_WAITING_TIME})


class GetterReader:
    """libsumo: direct calls at read time (about 0.2 µs each) and no cost per step.

    Subscriptions would make SUMO compute the values at every step, also between
    decisions, and cost more to unpack. When the vehicle count of lanes or edges is
    read, the variables that sum over their vehicles are asked only of those that have
    any: on most networks half the approaches or more are empty at any moment.
    """

    def __init__(self, domain: Any, ids: tuple[str, ...], variables: tuple[int, ...]) -> None:
        self.ids = ids
        self.variables = variables
        self._getters = [_raw(domain, _GETTERS[v]) for v in variables]
        self._count = len(ids) * len(variables)
        gated = (
            [k for k, v in enumerate(variables) if v in _ZERO_WHEN_EMPTY]
            if LAST_STEP_VEHICLE_NUMBER in variables
            and getattr(domain, "__name__", None) in ("lane", "edge")
            else []
        )
        self._gate = variables.index(LAST_STEP_VEHICLE_NUMBER) if gated else -1
        self._gated = np.array(gated, dtype=int)
        self._ungated = [k for k in range(len(variables)) if k not in gated and k != self._gate]

    def read(self) -> np.ndarray:
        """Values after the last step, shape ``(len(ids), len(variables))``."""
        ids, getters = self.ids, self._getters
        if self._gate < 0:
            values = np.fromiter(chain.from_iterable(map(get, ids) for get in getters),
                                 dtype=float, count=self._count)  # fmt: skip
            return values.reshape(len(self.variables), len(ids)).T
        values = np.zeros((len(self.variables), len(ids)))
        counts = values[self._gate]
        counts[:] = list(map(getters[self._gate], ids))
        busy = counts.nonzero()[0]
        if len(busy):
            busy_ids = [ids[i] for i in busy]
            gated = [list(map(getters[k], busy_ids)) for k in self._gated]
            values[self._gated[:, None], busy] = gated
        for k in self._ungated:
            values[k] = list(map(getters[k], ids))
        return values.T


class BatchReader:
    """TraCI: the values are asked for once a step has run, with every get command of the
    read in one message and its answer parsed here (one round trip per read).

    Subscriptions would carry the values in each step's reply instead, but SUMO then
    works them out again at every one of the interval's steps, which on a light network
    costs it more than the steps themselves; a read costs it one pass.
    """

    def __init__(
        self, connection: Any, domain: Any, ids: tuple[str, ...], variables: tuple[int, ...]
    ) -> None:
        self.ids = ids
        self.variables = variables
        self._connection = connection
        self._count = len(ids) * len(variables)
        commands = [
            struct.pack("!BBi", domain._cmdGetID, variable, len(name)) + name
            for name in (object_id.encode("utf8") for object_id in ids)
            for variable in variables
        ]
        self._message = b"".join(_with_length(command) for command in commands)
        self._layout: _ReplyLayout | None = None

    def read(self) -> np.ndarray:
        """Values after the last step, shape ``(len(ids), len(variables))``."""
        connection = self._connection
        if connection._string:  # commands waiting for a message go first, answered apart
            connection._sendExact()
        connection._socket.send(struct.pack("!i", len(self._message) + 4) + self._message)
        data = connection._recvExact()._content
        values = self._layout.values(data) if self._layout is not None else None
        if values is None:  # the first read, or a reply of another shape: parse it all
            values, self._layout = _parse_values(data, self._count)
        return values.reshape(len(self.ids), len(self.variables))


class _ReplyLayout:
    """Where the values sit in a read's reply. Every reply to the same read has the same
    bytes around its values (the same ids, statuses without text, each variable of one
    type), so once known they are gathered in a few NumPy operations; a reply of another
    length, or with another status or type byte, is parsed in full instead."""

    def __init__(self, size: int, checks: dict[int, int], values: list[tuple[int, int]]) -> None:
        self.size = size
        self._check_at = np.array(list(checks), dtype=np.intp)
        self._check_is = np.array(list(checks.values()), dtype=np.uint8)
        # Per value type: which values, the byte positions of each, its NumPy dtype.
        self._groups = []
        for kind, scalar in _SCALARS.items():
            chosen = [i for i, (_, k) in enumerate(values) if k == kind]
            if chosen:
                starts = np.array([values[i][0] for i in chosen], dtype=np.intp)
                where = starts[:, None] + np.arange(scalar.size)
                dtype = ">i4" if kind == _TYPE_INTEGER else ">f8"
                self._groups.append((np.array(chosen, dtype=np.intp), where, dtype))
        self._count = len(values)

    def values(self, data: bytes) -> np.ndarray | None:
        """The values of ``data``, or None when it does not have this layout."""
        if len(data) != self.size:
            return None
        raw = np.frombuffer(data, dtype=np.uint8)
        if not np.array_equal(raw[self._check_at], self._check_is):
            return None
        values = np.empty(self._count, dtype=float)
        for chosen, where, dtype in self._groups:
            values[chosen] = raw[where].view(dtype)[:, 0]
        return values


def _parse_values(data: bytes, count: int) -> tuple[np.ndarray, _ReplyLayout]:
    """Every value of a read's reply, and the reply's layout for the next ones."""
    values = np.empty(count, dtype=float)
    checks: dict[int, int] = {}  # byte position -> the byte a reply of this shape has
    places: list[tuple[int, int]] = []
    pos = 0
    for index in range(count):
        status = pos + (5 if data[pos] == 0 else 1)
        checks[status + 1] = data[status + 1]  # the result: 0, success
        pos = _skip_status(data, pos)
        pos += 5 if data[pos] == 0 else 1  # the answer's length
        (length,) = _INT.unpack_from(data, pos + 2)  # after its command and variable
        pos += 6 + length
        kind = data[pos]
        scalar = _SCALARS.get(kind)
        if scalar is None:
            raise SimulationError(f"unexpected TraCI value type {kind:#x} in a read")
        checks[pos] = kind
        places.append((pos + 1, kind))
        values[index] = scalar.unpack_from(data, pos + 1)[0]
        pos += 1 + scalar.size
    return values, _ReplyLayout(len(data), checks, places)


def _with_length(command: bytes) -> bytes:
    """A TraCI command with its length header (the long form past 255 bytes)."""
    if len(command) + 1 <= 255:
        return struct.pack("!B", len(command) + 1) + command
    return struct.pack("!Bi", 0, len(command) + 5) + command


def _skip_status(data: bytes, pos: int) -> int:
    """Position after the status at ``pos``; SimulationError when it reports a failure."""
    pos += 5 if data[pos] == 0 else 1
    command, result = data[pos], data[pos + 1]
    (length,) = _INT.unpack_from(data, pos + 2)
    if result != 0:
        detail = data[pos + 6 : pos + 6 + length].decode("utf8", "replace")
        raise SimulationError(f"SUMO refused command {command:#x}: {detail}")
    return pos + 6 + length
