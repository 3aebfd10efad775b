"""Drawing a Design to PNG with networkx + matplotlib (Agg backend, no display needed).

Roles are placed left to right by topological generation; skipped roles are drawn grey and
dashed; each active role is labelled with its mixture (proposers, then `-> synthesizer`).
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from hieramas_gnn.mas.design import Design


def _label(design: Design, i: int) -> str:
    m = design.mixtures[i]
    if m is None:
        return f"{design.roles[i]}\n(skipped)"
    props = "\n".join(m.proposers)  # one model a line: long model names stay inside the figure
    synth = f"\n-> {m.synthesizer}" if m.k > 1 else ""
    return f"{design.roles[i]}\n{props}{synth}"


def draw_design(design: Design, path: str | Path, title: str | None = None) -> Path:
    """Write a PNG of the design (all roles, skipped ones greyed) plus the decision node."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = design.to_networkx()
    for gen_i, gen in enumerate(nx.topological_generations(g)):
        for v in gen:
            g.nodes[v]["layer"] = gen_i
    last = max((g.nodes[v]["layer"] for v in g), default=-1) + 1
    g.add_node("decision", layer=last, skipped=False)
    for s in design.decision_reads():
        g.add_edge(s, "decision")
    pos = nx.multipartite_layout(g, subset_key="layer")
    labels = {v: _label(design, v) for v in range(design.n)}
    reads = "" if design.decision_inputs == "sinks" else "\n(reads all; skipped if unanimous)"
    labels["decision"] = f"decision\n{design.decision}{reads}"
    colours = ["#dddddd" if g.nodes[v].get("skipped") else "#9ecae1" for v in g]
    fig, ax = plt.subplots(figsize=(2.6 * (last + 1), 1.6 * max(2, design.n)))
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colours, node_size=2600)
    nx.draw_networkx_labels(g, pos, labels=labels, ax=ax, font_size=7, clip_on=False)  # never cut at the axes
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowsize=14, node_size=2600,
                           style=["dashed" if g.nodes[u].get("skipped") else "solid" for u, _ in g.edges])
    ax.set_title(title or "design")
    ax.margins(x=0.25, y=0.2)  # room for the labels of the outer nodes
    ax.axis("off")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
