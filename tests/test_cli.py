"""The `hieramas` entry point: help works, nothing heavy happens at import."""

import subprocess
import sys


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "hieramas_gnn.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "usage: hieramas" in out.stdout


def test_import_has_no_side_effects():
    code = "import sys, hieramas_gnn, hieramas_gnn.cli; print(sorted(m for m in ('litellm','torch','wandb') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _commands():
    import argparse

    from hieramas_gnn.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    return sub.choices, helps


def test_every_subcommand_and_flag_has_help_text():
    import argparse

    commands, helps = _commands()
    missing = [name for name in commands if not helps.get(name)]

    def walk(parser, where):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                inner = {c.dest: c.help for c in action._choices_actions}
                for name, child in action.choices.items():
                    if not inner.get(name):
                        missing.append(f"{where} {name}")
                    walk(child, f"{where} {name}")
            elif not action.help:
                missing.append(f"{where} {'/'.join(action.option_strings) or action.dest}")

    for name, child in commands.items():
        walk(child, name)
    assert not missing, f"no help text: {missing}"


def test_a_flag_takes_the_same_values_on_every_command():
    """One set of values per flag: the choices (or their absence) of a flag agree across commands."""
    commands, _ = _commands()
    seen: dict[str, dict[str, object]] = {}
    for name, child in commands.items():
        for action in child._actions:
            for flag in action.option_strings:
                seen.setdefault(flag, {})[name] = tuple(action.choices) if action.choices else None
    exceptions = {"--out", "--limit", "--config", "--seed", "--json", "--task", "--split", "--methods", "--baselines"}
    differ = {flag: by for flag, by in seen.items()
              if flag not in exceptions and len(set(by.values())) > 1}
    assert not differ, differ


def test_quiet_is_taken_before_and_after_the_subcommand():
    from hieramas_gnn.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["--quiet", "tasks", "list"]).quiet_all
    assert parser.parse_args(["tasks", "list", "--quiet"]).quiet
    assert parser.parse_args(["--quiet", "collect", "--config", "c.yaml"]).quiet_all  # collect has its own --quiet
    args = parser.parse_args(["tasks", "list"])
    assert not args.quiet_all and not getattr(args, "quiet", False)


def test_progress_is_lines_off_a_terminal_and_silent_when_quiet(capsys):
    from hieramas_gnn import progress

    with progress.bar(3, "work") as shown:
        for _ in range(3):
            shown.update()
    progress.phase("work done")
    err = capsys.readouterr().err
    assert "work: 3/3" in err and "hieramas: work done" in err and "\r" not in err
    progress.set_quiet(True)
    try:
        with progress.bar(3, "work") as shown:
            shown.update(3)
        progress.phase("work done")
    finally:
        progress.set_quiet(False)
    assert capsys.readouterr().err == ""
