"""Every command by name, and the module and attribute that define it.

Typer-free, so that `fast.py` can find an everyday command without loading typer;
`lazy.py` loads the others (and these, for `--help`) into the typer app.
"""

from __future__ import annotations

# name: "module:attribute", a command function or a Typer app of subcommands. In the order
# `cellops --help` lists them.
COMMANDS: dict[str, str] = {
    "init": "cellops.cli.init:init",
    "validate": "cellops.cli.validate:validate",
    "plan": "cellops.cli.plan:plan",
    "render": "cellops.cli.render:render_cell",
    "schema": "cellops.cli.schema:schema",
    "up": "cellops.cli.controller:up",
    "down": "cellops.cli.controller:down",
    "status": "cellops.cli.status:status",
    "history": "cellops.cli.status:history",
    "get": "cellops.cli.get:get",
    "describe": "cellops.cli.describe:describe_app",
    "events": "cellops.cli.events:events",
    "diff": "cellops.cli.diff:diff",
    "logs": "cellops.cli.logs:logs",
    "rollout": "cellops.cli.inspect:rollout_app",
    "promote": "cellops.cli.operate:promote",
    "rollback": "cellops.cli.operate:rollback",
    "token": "cellops.cli.token:token_app",
    "config": "cellops.cli.contexts:config_app",
    "dora": "cellops.cli.dora:dora",
    "scorecard": "cellops.cli.dora:scorecard",
    "router": "cellops.cli.router:router_app",
    "tenant": "cellops.cli.tenant:tenant_app",
    "demo": "cellops.cli.demo:demo",
}

# Declared with `cellops.cli.params` alone, so argparse can run them (`fast.py`).
FAST = frozenset({"validate", "plan", "render", "status", "get"})
