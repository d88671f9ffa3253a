"""`meshline up` gives its demo regions a country and continent."""

from __future__ import annotations


def test_up_places_the_demo_regions() -> None:
    from cli.server.up import demo_region_flags

    assert demo_region_flags("eu") == ["--country", "FR", "--continent", "EU"]
    assert demo_region_flags("eu-central") == ["--country", "FR", "--continent", "EU"]
    assert demo_region_flags("us") == ["--country", "US", "--continent", "NA"]
    assert demo_region_flags("asia") == []
