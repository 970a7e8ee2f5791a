"""Shared fixtures: small real SUMO scenarios built with SUMO's own netconvert."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from twin_traffic.sim import sumo_binary

# A straight road A -> B -> C, 200 m per edge at 13.89 m/s, with a signal at B.
NODES = """<nodes>
  <node id="A" x="0" y="0" type="priority"/>
  <node id="B" x="200" y="0" type="traffic_light"/>
  <node id="C" x="400" y="0" type="priority"/>
</nodes>
"""
EDGES = """<edges>
  <edge id="AB" from="A" to="B" numLanes="1" speed="13.89"/>
  <edge id="BC" from="B" to="C" numLanes="1" speed="13.89"/>
</edges>
"""
# No dawdling and no speed spread: every vehicle drives exactly at the speed limit.
VTYPE = '<vType id="car" sigma="0" speedDev="0" accel="2.6" decel="4.5"/>'


def netconvert(
    directory: Path, nodes: str = NODES, edges: str = EDGES, connections: str | None = None
) -> Path:
    """Build a network with SUMO's netconvert from node and edge definitions (and
    ``<connection>`` elements, which replace those netconvert would make for their edges)."""
    (directory / "n.nod.xml").write_text(nodes)
    (directory / "n.edg.xml").write_text(edges)
    extra = []
    if connections is not None:
        (directory / "n.con.xml").write_text(f"<connections>{connections}</connections>")
        extra = ["-x", "n.con.xml"]
    net = directory / "road.net.xml"
    binary = sumo_binary().with_name("netconvert")
    subprocess.run(
        [
            str(binary),
            "-n",
            "n.nod.xml",
            "-e",
            "n.edg.xml",
            *extra,
            "-o",
            net.name,
            "--no-turnarounds",
        ],
        cwd=directory,
        check=True,
        capture_output=True,
    )
    return net


def write_scenario(
    directory: Path,
    vehicles: list[tuple[str, float]],
    phases: list[tuple[float, str]],
    end: float,
    nodes: str = NODES,
) -> Path:
    """A one-signal scenario: vehicles (id, depart) on A->C and the signal's programme."""
    net = netconvert(directory, nodes=nodes)
    routes = [
        f'  <vehicle id="{vid}" type="car" route="r" depart="{t}" departSpeed="max"/>'
        for vid, t in vehicles
    ]
    (directory / "road.rou.xml").write_text(
        "<routes>\n  "
        + VTYPE
        + '\n  <route id="r" edges="AB BC"/>\n'
        + "\n".join(routes)
        + "\n</routes>\n"
    )
    plan = "\n".join(f'    <phase duration="{d}" state="{s}"/>' for d, s in phases)
    (directory / "plan.add.xml").write_text(
        f'<additional>\n  <tlLogic id="B" type="static" programID="plan" offset="0">\n{plan}\n'
        "  </tlLogic>\n</additional>\n"
    )
    config = directory / "road.sumocfg"
    config.write_text(
        f"""<configuration>
  <input>
    <net-file value="{net.name}"/>
    <route-files value="road.rou.xml"/>
    <additional-files value="plan.add.xml"/>
  </input>
  <time><begin value="0"/><end value="{end}"/></time>
</configuration>
"""
    )
    return config


@pytest.fixture
def road(tmp_path: Path) -> Path:
    """A tiny scenario with a few vehicles on a signalised road (sumocfg path)."""
    return write_scenario(
        tmp_path, [("v0", 0), ("v1", 5)], [(30, "G"), (3, "y"), (30, "r")], end=120
    )
