"""``twin-traffic scenario from-osm | sensors | counts | calibrate``: build and calibrate a twin."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from twin_traffic.cli.app import err, out, scenario_app
from twin_traffic.cli.common import (
    BeginOption,
    EndOption,
    OutputFormat,
    check_output_file,
    plural,
)
from twin_traffic.errors import TwinTrafficError


class StartChoice(str, Enum):
    """Candidate route pools of ``scenario calibrate``."""

    cover = "cover"
    random = "random"
    scenario = "scenario"


class SamplerChoice(str, Enum):
    """How ``scenario calibrate`` picks vehicles from the candidate routes."""

    lp = "lp"
    routesampler = "routesampler"


@scenario_app.command("from-osm")
def scenario_from_osm(
    osm_file: Annotated[Path, typer.Argument(help="OpenStreetMap extract (.osm, XML).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Scenario folder to write.")],
    name: Annotated[
        str | None, typer.Option(help="Base name of the files (default: the OSM file's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random starting demand.")] = 0,
    end: Annotated[float, typer.Option(help="End of the simulated window, s.")] = 3600.0,
    period: Annotated[
        float, typer.Option(help="Mean seconds between departures (2.5 s = 1440 veh/h).")
    ] = 2.5,
    fringe_factor: Annotated[
        float, typer.Option(help="How much likelier trips start/end at the network's edge.")
    ] = 10.0,
    force: Annotated[
        bool, typer.Option(help="Replace --out when it is a scenario folder (holds a .sumocfg).")
    ] = False,
) -> None:
    """Build a ready-to-run scenario from an OpenStreetMap extract.

    netconvert makes a car network with one signal controller per signalised
    intersection; randomTrips.py and duarouter give it a seeded starting demand. The
    folder appears only once everything is built.
    """
    from twin_traffic.osm import build_from_osm

    built = build_from_osm(
        osm_file, out_dir, name=name, seed=seed, end=end, period=period,
        fringe_factor=fringe_factor, force=force,
    )  # fmt: skip
    scenario = built.scenario
    out.print(
        f"[green]ok[/green] {built.config}: {plural(len(scenario.traffic_lights), 'signal')} "
        f"({', '.join(scenario.traffic_lights)}), {built.vehicles} vehicles, window "
        f"{scenario.begin:g}–{scenario.end:g} s",
        highlight=False,
    )


@scenario_app.command("sensors")
def scenario_sensors(
    scenario_dir: Annotated[Path, typer.Argument(help="Scenario folder (or its .sumocfg).")],
) -> None:
    """Place stop-line loops (E1) and approach detectors (E2) at every signal.

    Writes sensors.add.xml into the scenario folder and lists it in the .sumocfg.
    """
    from twin_traffic.sensors import add_sensors

    path, detectors = add_sensors(scenario_dir)
    loops = sum(d.kind == "e1" for d in detectors)
    out.print(
        f"[green]ok[/green] {path}: {loops} induction loops (e1_LANE), "
        f"{len(detectors) - loops} lane-area detectors (e2_LANE)",
        highlight=False,
    )


@scenario_app.command("counts")
def scenario_counts(
    scenario: Annotated[str, typer.Argument(help="Scenario folder, .sumocfg or built-in name.")],
    out_file: Annotated[Path, typer.Option("--out", help="Counts CSV to write.")],
    interval: Annotated[float, typer.Option(help="Counting interval, s.")] = 900.0,
    seed: Annotated[int, typer.Option(help="SUMO seed of the counting run.")] = 0,
    detectors: Annotated[
        Path | None,
        typer.Option(help="Additional file with the loops to count at (default: the scenario's)."),
    ] = None,
    begin: BeginOption = None,
    end: EndOption = None,
    force: Annotated[bool, typer.Option(help="Replace --out when it exists.")] = False,
) -> None:
    """Run a scenario and write what its induction loops count (location,begin,end,count).

    The loops are the scenario's own (e1Detector/inductionLoop in its additional files),
    else its sensors.add.xml, else stop-line loops at every signal; intervals follow the
    scenario's clock. Outputs the scenario declares go to a scratch folder.
    """
    from twin_traffic.sensors import record_counts

    check_output_file(out_file)
    if out_file.exists() and not force:
        # A counts file is often the city's own measurements: never replace one unasked.
        raise TwinTrafficError(
            f"{out_file}: already exists; choose another --out, or add --force to replace it"
        )
    counts = record_counts(
        scenario, interval=interval, seed=seed, out=out_file, detectors_file=detectors,
        begin=begin, end=end,
    )  # fmt: skip
    locations = len({c.location for c in counts})
    total = sum(c.count for c in counts)
    out.print(
        f"[green]ok[/green] {out_file}: {locations} loops × "
        f"{plural(len(counts) // locations, 'interval')}, {total:,.0f} vehicles counted",
        highlight=False,
    )


@scenario_app.command("calibrate")
def scenario_calibrate(
    scenario_dir: Annotated[Path, typer.Argument(help="Scenario folder (or its .sumocfg).")],
    counts: Annotated[
        Path,
        typer.Option(
            help="Counts: CSV location,begin,end,count (loop or edge id), or SUMO detector XML."
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="New folder for the calibrated scenario.")],
    interval: Annotated[
        float | None,
        typer.Option(
            help="Sum the counts into intervals of this many s (from the scenario's begin) first."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the routes and the checking run.")] = 0,
    detectors: Annotated[
        Path | None,
        typer.Option(help="Additional file with the loops counted (default: the scenario's)."),
    ] = None,
    start: Annotated[
        StartChoice, typer.Option(help="Candidate routes the demand is picked from.")
    ] = StartChoice.cover,
    sampler: Annotated[
        SamplerChoice,
        typer.Option(
            help="lp: a linear programme over every loop count, refined with simulations; "
            "routesampler: SUMO's routeSampler.py on the edge and turn counts."
        ),
    ] = SamplerChoice.lp,
    rounds: Annotated[
        int, typer.Option(help="With lp: refits from a simulation of the demand.", min=0)
    ] = 4,
    vehicle_type: Annotated[
        str | None,
        typer.Option(
            help="vType (or distribution) of the new vehicles, from the additional files."
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="table, or json on stdout for scripts.")
    ] = OutputFormat.table,
) -> None:
    """Fit the scenario's demand to counts and report the GEH per count.

    Writes a new scenario folder (--out) with NAME.calibrated.rou.xml as its demand,
    calibration.csv, calibration.png and calibration-intervals.png; the original scenario
    is left untouched. Accepted when at least 85% of the counts have GEH < 5. Candidate
    routes: cover (random trips plus routes through every counted location), random
    (randomTrips.py) or scenario (the scenario's own routes). Sampler: lp (the default;
    each route's share of each loop from the lanes it drives on, then measured in
    --rounds simulations) or routesampler.
    """
    import json

    from twin_traffic.calibrate import calibrate
    from twin_traffic.counts import GEH_OK

    started = time.perf_counter()

    def step(what: str) -> None:
        err.print(f"calibrating ({time.perf_counter() - started:5.1f} s): {escape(what)}",
                  highlight=False)  # fmt: skip

    result = calibrate(
        scenario_dir, counts, out=out_dir, interval=interval, seed=seed,
        detectors_file=detectors, start=start.value, vehicle_type=vehicle_type,
        sampler=sampler.value, rounds=rounds, on_step=step,
    )  # fmt: skip
    if output_format is OutputFormat.json:
        out.print_json(json.dumps(result.summary()))
        return
    table = Table(title=f"Fit to {counts.name}: observed vs simulated", title_justify="left")
    for column in ("location", "interval (s)", "observed", "simulated", "GEH"):
        table.add_column(column, justify="left" if column == "location" else "right")
    for fit in result.fits:
        style = "green" if fit.geh < GEH_OK else "red"
        table.add_row(
            fit.location,
            f"{fit.begin:g}–{fit.end:g}",
            f"{fit.observed:g}",
            f"{fit.simulated:g}",
            f"[{style}]{fit.geh:.2f}[/{style}]",
        )
    out.print(table)
    worst = ", ".join(f"{loc} ({value:.1f})" for loc, value in result.worst())
    out.print(f"worst locations (mean GEH): {worst}", highlight=False)
    if result.missing:
        out.print(
            f"{len(result.missing)} location × interval counts missing (not guessed), e.g. "
            f"{result.missing[0][0]} {result.missing[0][1]:g}–{result.missing[0][2]:g}",
            highlight=False,
        )
    if result.unused:
        out.print(
            f"{len(result.unused)} counts are not targets, e.g. {result.unused[0][0]}: "
            f"{result.unused[0][1]}",
            highlight=False,
        )
    out.print(
        f"{len(result.uncovered)} counted locations passed by no {result.start} candidate "
        f"route ({result.candidates} routes)",
        highlight=False,
    )
    verdict = "[green]accepted[/green]" if result.accepted else "[yellow]not accepted[/yellow]"
    out.print(
        f"{verdict}: {result.share_ok:.1%} of {len(result.fits)} counts with GEH < 5 "
        f"(85% needed); {result.vehicles} vehicles in {result.route_file}",
        highlight=False,
    )
    plots = " and ".join(str(p) for p in (result.plot, result.interval_plot) if p)
    err.print(f"fit written to {result.report}" + (f", {plots}" if plots else ""), highlight=False)
