"""``twin-traffic scenario list | info | check``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from twin_traffic.cli.app import err, out, scenario_app
from twin_traffic.cli.common import (
    BeginOption,
    EndOption,
    ProtocolOption,
    RoutesOption,
    ScenarioArg,
    SumoOption,
    TeleportOption,
    plural,
    protocol_from,
)
from twin_traffic.errors import TwinTrafficError

if TYPE_CHECKING:
    from twin_traffic.network import Network
    from twin_traffic.scenario import Scenario


@scenario_app.command("list")
def scenario_list() -> None:
    """List the built-in scenarios."""
    from twin_traffic.scenario import builtin_scenarios, load_scenario

    table = Table(title="Built-in scenarios", title_justify="left")
    for column in ("name", "signals", "window (s)", "routes"):
        table.add_column(column)
    for name in builtin_scenarios():
        scenario = load_scenario(name)
        table.add_row(
            name,
            str(len(scenario.traffic_lights)),
            f"{scenario.begin:g}–{scenario.end:g}",
            ", ".join(p.name for p in scenario.route_files),
        )
    out.print(table)


@scenario_app.command("info")
def scenario_info(
    scenario: ScenarioArg,
    routes: RoutesOption = None,
    begin: BeginOption = None,
    end: EndOption = None,
) -> None:
    """Show a scenario's files, time window and signals."""
    loaded, network = _load(scenario, routes, begin, end)
    out.print(f"[bold]{loaded.name}[/bold]  window {loaded.begin:g}–{loaded.end:g} s")
    for label, paths in (
        ("config", [loaded.config_file] if loaded.config_file else []),
        ("network", [loaded.net_file]),
        ("routes", list(loaded.route_files)),
        ("additional", list(loaded.additional_files)),
    ):
        for path in paths:
            out.print(f"  {label:<10} {path}", highlight=False)
    table = Table(title=plural(len(network.traffic_lights), "signal"), title_justify="left")
    for column in ("signal", "phases", "greens", "links", "approach lanes", "green states"):
        table.add_column(column)
    for light in network.traffic_lights.values():
        greens = [light.phases[i].state for i in light.green_phases]
        table.add_row(
            light.id,
            str(len(light.phases)),
            str(len(greens)),
            str(light.num_links),
            str(len(light.incoming_lanes)),
            " ".join(greens),
        )
    out.print(table)


@scenario_app.command("check")
def scenario_check(
    scenario: ScenarioArg,
    routes: RoutesOption = None,
    begin: BeginOption = None,
    end: EndOption = None,
    protocol: ProtocolOption = None,
    time_to_teleport: TeleportOption = None,
    sumo_option: SumoOption = None,
) -> None:
    """Validate a scenario, and the protocol options if given, without simulating it (exit
    code 1 and the reason if it fails)."""
    from twin_traffic.scenario import has_demand
    from twin_traffic.sensors import check_detector_lanes

    run_protocol = protocol_from(protocol, time_to_teleport, sumo_option)
    loaded, network = _load(scenario, routes, begin, end)
    check_detector_lanes(loaded)
    for light in network.traffic_lights.values():
        if not light.green_phases:
            raise TwinTrafficError(
                f"{loaded.net_file}: signal '{light.id}' has no green phase in programme "
                f"'{light.program_id}'; give it at least one phase with a G or g"
            )
    if not has_demand(loaded):
        raise TwinTrafficError(
            f"{loaded.source_label}: no demand: no route files, and no vehicles, trips or "
            "flows in its additional files; add a <route-files value=...> entry"
        )
    for light in network.traffic_lights.values():
        try:
            network.check_takeover([light.id], "a controller other than fixed")
        except TwinTrafficError as error:
            err.print(f"[yellow]warning:[/yellow] {escape(str(error))}", highlight=False)
    args = run_protocol.sumo_args()
    extra = f"; SUMO options {' '.join(args)}" if args else ""
    out.print(
        f"[green]ok[/green] {loaded.name}: {plural(len(network.traffic_lights), 'signal')}, "
        f"{len(loaded.route_files)} route file(s), window {loaded.begin:g}–{loaded.end:g} s"
        f"{extra}",
        highlight=False,
    )


def _load(
    scenario: str, routes: list[Path] | None, begin: float | None, end: float | None
) -> tuple[Scenario, Network]:
    from twin_traffic.network import load_network
    from twin_traffic.scenario import load_scenario

    loaded = load_scenario(scenario, routes=routes or (), begin=begin, end=end)
    return loaded, load_network(loaded)
