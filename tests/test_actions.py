"""The key table: one binding per key, and every place that lists keys generated from it."""

from __future__ import annotations

from pathlib import Path

from app.actions import ACTIONS, KEY_ACTIONS, action, epilog_keys, help_lines, markdown_table, status_hints, tooltip

ROOT = Path(__file__).resolve().parent.parent


def test_no_key_is_bound_twice_and_arguments_match_keys() -> None:
    keys = [key for item in KEY_ACTIONS for key in item.keys]
    assert len(keys) == len(set(keys))
    assert all(not item.arguments or len(item.arguments) == len(item.keys) for item in ACTIONS)
    assert len({item.name for item in KEY_ACTIONS}) == len(KEY_ACTIONS)


def test_every_listing_names_every_action() -> None:
    overlay, epilog, table = "\n".join(help_lines()), epilog_keys(), markdown_table()
    for item in ACTIONS:
        assert f"{item.label}: {item.help}" in overlay
        assert item.label in epilog and item.help.split()[0] in epilog
        assert f"| {item.label} | {item.help} |" in table
        if item.hint:
            assert f"{item.label.replace(' / ', '/')}: {item.hint}" in status_hints()
    assert tooltip("anchor") == "n / space: the current frame becomes the anchor"
    assert action("size").argument_of("Period") == (1,)


def test_the_help_overlay_keeps_its_lines_short() -> None:
    lines = help_lines(width=120)
    assert all(len(line) <= 120 for line in lines)
    assert len(lines) < len(ACTIONS)  # short entries share a line


def test_the_key_storm_presses_every_key_but_quit_and_the_file_dialog() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("key_storm", ROOT / "tools" / "key_storm.py")
    assert spec is not None and spec.loader is not None
    key_storm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(key_storm)
    keys = key_storm.storm_keys()  # a key the tool cannot name for xdotool stops it: added keys must be mapped
    bound = [key for action in ACTIONS if action.name not in ("quit", "open") for key in action.keys]
    assert len(keys) == len(bound) and len(set(keys)) == len(keys)
    assert {"n", "space", "bracketleft", "Prior", "Next", "F11"} <= set(keys) and not {"q", "Escape"} & set(keys)
