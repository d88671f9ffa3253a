"""The pieces `meshline keys` and `meshline regions token` share."""

from __future__ import annotations

import pytest
import typer

from cli.client.issued_secrets import comma_list, duration_seconds, phase_cell
from meshline.phases import ApiKeyPhase, JoinTokenPhase


@pytest.mark.parametrize(
    ("phase", "cell"),
    [
        (ApiKeyPhase.ACTIVE, "[green]Active[/green]"),
        (ApiKeyPhase.REVOKED, "[red]Revoked[/red]"),
        (ApiKeyPhase.EXPIRED, "[yellow]Expired[/yellow]"),
        (JoinTokenPhase.ACTIVE, "[green]Active[/green]"),
        (JoinTokenPhase.REVOKED, "[red]Revoked[/red]"),
        (JoinTokenPhase.EXPIRED, "[yellow]Expired[/yellow]"),
        ("Pending", "Pending"),  # a phase this CLI does not know: as it is, uncoloured
        ("", ""),
    ],
)
def test_phase_cell(phase: str, cell: str) -> None:
    assert phase_cell(phase) == cell


@pytest.mark.parametrize(
    ("value", "items"),
    [
        (None, []),
        ("", []),
        ("a", ["a"]),
        (" a , b,,c ", ["a", "b", "c"]),
        (" , ", []),
    ],
)
def test_comma_list(value: str | None, items: list[str]) -> None:
    assert comma_list(value) == items


def test_duration_seconds_reads_durations_and_names_the_option_it_cannot_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert duration_seconds("1h30m", "--expires") == 5400
    assert duration_seconds("0", "--grace") == 0
    with pytest.raises(typer.Exit) as raised:
        duration_seconds("soon", "--grace")
    assert raised.value.exit_code == 1
    assert capsys.readouterr().err.startswith("error: --grace: ")
